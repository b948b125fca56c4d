"""The ingest flow: new landing batches -> validated, consented, treated events in the lake.

Batches are committed one at a time, in order, on the flow's process; the next batch is staged (read,
validated, treated) on a second thread while the current one is committed, or, with a Dask scheduler
configured, as many batches as the Dask workers have threads are staged at once in their processes.
A file that cannot be ingested (its staging or commit still fails after the retries), or a link leading
outside landing, gets a failed ledger row and is set aside in ``landing/failed/``; the run goes on.
Files in landing that are no batches are reported.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.futures import PrefectFuture

from devicerisk.flows import runners
from devicerisk.flows.tasks import record, retried, rewrites, step, writes
from devicerisk.governance.purge import expire_landing
from devicerisk.governance.stores import Stores
from devicerisk.ingest.pipeline import (
    BatchResult,
    IngestContext,
    StagedBatch,
    commit_batch,
    ingest_batches,
    refuse_links,
)
from devicerisk.ingest.pipeline import stage_batch as stage_batch_fn
from devicerisk.ingest.report import IngestSummary, audit_counts, summarise, summary_markdown
from devicerisk.ingest.runtime import worker_context
from devicerisk.runtime import for_run
from devicerisk.store import landing


@step
def landing_files(landing_dir: Path) -> list[Path]:
    """Landing files, oldest name first."""
    return landing.pending_files(landing_dir)


@writes
def refuse_outside_links(landing_dir: Path, ctx: IngestContext) -> list[BatchResult]:
    """Links in the telemetry folder that lead outside landing: a failed ledger row each, set aside unread."""
    return refuse_links(landing_dir, ctx)


@step
def landing_strays(landing_dir: Path) -> dict[str, str]:
    """Files in landing that no ingest reads (path within landing -> what it is), for the report."""
    strays = landing.stray_files(landing_dir)
    return {str(p.relative_to(landing_dir)): landing.stray_kind(p, landing_dir) for p in strays}


@retried
def stage_batch(path: Path, ctx: IngestContext) -> StagedBatch:
    """Read, validate and treat one batch; pure, so safe to retry."""
    return stage_batch_fn(path, ctx)


@retried
def stage_on_worker(path: Path, data_dir: str, pseudonym_key_id: str, quarantine_key_id: str) -> StagedBatch:
    """Stage one batch in a Dask worker process, which loads its own keys (only their ids travel, to be checked)."""
    return stage_batch_fn(path, worker_context(data_dir, pseudonym_key_id, quarantine_key_id))


def stager(ctx: IngestContext, data_dir: Path) -> Callable[[Path], PrefectFuture[StagedBatch]]:
    """How this run stages a file: a task in this process, or on a Dask worker (absolute paths: its working
    folder is not this one)."""
    if not runners.on_dask():
        return lambda p: stage_batch.submit(p, ctx)
    where, keys = str(data_dir.resolve()), (ctx.pseudonymiser.key_id, ctx.quarantine_key.key_id)
    return lambda p: stage_on_worker.submit(p.resolve(), where, *keys)


@rewrites
def commit(staged: StagedBatch, ctx: IngestContext) -> BatchResult:
    """Write one staged batch exactly once; idempotent, so safe to retry."""
    return commit_batch(staged, ctx)


@rewrites
def purge_landing(stores: Stores) -> list[str]:
    """Remove raw batches past the retention policy's ``landing_raw`` period, except those a legal hold keeps."""
    return expire_landing(stores, datetime.now(UTC))[0]


@step
def publish_summary(summary: IngestSummary) -> None:
    """Prefect artifacts with the run's accounting and its quarantine and drop reasons (counts, never values)."""
    create_markdown_artifact(key="ingest-summary", markdown=summary_markdown(summary), description="Ingest accounting")
    reasons = [{"reason": reason, "records": n} for reason, n in summary.reasons.items()]
    create_table_artifact(key="quarantine-reasons", table=reasons, description="Quarantine and drop reasons")


# One staging thread: the next batch is staged while the current one is committed on the flow's thread,
# never two at once (each already uses both cores). With a Dask scheduler, one batch per Dask worker thread.
@flow(name="ingest", task_runner=runners.ConfiguredTaskRunner(threads=1))
def ingest_flow(data_dir: str | None = None) -> IngestSummary:
    """Ingest every new landing batch in order, then purge expired raw batches."""
    rt = for_run(data_dir)  # a missing key stops the run before it ingests anything
    settings, ctx = rt.settings, rt.ingest
    refused = refuse_outside_links(settings.landing_dir, ctx)
    files = landing_files(settings.landing_dir)
    stage = stager(ctx, settings.data_dir)
    staged = list(ingest_batches(files, ctx, stage, lambda s: commit(s, ctx), depth=runners.slots()))
    results = [*refused, *staged]
    removed = purge_landing(rt.stores)
    strays = landing_strays(settings.landing_dir)
    summary = summarise(results, skipped=len(files) - len(staged), landing_removed=len(removed), strays=strays)
    record(rt.audit, "ingest-flow", "ingest", audit_counts(summary), purpose="risk_control")
    publish_summary(summary)
    get_run_logger().info(
        "ingest: %d new batches, %d records read, %d accepted, %d quarantined, %d consent-dropped, %d duplicates, "
        "%d failed and set aside, %d landing files not ingested",
        summary.batches,
        summary.records_read,
        summary.accepted,
        summary.quarantined,
        summary.consent_dropped,
        summary.duplicates,
        summary.failed_batches,
        summary.landing_strays,
    )
    return summary
