"""`devicerisk incident report` (5.3.3) through the real command line: no Prefect server, one-line errors."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from devicerisk.cli import app
from devicerisk.config import Settings
from devicerisk.store import audit
from factories import QUARANTINED_ACCOUNT, synth_lake

runner = CliRunner()


def _run(settings: Settings, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--data-dir", str(settings.data_dir)], env={"COLUMNS": "300"})
    return result.exit_code, " ".join(result.output.split())


def test_clause_5_3_3_incident_report_command_writes_the_report_and_audits_it(env_settings: Settings) -> None:
    s = env_settings
    synth_lake(s, accounts=30, days=2)
    code, out = _run(s, "incident", "report", "--store", "events", "--from", "2026-11-01", "--to", "2026-11-02T06:00")
    assert code == 0, out
    folder = next((s.data_dir / "incidents").iterdir())
    assert f"report: {folder / 'report.md'}" in out and f"{folder / 'incident.json'}" in out
    report = json.loads((folder / "incident.json").read_text())
    n = report["subjects"]["count"]
    assert n > 0 and f"subjects: {n:,}" in out
    assert not re.search(r"[0-9a-f]{32}", out)  # the console shows counts, never a pseudonym
    assert audit.records(s.audit_dir)[-1]["action"] == "incident.report"

    code, out = _run(s, "incident", "report", "--store", "quarantine", "--actor", "officer-bo")
    assert code == 0 and "1 rows exposed" in out and QUARANTINED_ACCOUNT not in out, out
    assert audit.records(s.audit_dir)[-1]["actor"] == "officer-bo"


def test_clause_5_3_3_incident_report_refuses_unclear_requests_in_one_line(env_settings: Settings) -> None:
    s = env_settings
    records = len(audit.records(s.audit_dir))
    for args, message in [
        (["--store", "lake"], "error: unknown store 'lake'; the stores are: account_scores, events, labels"),
        (["--store", "events", "--from", "2026-11-03", "--to", "2026-11-02"], "error: the exposure window is empty"),
        (["--store", "events", "--from", "yesterday"], "error: not an ISO 8601 date or time: 'yesterday'"),
        ([], "error: name the exposed store"),
        (["--files", "nowhere.parquet"], "error: no such file: nowhere.parquet"),
    ]:
        code, out = _run(s, "incident", "report", *args)
        assert code == 2 and out.startswith(message) and "Traceback" not in out, (args, out)
    assert len(audit.records(s.audit_dir)) == records  # a refused investigation writes nothing
    assert not (s.data_dir / "incidents").exists()
