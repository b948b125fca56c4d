"""The pipeline flow: everything that runs after new telemetry lands, in order."""

from __future__ import annotations

from prefect import flow

from devicerisk.flows.ingest import ingest_flow
from devicerisk.flows.retention import retention_flow
from devicerisk.flows.risk import risk_flow
from devicerisk.ingest.report import IngestSummary
from devicerisk.runtime import for_run, sharing


@flow(name="pipeline")
def pipeline_flow(data_dir: str | None = None, purge: bool = False) -> IngestSummary:
    """Ingest new batches; then labels, training if no model exists yet, and risk scores; with ``purge``, the purge.

    The pipeline runs hourly and the full purge (with clustering and vacuum) daily, in its own
    deployment; the demo asks for both in one run. Settings and keys are read once, here, and shared
    with every subflow.
    """
    with sharing(for_run(data_dir)):
        summary = ingest_flow(data_dir)
        risk_flow(data_dir)
        if purge:
            retention_flow(data_dir)
    return summary
