"""Label ingestion: contract validation, pseudonyms in the subject's domain, exactly once."""

from __future__ import annotations

import orjson

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import IngestContext
from devicerisk.risk.labels import ingest_labels, read_labels
from devicerisk.store import lake, quarantine


def write_labels(settings: Settings, name: str, records: list[object]) -> None:
    folder = settings.landing_dir / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


GOOD = [
    {
        "label_id": "l1",
        "subject_type": "transaction",
        "subject_id": "202611010000000001123456",
        "label": "fraud",
        "fraud_type": "card_testing",
        "reported_at": "2026-11-03T10:00:00+00:00",
    },
    {
        "label_id": "l2",
        "subject_type": "account",
        "subject_id": "1234567890",
        "label": "legitimate",
        "reported_at": "2026-11-04T10:00:00+08:00",
    },
]


def test_labels_are_validated_pseudonymised_and_ingested_once(settings: Settings, ctx: IngestContext) -> None:
    bad = {**GOOD[0], "label_id": "l3", "label": "maybe"}
    write_labels(settings, "labels-00000.ndjson", [*GOOD, bad, "not an object"])

    first = ingest_labels(ctx, settings.landing_dir)
    assert [(r.records_read, r.accepted, r.quarantined) for r in first] == [(4, 2, 2)]
    assert first[0].reasons == {
        "value of label is not one of the allowed values": 1,
        "record is a JSON string, not an object": 1,
    }
    assert quarantine.batches(settings.quarantine_dir) == [first[0].batch_id]

    table = read_labels(settings.lake_dir).sort_by("label_id").to_pylist()
    p = ctx.pseudonymiser
    assert table[0]["subject_id_pid"] == p.pseudonymise_one("transaction", GOOD[0]["subject_id"])
    assert table[1]["subject_id_pid"] == p.pseudonymise_one("account", GOOD[1]["subject_id"])
    assert table[1]["account_id_pid"] == table[1]["subject_id_pid"]
    assert str(table[1]["reported_at"]) == "2026-11-04 02:00:00+00:00" and str(table[1]["event_date"]) == "2026-11-04"
    raw = orjson.dumps(table)
    assert b"1234567890" not in raw and b"202611010000000001123456" not in raw

    again = ingest_labels(ctx, settings.landing_dir)
    assert again[0].already_done
    assert lake.dataset(settings.lake_dir, lake.LABELS).count_rows() == 2


def test_labels_until_a_time(settings: Settings, ctx: IngestContext) -> None:
    from datetime import UTC, datetime

    write_labels(settings, "labels-00000.ndjson", GOOD)
    ingest_labels(ctx, settings.landing_dir)
    assert read_labels(settings.lake_dir, until=datetime(2026, 11, 3, 10, tzinfo=UTC)).num_rows == 1


def test_identifiers_typed_into_a_label_are_redacted_and_noted(settings: Settings, ctx: IngestContext) -> None:
    typed = {**GOOD[0], "label_id": "l9", "fraud_type": "mule 13800138000"}
    write_labels(settings, "labels-00009.ndjson", [typed, GOOD[1]])

    [result] = ingest_labels(ctx, settings.landing_dir)

    table = read_labels(settings.lake_dir).sort_by("label_id").to_pylist()
    assert [(r["label_id"], r["fraud_type"]) for r in table] == [("l2", None), ("l9", "mule [phone]")]
    assert result.notes == ["identifiers redacted from kept text: phone 1"]
    assert lake.find_batch_commit(ctx.lake_dir, lake.LABELS, result.batch_id)[1]["notes"] == result.notes
