"""The risk flows under a real Prefect engine: synthetic telemetry in, scores, serving snapshots and a card out."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from devicerisk import runtime
from devicerisk.config import Settings
from devicerisk.flows.ingest import ingest_flow
from devicerisk.flows.risk import risk_flow
from devicerisk.flows.score import score_accounts_flow, score_transactions_flow
from devicerisk.flows.train import train_flow
from devicerisk.governance.stores import audit_trail
from devicerisk.privacy.leakscan import scan_data_dir
from devicerisk.store import audit, registry, scores, serving
from devicerisk.synth import SynthConfig, generate


@pytest.fixture
def risk_settings(env_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A short lake trains with a one-day gap and a one-day test window."""
    monkeypatch.setenv("DEVICERISK_RISK_LABEL_GAP_DAYS", "1")
    monkeypatch.setenv("DEVICERISK_RISK_TEST_DAYS", "1")
    return env_settings


def test_risk_flow_end_to_end(prefect_db: Path, risk_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    s = risk_settings
    generate(s.landing_dir, SynthConfig(accounts=500, days=5, seed=23, events_per_batch=20_000, fraud_rate=0.2))
    ingest_flow(str(s.data_dir))
    built: list[Path] = []
    real_build = runtime.build

    def counting_build(settings: Settings) -> runtime.Runtime:
        built.append(settings.data_dir)
        return real_build(settings)

    monkeypatch.setattr(runtime, "build", counting_build)

    counts = risk_flow(str(s.data_dir))  # no model yet: it trains one first, then scores

    assert built == [s.data_dir]  # settings and keys read once for the flow and its three subflows
    label_runs = [r for r in audit.records(s.audit_dir) if r["action"] == "ingest_labels"]
    assert len(label_runs) == 1 and label_runs[0]["counts"]["files"] > 0  # labels ingested once, not per subflow

    champion = registry.champion(s.models_dir)
    assert champion is not None
    meta = registry.metadata(s.models_dir, champion)
    assert meta["transaction"]["kind"] == "supervised"
    assert meta["transaction"]["features"] and meta["events_version"] is not None
    assert set(meta["libraries"]) >= {"scikit-learn", "skops"}
    folder = s.models_dir / champion
    assert (folder / "card.md").exists() and (folder / "transaction_reliability.png").read_bytes()[:4] == b"\x89PNG"
    card = (folder / "card.md").read_text()
    assert "ROC AUC" in card and "Recall per planted scenario" in card
    delay, window = meta["label_delay"], meta["training_window"]
    assert delay["measured"] > 0 and f"| gap for label delay ({delay['text']}) |" in card
    gap = datetime.fromisoformat(window["test_start"]) - datetime.fromisoformat(window["train_end"])
    gap_days = gap.total_seconds() / 86_400
    assert window["training_mature"] == (gap_days >= delay["days"])  # else the card says the labels are immature
    assert window["training_mature"] or "at the label cut have immature labels" in card

    txn = scores.read(s.lake_dir, scores.TRANSACTION_SCORES)
    assert txn is not None and txn.num_rows == counts["transactions_scored"] > 0
    assert {"account_id_pid", "event_date", "model_version", "reasons"} <= set(txn.column_names)
    assert set(txn.column("model_version").to_pylist()) == {champion}
    assert set(txn.column("level").to_pylist()) <= {"normal", "elevated", "highest"}
    accounts = pq.read_table(serving.path_of(s.serving_dir, serving.ACCOUNTS))
    assert accounts.num_rows == counts["accounts_scored"] and "account_id_pid" in accounts.column_names
    top = accounts.sort_by([("score", "descending")]).slice(0, 5).to_pylist()
    assert all(r["reasons"] for r in top if r["level"] != "normal")
    assert not list(s.serving_dir.glob(".*tmp"))

    again = score_transactions_flow(str(s.data_dir))  # nothing new: nothing scored twice
    assert again["transactions_scored"] == 0
    assert scores.read(s.lake_dir, scores.TRANSACTION_SCORES).num_rows == txn.num_rows
    scored_accounts = scores.read(s.lake_dir, scores.ACCOUNT_SCORES)
    assert scored_accounts is not None and scored_accounts.num_rows == counts["accounts_scored"] > 0
    assert score_accounts_flow(str(s.data_dir))["accounts_scored"] == counts["accounts_scored"]  # same as-of again
    assert scores.read(s.lake_dir, scores.ACCOUNT_SCORES).num_rows == scored_accounts.num_rows  # no duplicates

    actions = [r["action"] for r in audit.records(s.audit_dir)]
    assert {"ingest_labels", "train_models", "score_transactions", "score_accounts"} <= set(actions)
    assert audit.verify(audit_trail(s)) == []

    second = train_flow(str(s.data_dir))  # same data, same seed: at least as good, so promoted
    assert second.promoted and registry.champion(s.models_dir) == second.version

    report = scan_data_dir(s.data_dir)  # scores, snapshots, models and cards hold no raw identifier
    assert report.values > 10_000 and report.findings == [], report.findings[:5]


def test_risk_step_skips_a_lake_too_short_to_train(prefect_db: Path, env_settings: Settings) -> None:
    s = env_settings
    generate(s.landing_dir, SynthConfig(accounts=60, days=1, seed=29))
    ingest_flow(str(s.data_dir))
    assert risk_flow(str(s.data_dir)) == {"transactions_scored": 0, "accounts_scored": 0}
    assert registry.champion(s.models_dir) is None and not s.serving_dir.exists()


def test_the_scheduled_train_and_account_flows_complete_on_a_new_install(
    prefect_db: Path, env_settings: Settings
) -> None:
    """The weekly and daily deployments on a lake too short to train: each run completes, trains and scores
    nothing, and says why (an operator's first day must not show failed runs)."""
    s = env_settings
    generate(s.landing_dir, SynthConfig(accounts=60, days=1, seed=29))
    ingest_flow(str(s.data_dir))
    trained = train_flow(str(s.data_dir), return_state=True)
    scored = score_accounts_flow(str(s.data_dir), return_state=True)
    assert trained.is_completed() and trained.result() is None
    assert scored.is_completed() and scored.result() == {"accounts_scored": 0}
    assert registry.champion(s.models_dir) is None and not s.serving_dir.exists()
