"""Column readers answer every row as Arrow's own scalar does (in JSON form), for every type a snapshot holds,
with nulls, NaN, several chunks and sliced chunks; and they pick the cheap form where it pays."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from devicerisk.lookup.columns import (
    CodedColumn,
    NumberColumn,
    ScalarColumn,
    TimeColumn,
    read_rows,
    readers,
    to_json,
)

N = 300
rng = np.random.default_rng(7)
LEVELS = ["normal", "elevated", "highest"]
REASONS = ["new device", "emulator model", "amount 6.0x median", 'ünïcode "quoted" reason']
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _maybe(values: list, every: int = 7) -> list:
    return [None if i % every == 3 else v for i, v in enumerate(values)]


def _table() -> pa.Table:
    return pa.table(
        {
            "pid": pa.array([f"{i:032x}" for i in rng.integers(0, 2**62, N)]),
            "count": pa.array(_maybe(rng.integers(-5, 10**12, N).tolist()), pa.int64()),
            "small": pa.array(rng.integers(0, 100, N).tolist(), pa.int16()),
            "score": pa.array(_maybe([float("nan") if i % 11 == 5 else float(x) for i, x in enumerate(rng.random(N))])),
            "flag": pa.array(_maybe(rng.integers(0, 2, N).astype(bool).tolist(), 5), pa.bool_()),
            "at": pa.array(
                _maybe([T0 + timedelta(microseconds=int(x)) for x in rng.integers(0, 10**11, N)]),
                pa.timestamp("us", tz="UTC"),
            ),
            "naive_ms": pa.array(
                [datetime(2026, 1, 1) + timedelta(milliseconds=int(x)) for x in rng.integers(0, 10**9, N)],
                pa.timestamp("ms"),
            ),
            "seconds": pa.array(
                _maybe([T0 + timedelta(seconds=int(x)) for x in rng.integers(0, 10**7, N)]), pa.timestamp("s", tz="UTC")
            ),
            "nanos": pa.array(
                [T0 + timedelta(microseconds=int(x)) for x in rng.integers(0, 10**6, N)], pa.timestamp("ns", tz="UTC")
            ),
            "day": pa.array(
                _maybe([date(2026, 1, 1) + timedelta(days=int(x)) for x in rng.integers(-800, 800, N)]), pa.date32()
            ),
            "level": pa.array(_maybe([LEVELS[i] for i in rng.integers(0, 3, N)])),
            "reasons": pa.array(
                _maybe([[REASONS[j] for j in rng.integers(0, 4, int(k))] for k in rng.integers(0, 4, N)], 9),
                pa.list_(pa.string()),
            ),
            "ids": pa.array([[f"{i:032x}"] for i in rng.integers(0, 2**62, N)], pa.list_(pa.string())),
            "nested": pa.array([{"a": int(i)} for i in range(N)]),
        }
    )


def _chunked(table: pa.Table) -> pa.Table:
    """The same rows in chunks of uneven sizes, each a slice of a larger batch (non-zero offsets)."""
    cuts = [0, 1, 90, 91, 250, N]
    batches = [table.slice(a, b - a).to_batches()[0] for a, b in itertools.pairwise(cuts)]
    return pa.Table.from_batches(batches)


@pytest.mark.parametrize("shape", ["one chunk", "many chunks"])
def test_every_reader_answers_as_arrow_does(shape: str) -> None:
    table = _table() if shape == "one chunk" else _chunked(_table())
    columns = readers(table)
    for name in table.column_names:
        expected = [to_json(v) for v in table.column(name).to_pylist()]
        got = [columns[name][i] for i in range(N)]
        assert got == expected, name
    # NaN and null both read as None; a null list is None, an empty one []
    assert columns["score"][5] is None and columns["reasons"][3] is None
    assert [] in [columns["reasons"][i] for i in range(N)]


def test_each_type_gets_its_cheap_reader() -> None:
    columns = readers(_chunked(_table()))
    kinds = {name: type(reader) for name, reader in columns.items()}
    assert kinds["count"] is kinds["score"] is kinds["flag"] is kinds["small"] is NumberColumn
    assert kinds["at"] is kinds["naive_ms"] is kinds["seconds"] is kinds["day"] is TimeColumn
    assert kinds["level"] is kinds["reasons"] is CodedColumn  # few distinct values
    assert kinds["pid"] is kinds["ids"] is kinds["nested"] is ScalarColumn  # many distinct values, or nested
    assert kinds["nanos"] is ScalarColumn  # nanoseconds have no exact datetime
    assert columns["level"].codes.dtype == np.int8  # type: ignore[attr-defined]


def test_rows_are_dicts_of_the_fields_asked_for() -> None:
    table = _table()
    got = read_rows(readers(table), np.array([4, 0]), ("pid", "level", "at"))
    assert got == [{f: to_json(table.column(f)[i].as_py()) for f in ("pid", "level", "at")} for i in (4, 0)]
    assert read_rows(readers(table.slice(0, 0)), [], ("pid",)) == []


def test_a_column_sorted_by_itself_is_judged_on_values_spread_over_it() -> None:
    """A snapshot sorted by account holds each account's transactions together: its first rows show few distinct
    accounts, but the column has one per 20 rows and is not worth a dictionary."""
    keys = [f"{i:032x}" for i in range(6000) for _ in range(20)]  # 120,000 rows, sorted, 20 rows per key
    levels = [LEVELS[i % 3] for i in range(len(keys))]
    columns = readers(pa.table({"pid": keys, "level": levels}))
    assert isinstance(columns["pid"], ScalarColumn) and isinstance(columns["level"], CodedColumn)
    assert columns["pid"][119_999] == keys[-1] and columns["level"][5] == levels[5]
