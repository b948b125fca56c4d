"""Schemas derived from the contract: the input Arrow schema, the lake schema and the JSON Schema."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

import pyarrow as pa

from devicerisk.contract.fields import (
    CONTRACT_VERSION,
    EVENT_TYPES,
    FIELDS,
    LABEL_FIELDS,
    MAX_RECORD_BYTES,
    SCHEMA_VERSION,
)
from devicerisk.contract.model import Action, Field, Kind

#: The derived columns each minimiser produces, declared here for the lake schema and generated docs;
#: ``privacy/minimise.py`` implements each one.
MINIMISER_OUTPUTS: dict[str, dict[str, pa.DataType]] = {
    "imei": {"tac": pa.string(), "format_ok": pa.bool_(), "checksum_ok": pa.bool_()},
    "mac": {"oui": pa.string(), "randomised": pa.bool_()},
    "imsi": {"mcc": pa.string(), "mnc": pa.string(), "country": pa.string()},
    "iccid": {"valid": pa.bool_()},
    "ip": {"prefix": pa.string(), "version": pa.int8()},
    "user_agent": {"browser": pa.string(), "os": pa.string(), "bot": pa.bool_()},
    "emulator_model": {"emulator": pa.bool_()},
    "emulator_hardware": {"emulator": pa.bool_()},
    "stack_signature": {"signature": pa.string()},
    "app_list": {"count": pa.int32(), "root_app": pa.bool_(), "hook_app": pa.bool_(), "cloner_app": pa.bool_()},
    "phone": {"country": pa.string()},
    "minor": {"minor": pa.bool_()},
}

_INPUT_TYPES: dict[Kind, pa.DataType] = {
    Kind.STRING: pa.string(),
    Kind.INT: pa.int64(),
    Kind.FLOAT: pa.float64(),
    Kind.BOOL: pa.bool_(),
    Kind.TIMESTAMP: pa.string(),  # parsed after reading, so that a bad time is one bad record
    Kind.STRING_LIST: pa.list_(pa.string()),
}
T = TypeVar("T")

_KEPT_TYPES = {**_INPUT_TYPES, Kind.TIMESTAMP: pa.timestamp("us", tz="UTC")}

#: Columns the pipeline adds to every lake row.
LAKE_META: tuple[pa.Field, ...] = (
    pa.field("event_date", pa.date32(), nullable=False),
    pa.field("batch_id", pa.string(), nullable=False),
    pa.field("key_id", pa.string(), nullable=False),
    pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
)


def nest_paths(fields: tuple[Field, ...], leaf: Callable[[Field], T]) -> dict[str, Any]:
    """The fields as a tree keyed by path parts (``device.imei`` -> ``{"device": {"imei": leaf}}``)."""
    tree: dict[str, Any] = {}
    for f in fields:
        node = tree
        *parents, name = f.path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[name] = leaf(f)
    return tree


def _nest(fields: tuple[Field, ...]) -> pa.Schema:
    """Nested Arrow schema of the input, built from dotted paths."""

    def build(node: dict[str, Any]) -> list[pa.Field]:
        return [pa.field(k, pa.struct(build(v)) if isinstance(v, dict) else v) for k, v in node.items()]

    return pa.schema(build(nest_paths(fields, lambda f: _INPUT_TYPES[f.kind])))


@cache
def input_schema(fields: tuple[Field, ...] = FIELDS) -> pa.Schema:
    """The Arrow schema that the columnar reader parses input records into."""
    return _nest(fields)


def output_columns(field: Field) -> list[pa.Field]:
    """The lake columns that a field's treatments produce (none if it is dropped)."""
    out: list[pa.Field] = []
    for treatment in field.treatments:
        if treatment.action is Action.KEEP:
            out.append(pa.field(field.column, _KEPT_TYPES[field.kind]))
        elif treatment.action is Action.PSEUDONYMISE:
            out.append(pa.field(f"{field.column}_pid", pa.string()))
        elif treatment.action is Action.MINIMISE:
            assert treatment.name is not None
            out += [pa.field(f"{field.column}_{s}", t) for s, t in MINIMISER_OUTPUTS[treatment.name].items()]
    return out


@cache
def lake_schema(fields: tuple[Field, ...] = FIELDS) -> pa.Schema:
    """The schema of the treated-events lake table."""
    columns = [c for f in fields for c in output_columns(f)]
    names = [c.name for c in columns]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"the contract maps several fields to the same lake column: {sorted(duplicates)}")
    return pa.schema([*columns, *LAKE_META])


@cache
def label_schema() -> pa.Schema:
    """The lake's ``labels`` table: the label fields as treated (``subject_id`` pseudonymised), the labelled
    account's pseudonym after the subject's, then the partition date, batch id and key id (nullable, as the
    table was created)."""
    columns = [c for f in LABEL_FIELDS for c in output_columns(f)]
    at = [c.name for c in columns].index("subject_id_pid") + 1
    columns.insert(at, pa.field("account_id_pid", pa.string()))
    return pa.schema([*columns, *(m.with_nullable(True) for m in LAKE_META if m.name != "ingested_at")])


_JSON_TYPES: dict[Kind, dict[str, Any]] = {
    Kind.STRING: {"type": "string"},
    Kind.INT: {"type": "integer"},
    Kind.FLOAT: {"type": "number"},
    Kind.BOOL: {"type": "boolean"},
    Kind.TIMESTAMP: {"type": "string", "format": "date-time", "pattern": r"(Z|[+-]\d{2}:?\d{2})$"},
    Kind.STRING_LIST: {"type": "array", "items": {"type": "string"}},
}


def _json_property(field: Field) -> dict[str, Any]:
    prop: dict[str, Any] = dict(_JSON_TYPES[field.kind])
    if field.enum:
        prop["enum"] = list(field.enum)
    if field.max_length:
        prop["maxLength"] = field.max_length
    if not field.required:
        prop = {"anyOf": [prop, {"type": "null"}]}
    prop["description"] = f"{field.category}; {field.sensitivity}; " + ", ".join(map(str, field.treatments))
    return prop


def _json_object(fields: list[Field], depth: int = 0) -> dict[str, Any]:
    """A JSON Schema object of the fields, nested by path."""
    groups: dict[str, list[Field]] = {}
    for f in fields:
        groups.setdefault(f.path.split(".")[depth], []).append(f)
    props: dict[str, Any] = {}
    required: list[str] = []
    for name, group in groups.items():
        if len(group) == 1 and group[0].path.count(".") == depth:
            props[name] = _json_property(group[0])
            if group[0].required:
                required.append(name)
        else:
            props[name] = _json_object(group, depth + 1)
            if any(f.required for f in group):
                required.append(name)
    return {"type": "object", "properties": props, "required": required}


def json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of one input event: the envelope and a payload per event type."""
    variants = []
    for et in EVENT_TYPES:
        schema = _json_object([f for f in FIELDS if f.applies_to(et.name)])
        schema["properties"]["event_type"] = {"const": et.name}
        schema["properties"]["schema_version"] = {"const": SCHEMA_VERSION}
        variants.append({"title": et.name, "description": f"{et.description} (clause {et.clause})", **schema})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"devicerisk/telemetry-event/v{SCHEMA_VERSION}",
        "title": "devicerisk telemetry event",
        "description": f"One NDJSON line (at most {MAX_RECORD_BYTES} bytes). Contract {CONTRACT_VERSION}.",
        "oneOf": variants,
    }
