"""The lake: Delta Lake tables of treated data, partitioned by event date.

This module appends to the lake and creates its tables; the other writes are its siblings':
``lake_maintenance.py`` (deletes, clustering, vacuum) and ``lake_rewrite.py`` (file-level row deletes).
No code outside these three writes lake files. Readers see committed versions only, so a reader never
sees a partial append. Each ingest commit carries its batch id and accounting in the
commit's metadata, which makes the append and its bookkeeping one atomic step.

A lake is a local folder, or an :class:`ObjectStore` (S3-compatible object storage, through ``deltalake``'s
storage options): the functions here take either.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

log = logging.getLogger(__name__)

EVENTS = "events"
LABELS = "labels"
BATCH_KEY = "devicerisk.batch_id"
ACCOUNTING_KEY = "devicerisk.accounting"
#: How many recent commits to search for a batch that may have been committed before a crash.
RECOVERY_LOOKBACK = 200


@dataclass(frozen=True, slots=True)
class ObjectStore:
    """A lake in S3-compatible object storage: its base URI (``s3://bucket/prefix``) and ``deltalake``'s storage
    options (endpoint, region, ``AWS_ALLOW_HTTP``...; credentials are better left to the standard AWS_*
    environment, which ``deltalake`` reads too). The options are never shown."""

    uri: str
    options: Mapping[str, str] = field(default_factory=dict, repr=False)


Lake = Path | ObjectStore


def table_path(lake_dir: Lake, name: str) -> Path | str:
    """Where the lake table ``name`` lives: a folder, or an object-store URI."""
    if isinstance(lake_dir, ObjectStore):
        return f"{lake_dir.uri.rstrip('/')}/{name}"
    return lake_dir / name


def _options(lake_dir: Lake) -> dict[str, str] | None:
    return dict(lake_dir.options) if isinstance(lake_dir, ObjectStore) else None


def _ensure_parent(path: Path | str) -> None:
    if isinstance(path, Path):  # object storage has no folders to create
        path.parent.mkdir(parents=True, exist_ok=True)


def open_table(lake_dir: Lake, name: str) -> DeltaTable | None:
    """The Delta table ``name``, or None if nothing has been written to it yet."""
    path = table_path(lake_dir, name)
    try:
        return DeltaTable(str(path), storage_options=_options(lake_dir))
    except TableNotFoundError:
        return None


class ConcurrentWrite(RuntimeError):
    """Another commit of the same writer landed after the table version that this append was decided on."""


def create(lake_dir: Lake, name: str, schema: pa.Schema) -> DeltaTable:
    """The table ``name``, created empty (partitioned by event date) unless it exists; safe to race."""
    path, options = table_path(lake_dir, name), _options(lake_dir)
    _ensure_parent(path)
    with contextlib.suppress(DeltaError):  # another process created it first
        DeltaTable.create(str(path), schema, mode="ignore", partition_by=["event_date"], storage_options=options)
    return DeltaTable(str(path), storage_options=options)


def append(
    lake_dir: Lake,
    name: str,
    data: pa.Table,
    batch_id: str,
    accounting: dict[str, Any],
    *,
    writer: str | None = None,
    read: DeltaTable | None = None,
) -> int:
    """Append ``data`` in one commit tagged with the batch id and its accounting; returns the new version.

    With ``writer``, the commit also records Delta's application transaction ``writer``, and it is checked
    against ``read``, the version of the table the caller decided what to append on: if a commit of the same
    writer landed since, nothing is written and :class:`ConcurrentWrite` is raised, so the caller decides
    again on the newer version. Appends of one writer are thereby serialised, however processes overlap.
    """
    path, options = table_path(lake_dir, name), _options(lake_dir)
    _ensure_parent(path)
    table = read if read is not None else open_table(lake_dir, name)
    claims = None
    if writer is not None:
        if table is None:
            raise ValueError("a conflict-checked append needs the table version it was decided on")
        claims = [Transaction(writer, table.version() + 1)]
    props = CommitProperties(
        custom_metadata={BATCH_KEY: batch_id, ACCOUNTING_KEY: json.dumps(accounting)}, app_transactions=claims
    )
    try:
        write_deltalake(
            table if table is not None else str(path),
            data,
            mode="append",
            partition_by=["event_date"],
            schema_mode="merge",  # a column the contract added later (older files read it as null)
            commit_properties=props,
            writer_properties=WriterProperties(compression="ZSTD"),  # a third smaller than Snappy, as fast here
            storage_options=options if table is None else None,  # a table object carries its own
        )
    except CommitFailedError as err:
        if writer is None:
            raise
        raise ConcurrentWrite(f"{name}: another {writer} commit landed first ({err})") from err
    table = table if table is not None else DeltaTable(str(path), storage_options=options)  # follows its writes
    log.debug("appended %d rows to %s at version %d", data.num_rows, name, table.version())
    return table.version()


def find_batch_commit(
    lake_dir: Lake, name: str, batch_id: str, recent_only: bool = True
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


def dataset(lake_dir: Lake, name: str) -> ds.Dataset | None:
    """A pyarrow dataset of the table's current version, for DuckDB and pandas readers."""
    table = open_table(lake_dir, name)
    return None if table is None else table.to_pyarrow_dataset()


def pinned(lake_dir: Lake, name: str) -> tuple[int, ds.Dataset] | None:
    """The table's current version and a dataset of exactly that version (its file list is fixed): a snapshot
    that later commits do not change, readable until a vacuum removes its files (after the grace period)."""
    table = open_table(lake_dir, name)
    return None if table is None else (table.version(), table.to_pyarrow_dataset())


def still_held(lake_dir: Lake, name: str, column: str, values: pa.Array, dates: Iterable[date]) -> pa.Array:
    """Those of ``values`` that rows of the table's current version on ``dates`` still hold in ``column``: what a
    deletion (an erasure) since an earlier read has not taken away."""
    data = dataset(lake_dir, name)
    wanted = sorted(set(dates))
    if data is None or not wanted or len(values) == 0:
        return pa.array([], values.type)
    predicate = ds.field("event_date").isin(pa.array(wanted, pa.date32())) & ds.field(column).isin(values)
    return pc.unique(data.to_table(columns=[column], filter=predicate).column(column).combine_chunks())


def event_ids_on(lake_dir: Lake, name: str, dates: Iterable[date], exclude_batch: str | None = None) -> pa.Array:
    """Event ids already in the lake on ``dates``, except those written by ``exclude_batch`` (if given)."""
    data = dataset(lake_dir, name)
    wanted = sorted(set(dates))
    if data is None or not wanted:
        return pa.array([], pa.string())
    predicate = ds.field("event_date").isin(pa.array(wanted, pa.date32()))
    if exclude_batch is not None:
        predicate &= ds.field("batch_id") != exclude_batch
    return data.to_table(columns=["event_id"], filter=predicate).column("event_id").combine_chunks()
