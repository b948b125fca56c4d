"""One subject's data in every store: find it, count it, export it, erase it, and prove it is gone.

Stores are discovered, not listed: every Delta table in the lake and every Parquet snapshot under
the serving and models folders, so tables added later are covered; the extracts entrusted to processors are
matched in each one's own key domain (``governance.entrusted_data``). Quarantined records are matched
by pseudonymising their raw identifiers in memory; the warehouse by account pseudonym. The signal
log, a derived copy of the lake's events, is counted too and dropped whenever lake rows are erased.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from devicerisk.governance import entrusted_data
from devicerisk.governance.stores import Stores
from devicerisk.governance.subjects import (
    DOMAIN_COLUMNS,
    SUBJECT_DOMAINS,
    matchable,
    records_matching,
)
from devicerisk.ingest.read import read_batch
from devicerisk.store import governance, lake_rewrite, landing, quarantine, signal_log, snapshots
from devicerisk.store import lake_maintenance as lakes
from devicerisk.store.rows import ACCOUNT_COLUMN, SUBJECT_ID, SUBJECT_TYPE, TRANSACTION_COLUMN, SubjectRows

EVENTS = "events"


class UnmatchableTableError(RuntimeError):
    """A lake table holds pseudonyms in columns that no subject lookup can match: it would be silently missed."""


#: Columns by which a row can be matched to a subject (labels-like tables: with ``subject_type``).
_MATCHABLE = frozenset({ACCOUNT_COLUMN, TRANSACTION_COLUMN, *(DOMAIN_COLUMNS[d][1] for d in SUBJECT_DOMAINS)})


def check_matchable(name: str, schema: pa.Schema) -> None:
    """Refuse a table whose pseudonym columns name no subject this module can find (a new key column)."""
    names = set(schema.names)
    pids = sorted(c for c in names if c.endswith("_pid"))
    if pids and not (names & _MATCHABLE or {SUBJECT_TYPE, SUBJECT_ID} <= names):
        raise UnmatchableTableError(
            f"lake table {name} has pseudonym columns ({', '.join(pids)}) that no subject lookup can match: "
            f"key it by {ACCOUNT_COLUMN}, or by {SUBJECT_TYPE} and {SUBJECT_ID}, before it holds personal data"
        )


def _lake_tables(stores: Stores, subject: SubjectRows) -> list[tuple[str, pa.Schema]]:
    found = []
    for name in lakes.tables(stores.lake_dir):
        schema = lakes.schema(stores.lake_dir, name)
        check_matchable(name, schema)
        if subject.applies(schema):
            found.append((name, schema))
    return found


def with_transactions(stores: Stores, subject: SubjectRows) -> SubjectRows:
    """``subject`` with the pseudonyms of their transactions, by which labels on transactions are keyed.

    Taken when a request is received and stored with it: the lake step deletes the events they come from.
    """
    if EVENTS not in lakes.tables(stores.lake_dir):
        return subject
    schema = lakes.schema(stores.lake_dir, EVENTS)
    expr = subject.expression(schema)
    if expr is None or TRANSACTION_COLUMN not in schema.names:
        return subject
    rows = lakes.read_where(stores.lake_dir, EVENTS, expr & ds.field(TRANSACTION_COLUMN).is_valid())
    found = set(pc.unique(rows.column(TRANSACTION_COLUMN)).to_pylist())
    if not found:
        return subject
    known = subject.identifiers.get(TRANSACTION_COLUMN, frozenset())
    return SubjectRows(subject.accounts, {**subject.identifiers, TRANSACTION_COLUMN: known | frozenset(found)})


def _snapshot_key(stores: Stores, store: str, path: Path) -> str:
    return f"{store}/{path.relative_to(stores.snapshot_roots[store]).as_posix()}"


def _quarantine_records(stores: Stores, subject: SubjectRows) -> dict[str, list[quarantine.Rejected]]:
    """Quarantined records of the subject, per batch (the records are decrypted in memory only)."""
    out: dict[str, list[quarantine.Rejected]] = {}
    for batch in quarantine.batches(stores.quarantine_dir):
        key = stores.quarantine_keys[quarantine.key_id(stores.quarantine_dir, batch)]
        records = quarantine.read(stores.quarantine_dir, batch, key)
        hits = records_matching([r.raw for r in records], subject, stores.keyring)
        mine = [r for r, hit in zip(records, hits, strict=True) if hit]
        if mine:
            out[batch] = mine
    return out


def _quarantine_matches(stores: Stores, subject: SubjectRows) -> dict[str, int]:
    """How many quarantined records of the subject each batch holds."""
    return {batch: len(records) for batch, records in _quarantine_records(stores, subject).items()}


def unmatchable_quarantine(stores: Stores) -> tuple[int, datetime | None]:
    """Quarantined records no subject can be matched to (see ``subjects.matchable``), and when the newest batch
    holding any was written (its retention runs from then)."""
    n, newest = 0, None
    for batch in quarantine.batches(stores.quarantine_dir):
        key = stores.quarantine_keys[quarantine.key_id(stores.quarantine_dir, batch)]
        if k := sum(not matchable(r.raw) for r in quarantine.read(stores.quarantine_dir, batch, key)):
            n += k
            written = quarantine.written_at(stores.quarantine_dir, batch)
            newest = written if newest is None else max(newest, written)
    return n, newest


def locate(stores: Stores, subject: SubjectRows) -> dict[str, int]:
    """How many records each store holds about the subject (stores holding none are left out)."""
    counts: dict[str, int] = {}
    for name, schema in _lake_tables(stores, subject):
        expr = subject.expression(schema)
        if expr is not None and (n := lakes.count_where(stores.lake_dir, name, expr)):
            counts[f"lake.{name}"] = n
    for store, root in stores.snapshot_roots.items():
        n = sum(pc.sum(subject.mask(snapshots.read(p))).as_py() or 0 for p in snapshots.files(root))
        if n:
            counts[store] = n
    if n := signal_log.subject_rows(stores.signals_dir, subject):
        counts["signals"] = n
    if q := sum(_quarantine_matches(stores, subject).values()):
        counts["quarantine"] = q
    if raw := sum(landing_holding(stores, subject).values()):
        counts["landing"] = raw
    if subject.accounts:
        for table, rows in governance.subject_state(stores.warehouse_path, subject.accounts).items():
            if rows.num_rows:
                counts[f"warehouse.{table}"] = rows.num_rows
    if n := entrusted_data.subject_rows(stores, subject):
        counts["entrust"] = n
    return counts


def collect(stores: Stores, subject: SubjectRows) -> dict[str, pa.Table]:
    """Every row held about the subject, per table or snapshot file, and their raw records in quarantine and landing
    (column ``record``, as received; unmasked: mask before showing)."""
    tables: dict[str, pa.Table] = {}
    for name, schema in _lake_tables(stores, subject):
        expr = subject.expression(schema)
        rows = lakes.read_where(stores.lake_dir, name, expr) if expr is not None else None
        if rows is not None and rows.num_rows:
            tables[f"lake.{name}"] = rows
    for store, root in stores.snapshot_roots.items():
        for path in snapshots.files(root):
            table = snapshots.read(path)
            rows = table.filter(subject.mask(table))
            if rows.num_rows:
                tables[_snapshot_key(stores, store, path)] = rows
    if subject.accounts:
        for name, rows in governance.subject_state(stores.warehouse_path, subject.accounts).items():
            if rows.num_rows:
                tables[f"warehouse.{name}"] = rows
    found = _quarantine_records(stores, subject)
    if found:
        rejected = [(batch, r) for batch, records in found.items() for r in records]
        tables["quarantine"] = pa.table(
            {
                "batch_id": [b for b, _ in rejected],
                "line": [r.line for _, r in rejected],
                "reason": [r.reason for _, r in rejected],
                "record": [r.raw for _, r in rejected],
            }
        )
    files = [*landing.pending_files(stores.landing_dir), *landing.unledgered_files(stores.landing_dir)]
    raw = [(path.parent.name, line) for path in files for line in _landing_lines(stores, subject, path)]
    if raw:
        tables["landing"] = pa.table({"kind": [k for k, _ in raw], "record": [line for _, line in raw]})
    return tables


def event_counts(stores: Stores, subject: SubjectRows) -> pa.Table:
    """The subject's events per (event_date, event_type): what an anonymised account leaves behind."""
    schema = pa.schema([("event_date", pa.date32()), ("event_type", pa.string()), ("events", pa.int64())])
    if EVENTS not in lakes.tables(stores.lake_dir):
        return schema.empty_table()
    expr = subject.expression(lakes.schema(stores.lake_dir, EVENTS))
    if expr is None:
        return schema.empty_table()
    rows = lakes.read_where(stores.lake_dir, EVENTS, expr).select(["event_date", "event_type"])
    grouped = rows.group_by(["event_date", "event_type"]).aggregate([("event_type", "count")])
    return grouped.rename_columns(["event_date", "event_type", "events"]).cast(schema)


def erase_lake(stores: Stores, subject: SubjectRows, action: str) -> lakes.DeleteOutcome:
    """Delete the subject's rows from every lake table (one commit per table that holds any), and drop the
    signal log built from them: the next scoring rebuilds it from what is left."""
    outcome = lakes.DeleteOutcome()
    try:
        for name, schema in _lake_tables(stores, subject):
            where = subject.expression(schema)
            if where is not None:  # files whose account or identifier ranges cannot hold the subject are skipped
                pruning = lake_rewrite.may_hold(subject.values(schema))
                outcome = outcome + lakes.delete_where(stores.lake_dir, name, pruning, where, action)
    finally:  # after the commits (even if a later table failed): a refresh from then on reads the rows without them
        signal_log.drop(stores.signals_dir)
    return outcome


def erase_snapshots(stores: Stores, subject: SubjectRows) -> int:
    """Rewrite every snapshot file that holds the subject without their rows."""
    return sum(
        snapshots.remove_rows(p, subject.mask) for root in stores.snapshot_roots.values() for p in snapshots.files(root)
    )


def erase_quarantine(stores: Stores, subject: SubjectRows) -> int:
    """Remove the subject's quarantined records (re-sealed under the batch's own key)."""
    removed = 0
    for batch in _quarantine_matches(stores, subject):
        key = stores.quarantine_keys[quarantine.key_id(stores.quarantine_dir, batch)]
        removed += quarantine.remove_records(
            stores.quarantine_dir, batch, key, lambda raws: records_matching(raws, subject, stores.keyring)
        )
    return removed


def vacuum_lake(stores: Stores, grace: timedelta) -> int:
    """Vacuum every lake table, so deleted rows' files go once no reader can need them."""
    return sum(lakes.vacuum(stores.lake_dir, name, grace) for name in lakes.tables(stores.lake_dir))


def left_on_disk(stores: Stores, subject: SubjectRows) -> int:
    """Rows of the subject in any Parquet file on disk, referenced by a table version or not, in any file of the
    signal log, and in the entrusted extracts kept here."""
    n = 0
    for name in lakes.tables(stores.lake_dir):
        check_matchable(name, lakes.schema(stores.lake_dir, name))
        n += sum(lakes.rows_in_file(p, subject.mask, subject.columns) for p in lakes.data_files(stores.lake_dir, name))
    for root in stores.snapshot_roots.values():
        n += sum(pc.sum(subject.mask(snapshots.read(p))).as_py() or 0 for p in snapshots.files(root))
    n += signal_log.subject_rows(stores.signals_dir, subject, on_disk=True)
    return n + entrusted_data.subject_rows(stores, subject)


def _pseudonyms(subject: SubjectRows) -> frozenset[str]:
    return frozenset(subject.accounts).union(*subject.identifiers.values())


def _held_by_others(stores: Stores, name: str, schema: pa.Schema, subject: SubjectRows) -> frozenset[str]:
    """The subject's pseudonyms that rows of table ``name`` still hold: other people's (a shared device), once the
    subject's own rows are gone. Those may stay in the table's files and log."""
    values = subject.values(schema)
    if not values:
        return frozenset()
    terms = [ds.field(c).isin(pa.array(sorted(v), pa.string())) for c, v in values.items()]
    rows = lakes.read_where(stores.lake_dir, name, functools.reduce(operator.or_, terms), list(values))
    held: set[str] = set().union(*(rows.column(c).to_pylist() for c in values))
    return frozenset(held & _pseudonyms(subject))


def left_in_logs(stores: Stores, subject: SubjectRows) -> dict[str, int]:
    """Per lake table, how many files of its Delta log (commits, checkpoints) name the subject: a pseudonym of
    theirs that no row of the table holds any more, e.g. in the min/max statistics of a removed file."""
    out: dict[str, int] = {}
    for name in lakes.tables(stores.lake_dir):
        schema = lakes.schema(stores.lake_dir, name)
        wanted = _pseudonyms(subject) - _held_by_others(stores, name, schema, subject)
        if n := sum(lakes.log_file_names(p, wanted) for p in lakes.log_files(stores.lake_dir, name)):
            out[name] = n
    return out


def checkpoint_lake(stores: Stores, names: Iterable[str]) -> None:
    """Checkpoint tables ``names`` now, so that their log entries before it can go once the grace has passed."""
    for name in names:
        lakes.checkpoint(stores.lake_dir, name)


def _landing_columns() -> dict[str, str]:
    """The DuckDB column types that read only a landing record's subject identifiers."""
    nested: dict[str, list[str]] = {}
    for domain in ("account", *SUBJECT_DOMAINS):
        top, _, leaf = DOMAIN_COLUMNS[domain][0].partition(".")
        nested.setdefault(top, []).append(leaf)
    return {
        top: "VARCHAR" if leaves == [""] else f"STRUCT({', '.join(f'{leaf} VARCHAR' for leaf in leaves)})"
        for top, leaves in nested.items()
    }


_LANDING_COLUMNS = _landing_columns()


def _landing_mask(stores: Stores, subject: SubjectRows, path: Path) -> pa.BooleanArray | None:
    """Which records of a raw telemetry file are the subject's, pseudonymised in memory as ingest would, in file
    order; None for a file DuckDB cannot read whole."""
    raw = landing.read_json_typed(path, _LANDING_COLUMNS)
    if raw is None:
        return None
    values: dict[str, pa.Array] = {}
    for domain in ("account", *SUBJECT_DOMAINS):
        top, _, leaf = DOMAIN_COLUMNS[domain][0].partition(".")
        column = raw.column(top).combine_chunks()
        values[domain] = pc.struct_field(column, leaf) if leaf else column
    hits = pa.array([False] * raw.num_rows, pa.bool_())
    for pseudonymiser in stores.keyring:
        pids = {DOMAIN_COLUMNS[d][1]: pseudonymiser.pseudonymise(d, v) for d, v in values.items()}
        hits = pc.or_(hits, subject.mask(pa.table(pids)))
    return hits


def _landing_hits(stores: Stores, subject: SubjectRows, path: Path) -> int:
    """How many of the subject's records one raw telemetry file holds."""
    hits = _landing_mask(stores, subject, path)
    return len(_landing_lines(stores, subject, path)) if hits is None else int(pc.sum(hits).as_py() or 0)


def _landing_lines(stores: Stores, subject: SubjectRows, path: Path) -> list[bytes]:
    """The subject's raw records in one landing file.

    A telemetry file DuckDB reads whole is matched in one vectorised pass, its rows taken as its lines in order;
    the lines so chosen are checked again on their own, so a file whose rows and lines do not align can never hand
    over someone else's record: it is matched record by record instead.
    """
    hits = None if path.parent.name in landing.UNLEDGERED else _landing_mask(stores, subject, path)
    if hits is not None and not pc.any(hits).as_py():
        return []
    lines = read_batch(path).lines
    if hits is not None and len(hits) == len(lines):
        chosen = [line for line, hit in zip(lines, hits.to_pylist(), strict=True) if hit]
        if all(records_matching(chosen, subject, stores.keyring)):
            return chosen
    return [line for line, hit in zip(lines, records_matching(lines, subject, stores.keyring), strict=True) if hit]


def _unledgered_hits(stores: Stores, subject: SubjectRows, path: Path) -> int:
    """The subject's records in a raw labels (or truth) file (these files are small)."""
    return len(_landing_lines(stores, subject, path))


def landing_holding(stores: Stores, subject: SubjectRows, among: list[Path] | None = None) -> dict[Path, int]:
    """Raw landing files of every kind (or ``among`` those given) that hold the subject's records, with how many."""
    ledgered = (
        landing.pending_files(stores.landing_dir)
        if among is None
        else [p for p in among if p.parent.name not in landing.UNLEDGERED]
    )
    unledgered = (
        landing.unledgered_files(stores.landing_dir)
        if among is None
        else [p for p in among if p.parent.name in landing.UNLEDGERED]
    )
    found = {path: _landing_hits(stores, subject, path) for path in ledgered}
    found |= {path: _unledgered_hits(stores, subject, path) for path in unledgered}
    return {path: n for path, n in found.items() if n}


def erase_landing(stores: Stores, subject: SubjectRows, now: datetime) -> tuple[int, int]:
    """Remove the raw landing batches that hold the subject, ahead of their retention.

    Returns (files removed, files not yet ingested that hold the subject). While any is not yet
    ingested nothing is removed: it must be ingested first, or the erasure would be undone by the
    next ingest.
    """
    holding = [p for p in landing_holding(stores, subject) if p.parent.name not in landing.UNLEDGERED]
    waiting = [p for p in holding if not landing.ingested(stores.warehouse_path, p)]
    if waiting:
        return 0, len(waiting)
    removed = sum(landing.remove_processed(stores.landing_dir, stores.warehouse_path, p, now) for p in holding)
    for path in landing.unledgered_files(stores.landing_dir):  # no ledger: the subject's lines are cut out
        landing.remove_lines(path, lambda lines: records_matching(lines, subject, stores.keyring))
    return removed, 0
