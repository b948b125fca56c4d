"""The ingest flow under a real Prefect engine: synthetic telemetry in, treated lake out."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
from flows.ingest import ingest_flow
from prefect.client.orchestration import get_client

from devicerisk.config import Settings
from devicerisk.store import lake, warehouse
from devicerisk.synth import SynthConfig, generate
from factories import write_batch


def test_ingest_flow_end_to_end(prefect_db: Path, env_settings: Settings) -> None:
    synth = generate(env_settings.landing_dir, SynthConfig(accounts=120, days=2, seed=11, events_per_batch=4000))
    write_batch(env_settings.landing_dir / "telemetry" / "zz-broken.ndjson", [b"{not json", b"[]"])

    summary = ingest_flow(str(env_settings.data_dir))

    assert summary.batches == len(synth.batches) + 1
    assert summary.records_read == synth.events + 2
    assert summary.records_read == (
        summary.accepted + summary.quarantined + summary.consent_dropped + summary.duplicates
    )
    assert summary.quarantined >= 2 and summary.reasons["malformed JSON"] >= 1
    assert summary.consent_dropped > 0  # the generator plants withdrawals, cancellations and minors
    assert stat_mode(env_settings.data_dir) == 0o700

    events = lake.dataset(env_settings.lake_dir, lake.EVENTS)
    assert events is not None
    rows = duckdb.sql("SELECT count(*), count(DISTINCT event_id) FROM events").fetchall()[0]
    assert rows == (summary.accepted, summary.accepted)
    assert warehouse.summary(env_settings.warehouse_path)["accepted"] == summary.accepted

    from devicerisk.privacy.stores import audit_trail
    from devicerisk.store import audit

    assert audit.verify(audit_trail(env_settings)) == []
    record = audit.records(env_settings.audit_dir)[-1]
    assert (record["action"], record["counts"]["accepted"]) == ("ingest", summary.accepted)

    again = ingest_flow(str(env_settings.data_dir))  # no surprise on a re-run
    assert again.batches == 0 and again.skipped_batches == summary.batches
    assert lake.dataset(env_settings.lake_dir, lake.EVENTS).count_rows() == summary.accepted


def test_ingest_flow_publishes_an_accounting_artifact(prefect_db: Path, env_settings: Settings) -> None:
    generate(env_settings.landing_dir, SynthConfig(accounts=30, days=1, seed=5))
    summary = ingest_flow(str(env_settings.data_dir))

    async def latest_artifact() -> str:
        async with get_client() as client:
            artifacts = await client.read_latest_artifacts()
            return next(a.data for a in artifacts if a.key == "ingest-summary")

    import asyncio

    markdown = asyncio.run(latest_artifact())
    assert f"| records read | {summary.records_read:,} |" in markdown


def stat_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777
