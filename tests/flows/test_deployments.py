"""prefect.yaml: every deployment deploys (a flow, a pool, job variables, a limit), and the schedule is one plan."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect import Flow
from prefect.flows import load_flow_from_entrypoint

from devicerisk.flows.tasks import WAREHOUSE_WRITER, lock_error_only, rewrites, writes
from devicerisk.store import writer

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "prefect.yaml").read_text())
DEPLOYMENTS = {d["name"]: d for d in SPEC["deployments"]}


def _flow(deployment: dict[str, Any]) -> Flow[..., Any]:
    flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))  # by file path, as a worker loads it
    assert isinstance(flow, Flow), deployment["name"]
    return flow


@pytest.mark.parametrize("name", DEPLOYMENTS)
def test_every_deployment_deploys(name: str) -> None:
    """What `prefect deploy --all` needs of each: a flow, a schedule, the pool, the log variable, one run at a time."""
    d = DEPLOYMENTS[name]
    _flow(d)
    assert d["schedules"], name
    assert d["parameters"] == {}, "keys and settings come from the environment, not parameters"
    assert d["work_pool"]["name"] == "devicerisk"
    assert d["work_pool"]["job_variables"]["env"]["PREFECT_LOGGING_EXTRA_LOGGERS"] == "devicerisk"
    assert d["concurrency_limit"] == 1


def test_the_working_directory_needs_no_variable() -> None:
    """No pull step built from an environment variable: `prefect deploy` records the project folder."""
    text = (ROOT / "prefect.yaml").read_text()
    assert "pull" not in SPEC and "{{ $" not in text


def _work(d: dict[str, Any]) -> set[str]:
    """What a scheduled run of ``d`` does, read from its flow's parameter defaults (deployments pass none)."""
    params = {n: p.default for n, p in inspect.signature(_flow(d).fn).parameters.items()}
    if d["entrypoint"] == "flows/pipeline.py:pipeline_flow":
        return (
            {"ingest", "transaction scores"}
            | ({"account scores"} if params["accounts"] else set())
            | ({"purge"} if params["purge"] else set())
        )
    return {
        "flows/train.py:train_flow": {"training"},
        "flows/retention.py:retention_flow": {"purge"},
        "flows/score.py:score_accounts_flow": {"account scores"},
        "flows/requests.py:request_flow": {"requests"},
    }[d["entrypoint"]]


def test_the_schedule_does_each_piece_of_work_in_one_deployment_only() -> None:
    seen: dict[str, list[str]] = {}
    for name, d in DEPLOYMENTS.items():
        for piece in _work(d):
            seen.setdefault(piece, []).append(name)
    assert {piece: len(names) for piece, names in seen.items()} == dict.fromkeys(
        ("ingest", "transaction scores", "account scores", "training", "purge", "requests"), 1
    ), seen


def test_clause_5_1_2_the_purge_runs_daily() -> None:
    (daily,) = (d for d in DEPLOYMENTS.values() if d["entrypoint"] == "flows/retention.py:retention_flow")
    assert [s["cron"].split()[2:] for s in daily["schedules"]] == [["*", "*", "*"]]  # once a day


def test_the_operations_doc_has_the_schedule_of_every_deployment() -> None:
    doc = (ROOT / "docs" / "OPERATIONS.md").read_text()
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `([a-z0-9-]+)` \| ([^|]+) \|", doc, flags=re.M)}
    assert set(DEPLOYMENTS) <= set(rows), set(DEPLOYMENTS) - set(rows)
    for name, d in DEPLOYMENTS.items():
        schedule = d["schedules"][0]
        assert (schedule.get("cron") or f"every {schedule['interval'] // 60} minutes") in rows[name], name


def test_warehouse_writing_tasks_carry_the_tag_and_retry_lock_errors_only(tmp_path: Path) -> None:
    """A DuckDB lock error (another process has the warehouse) is retried with growing waits; a bug is not."""
    from prefect import flow

    from devicerisk.store import warehouse

    calls: list[str] = []
    path = tmp_path / "warehouse.duckdb"

    @writes
    def locked_then_fine() -> str:
        calls.append("locked")
        if len(calls) < 3:
            raise writer.WarehouseBusy("another process has been writing the warehouse")
        return "written"

    @writes
    def broken() -> None:
        calls.append("broken")
        raise ValueError("a bug, not a lock")

    @flow
    def run() -> tuple[str, bool]:
        fast = {"retry_delay_seconds": 0}
        result = locked_then_fine.with_options(**fast)()
        failed = broken.with_options(**fast)(return_state=True).is_failed()
        return result, failed

    with warehouse.connect(path):
        pass
    assert run() == ("written", True)
    assert calls == ["locked", "locked", "locked", "broken"]  # retried twice on the lock, never on the bug
    for preset in (writes, rewrites):
        t = preset(lambda: None)
        assert WAREHOUSE_WRITER in t.tags and t.retries >= 5
        assert t.retry_delay_seconds == [2, 4, 8, 16, 32, 64][: t.retries]  # exponential backoff
    assert rewrites(lambda: None).retry_condition_fn is not lock_error_only  # idempotent: others retried too
