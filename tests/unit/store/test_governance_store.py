"""Holds and requests live in the warehouse; a warehouse from before them gains their tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from devicerisk.store import governance, warehouse
from devicerisk.store.governance import Hold, RequestRow

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
OLD_SCHEMA = warehouse.SCHEMA.split("-- Legal holds")[0]  # the warehouse as ingest alone created it


def test_a_warehouse_created_before_holds_and_requests_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(OLD_SCHEMA)
    con.close()
    assert governance.holds(path) == [] and governance.requests(path) == []
    governance.add_hold(path, Hold("hold-1", "a" * 32, "case 1", "legal", NOW, NOW + timedelta(days=3)))
    assert governance.held_subjects(path, NOW) == frozenset({"a" * 32})
    assert governance.held_subjects(path, NOW + timedelta(days=4)) == frozenset()  # expired


def test_a_request_round_trips_with_its_progress(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    row = RequestRow(
        "req-1",
        "erasure",
        {"accounts": ["b" * 32], "identifiers": {}},
        {},
        "verified",
        NOW,
        NOW,
        found={"lake.events": 3},
    )
    governance.put_request(path, row)
    row.done.append("lake")
    row.status = "in_progress"
    governance.put_request(path, row)
    assert governance.get_request(path, "req-1") == row
    assert [r.request_id for r in governance.requests(path)] == ["req-1"]
