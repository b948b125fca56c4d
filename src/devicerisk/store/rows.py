"""Which rows belong to a data subject, as a pyarrow filter or a Delta predicate, for any table.

A subject is a set of account pseudonyms plus pseudonyms of identifiers the subject gave (phone,
device ids). A row is the subject's when its account is one of theirs, or when it has no account and
carries one of their identifiers (unlogged use of their device, 2.1); in a table keyed like labels,
when its ``subject_id_pid`` is one of their accounts or transactions, as ``subject_type`` says. Rows
of *other* accounts that share a device with the subject are not theirs and are never matched:
erasing one person must not delete another's data.

Delta predicates are SQL text without parameters, so every value in one is checked to be a
pseudonym (32 hex digits) and every column name to be a plain identifier before it is used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

ACCOUNT_COLUMN = "account_id_pid"
#: Tables keyed like labels: ``subject_type`` says which pseudonym domain ``subject_id_pid`` is in.
SUBJECT_TYPE, SUBJECT_ID = "subject_type", "subject_id_pid"
TRANSACTION_COLUMN = "transaction_id_pid"
_PSEUDONYM = re.compile(r"[0-9a-f]{32}")
_COLUMN = re.compile(r"[a-z][a-z0-9_]{0,63}")


def literal(value: str | date) -> str:
    """A quoted SQL literal of a pseudonym, a date or a plain name (an event type); anything else is refused."""
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    if not (_PSEUDONYM.fullmatch(value) or _COLUMN.fullmatch(value)):
        raise ValueError("only pseudonyms, dates and plain names may appear in a lake predicate")
    return f"'{value}'"


def in_list(name: str, values: Iterable[str]) -> str:
    """``name IN (...)`` over checked literals."""
    return f"{column(name)} IN ({', '.join(literal(v) for v in sorted(values))})"


def column(name: str) -> str:
    """A column name checked to be a plain identifier."""
    if not _COLUMN.fullmatch(name):
        raise ValueError(f"not a plain column name: {name!r}")
    return name


def plain_strings(table: pa.Table) -> pa.Table:
    """``table`` with string views as plain strings: files a Delta delete rewrote hold string views, which
    pyarrow's filters cannot compare with plain strings."""
    if not any(pa.types.is_string_view(f.type) for f in table.schema):
        return table
    return table.cast(
        pa.schema([f.with_type(pa.string()) if pa.types.is_string_view(f.type) else f for f in table.schema])
    )


def mask_where(table: pa.Table, where: ds.Expression | None) -> pa.Array:
    """A boolean mask of the rows of an in-memory table that match ``where`` (``None``: no row; null: no)."""
    if where is None or table.num_rows == 0:
        return pa.array([False] * table.num_rows, pa.bool_())
    hit = ds.dataset(plain_strings(table)).to_table(columns={"hit": where}).column("hit")
    return pc.fill_null(hit.combine_chunks(), False)


@dataclass(frozen=True, slots=True)
class SubjectRows:
    """A subject's pseudonyms: accounts, and identifier columns -> pseudonyms (under every key)."""

    accounts: frozenset[str]
    identifiers: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for value in (*self.accounts, *(v for vs in self.identifiers.values() for v in vs)):
            if not _PSEUDONYM.fullmatch(value):
                raise ValueError("a subject is given by pseudonyms (32 hex digits) only")
        for name in self.identifiers:
            column(name)

    @property
    def columns(self) -> list[str]:
        """The columns that decide whether a row is the subject's."""
        return [ACCOUNT_COLUMN, SUBJECT_TYPE, SUBJECT_ID, *self.identifiers]

    def _by_type(self, names: set[str]) -> dict[str, frozenset[str]]:
        """subject_type -> the subject's pseudonyms of that type, for a table keyed like labels."""
        if not {SUBJECT_TYPE, SUBJECT_ID} <= names:
            return {}
        found = {"account": self.accounts, "transaction": self.identifiers.get(TRANSACTION_COLUMN, frozenset())}
        return {t: v for t, v in found.items() if v}

    @property
    def empty(self) -> bool:
        return not self.accounts and not any(self.identifiers.values())

    def values(self, schema: pa.Schema) -> dict[str, frozenset[str]]:
        """Column -> the subject's pseudonyms in it, for the columns a table of ``schema`` has."""
        names = set(schema.names)
        accounts = {ACCOUNT_COLUMN: self.accounts} if ACCOUNT_COLUMN in names and self.accounts else {}
        typed = frozenset().union(*self._by_type(names).values())
        return {**accounts, **self._ids(names), **({SUBJECT_ID: typed} if typed else {})}

    def _ids(self, columns: set[str]) -> dict[str, frozenset[str]]:
        return {c: v for c, v in self.identifiers.items() if c in columns and v}

    def applies(self, schema: pa.Schema) -> bool:
        """Whether a table of ``schema`` can hold rows of this subject."""
        names = set(schema.names)
        return (ACCOUNT_COLUMN in names and bool(self.accounts)) or bool(self._ids(names) or self._by_type(names))

    def expression(self, schema: pa.Schema) -> ds.Expression | None:
        """A pyarrow filter for the subject's rows in a table of ``schema`` (``None``: none can match)."""
        names = set(schema.names)
        by_id: ds.Expression | None = None
        for name, values in self._ids(names).items():
            term = ds.field(name).isin(pa.array(sorted(values), pa.string()))
            by_id = term if by_id is None else by_id | term
        typed: ds.Expression | None = None
        for kind, values in self._by_type(names).items():
            term = (ds.field(SUBJECT_TYPE) == kind) & ds.field(SUBJECT_ID).isin(pa.array(sorted(values), pa.string()))
            typed = term if typed is None else typed | term
        if ACCOUNT_COLUMN not in names:
            return by_id if typed is None else typed if by_id is None else by_id | typed
        mine = ds.field(ACCOUNT_COLUMN).isin(pa.array(sorted(self.accounts), pa.string()))
        mine = mine if by_id is None else mine | (ds.field(ACCOUNT_COLUMN).is_null() & by_id)
        return mine if typed is None else mine | typed

    def mask(self, table: pa.Table) -> pa.Array:
        """A boolean mask of the subject's rows in an in-memory table."""
        return mask_where(table, self.expression(table.schema))

    def predicate(self, schema: pa.Schema) -> str | None:
        """The same rows as :meth:`expression`, as a Delta predicate."""
        names = set(schema.names)
        terms = [in_list(c, vs) for c, vs in self._ids(names).items()]
        by_id = " OR ".join(terms) or None
        typed = [
            f"({SUBJECT_TYPE} = {literal(t)} AND {in_list(SUBJECT_ID, vs)})" for t, vs in self._by_type(names).items()
        ]
        if ACCOUNT_COLUMN not in names:
            return " OR ".join([*([by_id] if by_id else []), *typed]) or None
        mine = in_list(ACCOUNT_COLUMN, self.accounts) if self.accounts else None
        orphan = None if by_id is None else f"({ACCOUNT_COLUMN} IS NULL AND ({by_id}))"
        parts = [p for p in (mine, orphan, *typed) if p]
        return " OR ".join(parts) or None
