"""The retention flow: the daily purge (5.1.2). It builds its settings from the environment, so keys never
travel as flow parameters."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from devicerisk.governance.purge import PurgeReport, purge, purge_markdown
from devicerisk.governance.stores import Stores
from devicerisk.runtime import for_run
from devicerisk.store import audit

ACTOR = "retention-flow"


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE, tags=["warehouse-writer"])
def purge_expired(stores: Stores) -> PurgeReport:
    """Remove expired data from every store, cluster new partitions, vacuum; idempotent, so safe to retry."""
    return purge(stores, datetime.now(UTC))


@task(cache_policy=NO_CACHE)
def audit_purge(stores: Stores, report: PurgeReport) -> None:
    """One audit record for the purge, with its counts."""
    audit.append(stores.audit, actor=ACTOR, role="pipeline", action="retention.purge", purpose="retention",
                 counts=report.counts())  # fmt: skip


@task(cache_policy=NO_CACHE)
def publish_purge(report: PurgeReport) -> None:
    """A Prefect artifact with the purge's counts (never values)."""
    create_markdown_artifact(key="retention-purge", markdown=purge_markdown(report), description="Retention purge")


@flow(name="retention")
def retention_flow(data_dir: str | None = None) -> PurgeReport:
    """Purge everything older than its retention class's period from every store, except held subjects."""
    stores = for_run(data_dir).stores
    report = purge_expired(stores)
    audit_purge(stores, report)
    publish_purge(report)
    get_run_logger().info("retention purge: %s", ", ".join(f"{k}={v}" for k, v in report.counts().items()))
    return report
