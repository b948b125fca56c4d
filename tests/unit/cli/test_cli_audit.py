"""`devicerisk audit verify` (5.2.3) against what someone who can write the data folder, without the key, can do."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devicerisk.cli import app
from devicerisk.config import Settings
from devicerisk.store import audit
from factories import VERIFIED_OPTIONS, event, write_batch

runner = CliRunner()
ACCOUNT = "acct-audited"


def _run(settings: Settings, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--data-dir", str(settings.data_dir)], env={"COLUMNS": "300"})
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def audited(prefect_db: Path, no_grace_settings: Settings) -> Settings:
    """A data folder whose activity was audited by the commands an operator runs: an ingest, an access request."""
    s = no_grace_settings
    write_batch(s.landing_dir / "telemetry" / "a.ndjson", [event("operation", account_id=ACCOUNT)])
    assert _run(s, "ingest")[0] == 0
    code, out = _run(s, "request", "access", "--account", ACCOUNT, *VERIFIED_OPTIONS)
    assert code == 0 and "completed" in out, out
    code, out = _run(s, "audit", "verify")
    assert code == 0 and "intact: 2 records" in out, out
    return s


def _log(s: Settings) -> list[dict]:
    return [json.loads(line) for line in (s.audit_dir / audit.LOG_NAME).read_text().splitlines()]


def _write(s: Settings, records: list[dict]) -> None:
    """Rewrite the log and its head file consistently, as someone covering their tracks would."""
    (s.audit_dir / audit.LOG_NAME).write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    (s.audit_dir / audit.HEAD_NAME).write_text(f"{records[-1]['seq']} {records[-1]['hash']}\n")


@pytest.mark.parametrize("removed", ["files", "folder"])
def test_clause_5_2_3_a_deleted_audit_log_fails_verify(audited: Settings, removed: str) -> None:
    if removed == "files":
        (audited.audit_dir / audit.LOG_NAME).unlink()
        (audited.audit_dir / audit.HEAD_NAME).unlink()
    else:
        shutil.rmtree(audited.audit_dir)
    code, out = _run(audited, "audit", "verify")
    assert code == 1 and "the log is missing" in out and "request.access" in out and "ingest" in out, out


def test_clause_5_2_3_cutting_the_tail_and_rewriting_the_head_fails_verify(audited: Settings) -> None:
    _write(audited, _log(audited)[:-1])  # the access request's record goes, the head now names the ingest
    code, out = _run(audited, "audit", "verify")
    assert code == 1 and "request.access" in out and "removed from the end" in out, out


def test_clause_5_2_3_an_edit_rechained_with_plain_sha256_fails_verify(audited: Settings) -> None:
    records, prev = _log(audited), audit.GENESIS
    records[0]["counts"]["accepted"] = 0  # the edit
    for record in records:  # then every hash recomputed, as an unkeyed chain allows
        record.pop("hash")
        record["prev"] = prev
        body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        prev = record["hash"] = hashlib.sha256((prev + body).encode()).hexdigest()
    _write(audited, records)
    code, out = _run(audited, "audit", "verify")
    assert code == 1 and "line 1" in out and "without the audit key" in out, out


def test_clause_5_2_3_a_head_kept_off_the_machine_finds_a_cut_the_stores_cannot_tell(audited: Settings) -> None:
    assert _run(audited, "risk", "top")[0] == 0  # a lookup: audited, but no other store records it
    code, out = _run(audited, "audit", "verify")
    head = re.search(r"head (\d+:[0-9a-f]{64})", out)
    assert code == 0 and head, out
    _write(audited, _log(audited)[:-1])
    assert _run(audited, "audit", "verify")[0] == 0  # the limit documented in OPERATIONS.md
    code, out = _run(audited, "audit", "verify", "--head", head.group(1))
    assert code == 1 and "removed from the end" in out, out
