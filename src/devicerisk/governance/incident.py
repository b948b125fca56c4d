"""What a security incident exposed (5.3.3): the rows of a store in an exposure window, or the files named.

The report a notification needs is built from what is found here: which contract fields the exposed rows hold
(and how: kept as sent, pseudonymised, minimised, or raw), whose data it is (account pseudonyms, and device
pseudonyms for rows without an account) and whether it was encrypted. Fields are derived from the exposed
columns through the contract's own column mapping (``contract.schema.output_columns``), never listed here.

How a window selects rows, per store (``--from`` inclusive, ``--to`` exclusive, UTC):

- a lake table (``events``, ``labels``, ``transaction_scores``, ``account_scores``, and any other): rows dated in
  the window by the first timestamp among the retention's dating columns (``TIME_COLUMNS``: ``event_time`` for
  events and transaction scores, ``scored_at`` for account scores, ``reported_at`` for labels), else by
  ``event_date`` (whole days that overlap the window);
- ``serving``, ``models``: the rows of every Parquet snapshot, dated the same way;
- ``quarantine``: the batches stored in the window (when each batch's rejects were first written);
- ``landing``: the raw files delivered in the window (their modification time).

Raw records (landing, and quarantine once decrypted in memory with its key) are pseudonymised in memory under
the current key, as ingest would, so their subjects are named by the same pseudonyms; nothing raw is kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from devicerisk.contract.fields import DEVICE_KEY_COLUMNS, FIELDS, LABEL_FIELDS
from devicerisk.contract.model import Action, Field
from devicerisk.contract.schema import LAKE_META, output_columns
from devicerisk.governance.retention import TIME_COLUMNS
from devicerisk.governance.stores import Stores
from devicerisk.governance.subjects import DOMAIN_COLUMNS, _record, _value_at
from devicerisk.ingest.read import read_batch
from devicerisk.privacy.encryption import DecryptionError
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.store import lake, landing, quarantine, scores, snapshots
from devicerisk.store import lake_maintenance as lakes
from devicerisk.store.rows import ACCOUNT_COLUMN, SUBJECT_ID, SUBJECT_TYPE, plain_strings

#: Lake tables a report may name before they exist (others are found in the lake).
LAKE_TABLES = (lake.EVENTS, lake.LABELS, scores.TRANSACTION_SCORES, scores.ACCOUNT_SCORES)
SNAPSHOT_STORES = ("serving", "models")
RAW_STORES = ("quarantine", "landing")
HELD = {Action.KEEP: "kept as sent", Action.PSEUDONYMISE: "pseudonymised", Action.MINIMISE: "minimised"}
RAW = "raw"
_META = frozenset(m.name for m in LAKE_META)


class IncidentError(ValueError):
    """An investigation that cannot run as asked (an unknown store, an inverted window, a file of no store)."""


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or time; one without an offset is UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise IncidentError(f"not an ISO 8601 date or time: {text!r}") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Window:
    """When the store was exposed: ``start`` inclusive, ``end`` exclusive; None is open on that side."""

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise IncidentError("the exposure window is empty or inverted: --to must be later than --from")

    def describe(self) -> str:
        start = "the beginning" if self.start is None else self.start.isoformat()
        return f"from {start} to {'now' if self.end is None else self.end.isoformat()}"

    def holds(self, when: datetime) -> bool:
        return (self.start is None or when >= self.start) and (self.end is None or when < self.end)

    def expression(self, schema: pa.Schema, column: str) -> ds.Expression:
        """Rows whose ``column`` (a timestamp, or a date: whole days overlapping the window) is in the window."""
        kind = schema.field(column).type
        expr = ds.scalar(True)
        if pa.types.is_timestamp(kind):
            zone = None if kind.tz is None else UTC
            if self.start is not None:
                expr &= ds.field(column) >= pa.scalar(self.start.astimezone(UTC).replace(tzinfo=zone), kind)
            if self.end is not None:
                expr &= ds.field(column) < pa.scalar(self.end.astimezone(UTC).replace(tzinfo=zone), kind)
            return expr
        if self.start is not None:
            expr &= ds.field(column) >= pa.scalar(self.start.astimezone(UTC).date(), pa.date32())
        if self.end is not None:
            last: date = (self.end.astimezone(UTC) - timedelta(microseconds=1)).date()
            expr &= ds.field(column) <= pa.scalar(last, pa.date32())
        return expr


def dating_column(schema: pa.Schema) -> str | None:
    """The column that dates a row for a window: the first timestamp of ``TIME_COLUMNS``, else the first date."""
    present = [c for c in TIME_COLUMNS if c in schema.names]
    stamps = [c for c in present if pa.types.is_timestamp(schema.field(c).type)]
    return (stamps or present or [None])[0]


@dataclass(slots=True)
class Exposure:
    """What one exposed part of a store (a table, a snapshot file, a quarantine batch, a landing file) held."""

    store: str
    part: str
    selection: str
    encrypted: bool = False
    rows: int = 0
    fields: dict[str, set[str]] = field(default_factory=dict)  # contract field path -> how it was held
    other_columns: set[str] = field(default_factory=set)  # columns no contract field makes (scores, reasons)
    accounts: set[str] = field(default_factory=set)
    devices: set[str] = field(default_factory=set)  # device pseudonyms of rows without an account
    unnamed: int = 0  # rows that name no account and no device
    key_ids: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def _column_fields() -> dict[str, tuple[Field, str]]:
    """Treated column -> (the contract field it comes from, how it holds it), by the contract's own mapping."""
    out: dict[str, tuple[Field, str]] = {}
    for f in (*FIELDS, *LABEL_FIELDS):
        for t in f.treatments:
            for column in output_columns(dataclasses.replace(f, treatments=(t,))):
                out.setdefault(column.name, (f, HELD[t.action]))
    return out


COLUMN_FIELDS = _column_fields()
#: Device key column -> (pseudonym domain, raw input path), in the device key's order.
_DEVICE_DOMAINS = {col: (d, path) for d, (path, col) in DOMAIN_COLUMNS.items() if col in DEVICE_KEY_COLUMNS}
_DEVICE_ORDER = [c for c in DEVICE_KEY_COLUMNS if c in _DEVICE_DOMAINS]


def field_of(path: str) -> Field:
    """The contract field at ``path`` (events first, then labels)."""
    return next(f for f in (*FIELDS, *LABEL_FIELDS) if f.path == path)


# -- treated rows: the lake, serving and model snapshots ------------------------------------------------------------
def _subjects(table: pa.Table) -> tuple[pa.Array, pa.Array]:
    """Each row's account pseudonym, and its device pseudonym (the contract's device key)."""
    names, n = set(table.column_names), table.num_rows
    column = {name: table.column(name).combine_chunks() for name in names}
    none = pa.nulls(n, pa.string())
    account = column.get(ACCOUNT_COLUMN, none)
    if {SUBJECT_TYPE, SUBJECT_ID} <= names:  # a label on an account names it by its own pseudonym
        by_label = pc.if_else(pc.equal(column[SUBJECT_TYPE], "account"), column[SUBJECT_ID], none)
        account = pc.coalesce(account, by_label)
    keys = [column[c] for c in DEVICE_KEY_COLUMNS if c in names]
    return account, pc.coalesce(*keys) if keys else none


def add_subjects(exp: Exposure, account: pa.Array, device: pa.Array) -> None:
    """Add rows' subjects: their accounts; the device of a row without an account; rows with neither."""
    exp.accounts |= set(pc.unique(account.drop_null()).to_pylist())
    orphan = pc.is_null(account)
    exp.devices |= set(pc.unique(device.filter(orphan).drop_null()).to_pylist())
    exp.unnamed += int(pc.sum(pc.and_(orphan, pc.is_null(device))).as_py() or 0)


def scan_treated(exp: Exposure, batches: Iterable[pa.RecordBatch]) -> None:
    """Add treated rows (pseudonyms and minimised attributes) to ``exp``, a batch at a time."""
    for batch in batches:
        if batch.num_rows == 0:
            continue
        table = plain_strings(pa.Table.from_batches([batch]))
        exp.rows += table.num_rows
        for name in table.column_names:
            if table.column(name).null_count == table.num_rows:
                continue  # a column no exposed row fills exposed nothing
            if name in COLUMN_FIELDS:
                f, held = COLUMN_FIELDS[name]
                exp.fields.setdefault(f.path, set()).add(held)
            elif name not in _META:
                exp.other_columns.add(name)
        if "key_id" in table.column_names:
            exp.key_ids |= set(pc.unique(table.column("key_id").drop_null()).to_pylist())
        add_subjects(exp, *_subjects(table))


def _lake_table(stores: Stores, name: str, window: Window) -> Exposure:
    if name not in lakes.tables(stores.lake_dir):
        exp = Exposure(name, f"lake/{name}", "no such table in the lake: nothing exposed")
        return exp
    schema = lakes.schema(stores.lake_dir, name)
    column = dating_column(schema)
    where = ds.scalar(True) if column is None else window.expression(schema, column)
    exp = Exposure(name, f"lake/{name}", f"rows with {column or 'any date'} {window.describe()}")
    data = lake.dataset(stores.lake_dir, name)
    if data is not None:
        scan_treated(exp, data.to_batches(filter=where))
    return exp


def _snapshot(store: str, root: Path, path: Path, window: Window | None) -> Exposure:
    table = plain_strings(snapshots.read(path))
    column = None if window is None else dating_column(table.schema)
    where = f" with {column} {window.describe()}" if window is not None and column is not None else ""
    exp = Exposure(store, f"{store}/{path.relative_to(root).as_posix()}", f"every row{where}")
    if window is not None and column is not None:
        table = table.filter(window.expression(table.schema, column))
    scan_treated(exp, table.to_batches())
    return exp


# -- raw records: landing files, and quarantined records decrypted in memory ---------------------------------------
def _strings(records: list[dict | None], path: str) -> pa.Array:
    values = [None if r is None else _value_at(r, path) for r in records]
    return pa.array([v if isinstance(v, str) else None for v in values], pa.string())


def scan_raw(exp: Exposure, lines: Sequence[bytes], pseudonymiser: Pseudonymiser) -> None:
    """Add raw records to ``exp``: the fields they fill, and their subjects pseudonymised in memory."""
    records = [_record(line) for line in lines]
    exp.rows += len(records)
    for f in (*FIELDS, *LABEL_FIELDS):
        if any(r is not None and _value_at(r, f.path) is not None for r in records):
            exp.fields.setdefault(f.path, set()).add(RAW)
    account = pseudonymiser.pseudonymise("account", _strings(records, "account_id"))
    kinds = _strings(records, SUBJECT_TYPE)
    if kinds.null_count < len(kinds):  # a label on an account names it by its raw id
        labelled = pseudonymiser.pseudonymise("account", _strings(records, "subject_id"))
        account = pc.coalesce(account, pc.if_else(pc.equal(kinds, "account"), labelled, pa.scalar(None, pa.string())))
    devices = [pseudonymiser.pseudonymise(*_pair(c, records)) for c in _DEVICE_ORDER]
    device = pc.coalesce(*devices) if devices else pa.nulls(len(records), pa.string())
    add_subjects(exp, account, device)


def _pair(column: str, records: list[dict | None]) -> tuple[str, pa.Array]:
    domain, path = _DEVICE_DOMAINS[column]
    return domain, _strings(records, path)


def _quarantine_batch(stores: Stores, batch: str, selection: str) -> Exposure:
    exp = Exposure("quarantine", f"quarantine/{batch}", selection, encrypted=True)
    key_id = quarantine.key_id(stores.quarantine_dir, batch)
    exp.key_ids.add(key_id)
    key = stores.quarantine_keys.get(key_id)
    try:
        if key is None:
            raise DecryptionError("sealed with a key this installation does not hold")
        records = quarantine.read(stores.quarantine_dir, batch, key)
    except DecryptionError as err:
        exp.rows = exp.unnamed = len(quarantine.reasons(stores.quarantine_dir, batch))
        exp.notes.append(f"could not be decrypted ({err}): its subjects cannot be counted without the key")
        return exp
    scan_raw(exp, [r.raw for r in records], stores.keyring[0])
    exp.notes.append(f"encrypted at rest: its subjects were counted by decrypting it in memory with key {key_id}")
    return exp


def _landing_file(stores: Stores, path: Path, selection: str) -> Exposure:
    exp = Exposure("landing", f"landing/{path.relative_to(stores.landing_dir).as_posix()}", selection)
    batch = read_batch(path)
    scan_raw(exp, [*batch.lines, *(r.raw for r in batch.rejected)], stores.keyring[0])
    return exp


def _modified(path: Path) -> datetime:
    return datetime.fromtimestamp(landing.file_version(path)[1] / 1e9, UTC)


# -- what an investigation reads ------------------------------------------------------------------------------------
def store_names(stores: Stores) -> list[str]:
    """Every store name an investigation accepts."""
    tables = sorted(set(LAKE_TABLES) | set(lakes.tables(stores.lake_dir)))
    return [*tables, *SNAPSHOT_STORES, *RAW_STORES]


def exposed_store(stores: Stores, name: str, window: Window) -> list[Exposure]:
    """What store ``name`` held in ``window``, one :class:`Exposure` per table, file or batch."""
    if name not in store_names(stores):
        raise IncidentError(f"unknown store {name!r}; the stores are: {', '.join(store_names(stores))}")
    if name in SNAPSHOT_STORES:
        root = stores.snapshot_roots[name]
        return [_snapshot(name, root, p, window) for p in snapshots.files(root)]
    if name == "quarantine":
        folder = stores.quarantine_dir
        selection = f"batches stored {window.describe()}"
        chosen = [b for b in quarantine.batches(folder) if window.holds(quarantine.written_at(folder, b))]
        return [_quarantine_batch(stores, b, selection) for b in chosen]
    if name == "landing":
        files = [*landing.pending_files(stores.landing_dir), *landing.unledgered_files(stores.landing_dir)]
        selection = f"files delivered {window.describe()}"
        return [_landing_file(stores, p, selection) for p in files if window.holds(_modified(p))]
    return [_lake_table(stores, name, window)]


def exposed_path(stores: Stores, given: Path) -> Path:
    """The file a named exposed file is: ``given`` from here, else under the data directory; it must be a file
    under the data directory (:class:`IncidentError` otherwise)."""
    path = (given if given.exists() else stores.data_dir / given).resolve()
    if not path.is_file():
        raise IncidentError(f"no such file: {given}")
    if not path.is_relative_to(stores.data_dir.resolve()):
        raise IncidentError(f"{given} is not under the data directory: it belongs to no store")
    return path


def exposed_files(stores: Stores, paths: Sequence[Path]) -> list[Exposure]:
    """What the named files held, every row of each: lake data files, snapshots, quarantine batches, landing files."""
    data = stores.data_dir.resolve()
    return [_file(stores, path, path.relative_to(data).parts) for path in (exposed_path(stores, p) for p in paths)]


def _file(stores: Stores, path: Path, parts: tuple[str, ...]) -> Exposure:
    top = parts[0]
    if top == stores.lake_dir.name and len(parts) > 2 and path.suffix == ".parquet":
        exp = Exposure(parts[1], "/".join(parts), "every row of the file")
        scan_treated(exp, snapshots.read(path).to_batches())
        return exp
    if top in SNAPSHOT_STORES and path.suffix == ".parquet":
        return _snapshot(top, stores.snapshot_roots[top], path, None)
    if top == stores.quarantine_dir.name and path.name.endswith((".records.enc", ".reasons.json")):
        batch = path.name.removesuffix(".records.enc").removesuffix(".reasons.json")
        if path.name.endswith(".reasons.json"):
            exp = Exposure("quarantine", "/".join(parts), "reasons only: line numbers and reasons, no value")
            exp.notes.append("a reasons file quotes no value: no personal data")
            return exp
        return _quarantine_batch(stores, batch, "every record of the batch")
    if top == stores.landing_dir.name and path.name.endswith(landing.SUFFIXES):
        return _landing_file(stores, path, "every record of the file")
    raise IncidentError(
        f"{'/'.join(parts)} is not a file of a store an investigation reads "
        "(lake or snapshot Parquet files, quarantine batches, landing files, entrusted extracts)"
    )
