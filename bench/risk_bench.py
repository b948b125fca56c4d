"""Risk benchmark: model quality, training time and memory, batch-scoring rate, and the privacy cost.

Builds a 30-day lake once (generator seed and scenario mix not used while developing) in a temporary
folder outside the repository, with its signal log (the full build timed before the last ingest batch,
one incremental refresh after it), then measures, each in a fresh process so its peak memory is its own:

- training both models on the whole lake (features, fits, calibration, card, registry);
- batch scoring every transaction of the lake, features included (the signal log mapped, the C
  engine's windows, one tree walk for scores and reasons, levels), beside the bare ``predict_proba``
  rate on the same matrix, and the newest day alone; each beside the previous path on the same rows
  (SQL features over the lake's Parquet files, ``predict_proba``, then a second walk for the reasons) as the
  reference, in its own process;
- the privacy cost: the same training on features from raw identifiers (read from the landing NDJSON,
  in memory only) against the pseudonymised and minimised lake.

Usage::

    .venv/bin/python bench/risk_bench.py --accounts 14500 --days 30 --seed 2029
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import ingest_batches
from devicerisk.ingest.runtime import ingest_context
from devicerisk.risk import features as F
from devicerisk.risk import reasons, signals, windows
from devicerisk.risk.labels import ingest_labels, read_labels
from devicerisk.risk.maturity import observed_label_delay
from devicerisk.risk.model import levels, single_threaded
from devicerisk.risk.service import (
    LOOKBACK,
    RiskStores,
    TrainingPlan,
    load_events,
    load_models,
    scan_events,
    score_rows,
    train_and_register,
)
from devicerisk.risk.training import make_split, matrix, train
from devicerisk.risk.truth import pseudonymised_truth
from devicerisk.synth import SynthConfig, generate
from ingest_bench import run_once

OUT = Path(__file__).parent / "out"
#: A mix unlike the default weights used while developing: more takeovers and emulators, fewer card testers.
BENCH_MIX = {
    "device_farm": 0.16,
    "emulator": 0.12,
    "rooted_hooked": 0.1,
    "account_takeover": 0.14,
    "card_testing": 0.08,
    "promo_abuse": 0.14,
    "compromised_merchant": 0.07,
    "compromised_customer": 0.07,
    "large_amount": 0.05,
    "push_payment_scam": 0.07,
}
BUDGET, GAP_DAYS, TEST_DAYS = 50, 5.0, 7.0


def settings_for(root: str, key: str, qkey: str) -> Settings:
    return Settings(
        mode="production",
        data_dir=Path(root) / "data",
        pseudonym_key=key,
        quarantine_key=qkey,
        secrets_dir=Path(root) / "secrets",
    )


def build(root: str, key: str, qkey: str, accounts: int, days: int, seed: int) -> dict[str, Any]:
    """Generate and ingest the lake; build the signal log before the last batch, then refresh it after:
    the full build and one incremental refresh (what the score flow pays after an ingest) are timed."""
    s = settings_for(root, key, qkey)
    start = time.perf_counter()
    result = generate(
        s.landing_dir,
        SynthConfig(
            accounts=accounts, days=days, seed=seed, events_per_batch=200_000, gzip=False, scenario_mix=BENCH_MIX
        ),
    )
    generated = time.perf_counter() - start
    ctx = ingest_context(s)
    start = time.perf_counter()
    *earlier, last = result.batches
    accepted = sum(r.accepted for r in ingest_batches(earlier, ctx))
    labels = sum(r.accepted for r in ingest_labels(ctx, s.landing_dir))
    ingested = time.perf_counter() - start
    built = signals.refresh_log(s.lake_dir, s.signals_dir)
    start = time.perf_counter()
    last_batch = sum(r.accepted for r in ingest_batches([last], ctx))
    ingested += time.perf_counter() - start
    step = signals.refresh_log(s.lake_dir, s.signals_dir)
    assert not step.rebuilt
    return {
        "events_generated": result.events,
        "events_in_lake": accepted + last_batch,
        "labels": labels,
        "generate_s": generated,
        "ingest_s": ingested,
        "signal_log": {
            "build_events": accepted,
            "build_s": built.seconds,
            "rows": built.rows_total,
            "refresh_events": last_batch,
            "refresh_s": step.seconds,
            "refresh_rows": step.rows_added,
            "rows_total": step.rows_total,
        },
    }


def new_lake(accounts: int, days: int, seed: int, prefix: str) -> tuple[str, str, str, dict[str, Any]]:
    """A lake built in a new temporary folder with new keys: (folder, key, quarantine key, build figures).
    The caller removes the folder; it is removed here if the build fails."""
    key, qkey = secrets.token_hex(32), secrets.token_hex(32)
    root = tempfile.mkdtemp(prefix=prefix)
    try:
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        return root, key, qkey, build(root, key, qkey, accounts, days, seed)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def train_job(root: str, key: str, qkey: str) -> tuple[int, float]:
    s = settings_for(root, key, qkey)
    truth = pseudonymised_truth(s.landing_dir, ingest_context(s).pseudonymiser)
    start = time.perf_counter()
    outcome = train_and_register(RiskStores.of(s), TrainingPlan(BUDGET, GAP_DAYS, TEST_DAYS), truth)
    seconds = time.perf_counter() - start
    (Path(root) / "train.json").write_text(json.dumps(outcome.metadata, default=str))
    return outcome.metadata["transaction"]["metrics"]["rows"], seconds


def _window(table: pa.Table, last_days: float | None) -> tuple[datetime, datetime]:
    """[oldest, newest] of the signal rows' times, or the newest ``last_days`` of them."""
    low, high = (v.as_py() for v in pc.min_max(table.column("t")).values())
    end = signals.EPOCH + timedelta(microseconds=high + 1)
    return (signals.EPOCH + timedelta(microseconds=low) if last_days is None else end - timedelta(days=last_days)), end


def score_job(root: str, key: str, qkey: str, last_days: float | None) -> tuple[int, float]:
    """Features, scores, levels and reasons for every transaction (of the newest ``last_days``), as scoring
    does them: the signal log mapped, the C engine's windows, one tree walk for scores and reasons."""
    s = settings_for(root, key, qkey)
    model, thresholds = load_models(s.models_dir)["transaction"]
    labels = read_labels(s.lake_dir)
    start = time.perf_counter()
    view = signals.read_log(s.signals_dir)
    assert view is not None
    begin, end = _window(view.table, last_days)
    loaded = time.perf_counter()
    rows, X = windows.transaction_features(view.table, labels, begin, end)
    X = windows.matrix(X, model.features)
    featured = time.perf_counter()
    score_rows(rows, X, model, thresholds)
    seconds = time.perf_counter() - start
    parts = {"load_s": loaded - start, "features_s": featured - loaded, "score_reasons_s": start + seconds - featured}
    with single_threaded():
        bare = time.perf_counter()
        model.estimator.predict_proba(X)
        bare = time.perf_counter() - bare
    (Path(root) / f"score-{last_days}.json").write_text(json.dumps({"rows": len(X), "predict_proba_s": bare} | parts))
    return len(X), seconds


def reference_job(root: str, key: str, qkey: str, last_days: float | None) -> tuple[int, float]:
    """The previous scoring path on the same rows, as the reference: the SQL features over the lake's Parquet
    files (31 days of history), ``predict_proba``, then ``reasons.explain`` (its own walk of the trees)."""
    s = settings_for(root, key, qkey)
    model, thresholds = load_models(s.models_dir)["transaction"]
    labels = read_labels(s.lake_dir)
    view = signals.read_log(s.signals_dir)
    assert view is not None
    begin, end = _window(view.table, last_days)
    del view
    start = time.perf_counter()
    events = scan_events(s.lake_dir, begin - LOOKBACK)
    loaded = time.perf_counter()
    feats = F.transaction_features(events, labels, begin, end)
    X = matrix(feats, model.features)
    featured = time.perf_counter()
    score = model.score(X)
    levels(score, thresholds)
    reasons.explain(model, X)
    seconds = time.perf_counter() - start
    parts = {"load_s": loaded - start, "features_s": featured - loaded, "score_reasons_s": start + seconds - featured}
    (Path(root) / f"reference-{last_days}.json").write_text(json.dumps({"rows": len(X)} | parts))
    return len(X), seconds


def _raw_tables(s: Settings, events: pa.Table) -> tuple[pa.Table, pa.Table, pa.Table]:
    """Events, labels and truth keyed by raw identifiers (from the landing zone, in memory only)."""
    con = duckdb.connect()
    con.register("lake", events)
    files = [str(p) for p in sorted((s.landing_dir / "telemetry").glob("*.ndjson"))]
    raw = """SELECT event_id, account_id, device.imei AS imei, device.android_id AS android_id, device.idfv AS idfv,
                    device.mac AS mac, device.oaid AS oaid, device.idfa AS idfa, network.ip AS ip,
                    payload.transaction_id AS txn, payload.counterparty AS cp
             FROM read_json($files, format = 'newline_delimited', union_by_name = true)"""
    raw_events = con.sql(
        f"""
        SELECT lake.* REPLACE (r.account_id AS account_id_pid, r.imei AS device_imei_pid,
               r.android_id AS device_android_id_pid, r.idfv AS device_idfv_pid, r.mac AS device_mac_pid,
               r.oaid AS device_oaid_pid, r.idfa AS device_idfa_pid, r.ip AS network_ip_prefix,
               r.txn AS transaction_id_pid, r.cp AS counterparty_pid)
        FROM lake JOIN ({raw}) r USING (event_id)""",
        params={"files": files},
    ).to_arrow_table()
    con.register("raw_events", raw_events)
    labels = con.sql(
        """
        SELECT l.subject_type, l.subject_id AS subject_id_pid,
               CASE WHEN l.subject_type = 'account' THEN l.subject_id ELSE e.account_id_pid END AS account_id_pid,
               l.label, l.reported_at::TIMESTAMPTZ AS reported_at, l.fraud_from::TIMESTAMPTZ AS fraud_from
        FROM read_json($files, format = 'newline_delimited', columns = {subject_type: 'VARCHAR',
             subject_id: 'VARCHAR', label: 'VARCHAR', reported_at: 'VARCHAR', fraud_from: 'VARCHAR'}) l
        LEFT JOIN (SELECT DISTINCT transaction_id_pid, account_id_pid FROM raw_events
                   WHERE transaction_id_pid IS NOT NULL) e ON e.transaction_id_pid = l.subject_id""",
        params={"files": [str(p) for p in sorted((s.landing_dir / "labels").glob("*.ndjson"))]},
    ).to_arrow_table()
    truth = con.sql(
        """
        SELECT subject_type, subject_id AS subject_pid, fraud, scenario FROM read_json($path,
            format = 'newline_delimited', columns = {subject_type: 'VARCHAR', subject_id: 'VARCHAR',
            fraud: 'BOOLEAN', scenario: 'VARCHAR'})""",
        params={"path": str(s.landing_dir / "truth" / "scenarios.ndjson")},
    ).to_arrow_table()
    return raw_events, labels, truth


def privacy_job(root: str, key: str, qkey: str) -> tuple[int, float]:
    s = settings_for(root, key, qkey)
    events = load_events(s.lake_dir)
    start = pc.min(events.column("event_time")).as_py()
    end = pc.max(events.column("event_time")).as_py() + timedelta(microseconds=1)
    labels = read_labels(s.lake_dir)
    split = make_split(start, end, GAP_DAYS, TEST_DAYS, observed_label_delay(events, labels).days)  # as training
    t0 = time.perf_counter()
    pseudo = train(events, labels, split, BUDGET, pseudonymised_truth(s.landing_dir, ingest_context(s).pseudonymiser))
    raw_events, raw_labels, raw_truth = _raw_tables(s, events)
    raw = train(raw_events, raw_labels, split, BUDGET, raw_truth)
    result = {}
    for name in ("transaction", "account"):
        mine, theirs = getattr(pseudo, name).evaluation, getattr(raw, name).evaluation
        result[name] = {
            "pseudonymised": mine.roc_auc,
            "raw": theirs.roc_auc,
            "pseudonymised_ap": mine.average_precision,
            "raw_ap": theirs.average_precision,
        }
    (Path(root) / "privacy.json").write_text(json.dumps(result))
    return raw_events.num_rows, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=14_500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=2029)
    parser.add_argument("--skip-privacy", action="store_true")
    args = parser.parse_args()
    root, key, qkey, lake = new_lake(args.accounts, args.days, args.seed, "devicerisk-risk-bench-")
    try:
        print(json.dumps(lake))
        trained = run_once(train_job, (root, key, qkey))
        meta = json.loads((Path(root) / "train.json").read_text())
        full = run_once(score_job, (root, key, qkey, None))
        day = run_once(score_job, (root, key, qkey, 1.0))
        refs = {d: run_once(reference_job, (root, key, qkey, d)) for d in (None, 1.0)}
        bare = {d: json.loads((Path(root) / f"score-{d}.json").read_text()) for d in (None, 1.0)}
        ref_parts = {d: json.loads((Path(root) / f"reference-{d}.json").read_text()) for d in (None, 1.0)}
        summary: dict[str, Any] = {
            "lake": lake,
            "train_seconds": trained["seconds"],
            "train_peak_rss_mib": trained["peak_rss_mib"],
            "transaction": meta["transaction"]["metrics"] | {"kind": meta["transaction"]["kind"]},
            "account": meta["account"]["metrics"] | {"kind": meta["account"]["kind"]},
            "thresholds": meta["transaction"]["thresholds"],
            "signal_log": lake["signal_log"],
            "score_all": {
                "transactions": full["rows"],
                "seconds": full["seconds"],
                "per_s": full["rows"] / full["seconds"],
                "peak_rss_mib": full["peak_rss_mib"],
                "predict_proba_per_s": bare[None]["rows"] / bare[None]["predict_proba_s"],
                "parts": {k: v for k, v in bare[None].items() if k.endswith("_s")},
                "reference_per_s": refs[None]["rows"] / refs[None]["seconds"],
                "speedup_vs_reference": refs[None]["seconds"] / full["seconds"],
                "reference_parts": {k: v for k, v in ref_parts[None].items() if k.endswith("_s")},
            },
            "score_last_day": {
                "transactions": day["rows"],
                "seconds": day["seconds"],
                "per_s": day["rows"] / day["seconds"],
                "predict_proba_per_s": bare[1.0]["rows"] / max(bare[1.0]["predict_proba_s"], 1e-9),
                "parts": {k: v for k, v in bare[1.0].items() if k.endswith("_s")},
                "reference_per_s": refs[1.0]["rows"] / refs[1.0]["seconds"],
                "speedup_vs_reference": refs[1.0]["seconds"] / day["seconds"],
                "reference_parts": {k: v for k, v in ref_parts[1.0].items() if k.endswith("_s")},
            },
        }
        for part in ("score_all", "score_last_day"):  # the target: at least 0.8 on the whole lake
            summary[part]["ratio_to_predict_proba"] = summary[part]["per_s"] / summary[part]["predict_proba_per_s"]
        if not args.skip_privacy:
            run_once(privacy_job, (root, key, qkey))
            summary["privacy"] = json.loads((Path(root) / "privacy.json").read_text())
        OUT.mkdir(exist_ok=True)
        version = meta["version"]
        card_dir = OUT / "card"
        shutil.rmtree(card_dir, ignore_errors=True)
        shutil.copytree(
            settings_for(root, key, qkey).models_dir / version, card_dir, ignore=shutil.ignore_patterns("*.skops")
        )
        for drop in ("single_flags", "reliability"):
            for name in ("transaction", "account"):
                summary[name].pop(drop, None)
        print(json.dumps(summary, indent=2, default=str))
        (OUT / "risk_results.json").write_text(json.dumps(summary, indent=2, default=str))
        print(f"model card: {card_dir / 'card.md'}")
        for part, what in (("score_all", "whole lake"), ("score_last_day", "newest day")):
            p, s = summary[part], summary[part]["parts"]
            print(
                f"scoring the {what}: {p['transactions']:,} rows in {p['seconds']:.3f} s (features "
                f"{s['features_s']:.3f} s, scores and reasons {s['score_reasons_s']:.3f} s); bare predict_proba "
                f"{s['predict_proba_s']:.3f} s: ratio {p['ratio_to_predict_proba']:.2f}"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
