"""Erasure (6.2.2) leaves nothing of the subject behind: not in a Delta log's statistics, not in the request's own
record past its period, and the receipt says what does remain."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

import retention_world as world
from devicerisk.config import Settings
from devicerisk.governance import holds, purge, requests, retention_check, subject_data
from devicerisk.governance.requests import RequestKind, Status
from devicerisk.governance.stores import Stores, stores_for
from devicerisk.governance.subjects import from_json, resolve
from devicerisk.ingest.pipeline import ingest_batch
from devicerisk.ingest.runtime import ingest_context
from devicerisk.privacy.leakscan import scan_files
from devicerisk.store import governance
from devicerisk.store import lake_maintenance as lakes
from devicerisk.store.rows import SubjectRows
from factories import verified, write_batch


@pytest.fixture
def setup(settings: Settings) -> tuple[world.World, Stores, Settings]:
    s = settings.model_copy(update={"vacuum_grace_hours": 0})
    return world.build(s), stores_for(s), s


def _own(subject: SubjectRows, w: world.World) -> dict[str, str]:
    """The subject's pseudonyms no one else holds (the shared device's is the neighbour's too), as scan needles."""
    pids = set(subject.accounts).union(*subject.identifiers.values()) - {w.imei_pid}
    return {pid: "the erased subject's pseudonym" for pid in pids}


def _lake_files(stores: Stores) -> list[Path]:
    return [p for p in sorted(stores.lake_dir.rglob("*")) if p.is_file()]


def test_clause_6_2_2_no_file_of_a_delta_table_names_the_erased_subject_log_included(
    setup: tuple[world.World, Stores, Settings],
) -> None:
    w, stores, _ = setup
    subject = subject_data.with_transactions(stores, resolve(world.SUBJECT, stores.keyring, stores.lake_dir))
    before = scan_files(_lake_files(stores), _own(subject, w))
    assert any("_delta_log" in f.path.parts for f in before.findings)  # the add actions' min/max name the subject

    row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())

    assert row.status == Status.COMPLETED
    files = _lake_files(stores)
    report = scan_files(files, _own(from_json(row.subject), w))
    assert report.files == len(files) and report.findings == [], report.findings
    assert any(p.name.endswith(".checkpoint.parquet") for p in files)  # checkpoints were read as Parquet, too
    shared = scan_files(files, {w.imei_pid: "the shared device"})  # the neighbour's rows keep the shared device
    assert shared.findings
    receipt = json.loads((stores.requests_dir / row.request_id / "receipt.json").read_text())
    assert receipt["delta_log_files_naming_subject"] == 0


def test_clause_6_2_2_an_erasure_whose_delta_log_still_names_the_subject_does_not_complete(
    setup: tuple[world.World, Stores, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards the completeness check: without a checkpoint after the deletes the old log entries cannot go."""
    _, stores, _ = setup
    monkeypatch.setattr(lakes, "_checkpoint", lambda table: None)  # a crash right after each delete commit

    row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())

    subject = from_json(row.subject)
    assert row.status == Status.IN_PROGRESS and "Delta log files" in (row.reason or "")
    assert subject_data.locate(stores, subject) == {} and subject_data.left_on_disk(stores, subject) == 0
    assert set(subject_data.left_in_logs(stores, subject)) >= {"events", "scores"}
    monkeypatch.undo()
    row = requests.process(stores, row, world.NOW, actor="requests-flow", role="pipeline")
    assert row.status == Status.IN_PROGRESS  # a checkpoint is made now; the entries before it go after the grace
    row = requests.process(stores, row, world.NOW, actor="requests-flow", role="pipeline")
    assert row.status == Status.COMPLETED and subject_data.left_in_logs(stores, subject) == {}


def test_clause_6_2_2_a_finished_request_forgets_its_subject_after_its_period(
    setup: tuple[world.World, Stores, Settings],
) -> None:
    w, stores, _ = setup
    row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())
    needles = _own(from_json(row.subject), w)
    assert scan_files([stores.warehouse_path], needles).findings  # kept meanwhile: a resubmission is recognised

    purge.purge(stores, world.NOW + requests.SUBJECT_KEPT - timedelta(hours=1))
    with pytest.raises(requests.DuplicateRequestError):
        requests.submit(
            stores, RequestKind.ERASURE, world.SUBJECT, world.NOW + timedelta(hours=1), verification=verified()
        )
    later = world.NOW + requests.SUBJECT_KEPT + timedelta(hours=1)
    assert any(v.retention_class == "request bookkeeping" for v in retention_check.verify(stores, later))

    report = purge.purge(stores, later)

    assert report.removed["request_subjects"] == 1
    kept = governance.get_request(stores.warehouse_path, row.request_id)
    assert kept is not None and kept.subject == {} and kept.status == Status.COMPLETED and kept.found == row.found
    assert scan_files([stores.warehouse_path], needles).findings == []  # no table of the warehouse names them
    assert not any(v.retention_class == "request bookkeeping" for v in retention_check.verify(stores, later))


def test_clause_6_2_2_the_receipt_states_what_remains(setup: tuple[world.World, Stores, Settings]) -> None:
    _, stores, s = setup
    unreadable = b'{"account_id": "acct-subject", "device": {"imei": "352099001761481"'  # cut short: not JSON
    ingest_batch(write_batch(s.landing_dir / "telemetry" / "cut.ndjson", [unreadable]), ingest_context(s))
    (hold,) = holds.place(
        stores,
        world.SUBJECT,
        reason="case 9",
        owner="legal-team",
        expires_at=world.NOW + timedelta(days=30),
        now=world.NOW - timedelta(days=2),
    )
    holds.release(stores, hold.hold_id, actor="legal-team", now=world.NOW - timedelta(days=1))

    row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())

    receipt = json.loads((stores.requests_dir / row.request_id / "receipt.json").read_text())
    remains = receipt["remains"]
    assert remains["quarantine_unmatchable"]["records"] == 1  # may be the subject's: said, not counted as 0
    assert remains["quarantine_unmatchable"]["until"] and "encrypted" in remains["quarantine_unmatchable"]["what"]
    assert remains["request_record"]["until"].startswith(str((world.NOW + requests.SUBJECT_KEPT).date()))
    assert "counts" in remains["audit_log"]["what"]
    assert remains["legal_holds"]["holds"] == 1  # the ended hold's record names the account
    assert remains["legal_holds"]["until"].startswith(
        str((world.NOW - timedelta(days=1) + timedelta(days=1095)).date())
    )
