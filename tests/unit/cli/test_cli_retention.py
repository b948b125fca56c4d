"""`devicerisk retention ...` and `devicerisk request ...`: masked output, clear errors, exit codes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

import retention_world as world
from devicerisk.cli import app
from devicerisk.config import Settings
from devicerisk.governance.stores import audit_trail
from devicerisk.store import audit, governance
from factories import VERIFIED_OPTIONS

runner = CliRunner()
COMMANDS = [
    ["retention"],
    ["retention", "purge"],
    ["retention", "verify"],
    ["retention", "rekey-quarantine"],
    ["retention", "hold"],
    ["retention", "hold", "place"],
    ["retention", "hold", "release"],
    ["retention", "hold", "list"],
    ["request"],
    ["request", "access"],
    ["request", "erase"],
    ["request", "cancel"],
    ["request", "withdraw"],
    ["request", "minor"],
    ["request", "resume"],
    ["request", "list"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_retention_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output


@pytest.fixture
def env(no_grace_settings: Settings, prefect_db: Path) -> Settings:
    """Requests take the flows' warehouse-writer slot: on the test's Prefect server, never an ephemeral one that a
    later test's server would not know."""
    return no_grace_settings


def _now() -> datetime:
    return datetime.now(UTC)


def _run(env: Settings, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--data-dir", str(env.data_dir)])
    return result.exit_code, result.output


def test_clause_6_2_2_erase_on_the_command_line_shows_counts_and_no_identifier(env: Settings) -> None:
    w = world.build(env)
    code, out = _run(
        env,
        "request",
        "erase",
        "--account",
        world.SUBJECT.account_id or "",
        "--device",
        f"imei={world.SHARED_IMEI}",
        *VERIFIED_OPTIONS,
    )
    assert code == 0, out
    assert "completed" in out and "lake.events: 11 records" in out
    assert w.subject_pid not in out and world.SHARED_IMEI not in out and world.SUBJECT.account_id not in out
    code, out = _run(env, "request", "list")
    assert code == 0 and "erasure" in out and "completed" in out and "in_person" in out


def test_clause_6_2_1_access_on_the_command_line_exports_a_subject_with_scores(env: Settings) -> None:
    w = world.build(env)  # the subject has events, labels, scores (with a list of reasons) and landing records
    code, out = _run(env, "request", "access", "--account", world.SUBJECT.account_id or "", *VERIFIED_OPTIONS)
    assert code == 0, out
    assert "completed" in out and "lake.scores: 2 records" in out and w.subject_pid not in out
    code, out = _run(env, "request", "resume")
    assert code == 0, out
    code, out = _run(env, "request", "list")
    assert code == 0 and "access" in out and "completed" in out


def test_clause_2_9_4_holds_on_the_command_line_are_masked(env: Settings) -> None:
    w = world.build(env)
    code, out = _run(
        env,
        "retention",
        "hold",
        "place",
        "--account",
        world.SUBJECT.account_id or "",
        "--reason",
        "case 12",
        "--owner",
        "legal-team",
        "--days",
        "30",
    )
    assert code == 0, out
    hold_id = re.search(r"hold-[0-9a-f]{12}", out)
    assert hold_id and w.subject_pid[:8] + "…" in out and w.subject_pid not in out
    code, out = _run(env, "request", "erase", "--account", world.SUBJECT.account_id or "", *VERIFIED_OPTIONS)
    assert code == 2 and "legal hold" in out  # reported, not silently skipped
    code, out = _run(env, "retention", "hold", "list")
    assert code == 0 and "active" in out and w.subject_pid not in out
    assert _run(env, "retention", "hold", "release", hold_id.group(0))[0] == 0


def test_clause_6_4_2_requests_on_the_command_line_say_how_the_requester_was_verified(env: Settings) -> None:
    from devicerisk.governance.verification import make_token
    from devicerisk.privacy.keys import load_verification_key

    w = world.build(env)
    account = world.SUBJECT.account_id or ""
    code, out = _run(env, "request", "erase", "--account", account)
    assert code == 2 and "identity is not verified" in out and "rejected" in out, out
    key = load_verification_key(env)
    assert key is not None
    expired = make_token(key, account, "access", _now() - timedelta(hours=2), timedelta(minutes=30))
    code, out = _run(env, "request", "access", "--account", account, "--token", expired)
    assert code == 2 and "expired" in out and expired not in out, out
    for bad, message in [
        (["--token", "x.y", "--method", "in_person"], "not both"),
        (["--verified-by", "Zhang Min"], "go together"),
        (["--verified-by", "Zhang Min", "--method", "platform_token"], "given as --token"),
    ]:
        code, out = _run(env, "request", "access", "--account", account, *bad)
        assert code == 2 and message in out, (bad, out)
    token = make_token(key, account, "access", _now())
    code, out = _run(env, "request", "access", "--account", account, "--token", token)
    assert code == 0 and "completed" in out and token not in out and w.subject_pid not in out, out
    listed = runner.invoke(app, ["request", "list", "--data-dir", str(env.data_dir)], env={"COLUMNS": "300"})
    assert listed.exit_code == 0 and listed.output.count("rejected") == 2, listed.output
    assert "platform_token" in listed.output and "expired at" in listed.output, listed.output
    rejected = [r for r in audit.records(env.audit_dir) if r["action"].endswith(".rejected")]
    assert [(r["action"], r["counts"]) for r in rejected] == [
        ("request.erasure.rejected", {"unverified": 1}),
        ("request.access.rejected", {"expired_token": 1}),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["request", "access", "--device", "imei=12", *VERIFIED_OPTIONS], "malformed"),
        (["request", "access", "--device", "imei", *VERIFIED_OPTIONS], "KIND=VALUE"),
        (["request", "erase", "--account", "acct-nobody", *VERIFIED_OPTIONS], "no store holds data"),
        (["request", "withdraw", "--purpose", "fun", "--account", "acct-subject", *VERIFIED_OPTIONS], "purpose"),
        (["request", "cancel", "--mode", "shred", "--account", "acct-subject", *VERIFIED_OPTIONS], "anonymise"),
    ],
)
def test_bad_input_on_the_command_line_is_a_clear_error(env: Settings, args: list[str], message: str) -> None:
    world.build(env)
    code, out = _run(env, *args)
    assert code == 2 and message in out, out


def test_bad_input_tampered_audit_log_fails_verify_and_says_where(env: Settings) -> None:
    for i in range(3):
        audit.append(audit_trail(env), actor="x", role="y", action="z", purpose="retention", counts={"n": i})
    log = env.audit_dir / audit.LOG_NAME
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], lines[1].replace('"n": 1', '"n": 7'), lines[2]]) + "\n")
    code, out = _run(env, "audit", "verify")
    assert code == 1 and "line 2" in out and "edited" in out


def test_bad_input_retention_config_with_a_negative_period_stops_the_command(
    env: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "retention.toml"
    config.write_text("[periods]\nlanding_raw = -3\n")
    monkeypatch.setenv("DEVICERISK_RETENTION_CONFIG", str(config))
    for args in (["retention", "verify"], ["request", "access", "--account", "acct-subject", *VERIFIED_OPTIONS]):
        code, out = _run(env, *args)
        assert code == 2 and "retention period of 'landing_raw' is negative" in out, out


def test_clause_6_2_2_a_request_on_the_command_line_waits_for_the_warehouse_writer_lock(env: Settings) -> None:
    """Another process writes the warehouse (as a flow's task does, holding its lock): the request waits its turn."""
    import subprocess
    import sys
    import threading

    world.build(env)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from devicerisk.store import writer\n"
            f"with writer.hold(Path({str(env.warehouse_path)!r})):\n"
            "    print('ready', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None and holder.stdout.readline().strip() == "ready"
    result: list[tuple[int, str]] = []
    worker = threading.Thread(
        target=lambda: result.append(
            _run(env, "request", "access", "--account", world.SUBJECT.account_id or "", *VERIFIED_OPTIONS)
        )
    )
    worker.start()
    worker.join(timeout=3)
    still_waiting = worker.is_alive() and governance.requests(env.warehouse_path) == []
    holder.stdin.close()
    holder.wait(timeout=30)
    worker.join(timeout=60)
    assert still_waiting  # it waited for the lock instead of failing on DuckDB's
    assert result and result[0][0] == 0 and "completed" in result[0][1], result


LOOKUPS = [
    ["request", "access", "--account", world.SUBJECT.account_id or "", *VERIFIED_OPTIONS],
    ["request", "list"],
    ["retention", "verify"],
    ["retention", "hold", "list"],
    ["risk", "top"],
    ["audit", "verify"],
    ["ledger"],
    ["quarantine"],
]


def test_commands_that_run_no_flow_need_no_prefect_server(no_grace_settings: Settings) -> None:
    """With the API at an address nothing listens on and no ephemeral server allowed, each command still works:
    none of them talks to Prefect (a request used to start a server, which took minutes on a loaded machine)."""
    import os
    import subprocess
    import sys

    world.build(no_grace_settings)
    env = {
        **os.environ,
        "PREFECT_API_URL": "http://127.0.0.1:9/api",  # the discard port: nothing answers
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
    }
    for args in LOOKUPS:
        done = subprocess.run(
            [sys.executable, "-m", "devicerisk.cli", *args, "--data-dir", str(no_grace_settings.data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode in (0, 1) and "error:" not in done.stderr, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and "prefect" not in done.stderr.lower(), (args, done.stderr)
    assert [r.status for r in governance.requests(no_grace_settings.warehouse_path)] == ["completed"]
