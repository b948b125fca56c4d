"""Ingesting one landing batch, exactly once.

Steps: read -> parse and validate -> deduplicate -> treat -> consent -> quarantine -> lake -> ledger.
Everything up to the quarantine write is pure. The three writes are each idempotent, and the lake
commit carries the batch id and its accounting, so a crash at any point followed by a re-run leaves
no duplicate and no gap:
- quarantine files are named by batch id and overwritten;
- the lake append is skipped when the lake already holds a commit of the batch;
- the ledger row and the batch's consent-state changes are written in one transaction, last.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.ingest.parse import parse_batch
from devicerisk.ingest.read import RawBatch, read_batch
from devicerisk.ingest.validate import utc_times
from devicerisk.privacy.consent import apply_consent
from devicerisk.privacy.keys import Key
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.privacy.transform import treat
from devicerisk.store import lake, quarantine, warehouse
from devicerisk.store.quarantine import Rejected

log = logging.getLogger(__name__)

Checkpoint = Callable[[str], None]
STEPS = ("quarantine_written", "lake_committed", "ledger_committed")


class AccountingError(RuntimeError):
    """Records would be lost: read != accepted + quarantined + dropped + duplicates."""


@dataclass(frozen=True, slots=True)
class IngestContext:
    """What ingesting needs, resolved once from the settings."""

    lake_dir: Path
    quarantine_dir: Path
    warehouse_path: Path
    pseudonymiser: Pseudonymiser
    quarantine_key: Key
    minor_age: int = 18
    phone_region: str = "CN"
    chunk_rows: int = 65_536


@dataclass(slots=True)
class BatchResult:
    """A batch's accounting: records_read = accepted + quarantined + consent_dropped + duplicates."""

    batch_id: str
    file_name: str
    records_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    consent_dropped: int = 0
    duplicates: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    identifiers_pseudonymised: int = 0
    notes: list[str] = field(default_factory=list)
    lake_version: int | None = None
    already_done: bool = False

    def check(self) -> None:
        """Raise unless every record read is accounted for."""
        total = self.accepted + self.quarantined + self.consent_dropped + self.duplicates
        if total != self.records_read:
            raise AccountingError(f"batch {self.batch_id}: read {self.records_read} but accounted for {total}")


@dataclass(slots=True)
class PreparedBatch:
    """The pure result of processing a batch, ready to be written."""

    result: BatchResult
    events: pa.Table
    rejected: list[Rejected]
    state_updates: dict[str, pa.Table]


def first_unseen(event_ids: pa.Array, seen: pa.Array) -> pa.Array:
    """A mask of the records to keep: the first occurrence of each id not already seen."""
    con = duckdb.connect(":memory:")
    try:
        con.register("batch", pa.table({"event_id": event_ids, "idx": pa.array(range(len(event_ids)), pa.int64())}))
        con.register("seen", pa.table({"event_id": seen}))
        keep = con.sql(
            "SELECT min(idx) AS idx FROM batch ANTI JOIN seen USING (event_id) GROUP BY event_id"
        ).to_arrow_table()
    finally:
        con.close()
    positions = pa.array(range(len(event_ids)), pa.int64())
    return pc.is_in(positions, value_set=keep.column("idx").combine_chunks().cast(pa.int64()))


def prepare_batch(
    raw: RawBatch, ctx: IngestContext, now: datetime | None = None, source: Path | None = None
) -> PreparedBatch:
    """Parse, validate, deduplicate, treat and apply consent: no side effects."""
    result = BatchResult(raw.batch_id, raw.file_name, records_read=raw.records_read, notes=list(raw.notes))
    parsed = parse_batch(raw, ctx.chunk_rows, source)
    result.quarantined = len(parsed.rejected)
    result.reasons = dict(Counter(r.reason for r in parsed.rejected))

    table = parsed.table
    dates = pc.unique(utc_times(table.column("event_time").combine_chunks()).cast(pa.date32())).to_pylist()
    seen = lake.event_ids_on(ctx.lake_dir, lake.EVENTS, dates, exclude_batch=raw.batch_id)
    fresh = first_unseen(table.column("event_id").combine_chunks(), seen)
    table = table.filter(fresh)
    result.duplicates = parsed.table.num_rows - table.num_rows

    events = treat(
        table, ctx.pseudonymiser, raw.batch_id, minor_age=ctx.minor_age, phone_region=ctx.phone_region, ingested_at=now
    )
    state = warehouse.consent_state(ctx.warehouse_path)
    consent = apply_consent(events, state)
    events = events.filter(consent.keep)
    result.consent_dropped = sum(consent.dropped_by_reason.values())
    result.reasons.update({f"dropped: {k}": v for k, v in consent.dropped_by_reason.items()})
    result.accepted = events.num_rows
    result.identifiers_pseudonymised = sum(
        events.num_rows - events.column(name).null_count for name in events.column_names if name.endswith("_pid")
    )
    result.check()
    return PreparedBatch(result, events, parsed.rejected, consent.updates)


def _accounting(result: BatchResult) -> dict[str, object]:
    keys = ("records_read", "accepted", "quarantined", "consent_dropped", "duplicates", "reasons", "notes")
    values = asdict(result)
    return {k: values[k] for k in keys}


def ingest_batch(path: Path, ctx: IngestContext, checkpoint: Checkpoint | None = None) -> BatchResult:
    """Ingest one landing file exactly once; re-running after a crash completes it without duplicates."""
    step = checkpoint or (lambda _: None)
    raw = read_batch(path)
    done = warehouse.ledger_entry(ctx.warehouse_path, raw.batch_id)
    if done is not None:
        log.info("batch %s (%s) was already ingested; skipping", raw.batch_id, path.name)
        result = BatchResult(raw.batch_id, path.name, already_done=True, lake_version=done.lake_version)
        return result

    now = datetime.now(UTC)
    prepared = prepare_batch(raw, ctx, now, source=path)
    result = prepared.result
    quarantine.write(ctx.quarantine_dir, raw.batch_id, prepared.rejected, ctx.quarantine_key)
    step("quarantine_written")

    if prepared.events.num_rows:
        committed = lake.find_batch_commit(ctx.lake_dir, lake.EVENTS, raw.batch_id)
        if committed is None:
            result.lake_version = lake.append(
                ctx.lake_dir, lake.EVENTS, prepared.events, raw.batch_id, _accounting(result)
            )
        else:
            result.lake_version = committed[0]
            log.warning("batch %s was committed to the lake before an interruption; completing it", raw.batch_id)
    step("lake_committed")

    entry = warehouse.LedgerEntry(
        batch_id=raw.batch_id,
        file_name=path.name,
        lake_version=result.lake_version,
        records_read=result.records_read,
        accepted=result.accepted,
        quarantined=result.quarantined,
        consent_dropped=result.consent_dropped,
        duplicates=result.duplicates,
        reasons=result.reasons,
        note="; ".join(result.notes) or None,
        committed_at=now,
    )
    warehouse.commit_batch(ctx.warehouse_path, entry, prepared.state_updates)
    step("ledger_committed")
    log.info(
        "batch %s: read %d, accepted %d, quarantined %d, consent-dropped %d, duplicates %d",
        raw.batch_id,
        result.records_read,
        result.accepted,
        result.quarantined,
        result.consent_dropped,
        result.duplicates,
    )
    return result
