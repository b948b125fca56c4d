"""The pipeline flow: everything that runs after new telemetry lands, in order."""

from __future__ import annotations

from prefect import flow

from devicerisk.flows.ingest import ingest_flow
from devicerisk.flows.retention import retention_flow
from devicerisk.flows.risk import risk_flow
from devicerisk.ingest.report import IngestSummary
from devicerisk.runtime import for_run, sharing


@flow(name="pipeline")
def pipeline_flow(data_dir: str | None = None, accounts: bool = False, purge: bool = False) -> IngestSummary:
    """Ingest new batches; then labels, training if no model exists yet, and transaction scores; with
    ``accounts``, account scores too; with ``purge``, the purge.

    The deployment runs it every 15 minutes as it is; account scores, the full purge (with clustering and
    vacuum) and training have daily and weekly deployments of their own (docs/OPERATIONS.md, "Schedule").
    The demo asks for everything in one run. Settings and keys are read once, here, and shared with every
    subflow.
    """
    with sharing(for_run(data_dir)):
        summary = ingest_flow(data_dir)
        risk_flow(data_dir, accounts=accounts)
        if purge:
            retention_flow(data_dir)
    return summary
