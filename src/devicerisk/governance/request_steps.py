"""The kinds of data-subject request, their steps in order, and what each step does to the stores.

:mod:`devicerisk.governance.requests` runs a request through its kind's :data:`STEPS`, recording each when done;
here each step is one function of ``(stores, request, subject, now)``: it returns False when the request cannot go
on yet (it waits for landing batches to be ingested, or for the vacuum grace period), the reason recorded by
:func:`wait`. Every step is idempotent, so a crash is finished by running it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum

import pyarrow as pa

from devicerisk.governance import access, entrusted_data, subject_data
from devicerisk.governance.stores import Stores
from devicerisk.store import governance
from devicerisk.store.governance import RequestRow
from devicerisk.store.rows import SubjectRows

log = logging.getLogger(__name__)


class RequestKind(StrEnum):
    ACCESS = "access"
    ERASURE = "erasure"
    CANCELLATION = "cancellation"
    WITHDRAWAL = "withdrawal"
    MINOR = "minor"


#: The kinds that delete the subject's data.
DELETING = (RequestKind.ERASURE, RequestKind.CANCELLATION, RequestKind.MINOR)
#: The steps that delete (a legal hold pauses a request before each).
DELETING_STEPS = ("landing", "lake", "snapshots", "entrust", "quarantine", "warehouse")
#: The steps of each kind, in order. "state" records what ingest must honour from now on.
STEPS: dict[RequestKind, tuple[str, ...]] = {
    RequestKind.ACCESS: ("export",),
    RequestKind.WITHDRAWAL: ("state",),
    RequestKind.ERASURE: ("landing", "lake", "snapshots", "entrust", "quarantine", "warehouse", "vacuum"),
    RequestKind.MINOR: ("state", "landing", "lake", "snapshots", "entrust", "quarantine", "warehouse", "vacuum"),
    RequestKind.CANCELLATION: (
        "state",
        "landing",
        "aggregate",
        "lake",
        "snapshots",
        "entrust",
        "quarantine",
        "warehouse",
        "vacuum",
    ),
}


def wait(stores: Stores, row: RequestRow, reason: str) -> bool:
    """Record why the request cannot go on yet; it resumes on a later run. Returns False (not done)."""
    row.reason = reason
    governance.put_request(stores.warehouse_path, row)
    log.info("request %s: %s", row.request_id, reason)
    return False


def _landing(stores: Stores, row: RequestRow, subject: SubjectRows, now: datetime) -> bool:
    _, waiting = subject_data.erase_landing(stores, subject, now)
    if waiting:
        return wait(stores, row, f"waiting for {waiting} landing batches holding the subject to be ingested")
    row.reason = None
    return True


def _export(stores: Stores, row: RequestRow, subject: SubjectRows, now: datetime) -> None:
    access.export(stores, row, subject, now)


def _state(stores: Stores, row: RequestRow, subject: SubjectRows, now: datetime) -> None:
    accounts = sorted(subject.accounts)
    batch = f"request:{row.request_id}"
    if row.kind == RequestKind.WITHDRAWAL:
        rows = {
            "account_pid": accounts,
            "purpose": [row.options["purpose"]] * len(accounts),
            "decided_at": [now] * len(accounts),
            "granted": [False] * len(accounts),
        }
        governance.record_state(stores.warehouse_path, "consent_decisions", pa.table(rows), batch)
    elif row.kind == RequestKind.CANCELLATION:
        rows = {"account_pid": accounts, "cancelled_at": [now] * len(accounts)}
        governance.record_state(stores.warehouse_path, "cancellations", pa.table(rows), batch)
    elif row.kind == RequestKind.MINOR:
        rows = {
            "account_pid": accounts,
            "declared_at": [now] * len(accounts),
            "minor": [True] * len(accounts),
            "guardian_consent": [False] * len(accounts),
        }
        governance.record_state(stores.warehouse_path, "age_declarations", pa.table(rows), batch)


def _aggregate(stores: Stores, row: RequestRow, subject: SubjectRows, now: datetime) -> None:
    counts = subject_data.event_counts(stores, subject) if row.options.get("mode") == "anonymise" else None
    row.done.append("aggregate")
    governance.add_aggregates_for(stores.warehouse_path, counts, row)


def _lake(stores: Stores, row: RequestRow, subject: SubjectRows, now: datetime) -> None:
    subject_data.erase_lake(stores, subject, f"request.{row.kind}")


def _snapshots(stores: Stores, row: RequestRow, subject: SubjectRows, now: datetime) -> None:
    subject_data.erase_snapshots(stores, subject)


def _entrust(stores: Stores, row: RequestRow, subject: SubjectRows, now: datetime) -> None:
    entrusted_data.erase_subject(stores, subject, row.request_id, now)


def _quarantine(stores: Stores, row: RequestRow, subject: SubjectRows, now: datetime) -> None:
    subject_data.erase_quarantine(stores, subject)


def _warehouse(stores: Stores, row: RequestRow, subject: SubjectRows, now: datetime) -> None:
    # What ingest must keep honouring stays: the cancellation (6.3) or the minor's declaration (7.2).
    keep = {RequestKind.CANCELLATION: ("cancellations",), RequestKind.MINOR: ("age_declarations",)}.get(
        RequestKind(row.kind), ()
    )
    if subject.accounts:
        governance.delete_subject_state(stores.warehouse_path, subject.accounts, keep_tables=keep)


def _vacuum(stores: Stores, row: RequestRow, subject: SubjectRows, now: datetime) -> bool:
    deleted = row.deleted_at or now
    if now - deleted < stores.grace:
        log.info("request %s waits for the vacuum grace period (until %s)", row.request_id, deleted + stores.grace)
        return False
    subject_data.vacuum_lake(stores, stores.grace)
    if left := subject_data.left_on_disk(stores, subject):  # files a reader may still need: try again later
        return wait(stores, row, f"{left} rows wait in files younger than the vacuum grace period")
    if logs := subject_data.left_in_logs(stores, subject):
        # No checkpoint after the deletes is old enough yet (or none was made: a crash after a delete). One made
        # now lets a later vacuum remove the log entries before it.
        subject_data.checkpoint_lake(stores, logs)
        return wait(
            stores,
            row,
            f"{sum(logs.values())} Delta log files of {', '.join(sorted(logs))} name the "
            "subject until they are older than the vacuum grace period",
        )
    row.reason = None
    return True


STEP_FUNCTIONS: dict[str, Callable[[Stores, RequestRow, SubjectRows, datetime], bool | None]] = {
    "export": _export,
    "state": _state,
    "aggregate": _aggregate,
    "landing": _landing,
    "lake": _lake,
    "snapshots": _snapshots,
    "entrust": _entrust,
    "quarantine": _quarantine,
    "warehouse": _warehouse,
    "vacuum": _vacuum,
}
