"""A corpus of bad inputs: each is quarantined with its exact reason, next to good records that pass."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from devicerisk.config import Settings
from devicerisk.contract.fields import MAX_RECORD_BYTES
from devicerisk.ingest.pipeline import BatchResult, IngestContext, ingest_batch
from devicerisk.store import lake, quarantine, warehouse
from factories import event, line, write_batch

#: Values every factory record carries; none may ever reach the reasons sidecar.
PERSONAL_VALUES = (b"352099001761481", b"Li Wei", b"6222020200112233445", b"acct-000001", b"13800138000")


def _landing(settings: Settings, name: str = "batch.ndjson") -> Path:
    return settings.landing_dir / "telemetry" / name


def _assert_accounted(result: BatchResult) -> None:
    total = result.accepted + result.quarantined + result.consent_dropped + result.duplicates
    assert result.records_read == total


def _lake_ids(ctx: IngestContext) -> list[str]:
    data = lake.dataset(ctx.lake_dir, lake.EVENTS)
    return [] if data is None else data.to_table(columns=["event_id"]).column("event_id").to_pylist()


def _marked(record: dict[str, Any], case: str) -> dict[str, Any]:
    """The record with an unknown top-level field holding a marker that must never leak."""
    record["x_probe"] = f"LEAK-MARKER-{case}"
    return record


def _with_payload(event_type: str, case: str, **changes: Any) -> Callable[[], bytes]:
    def build() -> bytes:
        record = event(event_type)
        record["payload"].update(changes)
        return line(_marked(record, case))

    return build


def _without(event_type: str, case: str, path: str) -> Callable[[], bytes]:
    def build() -> bytes:
        record = event(event_type)
        *parents, leaf = path.split(".")
        node = record
        for part in parents:
            node = node[part]
        del node[leaf]
        return line(_marked(record, case))

    return build


def _with(kind: str, case: str, **overrides: Any) -> Callable[[], bytes]:
    return lambda: line(_marked(event(kind, **overrides), case))


def _unknown_type() -> bytes:
    return line(_marked({**event("operation"), "event_type": "telemetry_ping"}, "unknowntype"))


def _non_standard_number(literal: bytes) -> Callable[[], bytes]:
    """A transaction whose amount is a NaN/Infinity literal, which JSON does not allow."""

    def build() -> bytes:
        record = line(_marked(event("transaction"), "nan"))
        assert b'"amount":129.5' in record
        return record.replace(b'"amount":129.5', b'"amount":' + literal)

    return build


def _two_objects() -> bytes:
    """Two complete objects on one line: one NDJSON record that is not valid JSON."""
    return line(_marked(event("operation"), "twoobjects")) + b" " + line(event("operation"))


def _raw(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _oversize() -> bytes:
    record = event("operation")
    record["payload"]["search_text"] = "LEAK-MARKER-oversize " + "x" * MAX_RECORD_BYTES
    return line(record)


def _invalid_utf8() -> bytes:
    record = event("operation")
    record["payload"]["page"] = "LEAK-MARKER-utf8 pageXX"
    return line(record).replace(b"pageXX", b"page\xff\xfe")


def _utf8_reason(bad: bytes) -> str:
    return f"invalid UTF-8 at byte {bad.index(0xFF)}"


@dataclass(frozen=True)
class Case:
    """A bad record, the exact reason expected, and a value that must never be written in clear."""

    id: str
    build: Callable[[], bytes]
    reason: str | Callable[[bytes], str]
    secret: bytes
    marks: tuple[Any, ...] = ()

    def expected_reason(self, bad: bytes) -> str:
        return self.reason if isinstance(self.reason, str) else self.reason(bad)


CASES: tuple[Case, ...] = (
    Case(
        "malformed-json",
        _raw(b'{"event_id": "LEAK-MARKER-malformed", "event_type": '),
        "malformed JSON",
        b"LEAK-MARKER-malformed",
    ),
    Case(
        "json-array", _raw(b'["LEAK-MARKER-array", 1]'), "record is a JSON array, not an object", b"LEAK-MARKER-array"
    ),
    Case("json-number", _raw(b"31415926535897932"), "record is a JSON integer, not an object", b"31415926535897932"),
    Case("json-float", _raw(b"2.718281828459045"), "record is a JSON number, not an object", b"2.718281828459045"),
    Case("json-string", _raw(b'"LEAK-MARKER-string"'), "record is a JSON string, not an object", b"LEAK-MARKER-string"),
    Case("nan-literal", _non_standard_number(b"NaN"), "malformed JSON", b"LEAK-MARKER-nan"),
    Case("infinity-literal", _non_standard_number(b"-Infinity"), "malformed JSON", b"LEAK-MARKER-nan"),
    Case("two-objects-on-one-line", _two_objects, "malformed JSON", b"LEAK-MARKER-twoobjects"),
    Case(
        "duration-ms-as-string",
        _with_payload("operation", "duration", duration_ms="98765"),
        "wrong type for payload.duration_ms: expected integer, got string",
        b"LEAK-MARKER-duration",
    ),
    Case(
        "account-id-as-integer",
        _with("operation", "account", account_id=918273645),
        "wrong type for account_id: expected string, got integer",
        b"918273645",
    ),
    Case(
        "rooted-as-string",
        _with_payload("device_info", "rooted", rooted="true"),
        "wrong type for payload.rooted: expected boolean, got string",
        b"LEAK-MARKER-rooted",
    ),
    Case(
        "amount-as-string",
        _with_payload("transaction", "amount", amount="4321.99"),
        "wrong type for payload.amount: expected number, got string",
        b"4321.99",
    ),
    Case(
        "float-for-integer",
        _with_payload("crash", "memory", memory_mb=512.75),
        "wrong type for payload.memory_mb: expected integer, got number",
        b"512.75",
    ),
    Case(
        "device-as-string",
        _with("operation", "device", device="LEAK-MARKER-devicestring"),
        "wrong type for device: expected object",
        b"LEAK-MARKER-devicestring",
    ),
    Case(
        "installed-with-number",
        _with_payload("app_list", "installed", installed=["com.tencent.mm", 31337]),
        "wrong type for payload.installed: expected string[], got array",
        b"LEAK-MARKER-installed",
    ),
    Case(
        "missing-event-id",
        _without("operation", "noid", "event_id"),
        "missing required field event_id",
        b"LEAK-MARKER-noid",
    ),
    Case(
        "missing-event-time",
        _without("operation", "notime", "event_time"),
        "missing required field event_time",
        b"LEAK-MARKER-notime",
    ),
    Case(
        "missing-amount",
        _without("transaction", "noamount", "payload.amount"),
        "missing required field payload.amount",
        b"LEAK-MARKER-noamount",
    ),
    Case(
        "missing-transaction-id",
        _without("transaction", "notxid", "payload.transaction_id"),
        "missing required field payload.transaction_id",
        b"LEAK-MARKER-notxid",
    ),
    Case(
        "missing-currency",
        _without("transaction", "nocurrency", "payload.currency"),
        "missing required field payload.currency",
        b"LEAK-MARKER-nocurrency",
    ),
    Case("unknown-event-type", _unknown_type, "unknown event type", b"telemetry_ping"),
    Case(
        "schema-version-2",
        _with("operation", "v2", schema_version=2),
        "unsupported schema_version (this reader reads version 1)",
        b"LEAK-MARKER-v2",
    ),
    Case(
        "event-time-without-offset",
        _with("operation", "nooffset", event_time="2026-11-20T10:00:00.000"),
        "invalid time in event_time: expected RFC 3339 with a UTC offset",
        b'2026-11-20T10:00:00.000"',
    ),
    Case(
        "event-time-impossible-date",
        _with("operation", "month13", event_time="2026-13-01T10:00:00+08:00"),
        "invalid time in event_time: expected RFC 3339 with a UTC offset",
        b"2026-13-01",
    ),
    Case(
        "status-not-in-enum",
        _with_payload("transaction", "status", status="refunded"),
        "value of payload.status is not one of the allowed values",
        b"refunded",
    ),
    Case(
        "currency-too-long",
        _with_payload("transaction", "currency", currency="CNYX"),
        "payload.currency is longer than 3 characters",
        b"CNYX",
    ),
    Case("oversize-record", _oversize, f"record exceeds {MAX_RECORD_BYTES} bytes", b"LEAK-MARKER-oversize"),
    Case("invalid-utf8", _invalid_utf8, _utf8_reason, b"LEAK-MARKER-utf8"),
)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_record_is_quarantined_with_its_reason(case: Case, settings: Settings, ctx: IngestContext) -> None:
    """Good records around a bad one are accepted; the bad one is quarantined, its reason exact and value-free."""
    good_before, good_after = event("operation"), event("transaction")
    bad = case.build()
    reason = case.expected_reason(bad)
    path = write_batch(_landing(settings), [good_before, bad, good_after])

    result = ingest_batch(path, ctx)

    assert result.records_read == 3
    assert (result.accepted, result.quarantined, result.consent_dropped, result.duplicates) == (2, 1, 0, 0)
    assert result.reasons == {reason: 1}
    _assert_accounted(result)
    assert sorted(_lake_ids(ctx)) == sorted([good_before["event_id"], good_after["event_id"]])

    entry = warehouse.ledger_entry(ctx.warehouse_path, result.batch_id)
    assert entry is not None
    assert (entry.records_read, entry.accepted, entry.quarantined) == (3, 2, 1)
    assert entry.reasons == {reason: 1}

    # the reasons sidecar: same reasons, no values
    assert quarantine.reasons(ctx.quarantine_dir, result.batch_id) == [{"line": 2, "reason": reason}]
    sidecar = (ctx.quarantine_dir / f"{result.batch_id}.reasons.json").read_bytes()
    assert json.loads(sidecar)["rejects"] == [{"line": 2, "reason": reason}]
    for value in (bad, case.secret, *PERSONAL_VALUES):
        assert value not in sidecar

    # the encrypted records: the exact raw bytes with the key, nothing readable without it
    rejected = quarantine.read(ctx.quarantine_dir, result.batch_id, ctx.quarantine_key)
    assert [(r.line, r.reason, r.raw) for r in rejected] == [(2, reason, bad)]
    sealed = (ctx.quarantine_dir / f"{result.batch_id}.records.enc").read_bytes()
    for value in (bad, case.secret, *PERSONAL_VALUES):
        assert value not in sealed


def test_invalid_utf8_offset_is_the_offending_byte(settings: Settings, ctx: IngestContext) -> None:
    """The reported byte offset points at the first invalid byte of the line, wherever it is."""
    good = event("operation")
    bad_at_start = b"\xc3(" + line(event("operation"))[2:]
    path = write_batch(_landing(settings), [good, bad_at_start])
    result = ingest_batch(path, ctx)
    assert result.reasons == {"invalid UTF-8 at byte 0": 1}
    assert result.accepted == 1
    _assert_accounted(result)


def _cut_gzip(records: list[dict[str, Any]]) -> tuple[bytes, list[bytes], bytes]:
    """A gzip stream cut in the middle: the bytes, the complete lines it still holds and the cut-off one."""
    data = b"".join(line(r) + b"\n" for r in records)
    compressed = gzip.compress(data)
    for cut in range(len(compressed) // 2, len(compressed) - 8):
        recovered = zlib.decompressobj(wbits=31).decompress(compressed[:cut])
        *complete, partial = recovered.split(b"\n")
        if partial and len(complete) >= 2:
            return compressed[:cut], complete, partial
    raise AssertionError("no cut leaves a partial record")


def test_truncated_gzip_keeps_complete_records(settings: Settings, ctx: IngestContext) -> None:
    """A cut gzip file: recovered records are accepted, the cut one quarantined, the batch noted."""
    records = [event("operation", event_id=f"gz-{i:03d}") for i in range(12)]
    cut, complete, partial = _cut_gzip(records)
    path = _landing(settings, "cut.ndjson.gz")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cut)

    result = ingest_batch(path, ctx)

    assert result.records_read == len(complete) + 1
    assert result.accepted == len(complete)
    assert result.quarantined == 1
    assert result.reasons == {"truncated gzip: record cut off": 1}
    assert result.notes == ["truncated gzip stream"]
    _assert_accounted(result)
    assert sorted(_lake_ids(ctx)) == [orjson.loads(c)["event_id"] for c in complete]
    rejected = quarantine.read(ctx.quarantine_dir, result.batch_id, ctx.quarantine_key)
    assert [(r.line, r.reason, r.raw) for r in rejected] == [
        (len(complete) + 1, "truncated gzip: record cut off", partial)
    ]
    assert partial == line(records[len(complete)])[: len(partial)]
    entry = warehouse.ledger_entry(ctx.warehouse_path, result.batch_id)
    assert entry is not None and entry.note == "truncated gzip stream"


def test_empty_file(settings: Settings, ctx: IngestContext) -> None:
    """An empty file reads zero records, is noted, writes nothing to the lake and still gets a ledger row."""
    path = _landing(settings, "empty.ndjson")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")

    result = ingest_batch(path, ctx)

    assert (result.records_read, result.accepted, result.quarantined) == (0, 0, 0)
    assert result.notes == ["empty file"]
    _assert_accounted(result)
    assert lake.dataset(ctx.lake_dir, lake.EVENTS) is None
    assert quarantine.reasons(ctx.quarantine_dir, result.batch_id) == []
    entry = warehouse.ledger_entry(ctx.warehouse_path, result.batch_id)
    assert entry is not None
    assert (entry.records_read, entry.accepted, entry.note, entry.lake_version) == (0, 0, "empty file", None)


def test_only_blank_lines(settings: Settings, ctx: IngestContext) -> None:
    """Blank and whitespace-only lines are not records."""
    path = _landing(settings, "blank.ndjson")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n\n   \n\t\n\r\n")

    result = ingest_batch(path, ctx)

    assert (result.records_read, result.accepted, result.quarantined, result.duplicates) == (0, 0, 0, 0)
    assert result.reasons == {}
    assert lake.dataset(ctx.lake_dir, lake.EVENTS) is None
    entry = warehouse.ledger_entry(ctx.warehouse_path, result.batch_id)
    assert entry is not None and entry.records_read == 0


def test_field_of_another_event_type_is_accepted_but_not_kept(settings: Settings, ctx: IngestContext) -> None:
    """payload.amount on an operation event passes validation but never reaches the lake."""
    record = event("operation")
    record["payload"]["amount"] = 777.25
    record["payload"]["currency"] = "XYZ"
    transaction = event("transaction")
    path = write_batch(_landing(settings), [record, transaction])

    result = ingest_batch(path, ctx)

    assert (result.accepted, result.quarantined) == (2, 0)
    data = lake.dataset(ctx.lake_dir, lake.EVENTS)
    assert data is not None
    rows = {r["event_id"]: r for r in data.to_table(columns=["event_id", "amount", "currency"]).to_pylist()}
    assert rows[record["event_id"]]["amount"] is None
    assert rows[record["event_id"]]["currency"] is None
    assert rows[transaction["event_id"]]["amount"] == 129.5
    assert rows[transaction["event_id"]]["currency"] == "CNY"


def test_a_missing_optional_object_is_not_a_wrong_type() -> None:
    """An event without `network` and with a wrong-typed payload field names the field, not `network`."""
    from devicerisk.ingest.validate import record_reason

    record = event("operation")
    del record["network"]
    record["payload"]["duration_ms"] = "12"
    assert record_reason(line(record)) == "wrong type for payload.duration_ms: expected integer, got string"
    del record["payload"]["duration_ms"]
    assert record_reason(line(record)) is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'"cpu_pct": nan', "malformed JSON"),
        (b'"cpu_pct": -Inf', "malformed JSON"),
        (b'"cpu_pct": 1e999', "malformed JSON"),
    ],  # orjson refuses to read it as infinity
    ids=["nan-lowercase", "inf", "overflowing-number"],
)
def test_non_finite_numbers_are_rejected_on_the_fast_path(
    settings: Settings, ctx: IngestContext, payload: bytes, reason: str
) -> None:
    good = [event("crash"), event("crash")]
    bad = line(event("crash")).replace(b'"cpu_pct":31.5', payload)
    assert bad != line(event("crash"))
    result = ingest_batch(write_batch(settings.landing_dir / "telemetry" / "b.ndjson", [*good, bad]), ctx)
    assert (result.accepted, result.quarantined) == (2, 1)
    assert result.reasons == {reason: 1}


def test_a_trailing_comma_is_rejected_on_the_fast_path(settings: Settings, ctx: IngestContext) -> None:
    bad = line(event("operation"))[:-1] + b",}"
    result = ingest_batch(write_batch(settings.landing_dir / "telemetry" / "b.ndjson", [event(), bad]), ctx)
    assert (result.accepted, result.quarantined, result.reasons) == (1, 1, {"malformed JSON": 1})


def test_nanosecond_times_are_kept_to_the_microsecond(settings: Settings, ctx: IngestContext) -> None:
    record = event("operation", event_time="2026-11-20T10:00:00.123456789+08:00")
    result = ingest_batch(write_batch(settings.landing_dir / "telemetry" / "b.ndjson", [record]), ctx)
    assert result.accepted == 1


def test_garbage_after_a_gzip_stream_keeps_the_records(settings: Settings, ctx: IngestContext) -> None:
    import gzip

    path = settings.landing_dir / "telemetry" / "b.ndjson.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(line(event()) + b"\n") + b"\0" * 8)
    result = ingest_batch(path, ctx)
    assert result.accepted == 1 and result.notes == ["trailing bytes after the gzip stream were ignored"]


def test_a_file_replaced_after_reading_is_parsed_from_the_bytes_read(settings: Settings) -> None:
    """The fast path reads the file again; if it changed since, the bytes already read are used."""
    import os

    from devicerisk.ingest.parse import parse_batch
    from devicerisk.ingest.read import read_batch

    path = write_batch(settings.landing_dir / "telemetry" / "b.ndjson", [event("operation", event_id="evt-old")])
    raw = read_batch(path)
    write_batch(path, [event("operation", event_id="evt-new")])  # same size, new content
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock's resolution
    parsed = parse_batch(raw, reread=path)
    assert parsed.table.column("event_id").to_pylist() == ["evt-old"]
