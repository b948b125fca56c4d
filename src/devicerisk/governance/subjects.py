"""Finding a data subject from the raw identifiers they give (account id, phone, device ids).

Each identifier is normalised and pseudonymised exactly as ingest does, under every key of the
keyring (the current key and the previous ones whose data has not aged out), so rows written before
a key rotation are found too. A phone number links to the one account it is currently registered with
(refused when several are: numbers are shared and recycled); a device id never links to accounts,
because a device can be shared: it finds only rows that have no account.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from devicerisk.contract.fields import FIELDS
from devicerisk.contract.model import Action
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.store import lake_maintenance as lakes
from devicerisk.store.rows import ACCOUNT_COLUMN, SUBJECT_ID, SUBJECT_TYPE, SubjectRows

#: Identifier domains a subject may give, besides the account id, and their lake columns.
SUBJECT_DOMAINS = ("phone", "imei", "meid", "mac", "idfa", "idfv", "oaid", "android_id", "imsi", "iccid")
_MAX_ACCOUNT_ID = 128


def _columns() -> dict[str, tuple[str, str]]:
    """domain -> (input path, lake column) for every pseudonymised field."""
    out: dict[str, tuple[str, str]] = {}
    for f in FIELDS:
        for t in f.treatments:
            if t.action is Action.PSEUDONYMISE and t.name is not None:
                out[t.name] = (f.path, f"{f.column}_pid")
    return out


DOMAIN_COLUMNS = _columns()


class MalformedIdentifierError(ValueError):
    """An identifier that cannot be normalised (the message names its kind, never its value)."""


class UnknownSubjectError(LookupError):
    """No store holds anything about the identifiers given."""


@dataclass(frozen=True, slots=True)
class Identifiers:
    """What a data subject tells us about themselves: raw values, held in memory only."""

    account_id: str | None = None
    phone: str | None = None
    devices: Mapping[str, str] = field(default_factory=dict)  # domain (imei, mac, ...) -> raw value

    def __repr__(self) -> str:  # never print the values
        given = [n for n, v in (("account_id", self.account_id), ("phone", self.phone)) if v] + sorted(self.devices)
        return f"Identifiers({', '.join(given)})"

    def items(self) -> list[tuple[str, str]]:
        """(domain, raw value) pairs."""
        pairs = [("account", self.account_id), ("phone", self.phone), *self.devices.items()]
        return [(d, v) for d, v in pairs if v is not None]


def pseudonymise_identifiers(ids: Identifiers, keyring: Iterable[Pseudonymiser]) -> SubjectRows:
    """The subject's pseudonyms under every key, before phone numbers are linked to accounts."""
    pairs = ids.items()
    if not pairs:
        raise MalformedIdentifierError("give at least one identifier: an account id, a phone number or a device id")
    for domain, _ in pairs:
        if domain != "account" and domain not in SUBJECT_DOMAINS:
            raise MalformedIdentifierError(f"unknown identifier kind {domain!r} (known: {', '.join(SUBJECT_DOMAINS)})")
    if ids.account_id is not None and len(ids.account_id) > _MAX_ACCOUNT_ID:
        raise MalformedIdentifierError(f"the account id is longer than {_MAX_ACCOUNT_ID} characters")
    accounts: set[str] = set()
    identifiers: dict[str, set[str]] = {}
    for pseudonymiser in keyring:
        for domain, value in pairs:
            pid = pseudonymiser.pseudonymise_one(domain, value)
            if pid is None:
                raise MalformedIdentifierError(f"the {domain} identifier given is malformed or a placeholder")
            if domain == "account":
                accounts.add(pid)
            else:
                identifiers.setdefault(DOMAIN_COLUMNS[domain][1], set()).add(pid)
    return SubjectRows(frozenset(accounts), {c: frozenset(v) for c, v in identifiers.items()})


class AmbiguousPhoneError(ValueError):
    """A phone number currently registered with more than one account: the caller must name the account."""


def link_phone_accounts(lake_dir: Path, subject: SubjectRows) -> SubjectRows:
    """``subject`` with the account whose latest registered phone number is theirs added.

    Numbers are shared (family phones) and recycled, so an account an earlier number was registered with
    is not the subject's, and a number registered with several accounts is refused: the account must be
    named. When the account is named, the phone number only finds rows without an account.
    """
    phone_column = DOMAIN_COLUMNS["phone"][1]
    phones = subject.identifiers.get(phone_column)
    if not phones or subject.accounts:
        return subject
    linked: set[str] = set()
    for name in lakes.tables(lake_dir):
        schema = lakes.schema(lake_dir, name)
        if {phone_column, ACCOUNT_COLUMN} <= set(schema.names):
            linked |= _current_holders(lake_dir, name, schema, phone_column, phones)
    if len(linked) > 1:
        raise AmbiguousPhoneError(
            f"the phone number is registered with {len(linked)} accounts: name the account as well (--account)"
        )
    return SubjectRows(frozenset(linked), subject.identifiers)


def _current_holders(lake_dir: Path, name: str, schema: pa.Schema, column: str, phones: frozenset[str]) -> set[str]:
    """Accounts in table ``name`` whose latest registration (by ``event_time``) gives one of ``phones``."""
    where = ds.field(column).isin(pa.array(sorted(phones), pa.string()))
    candidates = pc.unique(lakes.read_where(lake_dir, name, where).column(ACCOUNT_COLUMN)).drop_null()
    if len(candidates) == 0 or "event_time" not in schema.names:
        return set(candidates.to_pylist())
    rows = lakes.read_where(lake_dir, name, ds.field(ACCOUNT_COLUMN).isin(candidates) & ds.field(column).is_valid())
    latest = rows.select([ACCOUNT_COLUMN, "event_time", column]).sort_by([("event_time", "descending")]).to_pylist()
    current: dict[str, str] = {}
    for row in latest:
        current.setdefault(row[ACCOUNT_COLUMN], row[column])
    return {account for account, phone in current.items() if phone in phones}


def resolve(ids: Identifiers, keyring: Iterable[Pseudonymiser], lake_dir: Path) -> SubjectRows:
    """The subject's rows, from the raw identifiers they give."""
    return link_phone_accounts(lake_dir, pseudonymise_identifiers(ids, list(keyring)))


def to_json(subject: SubjectRows) -> dict[str, object]:
    """The subject as stored with a request: pseudonyms only."""
    return {"accounts": sorted(subject.accounts), "identifiers": {c: sorted(v) for c, v in subject.identifiers.items()}}


def from_json(data: Mapping[str, object]) -> SubjectRows:
    """The inverse of :func:`to_json`."""
    identifiers = data.get("identifiers") or {}
    assert isinstance(identifiers, dict)
    return SubjectRows(frozenset(data.get("accounts") or ()), {c: frozenset(v) for c, v in identifiers.items()})  # type: ignore[arg-type]


def _record(raw: bytes) -> dict | None:
    """A raw record as a JSON object, or None if it is not one."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _value_at(record: dict, path: str) -> object:
    node: object = record
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _raw_value(record: dict, path: str) -> str | None:
    node = _value_at(record, path)
    return node if isinstance(node, str) else None


def matchable(raw: bytes) -> bool:
    """Whether a raw record can be matched to a subject at all: a JSON object whose identifiers are strings.

    Any other record (not JSON, or an identifier of another type) may be anyone's: no lookup can find it.
    """
    record = _record(raw)
    if record is None:
        return False
    paths = [*(path for path, _ in DOMAIN_COLUMNS.values()), "subject_id"]
    return all(isinstance(_value_at(record, p), str | None) for p in paths)


def records_matching(raws: Sequence[bytes], subject: SubjectRows, keyring: Iterable[Pseudonymiser]) -> list[bool]:
    """Which raw records (quarantined, or landing lines) belong to ``subject``, judged as :class:`SubjectRows`
    judges rows: their identifiers are pseudonymised together, one vectorised pass per key of the keyring."""
    records = [_record(raw) for raw in raws]
    if not records:
        return []
    columns = {
        column: (domain, pa.array([None if r is None else _raw_value(r, path) for r in records], pa.string()))
        for domain, (path, column) in DOMAIN_COLUMNS.items()
        if column == ACCOUNT_COLUMN or column in subject.identifiers
    }
    typed = [_subject_of(r) for r in records]  # a label, or the demo's truth: (subject_type, raw subject id)
    kinds = pa.array([t and t[0] for t in typed], pa.string())
    subject_ids = pa.array([t and t[1] for t in typed], pa.string())
    hits = np.zeros(len(records), bool)
    for pseudonymiser in keyring:
        table = {column: pseudonymiser.pseudonymise(domain, values) for column, (domain, values) in columns.items()}
        if kinds.null_count < len(kinds):
            table[SUBJECT_TYPE] = kinds
            table[SUBJECT_ID] = pc.if_else(
                pc.equal(kinds, "transaction"),
                pseudonymiser.pseudonymise("transaction", subject_ids),
                pseudonymiser.pseudonymise("account", subject_ids),
            )
        hits |= subject.mask(pa.table(table)).to_numpy(zero_copy_only=False)
    return [bool(hit) and record is not None for hit, record in zip(hits, records, strict=True)]


def _subject_of(record: dict | None) -> tuple[str, str] | None:
    kind = None if record is None else record.get(SUBJECT_TYPE)
    subject_id = None if record is None else record.get("subject_id")
    return (kind, subject_id) if kind in ("account", "transaction") and isinstance(subject_id, str) else None
