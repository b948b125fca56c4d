"""The requests flow: resumes data-subject requests (6) that are verified or in progress (interrupted, or
waiting for the vacuum grace period); new requests are submitted with ``devicerisk request``. Identifiers
and keys never travel as flow parameters."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from devicerisk.flows.tasks import rewrites
from devicerisk.governance import requests
from devicerisk.governance.stores import Stores
from devicerisk.runtime import for_run

ACTOR = "retention-flow"  # as before the requests flow had its own file: audit records keep their actor


@rewrites
def resume_request(stores: Stores, request_id: str) -> str:
    """Carry a pending request on from its last completed step; returns its status."""
    row = requests.pending_request(stores, request_id)
    return requests.process(stores, row, datetime.now(UTC), actor=ACTOR, role="pipeline").status


@flow(name="requests")
def request_flow(data_dir: str | None = None) -> dict[str, str]:
    """Resume every pending data-subject request; returns request id -> status."""
    stores = for_run(data_dir).stores
    return {r.request_id: resume_request(stores, r.request_id) for r in requests.pending(stores)}
