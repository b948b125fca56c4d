"""Data-subject requests: access (6.2.1), erasure (6.2.2), cancellation (6.3), withdrawal (6.1), minors (7.2).

Each runs on a world where every store holds the subject, a neighbour sharing their device, and a
stranger; the requests must find all of the subject and nothing of the others.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import retention_world as world
from devicerisk.config import Settings
from devicerisk.governance import access, entrust, entrusted_data, holds, requests, subject_data
from devicerisk.governance.requests import STEPS, RequestKind, Status
from devicerisk.governance.stores import Stores, stores_for
from devicerisk.governance.subjects import (
    Identifiers,
    MalformedIdentifierError,
    UnknownSubjectError,
    from_json,
    resolve,
)
from devicerisk.ingest.pipeline import ingest_batch
from devicerisk.ingest.runtime import ingest_context
from devicerisk.privacy.masking import mask
from devicerisk.risk import signals
from devicerisk.store import audit, governance, lake, processors, signal_log, snapshots
from devicerisk.store import lake_maintenance as lakes
from devicerisk.store.governance import RequestRow
from factories import verified, write_batch

_PID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def setup(settings: Settings) -> tuple[world.World, Stores]:
    s = settings.model_copy(update={"vacuum_grace_hours": 0})
    return world.build(s), stores_for(s)


def _rows(stores: Stores, account: str) -> int:
    return lakes.count_where(stores.lake_dir, "events", ds.field("account_id_pid") == account)


def _signal_rows(stores: Stores, account: str) -> int:
    """Signal rows of an account: by the hash the features join on, or by its pseudonym on transactions."""
    view = signals.read_log(stores.signals_dir)
    assert view is not None
    con = duckdb.connect()
    con.register("sig", view.table)
    query = "SELECT count(*) FROM sig WHERE acct = hash($a) OR account_id_pid = $a"
    return int(con.execute(query, {"a": account}).fetchall()[0][0])


def _snapshot_accounts(stores: Stores) -> list[str | None]:
    return sorted(
        (a or "")
        for root in stores.snapshot_roots.values()
        for p in snapshots.files(root)
        for a in snapshots.read(p).column("account_id_pid").to_pylist()
    )


def _files_text(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.rglob("*")) if p.is_file())


def test_clause_6_2_1_access_exports_everything_held_with_masked_identifiers(setup: tuple[world.World, Stores]) -> None:
    w, stores = setup
    row = requests.submit(stores, RequestKind.ACCESS, world.SUBJECT, world.NOW, verification=verified())

    assert row.status == Status.COMPLETED
    assert row.found == {
        "lake.events": 11,
        "signals": 11,  # the same events in the signal log scoring reads
        "lake.labels": 2,  # one on the account, one on a transaction of it
        "lake.scores": 2,
        "serving": 1,
        "models": 3,
        "quarantine": 1,
        "warehouse.consent_decisions": 1,
        "landing": 12,  # raw records in landing, not yet past their three days
    }
    out = stores.requests_dir / row.request_id
    names = {p.name for p in out.iterdir()}
    assert {"export.json", "summary.md", "receipt.json", "lake.events.csv", "lake.events.json"} <= names
    assert {"serving/scores-v3.parquet.json", "models/v7/training.parquet.csv"} <= {
        str(p.relative_to(out)) for p in out.rglob("*")
    }
    exported = json.loads((out / "export.json").read_text())
    assert len(exported["lake.events"]) == 11
    assert {r["account_id_pid"] for r in exported["lake.events"]} == {w.subject_pid[:8] + "…", None}
    assert all((out / f"{name}.csv").exists() and (out / f"{name}.json").exists() for name in exported)
    with (out / "lake.scores.csv").open(newline="") as fh:  # a list column, as JSON text in its CSV cell
        assert [json.loads(r["reasons"]) for r in csv.DictReader(fh)] == [["new device", "night-time activity"]] * 2
    # The raw records in landing and quarantine are exported too, every identifier in them masked.
    raw = [json.loads(r["record"]) for r in exported["landing"]]
    assert len(raw) == 12 and {r["account_id"] for r in raw} == {mask(world.SUBJECT.account_id), None}  # unlogged
    assert {r["device"]["imei"] for r in raw} == {mask(world.SHARED_IMEI)}
    refused = [json.loads(r["record"]) for r in exported["quarantine"]]
    assert [r["payload"]["amount"] for r in refused] == [mask("not a number")]  # free text is masked too
    assert refused[0]["account_id"] == mask(world.SUBJECT.account_id) and exported["quarantine"][0]["reason"]
    text = _files_text(out)
    assert not _PID.search(text)  # no pseudonym, let alone a raw identifier, in full
    assert world.SUBJECT.phone not in text and world.SHARED_IMEI not in text
    assert world.SUBJECT.account_id not in text
    summary = (out / "summary.md").read_text()
    assert "| lake.events | 11 |" in summary and "| landing | 12 |" in summary and "signals:" in summary
    receipt = json.loads((out / "receipt.json").read_text())
    found_but_signals = {k: v for k, v in row.found.items() if k != "signals"}
    assert receipt["records_per_store"] == found_but_signals  # what the export holds, store by store
    assert receipt["records_per_table"] == {name: len(rows) for name, rows in exported.items()}
    assert set(receipt["not_exported"]) == {"signals"} and "gone_since_received" not in receipt
    assert audit.records(stores.audit_dir)[-1]["action"] == "request.access"


def test_clause_6_2_1_access_by_phone_finds_the_account(setup: tuple[world.World, Stores]) -> None:
    w, stores = setup
    subject = resolve(Identifiers(phone="+8613900139000"), stores.keyring, stores.lake_dir)
    assert subject.accounts == frozenset({w.subject_pid})  # the phone links to the account it registered


def test_clause_6_2_2_erasure_removes_subject_from_every_store(setup: tuple[world.World, Stores]) -> None:
    w, stores = setup
    neighbour_before, stranger_before = _rows(stores, w.neighbour_pid), _rows(stores, w.stranger_pid)
    assert _signal_rows(stores, w.subject_pid) == _rows(stores, w.subject_pid) == 10  # the log holds them too

    row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())

    assert row.status == Status.COMPLETED
    subject = from_json(row.subject)  # with the transactions found before the events went
    assert subject_data.locate(stores, subject) == {}
    assert subject_data.left_on_disk(stores, subject) == 0  # every Parquet file on disk, not only the version
    assert (_rows(stores, w.neighbour_pid), _rows(stores, w.stranger_pid)) == (neighbour_before, stranger_before)
    assert signals.read_log(stores.signals_dir) is None  # dropped with the lake rows
    rebuilt = signals.refresh_log(stores.lake_dir, stores.signals_dir)  # as the next scoring run does
    assert rebuilt.rebuilt and _signal_rows(stores, w.subject_pid) == 0
    assert _signal_rows(stores, w.neighbour_pid) == neighbour_before  # only the subject's rows went
    # The unlogged training row on the subject's device went too; the neighbour's rows on it stay.
    assert _snapshot_accounts(stores) == sorted([w.neighbour_pid, w.neighbour_pid, w.stranger_pid])
    receipt = json.loads((stores.requests_dir / row.request_id / "receipt.json").read_text())
    assert receipt["records_per_store"] == row.found and receipt["rows_left_in_files_on_disk"] == 0
    assert receipt["left_in_current_versions"] == {}
    assert not _PID.search(json.dumps(receipt))  # counts only
    assert audit.records(stores.audit_dir)[-1]["action"] == "request.erasure"
    assert not (stores.data_dir / "entrust").exists()  # nothing was entrusted: no register is made


def _entrusted(stores: Stores) -> tuple[processors.Entrustment, int]:
    """An extract for a processor, made before the erasure, and how many of the subject's events it holds."""
    entry = entrust.export(
        stores,
        processor="acme-analytics",
        purpose="risk_control",
        until=world.NOW.date() + timedelta(days=30),
        window=entrust.window(None, None),
        actor="officer-li",
        now=world.NOW,
    )
    subject = subject_data.with_transactions(stores, resolve(world.SUBJECT, stores.keyring, stores.lake_dir))
    held = entrusted_data.subject_rows(stores, subject)
    assert 0 < held < entry.rows  # the subject's events are there, among others'
    assert subject_data.locate(stores, subject)["entrust"] == held
    return entry, held


def _extract_after_erasure(stores: Stores, entry: processors.Entrustment, row: RequestRow, held: int) -> None:
    """Only the subject's rows went; the file, its manifest and the register agree; the erasure is recorded."""
    assert entrusted_data.subject_rows(stores, from_json(row.subject)) == 0
    folder = stores.data_dir / entry.location
    after = processors.register(stores.data_dir)[-1]
    kept = pq.read_table(folder / entrust.EVENTS_FILE)
    assert kept.num_rows == after.rows == entry.rows - held
    assert [(e.request_id, e.rows) for e in after.erasures] == [(row.request_id, held)]
    manifest = processors.read_manifest(folder)
    assert manifest is not None and manifest["rows"] == after.rows
    assert [(f["rows"], f["sha256"]) for f in manifest["files"]] == [
        (kept.num_rows, processors.sha256_of(folder / entrust.EVENTS_FILE))
    ]


def test_clause_6_2_2_an_erasure_reaches_the_extracts_entrusted_to_processors(
    setup: tuple[world.World, Stores],
) -> None:
    """An extract made before the erasure loses the subject's events (found in its own key domain), keeps everyone
    else's, stays whole (manifest and register agree with the file), and the receipt names the processor."""
    _w, stores = setup
    entry, held = _entrusted(stores)

    row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())

    assert row.status == Status.COMPLETED and row.found is not None and row.found["entrust"] == held
    assert subject_data.left_on_disk(stores, from_json(row.subject)) == 0
    _extract_after_erasure(stores, entry, row, held)
    receipt = json.loads((stores.requests_dir / row.request_id / "receipt.json").read_text())
    assert receipt["remains"]["entrusted_processors"]["processors"] == ["acme-analytics"]
    assert receipt["records_per_store"]["entrust"] == held


@pytest.mark.parametrize("cut_at", ["stage_table", "replace_staged", "write_manifest"])
def test_clause_6_2_2_an_erasure_cut_off_inside_an_extract_is_finished_even_after_another_one(
    setup: tuple[world.World, Stores], monkeypatch: pytest.MonkeyPatch, cut_at: str
) -> None:
    """A crash while the extract is rewritten (before the register, after it, after the file), then another
    subject's erasure, then the first run again: each erasure is recorded once, with its own rows, and the file,
    its manifest and the register agree."""
    _w, stores = setup
    entry, held = _entrusted(stores)
    neighbour = Identifiers(account_id=world.NEIGHBOUR)
    theirs = entrusted_data.subject_rows(
        stores, subject_data.with_transactions(stores, resolve(neighbour, stores.keyring, stores.lake_dir))
    )
    assert theirs > 0

    def crash(*_: object) -> None:
        raise Crash(cut_at)

    monkeypatch.setattr(processors, cut_at, crash)
    with pytest.raises(Crash):
        requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())
    monkeypatch.undo()
    other = requests.submit(stores, RequestKind.ERASURE, neighbour, world.NOW, verification=verified())
    row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())

    assert (row.status, other.status) == (Status.COMPLETED, Status.COMPLETED)
    after = processors.register(stores.data_dir)[-1]
    assert sorted((e.request_id, e.rows) for e in after.erasures) == sorted(
        [(row.request_id, held), (other.request_id, theirs)]
    )
    assert json.loads((stores.requests_dir / row.request_id / "receipt.json").read_text())["remains"][
        "entrusted_processors"
    ]["processors"] == ["acme-analytics"]
    folder = stores.data_dir / entry.location
    assert processors.row_count(folder, entrust.EVENTS_FILE) == after.rows == entry.rows - held - theirs
    manifest = processors.read_manifest(folder)
    assert manifest is not None and manifest["rows"] == after.rows
    assert manifest["files"][0]["sha256"] == processors.sha256_of(folder / entrust.EVENTS_FILE)
    assert sorted(p.name for p in folder.iterdir()) == sorted([processors.MANIFEST, entrust.EVENTS_FILE])


def test_clause_6_2_2_an_extract_whose_key_is_gone_is_named_in_the_receipt(setup: tuple[world.World, Stores]) -> None:
    """An extract made under a pseudonym key no longer in the keyring cannot be searched: the erasure completes
    (nothing else can find those rows) and its receipt says which extract may still hold the subject, until when."""
    _w, stores = setup
    entry, _held = _entrusted(stores)
    register = processors.register(stores.data_dir)
    with processors.updating(stores.data_dir) as entries:  # as if made under a key destroyed since
        entries[-1] = dataclasses.replace(register[-1], key_domain="000000000000")

    row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())

    assert row.status == Status.COMPLETED
    lost = json.loads((stores.requests_dir / row.request_id / "receipt.json").read_text())["remains"]
    assert lost["entrusted_unmatchable"]["processors"] == ["acme-analytics"]
    assert lost["entrusted_unmatchable"]["rows"] == entry.rows and "entrusted_processors" not in lost


def test_clause_6_2_2_an_erasure_that_left_the_signal_log_does_not_complete(
    setup: tuple[world.World, Stores], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards the completeness check: a signal log still holding the subject keeps the erasure open."""
    _, stores = setup
    monkeypatch.setattr(signal_log, "drop", lambda _: 0)  # a lake delete that forgot the log

    row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())

    assert row.status == Status.IN_PROGRESS and "rows wait" in (row.reason or "")
    assert subject_data.locate(stores, from_json(row.subject)) == {"signals": 11}
    monkeypatch.undo()
    assert requests.process(stores, row, world.NOW, actor="t", role="pipeline").status == Status.IN_PROGRESS
    signal_log.drop(stores.signals_dir)  # what every lake delete does
    assert requests.process(stores, row, world.NOW, actor="t", role="pipeline").status == Status.COMPLETED


def test_clause_6_2_2_the_lake_stays_readable_and_ingestible_after_an_erasure(
    setup: tuple[world.World, Stores],
) -> None:
    _w, stores = setup
    requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())
    events = lake.dataset(stores.lake_dir, "events")
    assert events is not None
    assert events.count_rows(filter=ds.field("event_type").isin(["operation", "crash"])) > 0  # filtered reads work
    again = world._events(world.STRANGER, 0, "operation")
    result = ingest_batch(
        write_batch(stores.landing_dir / "telemetry" / "next.ndjson", again), ingest_context(_settings(stores))
    )
    assert result.accepted == 1


def _settings(stores: Stores) -> Settings:
    return Settings(
        mode="production",
        data_dir=stores.data_dir,
        secrets_dir=stores.data_dir.parent / "secrets",
        pseudonym_key_file=stores.data_dir.parent / "secrets" / "pseudonym.key",
        quarantine_key_file=stores.data_dir.parent / "secrets" / "quarantine.key",
    )


def test_clause_6_3_cancellation_by_anonymisation_keeps_only_unlinked_aggregates(
    setup: tuple[world.World, Stores],
) -> None:
    _w, stores = setup
    subject = resolve(world.SUBJECT, stores.keyring, stores.lake_dir)
    expected = subject_data.event_counts(stores, subject)
    row = requests.submit(
        stores,
        RequestKind.CANCELLATION,
        world.SUBJECT,
        world.NOW,
        options={"mode": "anonymise"},
        verification=verified(),
    )

    assert row.status == Status.COMPLETED
    aggregates = governance.aggregates(stores.warehouse_path)
    assert aggregates.column_names == ["event_date", "event_type", "events"]  # nothing links to an account
    assert sum(aggregates.column("events").to_pylist()) == sum(expected.column("events").to_pylist()) == 11
    assert subject_data.locate(stores, subject) == {"warehouse.cancellations": 1}  # ingest keeps honouring it
    later = world._events(world.SUBJECT.account_id, 0, "operation")
    later[0]["event_time"] = (world.NOW + timedelta(minutes=5)).isoformat()  # after the cancellation
    result = ingest_batch(
        write_batch(stores.landing_dir / "telemetry" / "later.ndjson", later), ingest_context(_settings(stores))
    )
    assert result.consent_dropped == 1 and result.reasons == {"dropped: account_cancelled": 1}


def test_clause_6_3_cancellation_by_deletion(setup: tuple[world.World, Stores]) -> None:
    w, stores = setup
    requests.submit(
        stores, RequestKind.CANCELLATION, world.SUBJECT, world.NOW, options={"mode": "delete"}, verification=verified()
    )
    assert _rows(stores, w.subject_pid) == 0
    assert governance.aggregates(stores.warehouse_path).num_rows == 0


def test_clause_6_1_withdrawal_stops_collection_from_the_next_ingest_and_keeps_earlier_data(
    setup: tuple[world.World, Stores],
) -> None:
    w, stores = setup
    before = _rows(stores, w.subject_pid)
    row = requests.submit(
        stores,
        RequestKind.WITHDRAWAL,
        world.SUBJECT,
        world.NOW,
        options={"purpose": "risk_control"},
        verification=verified(),
    )
    assert row.status == Status.COMPLETED
    assert _rows(stores, w.subject_pid) == before  # data processed before the withdrawal stays (6.1.2)
    later = world._events(world.SUBJECT.account_id, 0, "operation", "transaction")
    later += world._events(world.NEIGHBOUR, 0, "operation")
    for e in later:
        e["event_time"] = (world.NOW + timedelta(minutes=5)).isoformat()
    result = ingest_batch(
        write_batch(stores.landing_dir / "telemetry" / "later.ndjson", later), ingest_context(_settings(stores))
    )
    assert result.reasons == {"dropped: consent_withdrawn": 2} and result.accepted == 1  # the neighbour's stays


def test_clause_7_2_minor_without_guardian_consent_is_deleted(setup: tuple[world.World, Stores]) -> None:
    w, stores = setup
    row = requests.submit(stores, RequestKind.MINOR, world.SUBJECT, world.NOW, verification=verified())
    assert row.status == Status.COMPLETED and _rows(stores, w.subject_pid) == 0
    later = world._events(world.SUBJECT.account_id, 0, "operation")
    result = ingest_batch(
        write_batch(stores.landing_dir / "telemetry" / "later.ndjson", later), ingest_context(_settings(stores))
    )
    assert result.reasons == {"dropped: minor_without_guardian_consent": 1}


class Crash(RuntimeError):
    pass


@pytest.mark.parametrize(
    ("kind", "options", "step"),
    [
        *(
            (RequestKind.ERASURE, {}, s)
            for s in ("received", "verified", *STEPS[RequestKind.ERASURE], "receipt", "audited")
        ),
        (RequestKind.CANCELLATION, {"mode": "anonymise"}, "state"),
        (RequestKind.CANCELLATION, {"mode": "anonymise"}, "aggregate"),
        (RequestKind.ACCESS, {}, "export"),
    ],
)
def test_clause_6_2_2_a_request_survives_a_crash_at_every_step(
    setup: tuple[world.World, Stores], kind: RequestKind, options: dict[str, str], step: str
) -> None:
    w, stores = setup
    if kind is RequestKind.ERASURE:  # an extract for a processor holds the subject too
        _entrusted(stores)
    subject = subject_data.with_transactions(stores, resolve(world.SUBJECT, stores.keyring, stores.lake_dir))
    expected = subject_data.locate(stores, subject)
    expected_events = sum(subject_data.event_counts(stores, subject).column("events").to_pylist())

    def crash(at: str) -> None:
        if at == step:
            raise Crash(at)

    with pytest.raises(Crash):
        requests.submit(
            stores, kind, world.SUBJECT, world.NOW, options=options, checkpoint=crash, verification=verified()
        )
    row = requests.submit(
        stores, kind, world.SUBJECT, world.NOW, options=options, verification=verified()
    )  # the re-run completes it

    assert row.status == Status.COMPLETED and row.found == expected
    receipt = json.loads((stores.requests_dir / row.request_id / "receipt.json").read_text())
    exported = {k: v for k, v in expected.items() if k not in access.NOT_EXPORTED}  # an access counts its export
    assert receipt["records_per_store"] == (exported if kind is RequestKind.ACCESS else expected)
    if kind is not RequestKind.ACCESS:
        assert set(subject_data.locate(stores, subject)) <= {"warehouse.cancellations"}
        assert subject_data.left_on_disk(stores, subject) == 0
    if kind is RequestKind.CANCELLATION:  # counted once, however often the step ran
        assert sum(governance.aggregates(stores.warehouse_path).column("events").to_pylist()) == expected_events
    assert _rows(stores, w.neighbour_pid) == 3


def test_bad_input_duplicate_request_is_refused(setup: tuple[world.World, Stores]) -> None:
    _, stores = setup
    requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())
    records = len(audit.records(stores.audit_dir))
    with pytest.raises(requests.DuplicateRequestError, match="already completed"):
        requests.submit(
            stores, RequestKind.ERASURE, world.SUBJECT, world.NOW + timedelta(hours=1), verification=verified()
        )
    assert len(audit.records(stores.audit_dir)) == records


def test_bad_input_unknown_subject_is_refused_and_nothing_changes(setup: tuple[world.World, Stores]) -> None:
    _, stores = setup
    with pytest.raises(UnknownSubjectError, match="no store holds data"):
        requests.submit(
            stores, RequestKind.ERASURE, Identifiers(account_id="acct-nobody"), world.NOW, verification=verified()
        )
    assert governance.requests(stores.warehouse_path) == [] and audit.records(stores.audit_dir) == []


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (Identifiers(devices={"imei": "12"}), "imei identifier given is malformed"),
        (Identifiers(phone="call me"), "phone identifier given is malformed"),
        (Identifiers(devices={"shoe_size": "42"}), "unknown identifier kind"),
        (Identifiers(), "at least one identifier"),
        (Identifiers(account_id="x" * 500), "longer than"),
    ],
)
def test_bad_input_malformed_identifier_is_refused(
    setup: tuple[world.World, Stores], ids: Identifiers, message: str
) -> None:
    _, stores = setup
    with pytest.raises(MalformedIdentifierError, match=message) as err:
        requests.submit(stores, RequestKind.ACCESS, ids, world.NOW, verification=verified())
    assert "call me" not in str(err.value)  # the message names the kind, never the value
    assert governance.requests(stores.warehouse_path) == []


def test_bad_input_request_conflicting_with_a_legal_hold_is_rejected_and_reported(
    setup: tuple[world.World, Stores],
) -> None:
    w, stores = setup
    holds.place(
        stores,
        Identifiers(account_id=world.SUBJECT.account_id),
        reason="case 7",
        owner="legal-team",
        expires_at=world.NOW + timedelta(days=9),
        now=world.NOW,
    )
    before = _rows(stores, w.subject_pid)
    with pytest.raises(requests.HoldConflictError, match="legal hold hold-"):
        requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())
    assert _rows(stores, w.subject_pid) == before
    (row,) = governance.requests(stores.warehouse_path)
    assert row.status == Status.REJECTED and row.reason and row.reason.startswith("legal hold")
    assert audit.records(stores.audit_dir)[-1]["action"] == "request.erasure.rejected"
    assert (
        requests.submit(stores, RequestKind.ACCESS, world.SUBJECT, world.NOW, verification=verified()).status
        == Status.COMPLETED
    )  # access is fine


def test_clause_6_2_2_erasure_waits_for_the_vacuum_grace_period(settings: Settings) -> None:
    world.build(settings)  # the default grace of one hour protects running readers
    stores = stores_for(settings)
    row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())
    assert row.status == Status.IN_PROGRESS and row.done == list(STEPS[RequestKind.ERASURE][:-1])  # all but vacuum
    assert STEPS[RequestKind.ERASURE][-1] == "vacuum"
    assert [r.request_id for r in requests.pending(stores)] == [row.request_id]
    assert not (stores.requests_dir / row.request_id / "receipt.json").exists()


def test_clause_6_2_2_erasure_removes_raw_landing_batches_and_waits_for_ones_not_yet_ingested(
    setup: tuple[world.World, Stores],
) -> None:
    w, stores = setup
    events = world._events(world.SUBJECT.account_id, 0, "operation")
    pending = write_batch(stores.landing_dir / "telemetry" / "zz-pending.ndjson", events)
    row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())
    assert row.status == Status.IN_PROGRESS
    assert row.reason == "waiting for 1 landing batches holding the subject to be ingested"
    assert (stores.landing_dir / "telemetry" / "world.ndjson").exists()  # nothing is touched while one waits
    assert _rows(stores, w.subject_pid) == 10

    ingest_batch(pending, ingest_context(_settings(stores)))
    (resumed,) = requests.pending(stores)
    done = requests.process(stores, resumed, world.NOW, actor="requests-flow", role="pipeline")
    assert done.status == Status.COMPLETED and not pending.exists()
    assert not (stores.landing_dir / "telemetry" / "world.ndjson").exists()  # ingested batches went early
    assert subject_data.locate(stores, resolve(world.SUBJECT, stores.keyring, stores.lake_dir)) == {}


def test_clause_2_9_4_a_hold_placed_while_an_erasure_waits_stops_it(setup: tuple[world.World, Stores]) -> None:
    w, stores = setup
    write_batch(
        stores.landing_dir / "telemetry" / "zz-pending.ndjson", world._events(world.SUBJECT.account_id, 0, "operation")
    )  # the erasure waits for this batch
    row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())
    assert row.status == Status.IN_PROGRESS
    holds.place(
        stores,
        world.SUBJECT,
        reason="case 8",
        owner="legal-team",
        expires_at=world.NOW + timedelta(days=5),
        now=world.NOW,
    )
    with pytest.raises(requests.HoldConflictError):
        requests.process(stores, row, world.NOW, actor="requests-flow", role="pipeline")
    assert _rows(stores, w.subject_pid) == 10 and requests.pending(stores) == []


def test_clause_5_2_3_every_request_and_purge_is_audited_without_identifiers(setup: tuple[world.World, Stores]) -> None:
    from devicerisk.governance import purge

    w, stores = setup
    requests.submit(stores, RequestKind.ACCESS, world.SUBJECT, world.NOW, verification=verified())
    requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())
    purge.purge(stores, world.NOW)
    audit.append(
        stores.audit,
        actor="retention-flow",
        role="pipeline",
        action="retention.purge",
        purpose="retention",
        counts={"removed.lake.events": 1},
    )  # as the flow's task does
    records = audit.records(stores.audit_dir)
    assert [r["action"] for r in records] == ["request.access", "request.erasure", "retention.purge"]
    assert all(r["actor"] and r["role"] and r["purpose"] and r["at"] for r in records)
    assert records[0]["counts"]["lake.events"] == 11  # counts, never values
    text = (stores.audit_dir / audit.LOG_NAME).read_text()
    for secret in (w.subject_pid, w.imei_pid, world.SHARED_IMEI, world.SUBJECT.account_id, "13900139000"):
        assert secret and secret not in text
    assert audit.verify(stores.audit) == []
