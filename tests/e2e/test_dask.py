"""Scale-out on Dask: ingest and transaction scoring on a ``distributed.LocalCluster`` of two worker processes,
against a real Prefect server on loopback, give the lake the single-process run gives over the same input,
exactly once; and nothing is left running afterwards."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from devicerisk.cli_ops import SERVER, WAREHOUSE_WRITER_TAG, Stack, down, running, serve
from devicerisk.config import Settings
from devicerisk.flows.ingest import ingest_flow
from devicerisk.flows.score import score_transactions_flow
from devicerisk.store import lake, landing, scores, warehouse
from devicerisk.synth import SynthConfig, generate
from factories import alive, champion, free_port, process_tree

ROOT = Path(__file__).resolve().parents[2]
# Columns that say when a row was written, not what it holds: they differ between any two runs.
RUN_TIME = ("ingested_at", "scored_at")
WARM = "import devicerisk.flows.ingest, devicerisk.flows.score"


@pytest.fixture
def server(env_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """A Prefect server on loopback with its own home, in this process's settings and in the environment the
    Dask workers inherit; stopped afterwards, with a check that it is gone."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    s = Stack(tmp_path / "prefect-server", ROOT, free_port())
    try:
        env = serve(s, server_env={"PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"})
        for name in ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_LOGGING_EXTRA_LOGGERS"):
            monkeypatch.setenv(name, env[name])
        with temporary_settings({PREFECT_API_URL: s.api_url}):
            with get_client(sync_client=True) as client:
                client.create_concurrency_limit(tag=WAREHOUSE_WRITER_TAG, concurrency_limit=1)
            try:
                yield s
            finally:
                _stop_prefect_services()
    finally:
        pid = running(s, SERVER)
        down(s)
        assert pid is None or not alive(pid), "the Prefect server was left running"


def _stop_prefect_services() -> None:
    """Flush and stop Prefect's in-process services (events, logs, concurrency slots): each keeps a client on the
    server it first met, and flows run by later tests must start new ones on their own server."""
    from prefect.concurrency.services import ConcurrencySlotAcquisitionWithLeaseService
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (EventsWorker, APILogWorker, ConcurrencySlotAcquisitionWithLeaseService):
        service.drain_all(timeout=60)


def _landing(settings: Settings) -> None:
    """A small synthetic landing zone, with two more batches: one repeating records of the first batch (and one
    of its own twice), one repeating records of the last, each with records that cannot be read or validated."""
    result = generate(
        settings.landing_dir, SynthConfig(accounts=200, days=3, events_per_batch=2000, gzip=False, seed=11)
    )
    first, last = (p.read_bytes().splitlines(keepends=True) for p in (result.batches[0], result.batches[-1]))
    bad = [b"{not json\n", b'{"event_type": "transaction"}\n', b'{"event_id": 7, "event_type": "nonsense"}\n']
    folder = result.batches[0].parent
    (folder / "batch-20261101T0500-extra.ndjson").write_bytes(b"".join([*first[:40], first[5], *bad]))
    (folder / "batch-20261104T2359-extra.ndjson").write_bytes(b"".join([*bad, *last[-30:]]))


def _events(settings: Settings) -> pa.Table:
    table = lake.dataset(settings.lake_dir, lake.EVENTS).to_table()
    return table.drop_columns([c for c in RUN_TIME if c in table.column_names]).sort_by("event_id")


def _scores(settings: Settings) -> pa.Table:
    table = scores.read(settings.lake_dir, scores.TRANSACTION_SCORES)
    assert table is not None
    return table.drop_columns(list(RUN_TIME[1:])).sort_by("event_id")


def _check_exactly_once(settings: Settings) -> dict[str, Any]:
    """Ledger identity per batch, no duplicate event ids in the lake or the scores; returns totals."""
    ledger = warehouse.ledger(settings.warehouse_path).to_pylist()
    assert ledger and all(row["failure"] is None for row in ledger)
    for row in ledger:
        accounted = row["accepted"] + row["quarantined"] + row["consent_dropped"] + row["duplicates"]
        assert row["records_read"] == accounted, row["file_name"]
    events, scored = _events(settings), _scores(settings)
    assert pc.count_distinct(events.column("event_id")).as_py() == events.num_rows
    assert pc.count_distinct(scored.column("event_id")).as_py() == scored.num_rows
    assert sum(row["accepted"] for row in ledger) == events.num_rows
    return {
        "batches": len(ledger),
        "duplicates": sum(row["duplicates"] for row in ledger),
        "quarantined": sum(row["quarantined"] for row in ledger),
    }


def _task_runs(prefix: str) -> int:
    """Completed task runs whose name starts with ``prefix`` (read through the API)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(limit=200)
    return sum(r.name.startswith(prefix) and r.state is not None and r.state.is_completed() for r in runs)


def test_ingest_and_scoring_on_two_dask_workers_match_one_process_exactly_once(
    server: Stack, env_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import Client, LocalCluster

    single = env_settings.model_copy(update={"data_dir": tmp_path / "single"})
    _landing(env_settings)
    shutil.copytree(env_settings.landing_dir, single.landing_dir)
    champion(single.models_dir)
    shutil.copytree(single.models_dir, env_settings.models_dir)  # one champion model for both runs

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None)
    workers: list[int] = []
    try:
        with Client(cluster) as client:
            workers = list(client.run(os.getpid).values())
            # the workers import the flows while the reference runs (they would on their first task)
            warm = [client.submit(exec, WARM, workers=[w], pure=False) for w in client.nthreads()]
            assert len(workers) == 2 and os.getpid() not in workers

            # the reference: today's runner, in this process
            monkeypatch.delenv("DEVICERISK_DASK_ADDRESS", raising=False)
            ingest_flow(str(single.data_dir))
            assert score_transactions_flow(str(single.data_dir), labels=False)["transactions_scored"] > 0
            client.gather(warm)

        monkeypatch.setenv("DEVICERISK_DASK_ADDRESS", cluster.scheduler_address)
        summary = ingest_flow(str(env_settings.data_dir))
        counts = score_transactions_flow(str(env_settings.data_dir), labels=False)
        batches = summary.batches
        assert _task_runs("stage_on_worker") == batches  # staged in the workers' processes
        assert _task_runs("score_slice") == 2  # one slice per worker
        # a re-run on the workers adds nothing
        versions = lake.open_table(env_settings.lake_dir, lake.EVENTS).version()
        again = ingest_flow(str(env_settings.data_dir))
        assert again.batches == 0 and again.records_read == 0
        assert score_transactions_flow(str(env_settings.data_dir), labels=False)["transactions_scored"] == 0
        assert lake.open_table(env_settings.lake_dir, lake.EVENTS).version() == versions
    finally:
        cluster.close()
        monkeypatch.delenv("DEVICERISK_DASK_ADDRESS", raising=False)

    totals = _check_exactly_once(env_settings)
    assert totals == _check_exactly_once(single)
    files = landing.pending_files(env_settings.landing_dir)
    assert totals["batches"] == batches == len(files) and totals["duplicates"] > 0 and totals["quarantined"] >= 6
    assert counts["transactions_scored"] == _scores(env_settings).num_rows
    # the same lake as one process over the same input: every event and every score
    assert _events(env_settings).equals(_events(single))
    assert _scores(env_settings).equals(_scores(single))
    # nothing of the cluster outlives it
    left = [p for p in process_tree(os.getpid()) if p.pid not in before and alive(p.pid) and not _tracker(p)]
    assert left == [] and not [p for p in workers if alive(p)], "Dask processes were left running"


def _tracker(process: psutil.Process) -> bool:
    """Python's multiprocessing resource tracker: started with the first spawned process, it lives as long as the
    process that started it, by design (it cleans up after it)."""
    return "multiprocessing.resource_tracker" in " ".join(process.cmdline())
