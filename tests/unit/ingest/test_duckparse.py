"""The fast parse path: DuckDB's typed read of a landing file and the strict type guard beside it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicerisk.contract.fields import FIELDS
from devicerisk.contract.model import Kind
from devicerisk.ingest import duckparse
from devicerisk.ingest.validate import line_reason
from factories import PAYLOADS, event, line, write_batch

EVENT_TYPES = tuple(PAYLOADS)
PARENTS = sorted({f.path.rsplit(".", 1)[0] for f in FIELDS if "." in f.path})
#: The Arrow type DuckDB hands back for each kind of field.
ARROW_TYPES = {
    Kind.STRING: pa.string(),
    Kind.TIMESTAMP: pa.string(),
    Kind.INT: pa.int64(),
    Kind.FLOAT: pa.float64(),
    Kind.BOOL: pa.bool_(),
    Kind.STRING_LIST: pa.list_(pa.string()),
}


def _with(record: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``record`` with ``value`` at the dotted ``path`` (parents created as needed)."""
    out = copy.deepcopy(record)
    *parents, leaf = path.split(".")
    node = out
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return out


def _flagged(*lines: bytes) -> list[bool]:
    return duckparse.suspicious(pa.array(lines, pa.binary())).to_pylist()


def _leaves(schema: pa.Schema) -> dict[str, pa.DataType]:
    """Dotted path -> type of every non-struct leaf."""
    out: dict[str, pa.DataType] = {}

    def walk(prefix: str, field: pa.Field) -> None:
        if pa.types.is_struct(field.type):
            for child in field.type:
                walk(f"{prefix}{field.name}.", child)
        else:
            out[prefix + field.name] = field.type

    for field in schema:
        walk("", field)
    return out


# --- read_columns -------------------------------------------------------------------------------


def test_read_columns_give_every_contract_field_its_type(tmp_path: Path) -> None:
    """DuckDB itself reads the spec: a file read with it has exactly the contract's paths, typed by kind."""
    table = duckparse.read_typed(write_batch(tmp_path / "b.ndjson", [event("operation")]))
    assert table is not None
    leaves = _leaves(table.schema)
    assert set(leaves) == {f.path for f in FIELDS}
    for f in FIELDS:
        assert leaves[f.path] == ARROW_TYPES[f.kind], f.path


def test_read_columns_nest_dotted_paths_under_their_top_level_key() -> None:
    columns = duckparse.read_columns()
    assert set(columns) == {f.path.split(".")[0] for f in FIELDS}
    subset = tuple(f for f in FIELDS if f.path in ("event_id", "device.imei", "payload.installed"))
    assert duckparse.read_columns(subset) == {
        "event_id": "VARCHAR",
        "device": 'STRUCT("imei" VARCHAR)',
        "payload": 'STRUCT("installed" VARCHAR[])',
    }


# --- the type guard -----------------------------------------------------------------------------

_WRONG_TYPES: dict[str, tuple[str, str, Any]] = {
    "string for an int": ("operation", "payload.duration_ms", "1200"),
    "fraction for an int": ("operation", "payload.duration_ms", 1200.5),
    "bool for an int": ("operation", "schema_version", True),
    "number for a string": ("operation", "event_id", 5),
    "negative number for a string": ("operation", "account_id", -1),
    "bool for a string": ("operation", "network.type", False),
    "list for a string": ("operation", "device.model", ["x"]),
    "object for a string": ("operation", "device.model", {"name": "x"}),
    "number for a timestamp": ("operation", "event_time", 1_700_000_000),
    "string for a float": ("transaction", "payload.amount", "129.5"),
    "bool for a float": ("transaction", "payload.amount", True),
    "list for a float": ("crash", "payload.cpu_pct", [1.5]),
    "string for a bool": ("device_info", "payload.rooted", "false"),
    "number for a bool": ("device_info", "payload.rooted", 0),
    "string for a string list": ("app_list", "payload.installed", "com.tencent.mm"),
    "object for a string list": ("app_list", "payload.installed", {"a": "b"}),
    "number in a string list": ("app_list", "payload.installed", ["com.tencent.mm", 1]),
    "null in a string list": ("app_list", "payload.running", [None]),
    "list in a string list": ("app_list", "payload.running", ["a", ["b"]]),
    "object in a string list": ("app_list", "payload.running", [{"a": "b"}]),
    "scalar for an object": ("operation", "device", "Xiaomi"),
    "list for an object": ("operation", "payload", []),
    "number for an object": ("operation", "network", 3),
}


@pytest.mark.parametrize("case", sorted(_WRONG_TYPES))
@pytest.mark.parametrize("separators", [(",", ":"), (", ", " : ")], ids=["compact", "spaced"])
def test_the_guard_flags_a_declared_key_holding_the_wrong_json_type(case: str, separators: tuple[str, str]) -> None:
    event_type, path, value = _WRONG_TYPES[case]
    bad = json.dumps(_with(event(event_type), path, value), separators=separators).encode()
    assert line_reason(bad) is not None  # the strict check rejects it: the guard must hand it over
    assert _flagged(bad) == [True]


def _raw(event_type: str, old: bytes, new: bytes) -> bytes:
    text = line(event(event_type))
    assert old in text
    return text.replace(old, new, 1)


_NON_STANDARD = {
    "escaped key name": _raw("transaction", b'"amount":129.5', b'"\\u0061mount":"129.5"'),
    "escaped list key name": _raw("app_list", b'"installed":[', b'"\\u0069nstalled":"com.tencent.mm","x":['),
    "NaN": _raw("transaction", b"129.5", b"NaN"),
    "Infinity": _raw("crash", b"31.5", b"Infinity"),
    "-Infinity": _raw("crash", b"31.5", b"-Infinity"),
    "nan in a list": _raw("app_list", b'["com.tencent.mm"]', b"[nan]"),
    "trailing comma in an object": _raw("operation", b'"wifi","ip":"203.0.113.45"}', b'"wifi","ip":"203.0.113.45",}'),
    "trailing comma in a list": _raw("app_list", b'["com.tencent.mm"]', b'["com.tencent.mm",]'),
    "exponent for an int": _raw("crash", b'"memory_mb":512', b'"memory_mb":5.12e2'),
}


@pytest.mark.parametrize("case", sorted(_NON_STANDARD))
def test_the_guard_flags_json_that_duckdb_tolerates_and_the_strict_check_rejects(case: str) -> None:
    bad = _NON_STANDARD[case]
    assert line_reason(bad) is not None
    assert _flagged(bad) == [True]


def _clean_records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = [event(t) for t in EVENT_TYPES]
    tricky = event("operation")
    tricky["payload"]["search_text"] = 'say "amount": "12", [1, 2], {"device": 3}, true \\ 快递'
    records.append(tricky)
    records.append(event("operation", account_id=None))  # unlogged use: null is not a wrong type
    records.append(_with(event("app_list"), "payload.installed", []))
    records.append(_with(event("transaction"), "payload.amount", 130))  # an integer is a number
    records.append(_with(event("transaction"), "payload.amount", -0.5e-3))
    return records


@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")], ids=["compact", "spaced"])
def test_the_guard_passes_clean_records(separators: tuple[str, str]) -> None:
    lines = [json.dumps(r, separators=separators, ensure_ascii=False).encode() for r in _clean_records()]
    assert [line_reason(raw) for raw in lines] == [None] * len(lines)
    assert _flagged(*lines) == [False] * len(lines)


def test_keys_the_contract_does_not_declare_are_not_judged() -> None:
    record = event("operation", extra={"colour": ["x", 1]}, note=5)
    assert line_reason(line(record)) is None
    assert _flagged(line(record)) == [False]


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)  # DuckDB steps aside for larger ones (see read_typed's tests)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["amount", "x", "kind"]), inner),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event_type=st.sampled_from(EVENT_TYPES),
    path=st.sampled_from([f.path for f in FIELDS] + PARENTS),
    value=_JSON,
    spaced=st.booleans(),
    ascii_only=st.booleans(),
)
def test_every_wrong_type_the_strict_check_finds_is_flagged(
    event_type: str, path: str, value: Any, spaced: bool, ascii_only: bool
) -> None:
    separators = (", ", " : ") if spaced else (",", ":")
    raw = json.dumps(_with(event(event_type), path, value), separators=separators, ensure_ascii=ascii_only).encode()
    reason = line_reason(raw)
    if reason is not None and reason.startswith("wrong type for"):
        assert _flagged(raw) == [True], reason


def test_large_batches_are_flagged_the_same_as_small_ones() -> None:
    """Above ``_SPLIT_ABOVE`` the guard runs in two halves at once; the answer and its order must not change."""
    n = duckparse._SPLIT_ABOVE + 1001  # odd: the halves differ in length
    clean = line(event("transaction"))
    bad = line(_with(event("transaction"), "payload.amount", "1"))
    bad_at = {0, 7, n // 2 - 1, n // 2, n // 2 + 3, n - 1}
    lines = pa.array([bad if i in bad_at else clean for i in range(n)], pa.binary())

    whole = duckparse.suspicious(lines)
    step = duckparse._SPLIT_ABOVE // 4
    pieces = [duckparse.suspicious(lines.slice(i, step)) for i in range(0, n, step)]

    assert len(whole) == n
    assert {i for i, v in enumerate(whole.to_pylist()) if v} == bad_at
    assert whole.equals(pa.concat_arrays(pieces))


# --- read_typed ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["b.ndjson", "b.ndjson.gz"])
def test_read_typed_reads_a_clean_file_into_typed_columns(tmp_path: Path, name: str) -> None:
    records = [event(t) for t in EVENT_TYPES]
    path = write_batch(tmp_path / name, list(records), compress=name.endswith(".gz"))

    table = duckparse.read_typed(path)

    assert table is not None and table.num_rows == len(records)
    assert table.column("event_id").to_pylist() == [r["event_id"] for r in records]
    payloads = table.column("payload").to_pylist()
    by_type = dict(zip(table.column("event_type").to_pylist(), payloads, strict=True))
    assert by_type["transaction"]["amount"] == PAYLOADS["transaction"]["amount"]
    assert by_type["operation"]["duration_ms"] == PAYLOADS["operation"]["duration_ms"]
    assert by_type["device_info"]["rooted"] is PAYLOADS["device_info"]["rooted"]
    assert by_type["app_list"]["installed"] == PAYLOADS["app_list"]["installed"]
    assert by_type["app_list"]["amount"] is None  # fields of other event types read as null


def test_duckdb_casts_leniently_and_the_guard_catches_it(tmp_path: Path) -> None:
    """Why the guard exists: DuckDB reads ``"1200"`` into an integer column without complaint."""
    record = _with(event("operation"), "payload.duration_ms", "1200")
    table = duckparse.read_typed(write_batch(tmp_path / "b.ndjson", [record]))
    assert table is not None and table.column("payload").to_pylist()[0]["duration_ms"] == 1200
    assert line_reason(line(record)) is not None and _flagged(line(record)) == [True]


_UNREADABLE = {
    "malformed JSON": b'{"event_id": "evt-1", ',
    "invalid UTF-8": _raw("operation", b"parcel to", b"parcel \xff\xfe to"),
    "duplicate keys": _raw("operation", b'"event_id":', b'"event_id":"evt-dup","event_id":'),
    "int out of range": _raw("operation", b'"schema_version":1', b'"schema_version":9223372036854775808'),
    "not an object": b'["a", "list"]',
    "two objects on a line": line(event()) + line(event()),
}


@pytest.mark.parametrize("case", sorted(_UNREADABLE))
def test_read_typed_steps_aside_for_a_file_duckdb_cannot_read(tmp_path: Path, case: str) -> None:
    bad = _UNREADABLE[case]
    path = write_batch(tmp_path / "b.ndjson", [event(), bad, event()])
    assert duckparse.read_typed(path) is None
    assert duckparse.read_typed(write_batch(tmp_path / "ok.ndjson", [event(), event()])) is not None
