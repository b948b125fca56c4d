"""Signal log benchmark: build, read and incremental refresh on a lake of millions of events.

The lake given with ``--lake`` is copied to ``--work`` first (it is never written). Measured in the
same run, on the copy:

- the reference: DuckDB decoding the feature columns of the whole ``events`` snapshot into Arrow
  (what scoring would pay for each run without the log);
- the signal query alone (``signals.signals`` of the whole snapshot), then a full build of the log
  (``signal_log.refresh`` on an empty folder: the query, and writing the segment);
- ``signal_log.read``: mapping the segments (best and median of ``--repeats``), then touching every
  value of the fixed-width columns once (a sum each), which pages the mapped file in;
- a refresh with no new commit, and an incremental refresh after one more batch is appended through
  ``store/lake.py`` (a slice of existing rows with new event ids, as ingest would append them);
- with ``--check``: the features of every transaction computed from the incremental log equal those
  computed from the whole lake's signals (the log keeps each batch's first rows of every bucket, so its
  rows are a superset; the features must not tell the difference).

Usage (the work folder is deleted at the end unless ``--keep``):

    flock /tmp/devicerisk-bench.lock .venv/bin/python bench/signal_log_bench.py --lake data/lake --work /tmp/sig-bench
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.risk import features as F
from devicerisk.risk import signals, windows
from devicerisk.store import lake, lake_scan


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _decode_reference(lake_dir: Path) -> tuple[float, int]:
    """DuckDB reading the feature columns of every event into Arrow: the cost the log avoids."""

    def run() -> int:
        snap = lake_scan.snapshot(lake_dir, lake.EVENTS)
        assert snap is not None
        con = duckdb.connect(":memory:")
        try:
            snap.register(con, "events", F.EVENT_COLUMNS)
            return con.sql("SELECT * FROM events").to_arrow_table().num_rows
        finally:
            con.close()

    return _timed(run)


def _touch(table: pa.Table) -> int:
    """Sum every fixed-width column once: every page of them is read."""
    total = 0
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_integer(column.type) and name != "major":
            total += int(pc.sum(column).as_py() or 0) & 0xFFFF
    return total


def _batch(lake_dir: Path, rows: int) -> pa.Table:
    """``rows`` events of the newest day that has that many, moved to the day after the newest and given new
    event ids: the next ingest batch."""
    table = lake.open_table(lake_dir, lake.EVENTS)
    assert table is not None
    data = table.to_pyarrow_dataset()
    counts = data.to_table(columns=["event_date"]).column("event_date").value_counts().to_pylist()
    newest = max(c["values"] for c in counts)
    day = max((c["values"] for c in counts if c["counts"] >= rows), default=newest)
    shift = pa.scalar(newest - day + timedelta(days=1))
    picked = data.to_table(filter=pc.field("event_date") == day).slice(0, rows)
    later = {
        "event_id": pc.binary_join_element_wise("bench-", picked.column("event_id"), ""),
        "event_time": pc.add(picked.column("event_time"), shift),
        "event_date": pc.add(picked.column("event_date"), shift),
    }
    for name, values in later.items():
        kind = picked.schema.field(name).type
        picked = picked.set_column(picked.schema.get_field_index(name), name, values.cast(kind))
    return picked


def _same_features(log: pa.Table, whole: pa.Table) -> bool:
    """The engine's features of every transaction, from the log and from the whole lake's signals."""
    t = whole.column("t")
    start = pc.min(t).as_py()
    end = pc.max(t).as_py() + 1
    start_dt, end_dt = (signals.EPOCH + timedelta(microseconds=us) for us in (start, end))
    rows_a, X_a = windows.transaction_features(log, None, start_dt, end_dt)
    rows_b, X_b = windows.transaction_features(whole, None, start_dt, end_dt)
    order_a = np.argsort(rows_a.column("qid").to_numpy(zero_copy_only=False), kind="stable")
    order_b = np.argsort(rows_b.column("qid").to_numpy(zero_copy_only=False), kind="stable")
    a, b = X_a[order_a], X_b[order_b]
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", type=Path, required=True, help="a lake folder holding an events table")
    parser.add_argument("--work", type=Path, required=True, help="a folder for the copy (deleted at the end)")
    parser.add_argument("--batch", type=int, default=100_000, help="rows in the appended batch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--check", action="store_true", help="compare the log with the whole lake's signals")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--out", type=Path, default=Path("bench/out/signal_log.json"))
    args = parser.parse_args()

    if args.work.exists():
        raise SystemExit(f"{args.work} exists: give a new folder")
    lake_dir, sig = args.work / "lake", args.work / "signals"
    shutil.copytree(args.lake / lake.EVENTS, lake_dir / lake.EVENTS)
    try:
        out: dict[str, Any] = {
            "python": platform.python_version(),
            "pyarrow": pa.__version__,
            "duckdb": duckdb.__version__,
        }
        out["decode_s"], out["events"] = _decode_reference(lake_dir)
        snap = lake_scan.snapshot(lake_dir, lake.EVENTS)
        assert snap is not None
        out["signals_s"], _ = _timed(lambda: signals.signals(snap).num_rows)  # the build's query alone
        build = signals.refresh_log(lake_dir, sig)
        out["build_s"], out["rows"] = build.seconds, build.rows_total
        out["log_bytes"] = sum(p.stat().st_size for p in sig.glob("seg-*.arrow"))

        reads = []
        for _ in range(args.repeats):
            seconds, view = _timed(lambda: signals.read_log(sig))
            reads.append(seconds)
        assert view is not None and view.table.num_rows == build.rows_total
        out["read_best_s"], out["read_median_s"] = min(reads), statistics.median(reads)
        out["touch_s"], _ = _timed(lambda: _touch(view.table))
        del view

        out["noop_refresh_s"] = signals.refresh_log(lake_dir, sig).seconds
        batch = _batch(lake_dir, args.batch)
        lake.append(lake_dir, lake.EVENTS, batch, "bench-batch", {"rows": batch.num_rows})
        step = signals.refresh_log(lake_dir, sig)
        assert not step.rebuilt and 0 < step.rows_added <= batch.num_rows, step
        out["incremental_s"], out["incremental_rows"] = step.seconds, step.rows_added
        out["batch_events"] = batch.num_rows
        seconds, view = _timed(lambda: signals.read_log(sig))
        assert view is not None
        out["read_two_segments_s"], out["ordered_after_append"] = seconds, view.ordered
        if args.check:
            snap = lake_scan.snapshot(lake_dir, lake.EVENTS)
            assert snap is not None
            out["equal_to_whole_lake"] = _same_features(view.table, signals.signals(snap))
    finally:
        if not args.keep:
            shutil.rmtree(args.work)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    rate = out["rows"] / out["read_best_s"]
    print(f"events: {out['events']:,}; signal rows {out['rows']:,} ({out['log_bytes'] / out['rows']:.0f} B a row)")
    print(f"reference: DuckDB decode of the feature columns {out['decode_s']:.2f} s")
    print(
        f"full build: {out['build_s']:.2f} s ({out['build_s'] / out['decode_s']:.2f}x the decode; "
        f"the signal query alone {out['signals_s']:.2f} s)"
    )
    print(
        f"read (mmap): best {out['read_best_s'] * 1e3:.2f} ms, median {out['read_median_s'] * 1e3:.2f} ms "
        f"({rate / 1e6:,.0f}M rows/s; {out['decode_s'] / out['read_best_s']:,.0f}x faster than the decode); "
        f"touching every fixed-width value once: {out['touch_s'] * 1e3:.0f} ms"
    )
    print(f"refresh without a new commit: {out['noop_refresh_s'] * 1e3:.0f} ms")
    print(
        f"incremental refresh after a batch of {out['batch_events']:,} events ({out['incremental_rows']:,} signal "
        f"rows): {out['incremental_s']:.2f} s "
        f"({out['incremental_s'] / out['build_s']:.2f}x the full build); read of the two segments "
        f"{out['read_two_segments_s'] * 1e3:.2f} ms, ordered: {out['ordered_after_append']}"
    )
    if args.check:
        print(f"features from the incremental log equal the whole lake's: {out['equal_to_whole_lake']}")


if __name__ == "__main__":
    main()
