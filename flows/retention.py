"""The retention flows: the daily purge (5.1.2) and the processing of data-subject requests (6).

Both build their settings from the environment, so identifiers and keys never travel as flow
parameters. The request flow resumes requests that are verified or in progress (interrupted, or
waiting for the vacuum grace period); new requests are submitted with ``devicerisk request``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from devicerisk.config import Settings
from devicerisk.governance import requests
from devicerisk.governance.purge import PurgeReport, purge, purge_markdown
from devicerisk.governance.stores import Stores, stores_for
from devicerisk.store import audit

ACTOR = "retention-flow"


def _settings(data_dir: str | None) -> Settings:
    return Settings() if data_dir is None else Settings(data_dir=Path(data_dir))


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
    stores = stores_for(_settings(data_dir))
    report = purge_expired(stores)
    audit_purge(stores, report)
    publish_purge(report)
    get_run_logger().info("retention purge: %s", ", ".join(f"{k}={v}" for k, v in report.counts().items()))
    return report


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE, tags=["warehouse-writer"])
def resume_request(stores: Stores, request_id: str) -> str:
    """Carry a pending request on from its last completed step; returns its status."""
    row = next(r for r in requests.pending(stores) if r.request_id == request_id)
    return requests.process(stores, row, datetime.now(UTC), actor=ACTOR, role="pipeline").status


@flow(name="requests")
def request_flow(data_dir: str | None = None) -> dict[str, str]:
    """Resume every pending data-subject request; returns request id -> status."""
    stores = stores_for(_settings(data_dir))
    return {r.request_id: resume_request(stores, r.request_id) for r in requests.pending(stores)}
