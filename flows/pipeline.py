"""The pipeline flow: everything that runs after new telemetry lands, in order."""

from __future__ import annotations

from prefect import flow

from devicerisk.ingest.report import IngestSummary
from flows.ingest import ingest_flow
from flows.retention import retention_flow


@flow(name="pipeline")
def pipeline_flow(data_dir: str | None = None) -> IngestSummary:
    """Ingest new batches, then purge what has expired (risk scoring joins here as it is built)."""
    summary = ingest_flow(data_dir)
    retention_flow(data_dir)
    return summary
