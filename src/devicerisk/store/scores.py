"""Risk scores in the lake: Delta tables of transaction and account scores with model version and reasons.

Both tables carry ``account_id_pid`` and an ``event_date`` partition, like every lake table, so erasure and
purge find a subject's scores the same way as their events. Appends go through :mod:`devicerisk.store.lake`
(one commit per scoring run, tagged with the run id).

Scores are written exactly once, however scoring runs overlap. Each append decides what to write on one
version of the table (the rows whose key it does not hold yet, unless the run's commit is already there) and
commits as the table's scoring writer, checked against that version: when another run's scores landed in
between, Delta refuses the commit and the append decides again on the newer version.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable

from devicerisk.store import lake

log = logging.getLogger(__name__)

TRANSACTION_SCORES = "transaction_scores"
ACCOUNT_SCORES = "account_scores"
#: What identifies a score in each table, besides the run's own commit (an account's score is one per run).
KEYS: dict[str, str | None] = {TRANSACTION_SCORES: "event_id", ACCOUNT_SCORES: None}
#: How many times an append decides again after other runs committed first.
ATTEMPTS = 50


def _not_scored(table: DeltaTable, scores: pa.Table, key: str | None) -> pa.Table:
    """The rows of ``scores`` whose key the table (at its loaded version) does not hold yet."""
    if key is None or scores.num_rows == 0:
        return scores
    days = pc.unique(scores.column("event_date"))
    held = table.to_pyarrow_dataset().to_table(columns=[key], filter=ds.field("event_date").isin(days))
    return scores.filter(pc.invert(pc.is_in(scores.column(key), value_set=held.column(key).combine_chunks())))


def append(lake_dir: Path, name: str, scores: pa.Table, run_id: str) -> pa.Table:
    """Append one run's scores exactly once: the rows no run has written yet (none if this run's commit is
    already there). Returns the rows this call wrote."""
    if scores.num_rows == 0:
        return scores
    for _ in range(ATTEMPTS):
        table = lake.open_table(lake_dir, name)
        table = table if table is not None else lake.create(lake_dir, name, scores.schema)
        if lake.find_batch_commit(lake_dir, name, run_id) is not None:
            return scores.slice(0, 0)
        fresh = _not_scored(table, scores, KEYS[name])
        if fresh.num_rows == 0:
            return fresh
        try:
            lake.append(
                lake_dir, name, fresh, run_id, {"rows": fresh.num_rows}, writer=f"devicerisk.{name}", read=table
            )
            return fresh
        except lake.ConcurrentWrite:
            log.info("%s: another scoring run committed first; deciding again on its result", name)
    raise RuntimeError(f"{name}: other scoring runs committed first {ATTEMPTS} times in a row; run again later")


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
