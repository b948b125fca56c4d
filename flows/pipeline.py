"""The pipeline flow: everything that runs after new telemetry lands, in order."""

from __future__ import annotations

from prefect import flow

from devicerisk.ingest.report import IngestSummary
from flows.ingest import ingest_flow


@flow(name="pipeline")
def pipeline_flow(data_dir: str | None = None) -> IngestSummary:
    """Ingest new batches (risk scoring and retention join here as they are built)."""
    return ingest_flow(data_dir)
