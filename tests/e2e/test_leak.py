"""The leak test: after a pipeline run, no raw identifier from landing occurs in any other file.

It covers the lake (every Parquet file on disk), the Delta log, the signal log, quarantine, the
warehouse, access exports and request receipts, and the Prefect database with its logs, artifacts and flow-run
parameters. Files are read as data, not grepped as compressed bytes. After an erasure, the same files are
searched for the erased subject's pseudonyms too.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import drain_prefect_logs
from devicerisk.config import Settings
from devicerisk.flows.pipeline import pipeline_flow
from devicerisk.governance.subjects import Identifiers
from devicerisk.privacy.leakscan import raw_identifiers, scan_data_dir, scan_files, scan_sqlite
from devicerisk.risk import signals
from devicerisk.store import lake
from devicerisk.synth import SynthConfig, generate
from factories import event, verified, write_batch


@pytest.fixture
def env_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DEVICERISK_MODE", "production")
    monkeypatch.setenv("DEVICERISK_PSEUDONYM_KEY_FILE", str(settings.pseudonym_key_file))
    monkeypatch.setenv("DEVICERISK_QUARANTINE_KEY_FILE", str(settings.quarantine_key_file))
    monkeypatch.setenv("DEVICERISK_AUDIT_KEY_FILE", str(settings.audit_key_file))
    return settings


#: Identifiers a user or a buggy app typed into fields the contract keeps as text, one of each kind.
TYPED = {
    "imei": "490154203237518",
    "imsi": "460001234567891",
    "iccid": "8944101122334455665",
    "mac": "3c:5a:b4:9e:21:07",
    "phone": "13912345678",
    "ip": "203.0.113.77",
    "email": "li.wei@example.com",
    "adid": "6d92078a-8246-4ba4-ae5b-76104861e7dc",
}


def _typed_into_kept_text() -> list[dict]:
    """Valid events carrying every identifier of ``TYPED`` inside fields the contract keeps as text."""
    device = {
        "model": f"Redmi {TYPED['imei']} {TYPED['adid']}",
        "manufacturer": "Xiaomi",
        "os": "Android",
        "os_version": f"14 {TYPED['mac']}",
        "imei": "352099001761481",
    }
    app = {"platform": "android", "version": f"9.4.0-{TYPED['ip']}"}
    return [
        event(
            "operation",
            device=device,
            app=app,
            payload={"action": "view", "page": f"/contact/{TYPED['email']}?tel={TYPED['phone']}"},
        ),
        event(
            "crash",
            device=device,
            app=app,
            payload={
                "kind": "crash",
                "exception_type": f"SimError {TYPED['iccid']} {TYPED['imsi']}",
                "stack_trace": "x",
            },
        ),
    ]


def test_no_raw_identifier_outside_landing(prefect_db: Path, env_settings: Settings) -> None:
    landing = env_settings.landing_dir
    generate(landing, SynthConfig(accounts=150, days=2, seed=23, events_per_batch=5000))
    bad = event("transaction")
    bad["payload"]["amount"] = "12.5"  # quarantined, with every identifier of a real event inside
    write_batch(landing / "telemetry" / "zz-bad.ndjson", [bad, b'{"device": {"imei": "352099001761481"'])
    write_batch(landing / "telemetry" / "zz-typed.ndjson", _typed_into_kept_text())

    pipeline_flow(str(env_settings.data_dir), accounts=True)  # every store, account scores too
    drain_prefect_logs()
    assert signals.refresh_log(env_settings.lake_dir, env_settings.signals_dir).rows_total > 1000  # scanned below

    needles = raw_identifiers(landing)
    assert len(needles) > 1000  # the scan has something to look for
    for kind, value in TYPED.items():  # it looks for every identifier typed into kept text
        assert needles.get(value, "").endswith(f"({kind} in kept text)"), kind
    logged = [text for table, text in scan_sqlite(prefect_db) if table == "log"]
    assert any("accepted" in text and "quarantined" in text for text in logged)  # the library's logs are there
    report = scan_data_dir(env_settings.data_dir, extra_files=[prefect_db])
    assert report.files >= 6 and report.values > 10_000
    assert report.findings == [], report.findings[:10]
    kept = lake.dataset(env_settings.lake_dir, lake.EVENTS).to_table(columns=["page", "exception_type"])
    assert "/contact/[email]?tel=[phone]" in kept.column("page").to_pylist()  # the typed events are in the lake
    assert "SimError [iccid] [imsi]" in kept.column("exception_type").to_pylist()


def test_the_scanner_finds_a_planted_leak(tmp_path: Path) -> None:
    """Guards the leak test itself: a raw IMEI written to a text file and a Parquet cell is found."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    landing = tmp_path / "landing" / "telemetry"
    write_batch(landing / "b.ndjson", [event("operation")])
    needles = raw_identifiers(tmp_path / "landing")
    (tmp_path / "log.txt").write_text("processing device 35-209900-176148-1 now")
    pq.write_table(pa.table({"x": ["3C5AB4123456"]}), tmp_path / "t.parquet")
    with pa.ipc.new_file(str(tmp_path / "seg.arrow"), pa.schema([("x", pa.string())])) as writer:
        writer.write_table(pa.table({"x": ["ev-1", "460001234567890", "ev-2"]}))  # one cell among others: no run-on
    report = scan_files([tmp_path / "log.txt", tmp_path / "t.parquet", tmp_path / "seg.arrow"], needles)
    assert {f.path.name for f in report.findings} == {"log.txt", "t.parquet", "seg.arrow"}


def test_the_scanner_finds_an_identifier_typed_into_kept_text(tmp_path: Path) -> None:
    """Guards the leak test itself: kept text is no leak once redacted, the identifier inside it is."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    typed = event("operation", payload={"action": "view", "page": "/contact/li.wei@example.com"})
    write_batch(tmp_path / "landing" / "telemetry" / "b.ndjson", [typed])
    needles = raw_identifiers(tmp_path / "landing")
    assert needles["li.wei@example.com"] == "payload.page (email in kept text)"
    pq.write_table(pa.table({"page": ["/contact/[email]"]}), tmp_path / "redacted.parquet")
    pq.write_table(pa.table({"page": ["/contact/li.wei@example.com"]}), tmp_path / "raw.parquet")
    report = scan_files([tmp_path / "redacted.parquet", tmp_path / "raw.parquet"], needles)
    assert [f.path.name for f in report.findings] == ["raw.parquet"]


def _a_subject(landing: Path) -> Identifiers:
    """The raw identifiers of a registered account in the landing zone, as the subject would give them."""
    import gzip

    import orjson
    import pyarrow as pa

    from devicerisk.privacy.normalise import normaliser

    usable = normaliser("imei", "CN")  # the generator plants invalid and placeholder IMEIs: a subject gives a real one
    for path in sorted((landing / "telemetry").glob("*.ndjson.gz")):
        for raw in gzip.decompress(path.read_bytes()).splitlines():
            record = orjson.loads(raw)
            phone = (record.get("payload") or {}).get("phone")
            imei = (record.get("device") or {}).get("imei")
            if record.get("account_id") and phone and imei and usable(pa.array([imei]))[0].is_valid:
                return Identifiers(account_id=record["account_id"], phone=phone, devices={"imei": imei})
    raise AssertionError("the generator registered no account with a phone")


def test_clause_5_2_2_exports_receipts_and_purges_leave_no_raw_identifier(
    prefect_db: Path, env_settings: Settings
) -> None:
    from devicerisk.governance import requests
    from devicerisk.governance.purge import purge
    from devicerisk.governance.stores import stores_for
    from devicerisk.governance.subjects import from_json
    from devicerisk.store.rows import TRANSACTION_COLUMN

    landing = env_settings.landing_dir
    generate(landing, SynthConfig(accounts=80, days=2, seed=29, events_per_batch=5000))
    pipeline_flow(str(env_settings.data_dir), purge=True)  # ingest, then the retention purge
    stores = stores_for(env_settings)
    signals.refresh_log(stores.lake_dir, stores.signals_dir)
    subject = _a_subject(landing)
    now = datetime.now(UTC)
    access = requests.submit(stores, requests.RequestKind.ACCESS, subject, now, verification=verified())
    erasure = requests.submit(stores, requests.RequestKind.ERASURE, subject, now, verification=verified())
    assert erasure.status == requests.Status.IN_PROGRESS  # the default grace keeps old files for running readers
    later = dataclasses.replace(stores, grace=timedelta(0))  # as if the grace period had passed
    erasure = requests.process(later, erasure, now, actor="requests-flow", role="pipeline")
    drain_prefect_logs()

    exported = stores.requests_dir / access.request_id
    assert (exported / "export.json").stat().st_size > 1000 and (exported / "summary.md").exists()
    assert erasure.status == requests.Status.COMPLETED  # the receipt below is scanned too
    assert (stores.requests_dir / erasure.request_id / "receipt.json").exists()
    assert signals.read_log(stores.signals_dir) is None  # the erasure dropped it with the lake rows
    assert signals.refresh_log(stores.lake_dir, stores.signals_dir).rebuilt  # rebuilt from the rest: scanned below
    report = scan_data_dir(env_settings.data_dir, extra_files=[prefect_db])
    scanned = {p for p in env_settings.data_dir.rglob("*") if p.is_file() and p.is_relative_to(stores.requests_dir)}
    assert len(scanned) >= 5  # the exports and the receipt were read
    assert report.findings == [], report.findings[:10]

    # Nor is any pseudonym of the erased subject left in any file, the Delta logs' statistics included, once the
    # requests' own records have forgotten it after their day (their account and transactions: no one shares them).
    erased = from_json(erasure.subject)
    own = erased.accounts | erased.identifiers.get(TRANSACTION_COLUMN, frozenset())
    assert own
    purge(later, now + requests.SUBJECT_KEPT + timedelta(hours=1))
    files = [p for p in sorted(env_settings.data_dir.rglob("*")) if p.is_file() and not p.is_relative_to(landing)]
    left = scan_files([*files, prefect_db], {pid: "the erased subject's pseudonym" for pid in own})
    assert left.findings == [], left.findings[:10]
    assert any(p.name.endswith(".checkpoint.parquet") for p in files) and stores.warehouse_path in files  # read
