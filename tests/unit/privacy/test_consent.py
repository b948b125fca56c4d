"""Consent at ingest: withdrawal, re-grant, cancellation and minors, end to end and via apply_consent."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from devicerisk.config import Settings
from devicerisk.ingest.parse import parse_batch
from devicerisk.ingest.pipeline import BatchResult, IngestContext, ingest_batch
from devicerisk.ingest.read import split_records
from devicerisk.privacy.consent import STATE_SCHEMAS, apply_consent
from devicerisk.privacy.transform import treat
from devicerisk.store import lake, warehouse
from factories import event, line, write_batch

WITHDRAWN = "dropped: consent_withdrawn"
CANCELLED = "dropped: account_cancelled"
MINOR = "dropped: minor_without_guardian_consent"


def _at(hour: int, minute: int = 0, day: int = 20) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:00+08:00"


def _op(account: str | None, when: str) -> dict[str, Any]:
    return event("operation", account_id=account, event_time=when)


def _account(account: str, when: str, **payload: Any) -> dict[str, Any]:
    record = event("account", account_id=account, event_time=when)
    record["payload"] = payload
    return record


def _consent(account: str, when: str, granted: bool, purpose: str = "risk_control") -> dict[str, Any]:
    return _account(account, when, action="consent", purpose=purpose, granted=granted)


def _ingest(settings: Settings, ctx: IngestContext, name: str, records: list[dict[str, Any]]) -> BatchResult:
    result = ingest_batch(write_batch(settings.landing_dir / "telemetry" / name, records), ctx)
    total = result.accepted + result.quarantined + result.consent_dropped + result.duplicates
    assert result.records_read == total
    assert result.quarantined == 0 and result.duplicates == 0
    return result


def _lake_ids(ctx: IngestContext) -> set[str]:
    data = lake.dataset(ctx.lake_dir, lake.EVENTS)
    return set() if data is None else set(data.to_table(columns=["event_id"]).column("event_id").to_pylist())


def _ids(*records: dict[str, Any]) -> set[str]:
    return {r["event_id"] for r in records}


# -- end to end ---------------------------------------------------------------------------------


def test_withdrawal_then_regrant(settings: Settings, ctx: IngestContext) -> None:
    """Events before a withdrawal stay; at and after it they are dropped, until consent is granted again."""
    acct = "acct-withdraw"
    before = _op(acct, _at(10))
    txn_before = event("transaction", account_id=acct, event_time=_at(10, 30))
    withdraw = _consent(acct, _at(11), granted=False)
    at_withdrawal = _op(acct, _at(11))
    after = _op(acct, _at(12))
    other = _op("acct-someone-else", _at(12))
    unlogged = _op(None, _at(12))
    first = _ingest(settings, ctx, "b1.ndjson", [before, txn_before, withdraw, at_withdrawal, after, other, unlogged])

    assert first.consent_dropped == 2
    assert first.reasons == {WITHDRAWN: 2}
    assert first.accepted == 5
    assert _lake_ids(ctx) == _ids(before, txn_before, withdraw, other, unlogged)

    later = _op(acct, _at(9, day=21))
    later_txn = event("transaction", account_id=acct, event_time=_at(10, day=21))
    later_unlogged = _op(None, _at(10, day=21))
    late_arrival = _op(acct, _at(10, 45))  # before the withdrawal, delivered after it: kept (6.1.2)
    second = _ingest(settings, ctx, "b2.ndjson", [later, later_txn, later_unlogged, late_arrival])
    assert (second.accepted, second.consent_dropped, second.reasons) == (2, 2, {WITHDRAWN: 2})

    still_withdrawn = _op(acct, _at(8, day=22))
    regrant = _consent(acct, _at(9, day=22), granted=True)
    after_regrant = _op(acct, _at(10, day=22))
    third = _ingest(settings, ctx, "b3.ndjson", [still_withdrawn, regrant, after_regrant])
    assert (third.accepted, third.consent_dropped, third.reasons) == (2, 1, {WITHDRAWN: 1})

    fourth_event = _op(acct, _at(9, day=23))
    fourth = _ingest(settings, ctx, "b4.ndjson", [fourth_event])
    assert (fourth.accepted, fourth.consent_dropped) == (1, 0)
    assert _lake_ids(ctx) == _ids(
        before,
        txn_before,
        withdraw,
        other,
        unlogged,
        later_unlogged,
        late_arrival,
        regrant,
        after_regrant,
        fourth_event,
    )
    entry = warehouse.ledger_entry(ctx.warehouse_path, first.batch_id)
    assert entry is not None and (entry.consent_dropped, entry.reasons) == (2, {WITHDRAWN: 2})


def test_marketing_withdrawal_drops_nothing(settings: Settings, ctx: IngestContext) -> None:
    """Risk control does not rest on marketing consent."""
    acct = "acct-marketing"
    records = [
        _op(acct, _at(10)),
        _consent(acct, _at(11), granted=False, purpose="marketing"),
        _consent(acct, _at(11), granted=False, purpose="personalisation"),
        _op(acct, _at(12)),
        event("transaction", account_id=acct, event_time=_at(13)),
    ]
    first = _ingest(settings, ctx, "b1.ndjson", records)
    second = _ingest(settings, ctx, "b2.ndjson", [later := _op(acct, _at(9, day=21))])
    assert (first.accepted, first.consent_dropped) == (5, 0)
    assert (second.accepted, second.consent_dropped) == (1, 0)
    assert _lake_ids(ctx) == _ids(*records, later)


def test_cancelled_account(settings: Settings, ctx: IngestContext) -> None:
    """A cancelled account keeps events up to the cancel time; later ones are dropped, in later batches too."""
    acct = "acct-cancel"
    before = _op(acct, _at(10))
    cancel = _account(acct, _at(11), action="cancel")
    same_time = _op(acct, _at(11))
    after = _op(acct, _at(11, 1))
    unlogged = _op(None, _at(12))
    first = _ingest(settings, ctx, "b1.ndjson", [before, cancel, same_time, after, unlogged])
    assert (first.accepted, first.consent_dropped, first.reasons) == (4, 1, {CANCELLED: 1})

    # a later re-grant of consent does not undo a cancellation
    regrant = _consent(acct, _at(9, day=21), granted=True)
    later = _op(acct, _at(10, day=21))
    second = _ingest(settings, ctx, "b2.ndjson", [regrant, later])
    assert (second.accepted, second.consent_dropped, second.reasons) == (0, 2, {CANCELLED: 2})
    assert _lake_ids(ctx) == _ids(before, cancel, same_time, unlogged)


def test_minor_without_guardian_consent(settings: Settings, ctx: IngestContext) -> None:
    """A declared minor without guardian consent: all the account's events go, now and later."""
    acct = "acct-minor"
    earlier = _op(acct, _at(9))
    declared = _account(acct, _at(10), action="age_declared", birth_year=2012, guardian_consent=False)
    later_same_batch = event("transaction", account_id=acct, event_time=_at(11))
    adult = _account("acct-adult", _at(10), action="age_declared", birth_year=1990, guardian_consent=False)
    unlogged = _op(None, _at(11))
    first = _ingest(settings, ctx, "b1.ndjson", [earlier, declared, later_same_batch, adult, unlogged])
    assert (first.accepted, first.consent_dropped, first.reasons) == (2, 3, {MINOR: 3})

    next_day = _op(acct, _at(10, day=21))
    second = _ingest(settings, ctx, "b2.ndjson", [next_day, _op(None, _at(11, day=21))])
    assert (second.accepted, second.consent_dropped, second.reasons) == (1, 1, {MINOR: 1})
    assert _ids(earlier, declared, later_same_batch, next_day).isdisjoint(_lake_ids(ctx))
    assert _ids(adult, unlogged) <= _lake_ids(ctx)

    # a later declaration with guardian consent lifts the block from then on
    guardian = _account(acct, _at(9, day=22), action="age_declared", birth_year=2012, guardian_consent=True)
    after_guardian = _op(acct, _at(10, day=22))
    third = _ingest(settings, ctx, "b3.ndjson", [guardian, after_guardian])
    assert (third.accepted, third.consent_dropped) == (2, 0)


def test_minor_with_guardian_consent_is_kept(settings: Settings, ctx: IngestContext) -> None:
    """A minor whose guardian consented keeps all events."""
    acct = "acct-minor-ok"
    records = [
        _op(acct, _at(9)),
        _account(acct, _at(10), action="age_declared", birth_year=2012, guardian_consent=True),
        _op(acct, _at(11)),
    ]
    first = _ingest(settings, ctx, "b1.ndjson", records)
    second = _ingest(settings, ctx, "b2.ndjson", [later := _op(acct, _at(10, day=21))])
    assert (first.accepted, first.consent_dropped) == (3, 0)
    assert (second.accepted, second.consent_dropped) == (1, 0)
    assert _lake_ids(ctx) == _ids(*records, later)


def test_consent_state_holds_pseudonyms_only(settings: Settings, ctx: IngestContext) -> None:
    """The warehouse's consent state names accounts by pseudonym, never by raw id."""
    records = [
        _consent("acct-raw-0001", _at(10), granted=False),
        _account("acct-raw-0002", _at(10), action="cancel"),
        _account("acct-raw-0003", _at(10), action="age_declared", birth_year=2012, guardian_consent=False),
    ]
    _ingest(settings, ctx, "b1.ndjson", records)

    state = warehouse.consent_state(ctx.warehouse_path)
    expected = {
        "consent_decisions": "acct-raw-0001",
        "cancellations": "acct-raw-0002",
        "age_declarations": "acct-raw-0003",
    }
    for name, raw in expected.items():
        pids = state[name].column("account_pid").to_pylist()
        assert pids == [ctx.pseudonymiser.pseudonymise_one("account", raw)]
        assert raw not in pids
    assert b"acct-raw-" not in Path(ctx.warehouse_path).read_bytes()


# -- apply_consent directly ---------------------------------------------------------------------


def _treated(ctx: IngestContext, records: list[dict[str, Any]]) -> pa.Table:
    """Records as the pipeline hands them to apply_consent: parsed, validated and treated."""
    data = b"".join(line(r) + b"\n" for r in records)
    parsed = parse_batch(split_records("batch-under-test", "test.ndjson", data))
    assert not parsed.rejected
    return treat(parsed.table, ctx.pseudonymiser, "batch-under-test")


def _empty_state() -> dict[str, pa.Table]:
    return {name: schema.empty_table() for name, schema in STATE_SCHEMAS.items()}


def test_apply_consent_in_batch_withdrawal(ctx: IngestContext) -> None:
    """A withdrawal inside the batch takes effect from its own time; the updates carry it as a pseudonym."""
    acct = "acct-direct"
    records = [
        _op(acct, _at(10)),
        _consent(acct, _at(11), granted=False),
        _op(acct, _at(11)),
        _op(None, _at(12)),
        _op(acct, _at(12)),
    ]
    outcome = apply_consent(_treated(ctx, records), _empty_state())
    assert outcome.keep.to_pylist() == [True, True, False, True, False]
    assert outcome.dropped_by_reason == {"consent_withdrawn": 2}
    decisions = outcome.updates["consent_decisions"].to_pylist()
    assert [(d["account_pid"], d["purpose"], d["granted"]) for d in decisions] == [
        (ctx.pseudonymiser.pseudonymise_one("account", acct), "risk_control", False)
    ]
    assert outcome.updates["cancellations"].num_rows == 0


_T19 = datetime(2026, 11, 19, tzinfo=UTC)


@pytest.mark.parametrize(
    ("state_name", "row", "reason"),
    [
        pytest.param(
            "consent_decisions",
            {"purpose": "risk_control", "decided_at": _T19, "granted": False},
            "consent_withdrawn",
            id="stored-withdrawal",
        ),
        pytest.param("cancellations", {"cancelled_at": _T19}, "account_cancelled", id="stored-cancel"),
        pytest.param(
            "age_declarations",
            {"declared_at": _T19, "minor": True, "guardian_consent": False},
            "minor_without_guardian_consent",
            id="stored-minor",
        ),
    ],
)
def test_apply_consent_stored_state(ctx: IngestContext, state_name: str, row: dict[str, Any], reason: str) -> None:
    """Stored state drops the account's events; unlogged events and other accounts' events stay."""
    acct = "acct-stored"
    state = _empty_state()
    state[state_name] = pa.Table.from_pylist(
        [{"account_pid": ctx.pseudonymiser.pseudonymise_one("account", acct), **row}], schema=STATE_SCHEMAS[state_name]
    )
    records = [_op(acct, _at(10)), _op(None, _at(10)), _op("acct-other", _at(10)), _op(acct, _at(11))]
    outcome = apply_consent(_treated(ctx, records), state)
    assert outcome.keep.to_pylist() == [False, True, True, False]
    assert outcome.dropped_by_reason == {reason: 2}
    assert all(update.num_rows == 0 for update in outcome.updates.values())


def test_apply_consent_unlogged_events_are_never_dropped(ctx: IngestContext) -> None:
    """Events without an account match no stored or in-batch state."""
    records = [
        _consent("acct-x", _at(9), granted=False),
        _account("acct-y", _at(9), action="cancel"),
        _account("acct-z", _at(9), action="age_declared", birth_year=2015, guardian_consent=False),
        *(event(kind, account_id=None, event_time=_at(10)) for kind in ("operation", "transaction", "crash")),
    ]
    outcome = apply_consent(_treated(ctx, records), _empty_state())
    assert outcome.keep.to_pylist() == [True, True, False, True, True, True]
    assert outcome.dropped_by_reason == {"minor_without_guardian_consent": 1}
