"""The pipeline flow: everything that runs after new telemetry lands, in order."""

from __future__ import annotations

from prefect import flow

from devicerisk.ingest.report import IngestSummary
from flows.ingest import ingest_flow
from flows.retention import retention_flow


@flow(name="pipeline")
def pipeline_flow(data_dir: str | None = None, purge: bool = False) -> IngestSummary:
    """Ingest new batches (risk scoring joins here as it is built); with ``purge``, then run the retention purge.

    The pipeline runs hourly and the full purge (with clustering and vacuum) daily, in its own
    deployment; the demo asks for both in one run.
    """
    summary = ingest_flow(data_dir)
    if purge:
        retention_flow(data_dir)
    return summary
