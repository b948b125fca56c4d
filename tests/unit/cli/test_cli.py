"""The command line: help everywhere, clear errors, and the commands operators run."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from devicerisk.cli import app
from devicerisk.config import Settings
from factories import event, write_batch

runner = CliRunner()
COMMANDS = [
    [],
    ["synth"],
    ["ingest"],
    ["demo"],
    ["ledger"],
    ["quarantine"],
    ["leak-scan"],
    ["contract"],
    ["contract", "docs"],
    ["audit"],
    ["audit", "verify"],
    ["audit", "show"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "top")
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_contract_docs_check_passes_on_the_committed_docs() -> None:
    docs = Path(__file__).resolve().parents[3] / "docs"
    result = runner.invoke(app, ["contract", "docs", "--check", "--out", str(docs)])
    assert result.exit_code == 0, result.output


def test_contract_docs_check_fails_on_stale_docs(tmp_path: Path) -> None:
    (tmp_path / "data-contract.md").write_text("stale")
    result = runner.invoke(app, ["contract", "docs", "--check", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "out of date" in result.output


def test_synth_rejects_bad_arguments(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "--accounts", "0", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "accounts" in result.output


def test_synth_writes_batches(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "--accounts", "50", "--days", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert list((tmp_path / "telemetry").glob("batch-*.ndjson.gz"))


def test_leak_scan_exits_non_zero_on_a_leak(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_batch(data / "landing" / "telemetry" / "b.ndjson", [event("operation")])
    (data / "lake").mkdir(parents=True)
    clean = runner.invoke(app, ["leak-scan", "--data-dir", str(data)])
    assert clean.exit_code == 0, clean.output
    (data / "lake" / "oops.json").write_text('{"imei": "352099001761481"}')
    leaked = runner.invoke(app, ["leak-scan", "--data-dir", str(data)])
    assert leaked.exit_code == 1 and "device.imei" in leaked.output


def test_ledger_and_quarantine_show_accounting_and_reasons_without_values(settings, ctx) -> None:
    from devicerisk.ingest.pipeline import ingest_batch

    bad = event("operation")
    bad["payload"]["duration_ms"] = "12"
    ingest_batch(write_batch(settings.landing_dir / "telemetry" / "b.ndjson", [event("operation"), bad]), ctx)
    shown = runner.invoke(app, ["ledger", "--data-dir", str(settings.data_dir)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "b.ndjson" in shown.output
    reasons = runner.invoke(app, ["quarantine", "--data-dir", str(settings.data_dir)], env={"COLUMNS": "200"})
    assert reasons.exit_code == 0 and "wrong type for payload.duration_ms" in reasons.output
    assert "352099001761481" not in reasons.output and "acct-000001" not in reasons.output


def test_ledger_answers_while_a_writer_holds_the_warehouse(settings, ctx) -> None:
    """An operator looks at the accounting while ingest writes: the command reads a copy, and takes no lock."""
    import subprocess
    import sys

    from devicerisk.ingest.pipeline import ingest_batch

    ingest_batch(write_batch(settings.landing_dir / "telemetry" / "b.ndjson", [event("operation")]), ctx)
    hold = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(120)"
    writer = subprocess.Popen([sys.executable, "-c", hold, str(settings.warehouse_path)], stdout=subprocess.PIPE)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == b"held"
        shown = runner.invoke(app, ["ledger", "--data-dir", str(settings.data_dir)], env={"COLUMNS": "200"})
    finally:
        writer.kill()
        writer.wait()
    assert shown.exit_code == 0, shown.output
    assert "b.ndjson" in shown.output


def test_audit_verify_says_where_the_log_was_tampered_with(env_settings: Settings) -> None:
    from devicerisk.governance.stores import audit_trail
    from devicerisk.store import audit

    for n in range(3):
        audit.append(
            audit_trail(env_settings),
            actor="ingest-flow",
            role="pipeline",
            action="ingest",
            purpose="risk_control",
            counts={"accepted": n},
        )
    data = str(env_settings.data_dir)
    ok = runner.invoke(app, ["audit", "verify", "--data-dir", data])
    assert ok.exit_code == 0 and "3 records" in ok.output
    log = env_settings.audit_dir / audit.LOG_NAME
    log.write_text(log.read_text().replace('"accepted":1', '"accepted":7').replace('"accepted": 1', '"accepted": 7'))
    bad = runner.invoke(app, ["audit", "verify", "--data-dir", data], env={"COLUMNS": "200"})
    assert bad.exit_code == 1 and "line 2" in bad.output
