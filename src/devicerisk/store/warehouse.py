"""The warehouse: a DuckDB file of small mutable state (batch ledger, consent state, holds, requests).

One writer at a time: every call opens the file, does its work in one transaction and closes it; a
read-write connection holds the writer lock of :mod:`devicerisk.store.writer`, so writers in other
processes wait for it instead of failing on DuckDB's own lock.
SQL takes parameters; it is never built from input strings. Nothing here holds a raw identifier:
accounts appear only as pseudonyms.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from devicerisk.store import writer

SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_ledger (
    batch_id VARCHAR PRIMARY KEY,
    file_name VARCHAR NOT NULL,
    lake_version BIGINT,
    records_read BIGINT NOT NULL,
    accepted BIGINT NOT NULL,
    quarantined BIGINT NOT NULL,
    consent_dropped BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    reasons JSON NOT NULL,
    note VARCHAR,
    committed_at TIMESTAMPTZ NOT NULL,
    landing_removed_at TIMESTAMPTZ,
    file_bytes BIGINT
);
-- Warehouses created before the ledger recorded file sizes gain the column.
ALTER TABLE batch_ledger ADD COLUMN IF NOT EXISTS file_bytes BIGINT;
-- Why a file could not be ingested at all (it was set aside); null for a committed batch.
ALTER TABLE batch_ledger ADD COLUMN IF NOT EXISTS failure VARCHAR;
CREATE TABLE IF NOT EXISTS consent_decisions (
    account_pid VARCHAR NOT NULL, purpose VARCHAR NOT NULL, decided_at TIMESTAMPTZ NOT NULL,
    granted BOOLEAN NOT NULL, batch_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS cancellations (
    account_pid VARCHAR NOT NULL, cancelled_at TIMESTAMPTZ NOT NULL, batch_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS age_declarations (
    account_pid VARCHAR NOT NULL, declared_at TIMESTAMPTZ NOT NULL, minor BOOLEAN NOT NULL,
    guardian_consent BOOLEAN NOT NULL, batch_id VARCHAR NOT NULL
);
-- Legal holds (2.9(4), 4.5(4)) suspend purging of a subject's data until released or expired.
CREATE TABLE IF NOT EXISTS legal_holds (
    hold_id VARCHAR PRIMARY KEY, subject_pid VARCHAR NOT NULL, reason VARCHAR NOT NULL, owner VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ NOT NULL, released_at TIMESTAMPTZ,
    swept_at TIMESTAMPTZ
);
-- Data-subject requests and their progress; subjects appear as pseudonyms only.
CREATE TABLE IF NOT EXISTS subject_requests (
    request_id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, subject JSON NOT NULL, options JSON NOT NULL,
    status VARCHAR NOT NULL, received_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL,
    found JSON, done JSON NOT NULL DEFAULT '[]', deleted_at TIMESTAMPTZ, reason VARCHAR
);
-- How the requester's identity was verified (6.4.2): method, who, when; never a token or an identifier.
-- Warehouses made before it gain the column; their requests have none, so they do not go past verified.
ALTER TABLE subject_requests ADD COLUMN IF NOT EXISTS verification JSON;
-- How far each daily purge got, so the next one starts there instead of rescanning the past.
CREATE TABLE IF NOT EXISTS retention_watermarks (
    store VARCHAR NOT NULL, retention_class VARCHAR NOT NULL, purged_before DATE NOT NULL,
    PRIMARY KEY (store, retention_class)
);
-- When each lake table's last purge finished: files added after it may hold late rows below the watermark.
CREATE TABLE IF NOT EXISTS retention_runs (store VARCHAR PRIMARY KEY, finished_at TIMESTAMPTZ NOT NULL);
-- What anonymised accounts leave behind (6.3): event counts per day and type, linked to no account.
CREATE TABLE IF NOT EXISTS anonymous_aggregates (
    event_date DATE NOT NULL, event_type VARCHAR NOT NULL, events BIGINT NOT NULL,
    PRIMARY KEY (event_date, event_type)
);
"""

STATE_TABLES = ("consent_decisions", "cancellations", "age_declarations")


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One processed batch and its accounting, or a file that failed (``failure`` says why; nothing was kept)."""

    batch_id: str
    file_name: str
    lake_version: int | None
    records_read: int
    accepted: int
    quarantined: int
    consent_dropped: int
    duplicates: int
    reasons: dict[str, int]
    note: str | None
    committed_at: datetime
    landing_removed_at: datetime | None = None
    file_bytes: int | None = None
    failure: str | None = None

    @property
    def committed(self) -> bool:
        """Whether the batch went through (a failed file is tried again if it lands again)."""
        return self.failure is None


_READY: set[Path] = set()  # files whose schema this process has already put in place


@contextmanager
def connect(path: Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse with its schema in place (a read-write one holds the writer lock)."""
    path = path.resolve()
    if path not in _READY or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with writer.hold(path):
            con = duckdb.connect(str(path))
            try:
                con.execute(SCHEMA)
            finally:
                con.close()
        _READY.add(path)
    with nullcontext() if read_only else writer.hold(path):
        con = duckdb.connect(str(path), read_only=read_only)
        try:
            yield con
        finally:
            con.close()


Target = Path | duckdb.DuckDBPyConnection  # a warehouse file, or a connection already open on it


@contextmanager
def _using(target: Target, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """An open connection: the caller's, or a new one closed afterwards."""
    if isinstance(target, duckdb.DuckDBPyConnection):
        yield target
    else:
        with connect(target, read_only) as con:
            yield con


def ledger_entry(target: Target, batch_id: str) -> LedgerEntry | None:
    """The ledger entry of ``batch_id``, if it was committed."""
    with _using(target, read_only=True) as con:
        # fetch to the end: the connection may be used for more work (a failed batch is tried again)
        rows = con.execute("SELECT * FROM batch_ledger WHERE batch_id = ?", [batch_id]).fetchall()
        if not rows:
            return None
        row, names = rows[0], [d[0] for d in con.description]
    values = dict(zip(names, row, strict=True))
    values["reasons"] = json.loads(values["reasons"])
    return LedgerEntry(**values)


def seen_files(target: Target) -> set[tuple[str, int]]:
    """(file name, size) of every ingested landing file: a cheap first test of whether a file is new."""
    with _using(target, read_only=True) as con:
        rows = con.execute(
            "SELECT file_name, file_bytes FROM batch_ledger WHERE file_bytes IS NOT NULL AND failure IS NULL"
        ).fetchall()
    return {(name, size) for name, size in rows}


def ledger(path: Path, *, from_copy: bool = False) -> pa.Table:
    """The whole batch ledger, oldest first; ``from_copy``: read from a copy (:func:`read_copy`), so a reader
    outside the flows never waits for a writer, nor makes one wait."""
    if from_copy:
        table = read_copy(path, ["batch_ledger"])["batch_ledger"]
        return table.sort_by([("committed_at", "ascending"), ("batch_id", "ascending")])
    with connect(path, read_only=True) as con:
        return con.sql("SELECT * FROM batch_ledger ORDER BY committed_at, batch_id").to_arrow_table()


def consent_state(target: Target) -> dict[str, pa.Table]:
    """The consent, cancellation and age tables, for the consent filter."""
    with _using(target, read_only=True) as con:
        return {name: con.sql(f"SELECT * EXCLUDE (batch_id) FROM {name}").to_arrow_table() for name in STATE_TABLES}


def commit_batch(target: Target, entry: LedgerEntry, state_updates: dict[str, pa.Table]) -> None:
    """Record a batch's accounting and its consent-state updates in one transaction (idempotent)."""
    with _using(target) as con:
        con.execute("BEGIN")
        try:
            con.execute("DELETE FROM batch_ledger WHERE batch_id = ?", [entry.batch_id])
            values = asdict(entry) | {"reasons": json.dumps(entry.reasons)}
            columns = ", ".join(values)
            con.execute(
                f"INSERT INTO batch_ledger ({columns}) VALUES ({', '.join('?' * len(values))})", list(values.values())
            )
            for name in STATE_TABLES:
                con.execute(f"DELETE FROM {name} WHERE batch_id = ?", [entry.batch_id])
                update = state_updates.get(name)
                if update is not None and update.num_rows:
                    con.register("state_update", update)
                    con.execute(
                        f"INSERT INTO {name} BY NAME SELECT *, ? AS batch_id FROM state_update", [entry.batch_id]
                    )
                    con.unregister("state_update")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def record_failure(target: Target, batch_id: str, file_name: str, failure: str, when: datetime) -> bool:
    """Record a file that could not be ingested at all: a ledger row that says why, with nothing accepted.

    A batch already committed keeps its row (returns False): a failure after the commit loses nothing.
    """
    with _using(target) as con:
        done = ledger_entry(con, batch_id)
        if done is not None and done.committed:
            return False
        entry = LedgerEntry(batch_id, file_name, None, 0, 0, 0, 0, 0, {}, None, when, failure=failure)
        commit_batch(con, entry, {})
    return True


def mark_landing_removed(path: Path, batch_ids: list[str], when: datetime) -> None:
    """Note that the raw landing files of these batches have been deleted."""
    with connect(path) as con:
        con.executemany(
            "UPDATE batch_ledger SET landing_removed_at = ? WHERE batch_id = ?", [[when, b] for b in batch_ids]
        )


def summary(path: Path) -> dict[str, Any]:
    """Totals over the whole ledger."""
    with connect(path, read_only=True) as con:
        row = con.execute(
            "SELECT count(*), coalesce(sum(records_read), 0), coalesce(sum(accepted), 0), "
            "coalesce(sum(quarantined), 0), coalesce(sum(consent_dropped), 0), coalesce(sum(duplicates), 0) "
            "FROM batch_ledger"
        ).fetchone()
    assert row is not None
    keys = ("batches", "records_read", "accepted", "quarantined", "consent_dropped", "duplicates")
    return dict(zip(keys, (int(v) for v in row), strict=True))


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, modification time in ns) of a file, None when it is missing: what a write changes."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def read_copy(path: Path, tables: Sequence[str], attempts: int = 100) -> dict[str, pa.Table]:
    """``tables`` of the warehouse as of one moment, read from a private copy of its files (the database and
    its write-ahead log) without ever opening the warehouse itself: no lock is taken, so no writer waits.

    The copy is kept only when neither file changed while it was made (a writer committed meanwhile: it is
    made again). Such a copy is what a crash at that moment would have left, which DuckDB recovers from. A
    warehouse that does not exist yet reads as empty tables of its schema.
    """
    wal = path.with_name(path.name + ".wal")
    with tempfile.TemporaryDirectory(prefix="warehouse-copy-") as tmp:
        copy = Path(tmp) / path.name
        for _ in range(attempts):
            before = (_stamp(path), _stamp(wal))
            if before[0] is not None:
                shutil.copyfile(path, copy)
                if before[1] is not None:
                    shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
            if (_stamp(path), _stamp(wal)) == before:
                break
            for stale in Path(tmp).iterdir():
                stale.unlink()
            time.sleep(0.05)
        else:
            raise TimeoutError(f"the warehouse changed during each of {attempts} copies; try again")
        if not all(name.isidentifier() for name in tables):
            raise ValueError(f"not a table name: {tables}")
        con = duckdb.connect(str(copy) if copy.exists() else ":memory:")
        try:
            con.execute(SCHEMA)  # a warehouse of an older schema gains the newer columns, in the copy only
            return {name: con.sql(f"SELECT * FROM {name}").to_arrow_table() for name in tables}
        finally:
            con.close()
