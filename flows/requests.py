"""The requests flow: resumes data-subject requests (6) that are verified or in progress (interrupted, or
waiting for the vacuum grace period); new requests are submitted with ``devicerisk request``. Identifiers
and keys never travel as flow parameters."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow
from prefect.artifacts import create_table_artifact

from devicerisk.flows.tasks import rewrites, step
from devicerisk.governance import requests
from devicerisk.governance.stores import Stores
from devicerisk.runtime import for_run
from devicerisk.store import governance

ACTOR = "retention-flow"  # as before the requests flow had its own file: audit records keep their actor


@rewrites
def resume_request(stores: Stores, request_id: str) -> str:
    """Carry a pending request on from its last completed step; returns its status."""
    row = requests.pending_request(stores, request_id)
    return requests.process(stores, row, datetime.now(UTC), actor=ACTOR, role="pipeline").status


@step
def publish_requests(stores: Stores, resumed: dict[str, str]) -> None:
    """A Prefect artifact with each resumed request's status and records per store (never the subject)."""
    rows = [r for r in governance.requests(stores.warehouse_path) if r.request_id in resumed]
    table = [
        {
            "request": r.request_id,
            "kind": r.kind,
            "status": r.status,
            "records found": ", ".join(f"{store} {n:,}" for store, n in (r.found or {}).items()),
        }
        for r in rows
    ]
    create_table_artifact(key="requests-resumed", table=table, description="Data-subject requests resumed (counts)")


@flow(name="requests")
def request_flow(data_dir: str | None = None) -> dict[str, str]:
    """Resume every pending data-subject request; returns request id -> status."""
    stores = for_run(data_dir).stores
    resumed = {r.request_id: resume_request(stores, r.request_id) for r in requests.pending(stores)}
    publish_requests(stores, resumed)
    return resumed
