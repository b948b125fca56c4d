"""Snapshot columns read one row at a time, as JSON-ready values: what a lookup reads from a serving view.

A lookup reads a handful of rows, field by field. Arrow's own scalars cost one to three microseconds each (a
timestamp's is the dearest), which made reading an account's row cost more than the rest of its lookup. So a
column is turned, when the view is built, into the cheapest form its type allows:

- numbers, times and dates: one NumPy array (nulls kept aside as a mask), converted per value;
- strings and lists of strings with few distinct values (levels, models, reasons): dictionary codes into a
  Python list of the values, so a value is an index (a new string is never made per read);
- anything else (pseudonyms, nested data): Arrow's scalar, as before.

Every reader answers ``column[i]`` with the same value: Arrow's ``as_py()`` in JSON form (times and dates as
ISO 8601 text, NaN as None). A column in one chunk (the serving view reads its snapshots so) is read where it
is, with no copy for numbers, times and dates; one in several chunks is copied into one array.
"""

from __future__ import annotations

import bisect
import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: A column is coded by dictionary when ``_SAMPLE`` values spread over it have at most this share of distinct
#: values (and the whole column, at most that share or ``_SAMPLE`` distinct values).
_DISTINCT_SHARE, _SAMPLE = 1 / 16, 65_536
_EPOCH = {None: datetime(1970, 1, 1), "UTC": datetime(1970, 1, 1, tzinfo=UTC)}
_EPOCH_DAY = date(1970, 1, 1)
_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}  # microseconds per unit (ns has no exact datetime)


def to_json(value: Any) -> Any:
    """A value from a snapshot row in JSON form (times as ISO 8601 text, NaN as None)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


class Column(Protocol):
    def __getitem__(self, i: int) -> Any: ...


class ScalarColumn:
    """Any column, by Arrow scalar (without combining its chunks)."""

    __slots__ = ("chunks", "starts")

    def __init__(self, column: pa.ChunkedArray) -> None:
        self.chunks = column.chunks
        self.starts = [0, *itertools.accumulate(len(c) for c in self.chunks)][:-1]

    def __getitem__(self, i: int) -> Any:
        j = bisect.bisect_right(self.starts, i) - 1
        return to_json(self.chunks[j][i - self.starts[j]].as_py())


def _nulls(column: pa.ChunkedArray) -> np.ndarray | None:
    return None if column.null_count == 0 else pc.is_null(column).to_numpy(zero_copy_only=False)


class NumberColumn:
    """Integers, floats and booleans: one NumPy array."""

    __slots__ = ("nulls", "values")

    def __init__(self, column: pa.ChunkedArray) -> None:
        self.nulls = _nulls(column)
        filled = (
            column.fill_null(False if pa.types.is_boolean(column.type) else 0) if self.nulls is not None else column
        )
        self.values = filled.to_numpy()

    def __getitem__(self, i: int) -> Any:
        if self.nulls is not None and self.nulls[i]:
            return None
        return to_json(self.values.item(i))


class TimeColumn:
    """Timestamps (UTC or naive, to the microsecond at most) and dates: their count of units since the epoch."""

    __slots__ = ("counts", "nulls", "start", "step")

    def __init__(self, column: pa.ChunkedArray) -> None:
        self.nulls = _nulls(column)
        if pa.types.is_date32(column.type):
            self.start, self.step, width = _EPOCH_DAY, timedelta(days=1), pa.int32()
        else:
            self.start, self.step, width = (
                _EPOCH[column.type.tz],
                timedelta(microseconds=_UNIT[column.type.unit]),
                pa.int64(),
            )
        counts = column.cast(width)  # the same bits: no copy of a single chunk
        self.counts = (counts if self.nulls is None else counts.fill_null(0)).to_numpy()

    def __getitem__(self, i: int) -> Any:
        if self.nulls is not None and self.nulls[i]:
            return None
        return (self.start + self.step * self.counts.item(i)).isoformat()


class CodedColumn:
    """Strings, or lists of strings, of few distinct values: codes into one list of the values."""

    __slots__ = ("codes", "nulls", "offsets", "values")

    def __init__(self, column: pa.ChunkedArray, values: list[str], codes: np.ndarray, offsets: np.ndarray | None):
        self.values, self.codes, self.offsets = [*values, None], codes, offsets  # code -1 (a null) is None
        self.nulls = _nulls(column) if offsets is not None else None

    def __getitem__(self, i: int) -> Any:
        if self.offsets is None:
            return self.values[self.codes.item(i)]
        if self.nulls is not None and self.nulls[i]:
            return None
        return [self.values[c] for c in self.codes[self.offsets[i] : self.offsets[i + 1]].tolist()]


def _coded(column: pa.ChunkedArray, listed: bool) -> CodedColumn | None:
    """``column`` (of strings, or of lists of them where ``listed``) coded by dictionary, or None when it has too
    many distinct values for that to pay."""
    chunks = column.chunks
    strings = [pc.list_flatten(c) if listed else c for c in chunks]
    values = pa.chunked_array(strings, pa.string())
    sample = values  # spread over the column: a snapshot sorted by this very column starts with few values
    if len(values) > _SAMPLE:
        sample = values.take(np.linspace(0, len(values) - 1, _SAMPLE).astype(np.int64))
    if len(sample) and pc.count_distinct(sample).as_py() > len(sample) * _DISTINCT_SHARE:
        return None
    known: dict[str, int] = {}
    codes = []
    for part in strings:
        encoded = pc.dictionary_encode(part)
        remap = np.array([known.setdefault(v, len(known)) for v in encoded.dictionary.to_pylist()] + [-1], np.int32)
        codes.append(remap[encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)])
    if len(known) > max(_SAMPLE, len(values) * _DISTINCT_SHARE):  # the sample misjudged it: not worth a dictionary
        return None
    offsets = None
    if listed:
        lengths = [pc.list_value_length(c).fill_null(0).to_numpy(zero_copy_only=False) for c in chunks]
        ends = np.cumsum(np.concatenate(lengths or [np.zeros(0, np.int64)]), dtype=np.int64)
        offsets = np.concatenate([[0], ends]).astype(_narrowest(int(ends[-1]) if len(ends) else 0))
    joined = np.concatenate(codes) if codes else np.zeros(0, np.int32)
    return CodedColumn(column, list(known), joined.astype(_narrowest(len(known))), offsets)


def _narrowest(count: int) -> type[np.signedinteger]:
    """The smallest signed integer type holding codes 0 to ``count - 1`` and -1."""
    return next(t for t in (np.int8, np.int16, np.int32, np.int64) if count <= np.iinfo(t).max)


def reader(column: pa.ChunkedArray) -> Column:
    """The cheapest reader of ``column`` (see the module's docstring)."""
    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return NumberColumn(column)
    if pa.types.is_date32(kind) or (pa.types.is_timestamp(kind) and kind.tz in _EPOCH and kind.unit in _UNIT):
        return TimeColumn(column)
    listed = pa.types.is_list(kind) or pa.types.is_large_list(kind)
    if pa.types.is_string(kind) or (listed and pa.types.is_string(kind.value_type)):
        coded = _coded(column, listed)
        if coded is not None:
            return coded
    return ScalarColumn(column)


Columns = dict[str, Column]


def readers(table: pa.Table) -> Columns:
    """A reader of each of ``table``'s columns."""
    return {name: reader(table.column(name)) for name in table.column_names}


def read_rows(table: Columns, positions: np.ndarray | list[int], fields: tuple[str, ...] | list[str]) -> list[dict]:
    """Rows of ``table`` (at ``positions``) as JSON-ready dicts of ``fields``."""
    return [{f: table[f][i] for f in fields} for i in np.asarray(positions, dtype=np.int64).tolist()]
