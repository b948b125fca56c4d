"""Reading a lake table's Parquet files with DuckDB's own scanner, pinned to one Delta version.

``lake.dataset`` materialises rows through pyarrow; for the wide events table DuckDB reads the same
files faster, in parallel, and only the columns and row groups a query touches. The file list comes
from one Delta snapshot (``DeltaTable.file_uris``), pruned by the ``event_date`` partition, so every
query of a run sees the same table version however many commits land meanwhile.

A table whose protocol DuckDB's plain Parquet reader cannot honour (deletion vectors, column mapping)
or whose files lack a wanted column is read through the Delta dataset instead: same rows, slower.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from deltalake import DeltaTable

from devicerisk.store import lake

#: Delta reader features whose rows a plain Parquet scan would get wrong.
_UNSUPPORTED_READER_FEATURES = {"deletionVectors", "columnMapping"}


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version of a lake table from event date ``since`` on: its Parquet files and its Delta dataset."""

    name: str
    version: int
    files: tuple[str, ...]  # empty when the files cannot be scanned natively (or none is that recent)
    dataset: ds.Dataset  # the same version through deltalake: the slow path
    since: date | None = None

    def register(self, con: duckdb.DuckDBPyConnection, view: str, columns: Sequence[str]) -> None:
        """Make ``view`` on ``con`` the snapshot's ``columns`` (a lazy scan: queries push filters into it)."""
        if self.files:
            relation = con.read_parquet(list(self.files), union_by_name=True)
            if set(columns) <= set(relation.columns):
                relation.select(*columns).create_view(view, replace=True)
                return
        con.register(view, self.table(columns))

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """The oldest and newest ``event_time`` in the snapshot (None, None when it holds no row)."""
        con = duckdb.connect(":memory:")
        try:
            self.register(con, "snap", ["event_time"])
            oldest, newest = con.execute("SELECT min(event_time), max(event_time) FROM snap").fetchall()[0]
            return oldest, newest
        finally:
            con.close()

    def table(self, columns: Sequence[str]) -> pa.Table:
        """The snapshot's ``columns`` as an Arrow table, read through the Delta dataset."""
        flt = None if self.since is None else ds.field("event_date") >= pa.scalar(self.since)
        return self.dataset.to_table(columns=list(columns), filter=flt)


def _native(table: DeltaTable) -> bool:
    features = set(table.protocol().reader_features or ())
    mapping = table.metadata().configuration.get("delta.columnMapping.mode", "none")
    return not (features & _UNSUPPORTED_READER_FEATURES) and mapping == "none"


def snapshot(lake_dir: Path, name: str, since: date | None = None, version: int | None = None) -> Snapshot | None:
    """Table ``name`` at ``version`` (default: the current one) with its files from event date ``since`` on.

    None when the table does not exist yet.
    """
    table = lake.open_table(lake_dir, name)
    if table is None:
        return None
    if version is not None and version != table.version():
        table = DeltaTable(str(lake.table_path(lake_dir, name)), version=version)
    pruning = None if since is None else [("event_date", ">=", since)]
    files = tuple(table.file_uris(file_pruning_predicate=pruning)) if _native(table) else ()
    return Snapshot(name, table.version(), files, table.to_pyarrow_dataset(), since)
