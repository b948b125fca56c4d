"""The ingest flow: new landing batches -> validated, consented, treated events in the lake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import BatchResult, IngestContext, ingest_batch
from devicerisk.ingest.report import IngestSummary, summarise, summary_markdown
from devicerisk.ingest.runtime import ingest_context
from devicerisk.store import landing


@task(cache_policy=NO_CACHE)
def list_landing_batches(landing_dir: Path) -> list[Path]:
    """Landing files to consider, oldest name first."""
    return landing.pending_files(landing_dir)


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE, tags=["warehouse-writer"])
def ingest_one(path: Path, ctx: IngestContext) -> BatchResult:
    """Ingest one batch exactly once; safe to retry."""
    return ingest_batch(path, ctx)


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def purge_landing(settings: Settings) -> list[str]:
    """Remove raw batches whose landing retention has passed."""
    retention = timedelta(days=settings.landing_retention_days)
    return landing.purge_processed(settings.landing_dir, settings.warehouse_path, retention, datetime.now(UTC))


@task(cache_policy=NO_CACHE)
def publish_summary(summary: IngestSummary) -> None:
    """A Prefect artifact with the run's accounting (counts only, never values)."""
    create_markdown_artifact(key="ingest-summary", markdown=summary_markdown(summary), description="Ingest accounting")


@flow(name="ingest", log_prints=False)
def ingest_flow(data_dir: str | None = None) -> IngestSummary:
    """Ingest every new landing batch, one at a time, then purge expired raw batches."""
    settings = Settings() if data_dir is None else Settings(data_dir=Path(data_dir))
    ctx = ingest_context(settings)
    results = [ingest_one(path, ctx) for path in list_landing_batches(settings.landing_dir)]
    removed = purge_landing(settings)
    summary = summarise(results, landing_removed=len(removed))
    publish_summary(summary)
    get_run_logger().info(
        "ingest: %d new batches, %d records read, %d accepted, %d quarantined, %d consent-dropped, %d duplicates",
        summary.batches,
        summary.records_read,
        summary.accepted,
        summary.quarantined,
        summary.consent_dropped,
        summary.duplicates,
    )
    return summary
