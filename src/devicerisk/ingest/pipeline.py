"""Ingesting one landing batch, exactly once.

Steps: read -> parse and validate -> deduplicate -> treat -> consent -> quarantine -> lake -> ledger.
Everything up to the quarantine write is pure. The three writes are each idempotent, and the lake
commit carries the batch id and its accounting, so a crash at any point followed by a re-run leaves
no duplicate and no gap:
- quarantine files are named by batch id and overwritten;
- the lake append is skipped when the lake already holds a commit of the batch;
- the ledger row and the batch's consent-state changes are written in one transaction, last.

No file stops the run: a file whose staging or commit raises gets a ledger row saying why and is set
aside in ``landing/failed/`` (:func:`set_aside`); the next batch goes on.
"""

from __future__ import annotations

import logging
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from devicerisk import engine
from devicerisk.contract.fields import FUTURE_SKEW, MAX_BATCH_BYTES, MAX_RECORD_BYTES
from devicerisk.contract.times import TimeWindow
from devicerisk.ingest.lookahead import Pending, Settled, lookahead
from devicerisk.ingest.parse import parse_batch
from devicerisk.ingest.read import read_batch
from devicerisk.privacy.consent import CONSENT_COLUMNS, apply_consent
from devicerisk.privacy.keys import Key
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.privacy.redact import describe
from devicerisk.privacy.transform import treat_batch
from devicerisk.store import lake, landing, quarantine, warehouse
from devicerisk.store.quarantine import Rejected

log = logging.getLogger(__name__)

Checkpoint = Callable[[str], None]
STEPS = ("quarantine_written", "lake_committed", "ledger_committed")


class AccountingError(RuntimeError):
    """Records would be lost: read != accepted + quarantined + dropped + duplicates."""


@dataclass(frozen=True, slots=True)
class IngestContext:
    """What ingesting needs, resolved once from the settings."""

    lake_dir: lake.Lake  # a folder, or object storage
    quarantine_dir: Path
    warehouse_path: Path
    pseudonymiser: Pseudonymiser
    quarantine_key: Key
    minor_age: int = 18
    phone_region: str = "CN"
    chunk_rows: int = 65_536
    future_skew: timedelta = FUTURE_SKEW
    max_record_bytes: int = MAX_RECORD_BYTES
    max_batch_bytes: int = MAX_BATCH_BYTES

    def window(self, now: datetime) -> TimeWindow:
        """The times a batch ingested at ``now`` may carry."""
        return TimeWindow.at(now, self.future_skew)


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
    failed: str | None = None  # why the file could not be ingested at all (it was set aside)

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


def first_in_batch(event_ids: pa.Array) -> pa.Array:
    """A mask of the first occurrence of each id within a batch."""
    n = len(event_ids)
    if pc.count_distinct(event_ids).as_py() == n:
        return pa.repeat(pa.scalar(True), n)  # the common case: no repeats
    batch = pa.table({"event_id": event_ids, "idx": pa.array(range(n), pa.int64())})
    with engine.registered(batch=batch) as con:
        first = con.sql("SELECT min(idx) AS idx FROM batch GROUP BY event_id").to_arrow_table()
    return pc.is_in(pa.array(range(n), pa.int64()), value_set=first.column("idx").combine_chunks())


def not_seen(event_ids: pa.Array, seen: pa.Array) -> pa.Array:
    """A mask of the ids not among ``seen``."""
    # ``seen`` (a day's ids in the lake) is larger than a batch, and hashing costs more than probing:
    # probe ``seen`` with the batch's ids first, then test the batch against the few hits (5x faster).
    hits = seen.filter(pc.is_in(seen, value_set=event_ids)) if len(seen) else seen
    if len(hits) == 0:
        return pa.repeat(pa.scalar(True), len(event_ids))
    return pc.invert(pc.is_in(event_ids, value_set=hits))


def first_unseen(event_ids: pa.Array, seen: pa.Array) -> pa.Array:
    """A mask of the records to keep: the first occurrence of each id not already seen."""
    return pc.and_(first_in_batch(event_ids), not_seen(event_ids, seen))


@dataclass(slots=True)
class StagedBatch:
    """A batch read, validated and treated: the part of ingest that depends on nothing stored.

    Staging is pure, so the next batch can be staged while the previous one is committed.
    """

    batch_id: str
    file_name: str
    records_read: int
    notes: list[str]
    rejected: list[Rejected]
    events: pa.Table  # treated, not yet deduplicated or filtered by consent
    staged_at: datetime
    file_bytes: int
    first_in_batch: pa.Array  # deduplication within the batch needs nothing stored, so it is staged


def stage_batch(path: Path, ctx: IngestContext, now: datetime | None = None) -> StagedBatch:
    """Read, parse, validate and treat one landing file (no store is read or written)."""
    now = now or datetime.now(UTC)
    raw = read_batch(path, ctx.max_record_bytes, ctx.max_batch_bytes)
    parsed = parse_batch(raw, ctx.chunk_rows, reread=path, window=ctx.window(now))  # a second, faster read
    treated = treat_batch(
        parsed.table,
        ctx.pseudonymiser,
        raw.batch_id,
        minor_age=ctx.minor_age,
        phone_region=ctx.phone_region,
        ingested_at=now,
    )
    events, redacted = treated.table, describe(treated.redactions)
    first = first_in_batch(events.column("event_id").combine_chunks())
    notes = [*raw.notes, redacted] if redacted else list(raw.notes)
    return StagedBatch(
        raw.batch_id,
        raw.file_name,
        raw.records_read,
        notes,
        parsed.rejected,
        events,
        now,
        raw.file_bytes,
        first,
    )


def prepare_batch(
    staged: StagedBatch, ctx: IngestContext, con: warehouse.Target | None = None, *, committed_before: bool
) -> PreparedBatch:
    """Deduplicate against the lake and apply consent: reads the stores, writes nothing.

    ``committed_before``: the lake already holds this batch (a crash came after its commit), so its own
    rows are not duplicates of themselves.
    """
    result = BatchResult(staged.batch_id, staged.file_name, records_read=staged.records_read, notes=staged.notes)
    result.quarantined = len(staged.rejected)
    result.reasons = dict(Counter(r.reason for r in staged.rejected))

    events = staged.events
    dates = pc.unique(events.column("event_date")).to_pylist()
    own = staged.batch_id if committed_before else None  # reading batch_id only when needed saves a column
    seen = lake.event_ids_on(ctx.lake_dir, lake.EVENTS, dates, exclude_batch=own)
    fresh = pc.and_(staged.first_in_batch, not_seen(events.column("event_id"), seen))
    result.duplicates = len(fresh) - pc.sum(fresh).as_py() if len(fresh) else 0
    # Consent is judged on fresh events only, so a duplicate's drop is not counted twice. It reads
    # a few columns; the wide table is filtered once, at the end.
    consent_input = events.select(list(CONSENT_COLUMNS)).filter(fresh)
    consent = apply_consent(consent_input, warehouse.consent_state(con or ctx.warehouse_path))
    events = _keep_rows(events, fresh, consent.keep)
    result.consent_dropped = sum(consent.dropped_by_reason.values())
    result.reasons.update({f"dropped: {k}": v for k, v in consent.dropped_by_reason.items()})
    result.accepted = events.num_rows
    result.identifiers_pseudonymised = sum(
        events.num_rows - events.column(name).null_count for name in events.column_names if name.endswith("_pid")
    )
    result.check()
    return PreparedBatch(result, events, staged.rejected, consent.updates)


def _keep_rows(table: pa.Table, first: pa.Array, then: pa.Array) -> pa.Table:
    """Rows kept by ``first`` and then, among those, by ``then``: one copy of the wide table at most."""
    keep = first.to_numpy(zero_copy_only=False).copy()
    keep[keep] = then.to_numpy(zero_copy_only=False)
    # a boolean filter copies runs of kept rows, cheaper than gathering them one by one with take
    return table if keep.all() else table.filter(pa.array(keep))


def _accounting(result: BatchResult) -> dict[str, object]:
    keys = ("records_read", "accepted", "quarantined", "consent_dropped", "duplicates", "reasons", "notes")
    values = asdict(result)
    return {k: values[k] for k in keys}


def _already_done(batch_id: str, file_name: str, target: warehouse.Target) -> BatchResult | None:
    done = warehouse.ledger_entry(target, batch_id)
    if done is None or not done.committed:  # a file that failed before is tried again
        return None
    log.info("batch %s (%s) was already ingested; skipping", batch_id, file_name)
    return BatchResult(batch_id, file_name, already_done=True, lake_version=done.lake_version)


def ingest_batch(path: Path, ctx: IngestContext, checkpoint: Checkpoint | None = None) -> BatchResult:
    """Ingest one landing file exactly once; re-running after a crash completes it without duplicates."""
    done = _already_done(landing.batch_id_of_file(path), path.name, ctx.warehouse_path)
    return done if done is not None else commit_batch(stage_batch(path, ctx), ctx, checkpoint)


def commit_batch(staged: StagedBatch, ctx: IngestContext, checkpoint: Checkpoint | None = None) -> BatchResult:
    """Deduplicate, apply consent and write a staged batch: quarantine, then lake, then ledger."""
    # One warehouse connection for the whole commit: this process is its only writer meanwhile.
    with warehouse.connect(ctx.warehouse_path) as con:
        return _commit(staged, ctx, con, checkpoint or (lambda _: None))


def _commit(staged: StagedBatch, ctx: IngestContext, con: warehouse.Target, step: Checkpoint) -> BatchResult:
    done = _already_done(staged.batch_id, staged.file_name, con)
    if done is not None:
        return done
    committed = lake.find_batch_commit(ctx.lake_dir, lake.EVENTS, staged.batch_id)
    prepared = prepare_batch(staged, ctx, con, committed_before=committed is not None)
    if committed is None and prepared.result.duplicates:
        # its own commit may be older than the recent history searched first: then its rows are not duplicates
        committed = lake.find_batch_commit(ctx.lake_dir, lake.EVENTS, staged.batch_id, recent_only=False)
        if committed is not None:
            prepared = prepare_batch(staged, ctx, con, committed_before=True)
    result = prepared.result
    quarantine.write(ctx.quarantine_dir, staged.batch_id, prepared.rejected, ctx.quarantine_key)
    step("quarantine_written")

    if prepared.events.num_rows:
        if committed is None:
            result.lake_version = lake.append(
                ctx.lake_dir, lake.EVENTS, prepared.events, staged.batch_id, _accounting(result)
            )
        else:
            result.lake_version = committed[0]
            log.warning("batch %s was committed to the lake before an interruption; completing it", staged.batch_id)
    step("lake_committed")

    entry = warehouse.LedgerEntry(
        batch_id=staged.batch_id,
        file_name=staged.file_name,
        lake_version=result.lake_version,
        records_read=result.records_read,
        accepted=result.accepted,
        quarantined=result.quarantined,
        consent_dropped=result.consent_dropped,
        duplicates=result.duplicates,
        reasons=result.reasons,
        note="; ".join(result.notes) or None,
        committed_at=datetime.now(UTC),
        file_bytes=staged.file_bytes,
    )
    warehouse.commit_batch(con, entry, prepared.state_updates)
    step("ledger_committed")
    log.info(
        "batch %s: read %d, accepted %d, quarantined %d, consent-dropped %d, duplicates %d",
        staged.batch_id,
        result.records_read,
        result.accepted,
        result.quarantined,
        result.consent_dropped,
        result.duplicates,
    )
    return result


def not_yet_ingested(paths: list[Path], ctx: IngestContext) -> list[Path]:
    """The files whose content the ledger has not recorded, in order.

    A file whose name and size the ledger has never seen is new without reading it; the others are
    hashed, and count as new only if their content is. (New content under a new name is caught again
    at commit, by its id.)
    """
    with warehouse.connect(ctx.warehouse_path, read_only=True) as con:
        seen = warehouse.seen_files(con)
        return [p for p in paths if _new(con, seen, p)]


def _new(con: warehouse.Target, seen: set[tuple[str, int]], path: Path) -> bool:
    try:
        if (path.name, path.stat().st_size) not in seen:
            return True
        entry = warehouse.ledger_entry(con, landing.batch_id_of_file(path))
    except OSError:  # vanished or unreadable: staging will fail and say so
        return True
    return entry is None or not entry.committed


def ingest_batches(
    paths: list[Path],
    ctx: IngestContext,
    stage: Callable[[Path], Pending[StagedBatch]] | None = None,
    commit: Callable[[StagedBatch], BatchResult] | None = None,
    depth: int = 1,
) -> Iterator[BatchResult]:
    """Ingest the files of ``paths`` not ingested yet, in order, the next ``depth`` staged while the one before
    them is committed: the one ingest loop, for the flow and for direct use alike.

    ``stage`` submits a file's staging and returns its pending result (default: a one-thread pool running
    :func:`stage_batch`); ``commit`` commits a staged batch (default: :func:`commit_batch`). The ingest flow
    passes its tasks (on Dask, ``depth`` batches are staged at once in worker processes; commits stay here, one
    at a time, in order). A file whose staging or commit raises is set aside with a failed ledger row, and the
    next goes on.
    """
    commit = commit or (lambda s: commit_batch(s, ctx))
    if stage is None:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stage") as pool:
            yield from ingest_batches(paths, ctx, lambda p: pool.submit(stage_batch, p, ctx), commit)
        return
    for path, staged in lookahead(not_yet_ingested(paths, ctx), lambda p: Settled(p, stage(p)), depth):
        if isinstance(staged, Exception):
            yield set_aside(path, ctx, failure_reason("staging", staged))
            continue
        try:
            result = commit(staged)
        except Exception as err:
            result = set_aside(path, ctx, failure_reason("commit", err), staged.batch_id)
        yield result


def failure_reason(step: str, error: BaseException) -> str:
    """One line naming the step, the error's type and where it was raised: never a value of the data."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{step} failed: {type(error).__name__}{where}"


REFUSED_LINK = "refused: a link to a file outside landing"


def refuse_links(landing_dir: Path, ctx: IngestContext) -> list[BatchResult]:
    """Set aside the links in the telemetry folder that lead outside landing; their targets are never read."""
    return [set_aside(p, ctx, REFUSED_LINK) for p in landing.outside_links(landing_dir)]


def set_aside(path: Path, ctx: IngestContext, reason: str, batch_id: str | None = None) -> BatchResult:
    """Record a file that cannot be ingested (a ledger row with ``reason``) and move it to ``landing/failed/``.

    A batch whose commit completed before the error keeps its ledger row and its file.
    """
    batch_id = batch_id or landing.file_id(path)
    if not warehouse.record_failure(ctx.warehouse_path, batch_id, path.name, reason, datetime.now(UTC)):
        log.warning("batch %s (%s) raised after its commit; it stays committed", batch_id, path.name)
        return BatchResult(batch_id, path.name, already_done=True)
    moved = landing.set_aside(path, batch_id)
    where = f"set aside as {landing.FAILED}/{moved.name}" if moved else "could not be set aside"
    log.error("batch %s (%s) %s; %s", batch_id, path.name, reason, where)
    return BatchResult(batch_id, path.name, failed=reason, notes=[where])
