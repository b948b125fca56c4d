"""The retention purge (5.1.2): remove expired data from every store, then vacuum; and check it was done.

Each lake table's rows are dated (``event_date``, or a time column) and belong to a retention class:
the events table by event type, other tables by name (:data:`TABLE_CLASSES`). Whole partitions go
in a metadata-only commit when every event type in them has expired; otherwise only the expired
rows are deleted. A watermark per table and class makes the daily purge look only at the days that
expired since the last run. Subjects under an active legal hold are never purged; when a hold ends,
the next purge catches up with the data it kept.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from devicerisk.contract.fields import EVENT_TYPES
from devicerisk.governance import subject_data
from devicerisk.governance.entrust import revoke_expired
from devicerisk.governance.requests import SUBJECT_KEPT
from devicerisk.governance.retention import MODELS_CLASS, SERVING_CLASS, class_of_table
from devicerisk.governance.stores import Stores, before, time_column
from devicerisk.governance.subjects import records_matching
from devicerisk.store import audit, governance, lake_rewrite, landing, quarantine, request_files, signal_log, snapshots
from devicerisk.store import lake_maintenance as lakes
from devicerisk.store.rows import ACCOUNT_COLUMN, SUBJECT_ID, SUBJECT_TYPE, SubjectRows, in_list, literal, mask_where
from devicerisk.store.writer import exclusive

log = logging.getLogger(__name__)

EVENT_TYPE = "event_type"
PARTITION = lakes.PARTITION


@dataclass(frozen=True, slots=True)
class Rule:
    """The rows of one retention class in one table: dated by ``time_col``, maybe of some event types."""

    retention_class: str
    time_col: str
    cutoff: date
    event_types: tuple[str, ...] | None = None

    def expression(self, schema: pa.Schema, since: date | None = None) -> ds.Expression:
        expr = before(schema, self.time_col, self.cutoff)
        if since is not None:
            expr = expr & ~before(schema, self.time_col, since)
        if self.event_types is not None:
            expr = expr & ds.field(EVENT_TYPE).isin(pa.array(self.event_types, pa.string()))
        return expr

    def predicate(self, since: date | None) -> str:
        terms = [f"{self.time_col} < {literal(self.cutoff)}"]
        if since is not None:
            terms.append(f"{self.time_col} >= {literal(since)}")
        if self.event_types is not None:
            terms.append(in_list(EVENT_TYPE, self.event_types))
        return " AND ".join(terms)


def lake_rules(stores: Stores, name: str, schema: pa.Schema, today: date) -> list[Rule] | None:
    """The retention rules of a lake table (``None``: it has no retention class, which verify reports)."""
    if EVENT_TYPE in schema.names and PARTITION in schema.names:
        groups: dict[tuple[str, date], list[str]] = {}
        for et in EVENT_TYPES:
            cutoff = stores.policy.cutoff_date(et.retention, today)
            if cutoff is not None:
                groups.setdefault((et.retention, cutoff), []).append(et.name)
        return [Rule(cls, PARTITION, cutoff, tuple(types)) for (cls, cutoff), types in groups.items()]
    cls, col = class_of_table(name), time_column(schema)
    if cls is None or col is None:
        return None
    cutoff = stores.policy.cutoff_date(cls, today)
    return [] if cutoff is None else [Rule(cls, col, cutoff)]


def held_out(schema: pa.Schema, held: frozenset[str]) -> tuple[str | None, ds.Expression | None]:
    """A predicate and a filter that keep held subjects' rows out of a purge: by account, and in a table keyed
    like labels by its account labels."""
    names = set(schema.names)
    if not held or not (ACCOUNT_COLUMN in names or {SUBJECT_TYPE, SUBJECT_ID} <= names):
        return None, None
    values = pa.array(sorted(held), pa.string())
    preds: list[str] = []
    expr: ds.Expression | None = None
    if ACCOUNT_COLUMN in names:
        preds.append(f"({ACCOUNT_COLUMN} IS NULL OR NOT ({in_list(ACCOUNT_COLUMN, held)}))")
        expr = ds.field(ACCOUNT_COLUMN).is_null() | ~ds.field(ACCOUNT_COLUMN).isin(values)
    if {SUBJECT_TYPE, SUBJECT_ID} <= names:
        preds.append(
            f"({SUBJECT_TYPE} IS NULL OR {SUBJECT_TYPE} <> 'account' OR {SUBJECT_ID} IS NULL "
            f"OR NOT ({in_list(SUBJECT_ID, held)}))"
        )
        typed = (
            ds.field(SUBJECT_TYPE).is_null()
            | (ds.field(SUBJECT_TYPE) != "account")
            | ds.field(SUBJECT_ID).is_null()
            | ~ds.field(SUBJECT_ID).isin(values)
        )
        expr = typed if expr is None else expr & typed
    return _and(*preds), expr


def _and(*terms: str | None) -> str:
    return " AND ".join(f"({t})" for t in terms if t)


@dataclass(slots=True)
class PurgeReport:
    """What one purge removed, per store, and the maintenance it did."""

    removed: dict[str, int] = field(default_factory=dict)
    files_vacuumed: int = 0
    partitions_clustered: int = 0
    subjects_held: int = 0

    def add(self, store: str, n: int) -> None:
        self.removed[store] = self.removed.get(store, 0) + n

    def counts(self) -> dict[str, int]:
        """Flat counts for the audit record and the summary."""
        return {
            **{f"removed.{k}": v for k, v in sorted(self.removed.items())},
            "files_vacuumed": self.files_vacuumed,
            "partitions_clustered": self.partitions_clustered,
            "subjects_held": self.subjects_held,
        }


@dataclass(frozen=True, slots=True)
class _Purge:
    """What one purge run knows before it starts: today, the holds and how far earlier runs got."""

    today: date
    held: frozenset[str]
    ended: frozenset[str]  # subjects whose hold ended since the last run
    marks: dict[tuple[str, str], date]
    last_runs: dict[str, datetime]  # lake store -> when its last purge finished (wall clock, as file times are)


def _purge_table(stores: Stores, name: str, run: _Purge) -> int:
    schema = lakes.schema(stores.lake_dir, name)
    rules = lake_rules(stores, name, schema, run.today)
    if rules is None:
        log.warning("lake table %s has no retention class: nothing purged from it", name)
        return 0
    held_pred, held_expr = held_out(schema, run.held)
    removed = 0
    covered = {t for r in rules for t in (r.event_types or ())}
    if lakes.partitioned(stores.lake_dir, name) and covered == {e.name for e in EVENT_TYPES} and not run.held:
        floor = min(r.cutoff for r in rules)  # every type has expired before this day: drop whole partitions
        if any(day < floor for day in lakes.partition_dates(stores.lake_dir, name)):
            predicate = f"{PARTITION} < {literal(floor)}"
            removed += lakes.drop_partitions(stores.lake_dir, name, predicate, "retention").rows
    store = f"lake:{name}"
    due = [
        (r, _since(stores, name, r, run.marks.get((store, r.retention_class)), run.last_runs.get(store))) for r in rules
    ]
    due = [(r, since) for r, since in due if since is None or since < r.cutoff]
    if due:  # one pass over the table for every class: each file is rewritten at most once
        where = _with(_any([r.expression(schema, since) for r, since in due]), held_expr)
        pruning: lake_rewrite.Pruning = _and(" OR ".join(f"({r.predicate(since)})" for r, since in due), held_pred)
        if all(r.time_col == PARTITION for r, _ in due) and lakes.partitioned(stores.lake_dir, name):
            pruning = lake_rewrite.any_of(*(lake_rewrite.partition_between(PARTITION, s, r.cutoff) for r, s in due))
        removed += lakes.delete_where(stores.lake_dir, name, pruning, where, "retention").rows
        run.marks.update({(store, rule.retention_class): rule.cutoff for rule, _ in due})
    ended = SubjectRows(run.ended)
    if run.ended and rules and (mine := ended.expression(schema)) is not None:  # catch up with what a hold kept
        where = _with(_any([r.expression(schema) for r in rules]) & mine, held_expr)
        pruning = lake_rewrite.may_hold(ended.values(schema))
        removed += lakes.delete_where(stores.lake_dir, name, pruning, where, "retention").rows
    return removed


def _since(stores: Stores, name: str, rule: Rule, mark: date | None, last_run: datetime | None) -> date | None:
    """Where the purge of ``rule`` starts: its watermark, lowered to the oldest day of files added since the last
    run finished (late-arriving data dated before the watermark; files the purge rewrites itself are older)."""
    if mark is None or last_run is None:
        return mark
    late = lakes.oldest_added_since(stores.lake_dir, name, rule.time_col, last_run)
    return mark if late is None or late >= mark else late


def _any(exprs: list[ds.Expression]) -> ds.Expression:
    out = exprs[0]
    for expr in exprs[1:]:
        out = out | expr
    return out


def _with(expr: ds.Expression, extra: ds.Expression | None) -> ds.Expression:
    return expr if extra is None else expr & extra


def snapshot_files(stores: Stores) -> Iterator[tuple[str, str, Path]]:
    """(store, retention class, file) of every snapshot file."""
    for store, root in stores.snapshot_roots.items():
        cls = SERVING_CLASS if store == "serving" else MODELS_CLASS
        for path in snapshots.files(root):
            yield store, cls, path


def _expired_mask(schema: pa.Schema, col: str, cutoff: date, held: frozenset[str]) -> ds.Expression:
    _, keep_held = held_out(schema, held)
    expr = before(schema, col, cutoff)
    return expr if keep_held is None else expr & keep_held


def _purge_snapshots(stores: Stores, today: date, held: frozenset[str], report: PurgeReport) -> None:
    for store, cls, path in snapshot_files(stores):
        cutoff = stores.policy.cutoff_date(cls, today)
        if cutoff is None:
            continue
        schema = snapshots.schema(path)
        col = time_column(schema)
        if col is not None:
            expr = _expired_mask(schema, col, cutoff, held)
            report.add(store, snapshots.remove_rows(path, lambda t, e=expr: mask_where(t, e)))
        elif snapshots.modified_at(path).date() < cutoff and not holds_any(path, held):
            report.add(store, snapshots.remove_file(path))


def holds_any(path: Path, held: frozenset[str]) -> bool:
    """Whether a snapshot file holds rows of a held subject."""
    return bool(held) and True in SubjectRows(held).mask(snapshots.read(path)).to_pylist()


def _purge_quarantine(stores: Stores, now: datetime, held: frozenset[str]) -> int:
    cutoff = stores.policy.cutoff("quarantine", now)
    if cutoff is None:
        return 0
    removed = 0
    subject = SubjectRows(held)

    def not_held(raws: Sequence[bytes]) -> list[bool]:
        return [not hit for hit in records_matching(raws, subject, stores.keyring)]

    for batch in quarantine.batches(stores.quarantine_dir):
        if quarantine.written_at(stores.quarantine_dir, batch) >= cutoff:
            continue
        if not held:
            removed += quarantine.remove_batch(stores.quarantine_dir, batch)
            continue
        key = stores.quarantine_keys[quarantine.key_id(stores.quarantine_dir, batch)]
        removed += quarantine.remove_records(stores.quarantine_dir, batch, key, not_held)
    return removed


def purge_landing(stores: Stores, retention: timedelta, now: datetime, held: frozenset[str]) -> tuple[list[str], int]:
    """Remove raw landing files past ``retention`` except those holding a held subject's records; returns the
    batch ids of ingested files removed and how many other files (labels, truth, strays) went."""
    expired = landing.expired_files(stores.landing_dir, stores.warehouse_path, retention, now)
    expired += landing.expired_unledgered(stores.landing_dir, retention, now)
    expired += landing.readable_strays(landing.expired_strays(stores.landing_dir, retention, now))
    keep = (
        frozenset(subject_data.landing_holding(stores, SubjectRows(held), expired)) if held and expired else frozenset()
    )
    removed = landing.purge_processed(stores.landing_dir, stores.warehouse_path, retention, now, keep)
    others = landing.purge_unledgered(stores.landing_dir, retention, now, keep)
    return removed, others + landing.purge_strays(stores.landing_dir, retention, now, keep)


def expire_landing(stores: Stores, now: datetime, held: frozenset[str] | None = None) -> tuple[list[str], int]:
    """:func:`purge_landing` at the retention policy's ``landing_raw`` period, the one source of it (the
    contract's, or the retention config's), for the ingest flow and the daily purge alike. ``held``: the
    subjects under a legal hold (read from the warehouse when not given)."""
    days = stores.policy.days("landing_raw")
    if days is None:  # kept as the law requires: purged only on request
        return [], 0
    if held is None:
        held = governance.held_subjects(stores.warehouse_path, now)
    return purge_landing(stores, timedelta(days=days), now, held)


@exclusive
def purge(stores: Stores, now: datetime) -> PurgeReport:
    """Remove everything older than its class's period from every store, except what holds keep."""
    report = PurgeReport()
    holds = governance.holds(stores.warehouse_path)
    held = frozenset(h.subject_pid for h in holds if h.active(now))
    ended_holds = [h for h in holds if not h.active(now) and h.swept_at is None]
    run = _Purge(
        now.date(),
        held,
        frozenset(h.subject_pid for h in ended_holds) - held,
        governance.watermarks(stores.warehouse_path),
        governance.last_runs(stores.warehouse_path),
    )
    report.subjects_held = len(held)
    today = run.today
    try:
        for name in lakes.tables(stores.lake_dir):
            report.add(f"lake.{name}", _purge_table(stores, name, run))
    finally:  # the signal log is a copy of the lake's events: it goes with them; scoring rebuilds it from the rest
        report.add("signals", signal_log.drop(stores.signals_dir))
    governance.set_watermarks(stores.warehouse_path, run.marks)
    account_cutoff = stores.policy.cutoff("account", now)
    if account_cutoff is not None:
        report.add("warehouse", sum(governance.purge_state(stores.warehouse_path, account_cutoff, held).values()))
    _purge_snapshots(stores, today, held, report)
    report.add("quarantine", _purge_quarantine(stores, now, held))
    removed, unledgered = expire_landing(stores, now, held)
    report.add("landing", len(removed) + unledgered)
    if (export_cutoff := stores.policy.cutoff("request_export", now)) is not None:
        report.add("requests", request_files.remove_exports_before(stores.requests_dir, export_cutoff))
    report.add("request_subjects", governance.forget_subjects(stores.warehouse_path, now - SUBJECT_KEPT))
    report.add("entrust", len(revoke_expired(stores, now)))  # extracts past their last day (4.4)
    if (audit_cutoff := stores.policy.cutoff("audit_log", now)) is not None:
        report.add("audit", audit.expire(stores.audit, audit_cutoff))
    for name in lakes.tables(stores.lake_dir):
        if lakes.partitioned(stores.lake_dir, name):
            report.partitions_clustered += lakes.cluster(stores.lake_dir, name, stores.cluster_file_bytes)
        report.files_vacuumed += lakes.vacuum(stores.lake_dir, name, stores.grace)
    report.add("signals", signal_log.drop(stores.signals_dir))  # a log built meanwhile covers files clustering replaced
    finished = datetime.now(UTC)  # after the purge's own rewrites and clustering: they are not late data
    governance.set_last_runs(
        stores.warehouse_path, {f"lake:{name}": finished for name in lakes.tables(stores.lake_dir)}
    )
    governance.mark_swept(stores.warehouse_path, [h.hold_id for h in ended_holds], now)
    return report


def purge_markdown(report: PurgeReport) -> str:
    """The purge's counts as a Markdown table (counts only, never values)."""
    rows = "\n".join(f"| {name} | {n:,} |" for name, n in report.counts().items())
    return f"# Retention purge\n\n| | count |\n|---|---:|\n{rows}\n"
