"""Columnar parsing of NDJSON records into the contract's columns, with a reason for every reject.

Two paths. The fast one (:mod:`devicerisk.ingest.duckparse`) reads the landing file with DuckDB and
checks types with a guard pattern. When DuckDB cannot read a file, or the batch already has rejects,
the Arrow path takes over: it hands blocks of records to Arrow's JSON reader, and a block with a bad
record is split in halves until the bad records stand alone. Either way only flagged records are
checked one by one, in Python, to word the reason.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from devicerisk.contract.schema import input_schema
from devicerisk.contract.times import TimeWindow
from devicerisk.ingest import duckparse
from devicerisk.ingest.read import RawBatch
from devicerisk.ingest.validate import COLUMNAR_FALLBACK, columnar_flags, line_reason
from devicerisk.store import landing
from devicerisk.store.quarantine import Rejected

_BISECT_BELOW = 8  # below this many records a failing block is checked record by record


@dataclass(slots=True)
class Parsed:
    """Valid records as a flat table (dotted column names), plus the rejects."""

    table: pa.Table
    rejected: list[Rejected] = field(default_factory=list)


def _read_block(lines: list[bytes], schema: pa.Schema) -> pa.Table:
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    data = b"\n".join(lines) + b"\n"
    data.decode("utf-8")  # Arrow's reader does not validate the encoding of strings
    read_options = pj.ReadOptions(block_size=max(1 << 20, len(data) + 1))
    table = pj.read_json(io.BytesIO(data), read_options=read_options, parse_options=options)
    if table.num_rows != len(lines):  # e.g. two objects on one line
        raise pa.ArrowInvalid("the block's rows do not match its lines")
    return table


def _parse_or_split(
    lines: list[bytes],
    numbers: list[int],
    schema: pa.Schema,
    tables: list[pa.Table],
    kept: list[int],
    rejected: list[Rejected],
    window: TimeWindow,
) -> None:
    try:
        tables.append(_read_block(lines, schema))
        kept.extend(numbers)
        return
    except (pa.ArrowInvalid, UnicodeDecodeError):
        pass
    if len(lines) > _BISECT_BELOW:
        mid = len(lines) // 2
        _parse_or_split(lines[:mid], numbers[:mid], schema, tables, kept, rejected, window)
        _parse_or_split(lines[mid:], numbers[mid:], schema, tables, kept, rejected, window)
        return
    for line, number in zip(lines, numbers, strict=True):
        reason = line_reason(line, window)
        if reason is None:  # valid in Python, so the columnar reader may accept it alone
            try:
                tables.append(_read_block([line], schema))
                kept.append(number)
                continue
            except (pa.ArrowInvalid, UnicodeDecodeError):
                reason = COLUMNAR_FALLBACK
        rejected.append(Rejected(number, reason, line))


def parse_batch(
    batch: RawBatch, chunk_rows: int = 65_536, reread: Path | None = None, window: TimeWindow | None = None
) -> Parsed:
    """Parse and validate a batch's records; invalid ones become rejects with a reason.

    ``reread`` is the batch's landing file, to be read a second time: DuckDB's JSON reader parses a clean
    file straight into the contract's typed columns faster than Arrow parses the lines already in memory.
    Its result is used only if the file is unchanged since the first read (the same version) and gives
    as many records; otherwise, and without ``reread``, the lines in memory are parsed. Times are judged
    against ``window`` (default: that of a batch ingested now).
    """
    window = window or TimeWindow.at()
    if reread is not None and not batch.rejected and batch.lines:
        table = duckparse.read_typed(reread)
        unchanged = batch.file_version is not None and landing.file_version(reread) == batch.file_version
        if table is not None and unchanged and table.num_rows == len(batch.lines):
            return _checked(_flatten(table), batch, range(len(batch.lines)), [], window)
    return _parse_with_arrow(batch, chunk_rows, window)


def _parse_with_arrow(batch: RawBatch, chunk_rows: int, window: TimeWindow) -> Parsed:
    schema = input_schema()
    tables: list[pa.Table] = []
    kept: list[int] = []
    rejected: list[Rejected] = list(batch.rejected)
    for start in range(0, len(batch.lines), chunk_rows):
        stop = start + chunk_rows
        lines, numbers = batch.lines[start:stop], batch.line_numbers[start:stop]
        _parse_or_split(lines, numbers, schema, tables, kept, rejected, window)
    if not tables:
        empty = schema.empty_table().flatten()
        return Parsed(_flatten(empty), sorted(rejected, key=lambda r: r.line))
    index = {number: i for i, number in enumerate(batch.line_numbers)}
    return _checked(_flatten(pa.concat_tables(tables)), batch, [index[n] for n in kept], rejected, window)


def _checked(
    table: pa.Table, batch: RawBatch, rows: Sequence[int], rejected: list[Rejected], window: TimeWindow
) -> Parsed:
    """Apply the contract's columnar checks and the type guard; flagged rows are judged one by one.

    ``rows[i]`` is the index in ``batch.lines`` of table row ``i``. A row flagged only by the type
    guard is kept if the strict check finds nothing wrong.
    """
    broken = columnar_flags(table, window=window)
    if len(rows) == len(batch.lines):  # every record made it into the table, in order
        suspects = duckparse.suspicious(batch.line_array())
    else:
        suspects = duckparse.suspicious(pa.array([batch.lines[i] for i in rows], pa.binary()))
    flags = pc.or_(broken, suspects)
    if pc.any(flags).as_py():
        drop = []
        for row in pc.indices_nonzero(flags).to_pylist():
            line = batch.lines[rows[row]]
            reason = line_reason(line, window)
            if reason is None and broken[row].as_py():
                reason = COLUMNAR_FALLBACK
            if reason is not None:
                rejected.append(Rejected(batch.line_numbers[rows[row]], reason, line))
                drop.append(row)
        if drop:
            keep = pc.invert(pc.is_in(pa.array(range(table.num_rows)), pa.array(drop)))
            table = table.filter(keep)
    return Parsed(table, sorted(rejected, key=lambda r: r.line))


def _flatten(table: pa.Table) -> pa.Table:
    """Flatten nested structs to dotted column names (``device.imei``)."""
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return table
