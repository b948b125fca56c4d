"""The retention flow: the daily purge (5.1.2). It builds its settings from the environment, so keys never
travel as flow parameters."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from devicerisk.flows.tasks import record, rewrites, step
from devicerisk.governance.purge import PurgeReport, purge, purge_markdown
from devicerisk.governance.stores import Stores
from devicerisk.runtime import for_run

ACTOR = "retention-flow"


@rewrites
def purge_expired(stores: Stores) -> PurgeReport:
    """Remove expired data from every store, cluster new partitions, vacuum; idempotent, so safe to retry."""
    return purge(stores, datetime.now(UTC))


@step
def publish_purge(report: PurgeReport) -> None:
    """A Prefect artifact with the purge's counts (never values)."""
    create_markdown_artifact(key="retention-purge", markdown=purge_markdown(report), description="Retention purge")


@flow(name="retention")
def retention_flow(data_dir: str | None = None) -> PurgeReport:
    """Purge everything older than its retention class's period from every store, except held subjects."""
    stores = for_run(data_dir).stores
    report = purge_expired(stores)
    record(stores.audit, ACTOR, "retention.purge", report.counts(), purpose="retention")
    publish_purge(report)
    get_run_logger().info("retention purge: %s", ", ".join(f"{k}={v}" for k, v in report.counts().items()))
    return report
