"""Serving snapshots: the latest scores as Parquet files for the lookup service, published atomically.

A snapshot is written to a temporary file in the same folder, flushed and fsynced, then renamed over
the published name (and the folder fsynced), so a reader opens either the previous complete file or
the new complete file, never a partial one. Every snapshot has an ``account_id_pid`` column. Scoring runs
that overlap publish one at a time (:func:`publish_latest`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from devicerisk.store.files import locked, write_atomic

TRANSACTIONS = "transaction_risk"
ACCOUNTS = "account_risk"
DEVICES = "device_risk"
#: Every snapshot a lookup reads.
SNAPSHOTS = (ACCOUNTS, TRANSACTIONS, DEVICES)


def path_of(serving_dir: Path, name: str) -> Path:
    return serving_dir / f"{name}.parquet"


def publish(serving_dir: Path, name: str, table: pa.Table) -> Path:
    """Replace the snapshot ``name`` with ``table`` atomically."""
    if "account_id_pid" not in table.column_names:
        raise ValueError("a serving snapshot must carry account_id_pid")
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    path = path_of(serving_dir, name)
    write_atomic(path, sink.getvalue().to_pybytes(), mode=0o640)
    fd = os.open(serving_dir, os.O_RDONLY)  # make the rename itself durable
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def publish_latest(serving_dir: Path, name: str, build: Callable[[], pa.Table | None]) -> Path | None:
    """Publish the snapshot ``name`` that ``build`` makes (nothing if it returns None), holding the serving
    folder's lock from the read to the rename: publishers take turns, so the snapshot published last was built
    from the newest data, and two of them never write the same temporary file."""
    with locked(serving_dir):
        table = build()
        return None if table is None else publish(serving_dir, name, table)


def read(serving_dir: Path, name: str) -> pa.Table | None:
    """The published snapshot ``name``, or None if none was published yet."""
    path = path_of(serving_dir, name)
    return pq.read_table(path) if path.exists() else None
