"""``devicerisk retention verify``: is any record in any store older than its class's period without a hold?"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from devicerisk.governance.entrust import overdue
from devicerisk.governance.purge import held_out, holds_any, lake_rules, snapshot_files
from devicerisk.governance.requests import SUBJECT_KEPT
from devicerisk.governance.stores import Stores, before, time_column
from devicerisk.store import audit, governance, landing, quarantine, request_files, signal_log, snapshots
from devicerisk.store import lake_maintenance as lakes
from devicerisk.store.rows import mask_where


@dataclass(frozen=True, slots=True)
class Violation:
    """Records kept past their period (or a table no retention class covers)."""

    store: str
    where: str
    retention_class: str
    records: int


def _lake(stores: Stores, now: datetime, held: frozenset[str]) -> list[Violation]:
    out: list[Violation] = []
    for name in lakes.tables(stores.lake_dir):
        schema = lakes.schema(stores.lake_dir, name)
        rules = lake_rules(stores, name, schema, now.date())
        if rules is None:
            out.append(Violation("lake", name, "none: the table has no retention class", -1))
            continue
        _, keep_held = held_out(schema, held)
        for rule in rules:
            expr = rule.expression(schema)
            n = lakes.count_where(stores.lake_dir, name, expr if keep_held is None else expr & keep_held)
            if n:
                out.append(Violation("lake", name, rule.retention_class, n))
    return out


def _snapshots(stores: Stores, now: datetime, held: frozenset[str]) -> list[Violation]:
    out: list[Violation] = []
    for store, cls, path in snapshot_files(stores):
        cutoff = stores.policy.cutoff_date(cls, now.date())
        if cutoff is None:
            continue
        schema = snapshots.schema(path)
        col = time_column(schema)
        if col is None:
            old = snapshots.modified_at(path).date() < cutoff and not holds_any(path, held)
            n = snapshots.read(path).num_rows if old else 0
        else:
            _, keep_held = held_out(schema, held)
            expr = before(schema, col, cutoff)
            mask = mask_where(snapshots.read(path), expr if keep_held is None else expr & keep_held)
            n = mask.to_pylist().count(True)
        if n:
            out.append(Violation(store, str(path.relative_to(stores.data_dir)), cls, n))
    return out


def _small_stores(stores: Stores, now: datetime, held: frozenset[str]) -> list[Violation]:
    out: list[Violation] = []
    policy = stores.policy
    if (cutoff := policy.cutoff("account", now)) is not None:
        for table, n in governance.purge_state(stores.warehouse_path, cutoff, held, dry_run=True).items():
            if n:
                out.append(Violation("warehouse", table, "account", n))
    if (cutoff := policy.cutoff("quarantine", now)) is not None:
        for batch in quarantine.batches(stores.quarantine_dir):
            if quarantine.written_at(stores.quarantine_dir, batch) < cutoff:
                out.append(
                    Violation("quarantine", batch, "quarantine", len(quarantine.reasons(stores.quarantine_dir, batch)))
                )
    if (days := policy.days("landing_raw")) is not None:
        files = landing.expired_files(stores.landing_dir, stores.warehouse_path, timedelta(days=days), now)
        if files:
            out.append(Violation("landing", "telemetry", "landing_raw", len(files)))
        for kind in landing.UNLEDGERED:
            old_files = [
                p
                for p in landing.expired_unledgered(stores.landing_dir, timedelta(days=days), now)
                if p.parent.name == kind
            ]
            if old_files:
                out.append(Violation("landing", kind, "landing_raw", len(old_files)))
        out += _landing_strays(stores, timedelta(days=days), now)
    if (cutoff := policy.cutoff("request_export", now)) is not None and (
        exports := request_files.exports_before(stores.requests_dir, cutoff)
    ):
        out.append(Violation("requests", "exports", "request_export", len(exports)))
    if kept := governance.forget_subjects(stores.warehouse_path, now - SUBJECT_KEPT, dry_run=True):
        out.append(
            Violation("warehouse", "subject_requests (subjects of finished requests)", "request bookkeeping", kept)
        )
    if stale := signal_log.stale_rows(stores.lake_dir, stores.signals_dir):  # a copy of rows the lake let go
        out.append(Violation("signals", "built from lake files since removed", "the lake's events", stale))
    if (cutoff := policy.cutoff("audit_log", now)) is not None:
        old = sum(1 for r in audit.records(stores.audit_dir) if datetime.fromisoformat(str(r["at"])) < cutoff)
        if old:
            out.append(Violation("audit", audit.LOG_NAME, "audit_log", old))
    return out


def _landing_strays(stores: Stores, retention: timedelta, now: datetime) -> list[Violation]:
    """Files in landing that no ingest reads (dot-files, unsupported names, set-aside files), kept too long."""
    strays = landing.expired_strays(stores.landing_dir, retention, now)
    folders = Counter(str(p.parent.relative_to(stores.landing_dir)) for p in strays)
    return [Violation("landing", f"{where} (files no ingest reads)", "landing_raw", n) for where, n in folders.items()]


def _entrusted(stores: Stores, now: datetime) -> list[Violation]:
    """Entrusted extracts (4.4) kept past their end: here, or at a processor that has not confirmed its deletion."""
    return [
        Violation("entrust", f"{e.processor} ({why})", "entrusted extract (4.4)", e.rows)
        for e, why in overdue(stores, now)
    ]


def verify(stores: Stores, now: datetime) -> list[Violation]:
    """Every store's records kept past their period without an active hold (empty: retention holds)."""
    held = governance.held_subjects(stores.warehouse_path, now)
    found = [*_lake(stores, now, held), *_snapshots(stores, now, held), *_small_stores(stores, now, held)]
    return [*found, *_entrusted(stores, now)]
