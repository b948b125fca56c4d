"""The signal log on a real lake written by ingest: incremental refreshes, rebuilds, crashes, drop, reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import IngestContext, ingest_batch
from devicerisk.privacy.keys import load_pseudonym_key
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.risk import signals
from devicerisk.risk.signals import BUILDER
from devicerisk.store import lake, lake_rewrite, lake_scan, signal_log
from devicerisk.store import lake_maintenance as lakes
from devicerisk.store.files import LOCK_NAME
from factories import event, write_batch

#: Weeks ago, so that the later batches (up to five weeks on) are not in the future: ingest refuses those.
START = (datetime.now(UTC) - timedelta(days=60)).replace(hour=8, minute=0, second=0, microsecond=0)
TYPES = ("transaction", "operation", "device_info", "account", "crash", "app_list")


def _records(batch: int, n: int, start: datetime) -> list[dict[str, Any]]:
    """``n`` events of every type, on several accounts and days, each transaction its own id."""
    out = []
    for i in range(n):
        e = event(
            TYPES[i % len(TYPES)], account_id=f"acct-{i % 5}", event_time=(start + timedelta(hours=7 * i)).isoformat()
        )
        if e["event_type"] == "transaction":
            e["payload"] = {**e["payload"], "transaction_id": f"T-{batch}-{i}", "amount": 10.0 + i}
        out.append(e)
    return out


def _ingest(settings: Settings, ctx: IngestContext, batch: int, n: int = 24, start: datetime = START) -> None:
    path = write_batch(settings.landing_dir / "telemetry" / f"b{batch}.ndjson", _records(batch, n, start))
    assert ingest_batch(path, ctx).accepted == n


def _whole_lake(settings: Settings) -> pa.Table:
    snap = lake_scan.snapshot(settings.lake_dir, lake.EVENTS)
    assert snap is not None
    return signals.signals(snap)


def _same_rows(a: pa.Table, b: pa.Table) -> bool:
    """The same multiset of rows (DuckDB compares NaN amounts as equal)."""
    con = duckdb.connect()
    con.register("a", a)
    con.register("b", b)
    one_way = "SELECT count(*) FROM (SELECT * FROM {} EXCEPT ALL SELECT * FROM {})"
    missing = (
        con.execute(one_way.format("a", "b")).fetchall()[0][0] + con.execute(one_way.format("b", "a")).fetchall()[0][0]
    )
    return a.num_rows == b.num_rows and missing == 0


@pytest.fixture
def built(settings: Settings, ctx: IngestContext) -> Path:
    """A log built from a first batch of 24 events; returns its folder."""
    _ingest(settings, ctx, 1)
    signal_log.refresh(settings.lake_dir, settings.signals_dir, BUILDER)
    return settings.signals_dir


def _segments(signals_dir: Path) -> set[str]:
    return {p.name for p in signals_dir.glob("seg-*.arrow")}


def test_incremental_refresh_adds_only_new_files_and_equals_the_whole_lakes_signals(
    settings: Settings, ctx: IngestContext
) -> None:
    sig = settings.signals_dir
    _ingest(settings, ctx, 1)
    first = signal_log.refresh(settings.lake_dir, sig, BUILDER)
    assert first.rebuilt and first.rows_added == first.rows_total == 24 and first.version == 0
    before = _segments(sig)

    _ingest(settings, ctx, 2, n=12, start=START + timedelta(days=20))
    second = signal_log.refresh(settings.lake_dir, sig, BUILDER)

    assert not second.rebuilt and (second.rows_added, second.rows_total, second.version) == (12, 36, 1)
    assert before < _segments(sig) and len(_segments(sig)) == 2  # the first segment untouched, one added
    view = signal_log.read(sig, BUILDER)
    assert view is not None and view.version == 1 and view.runs == (0, 24) and view.ordered
    assert _same_rows(view.table, _whole_lake(settings))
    assert view.table.column("event_id").null_count == 36 - 6  # transactions keep their event ids

    again = signal_log.refresh(settings.lake_dir, sig, BUILDER)  # no new lake commit: nothing to do
    assert (again.rows_added, again.rows_total, again.rebuilt, again.version) == (0, 36, False, 1)
    assert len(_segments(sig)) == 2


def test_late_rows_make_a_segment_that_is_not_in_order_until_consolidated(
    settings: Settings, ctx: IngestContext, built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sig = built
    _ingest(settings, ctx, 2, n=6, start=START - timedelta(days=3))  # arrived late: older than the log's rows
    signal_log.refresh(settings.lake_dir, sig, BUILDER)
    view = signal_log.read(sig, BUILDER)
    assert view is not None and not view.ordered and view.runs == (0, 24)

    monkeypatch.setattr(signal_log, "MAX_SEGMENTS", 2)
    _ingest(settings, ctx, 3, n=6, start=START + timedelta(days=30))
    third = signal_log.refresh(settings.lake_dir, sig, BUILDER)

    assert not third.rebuilt and third.rows_added == 6 and len(_segments(sig)) == 1  # three segments became one
    view = signal_log.read(sig, BUILDER)
    assert view is not None and view.ordered and view.runs == (0,)
    t = view.table.column("t").to_pylist()
    assert t == sorted(t) and _same_rows(view.table, _whole_lake(settings))


def test_clustering_the_lake_rebuilds_the_log(settings: Settings, ctx: IngestContext) -> None:
    sig = settings.signals_dir
    _ingest(settings, ctx, 1)
    _ingest(settings, ctx, 2, n=12, start=START + timedelta(hours=3))  # the same days: two files per partition
    signal_log.refresh(settings.lake_dir, sig, BUILDER)
    assert lakes.cluster(settings.lake_dir, lake.EVENTS, 1 << 16) > 0  # covered files replaced by sorted ones

    after = signal_log.refresh(settings.lake_dir, sig, BUILDER)

    assert after.rebuilt and after.rows_total == 36 and len(_segments(sig)) == 1
    view = signal_log.read(sig, BUILDER)
    assert view is not None and view.version == after.version and _same_rows(view.table, _whole_lake(settings))


def test_deleting_lake_rows_rebuilds_the_log_without_them(settings: Settings, built: Path) -> None:
    sig = built
    gone = Pseudonymiser(load_pseudonym_key(settings)).pseudonymise_one("account", "acct-0")
    assert gone is not None
    where = ds.field("account_id_pid") == gone
    pruning = lake_rewrite.may_hold({"account_id_pid": frozenset({gone})})
    deleted = lakes.delete_where(settings.lake_dir, lake.EVENTS, pruning, where, "test").rows
    assert deleted == 5

    after = signal_log.refresh(settings.lake_dir, sig, BUILDER)

    assert after.rebuilt and after.rows_total == 24 - deleted
    view = signal_log.read(sig, BUILDER)
    assert view is not None and _same_rows(view.table, _whole_lake(settings))
    con = duckdb.connect()
    con.register("sig", view.table)
    assert con.execute("SELECT count(*) FROM sig WHERE acct = hash($a)", {"a": gone}).fetchall()[0][0] == 0


def test_a_crash_between_segment_and_manifest_leaves_the_old_log_valid(
    settings: Settings, ctx: IngestContext, built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sig = built
    before = signal_log.read(sig, BUILDER)
    assert before is not None
    _ingest(settings, ctx, 2, n=12, start=START + timedelta(days=20))

    def crash(*_: object) -> None:
        raise RuntimeError("power cut")

    with monkeypatch.context() as m:
        m.setattr(signal_log, "_save", crash)
        with pytest.raises(RuntimeError, match="power cut"):
            signal_log.refresh(settings.lake_dir, sig, BUILDER)
    assert len(_segments(sig)) == 2  # the new segment was written, but no manifest names it

    view = signal_log.read(sig, BUILDER)
    assert view is not None and view.version == 0 and _same_rows(view.table, before.table)
    after = signal_log.refresh(settings.lake_dir, sig, BUILDER)
    assert not after.rebuilt and after.rows_added == 12 and len(_segments(sig)) == 2  # the stray one went
    view = signal_log.read(sig, BUILDER)
    assert view is not None and _same_rows(view.table, _whole_lake(settings))


def test_a_log_of_other_signal_code_is_not_read_and_is_rebuilt(settings: Settings, built: Path) -> None:
    sig = built
    manifest = json.loads((sig / signal_log.MANIFEST).read_text())
    (sig / signal_log.MANIFEST).write_text(json.dumps({**manifest, "fingerprint": "older-sql"}))

    assert signal_log.read(sig, BUILDER) is None
    after = signal_log.refresh(settings.lake_dir, sig, BUILDER)
    assert after.rebuilt and after.rows_total == 24 and signal_log.read(sig, BUILDER) is not None


def test_drop_removes_everything_and_a_missing_log_reads_as_none(settings: Settings, ctx: IngestContext) -> None:
    sig = settings.signals_dir
    assert signal_log.read(sig, BUILDER) is None and signal_log.drop(sig) == 0
    empty = signal_log.refresh(settings.lake_dir, sig, BUILDER)  # no events table yet
    assert (empty.version, empty.rows_total) == (None, 0) and signal_log.read(sig, BUILDER) is None
    _ingest(settings, ctx, 1)
    signal_log.refresh(settings.lake_dir, sig, BUILDER)
    (sig / ".seg-leftover.arrow.tmp").write_bytes(b"partial")

    assert signal_log.drop(sig) == 24

    assert signal_log.read(sig, BUILDER) is None
    assert [p.name for p in sig.iterdir()] == [LOCK_NAME] and (sig / LOCK_NAME).stat().st_size == 0
    assert signal_log.refresh(settings.lake_dir, sig, BUILDER).rebuilt  # the next refresh builds it again


def test_segments_and_manifest_are_private_files(built: Path) -> None:
    modes = {p.name: p.stat().st_mode & 0o777 for p in built.iterdir() if p.name != LOCK_NAME}
    assert len(modes) == 2 and set(modes.values()) == {0o600}
    assert built.stat().st_mode & 0o777 == 0o700
