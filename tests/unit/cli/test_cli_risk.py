"""The ``devicerisk risk`` commands: help, clear errors, masked identifiers."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from devicerisk.cli import app
from devicerisk.config import Settings
from devicerisk.store import registry, serving

runner = CliRunner()


@pytest.mark.parametrize("command", [["risk"], ["risk", "train"], ["risk", "score"], ["risk", "top"], ["risk", "card"]])
def test_every_risk_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_card_of_an_unknown_version_is_a_clear_error(tmp_path: Path) -> None:
    registry.save(tmp_path / "models", "v1", {}, {"version": "v1"}, {"card.md": b"# card v1"})
    ok = runner.invoke(app, ["risk", "card", "--data-dir", str(tmp_path), "--version", "v1"])
    assert ok.exit_code == 0 and "card v1" in ok.output
    bad = runner.invoke(app, ["risk", "card", "--data-dir", str(tmp_path), "--version", "v9"])
    assert bad.exit_code == 1 and "no model version 'v9'" in bad.output


def test_top_accounts_are_masked(env_settings: Settings) -> None:
    tmp_path = env_settings.data_dir
    pid = "0123456789abcdef0123456789abcdef"
    serving.publish(
        tmp_path / "serving",
        serving.ACCOUNTS,
        pa.table(
            {
                "account_id_pid": [pid],
                "score": [97.5],
                "level": ["highest"],
                "reasons": [["device seen on 14 accounts in 24 h"]],
                "model_version": ["v1"],
                "model_kind": ["supervised"],
            }
        ),
    )
    result = runner.invoke(app, ["risk", "top", "--data-dir", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "01234567…" in result.output and pid not in result.output
    assert "device seen on 14 accounts in 24 h" in result.output


def test_clause_5_2_3_a_score_lookup_leaves_an_audit_record(env_settings: Settings) -> None:
    from devicerisk.governance.stores import audit_trail
    from devicerisk.store import audit

    tmp_path = env_settings.data_dir
    serving.publish(
        tmp_path / "serving",
        serving.ACCOUNTS,
        pa.table(
            {
                "account_id_pid": ["0123456789abcdef0123456789abcdef"],
                "score": [97.5],
                "level": ["highest"],
                "reasons": [["emulator model string"]],
                "model_version": ["v1"],
                "model_kind": ["supervised"],
            }
        ),
    )
    result = runner.invoke(app, ["risk", "top", "--data-dir", str(tmp_path), "--actor", "analyst-7"])
    assert result.exit_code == 0, result.output
    [record] = [r for r in audit.records(tmp_path / "audit") if r["action"] == "lookup_top_accounts"]
    assert (
        record["actor"] == "analyst-7"
        and record["role"] == "fraud_analyst"
        and record["counts"] == {"accounts_shown": 1}
    )
    assert audit.verify(audit_trail(env_settings)) == []


def test_the_score_summary_matches_the_lake(settings: Settings) -> None:
    """The run's counts of each score stay apart (transactions vs accounts), beside what the lake holds."""
    from datetime import UTC, date, datetime

    from rich.console import Console

    from devicerisk import cli_risk
    from devicerisk.store import scores

    levels = ["highest"] * 3 + ["elevated"] * 2 + ["normal"] * 5
    scores.append(
        settings.lake_dir,
        scores.TRANSACTION_SCORES,
        pa.table({"event_id": [f"e{i}" for i in range(10)], "level": levels, "event_date": [date(2026, 11, 1)] * 10}),
        "r1",
    )
    for as_of, level in ((datetime(2026, 11, 1, tzinfo=UTC), "highest"), (datetime(2026, 11, 2, tzinfo=UTC), "normal")):
        scores.append(
            settings.lake_dir,
            scores.ACCOUNT_SCORES,
            pa.table(
                {
                    "account_id_pid": ["a", "b"],
                    "as_of": [as_of] * 2,
                    "level": [level, "elevated"],
                    "event_date": [as_of.date()] * 2,
                }
            ),
            f"a{as_of:%d}",
        )
    console = Console(record=True, width=250)
    old, cli_risk.console = cli_risk.console, console
    try:
        cli_risk.print_score_summary(
            settings, {"transactions_scored": 4, "highest": 1}, {"accounts_scored": 2, "highest": 6}
        )
    finally:
        cli_risk.console = old
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in console.export_text().splitlines()
        if line.count("│") > 3
    }
    txn = next(v for k, v in rows.items() if k.startswith("transactions"))
    acc = next(v for k, v in rows.items() if k.startswith("accounts"))
    assert txn == ["4", "1", "10", "3", "2", "5"]
    assert acc == ["2", "6", "2", "0", "1", "1"]  # the newest as_of only
