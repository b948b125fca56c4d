"""The lake: Delta Lake tables of treated data, partitioned by event date.

This module is the only code that writes lake files. Readers see committed versions only, so a
reader never sees a partial append. Each ingest commit carries its batch id and accounting in the
commit's metadata, which makes the append and its bookkeeping one atomic step.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import CommitProperties, DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import TableNotFoundError

log = logging.getLogger(__name__)

EVENTS = "events"
LABELS = "labels"
BATCH_KEY = "devicerisk.batch_id"
ACCOUNTING_KEY = "devicerisk.accounting"
#: How many recent commits to search for a batch that may have been committed before a crash.
RECOVERY_LOOKBACK = 200


def table_path(lake_dir: Path, name: str) -> Path:
    """Where the lake table ``name`` lives."""
    return lake_dir / name


def open_table(lake_dir: Path, name: str) -> DeltaTable | None:
    """The Delta table ``name``, or None if nothing has been written to it yet."""
    path = table_path(lake_dir, name)
    try:
        return DeltaTable(str(path))
    except TableNotFoundError:
        return None


def append(lake_dir: Path, name: str, data: pa.Table, batch_id: str, accounting: dict[str, Any]) -> int:
    """Append ``data`` in one commit tagged with the batch id and its accounting; returns the new version."""
    path = table_path(lake_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    props = CommitProperties(custom_metadata={BATCH_KEY: batch_id, ACCOUNTING_KEY: json.dumps(accounting)})
    table = open_table(lake_dir, name)
    write_deltalake(
        table if table is not None else str(path), data, mode="append", partition_by=["event_date"],
        schema_mode="merge",  # a column the contract added later (older files read it as null)
        commit_properties=props,
        writer_properties=WriterProperties(compression="ZSTD"),  # a third smaller than Snappy, as fast here
    )  # fmt: skip
    table = table if table is not None else DeltaTable(str(path))  # a table object follows its own writes
    log.debug("appended %d rows to %s at version %d", data.num_rows, name, table.version())
    return table.version()


def find_batch_commit(
    lake_dir: Path, name: str, batch_id: str, recent_only: bool = True
) -> tuple[int, dict[str, Any]] | None:
    """The version and accounting of a commit of ``batch_id`` among the last ``RECOVERY_LOOKBACK`` commits
    (or the whole history, when not ``recent_only``), if the lake has one."""
    table = open_table(lake_dir, name)
    if table is None:
        return None
    for entry in table.history(RECOVERY_LOOKBACK if recent_only else None):
        if entry.get(BATCH_KEY) == batch_id:
            return int(entry["version"]), json.loads(entry.get(ACCOUNTING_KEY, "{}"))
    return None


def dataset(lake_dir: Path, name: str) -> ds.Dataset | None:
    """A pyarrow dataset of the table's current version, for DuckDB and pandas readers."""
    table = open_table(lake_dir, name)
    return None if table is None else table.to_pyarrow_dataset()


def event_ids_on(lake_dir: Path, name: str, dates: Iterable[date], exclude_batch: str | None = None) -> pa.Array:
    """Event ids already in the lake on ``dates``, except those written by ``exclude_batch`` (if given)."""
    data = dataset(lake_dir, name)
    wanted = sorted(set(dates))
    if data is None or not wanted:
        return pa.array([], pa.string())
    predicate = ds.field("event_date").isin(pa.array(wanted, pa.date32()))
    if exclude_batch is not None:
        predicate &= ds.field("batch_id") != exclude_batch
    return data.to_table(columns=["event_id"], filter=predicate).column("event_id").combine_chunks()
