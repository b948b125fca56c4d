"""The operator's path, end to end: `devicerisk up` brings up a real Prefect server on loopback, the pool, the
limit, every deployment of prefect.yaml and a process worker; each deployment is triggered through the API and
runs in the worker's own flow-run process; then what each wrote is checked in the stores, its artifacts and the
library's logs are read back through the API, and the server's database is scanned for raw identifiers.
`devicerisk down` stops it all."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psutil
import pytest

from devicerisk.cli_ops import SERVER, WORKER, Stack, down, running, up
from devicerisk.config import Settings
from devicerisk.governance import requests
from devicerisk.governance.stores import stores_for
from devicerisk.governance.subjects import Identifiers
from devicerisk.privacy.leakscan import scan_data_dir
from devicerisk.store import audit, governance, lake, registry, scores, warehouse
from devicerisk.synth import SynthConfig, generate
from factories import alive, free_port, process_tree, verified

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 900  # seconds for one flow run, start-up included; a run that takes longer fails the test


@pytest.fixture
def stack(env_settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    """The stack `devicerisk up` starts, in a temporary state folder; stopped, every process, afterwards."""
    s = Stack(tmp_path / "prefect-server", ROOT, free_port())
    pids: list[int] = []
    try:
        up(
            s,
            extra_env={
                "DEVICERISK_DATA_DIR": str(env_settings.data_dir),  # the worker's flow runs use the test's stores
                "DEVICERISK_VACUUM_GRACE_HOURS": "0",  # so the requests flow completes an erasure now
                "PREFECT_WORKER_QUERY_SECONDS": "1",
            },
            server_env={"PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"},  # only the runs the test triggers
        )
        pids = [p for p in (running(s, SERVER), running(s, WORKER)) if p is not None]
        assert len(pids) == 2, "the server and the worker run"
        yield s
    finally:
        group = [c.pid for p in pids for c in process_tree(p)]
        assert set(down(s)) >= ({SERVER, WORKER} if pids else set())
        assert [p for p in [*pids, *group] if psutil.pid_exists(p) and alive(p)] == [], "down left processes"


def _trigger(s: Stack, name: str) -> UUID:
    """Run deployment ``name`` through the API and wait for it; fail with the worker's log if it did not complete."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: s.api_url}):
        run = run_deployment(name, timeout=RUN_TIMEOUT, poll_interval=2)
    state = run.state
    log = s.log_file(WORKER).read_text(errors="replace")[-4000:]
    assert state is not None and state.is_completed(), f"{name}: {state}\nworker log:\n{log}"
    return run.id


def _with_subflows(client: Any, run_id: UUID) -> list[UUID]:
    """A flow run's id and those of its subflow runs, and theirs."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    runs, parents = [run_id], [run_id]
    while parents:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=parents))
        )
        parents = [r.id for r in children if r.id not in runs]
        runs += parents
    return runs


def _artifacts(s: Stack, run_id: UUID) -> dict[str, Any]:
    """The artifacts of a flow run and its subflow runs, by key, as the API returns them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: s.api_url}), get_client(sync_client=True) as client:
        runs = _with_subflows(client, run_id)
        found = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=runs)))
    return {a.key: a.data for a in found if a.key}


def _library_logs(s: Stack, run_id: UUID) -> list[str]:
    """Lines of the library's own loggers (``devicerisk.*``) in the logs of a flow run and its subflows (API)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: s.api_url}), get_client(sync_client=True) as client:
        runs = _with_subflows(client, run_id)
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=runs)))
    return [entry.message for entry in logs if entry.name.startswith("devicerisk")]


def _an_account(landing: Path) -> str:
    """A raw account id from the first landing batch, to file a request about."""
    batch = sorted((landing / "telemetry").glob("*.ndjson.gz"))[0]
    with gzip.open(batch, "rt") as fh:
        for line in fh:
            if (account := json.loads(line).get("account_id")) is not None:
                return str(account)
    raise AssertionError("no account in the first batch")


def test_every_deployment_runs_on_a_server_brought_up_by_devicerisk_up(env_settings: Settings, stack: Stack) -> None:
    s = env_settings
    generate(s.landing_dir, SynthConfig(accounts=500, days=5, seed=23, events_per_batch=20_000, fraud_rate=0.2))

    pipeline = _trigger(stack, "pipeline/pipeline-every-15-minutes")
    ledger = warehouse.ledger(s.warehouse_path).to_pylist()
    assert ledger and all(r["failure"] is None for r in ledger)
    events = lake.dataset(s.lake_dir, lake.EVENTS)
    assert events is not None and events.count_rows() == sum(r["accepted"] for r in ledger) > 0
    first_model = registry.champion(s.models_dir)
    assert first_model is not None  # no model yet: the pipeline trained one first
    txn = scores.read(s.lake_dir, scores.TRANSACTION_SCORES)
    assert txn is not None and txn.num_rows > 0
    assert scores.read(s.lake_dir, scores.ACCOUNT_SCORES) is None  # accounts are the daily deployment's work
    made = _artifacts(stack, pipeline)
    assert {"ingest-summary", "quarantine-reasons", "model-card", "score-transactions"} <= set(made), set(made)
    assert "data:image/png;base64," in made["model-card"] and "file://" not in made["model-card"]
    assert f"{sum(r['accepted'] for r in ledger):,}" in made["ingest-summary"]
    logged = _library_logs(stack, pipeline)
    assert any("trained" in line for line in logged), logged  # the library's INFO lines reach the flow run's logs

    train = _trigger(stack, "train/train-weekly")
    assert len(registry.versions(s.models_dir)) == 2
    assert "model-card" in _artifacts(stack, train)

    accounts = _trigger(stack, "score-accounts/score-accounts-daily")
    account_scores = scores.read(s.lake_dir, scores.ACCOUNT_SCORES)
    assert account_scores is not None and account_scores.num_rows > 0
    top = _artifacts(stack, accounts)["top-risk-accounts"]
    pids = set(account_scores.column("account_id_pid").to_pylist())
    assert "| account | score |" in top and not any(pid in top for pid in pids)  # masked

    stores = stores_for(s.model_copy(update={"vacuum_grace_hours": 1}))  # waits for the grace: left pending
    account = _an_account(s.landing_dir)
    pending = requests.submit(
        stores,
        requests.RequestKind.ERASURE,
        Identifiers(account_id=account),
        datetime.now(UTC),
        verification=verified(),
    )
    assert pending.status != requests.Status.COMPLETED
    resumed = _trigger(stack, "requests/requests-hourly")
    (done,) = [r for r in governance.requests(s.warehouse_path) if r.request_id == pending.request_id]
    assert done.status == requests.Status.COMPLETED  # the worker's flow run has no grace period
    assert pending.request_id in json.dumps(_artifacts(stack, resumed)["requests-resumed"])

    purge = _trigger(stack, "retention/retention-daily")
    assert [r for r in audit.records(s.audit_dir) if r["action"] == "retention.purge"]
    assert "| files_vacuumed |" in _artifacts(stack, purge)["retention-purge"]

    database = stack.state / "home" / "prefect.db"  # logs, artifacts, parameters: no raw identifier anywhere
    report = scan_data_dir(s.data_dir, extra_files=[database])
    assert report.values > 10_000 and report.findings == [], report.findings[:10]
