"""Data-subject requests: access (6.2.1), erasure (6.2.2), cancellation (6.3), consent withdrawal (6.1), minors (7.2).

A request moves received -> verified -> in progress -> completed, or to rejected. It is verified only with a
record of how the requester's identity was checked (6.4.2, :mod:`devicerisk.governance.verification`): a
request without one, or with a forged, expired or misdirected token, is recorded as rejected with the reason
(and no subject: nobody was verified) and audited, before any store is searched. Submitting the same
request (kind, options, the subject's pseudonyms) again resumes it while it is unfinished, and is
refused as a duplicate for a short window after it completed; later it is a new request, with its own
id (derived from the same and the time received): a subject may ask again, e.g. to erase data
collected since, or to withdraw again after a re-grant. Each step is idempotent
and recorded in the warehouse when done, so a crash at any point is finished by the next run.
Counts are taken at verification, so a receipt reports what was held even if a run was interrupted
after deleting and before recording. Erasures end with a vacuum: the request stays in progress
until the grace period for running readers has passed and the old files are gone, and with them
the Delta log entries whose statistics named the subject. A finished request keeps the subject's
pseudonyms for :data:`SUBJECT_KEPT` only, to recognise a resubmission; the retention purge then
empties them. The receipt counts what was held, and says what remains. The kinds, their steps and what each
step does to the stores are in :mod:`devicerisk.governance.request_steps`; this module runs them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from devicerisk.contract.fields import EVENT_TYPES
from devicerisk.governance import access, entrusted_data, subject_data
from devicerisk.governance.request_steps import DELETING, DELETING_STEPS, STEP_FUNCTIONS, STEPS, RequestKind, wait
from devicerisk.governance.stores import Stores
from devicerisk.governance.subjects import Identifiers, UnknownSubjectError, from_json, resolve, to_json
from devicerisk.governance.verification import Claim, Record, Unverified, check
from devicerisk.store import audit, governance, request_files, writer
from devicerisk.store.governance import RequestRow
from devicerisk.store.rows import TRANSACTION_COLUMN, SubjectRows

log = logging.getLogger(__name__)

Checkpoint = Callable[[str], None]
PURPOSES = tuple(sorted({e.purpose for e in EVENT_TYPES} | {"marketing", "personalisation"}))


class Status(StrEnum):
    RECEIVED = "received"
    VERIFIED = "verified"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REJECTED = "rejected"


class RequestError(ValueError):
    """A request that cannot be carried out; nothing was changed."""


class DuplicateRequestError(RequestError):
    """The same request was already completed."""


class HoldConflictError(RequestError):
    """The request would delete data that a legal hold keeps; it is rejected and reported."""


class VerificationError(RequestError):
    """The requester's identity is not verified (6.4.2); the request was recorded as rejected and audited."""


class NotPendingError(RequestError):
    """No request with this id is waiting to be carried on (unknown, or finished meanwhile)."""


#: How long after a request completed the same request is taken for a resubmission and refused.
DUPLICATE_WINDOW = timedelta(days=1)
#: How long a finished request's record keeps its subject's pseudonyms: only to recognise a resubmission. The daily
#: retention purge empties the subject after it (``governance.forget_subjects``); ``retention verify`` checks it.
SUBJECT_KEPT = DUPLICATE_WINDOW
_UNFINISHED = (Status.RECEIVED, Status.VERIFIED, Status.IN_PROGRESS)


def request_id(kind: RequestKind, subject: SubjectRows, options: dict[str, Any], received_at: datetime) -> str:
    """The request's id: its kind, options, subject and the time it was received."""
    text = json.dumps(
        {"kind": kind, "subject": to_json(subject), "options": options, "received_at": received_at.isoformat()},
        sort_keys=True,
    )
    return "req-" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _earlier(stores: Stores, kind: RequestKind, subject: SubjectRows, options: dict[str, Any]) -> RequestRow | None:
    """The latest earlier submission of the same request (the same identifiers given), if any."""
    same = (kind, to_json(subject), options)
    return next((r for r in governance.requests(stores.warehouse_path) if (r.kind, _given(r), r.options) == same), None)


def _given(row: RequestRow) -> dict[str, Any]:
    """A stored request's subject without the transactions found for it (see ``subject_data.with_transactions``)."""
    ids = {c: v for c, v in row.subject.get("identifiers", {}).items() if c != TRANSACTION_COLUMN}
    return {**row.subject, "identifiers": ids}


def _check_options(kind: RequestKind, options: dict[str, Any], subject: SubjectRows) -> None:
    if kind is RequestKind.WITHDRAWAL:
        if options.get("purpose") not in PURPOSES:
            raise RequestError(f"a withdrawal names its purpose, one of: {', '.join(PURPOSES)}")
        if not subject.accounts:
            raise RequestError("a withdrawal needs the account id or the phone number of an account")
    if kind is RequestKind.CANCELLATION and options.get("mode") not in ("delete", "anonymise"):
        raise RequestError("a cancellation is carried out by 'delete' or 'anonymise'")


@writer.exclusive
def submit(
    stores: Stores,
    kind: RequestKind,
    ids: Identifiers,
    now: datetime,
    *,
    verification: Claim | None,
    options: dict[str, Any] | None = None,
    actor: str = "privacy-officer",
    role: str = "privacy",
    checkpoint: Checkpoint | None = None,
) -> RequestRow:
    """Receive, verify and carry out a request (or resume it); returns its stored state.

    ``verification`` says how the requester's identity was checked (6.4.2): without one, or with one that does not
    hold, the request is rejected (:class:`VerificationError`) before any store is searched.
    """
    options = dict(options or {})
    subject = resolve(ids, stores.keyring, stores.lake_dir)
    _check_options(kind, options, subject)
    record = _verified(stores, kind, ids, subject, options, verification, now, actor, role)
    step = checkpoint or (lambda _: None)
    row = _earlier(stores, kind, subject, options)
    if row is not None and row.status == Status.COMPLETED and now - row.updated_at < DUPLICATE_WINDOW:
        raise DuplicateRequestError(f"request {row.request_id} was already completed on {row.updated_at:%Y-%m-%d}")
    if row is None or row.status not in _UNFINISHED:
        row = None  # a new request
    if row is None or row.status == Status.RECEIVED:
        rid = row.request_id if row is not None else request_id(kind, subject, options, now)
        subject = subject_data.with_transactions(stores, subject)  # stored with the request: labels need them
        found = subject_data.locate(stores, subject)
        if not found and kind is not RequestKind.WITHDRAWAL:
            raise UnknownSubjectError("no store holds data about the identifiers given")
        row = RequestRow(rid, kind, to_json(subject), options, Status.RECEIVED, now, now, found=found)
        governance.put_request(stores.warehouse_path, row)
        step("received")
        _verify(stores, row, subject, record, now, actor, role)
        step("verified")
    return process(stores, row, now, actor=actor, role=role, checkpoint=step)


def _verified(
    stores: Stores,
    kind: RequestKind,
    ids: Identifiers,
    subject: SubjectRows,
    options: dict[str, Any],
    claim: Claim | None,
    now: datetime,
    actor: str,
    role: str,
) -> Record:
    """The verification record of the request; an unverified one is recorded as rejected, audited and refused."""
    try:
        return check(claim, kind, ids, stores.keyring, stores.verification_key, now)
    except Unverified as err:
        rid = request_id(kind, subject, options, now)
        row = RequestRow(rid, kind, dict(governance.FORGOTTEN), options, Status.RECEIVED, now, now)
        _reject(stores, row, str(err), "identity_verification", {err.code: 1}, now, actor, role)
        raise VerificationError(f"request {rid} was rejected: {err}") from None


def _verify(
    stores: Stores,
    row: RequestRow,
    subject: SubjectRows,
    record: Record,
    now: datetime,
    actor: str,
    role: str,
) -> None:
    """Reject a deleting request on a subject under a legal hold; otherwise mark it verified, with its record."""
    _refuse_if_held(stores, row, subject, now, actor, role)
    row.status, row.updated_at, row.verification = Status.VERIFIED, now, record.to_json()
    governance.put_request(stores.warehouse_path, row)


def _reject(
    stores: Stores,
    row: RequestRow,
    reason: str,
    purpose: str,
    counts: dict[str, int],
    now: datetime,
    actor: str,
    role: str,
) -> None:
    """Record the request as rejected, with its reason, and audit it (counts and names only)."""
    row.status, row.reason, row.updated_at = Status.REJECTED, reason, now
    governance.put_request(stores.warehouse_path, row)
    action = f"request.{row.kind}.rejected"
    audit.append(stores.audit, actor=actor, role=role, action=action, purpose=purpose, counts=counts, when=now)


def _refuse_if_held(
    stores: Stores, row: RequestRow, subject: SubjectRows, now: datetime, actor: str, role: str
) -> None:
    """A deleting request that has deleted nothing yet is rejected while a hold covers its subject."""
    if row.kind not in DELETING or any(step in row.done for step in DELETING_STEPS):
        return  # one that has started is paused before its next deleting step instead (see ``process``)
    holds = _holds_on(stores, subject, now)
    if not holds:
        return
    _reject(stores, row, f"legal hold {holds[0].hold_id}", "legal_hold", {"holds": len(holds)}, now, actor, role)
    raise HoldConflictError(
        f"request {row.request_id} conflicts with legal hold {holds[0].hold_id} "
        f"(owner {holds[0].owner}, until {holds[0].expires_at:%Y-%m-%d}); it was rejected, nothing was deleted"
    )


def _holds_on(stores: Stores, subject: SubjectRows, now: datetime) -> list[governance.Hold]:
    """The active legal holds on the subject's accounts."""
    return [h for h in governance.holds(stores.warehouse_path) if h.active(now) and h.subject_pid in subject.accounts]


@writer.exclusive
def process(
    stores: Stores, row: RequestRow, now: datetime, *, actor: str, role: str, checkpoint: Checkpoint | None = None
) -> RequestRow:
    """Carry out the remaining steps of a verified or in-progress request; one without a verification record (made
    before they were kept) is rejected instead, and can be submitted again with one."""
    if not row.verification:
        reason = "no record of how the requester's identity was verified (6.4.2): submit it again with one"
        _reject(stores, row, reason, "identity_verification", {"unverified": 1}, now, actor, role)
        log.warning("request %s: %s", row.request_id, reason)
        return row
    step = checkpoint or (lambda _: None)
    subject = from_json(row.subject)
    kind = RequestKind(row.kind)
    _refuse_if_held(stores, row, subject, now, actor, role)  # a hold may have been placed since verification
    if row.reason and row.reason.startswith("paused by legal hold"):
        row.reason = None  # checked again before each deleting step
    row.status, row.updated_at = Status.IN_PROGRESS, now
    governance.put_request(stores.warehouse_path, row)
    for name in STEPS[kind]:
        if _done(stores, row, name):
            continue
        if name in (*DELETING_STEPS, "vacuum") and (holds := _holds_on(stores, subject, now)):
            wait(stores, row, f"paused by legal hold {holds[0].hold_id} until it ends")  # placed after deleting began
            return row
        if STEP_FUNCTIONS[name](stores, row, subject, now) is False:
            return row  # not yet: it waits for the vacuum grace period, or for landing batches to be ingested
        if name != "aggregate":  # the aggregate step records itself, in its own transaction
            row.done.append(name)
            if name in DELETING_STEPS:  # the grace period runs from the last deletion this run committed
                row.deleted_at = now
            governance.put_request(stores.warehouse_path, row)
        step(name)
    return _complete(stores, row, subject, now, actor, role, step)


def _done(stores: Stores, row: RequestRow, name: str) -> bool:
    """Whether a step is done; an export no longer whole on disk is not (it is made again, so the receipt agrees)."""
    if name == "export" and name in row.done and not request_files.has_export(stores.requests_dir, row.request_id):
        row.done.remove(name)
    return name in row.done


def _complete(
    stores: Stores, row: RequestRow, subject: SubjectRows, now: datetime, actor: str, role: str, step: Checkpoint
) -> RequestRow:
    receipt: dict[str, Any] = {
        "request_id": row.request_id,
        "kind": row.kind,
        "options": row.options,
        "status": Status.COMPLETED,
        "received_at": row.received_at,
        "completed_at": now,
        "records_per_store": row.found or {},
    }
    if row.kind == RequestKind.ACCESS:
        receipt |= access.receipt(stores, row)
    if row.kind in DELETING:
        receipt["left_in_current_versions"] = subject_data.locate(stores, subject)
        receipt["rows_left_in_files_on_disk"] = subject_data.left_on_disk(stores, subject)
        receipt["delta_log_files_naming_subject"] = sum(subject_data.left_in_logs(stores, subject).values())
    receipt["remains"] = _remains(stores, row, subject, now)
    request_files.write_receipt(stores.requests_dir, row.request_id, receipt)
    step("receipt")
    counts = {k.replace("/", "."): v for k, v in (row.found or {}).items()}
    audit.append(
        stores.audit,
        actor=actor,
        role=role,
        action=f"request.{row.kind}",
        purpose="data_subject_rights",
        counts=counts,
        when=now,
    )
    step("audited")
    row.status, row.updated_at = Status.COMPLETED, now
    governance.put_request(stores.warehouse_path, row)
    step("completed")
    return row


def _remains(stores: Stores, row: RequestRow, subject: SubjectRows, now: datetime) -> dict[str, Any]:
    """What is kept after the request, in what the receipt's counts do not cover, and until when."""
    out: dict[str, Any] = {
        "request_record": {
            "until": now + SUBJECT_KEPT,
            "what": "this request's record keeps the pseudonyms of the identifiers given, to recognise the same "
            "request sent again; the daily retention purge then empties it (kind, dates and counts stay)",
        },
        "audit_log": {
            "until": _kept_until(stores, "audit_log", now),
            "what": "one audit record of this request: its counts per store, no identifier",
        },
    }
    if row.kind in DELETING:
        n, written = subject_data.unmatchable_quarantine(stores)
        if n and written is not None:
            out["quarantine_unmatchable"] = {
                "records": n,
                "until": _kept_until(stores, "quarantine", written),
                "what": "records refused at ingest that are not readable (not JSON, or an identifier that is not "
                "text), encrypted: no identifier in them can be matched, so some may be the subject's; they go "
                "with the quarantine retention",
            }
        if lost := entrusted_data.unmatchable(stores):
            out["entrusted_unmatchable"] = {
                "processors": sorted({e.processor for e in lost}),
                "rows": sum(e.rows for e in lost),
                "until": max(e.until for e in lost),
                "what": "extracts for processors whose key can no longer be derived (the pseudonym key they were "
                "made under is gone): some of their rows may be the subject's and cannot be found; they go when "
                "the entrustment ends",
            }
        if processors := entrusted_data.holders(stores, row.request_id):
            out["entrusted_processors"] = {
                "processors": processors,
                "until": None,
                "what": "processors given extracts that held the subject's events (4.4): the subject's rows are gone "
                "from the extracts kept here; a copy a processor already received is theirs to erase, and this "
                "request is forwarded to them",
            }
        if ended := [h for h in governance.holds(stores.warehouse_path) if h.subject_pid in subject.accounts]:
            out["legal_holds"] = {
                "holds": len(ended),
                "until": _kept_until(stores, "account", max(h.ended_at for h in ended)),
                "what": "ended legal holds on the account keep its pseudonym, as the record of the hold, for the "
                "account period after they ended",
            }
    return out


def _kept_until(stores: Stores, retention_class: str, since: datetime) -> datetime | None:
    """When data of ``retention_class`` dated ``since`` expires (``None``: kept as the law requires)."""
    days = stores.policy.days(retention_class)
    return None if days is None else since + timedelta(days=days)


def pending(stores: Stores) -> list[RequestRow]:
    """Requests verified or in progress (e.g. waiting for the vacuum, or interrupted)."""
    return [r for r in governance.requests(stores.warehouse_path) if r.status in (Status.VERIFIED, Status.IN_PROGRESS)]


def pending_request(stores: Stores, request_id: str) -> RequestRow:
    """The pending request ``request_id``; :class:`NotPendingError` when there is none."""
    row = governance.get_request(stores.warehouse_path, request_id)
    if row is None or row.status not in (Status.VERIFIED, Status.IN_PROGRESS):
        raise NotPendingError(f"request {request_id} is not pending (unknown, or finished meanwhile)")
    return row
