"""Times outside the contract's window (issue: one record stops the whole pipeline).

A time can be valid RFC 3339 and still no time of an event: year 1, year 9999 (which leave the years
1-9999 once converted to UTC), a clock reset to 1970, a clock days ahead. Each such record is
quarantined with a reason; the batch is committed and the batches after it go on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devicerisk.config import Settings
from devicerisk.contract.fields import EARLIEST_TIME
from devicerisk.governance import retention_check
from devicerisk.governance.stores import stores_for
from devicerisk.ingest.pipeline import IngestContext, ingest_batch, ingest_batches
from devicerisk.ingest.runtime import ingest_context
from devicerisk.risk.labels import ingest_labels, read_labels
from devicerisk.store import lake, quarantine, warehouse
from factories import event, line, write_batch

BEFORE = f"event_time is before {EARLIEST_TIME:%Y-%m-%d}, the earliest time the contract accepts"
AHEAD = "event_time is more than 24 hours ahead of the ingest time"


def _ahead(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


CASES = [
    pytest.param("9999-12-31T23:30:00-01:00", AHEAD, id="year-10000-in-utc"),
    pytest.param("0001-01-01T00:30:00+01:00", BEFORE, id="year-0-in-utc"),
    pytest.param("0001-01-02T00:00:00Z", BEFORE, id="year-1"),
    pytest.param("1970-01-01T00:00:00+08:00", BEFORE, id="clock-reset-to-the-epoch"),
    pytest.param(_ahead(timedelta(days=3)), AHEAD, id="three-days-ahead"),
]


def _lake_ids(ctx: IngestContext) -> list[str]:
    data = lake.dataset(ctx.lake_dir, lake.EVENTS)
    return [] if data is None else sorted(data.to_table(columns=["event_id"]).column("event_id").to_pylist())


def _telemetry(settings: Settings, name: str) -> Path:
    return settings.landing_dir / "telemetry" / name


@pytest.mark.parametrize("broken_neighbour", [False, True], ids=["fast-path", "record-by-record-path"])
@pytest.mark.parametrize(("when", "reason"), CASES)
def test_a_time_outside_the_window_is_quarantined_and_the_batch_committed(
    settings: Settings, ctx: IngestContext, when: str, reason: str, broken_neighbour: bool
) -> None:
    good = [event("operation"), event("transaction")]
    bad = event("account", event_time=when)
    records: list[dict | bytes] = [good[0], bad, good[1]]
    if broken_neighbour:  # a malformed line makes the parser take the record-by-record path
        records.append(b'{"event_id": ')
    result = ingest_batch(write_batch(_telemetry(settings, "b.ndjson"), records), ctx)

    assert (result.accepted, result.quarantined) == (2, 1 + broken_neighbour)
    assert result.reasons[reason] == 1
    assert _lake_ids(ctx) == sorted(e["event_id"] for e in good)
    assert warehouse.ledger_entry(ctx.warehouse_path, result.batch_id) is not None
    rejected = quarantine.read(ctx.quarantine_dir, result.batch_id, ctx.quarantine_key)
    assert (rejected[0].line, rejected[0].reason, rejected[0].raw) == (2, reason, line(bad))


def test_later_batches_go_on_after_a_batch_with_an_overflowing_time(settings: Settings, ctx: IngestContext) -> None:
    first = write_batch(_telemetry(settings, "a.ndjson"), [event(event_time="9999-12-31T23:30:00-01:00"), event()])
    later = write_batch(_telemetry(settings, "b.ndjson"), [event("crash")])
    results = list(ingest_batches([first, later], ctx))
    assert [(r.accepted, r.quarantined, r.failed) for r in results] == [(1, 1, None), (1, 0, None)]


def test_a_time_a_little_ahead_is_accepted_within_the_configured_skew(
    settings: Settings, ctx: IngestContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Device clocks drift: two hours ahead passes the default skew; a tighter setting quarantines it."""
    ahead = event(event_time=_ahead(timedelta(hours=2)))
    assert ingest_batch(write_batch(_telemetry(settings, "a.ndjson"), [ahead]), ctx).accepted == 1

    monkeypatch.setenv("DEVICERISK_MAX_FUTURE_SKEW_HOURS", "1")
    strict = ingest_context(Settings(**settings.model_dump(exclude={"max_future_skew_hours"})))
    assert strict.future_skew == timedelta(hours=1)
    result = ingest_batch(
        write_batch(_telemetry(settings, "b.ndjson"), [event(event_time=ahead["event_time"])]), strict
    )
    assert result.reasons == {"event_time is more than 1 hours ahead of the ingest time": 1}


def test_retention_verify_is_not_tripped_by_an_ancient_time(settings: Settings, ctx: IngestContext) -> None:
    """A year-1 row, once accepted, was past every retention period the moment it landed."""
    ingest_batch(
        write_batch(_telemetry(settings, "a.ndjson"), [event(), event(event_time="0001-01-02T00:00:00Z")]), ctx
    )
    assert [v for v in retention_check.verify(stores_for(settings), datetime.now(UTC)) if v.store == "lake"] == []


def test_label_times_outside_the_window_are_quarantined(settings: Settings, ctx: IngestContext) -> None:
    import orjson

    good = {
        "label_id": "l1",
        "subject_type": "account",
        "subject_id": "1234567890",
        "label": "fraud",
        "reported_at": "2026-11-04T10:00:00+08:00",
    }
    labels = [
        good,
        {**good, "label_id": "l2", "reported_at": "9999-12-31T23:30:00-01:00"},
        {**good, "label_id": "l3", "reported_at": "0001-01-01T00:30:00+01:00"},
    ]
    folder = settings.landing_dir / "labels"
    folder.mkdir(parents=True)
    (folder / "labels.ndjson").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in labels))

    [result] = ingest_labels(ctx, settings.landing_dir)

    assert (result.accepted, result.quarantined, result.failed) == (1, 2, None)
    assert result.reasons == {
        "reported_at is more than 24 hours ahead of the ingest time": 1,
        f"reported_at is before {EARLIEST_TIME:%Y-%m-%d}, the earliest time the contract accepts": 1,
    }
    assert read_labels(settings.lake_dir).column("label_id").to_pylist() == ["l1"]
