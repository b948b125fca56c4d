"""``devicerisk audit verify``: an intact, authenticated chain that is as long as the activity the stores record.

The chain (:func:`devicerisk.store.audit.verify`) finds records edited, removed, inserted or moved, and
records written without the audit key. What it cannot find alone is a log cut at its end together with
its head file, or deleted whole: a shorter log is still a valid chain. So the warehouse is asked what
happened (batches ingested, requests finished or rejected, holds placed and released, purges), and the
log must hold a record of each at or after the time the warehouse gives it.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from devicerisk.governance.requests import Status
from devicerisk.store import audit, governance, warehouse


def recorded_activity(warehouse_path: Path) -> dict[str, datetime]:
    """The newest time the warehouse records each audited action (none when there is no warehouse yet)."""
    if not warehouse_path.exists():
        return {}
    newest: dict[str, datetime] = {}

    def seen(action: str, at: datetime | None) -> None:
        if at is not None:
            newest[action] = max(at, newest.get(action, at))

    for at in warehouse.ledger(warehouse_path).column("committed_at").to_pylist():
        seen("ingest", at)
    for request in governance.requests(warehouse_path):
        if request.status == Status.COMPLETED:
            seen(f"request.{request.kind}", request.updated_at)
        elif request.status == Status.REJECTED:
            seen(f"request.{request.kind}.rejected", request.updated_at)
    for hold in governance.holds(warehouse_path):
        seen("hold.place", hold.created_at)
        seen("hold.release", hold.released_at)
    for at in governance.last_runs(warehouse_path).values():
        seen("retention.purge", at)
    return newest


def check(trail: audit.Trail, warehouse_path: Path, head: tuple[int, str] | None = None) -> list[audit.Problem]:
    """Problems with the audit log: the chain first, then activity the log does not cover."""
    return audit.verify(trail, head) or audit.missing_activity(trail.folder, recorded_activity(warehouse_path))
