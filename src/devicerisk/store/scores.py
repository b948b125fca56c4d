"""Risk scores in the lake: Delta tables of transaction and account scores with model version and reasons.

Both tables carry ``account_id_pid`` and an ``event_date`` partition, like every lake table, so erasure and
purge find a subject's scores the same way as their events. Appends go through :mod:`devicerisk.store.lake`
(one commit per scoring run, tagged with the run id).
"""

from __future__ import annotations

from datetime import datetime
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


def last_scored_time(lake_dir: Path) -> datetime | None:
    """The newest transaction time already scored, or None before the first scoring run."""
    data = lake.dataset(lake_dir, TRANSACTION_SCORES)
    if data is None:
        return None
    times = data.to_table(columns=["event_time"]).column("event_time")
    newest = pc.max(times).as_py() if len(times) else None
    return newest


def read(lake_dir: Path, name: str) -> pa.Table | None:
    """A scores table, whole (for reports and tests)."""
    data = lake.dataset(lake_dir, name)
    return None if data is None else data.to_table()
