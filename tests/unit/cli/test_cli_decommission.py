"""`devicerisk decommission` (5.1.3) through the real command line: a dry run, then an explicit confirmation."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from devicerisk.cli import app
from devicerisk.config import Settings
from factories import synth_lake

runner = CliRunner()


def _tree(*roots: Path) -> dict[str, str]:
    return {
        str(Path(folder) / name): hashlib.sha256((Path(folder) / name).read_bytes()).hexdigest()
        for root in roots
        for folder, _dirs, names in os.walk(root)
        for name in names
    }


def _run(settings: Settings, *args: str, typed: str | None = None) -> tuple[int, str]:
    argv = ["decommission", *args, "--data-dir", str(settings.data_dir)]
    result = runner.invoke(app, argv, input=typed, env={"COLUMNS": "300"})
    return result.exit_code, " ".join(result.output.split())


def test_clause_5_1_3_decommission_asks_for_the_phrase_and_changes_nothing_without_it(env_settings: Settings) -> None:
    s = env_settings
    synth_lake(s, accounts=30, days=2)
    before = _tree(s.data_dir, s.secrets_dir)
    phrase = f"delete {s.data_dir.resolve()}"

    code, out = _run(s, "--mode", "delete", "--dry-run")
    assert code == 0 and "dry run: nothing was changed" in out, out
    assert all(name in out for name in ("landing", "quarantine", "lake/events", "warehouse"))
    assert "pseudonym key (current)" in out and "destroy" in out
    for args, typed in [
        ([], "delete\n"),  # a phrase that does not name the data directory
        ([], ""),  # end of input
        (["--yes"], None),  # --yes alone: a script must say the phrase too
        (["--yes", "--confirm", f"anonymise {s.data_dir.resolve()}"], None),  # the other mode's phrase
    ]:
        code, out = _run(s, "--mode", "delete", *args, typed=typed)
        assert code == 1 and f"aborted: the confirmation is not '{phrase}'; nothing was changed" in out, (args, out)
        assert _tree(s.data_dir, s.secrets_dir) == before, args
    code, out = _run(s, "--mode", "shred", "--yes", "--confirm", phrase)
    assert code == 2 and "--mode is 'delete' or 'anonymise'" in out and _tree(s.data_dir, s.secrets_dir) == before

    code, out = _run(s, "--mode", "delete", typed=phrase + "\n")
    assert code == 0 and "pseudonym key" in out and "destroyed" in out, out
    receipt = next(s.data_dir.glob("decommission-receipt-*.json"))
    assert f"receipt: {receipt}" in out
    assert json.loads(receipt.read_text())["removed"]["files"] == len(
        [p for p in before if Path(p).is_relative_to(s.data_dir)]
    )
    assert not s.lake_dir.exists() and not s.landing_dir.exists() and list(s.secrets_dir.iterdir()) == []


def test_clause_5_1_3_decommission_starts_no_prefect(env_settings: Settings) -> None:
    """The command runs no flow: a dry run in a fresh interpreter never imports Prefect."""
    synth_lake(env_settings, accounts=10, days=1)
    argv = ["decommission", "--mode", "delete", "--dry-run", "--data-dir", str(env_settings.data_dir)]
    probe = (
        f"import sys\nfrom devicerisk.cli import app\ntry:\n    app({argv!r})\nexcept SystemExit as done:\n"
        "    assert not done.code, done.code\nprint(any(m.startswith('prefect') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=dict(os.environ)
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
