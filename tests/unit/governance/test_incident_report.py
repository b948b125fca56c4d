"""Security incidents (5.3.3): what an exposure disclosed, checked against the lake, the contract and the raw input."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from devicerisk.config import Settings
from devicerisk.contract.fields import DEVICE_KEY_SQL, FIELDS, LABEL_FIELDS
from devicerisk.contract.model import Action, Sensitivity
from devicerisk.contract.schema import output_columns
from devicerisk.governance.incident import IncidentError, Window
from devicerisk.governance.incident_report import investigate, record
from devicerisk.governance.stores import Stores, stores_for
from devicerisk.store import audit, quarantine
from factories import QUARANTINED_ACCOUNT, landing_events, synth_lake

_PID = re.compile(r"[0-9a-f]{32}")
_RANK = {Sensitivity.NONE: 0, Sensitivity.PERSONAL: 1, Sensitivity.SENSITIVE: 2}


@pytest.fixture
def lake(settings: Settings) -> Stores:
    synth_lake(settings)
    return stores_for(settings)


def _raw_identifiers(settings: Settings) -> set[str]:
    """Every raw identifier the input held: the values of the fields the contract pseudonymises or drops."""
    paths = [f.path for f in FIELDS if f.actions & {Action.PSEUDONYMISE, Action.DROP}]
    found: set[str] = set()
    for raw in landing_events(settings.landing_dir):
        for path in paths:
            node: object = raw
            for part in path.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, str) and len(node) >= 6 and len(set(node)) > 3:  # not a placeholder (all zeros)
                found.add(node)
    return found


def _window(settings: Settings) -> Window:
    """The second day of the generated telemetry, from noon to noon."""
    first = min(datetime.fromisoformat(e["event_time"]) for e in landing_events(settings.landing_dir))
    start = datetime(first.year, first.month, first.day, 12, tzinfo=UTC) + timedelta(days=1)
    return Window(start, start + timedelta(days=1))


def _independent(settings: Settings, window: Window) -> tuple[set[str], set[str], dict[str, str]]:
    """Accounts, devices without an account, and category -> highest sensitivity of the fields the window's rows
    fill, counted by DuckDB over the Delta table's files."""
    events = DeltaTable(str(settings.lake_dir / "events")).to_pyarrow_dataset()
    con = duckdb.connect()
    con.register("events", events)
    where = "event_time >= $start AND event_time < $end"
    params = {"start": window.start, "end": window.end}
    query = f"SELECT DISTINCT account_id_pid FROM events WHERE {where}"
    accounts = {r[0] for r in con.execute(query, params).fetchall()}
    query = f"SELECT DISTINCT {DEVICE_KEY_SQL} FROM events WHERE {where} AND account_id_pid IS NULL"
    devices = {r[0] for r in con.execute(query, params).fetchall()}
    names = set(events.schema.names)
    categories: dict[str, Sensitivity] = {}
    for f in (*FIELDS, *LABEL_FIELDS):
        columns = [c.name for c in output_columns(f) if c.name in names]
        if not columns:
            continue
        filled = con.execute(f"SELECT {' + '.join(f'count({c})' for c in columns)} FROM events WHERE {where}", params)
        if filled.fetchall()[0][0]:
            best = categories.get(f.category, Sensitivity.NONE)
            categories[f.category] = max(best, f.sensitivity, key=_RANK.__getitem__)
    return accounts - {None}, devices - {None}, {c: str(s) for c, s in categories.items()}


def test_clause_5_3_3_an_incident_report_names_categories_subjects_protection_and_keys(
    lake: Stores, settings: Settings
) -> None:
    window = _window(settings)
    now = datetime.now(UTC)
    incident = investigate(lake, actor="officer-ann", now=now, store="events", window=window)
    md, js = record(lake, incident)
    assert md.parent == js.parent == settings.data_dir / "incidents" / incident.incident_id
    report = json.loads(js.read_text())
    markdown = md.read_text()

    # categories and sensitivities: those of the contract fields the window's rows fill, no more, no fewer
    accounts, devices, categories = _independent(settings, window)
    assert {c["category"]: c["sensitivity"] for c in report["categories"]} == categories
    assert set(report["sensitivities"]) == set(categories.values())
    assert "user.financial.bank_account" not in categories  # dropped at ingest: never exposed
    assert "payload.bank_account" in report["protection"]["dropped_by_the_contract"]
    assert "device.imei" in report["protection"]["pseudonymised"] and "device.imei" in report["protection"]["minimised"]
    assert report["protection"]["encrypted_parts"] == [] and report["protection"]["raw"] == []

    # subjects: the same pseudonyms as an independent count over the same window
    assert accounts and devices
    assert set(report["subjects"]["accounts"]) == accounts
    assert set(report["subjects"]["devices_without_account"]) == devices
    assert report["subjects"]["count"] == len(accounts) + len(devices)
    assert all(_PID.fullmatch(p) for p in [*accounts, *devices])

    # keys: ids and what they protect, never material
    key_material = {Path(p).read_text().strip() for p in (settings.pseudonym_key_file, settings.quarantine_key_file)}
    pseudonym_key = next(k for k in report["keys"] if k["purpose"] == "pseudonym")
    assert pseudonym_key["key_id"] == lake.keyring[0].key_id and pseudonym_key["exposed_parts"] == ["lake/events"]
    (verifying,) = [k for k in report["keys"] if k["purpose"] == "verification"]  # it verifies requesters (6.4.2)
    assert lake.verification_key is not None and verifying["key_id"] == lake.verification_key.key_id

    # leaks: no raw identifier anywhere, no key, and the Markdown names no subject in full
    raw = _raw_identifiers(settings)
    assert len(raw) > 100
    for text in (js.read_text(), markdown):
        assert not [v for v in raw if v in text]
        assert not [k for k in key_material if k in text]
    assert not _PID.search(markdown.replace(pseudonym_key["key_id"], ""))
    assert f"{len(accounts) + len(devices):,} subjects" in markdown

    # the investigation is audited: who, what, counts; no identifier
    last = audit.records(settings.audit_dir)[-1]
    assert (last["actor"], last["action"], last["purpose"]) == ("officer-ann", "incident.report", "security")
    assert last["counts"]["subjects"] == len(accounts) + len(devices)
    assert last["counts"]["accounts"] == len(accounts)
    log = (settings.audit_dir / audit.LOG_NAME).read_text()
    assert not [p for p in [*accounts, *devices] if p in log] and not [v for v in raw if v in log]


def test_clause_5_3_3_an_exposed_quarantine_is_encrypted_and_counted_with_its_key(
    lake: Stores, settings: Settings
) -> None:
    incident = investigate(lake, actor="officer-ann", now=datetime.now(UTC), store="quarantine")
    report = json.loads(record(lake, incident)[1].read_text())
    (batch,) = quarantine.batches(settings.quarantine_dir)
    (exposed,) = report["exposed"]
    assert exposed["encrypted"] and exposed["rows"] == 1
    assert exposed["key_ids"] == [quarantine.key_id(settings.quarantine_dir, batch)]
    assert report["protection"]["encrypted_parts"] == [f"quarantine/{batch}"]
    assert "payload.bank_account" in report["protection"]["raw_fields_the_contract_drops"]
    # counted by decrypting in memory: the record's account, by the pseudonym ingest would give it
    assert report["subjects"]["accounts"] == [lake.keyring[0].pseudonymise_one("account", QUARANTINED_ACCOUNT)]
    assert QUARANTINED_ACCOUNT not in json.dumps(report)
    sealing = next(k for k in report["keys"] if k["purpose"] == "quarantine")
    assert sealing["exposed_parts"] == [f"quarantine/{batch}"]


def test_clause_5_3_3_named_files_and_clear_errors(lake: Stores, settings: Settings) -> None:
    raw_file = next((settings.landing_dir / "telemetry").glob("batch-*"))
    incident = investigate(lake, actor="officer-ann", now=datetime.now(UTC), files=[raw_file])
    report = json.loads(record(lake, incident, settings.data_dir.parent / "out")[1].read_text())
    assert report["scope"] == {"files": [f"landing/telemetry/{raw_file.name}"]}
    assert "account_id" in report["protection"]["raw"] and not report["protection"]["pseudonymised"]
    assert report["subjects"]["count"] > 0 and all(_PID.fullmatch(p) for p in report["subjects"]["accounts"])

    with pytest.raises(IncidentError, match=r"unknown store 'lake'.*events.*quarantine"):
        investigate(lake, actor="a", now=datetime.now(UTC), store="lake")
    with pytest.raises(IncidentError, match="inverted"):
        Window(datetime(2026, 11, 3, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))
    with pytest.raises(IncidentError, match="not under the data directory"):
        investigate(lake, actor="a", now=datetime.now(UTC), files=[settings.pseudonym_key_file])
    with pytest.raises(audit.AuditError):
        investigate(lake, actor="Ann Smith", now=datetime.now(UTC), store="events")
