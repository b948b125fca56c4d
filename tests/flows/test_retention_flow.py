"""The retention and request flows under a real Prefect engine; the pipeline runs the purge after ingest."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

import retention_world as world
from devicerisk.config import Settings
from devicerisk.flows.pipeline import pipeline_flow
from devicerisk.flows.requests import request_flow
from devicerisk.flows.retention import retention_flow
from devicerisk.governance import requests
from devicerisk.governance.requests import RequestKind, Status
from devicerisk.governance.stores import stores_for
from devicerisk.store import audit, governance
from devicerisk.synth import SynthConfig, generate
from factories import verified


async def _artifact(key: str) -> str:
    async with get_client() as client:
        return next(a.data for a in await client.read_latest_artifacts() if a.key == key)


def test_clause_5_1_2_the_daily_retention_flow_purges_audits_and_reports(
    prefect_db: Path, no_grace_settings: Settings
) -> None:
    world.build(no_grace_settings)
    report = retention_flow(str(no_grace_settings.data_dir))
    assert report.removed["lake.events"] == 3 and report.removed["models"] == 1
    record = audit.records(no_grace_settings.audit_dir)[-1]
    assert record["action"] == "retention.purge" and record["counts"]["removed.lake.events"] == 3
    assert "| removed.lake.events | 3 |" in asyncio.run(_artifact("retention-purge"))


def test_clause_6_2_2_the_request_flow_finishes_an_interrupted_request(
    prefect_db: Path, no_grace_settings: Settings
) -> None:
    world.build(no_grace_settings)
    stores = stores_for(no_grace_settings)

    def crash(step: str) -> None:
        if step == "snapshots":
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        requests.submit(
            stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, checkpoint=crash, verification=verified()
        )
    (pending,) = requests.pending(stores)
    statuses = request_flow(str(no_grace_settings.data_dir))
    assert statuses == {pending.request_id: Status.COMPLETED}
    stored = governance.get_request(stores.warehouse_path, pending.request_id)
    assert stored is not None and stored.status == Status.COMPLETED


def test_clause_5_1_2_the_hourly_pipeline_leaves_the_purge_to_the_daily_run_unless_asked(
    prefect_db: Path, no_grace_settings: Settings
) -> None:
    generate(no_grace_settings.landing_dir, SynthConfig(accounts=30, days=1, seed=5))
    pipeline_flow(str(no_grace_settings.data_dir))  # as the 15-minute deployment runs it
    # labels are ingested even while the lake is too short to train: landing keeps their files only so long
    assert [r["action"] for r in audit.records(no_grace_settings.audit_dir)] == ["ingest", "ingest_labels"]
    pipeline_flow(str(no_grace_settings.data_dir), purge=True)  # as the demo runs it
    actions = [r["action"] for r in audit.records(no_grace_settings.audit_dir)]
    assert actions == ["ingest", "ingest_labels", "ingest", "ingest_labels", "retention.purge"]
