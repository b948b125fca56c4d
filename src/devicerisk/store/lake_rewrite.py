"""Row deletes in lake tables that rewrite only the files holding matching rows, in one Delta commit.

Delta's own ``delete`` (deltalake 1.4 to 1.6) rewrites string columns as ``string_view``, which
pyarrow cannot filter on afterwards (``no kernel matching input types (string, string_view)``): one
delete would break every later filtered read, ingest's deduplication included. So deletes that
rewrite are done here: the candidate files come from Delta's statistics (a pruning predicate), each
is read, filtered and written again with plain Arrow types by pyarrow, and the removes and adds are
committed together with ``create_write_transaction``. Readers see the old version or the new one.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake.transaction import AddAction, RemoveAction

from devicerisk.store.rows import mask_where, plain_strings

ACTION_KEY = "devicerisk.action"
STATS_COLUMNS = 32  # Delta's default number of columns with statistics (delta.dataSkippingNumIndexedCols)


def _stat(value: Any) -> Any:
    if isinstance(value, datetime):  # a time without a zone is UTC, as every lake time is (never local time)
        value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _has_stats(kind: pa.DataType) -> bool:
    return (
        pa.types.is_string(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_temporal(kind)
    )


def file_stats(table: pa.Table) -> str:
    """Delta statistics (row count, min, max, null count per column) of a file's rows, for data skipping."""
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    for field in list(table.schema)[:STATS_COLUMNS]:
        column = table.column(field.name)
        nulls[field.name] = column.null_count
        if _has_stats(field.type) and column.null_count < len(column):
            lo, hi = pc.min_max(column).values()
            mins[field.name], maxs[field.name] = _stat(lo.as_py()), _stat(hi.as_py())
    return json.dumps({"numRecords": table.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls})


#: Chooses candidate files from a table's add actions (flattened: ``partition.*``, ``min.*``, ``max.*``).
FileFilter = Callable[[pa.Table], pa.Array]
Pruning = str | FileFilter  # a SQL predicate for Delta's own pruning, or a filter over the add actions


def candidates(table: DeltaTable, pruning: Pruning) -> list[dict[str, Any]]:
    """Add actions of the files whose statistics say they may hold rows that ``pruning`` selects.

    A :data:`FileFilter` reads the add actions directly (about 10 ms for 3,000 files); a SQL predicate
    goes through Delta's own pruning (about 300 ms for the same files), for the cases no filter covers.
    """
    if isinstance(pruning, str):
        wanted = {Path(f.path).name for f in table.to_pyarrow_dataset(file_pruning_predicate=pruning).get_fragments()}
    else:
        flat = pa.table(table.get_add_actions(flatten=True))
        wanted = {Path(p).name for p in flat.filter(pruning(flat)).column("path").to_pylist()}
    columns = ["path", "size_bytes", "partition"] if table.metadata().partition_columns else ["path", "size_bytes"]
    actions = pa.table(table.get_add_actions(flatten=False)).select(columns)
    return [a for a in actions.to_pylist() if Path(a["path"]).name in wanted]


def partition_between(column: str, since: date | None, before: date) -> FileFilter:
    """Files of partitions ``since <= column < before``."""

    def keep(actions: pa.Table) -> pa.Array:
        values = actions.column(f"partition.{column}")
        inside = pc.less(values, pa.scalar(before, values.type))
        return inside if since is None else pc.and_(inside, pc.greater_equal(values, pa.scalar(since, values.type)))

    return keep


def may_hold(values: dict[str, frozenset[str]]) -> FileFilter:
    """Files whose min/max statistics admit one of ``values`` in its column (no statistics: admitted)."""

    def keep(actions: pa.Table) -> pa.Array:
        out = pa.array([False] * actions.num_rows, pa.bool_())
        for column, wanted in values.items():
            lo, hi = f"min.{column}", f"max.{column}"
            if lo not in actions.column_names or hi not in actions.column_names:
                return pa.array([True] * actions.num_rows, pa.bool_())
            low, high = actions.column(lo), actions.column(hi)
            for value in wanted:
                inside = pc.and_(pc.less_equal(low, value), pc.greater_equal(high, value))
                out = pc.or_(out, pc.fill_null(inside, False))
        return out

    return keep


def any_of(*filters: FileFilter) -> FileFilter:
    """Files any of ``filters`` admits."""

    def keep(actions: pa.Table) -> pa.Array:
        out = pa.array([False] * actions.num_rows, pa.bool_())
        for f in filters:
            out = pc.or_(out, f(actions))
        return out

    return keep


def _partition_strings(values: dict[str, Any] | None) -> dict[str, str | None]:
    return {k: None if v is None else _stat(v) for k, v in (values or {}).items()}


def _with_partitions(rows: pa.Table, values: dict[str, Any] | None, schema: pa.Schema) -> pa.Table:
    for name, value in (values or {}).items():
        rows = rows.append_column(name, pa.repeat(pa.scalar(value, schema.field(name).type), rows.num_rows))
    return rows


@dataclass(frozen=True, slots=True)
class _Rewritten:
    hits: int
    remove: RemoveAction | None = None
    add: AddAction | None = None
    size: int = 0


def _rewrite_file(root: Path, file: dict[str, Any], schema: pa.Schema, where: ds.Expression, now_ms: int) -> _Rewritten:
    """One file without the rows ``where`` selects: a new file beside it (none if no row is left)."""
    rows = plain_strings(pq.read_table(root / file["path"]))
    mask = mask_where(_with_partitions(rows, file.get("partition"), schema), where)
    hits = int(pc.sum(mask).as_py() or 0)
    if not hits:
        return _Rewritten(0)
    size, parts = int(file["size_bytes"]), _partition_strings(file.get("partition"))
    remove = RemoveAction(file["path"], True, now_ms, size, parts)
    kept = rows.filter(pc.invert(mask))
    if not kept.num_rows:
        return _Rewritten(hits, remove, None, size)
    name = str(Path(file["path"]).parent / f"part-{uuid.uuid4()}.zstd.parquet").removeprefix("./")
    pq.write_table(kept, root / name, compression="zstd")
    add = AddAction(name, (root / name).stat().st_size, parts, now_ms, True, file_stats(kept))
    return _Rewritten(hits, remove, add, size)


def rewrite_without(
    table: DeltaTable, root: Path, pruning: Pruning, where: ds.Expression, action: str
) -> tuple[int, int, int, int]:
    """Delete the rows matching ``where`` from the files ``pruning`` selects, in one commit.

    Files are rewritten on two threads (reading, filtering and compressing release the GIL).
    Returns (rows deleted, files removed, files added, bytes of the files rewritten).
    """
    schema = pa.schema(table.schema().to_arrow())
    now_ms = int(time.time() * 1000)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="rewrite") as pool:
        done = list(pool.map(lambda f: _rewrite_file(root, f, schema, where, now_ms), candidates(table, pruning)))
    actions: list[AddAction | RemoveAction] = [a for d in done for a in (d.remove, d.add) if a is not None]
    if actions:
        commit = CommitProperties(custom_metadata={ACTION_KEY: action})
        partition_by = table.metadata().partition_columns or None
        table.create_write_transaction(actions, "append", schema, partition_by=partition_by, commit_properties=commit)
    removed = [d for d in done if d.remove is not None]
    return sum(d.hits for d in done), len(removed), sum(d.add is not None for d in done), sum(d.size for d in removed)
