"""An in-memory DuckDB per thread, used as a vectorised compute engine over Arrow data (not a store)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pyarrow as pa

_local = threading.local()


def connection() -> duckdb.DuckDBPyConnection:
    """This thread's in-memory DuckDB connection (created on first use, then reused)."""
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect(":memory:")
    return con


@contextmanager
def registered(**tables: pa.Table) -> Iterator[duckdb.DuckDBPyConnection]:
    """This thread's connection with ``tables`` registered under their names for the block."""
    con = connection()
    for name, table in tables.items():
        con.register(name, table)
    try:
        yield con
    finally:
        for name in tables:
            con.unregister(name)
