"""Deleting from, clustering and vacuuming lake tables: the lake's write paths besides ingest.

Every table under the lake folder is found by its ``_delta_log``, so tables added later (labels,
scores, features) are purged and erased the same way. Deletes are Delta commits: readers of an
older version keep reading it, and :func:`vacuum` removes the unreferenced files only after a grace
period. :func:`cluster` sorts each partition's rows by account into several files, so that the
per-file min/max statistics let a delete of one account skip the files that do not hold it.

Those statistics are in the log too: every add action records its file's smallest and largest
pseudonyms, so the log entries of files a delete removed still name the deleted subjects. Each delete
is therefore followed by a checkpoint (the table's state without them), and :func:`vacuum` deletes
the log entries and checkpoints older than the grace period that precede a checkpoint: the same grace
for the log as for the files, so no version older than it can be read any more.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, WriterProperties, write_deltalake

from devicerisk.store import lake_rewrite
from devicerisk.store.lake import open_table, table_path
from devicerisk.store.rows import ACCOUNT_COLUMN, literal

log = logging.getLogger(__name__)

PARTITION = "event_date"
ACTION_KEY = lake_rewrite.ACTION_KEY
_WRITER = WriterProperties(compression="ZSTD")
LOG = "_delta_log"
#: The table property by which Delta (here and in its post-commit hooks) expires log entries.
LOG_RETENTION = "delta.logRetentionDuration"


@dataclass(frozen=True, slots=True)
class DeleteOutcome:
    """What one delete commit did."""

    rows: int = 0
    files_removed: int = 0
    files_added: int = 0
    bytes_rewritten: int = 0  # bytes of the files that were read and written again

    def __add__(self, other: DeleteOutcome) -> DeleteOutcome:
        return DeleteOutcome(
            self.rows + other.rows,
            self.files_removed + other.files_removed,
            self.files_added + other.files_added,
            self.bytes_rewritten + other.bytes_rewritten,
        )


def tables(lake_dir: Path) -> list[str]:
    """Names of every Delta table in the lake."""
    if not lake_dir.is_dir():
        return []
    return sorted(p.name for p in lake_dir.iterdir() if (p / "_delta_log").is_dir())


def schema(lake_dir: Path, name: str) -> pa.Schema:
    """The Arrow schema of table ``name``."""
    table = _open(lake_dir, name)
    return pa.schema(table.schema().to_arrow())


_OPEN: dict[Path, DeltaTable] = {}  # tables this process has opened, brought up to date on each use


def _open(lake_dir: Path, name: str) -> DeltaTable:
    """The table at its latest version; reopening a large table's log costs a quarter second, updating it little."""
    path = table_path(lake_dir, name).resolve()
    table = _OPEN.get(path)
    if table is not None and (path / "_delta_log").is_dir():
        table.update_incremental()
        return table
    table = open_table(lake_dir, name)
    if table is None:
        raise FileNotFoundError(f"no lake table {name!r}")
    _OPEN[path] = table
    return table


def partitioned(lake_dir: Path, name: str) -> bool:
    """Whether the table is partitioned by event date."""
    return PARTITION in _open(lake_dir, name).metadata().partition_columns


def read_where(lake_dir: Path, name: str, where: ds.Expression, columns: list[str] | None = None) -> pa.Table:
    """The rows of the current version that match ``where`` (only ``columns``, if given)."""
    return _open(lake_dir, name).to_pyarrow_dataset().to_table(columns=columns, filter=where)


def count_where(lake_dir: Path, name: str, where: ds.Expression) -> int:
    """How many rows of the current version match ``where``."""
    return _open(lake_dir, name).to_pyarrow_dataset().count_rows(filter=where)


def _files(table: DeltaTable) -> pa.Table:
    return pa.table(table.get_add_actions(flatten=True))


def delete_where(
    lake_dir: Path, name: str, pruning: lake_rewrite.Pruning, where: ds.Expression, action: str
) -> DeleteOutcome:
    """Delete the rows matching ``where`` in one commit tagged ``action``, rewriting only the files that hold any.

    ``pruning`` chooses the candidate files from Delta's statistics (a SQL predicate, or a filter
    over the add actions); it must admit every file that holds a row ``where`` selects.
    """
    table = _open(lake_dir, name)
    rows, removed, added, rewritten = lake_rewrite.rewrite_without(
        table, table_path(lake_dir, name), pruning, where, action
    )
    if removed:
        log.info("%s: deleted %d rows from %s (%d files out, %d in)", action, rows, name, removed, added)
        _checkpoint(table)
    return DeleteOutcome(rows, removed, added, rewritten)


def _checkpoint(table: DeltaTable) -> None:
    """A checkpoint at the table's newest version: the state the log entries before it can be expired to."""
    table.update_incremental()
    table.create_checkpoint()


def checkpoint(lake_dir: Path, name: str) -> None:
    """Write a checkpoint of table ``name`` at its newest version (see :func:`vacuum`)."""
    _checkpoint(_open(lake_dir, name))


def drop_partitions(lake_dir: Path, name: str, predicate: str, action: str) -> DeleteOutcome:
    """Remove whole partitions selected by a ``predicate`` on partition columns only: a metadata commit."""
    metrics = _open(lake_dir, name).delete(
        predicate, commit_properties=CommitProperties(custom_metadata={ACTION_KEY: action})
    )
    if metrics.get("num_added_files"):  # a predicate on other columns would rewrite files, as string views
        raise ValueError("drop_partitions rewrote files: its predicate must name partition columns only")
    if metrics.get("num_removed_files"):
        _checkpoint(_open(lake_dir, name))
    return DeleteOutcome(int(metrics.get("num_deleted_rows") or 0), int(metrics.get("num_removed_files") or 0))


def vacuum(lake_dir: Path, name: str, grace: timedelta) -> int:
    """Remove the data files no version younger than ``grace`` needs, then the log entries older than ``grace``
    that precede a checkpoint (see :func:`expire_log`); returns how many data files were removed."""
    table = _open(lake_dir, name)
    hours = int(grace.total_seconds() // 3600)
    removed = table.vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False)
    expire_log(table, grace)
    return len(removed)


def expire_log(table: DeltaTable, grace: timedelta) -> None:
    """Delete the table's commit files and checkpoints that are older than ``grace`` and precede a checkpoint
    that is too: the versions a reader may still be reading stay readable, older ones are gone with their files.

    The table's log retention is set to ``grace`` first (one commit, the first time or when the setting changes),
    which Delta's own cleanup after automatic checkpoints then honours as well.
    """
    wanted = f"interval {int(grace.total_seconds())} seconds"
    if table.metadata().configuration.get(LOG_RETENTION) != wanted:
        table.alter.set_table_properties({LOG_RETENTION: wanted})
    table.cleanup_metadata()


def log_files(lake_dir: Path, name: str) -> list[Path]:
    """Every file of the table's ``_delta_log``: commits, checkpoints and their pointers."""
    return sorted(p for p in (table_path(lake_dir, name) / LOG).rglob("*") if p.is_file())


def log_file_names(path: Path, values: frozenset[str]) -> bool:
    """Whether a log file holds any of ``values`` (e.g. pseudonyms in the statistics of its add actions).

    Checkpoints are read as Parquet, so values in compressed columns are found; other files as text.
    """
    if not values:
        return False
    if path.suffix == ".parquet":
        text = json.dumps(pq.read_table(path).to_pylist(), default=str)
    else:
        text = path.read_bytes().decode(errors="replace")
    return any(value in text for value in values)


def data_files(lake_dir: Path, name: str) -> list[Path]:
    """Every Parquet file in the table's folder, referenced by the current version or not."""
    root = table_path(lake_dir, name)
    return sorted(p for p in root.rglob("*.parquet") if "_delta_log" not in p.parts)


def rows_in_file(path: Path, mask: Callable[[pa.Table], pa.Array], columns: list[str] | None = None) -> int:
    """How many rows of one Parquet file on disk ``mask`` selects (for completeness checks).

    ``columns`` limits the read to the columns the mask needs (those the file has).
    """
    if columns is not None:
        columns = [c for c in columns if c in pq.read_schema(path).names]
    return int(pc.sum(mask(pq.read_table(path, columns=columns))).as_py() or 0)


def oldest_added_since(lake_dir: Path, name: str, column: str, since: datetime) -> date | None:
    """The oldest ``column`` value (a date or time) in files added to the table after ``since``, from the
    add actions' partition values and statistics (no data file is read); ``None`` if none was added."""
    files = _files(_open(lake_dir, name))
    key = f"partition.{column}" if f"partition.{column}" in files.column_names else f"min.{column}"
    if key not in files.column_names or files.num_rows == 0:
        return None
    start = int(since.timestamp() * 1000)
    added = files.filter(pc.greater(files.column("modification_time"), start)).column(key)
    oldest = pc.min(added).as_py()
    return oldest.date() if isinstance(oldest, datetime) else oldest


def partition_dates(lake_dir: Path, name: str) -> list[date]:
    """The event dates that have files in the current version."""
    files = _files(_open(lake_dir, name))
    column = f"partition.{PARTITION}"
    return sorted(set(files.column(column).to_pylist())) if column in files.column_names else []


def unclustered_dates(lake_dir: Path, name: str, target_file_bytes: int) -> list[date]:
    """Partitions where a delete by account could not skip files.

    That is where files' account ranges overlap (several appends), or where a file is much larger
    than the clustering target (one append's unsorted rows).
    """
    files = _files(_open(lake_dir, name))
    lo, hi, part = f"min.{ACCOUNT_COLUMN}", f"max.{ACCOUNT_COLUMN}", f"partition.{PARTITION}"
    if not {lo, hi, part} <= set(files.column_names):
        return []
    spans: dict[date, list[tuple[str, str, int]]] = {}
    for row in files.select([part, lo, hi, "size_bytes"]).to_pylist():
        spans.setdefault(row[part], []).append((row[lo] or "", row[hi] or "", row["size_bytes"]))
    out = []
    for day, files_of_day in sorted(spans.items()):
        files_of_day.sort()
        overlap = any(files_of_day[i][0] < files_of_day[i - 1][1] for i in range(1, len(files_of_day)))
        too_big = len(files_of_day) == 1 and files_of_day[0][2] > 2 * target_file_bytes
        if overlap or too_big:  # an edge account may span two neighbouring files: that is no overlap
            out.append(day)
    return out


def cluster(lake_dir: Path, name: str, target_file_bytes: int, dates: list[date] | None = None) -> int:
    """Rewrite partitions sorted by account into files of about ``target_file_bytes``; returns how many.

    Each partition is replaced in its own commit (Delta's replace-where), so readers see the old or
    the new layout, and the bytes of the old files stay until :func:`vacuum`.
    """
    table = _open(lake_dir, name)
    days = unclustered_dates(lake_dir, name, target_file_bytes) if dates is None else dates
    for day in days:
        rows = table.to_pyarrow_dataset().to_table(filter=ds.field(PARTITION) == pa.scalar(day, pa.date32()))
        rows = rows.sort_by([(ACCOUNT_COLUMN, "ascending")])
        write_deltalake(
            table,
            rows,
            mode="overwrite",
            predicate=f"{PARTITION} = {literal(day)}",
            target_file_size=target_file_bytes,
            writer_properties=_WRITER,
            commit_properties=CommitProperties(custom_metadata={ACTION_KEY: "cluster"}),
        )
        table.update_incremental()
    return len(days)
