"""Identifiers typed into kept text never reach the lake, and the batch's ledger note counts them."""

from __future__ import annotations

import json

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import IngestContext, ingest_batch
from devicerisk.store import lake, warehouse
from factories import event, write_batch


def test_identifiers_in_kept_text_are_redacted_before_the_lake(settings: Settings, ctx: IngestContext) -> None:
    records = [
        event("operation", payload={"action": "view", "page": "/contact/li.wei@example.com"}),
        event("operation", payload={"action": "view", "page": "/contact/li.wei@example.com"}),
        event("crash", payload={"kind": "crash", "exception_type": "BadImei490154203237518", "stack_trace": "x"}),
        event("device_info", device={"model": "Redmi 13800138000", "os": "Android"}),
        event("operation", payload={"action": "view", "page": "/home"}),
    ]
    path = settings.landing_dir / "telemetry" / "kept-text.ndjson"
    write_batch(path, records)

    result = ingest_batch(path, ctx)

    assert result.accepted == 5
    rows = lake.dataset(ctx.lake_dir, lake.EVENTS).to_table().to_pylist()
    assert sorted(r["page"] for r in rows if r["page"]) == ["/contact/[email]", "/contact/[email]", "/home"]
    assert [r["exception_type"] for r in rows if r["exception_type"]] == ["BadImei[imei]"]
    assert [r["device_model"] for r in rows if r["event_type"] == "device_info"] == ["Redmi [phone]"]
    stored = json.dumps(rows, default=str)
    assert "example.com" not in stored and "490154203237518" not in stored and "13800138000" not in stored
    note = "identifiers redacted from kept text: email 2, imei 1, phone 1"
    assert note in result.notes
    entry = warehouse.ledger_entry(ctx.warehouse_path, result.batch_id)
    assert entry is not None and entry.note == note
    assert lake.find_batch_commit(ctx.lake_dir, lake.EVENTS, result.batch_id)[1]["notes"] == [note]
