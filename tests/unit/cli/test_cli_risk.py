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
    serving.publish(tmp_path / "serving", serving.ACCOUNTS, pa.table({
        "account_id_pid": [pid], "score": [97.5], "level": ["highest"],
        "reasons": [["device seen on 14 accounts in 24 h"]], "model_version": ["v1"], "model_kind": ["supervised"],
    }))  # fmt: skip
    result = runner.invoke(app, ["risk", "top", "--data-dir", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "01234567…" in result.output and pid not in result.output
    assert "device seen on 14 accounts in 24 h" in result.output


def test_clause_5_2_3_a_score_lookup_leaves_an_audit_record(env_settings: Settings) -> None:
    from devicerisk.privacy.stores import audit_trail
    from devicerisk.store import audit

    tmp_path = env_settings.data_dir
    serving.publish(tmp_path / "serving", serving.ACCOUNTS, pa.table({
        "account_id_pid": ["0123456789abcdef0123456789abcdef"], "score": [97.5], "level": ["highest"],
        "reasons": [["emulator model string"]], "model_version": ["v1"], "model_kind": ["supervised"],
    }))  # fmt: skip
    result = runner.invoke(app, ["risk", "top", "--data-dir", str(tmp_path), "--actor", "analyst-7"])
    assert result.exit_code == 0, result.output
    [record] = [r for r in audit.records(tmp_path / "audit") if r["action"] == "lookup_top_accounts"]
    assert (
        record["actor"] == "analyst-7"
        and record["role"] == "fraud_analyst"
        and record["counts"] == {"accounts_shown": 1}
    )
    assert audit.verify(audit_trail(env_settings)) == []
