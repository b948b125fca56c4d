"""Termination of operation (5.1.3): every store deleted or anonymised, the keys destroyed, a receipt written.

Every test runs the command on a lake in a temporary folder, built by the real synth generator and ingest (or
copied from the session's demo lake, which the real pipeline built with a model and scores).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow.csv as pacsv
import pytest
from deltalake import DeltaTable
from pydantic import SecretStr

from devicerisk.config import Settings
from devicerisk.contract.fields import DEVICE_KEY_SQL
from devicerisk.governance import decommission as dc
from devicerisk.privacy.encryption import DecryptionError
from devicerisk.privacy.keys import Key, MissingKeyError, decode_key_text, load_pseudonym_key, load_quarantine_key
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.store import api_keys, audit, incidents, quarantine
from factories import copy_lake, landing_events, synth_lake

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def tree(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` (links not followed) with a digest of its bytes and its mode."""
    found: dict[str, str] = {}
    for root in roots:
        for folder, _dirs, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                stat = path.lstat()
                body = b"" if path.is_symlink() else path.read_bytes()
                found[str(path)] = f"{hashlib.sha256(body).hexdigest()}:{stat.st_mode:o}"
            found[folder] = "dir"
    return found


def _pseudonyms(settings: Settings) -> set[str]:
    """Every value of every pseudonym column in every lake table."""
    values: set[str] = set()
    for table in settings.lake_dir.iterdir():
        data = DeltaTable(str(table)).to_pyarrow_dataset()
        columns = [c for c in data.schema.names if c.endswith("_pid")]
        for column in data.to_table(columns=columns).columns:
            values |= {v for v in column.to_pylist() if v is not None}
    return values


@pytest.fixture
def lake(settings: Settings) -> Settings:
    """A synthetic lake with a quarantined batch, an API key and an incident report: every kind of store."""
    synth_lake(settings)
    api_keys.create(settings.api_keys_path, "fraud_analyst", "ann")
    incidents.write(incidents.incidents_dir(settings.data_dir) / "inc-1", "# report\n", {"subjects": 0})
    return settings


def test_clause_5_1_3_a_dry_run_lists_every_store_and_changes_nothing(lake: Settings) -> None:
    before = tree(lake.data_dir, lake.secrets_dir)
    plan = dc.plan(lake, dc.Mode.DELETE)
    assert tree(lake.data_dir, lake.secrets_dir) == before
    names = {s.name for s in plan.stores}
    assert {"landing", "quarantine", "lake/events", "warehouse", "api keys", "incidents"} <= names
    audit_files = str(lake.audit_dir) + os.sep
    on_disk = [p for p, kind in tree(lake.data_dir).items() if kind != "dir" and not p.startswith(audit_files)]
    assert plan.files == len(on_disk) and plan.bytes == sum(Path(p).lstat().st_size for p in on_disk)
    events = next(s for s in plan.stores if s.name == "lake/events")
    assert events.rows == DeltaTable(str(lake.lake_dir / "events")).to_pyarrow_dataset().count_rows() > 0
    ids = {k.purpose: k.key_id for k in plan.keys}
    assert ids["pseudonym"] == load_pseudonym_key(lake).key_id and ids["quarantine"] == load_quarantine_key(lake).key_id
    assert plan.api_key_ids == tuple(k.key_id for k in api_keys.listing(lake.api_keys_path))


def test_clause_5_1_3_delete_removes_every_store_and_key_and_the_receipt_lists_them(lake: Settings) -> None:
    materials = {n: decode_key_text((lake.secrets_dir / f"{n}.key").read_text(), n) for n in ("pseudonym", "audit")}
    audit_key = Key.from_bytes(materials["audit"], "audit")  # to verify the trail afterwards
    (lake.secrets_dir / api_keys.DEMO_KEY_FILE).write_text("drk_demo")  # a demo lookup key left in the secrets folder
    plan = dc.plan(lake, dc.Mode.DELETE)
    outcome = dc.run(lake, plan, actor="officer-bo", now=NOW)

    left = sorted(p.name for p in lake.data_dir.iterdir())
    assert left == ["audit", outcome.json_path.name, outcome.markdown_path.name]
    assert list(lake.secrets_dir.iterdir()) == []
    receipt = json.loads(outcome.json_path.read_text())
    assert receipt == outcome.receipt and receipt["mode"] == "delete" and receipt["actor"] == "officer-bo"
    assert [s["name"] for s in receipt["removed"]["stores"]] == [s.name for s in plan.stores]
    assert receipt["removed"]["files"] == plan.files > 0 and receipt["removed"]["bytes"] == plan.bytes
    destroyed = {k["purpose"]: k for k in receipt["keys"]}
    assert {k["status"] for k in receipt["keys"]} == {"destroyed"} and set(destroyed) == {
        "pseudonym",
        "quarantine",
        "audit",
        "verification",  # the identity-token key (6.4.2)
        "api",
    }
    assert destroyed["audit"]["key_id"] == audit_key.key_id
    assert receipt["api_keys_revoked"] == list(plan.api_key_ids) and len(plan.api_key_ids) == 1
    assert receipt["aggregates"] is None and receipt["audit"]["kept"] is True
    # The final audit record was written with the audit key before it was destroyed, and the chain still holds.
    final = audit.records(lake.audit_dir)[-1]
    assert final["action"] == "decommission" and receipt["audit"]["final_record"] == f"{final['seq']}:{final['hash']}"
    assert final["counts"]["files"] == plan.files
    assert audit.verify(audit.Trail(lake.audit_dir, (audit_key,))) == []
    markdown = outcome.markdown_path.read_text()
    assert "mode: **delete**" in markdown and f"{plan.files:,} files" in markdown
    assert all(k["key_id"] in markdown for k in receipt["keys"] if k["key_id"])  # keys are named by id...
    text = markdown + outcome.json_path.read_text()
    assert not any(m.hex() in text for m in materials.values())  # ...never by their material


def test_clause_5_1_3_after_shredding_copies_cannot_be_read_and_pseudonyms_no_longer_link(
    lake: Settings, tmp_path: Path
) -> None:
    batch = quarantine.batches(lake.quarantine_dir)[0]
    backup = tmp_path / "backup"
    shutil.copytree(lake.quarantine_dir, backup)  # a copy of the quarantine that survives elsewhere
    assert quarantine.read(backup, batch, load_quarantine_key(lake))  # readable while the key exists
    raw = {e["account_id"] for e in landing_events(lake.landing_dir) if e.get("account_id")}
    old = _pseudonyms(lake)
    before = Pseudonymiser(load_pseudonym_key(lake))
    linked = {a for a in raw if before.pseudonymise_one("account", a) in old}
    assert len(linked) >= 0.9 * len(raw) > 0  # the old key links raw ids to the lake (bar quarantined, refused)

    dc.run(lake, dc.plan(lake, dc.Mode.DELETE), actor="officer-bo", now=NOW)
    for loader in (load_pseudonym_key, load_quarantine_key):
        with pytest.raises(MissingKeyError, match="does not exist"):
            loader(lake)
    for name in ("pseudonym", "quarantine"):  # the operator makes new keys for whatever comes next
        (lake.secrets_dir / f"{name}.key").write_text(secrets.token_hex(32))
    with pytest.raises(DecryptionError):
        quarantine.read(backup, batch, load_quarantine_key(lake))
    after = Pseudonymiser(load_pseudonym_key(lake))
    assert not {after.pseudonymise_one("account", a) for a in linked} & old


def test_clause_5_1_3_a_key_given_in_the_environment_is_reported_for_the_secret_store(settings: Settings) -> None:
    s = settings.model_copy(update={"pseudonym_key": SecretStr(secrets.token_hex(32)), "pseudonym_key_file": None})
    synth_lake(s, accounts=20, days=1)
    outcome = dc.run(s, dc.plan(s, dc.Mode.DELETE), actor="officer-bo", now=NOW)
    pseudonym = next(k for k in outcome.receipt["keys"] if k["purpose"] == "pseudonym")
    assert pseudonym["status"] == "not destroyed" and pseudonym["key_id"] == load_pseudonym_key(s).key_id
    assert "DEVICERISK_PSEUDONYM_KEY" in pseudonym["action"] and "secret store" in pseudonym["action"]
    assert not s.quarantine_key_file.exists()  # the file-based keys went all the same


def test_clause_5_1_3_the_command_refuses_a_folder_that_holds_no_store(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "notes").mkdir(parents=True)
    (home / "README.md").write_text("not a data directory")
    s = Settings(data_dir=home, secrets_dir=tmp_path / "secrets")
    with pytest.raises(dc.DecommissionError, match="holds no store"):
        dc.plan(s, dc.Mode.DELETE)
    with pytest.raises(dc.DecommissionError, match="object-store lake"):
        dc.plan(s.model_copy(update={"lake_uri": "s3://bucket/lake"}), dc.Mode.DELETE)
    assert (home / "notes").is_dir()


@pytest.fixture
def scored_lake(demo_lake: Settings, tmp_path: Path) -> Settings:
    """A copy of the demo lake (events, labels, a model, scores, serving snapshots) and of its keys."""
    return copy_lake(demo_lake, tmp_path)  # its own verification key too: the run destroys every key it names


def _subjects_per_cell(events: Path, scores: Path) -> dict[tuple[str, ...], int]:
    """Distinct subjects of every cell, counted independently over the lake's files with DuckDB."""
    con = duckdb.connect()
    con.register("events", DeltaTable(str(events)).to_pyarrow_dataset())
    con.register("scores", DeltaTable(str(scores)).to_pyarrow_dataset())
    by_type = con.execute(
        f"SELECT event_date::VARCHAR, event_type, count(DISTINCT coalesce(account_id_pid, {DEVICE_KEY_SQL})) "
        "FROM events WHERE event_type <> 'transaction' GROUP BY ALL"
    ).fetchall()
    by_level = con.execute(
        "SELECT e.event_date::VARCHAR, coalesce(s.level, 'unscored'), count(DISTINCT e.account_id_pid) FROM events e "
        "LEFT JOIN scores s USING (event_id) WHERE e.event_type = 'transaction' AND e.account_id_pid IS NOT NULL "
        "GROUP BY ALL"
    ).fetchall()
    return {("events_by_day", d, t): n for d, t, n in by_type} | {
        ("transactions_by_day", d, t): n for d, t, n in by_level
    }


def test_clause_5_1_3_anonymise_keeps_aggregates_of_at_least_k_subjects_and_no_pseudonym(
    scored_lake: Settings,
) -> None:
    s = scored_lake
    pseudonyms = _pseudonyms(s)
    expected = _subjects_per_cell(s.lake_dir / "events", s.lake_dir / "transaction_scores")
    plan = dc.plan(s, dc.Mode.ANONYMISE)
    assert {"serving", "models", "lake/transaction_scores", "lake/labels"} <= {x.name for x in plan.stores}
    outcome = dc.run(s, plan, actor="officer-bo", now=NOW)

    assert sorted(p.name for p in s.data_dir.iterdir()) == sorted(
        ["anonymised", "audit", outcome.json_path.name, outcome.markdown_path.name]
    )
    k = s.anonymity_k
    published: set[tuple[str, ...]] = set()
    for table in outcome.receipt["aggregates"]["tables"]:
        cells = pacsv.read_csv(s.data_dir / table["file"]).to_pylist()
        assert len(cells) == table["cells"] > 0
        for cell in cells:
            assert not {str(v) for v in cell.values()} & pseudonyms  # no value is a pseudonym
            assert not any(c.endswith(("_pid", "_id")) for c in cell)  # nor any column an identifier
            dims = (table["name"], str(cell["event_date"]), cell.get("event_type") or cell["level"])
            count = cell.get("subjects", cell.get("accounts"))
            assert count == expected[dims] >= k, dims
            published.add(dims)
    suppressed = {dims for dims, n in expected.items() if n < k}
    assert suppressed and not suppressed & published  # the lake had small cells, and none was published
    assert published | suppressed == set(expected)
    assert sum(t["cells_suppressed"] for t in outcome.receipt["aggregates"]["tables"]) == len(suppressed)
    assert outcome.receipt["aggregates"]["k"] == k == 10
    assert not any(p.name.endswith(".key") for p in s.secrets_dir.iterdir())
