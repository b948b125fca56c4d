"""What every flow's tasks share: the task presets, and the one audit task.

Tasks read and write stores whose state is their real input, so no task result is ever cached.
A task that is safe to run again (pure, or idempotent) is a ``retried`` one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import exponential_backoff

from devicerisk.store import audit, writer

# The library's INFO lines belong in flow-run logs (PREFECT_LOGGING_EXTRA_LOGGERS=devicerisk gives its logger
# Prefect's API handler, not a level): in a worker's flow run the root logger is at WARNING, which hid them.
_library_log = logging.getLogger("devicerisk")
if _library_log.level == logging.NOTSET and _library_log.getEffectiveLevel() > logging.INFO:
    _library_log.setLevel(logging.INFO)

#: A task that runs once per call: ``@step`` or ``@step(tags=[...])``.
step = partial(task, cache_policy=NO_CACHE)
#: A task safe to repeat (pure or idempotent), retried twice after a failure.
retried = partial(task, cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
#: The tag of tasks that write the DuckDB warehouse; a concurrency limit lets one run at a time.
WAREHOUSE_WRITER = "warehouse-writer"
#: Attempts after a DuckDB lock error (another process has the warehouse open): waits of 2, 4, 8... s, jittered.
LOCK_RETRIES = 6
#: Retries of an idempotent task after any other failure, as ``retried``.
OTHER_RETRIES = 2


def _failure(state: State) -> BaseException | None:
    try:
        state.result()
    except BaseException as err:  # the task's own exception, re-raised by its Failed state
        return err
    return None


def lock_error_only(_task: Any, _run: TaskRun, state: State) -> bool:
    """Retry only a DuckDB lock error, or a writer-lock wait that timed out."""
    err = _failure(state)
    return err is not None and writer.is_lock_error(err)


def lock_error_or_early(_task: Any, run: TaskRun, state: State) -> bool:
    """Retry a lock error up to the last attempt, and any other failure for the first ``OTHER_RETRIES`` retries."""
    return lock_error_only(_task, run, state) or run.run_count <= OTHER_RETRIES


_on_lock = {
    "tags": [WAREHOUSE_WRITER],
    "retries": LOCK_RETRIES,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
}
#: A task that writes the warehouse once per call: retried only when it met another process's lock.
writes = partial(task, cache_policy=NO_CACHE, retry_condition_fn=lock_error_only, **_on_lock)
#: An idempotent task that writes the warehouse: retried with backoff on lock errors, twice after others.
rewrites = partial(task, cache_policy=NO_CACHE, retry_condition_fn=lock_error_or_early, **_on_lock)


@retried
def record(trail: audit.Trail, actor: str, action: str, counts: Mapping[str, int], *, purpose: str) -> None:
    """One audit record of what a flow did: who, what, the registered purpose it read the data for (2.8) and how
    many, never a value."""
    audit.append(trail, actor=actor, role="pipeline", action=action, purpose=purpose, counts=counts)
