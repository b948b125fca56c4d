"""Dask benchmark: ingest and transaction scoring on the Dask runner with 1 and 2 worker processes, at 1x and 10x
the events, against the single-process runner measured in the same run, all on a real Prefect server on loopback.

Every job runs the real flows (``ingest``, then ``score-transactions``) on a fresh data folder whose landing zone
holds the same synthetic batches (hard links) and whose registry holds the same champion model, trained once
beforehand. The Dask clusters are started, and their workers have imported the flows, before the clock starts:
the figures are the work, not the start-up. Jobs are interleaved round by round and each keeps its fastest run.
Usage:

    .venv/bin/python bench/dask_bench.py --accounts 1000 --days 7 --scale 10 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(tempfile.gettempdir()) / "devicerisk-dask-bench"
OUT = Path(__file__).parent / "out"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keys(folder: Path) -> dict[str, str]:
    """Key files for the run (outside every data folder), as the environment the flows and workers read."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    env = {"DEVICERISK_MODE": "production", "DEVICERISK_SECRETS_DIR": str(folder)}
    for name in ("pseudonym", "quarantine", "audit"):
        path = folder / f"{name}.key"
        if not path.exists():
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        env[f"DEVICERISK_{name.upper()}_KEY_FILE"] = str(path)
    return env


def _landing(accounts: int, days: int, seed: int) -> tuple[Path, int]:
    """A synthetic landing zone, generated once and kept between runs; returns it and its event count."""
    from devicerisk.synth import SynthConfig, generate

    folder = WORK / f"landing-{accounts}-{days}-{seed}"
    marker = folder / ".events"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        config = SynthConfig(accounts=accounts, days=days, seed=seed, events_per_batch=50_000, gzip=False)
        marker.parent.mkdir(parents=True, exist_ok=True)
        events = generate(folder, config).events
        marker.write_text(str(events))
    return folder, int(marker.read_text())


def _champion(landing: Path) -> Path:
    """A registry with one champion, trained once on the 1x lake (outside the measured jobs)."""
    from devicerisk.config import Settings
    from devicerisk.ingest.pipeline import ingest_batches
    from devicerisk.ingest.runtime import ingest_context
    from devicerisk.risk.service import RiskStores, TrainingPlan, train_and_register
    from devicerisk.store import landing as landing_store

    models = WORK / f"models-{landing.name}"
    if not (models / ".trained").exists():
        scratch = WORK / "train"
        shutil.rmtree(scratch, ignore_errors=True)
        settings = Settings.at(scratch)
        shutil.copytree(landing, settings.landing_dir, copy_function=os.link)
        ctx = ingest_context(settings)
        list(ingest_batches(landing_store.pending_files(settings.landing_dir), ctx))
        train_and_register(RiskStores.of(settings), TrainingPlan.of(settings))
        shutil.rmtree(models, ignore_errors=True)
        shutil.copytree(settings.models_dir, models)
        shutil.rmtree(scratch, ignore_errors=True)
        (models / ".trained").touch()
    return models


def _fresh(landing: Path, models: Path, name: str) -> Path:
    """A new data folder: the landing zone's files (hard links) and the champion registry."""
    data = WORK / "runs" / name
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True, mode=0o700)
    shutil.copytree(landing, data / "landing", copy_function=os.link, ignore=shutil.ignore_patterns(".events"))
    shutil.copytree(models, data / "models", ignore=shutil.ignore_patterns(".trained"))
    return data


@contextmanager
def _runner(workers: int) -> Iterator[str | None]:
    """The Dask scheduler address of a LocalCluster of ``workers`` processes (one thread each), warmed up; with 0
    workers, None (the single-process runner)."""
    if workers == 0:
        os.environ.pop("DEVICERISK_DASK_ADDRESS", None)
        yield None
        return
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    try:
        with Client(cluster) as client:
            client.run(exec, "import devicerisk.flows.ingest, devicerisk.flows.score")
        os.environ["DEVICERISK_DASK_ADDRESS"] = cluster.scheduler_address
        yield cluster.scheduler_address
    finally:
        os.environ.pop("DEVICERISK_DASK_ADDRESS", None)
        cluster.close()


def _job(data: Path) -> dict[str, Any]:
    """Ingest then score transactions with the flows, on the runner the environment names; seconds of each."""
    from devicerisk.flows.ingest import ingest_flow
    from devicerisk.flows.score import score_transactions_flow

    start = time.perf_counter()
    summary = ingest_flow(str(data))
    middle = time.perf_counter()
    counts = score_transactions_flow(str(data), labels=False)
    end = time.perf_counter()
    return {
        "events": summary.accepted,
        "batches": summary.batches,
        "scored": counts["transactions_scored"],
        "ingest_s": middle - start,
        "score_s": end - middle,
        "total_s": end - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000, help="accounts at 1x (10x has scale times more)")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    WORK.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ.update(_keys(WORK / "secrets"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from devicerisk.cli_ops import WAREHOUSE_WRITER_TAG, Stack, down, serve

    stack = Stack(WORK / "prefect-server", ROOT, _free_port())
    shutil.rmtree(stack.state, ignore_errors=True)
    try:
        env = serve(stack, server_env={"PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false"})
        for name in ("PREFECT_HOME", "PREFECT_API_URL", "PREFECT_LOGGING_EXTRA_LOGGERS"):
            os.environ[name] = env[name]  # before prefect is imported here, and inherited by the Dask workers
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            client.create_concurrency_limit(tag=WAREHOUSE_WRITER_TAG, concurrency_limit=1)
        sizes = {"1x": _landing(args.accounts, args.days, args.seed)}
        sizes[f"{args.scale}x"] = _landing(args.accounts * args.scale, args.days, args.seed)
        models = _champion(sizes["1x"][0])
        runs: dict[str, list[dict[str, Any]]] = {}
        for n in range(args.rounds):
            for workers in (0, 1, 2):
                with _runner(workers):
                    for size, (landing, _) in sizes.items():
                        name = f"{'single process' if workers == 0 else f'dask, {workers} worker(s)'}, {size}"
                        result = _job(_fresh(landing, models, f"{workers}-{size}"))
                        runs.setdefault(name, []).append(result)
                        print(f"round {n + 1}: {name}: {json.dumps({k: round(v, 2) for k, v in result.items()})}")
    finally:
        down(stack)
    best = {name: min(results, key=lambda r: r["total_s"]) for name, results in runs.items()}
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "args": vars(args),
        "events": {size: events for size, (_, events) in sizes.items()},
        "best": best,
        "all_total_s": {name: [round(r["total_s"], 2) for r in results] for name, results in runs.items()},
    }
    print(json.dumps(report, indent=2))
    OUT.mkdir(exist_ok=True)
    (OUT / "dask_bench.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
