"""Subject rights over time: what the purge must keep honouring, repeat requests, resumed erasures.

Each test fails on the behaviour it guards against: state that ingest honours purged after three
years, a second request refused as a duplicate, an erasure completed with rows still on disk.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import timedelta

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from deltalake import write_deltalake

import retention_world as world
from devicerisk.config import Settings
from devicerisk.governance import holds, purge, requests, retention_check, subject_data
from devicerisk.governance.requests import RequestKind
from devicerisk.governance.stores import Stores, stores_for
from devicerisk.governance.subjects import AmbiguousPhoneError, Identifiers, resolve
from devicerisk.ingest.pipeline import ingest_batch
from devicerisk.ingest.runtime import ingest_context
from devicerisk.store import governance, quarantine, snapshots, warehouse
from devicerisk.store import lake_maintenance as lakes
from devicerisk.store.rows import SubjectRows
from factories import event, verified, write_batch


@pytest.fixture
def setup(settings: Settings) -> tuple[world.World, Stores, Settings]:
    s = settings.model_copy(update={"vacuum_grace_hours": 0})
    return world.build(s), stores_for(s), s


def _ingest_one(s: Settings, name: str, account: str, **payload: object) -> None:
    e = event("account" if payload else "operation", account_id=account, event_time=world.NOW.isoformat())
    if payload:
        e["payload"] = payload
    ingest_batch(write_batch(s.landing_dir / "telemetry" / name, [e]), ingest_context(s))


def _subject_events(stores: Stores, account: str) -> int:
    return lakes.count_where(stores.lake_dir, "events", ds.field("account_id_pid") == account)


def test_clause_6_3_purge_keeps_cancellations_that_ingest_honours(setup: tuple[world.World, Stores, Settings]) -> None:
    w, stores, s = setup
    requests.submit(
        stores,
        RequestKind.CANCELLATION,
        world.SUBJECT,
        world.NOW - timedelta(days=1100),
        options={"mode": "delete"},
        verification=verified(),
    )
    purge.purge(stores, world.NOW)  # the cancellation is older than the account period
    assert warehouse.consent_state(stores.warehouse_path)["cancellations"].num_rows == 1
    _ingest_one(s, "after.ndjson", world.SUBJECT.account_id)
    assert _subject_events(stores, w.subject_pid) == 0  # still dropped at ingest


def test_clause_6_1_purge_keeps_the_latest_consent_decision_and_drops_superseded_ones(
    setup: tuple[world.World, Stores, Settings],
) -> None:
    _w, stores, _s = setup
    old = world.NOW - timedelta(days=1200)
    for days, granted in ((0, True), (10, False)):  # granted, then withdrawn, both past the account period
        rows = {
            "account_pid": ["a" * 32],
            "purpose": ["risk_control"],
            "decided_at": [old + timedelta(days=days)],
            "granted": [granted],
        }
        governance.record_state(stores.warehouse_path, "consent_decisions", pa.table(rows), f"b{days}")
    minor = {"account_pid": ["b" * 32], "declared_at": [old], "minor": [True], "guardian_consent": [False]}
    governance.record_state(stores.warehouse_path, "age_declarations", pa.table(minor), "m")
    purge.purge(stores, world.NOW)
    state = warehouse.consent_state(stores.warehouse_path)
    kept = [r for r in state["consent_decisions"].to_pylist() if r["account_pid"] == "a" * 32]
    assert [r["granted"] for r in kept] == [False]  # the withdrawal stays, the grant it superseded went
    assert state["age_declarations"].num_rows == 1  # an unresolved minor declaration stays (7.2)


def test_clause_6_2_a_subject_may_repeat_a_request_after_the_first_completed(
    setup: tuple[world.World, Stores, Settings],
) -> None:
    _w, stores, s = setup
    first = requests.submit(stores, RequestKind.ACCESS, world.SUBJECT, world.NOW, verification=verified())
    again = requests.submit(
        stores, RequestKind.ACCESS, world.SUBJECT, world.NOW + timedelta(days=200), verification=verified()
    )
    assert again.status == requests.Status.COMPLETED and again.request_id != first.request_id
    requests.submit(
        stores,
        RequestKind.WITHDRAWAL,
        world.SUBJECT,
        world.NOW,
        options={"purpose": "risk_control"},
        verification=verified(),
    )
    _ingest_one(s, "regrant.ndjson", world.SUBJECT.account_id, action="consent", purpose="risk_control", granted=True)
    withdrawn = requests.submit(
        stores,
        RequestKind.WITHDRAWAL,
        world.SUBJECT,
        world.NOW + timedelta(days=10),
        options={"purpose": "risk_control"},
        verification=verified(),
    )
    assert withdrawn.status == requests.Status.COMPLETED
    assert len(governance.requests(stores.warehouse_path)) == 4


class _Crash(RuntimeError):
    pass


def _crash_at(step: str) -> requests.Checkpoint:
    def crash(at: str) -> None:
        if at == step:
            raise _Crash(at)

    return crash


def test_clause_6_2_2_erasure_resumed_after_the_grace_completes_only_once_the_bytes_are_gone(
    settings: Settings,
) -> None:
    s = settings.model_copy(update={"vacuum_grace_hours": 1})
    world.build(s)
    stores = stores_for(s)
    with pytest.raises(_Crash):
        requests.submit(
            stores,
            RequestKind.ERASURE,
            world.SUBJECT,
            world.NOW,
            checkpoint=_crash_at("landing"),
            verification=verified(),
        )
    (row,) = requests.pending(stores)
    later = world.NOW + timedelta(hours=2)  # resumed after the grace has passed since the landing step
    row = requests.process(stores, row, later, actor="requests-flow", role="pipeline")
    assert row.status == requests.Status.IN_PROGRESS and row.deleted_at == later  # the lake step's time
    assert not (stores.requests_dir / row.request_id / "receipt.json").exists()
    # The grace has passed for the files, too, but a vacuum that leaves rows on disk does not complete it.
    row = requests.process(stores, row, later + timedelta(hours=2), actor="requests-flow", role="pipeline")
    assert row.status == requests.Status.IN_PROGRESS and row.reason and "younger than the vacuum grace" in row.reason
    done = requests.process(
        dataclasses.replace(stores, grace=timedelta(0)), row, later + timedelta(hours=2), actor="f", role="pipeline"
    )
    assert done.status == requests.Status.COMPLETED
    receipt = json.loads((stores.requests_dir / done.request_id / "receipt.json").read_text())
    assert receipt["rows_left_in_files_on_disk"] == 0


def test_clause_5_1_2_rewriting_a_quarantine_batch_or_snapshot_keeps_its_retention_clock(
    setup: tuple[world.World, Stores, Settings],
) -> None:
    w, stores, s = setup
    recs = [
        event("transaction", account_id=a, event_time=world.NOW.isoformat())
        for a in (world.SUBJECT.account_id, "acct-other")
    ]
    for e in recs:
        e["payload"]["amount"] = "not a number"
    ingest_batch(write_batch(s.landing_dir / "telemetry" / "shared.ndjson", recs), ingest_context(s))
    old = world.NOW - timedelta(days=40)  # past the quarantine period
    for path in stores.quarantine_dir.glob("*.reasons.json"):
        path.write_text(json.dumps(json.loads(path.read_text()) | {"written_at": old.isoformat()}))
    snapshot = stores.models_dir / "v8" / "features.parquet"  # no time column: dated by when it was written
    snapshot.parent.mkdir(parents=True)
    pq.write_table(pa.table({"account_id_pid": [w.subject_pid, w.stranger_pid], "f": [1.0, 2.0]}), snapshot)
    made = world.NOW - timedelta(days=200)  # past the model snapshot period
    os.utime(snapshot, (made.timestamp(), made.timestamp()))

    requests.submit(
        stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified()
    )  # rewrites the shared batch and the snapshot

    assert [quarantine.written_at(stores.quarantine_dir, b) for b in quarantine.batches(stores.quarantine_dir)] == [old]
    assert snapshots.modified_at(snapshot) == made
    report = purge.purge(stores, world.NOW)
    assert report.removed["quarantine"] == 1 and quarantine.batches(stores.quarantine_dir) == []
    assert not snapshot.exists()


def test_clause_5_1_2_late_rows_dated_before_the_purge_watermark_are_purged(
    setup: tuple[world.World, Stores, Settings],
) -> None:
    _w, stores, s = setup
    purge.purge(stores, world.NOW)
    late = event("crash", account_id="acct-late", event_time=(world.NOW - timedelta(days=45)).isoformat())
    ingest_batch(write_batch(s.landing_dir / "telemetry" / "late.ndjson", [late]), ingest_context(s))
    expired = (ds.field("event_type") == "crash") & (ds.field("event_date") < (world.NOW - timedelta(days=31)).date())
    assert lakes.count_where(stores.lake_dir, "events", expired) == 1
    purge.purge(stores, world.NOW + timedelta(days=1))
    assert lakes.count_where(stores.lake_dir, "events", expired) == 0
    assert retention_check.verify(stores, world.NOW + timedelta(days=1)) == []


def _labels(stores: Stores) -> list[tuple[str, str]]:
    rows = lakes.read_where(stores.lake_dir, "labels", ds.field("label").is_valid()).to_pylist()
    return sorted((r["subject_type"], r["subject_id_pid"]) for r in rows)


def test_clause_6_2_2_erasure_removes_account_and_transaction_labels_keyed_as_the_contract_defines(
    setup: tuple[world.World, Stores, Settings],
) -> None:
    w, stores, _s = setup
    neighbour_txn = stores.keyring[0].pseudonymise_one("transaction", f"T-{world.NEIGHBOUR}-1")
    row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())
    assert row.found and row.found["lake.labels"] == 2
    assert _labels(stores) == sorted(
        [("account", w.neighbour_pid), ("transaction", neighbour_txn), ("account", w.stranger_pid)]
    )


def test_clause_6_2_2_locate_fails_loudly_on_a_table_whose_pseudonyms_it_cannot_match(
    setup: tuple[world.World, Stores, Settings],
) -> None:
    w, stores, _s = setup
    table = pa.table({"customer_pid": [w.subject_pid], "note": ["x"]})
    write_deltalake(str(stores.lake_dir / "notes"), table)
    with pytest.raises(subject_data.UnmatchableTableError, match="notes has pseudonym columns"):
        requests.submit(stores, RequestKind.ACCESS, world.SUBJECT, world.NOW, verification=verified())
    subject = SubjectRows(frozenset({w.subject_pid}))
    with pytest.raises(subject_data.UnmatchableTableError):
        subject_data.left_on_disk(stores, subject)


def test_clause_6_2_2_raw_label_deliveries_are_erased_purged_and_verified(
    setup: tuple[world.World, Stores, Settings],
) -> None:
    _w, stores, s = setup
    delivery = s.landing_dir / "labels" / "labels-00000.ndjson"
    delivery.parent.mkdir(parents=True)
    accounts = (world.SUBJECT.account_id, world.NEIGHBOUR)
    lines = [
        {
            "label_id": f"l{i}",
            "subject_type": "account",
            "subject_id": a,
            "label": "fraud",
            "reported_at": world.NOW.isoformat(),
        }
        for i, a in enumerate(accounts)
    ]
    delivery.write_text("".join(json.dumps(line) + "\n" for line in lines))
    row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())
    assert row.found and row.found["landing"] == 13  # the telemetry records and the label
    assert world.SUBJECT.account_id not in delivery.read_text() and world.NEIGHBOUR in delivery.read_text()
    later = world.NOW + timedelta(days=4)  # past the landing period
    assert ("landing", "labels", "landing_raw", 1) in [
        dataclasses.astuple(v) for v in retention_check.verify(stores, later)
    ]
    purge.purge(stores, later)
    assert not delivery.exists()


def _register_phone(s: Settings, name: str, account: str, phone: str, minutes: int) -> None:
    e = event("account", account_id=account, event_time=(world.NOW + timedelta(minutes=minutes)).isoformat())
    e["payload"] = {**e["payload"], "phone": phone}
    ingest_batch(write_batch(s.landing_dir / "telemetry" / name, [e]), ingest_context(s))


def test_clause_6_2_a_shared_phone_number_never_reaches_another_persons_account(
    setup: tuple[world.World, Stores, Settings],
) -> None:
    w, stores, s = setup
    phone = world.SUBJECT.phone or ""
    _register_phone(s, "family.ndjson", world.NEIGHBOUR, phone, 1)  # the neighbour registers the same number
    neighbour_rows = _subject_events(stores, w.neighbour_pid)
    with pytest.raises(AmbiguousPhoneError, match="registered with 2 accounts: name the account"):
        requests.submit(stores, RequestKind.ERASURE, Identifiers(phone=phone), world.NOW, verification=verified())
    requests.submit(
        stores,
        RequestKind.ERASURE,
        Identifiers(account_id=world.SUBJECT.account_id, phone=phone),
        world.NOW,
        verification=verified(),
    )
    assert _subject_events(stores, w.subject_pid) == 0 and _subject_events(stores, w.neighbour_pid) == neighbour_rows


def test_clause_6_2_a_recycled_phone_number_links_only_to_its_current_holder(
    setup: tuple[world.World, Stores, Settings],
) -> None:
    w, stores, s = setup
    _register_phone(s, "moved.ndjson", world.SUBJECT.account_id or "", "+86 139 0013 9111", 1)  # a new number
    _register_phone(s, "recycled.ndjson", world.NEIGHBOUR, world.SUBJECT.phone or "", 2)  # the old one, reissued
    found = resolve(Identifiers(phone=world.SUBJECT.phone), stores.keyring, stores.lake_dir)
    assert found.accounts == frozenset({w.neighbour_pid})


def _hold(stores: Stores, days: int = 3000) -> str:
    placed = holds.place(
        stores,
        world.SUBJECT,
        reason="case 9",
        owner="legal-team",
        expires_at=world.NOW + timedelta(days=days),
        now=world.NOW,
    )
    return placed[0].hold_id


def test_clause_2_9_4_a_hold_placed_after_an_erasure_began_pauses_it_before_the_lake(
    setup: tuple[world.World, Stores, Settings],
) -> None:
    w, stores, _s = setup
    with pytest.raises(_Crash):
        requests.submit(
            stores,
            RequestKind.ERASURE,
            world.SUBJECT,
            world.NOW,
            checkpoint=_crash_at("landing"),
            verification=verified(),
        )
    hold_id = _hold(stores)
    (row,) = requests.pending(stores)
    row = requests.process(stores, row, world.NOW, actor="requests-flow", role="pipeline")
    assert row.status == requests.Status.IN_PROGRESS and row.reason == f"paused by legal hold {hold_id} until it ends"
    assert "lake" not in row.done and _subject_events(stores, w.subject_pid) == 10
    holds.release(stores, hold_id, actor="legal-team", now=world.NOW)
    done = requests.process(stores, row, world.NOW, actor="requests-flow", role="pipeline")
    assert done.status == requests.Status.COMPLETED and done.reason is None
    assert _subject_events(stores, w.subject_pid) == 0


def test_clause_2_9_4_the_purge_keeps_a_held_subjects_raw_landing_batches_and_labels(
    setup: tuple[world.World, Stores, Settings],
) -> None:
    w, stores, _s = setup
    _hold(stores)
    batch = stores.landing_dir / "telemetry" / "world.ndjson"
    purge.purge(stores, world.NOW + timedelta(days=4))  # past the landing period
    assert batch.exists()  # it holds the held subject's raw records
    purge.purge(stores, world.NOW + timedelta(days=1200))  # past the label period
    assert _labels(stores) == [("account", w.subject_pid)]  # the held subject's account label stays
