"""Risk scores in the lake: Delta tables of transaction and account scores with model version and reasons.

Both tables carry ``account_id_pid`` and an ``event_date`` partition, like every lake table, so erasure and
purge find a subject's scores the same way as their events. Appends go through :mod:`devicerisk.store.lake`
(one commit per scoring run, tagged with the run id).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.store import lake

TRANSACTION_SCORES = "transaction_scores"
ACCOUNT_SCORES = "account_scores"


def append(lake_dir: Path, name: str, scores: pa.Table, run_id: str) -> int | None:
    """Append one run's scores (skipped when empty or already committed); returns the table version."""
    if scores.num_rows == 0:
        return None
    done = lake.find_batch_commit(lake_dir, name, run_id)
    if done is not None:
        return done[0]
    return lake.append(lake_dir, name, scores, run_id, {"rows": scores.num_rows})


def unscored_transactions(lake_dir: Path) -> pa.Table:
    """``event_id`` and ``event_time`` of the lake's transactions that have no score yet (an anti-join on event id).

    Transactions without an account are never scored (they have no account history), so they are not listed.
    """
    events = lake.dataset(lake_dir, lake.EVENTS)
    if events is None:
        return pa.table({"event_id": pa.array([], pa.string()), "event_time": pa.array([], pa.timestamp("us", "UTC"))})
    scorable = (pc.field("event_type") == "transaction") & pc.field("account_id_pid").is_valid()
    todo = events.to_table(columns=["event_id", "event_time"], filter=scorable)
    done = lake.dataset(lake_dir, TRANSACTION_SCORES)
    if done is None:
        return todo
    scored = done.to_table(columns=["event_id"]).column("event_id").combine_chunks()
    return todo.filter(pc.invert(pc.is_in(todo.column("event_id"), value_set=scored)))


def read(lake_dir: Path, name: str) -> pa.Table | None:
    """A scores table, whole (for reports and tests)."""
    data = lake.dataset(lake_dir, name)
    return None if data is None else data.to_table()


def level_counts(lake_dir: Path, name: str, latest_only: str | None = None) -> dict[str, int]:
    """Rows per level in a scores table (of its newest ``latest_only`` value alone, e.g. ``as_of``)."""
    data = lake.dataset(lake_dir, name)
    if data is None:
        return {}
    table = data.to_table(columns=["level"] + ([latest_only] if latest_only else []))
    if latest_only and table.num_rows:
        newest = pc.max(table.column(latest_only))
        table = table.filter(pc.equal(table.column(latest_only), newest))
    counts = table.group_by("level").aggregate([("level", "count")])
    return dict(zip(counts.column("level").to_pylist(), counts.column("level_count").to_pylist(), strict=True))
