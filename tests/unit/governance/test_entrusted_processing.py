"""Entrusted processing (4.4): minimised, re-keyed extracts, their register, revocation, expiry and audit, on a lake
built by the real synth generator and ingest."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import duckdb
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from devicerisk.config import Settings
from devicerisk.contract import purposes
from devicerisk.contract.fields import DEVICE_KEY_SQL, FIELDS
from devicerisk.contract.schema import LAKE_META, output_columns
from devicerisk.governance import entrust
from devicerisk.governance.entrust import EntrustError
from devicerisk.governance.incident import IncidentError
from devicerisk.governance.incident_report import investigate, to_json
from devicerisk.governance.purge import purge
from devicerisk.governance.retention_check import verify
from devicerisk.governance.stores import Stores, stores_for
from devicerisk.privacy.leakscan import raw_identifiers, scan_files
from devicerisk.store import audit, processors
from devicerisk.store.processors import Entrustment
from factories import synth_lake

NOW = datetime.now(UTC)
UNTIL = NOW.date() + timedelta(days=30)


@pytest.fixture
def lake(settings: Settings) -> Stores:
    synth_lake(settings, accounts=40, days=2)
    return stores_for(settings)


def _export(stores: Stores, processor: str, purpose: str = "risk_control", until: date = UNTIL) -> Entrustment:
    window = entrust.window(None, None)
    return entrust.export(
        stores, processor=processor, purpose=purpose, until=until, window=window, actor="officer-li", now=NOW
    )


def _extract(stores: Stores, entry: Entrustment) -> list[dict]:
    return pq.read_table(stores.data_dir / entry.location / entrust.EVENTS_FILE).to_pylist()


def _lake_sql(settings: Settings, query: str, params: dict | None = None) -> list[tuple]:
    con = duckdb.connect()
    con.register("events", DeltaTable(str(settings.lake_dir / "events")).to_pyarrow_dataset())
    return con.execute(query, params or {}).fetchall()


def test_clause_4_4_an_extract_holds_only_the_fields_its_purpose_needs(settings: Settings, lake: Stores) -> None:
    for purpose in ("account_management", "risk_control"):
        entry = _export(lake, f"proc-{purpose.replace('_', '-')}", purpose)
        types = set(purposes.require(purpose).event_types)
        rows = _extract(lake, entry)
        # the events of the purpose's types, all of them
        expected = _lake_sql(
            settings, "SELECT count(*) FROM events WHERE list_contains($t, event_type)", {"t": sorted(types)}
        )
        assert len(rows) == entry.rows == expected[0][0] > 0
        assert {r["event_type"] for r in rows} == types
        # only columns of fields those types carry; none of a field of another purpose's types, none of the pipeline's
        carried = {c.name for f in FIELDS if f.event_types is None or f.event_types & types for c in output_columns(f)}
        foreign = {c.name for f in FIELDS if f.event_types and not f.event_types & types for c in output_columns(f)}
        columns = set(rows[0])
        assert columns - {"event_date"} <= carried and columns.isdisjoint(foreign - carried)
        assert columns.isdisjoint({m.name for m in LAKE_META} - {"event_date"})  # batch ids, key ids, ingest times
        if purpose == "account_management":  # risk control reads every event type; this one, account events only
            assert foreign - carried, purpose
    # account management carries the phone pseudonym; risk control carries amounts, account management does not
    register = {e.purpose: set(e.columns) for e in processors.register(lake.data_dir)}
    assert "phone_pid" in register["account_management"]
    assert "amount" in register["risk_control"] and "amount" not in register["account_management"]


def test_clause_4_4_two_processors_extracts_join_neither_each_other_nor_the_lake(
    settings: Settings, lake: Stores
) -> None:
    a, b = _export(lake, "acme"), _export(lake, "bravo")
    assert a.key_domain != b.key_domain and a.rekeyed == b.rekeyed
    assert {"event_id", "account_id_pid", "device_imei_pid", "transaction_id_pid"} <= set(a.rekeyed)
    rows_a, rows_b = _extract(lake, a), _extract(lake, b)
    types = {"t": sorted(a.event_types)}
    lake_values: set[str] = set()  # every value of every linking column of the lake
    for column in a.rekeyed:
        lake_values |= {v for (v,) in _lake_sql(settings, f"SELECT DISTINCT {column} FROM events") if v is not None}
    for column in a.rekeyed:
        values_a = {r[column] for r in rows_a} - {None}
        values_b = {r[column] for r in rows_b} - {None}
        query = f"SELECT count(DISTINCT {column}) FROM events WHERE list_contains($t, event_type)"
        assert len(values_a) == len(values_b) == _lake_sql(settings, query, types)[0][0], column  # none merged
        assert values_a.isdisjoint(values_b), column  # the join of the two extracts is empty
        assert values_a.isdisjoint(lake_values) and values_b.isdisjoint(lake_values), column  # and with the lake
    assert all({r[c] for r in rows_a} - {None} for c in ("event_id", "account_id_pid", "transaction_id_pid"))
    # within one extract the subjects and their events are intact: the same number of accounts, each with as many rows
    in_lake = _lake_sql(
        settings,
        "SELECT count(*) FROM events WHERE list_contains($t, event_type) AND account_id_pid IS NOT NULL "
        "GROUP BY account_id_pid",
        types,
    )
    for rows in (rows_a, rows_b):
        per_account = Counter(r["account_id_pid"] for r in rows if r["account_id_pid"] is not None)
        assert sorted(per_account.values()) == sorted(n for (n,) in in_lake)
        assert len({r["event_id"] for r in rows}) == len(rows)


def test_clause_4_4_the_manifest_matches_the_files(settings: Settings, lake: Stores) -> None:
    entry = _export(lake, "acme")
    folder = lake.data_dir / entry.location
    manifest = json.loads((folder / processors.MANIFEST).read_text())
    assert sorted(p.name for p in folder.iterdir()) == sorted([processors.MANIFEST, entrust.EVENTS_FILE])
    (listed,) = manifest["files"]
    path = folder / listed["name"]
    assert listed["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert listed["bytes"] == path.stat().st_size
    assert listed["rows"] == pq.read_metadata(path).num_rows == manifest["rows"] == entry.rows
    assert manifest["columns"] == pq.read_schema(path).names == list(entry.columns)
    assert (manifest["processor"], manifest["purpose"], manifest["until"]) == ("acme", "risk_control", str(UNTIL))
    assert manifest["key_domain"] == entry.key_domain and manifest["rekeyed_columns"] == list(entry.rekeyed)
    # never key material: neither the pseudonym key nor the processor's key derived from it
    key = lake.keyring[0].derive(entrust.KEY_PURPOSE, "acme", bytes.fromhex(entry.salt))
    assert key.key_id == entry.key_domain
    text = (folder / processors.MANIFEST).read_text() + (lake.data_dir / "entrust" / processors.REGISTER).read_text()
    assert settings.pseudonym_key_file is not None
    for secret in (settings.pseudonym_key_file.read_text().strip(), key.material.hex()):
        assert secret not in text
    # and no raw identifier of the input: the leak scan reads the Parquet cells, the manifest and the register
    needles = raw_identifiers(settings.landing_dir)
    report = scan_files([*folder.iterdir(), lake.data_dir / "entrust" / processors.REGISTER], needles)
    assert needles and report.files == 3 and report.findings == []


def test_clause_4_4_the_register_records_scope_purpose_and_expiry(lake: Stores) -> None:
    window = entrust.window("2026-11-01", "2026-11-02T12:00")
    entry = entrust.export(
        lake, processor="acme", purpose="risk_control", until=UNTIL, window=window, actor="officer-li", now=NOW
    )
    (registered,) = processors.register(lake.data_dir)
    assert registered == entry
    assert registered.status == processors.ACTIVE and registered.deletion is None
    assert (registered.processor, registered.purpose, registered.until) == ("acme", "risk_control", UNTIL)
    assert set(registered.event_types) == purposes.require("risk_control").event_types
    assert registered.columns == tuple(pq.read_schema(lake.data_dir / entry.location / entrust.EVENTS_FILE).names)
    assert (registered.window_from, registered.window_to) == (window.start, window.end)
    assert registered.created_by == "officer-li" and registered.lake_key_ids == (lake.keyring[0].key_id,)
    times = [r["event_time"] for r in _extract(lake, entry)]
    assert times and window.start <= min(times) and max(times) < window.end  # type: ignore[operator]
    # one active extract per processor: a second export is refused until the first ends
    with pytest.raises(EntrustError, match="acme already holds an active extract"):
        _export(lake, "acme")


def test_clause_4_4_entrust_end_removes_the_files_and_records_the_deletion(lake: Stores) -> None:
    entry = _export(lake, "acme")
    folder = lake.data_dir / entry.location
    files = len(list(folder.iterdir()))
    ended = entrust.end(lake, processor="acme", actor="officer-li", confirmed_by=None, now=NOW)
    assert not folder.exists() and ended.status == processors.ENDED
    assert ended.deletion is not None
    assert (ended.deletion.reason, ended.deletion.by, ended.deletion.files_removed) == ("revoked", "officer-li", files)
    assert ended.deletion.confirmed_by is None
    # until the processor confirms its own deletion, retention verification says so
    assert [v.where for v in verify(lake, NOW) if v.store == "entrust"] == [
        f"acme (ended {NOW:%Y-%m-%d}; the processor's deletion is not confirmed)"
    ]
    later = NOW + timedelta(hours=1)
    confirmed = entrust.end(lake, processor="acme", actor="officer-li", confirmed_by="dpo-acme", now=later)
    assert confirmed.deletion is not None
    assert (confirmed.deletion.confirmed_by, confirmed.deletion.confirmed_at) == ("dpo-acme", later)
    assert processors.register(lake.data_dir) == [confirmed]
    assert not [v for v in verify(lake, later) if v.store == "entrust"]
    with pytest.raises(EntrustError, match="confirmed by dpo-acme: nothing to do"):
        entrust.end(lake, processor="acme", actor="officer-li", confirmed_by="dpo-acme", now=later)
    # a new entrustment to the same processor gets a new key domain
    assert _export(lake, "acme").key_domain != entry.key_domain


def test_clause_4_4_retention_verify_flags_an_expired_extract_and_the_purge_revokes_it(lake: Stores) -> None:
    entry = _export(lake, "acme", until=NOW.date())
    kept = _export(lake, "bravo")
    assert not [v for v in verify(lake, NOW) if v.store == "entrust"]  # its last day is today
    after = NOW + timedelta(days=1)
    flagged = [v for v in verify(lake, after) if v.store == "entrust"]
    assert [(v.where, v.records) for v in flagged] == [
        (f"acme (active extract past its last day, {NOW.date().isoformat()})", entry.rows)
    ]
    report = purge(lake, after)  # the daily retention revokes it
    assert report.removed["entrust"] == 1
    assert not (lake.data_dir / entry.location).exists() and (lake.data_dir / kept.location).is_dir()
    ended, active = processors.register(lake.data_dir)
    assert ended.status == processors.ENDED and active.status == processors.ACTIVE
    assert ended.deletion is not None and (ended.deletion.reason, ended.deletion.by) == ("expired", "retention-flow")
    assert [v.where for v in verify(lake, after) if v.store == "entrust"] == [
        f"acme (ended {after:%Y-%m-%d}; the processor's deletion is not confirmed)"
    ]
    entrust.end(lake, processor="acme", actor="officer-li", confirmed_by="dpo-acme", now=after)
    assert not [v for v in verify(lake, after) if v.store == "entrust"]


def test_clause_4_4_everything_is_audited_without_identifiers(settings: Settings, lake: Stores) -> None:
    before = len(audit.records(lake.audit_dir))
    entry = _export(lake, "acme")
    extracted = {v for r in _extract(lake, entry) for c in entry.rekeyed if (v := r[c]) is not None}
    files = len(list((lake.data_dir / entry.location).iterdir()))
    entrust.listing(lake, "officer-li")
    entrust.end(lake, processor="acme", actor="officer-li", confirmed_by="dpo-acme", now=NOW)
    records = audit.records(lake.audit_dir)[before:]
    assert [(r["action"], r.get("target")) for r in records] == [
        ("entrust.export", "acme"),
        ("entrust.list", None),
        ("entrust.end", "acme"),
    ]
    export, listed, ended = records
    assert export["counts"] == {
        "rows": entry.rows,
        "columns": len(entry.columns),
        "rekeyed_columns": len(entry.rekeyed),
        "files": 1,
    }
    assert (export["actor"], export["role"], export["purpose"]) == ("officer-li", "privacy_officer", "risk_control")
    assert listed["counts"] == {"entrustments": 1, "active": 1}
    assert ended["counts"] == {"rows": entry.rows, "files_removed": files, "confirmed": 1}
    assert audit.verify(lake.audit) == []
    text = (lake.audit_dir / audit.LOG_NAME).read_text()
    lake_pids = {v for (v,) in _lake_sql(settings, "SELECT DISTINCT account_id_pid FROM events") if v}
    assert lake_pids and extracted and not any(p in text for p in lake_pids | extracted)


def test_clause_4_4_an_unknown_purpose_or_a_past_expiry_is_refused(lake: Stores) -> None:
    before = len(audit.records(lake.audit_dir))
    with pytest.raises(EntrustError, match="unknown purpose 'marketing'; the registered purposes are: account_mana"):
        _export(lake, "acme", purpose="marketing")
    yesterday = NOW.date() - timedelta(days=1)
    with pytest.raises(EntrustError, match=f"--until {yesterday.isoformat()} is in the past"):
        _export(lake, "acme", until=yesterday)
    with pytest.raises(processors.RegisterError, match="not a short name"):
        _export(lake, "../acme")
    with pytest.raises(EntrustError, match="the export window is empty"):
        entrust.window("2026-11-02", "2026-11-01")
    with pytest.raises(EntrustError, match="the register has no entrustment to 'acme'"):
        entrust.end(lake, processor="acme", actor="officer-li", confirmed_by=None, now=NOW)
    assert processors.register(lake.data_dir) == []
    assert not (lake.data_dir / "entrust" / "extracts").exists()
    assert len(audit.records(lake.audit_dir)) == before  # a refused command writes nothing


def test_clause_4_4_an_edited_register_cannot_make_end_delete_outside_the_extracts(lake: Stores) -> None:
    entry = _export(lake, "acme")
    path = lake.data_dir / "entrust" / processors.REGISTER
    path.write_text(path.read_text().replace(entry.extract_id, "../../lake"))
    with pytest.raises(processors.RegisterError, match=re.escape("not an extract id: '../../lake'")):
        entrust.end(lake, processor="acme", actor="officer-li", confirmed_by=None, now=NOW)
    assert (lake.lake_dir / "events").is_dir() and (lake.data_dir / entry.location).is_dir()


def test_clause_5_3_3_an_exposed_extract_is_reported_with_its_subjects_named_as_the_lake_names_them(
    settings: Settings, lake: Stores
) -> None:
    """A processor's extract leaks: the incident report reads it, names its subjects (accounts, and devices seen
    without an account) by their lake pseudonyms, not the processor's, and the register beside it holds no personal
    data."""
    entry = _export(lake, "acme", "risk_control")  # every event type: device events without an account too
    folder = lake.data_dir / entry.location
    in_lake = {a for (a,) in _lake_sql(settings, "SELECT DISTINCT account_id_pid FROM events")} - {None}
    query = f"SELECT DISTINCT {DEVICE_KEY_SQL} FROM events WHERE account_id_pid IS NULL"
    devices = {d for (d,) in _lake_sql(settings, query)} - {None}
    rekeyed = {r["account_id_pid"] for r in _extract(lake, entry)} - {None}
    assert in_lake and devices and rekeyed.isdisjoint(in_lake)  # the extract holds the processor's pseudonyms only

    register = lake.data_dir / "entrust" / processors.REGISTER
    incident = investigate(lake, actor="officer-ann", now=NOW, files=[folder / entrust.EVENTS_FILE, register])
    extract, listing = incident.exposures
    assert (extract.store, extract.rows) == ("entrust", entry.rows)
    assert (extract.accounts, extract.devices) == (in_lake, devices)  # named as the lake and the notification run do
    assert set(extract.key_ids) == set(entry.lake_key_ids) and any("acme" in n for n in extract.notes)
    assert extract.fields and set(extract.fields) <= set(entry.fields)  # the purpose's fields, as the lake holds them
    assert (listing.rows, listing.accounts, listing.fields) == (0, set(), {})
    report = to_json(lake, incident)
    assert report["subjects"]["accounts"] == sorted(in_lake)
    assert report["scope"]["files"] == [extract.part, listing.part]

    # a file under entrust/ that no register entry made is refused, not guessed at
    stray = folder.parent / "ext-20000101T000000Z-000000" / entrust.EVENTS_FILE
    stray.parent.mkdir()
    stray.write_bytes((folder / entrust.EVENTS_FILE).read_bytes())
    with pytest.raises(IncidentError, match="not a file of an extract"):
        investigate(lake, actor="officer-ann", now=NOW, files=[stray])
