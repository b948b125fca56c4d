"""The analysts' interface on lakes built by the real flows: no raw identifier in or out, no key, no lock.

A notebook holds an :class:`~devicerisk.analytics.AnalystLake` open for hours; ingest, scoring and the
retention purge must run meanwhile, and the notebook must keep reading the snapshot it opened.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from pydantic import SecretStr

from devicerisk.analytics import AnalystLake, RawIdentifierError, open_lake
from devicerisk.config import Settings
from devicerisk.contract.fields import FIELDS
from devicerisk.contract.model import Action
from devicerisk.flows.ingest import ingest_flow
from devicerisk.flows.retention import retention_flow
from devicerisk.flows.risk import risk_flow
from devicerisk.flows.score import score_transactions_flow
from devicerisk.privacy.leakscan import raw_identifiers
from devicerisk.store import scores, warehouse
from devicerisk.synth import SynthConfig, generate

#: Opening the lake is audited (2.8): the session has the demo lake's keys, as an analyst's has.
pytestmark = pytest.mark.usefixtures("demo_keys_in_env")

RAW_COLUMNS = {f.column for f in FIELDS if Action.KEEP not in f.actions and f.actions & {Action.PSEUDONYMISE}}


def _everything(lake: AnalystLake) -> dict[str, pa.Table]:
    """Every table the interface offers, read whole."""
    return {
        "events": lake.events().to_arrow_table(),
        "labels": lake.labels().to_arrow_table(),
        "transaction_scores": lake.transaction_scores().to_arrow_table(),
        "account_scores": lake.account_scores().to_arrow_table(),
        "device_scores": lake.device_scores().to_arrow_table(),
        "device_accounts": lake.device_accounts().to_arrow_table(),
        "ledger": lake.ledger().to_arrow_table(),
        "aggregates": lake.aggregates().to_arrow_table(),
    }


def _held(value: object, seen: set[int] | None = None) -> Iterator[object]:
    """Every object reachable from ``value`` through attributes, dataclass fields and containers."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    yield value
    children: list[object] = []
    if is_dataclass(value) and not isinstance(value, type):
        children = [getattr(value, f.name) for f in fields(value)]
    elif isinstance(value, dict):
        children = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple | set | frozenset):
        children = list(value)
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        children = list(vars(value).values())
    for child in children:
        yield from _held(child, seen)


def test_it_refuses_raw_identifiers_and_reads_no_file(demo_lake: Settings) -> None:
    with open_lake(demo_lake.data_dir, purpose="risk_control") as lake:
        for raw, kind in (("352099001761481", "imei"), ("+86 138 0013 8000", "phone"), ("3C:5A:B4:12:34:56", "mac")):
            with pytest.raises(RawIdentifierError, match=f"raw {kind}"):
                lake.account(raw)
            with pytest.raises(RawIdentifierError, match=f"raw {kind}"):
                lake.device(raw)
            with pytest.raises(RawIdentifierError, match=f"raw {kind}"):
                lake.sql(f"SELECT * FROM events WHERE device_imei_pid = '{raw}'")
        with pytest.raises(RawIdentifierError, match="not a pseudonym"):
            lake.account("acct-000001")  # a raw account id, in the synthetic ids' own form
        # the landing zone's raw batches and the warehouse's other tables are out of reach of any query
        batch = next(demo_lake.landing_dir.rglob("batch-*"))
        with pytest.raises(duckdb.PermissionException):
            lake.sql(f"SELECT * FROM read_text('{batch}')").fetchall()
        with pytest.raises(duckdb.PermissionException):
            lake.sql(f"ATTACH '{demo_lake.warehouse_path}' AS w").fetchall()
        with pytest.raises(duckdb.InvalidInputException):
            lake.sql("SET enable_external_access = true").fetchall()
        # a pseudonym it does take: the drill-down finds that account's rows, and only them
        pid = lake.sql(  # an account seen on a device (web-only accounts have no device rows)
            "SELECT account_id_pid FROM transaction_scores WHERE account_id_pid IN "
            "(SELECT account_id_pid FROM device_accounts) LIMIT 1"
        ).fetchall()[0][0]
        view = lake.account(pid)
        rows = view.transaction_scores.to_arrow_table()
        assert rows.num_rows > 0 and set(rows.column("account_id_pid").to_pylist()) == {pid}
        assert set(view.devices.to_arrow_table().column("account_id_pid").to_pylist()) == {pid}


def test_it_exposes_no_raw_value_and_holds_no_key(demo_lake: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    key_hex = demo_lake.pseudonym_key_file.read_text().strip()
    monkeypatch.setenv("DEVICERISK_PSEUDONYM_KEY", key_hex)  # a key in the environment, as a deployment may give
    lake = open_lake(demo_lake.data_dir, purpose="risk_control")
    tables = _everything(lake)
    assert all(t.num_rows > 0 for name, t in tables.items() if name != "aggregates" or t.num_rows), tables.keys()
    # no column of a raw identifier, and no raw value from the landing zone in any cell
    assert not {c for t in tables.values() for c in t.column_names} & RAW_COLUMNS
    needles = raw_identifiers(demo_lake.landing_dir)
    assert len(needles) > 1000  # the scan has something to look for
    cells = {str(v) for t in tables.values() for c in t.columns for v in c.to_pylist() if v is not None}
    assert not cells & set(needles)
    # no key: neither in what it returns nor in anything it holds
    key_bytes = bytes.fromhex(key_hex)
    forms = {key_hex, key_hex.upper(), base64.b64encode(key_bytes).decode()}
    assert not any(form in cell for cell in cells for form in forms)
    for held in _held(lake):
        assert not isinstance(held, Settings | SecretStr), type(held)
        assert not (isinstance(held, bytes) and key_bytes in held)
        assert not (isinstance(held, str) and any(form in held for form in forms))
    lake.close()


SNAPSHOT_HOLDER = textwrap.dedent(
    """
    import json, sys
    from devicerisk.analytics import open_lake

    lake = open_lake(sys.argv[1], purpose="risk_control")

    def counts():
        return {
            "versions": lake.versions,
            "events": lake.events().count("*").fetchall()[0][0],
            "scores": lake.transaction_scores().count("*").fetchall()[0][0],
            "ledger": lake.ledger().count("*").fetchall()[0][0],
        }

    print(json.dumps(counts()), flush=True)
    sys.stdin.readline()  # the writers run now
    print(json.dumps(counts()), flush=True)
    """
)


def test_an_open_interface_blocks_no_writer(
    prefect_db: Path, env_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = env_settings
    monkeypatch.setenv("DEVICERISK_RISK_LABEL_GAP_DAYS", "1")  # a short lake trains with one-day windows
    monkeypatch.setenv("DEVICERISK_RISK_TEST_DAYS", "1")
    generate(s.landing_dir, SynthConfig(accounts=300, days=4, seed=31, events_per_batch=20_000, fraud_rate=0.2))
    ingest_flow(str(s.data_dir))
    risk_flow(str(s.data_dir))
    holder = subprocess.Popen(
        [sys.executable, "-c", SNAPSHOT_HOLDER, str(s.data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        before = json.loads(holder.stdout.readline())
        assert before["events"] > 0 and before["scores"] > 0 and before["ledger"] > 0
        # a notebook is open in another process: ingest, scoring and the purge run as usual
        generate(s.landing_dir, SynthConfig(accounts=300, days=1, seed=32, start=datetime(2026, 11, 5, tzinfo=UTC)))
        ingested = ingest_flow(str(s.data_dir))
        scored = score_transactions_flow(str(s.data_dir))
        purged = retention_flow(str(s.data_dir))
        assert ingested.accepted > 0 and scored["transactions_scored"] > 0 and purged is not None
        # while a writer holds the warehouse open in this process, a new snapshot still opens (no lock taken)
        with warehouse.connect(s.warehouse_path) as writer:
            writer.execute("CHECKPOINT")
            with open_lake(s.data_dir, purpose="risk_control") as now:
                assert now.ledger().count("*").fetchall()[0][0] > before["ledger"]
                assert now.versions[scores.TRANSACTION_SCORES] > before["versions"][scores.TRANSACTION_SCORES]
        holder.stdin.write("go\n")
        holder.stdin.flush()
        after = json.loads(holder.stdout.readline())
        assert after == before  # the open notebook kept reading its own snapshot
    finally:
        holder.kill()
        holder.wait()


def test_the_warehouse_is_read_while_another_process_holds_it_for_writing(env_settings: Settings) -> None:
    """A DuckDB read-only connection fails while a writer holds the file; the snapshot's copy does not."""
    path = env_settings.warehouse_path
    with warehouse.connect(path) as con:
        con.execute("INSERT INTO anonymous_aggregates VALUES ('2026-11-02', 'operation', 42)")
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
            "c.execute(\"INSERT INTO anonymous_aggregates VALUES ('2026-11-03', 'operation', 7)\"); "
            "print('holding', flush=True); sys.stdin.readline()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "holding"
        with pytest.raises(duckdb.IOException):  # what a notebook's own connection would meet (and cause)
            duckdb.connect(str(path), read_only=True)
        copied = warehouse.read_copy(path, ["anonymous_aggregates"])["anonymous_aggregates"]
        assert sorted(copied.column("events").to_pylist()) == [7, 42]  # the writer's committed row, from its log
    finally:
        writer.kill()
        writer.wait()
