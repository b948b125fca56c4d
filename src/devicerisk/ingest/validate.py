"""Record validation against the contract.

Two paths share one source of truth. :func:`record_reason` checks one record in Python and words
the reason; it runs only on records that the columnar path flagged. :func:`columnar_flags` checks a
whole parsed block at once. Reasons name the field and the rule, never the value, so quarantine
reasons never leak data. Times must also lie in the contract's ``TimeWindow`` (``contract/times.py``): a
time that is valid RFC 3339 but implausible (year 1, year 9999) would break every later date computation,
or never expire.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.contract.fields import EVENT_TYPES, FIELDS, SCHEMA_VERSION
from devicerisk.contract.model import Field, Kind
from devicerisk.contract.times import RFC3339, TimeWindow, parse_timestamp, utc_times

_EVENT_TYPE_NAMES = tuple(e.name for e in EVENT_TYPES)
_INT64 = (-(2**63), 2**63 - 1)
_MISSING = object()

COLUMNAR_FALLBACK = "record could not be read into the contract's columns (duplicate keys or an out-of-range number)"


def _kind_ok(kind: Kind, value: Any) -> bool:
    if kind is Kind.STRING or kind is Kind.TIMESTAMP:
        return isinstance(value, str)
    if kind is Kind.INT:
        return isinstance(value, int) and not isinstance(value, bool) and _INT64[0] <= value <= _INT64[1]
    if kind is Kind.FLOAT:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind is Kind.BOOL:
        return isinstance(value, bool)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "array", str: "string", int: "integer", float: "number"}.get(type(value), "null")


def _lookup(record: dict[str, Any], path: str) -> tuple[Any, str | None]:
    """The value at ``path``; the second item names a parent that is not an object."""
    node: Any = record
    parts = path.split(".")
    for depth, part in enumerate(parts):
        if node is None or node is _MISSING:
            return _MISSING, None
        if not isinstance(node, dict):
            return _MISSING, ".".join(parts[:depth])
        node = node.get(part, _MISSING)
    return node, None


def field_reason(field: Field, value: Any, event_type: str, window: TimeWindow | None = None) -> str | None:
    """Why ``value`` breaks ``field``'s rules, or None; times are judged against ``window`` (default: now's)."""
    applies = field.applies_to(event_type)
    if value is _MISSING or value is None:
        return f"missing required field {field.path}" if field.required and applies else None
    if field.kind is Kind.FLOAT and isinstance(value, float) and not math.isfinite(value):
        return f"{field.path} is not a finite number"
    if not _kind_ok(field.kind, value):
        return f"wrong type for {field.path}: expected {field.kind.value}, got {_json_type(value)}"
    if not applies:
        return None
    if field.kind is Kind.TIMESTAMP:
        when = parse_timestamp(value)
        if when is None:
            return f"invalid time in {field.path}: expected RFC 3339 with a UTC offset"
        return (window or TimeWindow.at()).reason(field.path, when)
    if field.enum is not None and value not in field.enum:
        return f"value of {field.path} is not one of the allowed values"
    if field.max_length is not None and len(value) > field.max_length:
        return f"{field.path} is longer than {field.max_length} characters"
    return None


def line_reason(line: bytes, window: TimeWindow | None = None) -> str | None:
    """Why one raw NDJSON line is rejected (encoding first, then the record), or None."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"invalid UTF-8 at byte {err.start}"
    return record_reason(line, window=window)


def decode(line: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """One NDJSON line's record, or None and why it is not one (malformed JSON, or not an object)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None, "malformed JSON"
    if not isinstance(record, dict):
        return None, f"record is a JSON {_json_type(record)}, not an object"
    return record, None


def fields_reason(record: dict[str, Any], fields: tuple[Field, ...], event_type: str, window: TimeWindow) -> str | None:
    """Why a decoded record of ``event_type`` breaks one of ``fields`` (the first, in contract order), or None."""
    for field in fields:
        value, bad_parent = _lookup(record, field.path)
        if bad_parent is not None:
            return f"wrong type for {bad_parent}: expected object"
        reason = field_reason(field, value, event_type, window)
        if reason:
            return reason
    return None


def record_reason(line: bytes, fields: tuple[Field, ...] = FIELDS, window: TimeWindow | None = None) -> str | None:
    """Why one NDJSON telemetry record is rejected, or None if it is valid."""
    record, reason = decode(line)
    if record is None:
        return reason
    event_type = record.get("event_type")
    if event_type is None:
        return "missing required field event_type"
    if not isinstance(event_type, str):
        return f"wrong type for event_type: expected string, got {_json_type(event_type)}"
    if event_type not in _EVENT_TYPE_NAMES:
        return "unknown event type"
    version = record.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version != SCHEMA_VERSION:
        return f"unsupported schema_version (this reader reads version {SCHEMA_VERSION})"
    return fields_reason(record, fields, event_type, window or TimeWindow.at())


def columnar_flags(table: pa.Table, fields: tuple[Field, ...] = FIELDS, window: TimeWindow | None = None) -> pa.Array:
    """A boolean per row of a parsed block: true where some contract rule is broken.

    ``table`` is flattened (dotted column names). Flagged rows are re-checked by
    :func:`record_reason`, which words the reason.
    """
    window = window or TimeWindow.at()
    event_type = table.column("event_type")
    # Kleene logic throughout: "missing" (true) OR "too long" (null, for a missing value) is true.
    bad = pc.invert(pc.fill_null(pc.is_in(event_type, pa.array(_EVENT_TYPE_NAMES)), False))
    bad = pc.or_kleene(bad, pc.fill_null(pc.not_equal(table.column("schema_version"), SCHEMA_VERSION), True))
    for field in fields:
        column = table.column(field.path)
        applies = pc.is_in(event_type, pa.array(sorted(field.event_types))) if field.event_types else None
        broken = pc.is_null(column) if field.required else None
        checks = [broken] if broken is not None else []
        if field.kind is Kind.FLOAT:
            checks.append(pc.invert(pc.is_finite(column)))
        if field.kind is Kind.TIMESTAMP:
            checks.append(invalid_times(column, window))
        if field.enum is not None:
            checks.append(pc.and_(pc.is_valid(column), pc.invert(pc.is_in(column, pa.array(field.enum)))))
        if field.max_length is not None:
            checks.append(pc.greater(pc.utf8_length(column), field.max_length))
        if not checks:
            continue
        broken = checks[0]
        for check in checks[1:]:
            broken = pc.or_kleene(broken, check)
        broken = pc.fill_null(broken, False)
        if applies is not None:
            broken = pc.and_(broken, applies)
        bad = pc.or_kleene(bad, broken)
    return bad


def invalid_times(column: pa.Array, window: TimeWindow | None = None) -> pa.Array:
    """True where a time is not RFC 3339 with an offset, names an impossible date or hour, or is outside ``window``."""
    window = window or TimeWindow.at()
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    wrong_shape = pc.invert(pc.match_substring_regex(column, RFC3339))
    try:
        times = utc_times(pc.if_else(pc.fill_null(wrong_shape, True), None, column))
    except pa.ArrowInvalid:  # rare: an impossible date; judge each time in Python
        return pa.array([v is not None and _outside(v, window) for v in column.to_pylist()], pa.bool_())
    return pc.or_kleene(wrong_shape, window.outside(times))


def _outside(text: str, window: TimeWindow) -> bool:
    when = parse_timestamp(text)
    return when is None or window.reason("", when) is not None
