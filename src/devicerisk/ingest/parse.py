"""Columnar parsing of NDJSON records into the contract's Arrow schema.

The fast path hands whole blocks to Arrow's multi-threaded JSON reader. A block with a bad record
fails as a whole, so it is split in halves until the bad records stand alone; only those are checked
one by one, in Python, to word the reason. Clean data never leaves the fast path.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from devicerisk.contract.schema import input_schema
from devicerisk.ingest.read import RawBatch
from devicerisk.ingest.validate import COLUMNAR_FALLBACK, columnar_flags, record_reason
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
    read_options = pj.ReadOptions(block_size=max(1 << 20, len(data) + 1))
    return pj.read_json(io.BytesIO(data), read_options=read_options, parse_options=options)


def _parse_or_split(
    lines: list[bytes],
    numbers: list[int],
    schema: pa.Schema,
    tables: list[pa.Table],
    kept: list[int],
    rejected: list[Rejected],
) -> None:
    try:
        tables.append(_read_block(lines, schema))
        kept.extend(numbers)
        return
    except pa.ArrowInvalid:
        pass
    if len(lines) > _BISECT_BELOW:
        mid = len(lines) // 2
        _parse_or_split(lines[:mid], numbers[:mid], schema, tables, kept, rejected)
        _parse_or_split(lines[mid:], numbers[mid:], schema, tables, kept, rejected)
        return
    for line, number in zip(lines, numbers, strict=True):
        reason = record_reason(line)
        if reason is None:  # valid in Python, so the columnar reader may accept it alone
            try:
                tables.append(_read_block([line], schema))
                kept.append(number)
                continue
            except pa.ArrowInvalid:
                reason = COLUMNAR_FALLBACK
        rejected.append(Rejected(number, reason, line))


def parse_batch(batch: RawBatch, chunk_rows: int = 65_536) -> Parsed:
    """Parse and validate a batch's records; invalid ones become rejects with a reason."""
    schema = input_schema()
    tables: list[pa.Table] = []
    kept: list[int] = []
    rejected: list[Rejected] = list(batch.rejected)
    for start in range(0, len(batch.lines), chunk_rows):
        stop = start + chunk_rows
        _parse_or_split(batch.lines[start:stop], batch.line_numbers[start:stop], schema, tables, kept, rejected)
    if not tables:
        empty = schema.empty_table().flatten()
        return Parsed(_flatten(empty), sorted(rejected, key=lambda r: r.line))
    table = _flatten(pa.concat_tables(tables))
    flags = columnar_flags(table)
    if pc.any(flags).as_py():
        by_number = dict(zip(batch.line_numbers, batch.lines, strict=True))
        flagged = pc.indices_nonzero(flags).to_pylist()
        for row in flagged:
            number = kept[row]
            line = by_number[number]
            rejected.append(Rejected(number, record_reason(line) or COLUMNAR_FALLBACK, line))
        table = table.filter(pc.invert(flags))
    return Parsed(table, sorted(rejected, key=lambda r: r.line))


def _flatten(table: pa.Table) -> pa.Table:
    """Flatten nested structs to dotted column names (``device.imei``)."""
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return table
