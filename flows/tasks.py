"""What every flow's tasks share: the task presets, and the one audit task.

Tasks read and write stores whose state is their real input, so no task result is ever cached.
A task that is safe to run again (pure, or idempotent) is a ``retried`` one.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from prefect import task
from prefect.cache_policies import NO_CACHE

from devicerisk.store import audit

#: A task that runs once per call: ``@step`` or ``@step(tags=[...])``.
step = partial(task, cache_policy=NO_CACHE)
#: A task safe to repeat (pure or idempotent), retried twice after a failure.
retried = partial(task, cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
#: The tag of tasks that write the DuckDB warehouse; a concurrency limit lets one run at a time.
WAREHOUSE_WRITER = "warehouse-writer"


@retried
def record(
    trail: audit.Trail, actor: str, action: str, counts: Mapping[str, int], purpose: str = "risk_control"
) -> None:
    """One audit record of what a flow did: who, what, why and how many, never a value."""
    audit.append(trail, actor=actor, role="pipeline", action=action, purpose=purpose, counts=counts)
