"""Feedback-label ingestion: landing ``labels/*.ndjson`` -> the lake's ``labels`` table, exactly once.

Each record is validated against ``LABEL_FIELDS``; invalid ones are quarantined (encrypted) with their
reason. ``subject_id`` is pseudonymised in the domain of its subject (the transaction id domain or the
account id domain), so a label joins the events it is about. A file is committed in one Delta commit
tagged with its content hash, so re-running after a crash never adds it twice. The label's account
pseudonym (``account_id_pid``) is the subject for account labels and, for transaction labels, the
transaction's account as found in the events table when the label arrives (null if not yet ingested).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from devicerisk import engine
from devicerisk.contract.fields import LABEL_FIELDS, LABEL_SUBJECT_DOMAINS
from devicerisk.contract.schema import label_schema
from devicerisk.contract.times import TimeWindow, parse_timestamp
from devicerisk.ingest.pipeline import BatchResult, IngestContext, failure_reason, set_aside
from devicerisk.ingest.read import read_batch
from devicerisk.ingest.validate import decode, fields_reason
from devicerisk.privacy.redact import describe, redact_fields
from devicerisk.store import lake, landing, quarantine
from devicerisk.store.quarantine import Rejected

log = logging.getLogger(__name__)

#: The pseudonym domain of each subject type, as the contract declares it: the domains of the events' ids.
SUBJECT_DOMAINS = LABEL_SUBJECT_DOMAINS
#: The lake's ``labels`` table: the contract's label fields as treated, with the labelled account beside the
#: subject, and the partition date, batch and key ids.
LABEL_SCHEMA = label_schema()


def _validate(
    lines: Sequence[bytes], numbers: list[int], window: TimeWindow
) -> tuple[list[dict[str, object]], list[Rejected]]:
    """The valid label records, and the rejected lines with their reasons (ingest's validation, on the
    contract's ``LABEL_FIELDS``)."""
    good: list[dict[str, object]] = []
    bad: list[Rejected] = []
    for number, line in zip(numbers, lines, strict=True):
        record, reason = decode(line)
        if record is not None and (reason := fields_reason(record, LABEL_FIELDS, "label", window)) is None:
            good.append(record)
        else:
            bad.append(Rejected(number, reason or "malformed JSON", line))
    return good, bad


def treat_labels(records: list[dict[str, object]], ctx: IngestContext, batch_id: str) -> pa.Table:
    """The lake rows of valid label records: subject ids pseudonymised in their subject's domain."""
    subject_type = pa.array([r["subject_type"] for r in records], pa.string())
    raw_ids = pa.array([r["subject_id"] for r in records], pa.string())
    pids = pa.nulls(len(records), pa.string())
    for kind, domain in SUBJECT_DOMAINS.items():
        mask = pc.equal(subject_type, kind)
        if pc.any(mask).as_py():
            pids = pc.if_else(mask, ctx.pseudonymiser.pseudonymise(domain, raw_ids), pids)
    reported = pa.array([parse_timestamp(str(r["reported_at"])) for r in records], pa.timestamp("us", tz="UTC"))
    n = len(records)
    table = pa.table(
        {
            "label_id": pa.array([r["label_id"] for r in records], pa.string()),
            "subject_type": subject_type,
            "subject_id_pid": pids,
            "account_id_pid": pc.if_else(pc.equal(subject_type, "account"), pids, pa.nulls(n, pa.string())),
            "label": pa.array([r["label"] for r in records], pa.string()),
            "fraud_type": pa.array([r.get("fraud_type") for r in records], pa.string()),
            "reported_at": reported,
            "fraud_from": pa.array([_time_or_none(r.get("fraud_from")) for r in records], pa.timestamp("us", tz="UTC")),
            "event_date": reported.cast(pa.date32()),
            "batch_id": pa.repeat(pa.scalar(batch_id, pa.string()), n),
            "key_id": pa.repeat(pa.scalar(ctx.pseudonymiser.key_id, pa.string()), n),
        },
        schema=LABEL_SCHEMA,
    )
    return resolve_accounts(table, ctx.lake_dir)


def _time_or_none(value: object) -> datetime | None:
    return None if value is None else parse_timestamp(str(value))


def resolve_accounts(table: pa.Table, lake_dir: Path) -> pa.Table:
    """Fill ``account_id_pid`` of transaction labels from the events table, where the transaction is there."""
    events = lake.dataset(lake_dir, lake.EVENTS)
    wanted = pc.filter(table.column("subject_id_pid"), pc.equal(table.column("subject_type"), "transaction"))
    if events is None or len(wanted) == 0:
        return table
    owners = events.to_table(
        columns=["transaction_id_pid", "account_id_pid"], filter=ds.field("transaction_id_pid").isin(wanted)
    )
    query = """
        SELECT l.* REPLACE (coalesce(l.account_id_pid, o.account_id_pid) AS account_id_pid)
        FROM labels l LEFT JOIN (SELECT DISTINCT * FROM owners) o
          ON l.subject_type = 'transaction' AND o.transaction_id_pid = l.subject_id_pid
    """
    with engine.registered(labels=table, owners=owners) as con:
        return con.sql(query).to_arrow_table().cast(LABEL_SCHEMA)


def ingest_label_file(path: Path, ctx: IngestContext) -> BatchResult:
    """Ingest one landing label file exactly once (its content hash is the batch id).

    The result is a telemetry batch's accounting, with nothing dropped by consent or deduplication:
    records_read = accepted + quarantined.
    """
    batch_id = landing.batch_id_of_file(path)
    result = BatchResult(batch_id, path.name)
    if lake.find_batch_commit(ctx.lake_dir, lake.LABELS, batch_id) is not None:
        result.already_done = True
        return result
    raw = read_batch(path, ctx.max_record_bytes, ctx.max_batch_bytes)
    good, bad = _validate(raw.lines, list(raw.line_numbers), ctx.window(datetime.now(UTC)))
    rejected = [*raw.rejected, *bad]
    result.records_read = raw.records_read
    result.accepted, result.quarantined = len(good), len(rejected)
    for r in rejected:
        result.reasons[r.reason] = result.reasons.get(r.reason, 0) + 1
    result.check()
    quarantine.write(ctx.quarantine_dir, batch_id, rejected, ctx.quarantine_key)
    table, redacted = redact_fields(
        treat_labels(good, ctx, batch_id) if good else LABEL_SCHEMA.empty_table(), LABEL_FIELDS, ctx.phone_region
    )
    result.notes += [note] if (note := describe(redacted)) else []
    accounting = {
        "records_read": result.records_read,
        "accepted": result.accepted,
        "quarantined": result.quarantined,
        "reasons": result.reasons,
        "notes": result.notes,
        "file_name": path.name,
    }
    # An empty commit still records the batch id, so a file of rejects is not read again.
    lake.append(ctx.lake_dir, lake.LABELS, table, batch_id, accounting)
    log.info(
        "labels %s: read %d, accepted %d, quarantined %d",
        path.name,
        result.records_read,
        result.accepted,
        result.quarantined,
    )
    return result


def ingest_labels(ctx: IngestContext, landing_dir: Path) -> list[BatchResult]:
    """Ingest every label file in the landing zone not yet in the lake, in name order; a file that cannot be
    ingested is set aside with a failed ledger row, and the next goes on."""
    results = []
    for path in landing.pending_files(landing_dir, landing.LABELS):
        try:
            results.append(ingest_label_file(path, ctx))
        except Exception as err:
            results.append(set_aside(path, ctx, failure_reason("label ingest", err)))
    return results


def fraud_marks(rows: pa.Table, labels: pa.Table, until: datetime | None) -> np.ndarray:
    """1 where a fraud label (reported by ``until``) marks the row, as the contract's label semantics say.

    ``rows`` has ``subject`` (the row's own pseudonym: a transaction's, or an account probe's account),
    ``acct`` (its account's pseudonym) and ``t`` (microseconds). A transaction label marks the transaction
    it names and nothing else; an account label marks the account and its rows from ``fraud_from`` (all of
    them without it). No label marks rows of other subjects.
    """
    if until is not None:
        labels = labels.filter(pc.less_equal(labels.column("reported_at"), pa.scalar(until)))
    fraud = labels.filter(pc.equal(labels.column("label"), "fraud"))
    is_txn = pc.equal(fraud.column("subject_type"), "transaction")
    named = pc.filter(fraud.column("subject_id_pid"), is_txn).combine_chunks()
    hit = pc.fill_null(pc.is_in(rows.column("subject"), value_set=named), False).to_numpy(zero_copy_only=False)
    accounts = fraud.filter(pc.invert(is_txn))
    if accounts.num_rows:
        known = "fraud_from" in accounts.column_names  # labels from before it existed were fraudulent throughout
        fraud_from = accounts.column("fraud_from") if known else pa.nulls(accounts.num_rows, pa.timestamp("us"))
        since = pc.fill_null(pc.cast(fraud_from, pa.int64()), np.iinfo(np.int64).min)
        earliest = (
            pa.table({"acct": accounts.column("subject_id_pid"), "since": since})
            .group_by("acct")
            .aggregate([("since", "min")])
        )
        where = pc.index_in(rows.column("acct"), value_set=earliest.column("acct")).to_numpy(zero_copy_only=False)
        found = ~np.isnan(where.astype(float))
        froms = earliest.column("since_min").to_numpy()
        t = rows.column("t").to_numpy(zero_copy_only=False).astype(np.int64)
        hit |= found & (t >= froms[np.where(found, where, 0).astype(np.int64)])
    return hit.astype(int)


def read_labels(lake_dir: Path, until: datetime | None = None) -> pa.Table:
    """The labels in the lake (those reported at or before ``until``, when given)."""
    data = lake.dataset(lake_dir, lake.LABELS)
    if data is None:
        return LABEL_SCHEMA.empty_table()
    table = data.to_table()
    if "fraud_from" not in table.column_names:  # a lake written before labels had it
        table = table.append_column("fraud_from", pa.nulls(table.num_rows, pa.timestamp("us", tz="UTC")))
    if until is not None:
        table = table.filter(pc.less_equal(table.column("reported_at"), pa.scalar(until.astimezone(UTC))))
    return table
