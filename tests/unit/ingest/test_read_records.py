"""Splitting a batch into records: the zero-copy path agrees with a plain split, record for record."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from devicerisk.contract.fields import MAX_RECORD_BYTES
from devicerisk.ingest import read
from devicerisk.ingest.read import ContiguousLines, split_records

_RECORD = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"x"))


def _plain(data: bytes) -> tuple[list[bytes], list[int]]:
    """The records a straightforward split keeps: non-blank lines, with their 1-based numbers."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    kept = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    return [line for _, line in kept], [n for n, _ in kept]


@given(st.lists(_RECORD, max_size=30), st.booleans())
def test_split_records_keeps_exactly_the_non_blank_lines(records: list[bytes], final_newline: bool) -> None:
    data = b"\n".join(records) + (b"\n" if final_newline and records else b"")
    batch = split_records("b", "f", data)
    lines, numbers = _plain(data)
    assert list(batch.lines) == lines
    assert [batch.lines[i] for i in range(len(batch.lines))] == lines
    assert list(batch.line_numbers) == numbers
    assert batch.rejected == []


@given(st.lists(_RECORD.filter(lambda b: b.strip() != b""), min_size=1, max_size=30))
def test_contiguous_lines_view_the_bytes_without_copying_records(records: list[bytes]) -> None:
    data = b"\n".join(records) + b"\n"
    lines = ContiguousLines.of(data)
    assert lines is not None
    assert list(lines) == records and lines[-1] == records[-1] and lines[1:3] == records[1:3]
    # the Arrow view keeps each record's newline, nothing else
    assert lines.arrow().to_pylist() == [r + b"\n" for r in records]


def test_blank_and_oversize_records_leave_the_fast_path() -> None:
    assert ContiguousLines.of(b'{"a":1}\n   \n{"b":2}\n') is None
    assert ContiguousLines.of(b'{"a":1}\n\n') is None
    assert ContiguousLines.of(b"x" * (MAX_RECORD_BYTES + 1) + b"\n") is None
    batch = split_records("b", "f", b'{"a":1}\n' + b"y" * (MAX_RECORD_BYTES + 1) + b"\n \n{}")
    assert list(batch.lines) == [b'{"a":1}', b"{}"] and list(batch.line_numbers) == [1, 4]
    assert [r.line for r in batch.rejected] == [2]


@given(st.lists(_RECORD.filter(lambda b: b.strip() != b""), min_size=1, max_size=30), st.integers(1, 7))
def test_newlines_found_across_slice_boundaries(records: list[bytes], chunk: int) -> None:
    # the newline search runs in slices of the batch; tiny slices put boundaries everywhere
    data = b"\n".join(records) + b"\n"
    original = read._CHUNK
    read._CHUNK = chunk
    try:
        lines = ContiguousLines.of(data)
    finally:
        read._CHUNK = original
    assert lines is not None and list(lines) == records


@given(
    st.lists(st.integers(0, 40).map(lambda n: b"r" * n), max_size=12),
    st.booleans(),
    st.integers(1, 9),
    st.lists(st.integers(1, 25), min_size=1, max_size=8),
)
def test_long_records_are_cut_out_as_the_bytes_stream_in(
    records: list[bytes], final_newline: bool, bound: int, slices: list[int]
) -> None:
    """Whatever the slicing, a record over the bound leaves a blank line in its place and a reject with its
    number and start; every other byte is kept as it came."""
    data = b"\n".join(records) + (b"\n" if final_newline and records else b"")
    gather = read._Gather(bound, 1 << 30)
    at, i = 0, 0
    while at < len(data):
        size = slices[i % len(slices)]
        gather.feed(data[at : at + size])
        at, i = at + size, i + 1
    lines = data.split(b"\n")
    kept = b"\n".join(b"" if len(x) > bound else x for x in lines)
    if len(lines[-1]) > bound:  # a long last record without its newline still leaves a blank line
        kept += b"\n"
    assert gather.data() == kept
    too_long = [(n, x[: gather.keep]) for n, x in enumerate(lines, start=1) if len(x) > bound]
    assert [(r.line, r.raw) for r in gather.rejected] == too_long
    assert {r.reason for r in gather.rejected} <= {f"record exceeds {bound} bytes"}
