"""Warehouse state for retention and data-subject rights: legal holds, requests, watermarks, consent state.

The tables are declared in :mod:`devicerisk.store.warehouse` (its ``SCHEMA``); this module reads
and writes them, one transaction per call, with parameters only. Subjects are pseudonyms.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from devicerisk.store.warehouse import STATE_TABLES, connect

#: The column that dates each consent-state row.
STATE_TIME = {"consent_decisions": "decided_at", "cancellations": "cancelled_at", "age_declarations": "declared_at"}


@dataclass(frozen=True, slots=True)
class Hold:
    """A legal hold on one subject: purging their data is suspended until it is released or expires."""

    hold_id: str
    subject_pid: str
    reason: str
    owner: str
    created_at: datetime
    expires_at: datetime
    released_at: datetime | None = None
    swept_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.released_at is None and self.expires_at > now

    @property
    def ended_at(self) -> datetime:
        """When the hold ends, or ended: released, or expired."""
        return self.expires_at if self.released_at is None else min(self.released_at, self.expires_at)


@dataclass(slots=True)
class RequestRow:
    """A data-subject request as stored: its subject (pseudonyms), status and progress."""

    request_id: str
    kind: str
    subject: dict[str, Any]
    options: dict[str, Any]
    status: str
    received_at: datetime
    updated_at: datetime
    found: dict[str, int] | None = None
    done: list[str] = field(default_factory=list)
    deleted_at: datetime | None = None
    reason: str | None = None
    verification: dict[str, Any] | None = None  # method, who verified and when (6.4.2); no token, no identifier


_JSON_COLUMNS = ("subject", "options", "found", "done", "verification")


def _rows(con: Any, query: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(query, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# -- legal holds -------------------------------------------------------------------------------------
def add_hold(path: Path, hold: Hold) -> None:
    """Record a new hold; a hold id is used once."""
    with connect(path) as con:
        values = asdict(hold)
        con.execute(
            f"INSERT INTO legal_holds ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
            list(values.values()),
        )


def release_hold(path: Path, hold_id: str, when: datetime) -> Hold | None:
    """Release an active hold; returns it, or None if there is no such unreleased hold."""
    with connect(path) as con:
        found = _rows(con, "SELECT * FROM legal_holds WHERE hold_id = ? AND released_at IS NULL", [hold_id])
        if not found:
            return None
        con.execute("UPDATE legal_holds SET released_at = ? WHERE hold_id = ?", [when, hold_id])
    return Hold(**(found[0] | {"released_at": when}))


def holds(path: Path) -> list[Hold]:
    """Every hold, newest first."""
    with connect(path, read_only=True) as con:
        return [Hold(**row) for row in _rows(con, "SELECT * FROM legal_holds ORDER BY created_at DESC", [])]


def held_subjects(path: Path, now: datetime) -> frozenset[str]:
    """Pseudonyms of the subjects under an active hold at ``now``."""
    return frozenset(h.subject_pid for h in holds(path) if h.active(now))


def mark_swept(path: Path, hold_ids: list[str], when: datetime) -> None:
    """Note that the purge has caught up with the data these ended holds had kept."""
    if not hold_ids:
        return
    with connect(path) as con:
        con.executemany("UPDATE legal_holds SET swept_at = ? WHERE hold_id = ?", [[when, h] for h in hold_ids])


# -- data-subject requests ------------------------------------------------------------------------------
def get_request(path: Path, request_id: str) -> RequestRow | None:
    """The stored request, if any."""
    with connect(path, read_only=True) as con:
        rows = _rows(con, "SELECT * FROM subject_requests WHERE request_id = ?", [request_id])
    if not rows:
        return None
    row = rows[0]
    for key in _JSON_COLUMNS:
        row[key] = None if row[key] is None else json.loads(row[key])
    return RequestRow(**row)


def _put(con: Any, request: RequestRow) -> None:
    values = asdict(request)
    for key in _JSON_COLUMNS:
        values[key] = None if values[key] is None else json.dumps(values[key], sort_keys=True)
    con.execute("DELETE FROM subject_requests WHERE request_id = ?", [request.request_id])
    columns, marks = ", ".join(values), ", ".join("?" * len(values))
    con.execute(f"INSERT INTO subject_requests ({columns}) VALUES ({marks})", list(values.values()))


def put_request(path: Path, request: RequestRow) -> None:
    """Store the request's current state (insert or replace, in one transaction)."""
    with connect(path) as con:
        con.execute("BEGIN")
        _put(con, request)
        con.execute("COMMIT")


def requests(path: Path) -> list[RequestRow]:
    """Every request, newest first."""
    with connect(path, read_only=True) as con:
        ids = [
            r[0] for r in con.execute("SELECT request_id FROM subject_requests ORDER BY received_at DESC").fetchall()
        ]
    return [r for r in (get_request(path, i) for i in ids) if r is not None]


#: A finished request's subject once its record no longer needs it: no pseudonym, matching nobody.
FORGOTTEN: dict[str, Any] = {}
_FINISHED_BEFORE = "status IN ('completed', 'rejected') AND updated_at < ? AND subject::VARCHAR <> ?"


def forget_subjects(path: Path, before: datetime, dry_run: bool = False) -> int:
    """Empty the subject (pseudonyms) of requests finished before ``before``; returns how many (with ``dry_run``,
    how many would be). The rest of the record (kind, status, dates, counts) stays."""
    empty = json.dumps(FORGOTTEN)
    with connect(path, read_only=dry_run) as con:
        if dry_run:
            query = f"SELECT count(*) FROM subject_requests WHERE {_FINISHED_BEFORE}"
            return int(con.execute(query, [before, empty]).fetchall()[0][0])
        query = f"UPDATE subject_requests SET subject = ? WHERE {_FINISHED_BEFORE} RETURNING 1"
        return len(con.execute(query, [empty, before, empty]).fetchall())


# -- purge watermarks ---------------------------------------------------------------------------------------
def watermarks(path: Path) -> dict[tuple[str, str], date]:
    """(store, retention class) -> the date before which that store was last purged for that class."""
    with connect(path, read_only=True) as con:
        rows = con.execute("SELECT store, retention_class, purged_before FROM retention_watermarks").fetchall()
    return {(store, cls): day for store, cls, day in rows}


def set_watermarks(path: Path, marks: dict[tuple[str, str], date]) -> None:
    """Record how far the purge got, per (store, retention class)."""
    if marks:
        with connect(path) as con:
            con.executemany(
                "INSERT OR REPLACE INTO retention_watermarks VALUES (?, ?, ?)",
                [[store, cls, day] for (store, cls), day in marks.items()],
            )


def last_runs(path: Path) -> dict[str, datetime]:
    """Store -> when its last purge finished."""
    with connect(path, read_only=True) as con:
        return dict(con.execute("SELECT store, finished_at FROM retention_runs").fetchall())


def set_last_runs(path: Path, runs: dict[str, datetime]) -> None:
    """Record when each store's purge finished."""
    if runs:
        with connect(path) as con:
            con.executemany("INSERT OR REPLACE INTO retention_runs VALUES (?, ?)", [[s, t] for s, t in runs.items()])


# -- consent state of subjects ---------------------------------------------------------------------------------
def subject_state(path: Path, accounts: frozenset[str]) -> dict[str, pa.Table]:
    """The consent, cancellation and age rows of ``accounts``."""
    with connect(path, read_only=True) as con:
        return {
            name: con.sql(
                f"SELECT * EXCLUDE (batch_id) FROM {name} WHERE list_contains($accounts, account_pid)",
                params={"accounts": sorted(accounts)},
            ).to_arrow_table()
            for name in STATE_TABLES
        }


def delete_subject_state(path: Path, accounts: frozenset[str], keep_tables: tuple[str, ...] = ()) -> dict[str, int]:
    """Delete the state rows of ``accounts`` (except in ``keep_tables``); returns rows deleted per table."""
    counts: dict[str, int] = {}
    with connect(path) as con:
        con.execute("BEGIN")
        for name in STATE_TABLES:
            if name in keep_tables:
                continue
            row = con.execute(
                f"DELETE FROM {name} WHERE list_contains(?, account_pid) RETURNING 1", [sorted(accounts)]
            ).fetchall()
            counts[name] = len(row)
        con.execute("COMMIT")
    return counts


def record_state(path: Path, table_name: str, rows: pa.Table, batch_id: str) -> None:
    """Add state rows (a withdrawal, a cancellation, an age declaration) that a request decided."""
    if table_name not in STATE_TABLES:
        raise ValueError(f"not a consent-state table: {table_name}")
    with connect(path) as con:
        con.execute("BEGIN")
        con.execute(f"DELETE FROM {table_name} WHERE batch_id = ?", [batch_id])  # idempotent on a re-run
        con.register("state_rows", rows)
        con.execute(f"INSERT INTO {table_name} BY NAME SELECT *, ? AS batch_id FROM state_rows", [batch_id])
        con.unregister("state_rows")
        con.execute("COMMIT")


def purge_state(path: Path, cutoff: datetime, keep: frozenset[str], dry_run: bool = False) -> dict[str, int]:
    """Delete (or with ``dry_run`` count) rows dated before ``cutoff``: superseded consent state of subjects not
    in ``keep``, finished requests and ended holds.

    Ingest treats "no record" as allowed, so what it must keep honouring never goes: the latest consent
    decision per (account, purpose), the latest age declaration per account, and every cancellation.
    """
    verb = "SELECT 1 FROM" if dry_run else "DELETE FROM"
    tail = "" if dry_run else " RETURNING 1"
    counts: dict[str, int] = {}
    with connect(path, read_only=dry_run) as con:
        for name, key in _SUPERSEDED.items():
            column = STATE_TIME[name]
            superseded = (
                f"SELECT rid FROM (SELECT rowid AS rid, {column}, account_pid, row_number() OVER "
                f"(PARTITION BY {key} ORDER BY {column} DESC) AS newer FROM {name}) "
                f"WHERE newer > 1 AND {column} < ? AND NOT list_contains(?, account_pid)"
            )
            query = f"{verb} {name} WHERE rowid IN ({superseded}){tail}"
            counts[name] = len(con.execute(query, [cutoff, sorted(keep)]).fetchall())
        counts["cancellations"] = 0  # a cancellation (6.3) is honoured for as long as the account's data may come
        for name, condition in _CLOSED.items():  # finished requests and ended holds name subjects too
            counts[name] = len(con.execute(f"{verb} {name} WHERE {condition}{tail}", [cutoff]).fetchall())
    return counts


#: Consent-state tables whose older rows a newer row supersedes, and the key a newer row replaces.
_SUPERSEDED = {"consent_decisions": "account_pid, purpose", "age_declarations": "account_pid"}


#: Rows that are finished with, and the condition that makes one older than the cutoff (``?``).
_CLOSED = {
    "subject_requests": "updated_at < ? AND status IN ('completed', 'rejected')",
    "legal_holds": "least(coalesce(released_at, expires_at), expires_at) < ?",
}


def add_aggregates_for(path: Path, counts: pa.Table | None, request: RequestRow) -> None:
    """Add (event_date, event_type, events) counts to the anonymous aggregates and store the request's
    progress in the same transaction, so a re-run after a crash never counts twice."""
    with connect(path) as con:
        con.execute("BEGIN")
        if counts is not None and counts.num_rows:
            con.register("new_counts", counts)
            con.execute("""
                INSERT INTO anonymous_aggregates SELECT event_date, event_type, events FROM new_counts
                ON CONFLICT (event_date, event_type) DO UPDATE SET events = events + excluded.events""")
            con.unregister("new_counts")
        _put(con, request)
        con.execute("COMMIT")


def aggregates(path: Path) -> pa.Table:
    """The anonymous aggregates."""
    with connect(path, read_only=True) as con:
        return con.sql("SELECT * FROM anonymous_aggregates ORDER BY event_date, event_type").to_arrow_table()
