"""Parquet snapshot files outside the lake: serving snapshots and the training snapshots kept with models.

Any ``*.parquet`` file under the serving or models folder is a snapshot; rows are removed by
rewriting the file atomically (a temporary file, then a rename), so a reader sees the old file or
the new one. A reader that opened the old file keeps its bytes until it closes it; nothing else does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from devicerisk.store.files import write_atomic

RowMask = Callable[[pa.Table], pa.Array]


def files(root: Path) -> list[Path]:
    """Every snapshot file under ``root`` (files being written, named with a leading dot, are not)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*.parquet") if p.is_file() and not p.name.startswith("."))


def read(path: Path) -> pa.Table:
    """A snapshot's rows."""
    return pq.read_table(path)


def schema(path: Path) -> pa.Schema:
    """A snapshot's schema, without reading its rows."""
    return pq.read_schema(path)


def _write(path: Path, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    write_atomic(path, sink.getvalue().to_pybytes())


def remove_rows(path: Path, mask: RowMask) -> int:
    """Rewrite ``path`` without the rows ``mask`` selects; returns how many went (0: file untouched)."""
    table = read(path)
    selected = mask(table)
    gone = int(pc.sum(selected).as_py() or 0)
    if gone:  # the rewrite keeps the snapshot's age: its retention runs from when it was first written
        metadata = {**(table.schema.metadata or {}), _WRITTEN_AT: modified_at(path).isoformat().encode()}
        _write(path, table.filter(pc.invert(selected)).replace_schema_metadata(metadata))
    return gone


_WRITTEN_AT = b"devicerisk.written_at"


def modified_at(path: Path) -> datetime:
    """When a snapshot was first written (kept in its metadata by rewrites; else the file's modification time)."""
    recorded = (schema(path).metadata or {}).get(_WRITTEN_AT)
    if recorded is not None:
        return datetime.fromisoformat(recorded.decode())
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def remove_file(path: Path) -> int:
    """Delete a whole snapshot file; returns the rows it held."""
    rows = pq.ParquetFile(path).metadata.num_rows
    path.unlink()
    return rows
