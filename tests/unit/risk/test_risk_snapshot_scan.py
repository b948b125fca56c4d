"""Features from DuckDB scanning a Delta snapshot's Parquet files equal those from Arrow rows; the version holds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb

from devicerisk.risk import features as F
from devicerisk.store import lake, lake_scan
from factories import DEV, NET, OTHER, T0, events, ingest, labels, registered, txn


def history() -> list[dict]:
    """Rows over 40 days, in three batches (and many date partitions)."""
    old = T0 - timedelta(days=40)
    return [
        registered(old, network_ip_prefix=NET, device_imsi_country="DE"),
        txn(old + timedelta(hours=1), network_ip_prefix=NET, device_imsi_country="DE", counterparty_pid="p" * 32),
        {
            "event_id": "info",
            "event_type": "device_info",
            "event_time": T0 - timedelta(days=3),
            "device_android_id_pid": DEV,
            "rooted": True,
            "timezone": "Europe/Berlin",
            "language": "de-DE",
        },
        txn(T0 - timedelta(days=20), network_ip_prefix=NET, device_imsi_country="DE"),
        txn(T0 - timedelta(days=2), acct=OTHER, network_ip_prefix=NET),
        txn(T0 - timedelta(hours=5), amount=40.0, status="failed"),
        txn(T0, network_ip_prefix=NET, device_imsi_country="FR", counterparty_pid="p" * 32, amount=900.0),
        txn(T0 + timedelta(hours=1), acct=OTHER),
    ]


def test_features_from_a_snapshot_scan_equal_those_from_arrow_rows(tmp_path: Path) -> None:
    rows = history()
    for i, part in enumerate((rows[:2], rows[2:5], rows[5:])):
        ingest(tmp_path, part, f"b{i}")
    lab = labels([("transaction", rows[5]["transaction_id_pid"], T0 - timedelta(hours=1))])
    start, end = T0 - timedelta(days=3), T0 + timedelta(hours=2)
    since = (start - F.HISTORY - timedelta(days=1)).date()
    snap = lake_scan.snapshot(tmp_path, lake.EVENTS, since)
    assert snap is not None and snap.files and snap.version == 2
    everything = lake_scan.snapshot(tmp_path, lake.EVENTS)
    assert everything is not None and len(snap.files) < len(everything.files)  # older partitions pruned

    scanned = F.transaction_features(snap, lab, start, end)
    from_arrow = F.transaction_features(events(rows), lab, start, end)
    assert scanned.num_rows == 4 and scanned.to_pylist() == from_arrow.to_pylist()
    as_of = T0 + timedelta(minutes=30)
    assert (
        F.account_features(snap, lab, start, as_of).to_pylist()
        == F.account_features(events(rows), lab, start, as_of).to_pylist()
    )


def test_a_snapshot_keeps_its_version_while_the_lake_moves_on(tmp_path: Path) -> None:
    rows = history()
    ingest(tmp_path, rows[:6], "b0")
    snap = lake_scan.snapshot(tmp_path, lake.EVENTS)
    assert snap is not None and snap.bounds() == (rows[0]["event_time"], rows[5]["event_time"])
    ingest(tmp_path, rows[6:], "b1")
    assert snap.bounds() == (rows[0]["event_time"], rows[5]["event_time"])  # the run's version, not the newest commit
    con = duckdb.connect()
    snap.register(con, "ev", ["event_id"])
    assert con.execute("SELECT count(*) FROM ev").fetchall()[0][0] == 6
    assert "PARQUET" in str(con.execute("EXPLAIN SELECT * FROM ev").fetchall()).upper()  # DuckDB's own scan
    later = lake_scan.snapshot(tmp_path, lake.EVENTS)
    assert later is not None and later.version == snap.version + 1 and later.bounds()[1] == rows[7]["event_time"]
    pinned = lake_scan.snapshot(tmp_path, lake.EVENTS, version=snap.version)
    assert pinned is not None and pinned.files == snap.files
    assert pinned.table(["event_id"]).num_rows == 6
    assert lake_scan.snapshot(tmp_path / "none", lake.EVENTS) is None
