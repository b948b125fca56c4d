"""The retention and request flows under a real Prefect engine; the pipeline runs the purge after ingest."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from flows.pipeline import pipeline_flow
from flows.retention import request_flow, retention_flow
from prefect.client.orchestration import get_client

import retention_world as world
from devicerisk.config import Settings
from devicerisk.privacy import requests
from devicerisk.privacy.requests import Kind, Status
from devicerisk.privacy.stores import stores_for
from devicerisk.store import audit, governance
from devicerisk.synth import SynthConfig, generate


@pytest.fixture
def env_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The flows build their settings from the environment, as a deployment would."""
    monkeypatch.setenv("DEVICERISK_MODE", "production")
    monkeypatch.setenv("DEVICERISK_PSEUDONYM_KEY_FILE", str(settings.pseudonym_key_file))
    monkeypatch.setenv("DEVICERISK_QUARANTINE_KEY_FILE", str(settings.quarantine_key_file))
    monkeypatch.setenv("DEVICERISK_SECRETS_DIR", str(settings.secrets_dir))
    monkeypatch.setenv("DEVICERISK_VACUUM_GRACE_HOURS", "0")
    return settings.model_copy(update={"vacuum_grace_hours": 0})


async def _artifact(key: str) -> str:
    async with get_client() as client:
        return next(a.data for a in await client.read_latest_artifacts() if a.key == key)


def test_clause_5_1_2_the_daily_retention_flow_purges_audits_and_reports(
    prefect_db: Path, env_settings: Settings
) -> None:
    world.build(env_settings)
    report = retention_flow(str(env_settings.data_dir))
    assert report.removed["lake.events"] == 3 and report.removed["models"] == 1
    record = audit.records(env_settings.audit_dir)[-1]
    assert record["action"] == "retention.purge" and record["counts"]["removed.lake.events"] == 3
    assert "| removed.lake.events | 3 |" in asyncio.run(_artifact("retention-purge"))


def test_clause_6_2_2_the_request_flow_finishes_an_interrupted_request(
    prefect_db: Path, env_settings: Settings
) -> None:
    world.build(env_settings)
    stores = stores_for(env_settings)

    def crash(step: str) -> None:
        if step == "snapshots":
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        requests.submit(stores, Kind.ERASURE, world.SUBJECT, world.NOW, checkpoint=crash)
    (pending,) = requests.pending(stores)
    statuses = request_flow(str(env_settings.data_dir))
    assert statuses == {pending.request_id: Status.COMPLETED}
    stored = governance.get_request(stores.warehouse_path, pending.request_id)
    assert stored is not None and stored.status == Status.COMPLETED


def test_clause_5_1_2_the_hourly_pipeline_leaves_the_purge_to_the_daily_run_unless_asked(
    prefect_db: Path, env_settings: Settings
) -> None:
    generate(env_settings.landing_dir, SynthConfig(accounts=30, days=1, seed=5))
    pipeline_flow(str(env_settings.data_dir))  # as the hourly deployment runs it
    assert [r["action"] for r in audit.records(env_settings.audit_dir)] == ["ingest"]
    pipeline_flow(str(env_settings.data_dir), purge=True)  # as the demo runs it
    actions = [r["action"] for r in audit.records(env_settings.audit_dir)]
    assert actions == ["ingest", "ingest", "retention.purge"]
