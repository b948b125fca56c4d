"""The flows' task runner: a Dask cluster's worker processes when a scheduler address is configured, else threads.

The choice is made when a flow run starts (from ``DEVICERISK_DASK_ADDRESS``), not when the flow is imported, so one
deployment runs either way. On Dask, only the pure parts of a run leave its process (staging a batch, scoring a
day); every write (lake commits, the warehouse, the signal log, serving) stays on the flow's own process, in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.settings import PREFECT_API_URL
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.tasks import Task
from prefect_dask import DaskTaskRunner

from devicerisk.config import Settings


class NoPrefectServer(RuntimeError):
    """A Dask scheduler is configured but no Prefect server: each Dask worker would start a server of its own."""


class ConfiguredTaskRunner(TaskRunner[PrefectFuture[Any]]):
    """Dask's task runner on the configured scheduler, or a pool of ``threads`` threads without one."""

    def __init__(self, threads: int = 1) -> None:
        super().__init__()
        self.threads = threads
        self.inner: TaskRunner[Any] | None = None

    def duplicate(self) -> ConfiguredTaskRunner:
        return type(self)(self.threads)

    def __enter__(self) -> ConfiguredTaskRunner:
        address = Settings().dask_address
        if address and not PREFECT_API_URL.value():
            raise NoPrefectServer(
                "DEVICERISK_DASK_ADDRESS is set but PREFECT_API_URL is not: Dask workers need a Prefect server "
                "(`devicerisk up`, or `prefect server start`), else each one starts its own"
            )
        self.inner = DaskTaskRunner(address=address) if address else ThreadPoolTaskRunner(max_workers=self.threads)
        self.inner.__enter__()
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        try:
            if self.inner is not None:
                self.inner.__exit__(*exc)
        finally:
            super().__exit__(*exc)

    def submit(
        self,
        task: Task[Any, Any],
        parameters: dict[str, Any],
        wait_for: Iterable[PrefectFuture[Any]] | None = None,
        dependencies: dict[str, set[Any]] | None = None,
    ) -> PrefectFuture[Any]:
        if self.inner is None:
            raise RuntimeError("The task runner must be started before submitting work.")
        return self.inner.submit(task, parameters, wait_for, dependencies)

    def cancel_all(self) -> None:
        cancel = getattr(self.inner, "cancel_all", None)
        if cancel is not None:
            cancel()

    @property
    def on_dask(self) -> bool:
        return isinstance(self.inner, DaskTaskRunner)

    @property
    def slots(self) -> int:
        """How many tasks run at once: the Dask workers' threads, or this runner's threads."""
        if isinstance(self.inner, DaskTaskRunner):
            return max(1, sum(self.inner.client.nthreads().values()))
        return self.threads


def _current() -> ConfiguredTaskRunner | None:
    ctx = FlowRunContext.get()
    runner = ctx.task_runner if ctx is not None else None
    return runner if isinstance(runner, ConfiguredTaskRunner) else None


def on_dask() -> bool:
    """Whether this flow run's tasks go to Dask workers (other processes, perhaps other machines)."""
    runner = _current()
    return runner is not None and runner.on_dask


def slots() -> int:
    """How many of this flow run's submitted tasks run at once (1 outside a configured runner)."""
    runner = _current()
    return 1 if runner is None else runner.slots
