"""The handbook's simulator, its baseline features and its contract landing files."""

from __future__ import annotations

import orjson
import pandas as pd

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import IngestContext, ingest_batches
from devicerisk.risk.labels import ingest_labels, read_labels
from devicerisk.store.landing import pending_files
from devicerisk.synth.handbook import DAY_S, HandbookConfig, baseline_features, simulate, write_landing

SMALL = HandbookConfig(customers=300, terminals=600, days=20, seed=4)


def test_the_simulation_follows_the_published_design() -> None:
    tx = simulate(SMALL)
    assert tx["time_s"].is_monotonic_increasing and (tx["time_s"] // DAY_S == tx["day"]).all()
    assert (tx["amount"] >= 0).all()
    assert tx.loc[tx["amount"] > SMALL.amount_threshold, "fraud"].all()  # scenario 1 (or a later one)
    assert set(tx.loc[tx["fraud"], "scenario"]) <= {1, 2, 3} and not tx.loc[~tx["fraud"], "scenario"].any()
    for terminal, rows in tx[tx["scenario"] == 2].groupby("terminal"):
        assert rows["day"].max() - rows["day"].min() < 2 * SMALL.terminal_days, terminal
    assert 0.002 < tx["fraud"].mean() < 0.15  # 0.8% at the published size; a small population has more
    again = simulate(SMALL)
    pd.testing.assert_frame_equal(tx, again)  # one seed, one simulation


def test_baseline_features_read_their_windows() -> None:
    tx = pd.DataFrame(
        {
            "tx_id": range(4),
            "time_s": [0, 3600, 2 * DAY_S, 9 * DAY_S],
            "day": [0, 0, 2, 9],
            "customer": [1, 1, 1, 2],
            "terminal": [7, 7, 7, 7],
            "amount": [10.0, 30.0, 50.0, 5.0],
            "fraud": [True, False, False, False],
            "scenario": [1, 0, 0, 0],
        }
    )
    f = baseline_features(tx)
    assert f["customer_nb_tx_1d"].tolist() == [1, 2, 1, 1]  # the transaction itself counts
    assert f["customer_avg_amount_7d"].tolist() == [10.0, 20.0, 30.0, 5.0]
    # a terminal's frauds are known 7 days later: on day 9 its 30-day window ends on day 2 and holds the
    # transactions of days 0 to 2, one fraud in three; earlier transactions see nothing yet
    assert f["terminal_risk_30d"].tolist()[:3] == [0.0, 0.0, 0.0]
    assert f["terminal_risk_30d"].iloc[3] == 1 / 3 and f["terminal_nb_tx_30d"].iloc[3] == 3


def test_landing_files_go_through_the_contract(settings: Settings, ctx: IngestContext) -> None:
    tx = simulate(SMALL)
    half = 10 * DAY_S
    first = write_landing(tx, SMALL, settings.landing_dir, until_s=half, seed=4)
    second = write_landing(tx, SMALL, settings.landing_dir, since_s=half, seed=4)
    assert first["transactions"] + second["transactions"] == len(tx)
    results = list(ingest_batches(pending_files(settings.landing_dir), ctx))
    assert sum(r.accepted for r in results) == len(tx) and not any(r.quarantined for r in results)
    labelled = sum(r.accepted for r in ingest_labels(ctx, settings.landing_dir))
    assert labelled == first["labels"] + second["labels"] <= int(tx["fraud"].sum())
    labels = read_labels(settings.lake_dir)
    assert set(labels.column("subject_type").to_pylist()) == {"transaction"}
    line = next((settings.landing_dir / "telemetry").glob("*.ndjson")).read_bytes().splitlines()[0]
    event = orjson.loads(line)
    assert event["account_id"].startswith("hb-cust-") and event["payload"]["counterparty"].startswith("hb-term-")
