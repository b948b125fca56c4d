"""`devicerisk entrust` (4.4) through the real command line: export, list, end, retention verify; no Prefect."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from typer.testing import CliRunner

from devicerisk.cli import app
from devicerisk.config import Settings
from devicerisk.store import audit, processors
from factories import synth_lake

runner = CliRunner()
_PID = re.compile(r"[0-9a-f]{32}")


def _run(settings: Settings, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--data-dir", str(settings.data_dir)], env={"COLUMNS": "300"})
    return result.exit_code, " ".join(result.output.split())


def _entrust_violations(settings: Settings) -> list[str]:
    _, out = _run(settings, "retention", "verify")
    return re.findall(r"entrust (\S+ \([^)]*\))", out)


def test_clause_4_4_entrust_commands_export_list_and_end_an_extract(env_settings: Settings) -> None:
    s = env_settings
    synth_lake(s, accounts=30, days=2)
    until = (datetime.now(UTC).date() + timedelta(days=14)).isoformat()
    args = ["--processor", "acme", "--purpose", "risk_control", "--until", until, "--from", "2026-11-01"]
    code, out = _run(s, "entrust", "export", *args)
    assert code == 0, out
    (entry,) = processors.register(s.data_dir)
    folder = s.data_dir / entry.location
    manifest = json.loads((folder / processors.MANIFEST).read_text())
    assert f"extract {entry.extract_id} for acme (risk_control): {manifest['rows']:,} events" in out
    assert f"key domain {entry.key_domain}; the processor holds it until {until}" in out and str(folder) in out
    assert not _PID.search(out)  # counts and names, never a pseudonym
    assert _entrust_violations(s) == []

    code, out = _run(s, "entrust", "list")
    assert code == 0 and f"acme │ {entry.extract_id} │ risk_control │ active" in out and entry.salt not in out, out

    files = len(manifest["files"]) + 1  # and the manifest
    today = datetime.now(UTC).date().isoformat()
    code, out = _run(s, "entrust", "end", "--processor", "acme", "--actor", "officer-li")
    assert (
        code == 0 and f"ended {today} (revoked); {files} local files removed" in out and "not confirmed yet" in out
    ), out
    assert not folder.exists()
    assert _entrust_violations(s) == [f"acme (ended {today}; the processor's deletion is not confirmed)"]

    code, out = _run(s, "entrust", "end", "--processor", "acme", "--confirmed-by", "dpo-acme")
    assert code == 0 and "deletion confirmed by dpo-acme" in out, out
    assert _entrust_violations(s) == []
    code, out = _run(s, "entrust", "list")
    assert f"{today} revoked by officer-li; confirmed by dpo-acme" in out, out
    actions = [(r["action"], r.get("target")) for r in audit.records(s.audit_dir) if r["action"].startswith("entrust")]
    assert actions == [
        ("entrust.export", "acme"),
        ("entrust.list", None),
        ("entrust.end", "acme"),
        ("entrust.end", "acme"),
        ("entrust.list", None),
    ]


def test_clause_4_4_entrust_refuses_unclear_requests_in_one_line(env_settings: Settings) -> None:
    s = env_settings
    synth_lake(s, accounts=10, days=1)
    records = len(audit.records(s.audit_dir))
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    export = ["entrust", "export", "--processor", "acme"]
    for args, message in [
        ([*export, "--purpose", "marketing", "--until", "2099-01-01"], "error: unknown purpose 'marketing'; the reg"),
        ([*export, "--purpose", "risk_control", "--until", yesterday], f"error: --until {yesterday} is in the past"),
        ([*export, "--purpose", "risk_control", "--until", "soon"], "error: --until is not an ISO date: 'soon'"),
        (["entrust", "end", "--processor", "acme"], "error: the register has no entrustment to 'acme'"),
        (
            ["entrust", "export", "--processor", "a/b", "--purpose", "risk_control", "--until", "2099-01-01"],
            "error: processor name 'a/b' is not a short name",
        ),
    ]:
        code, out = _run(s, *args)
        assert code == 2 and out.startswith(message) and "Traceback" not in out, (args, out)
    assert len(audit.records(s.audit_dir)) == records  # a refused command writes nothing
    assert processors.register(s.data_dir) == []


def test_entrust_commands_need_no_prefect(env_settings: Settings) -> None:
    """The commands run no flow: with no Prefect server to reach and none allowed to start, they work, and Prefect is
    never even imported."""
    s = env_settings
    synth_lake(s, accounts=10, days=1)
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api", "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false"}
    until = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    probe = (
        "import sys\nfrom devicerisk.cli import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
        "print('PREFECT' if 'prefect' in sys.modules else 'NO-PREFECT', code)\n"
    )
    for args in (
        ["entrust", "export", "--processor", "acme", "--purpose", "account_management", "--until", until],
        ["entrust", "list"],
        ["entrust", "end", "--processor", "acme", "--confirmed-by", "dpo-acme"],
    ):
        done = subprocess.run(
            [sys.executable, "-c", probe, *args, "--data-dir", str(s.data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.stdout.strip().endswith("NO-PREFECT 0"), (args, done.stdout, done.stderr)
    assert processors.register(s.data_dir)[0].status == processors.ENDED
