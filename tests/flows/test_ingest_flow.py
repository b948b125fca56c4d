"""The ingest flow under a real Prefect engine: synthetic telemetry in, treated lake out."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pytest
from prefect.client.orchestration import get_client

from devicerisk.config import Settings
from devicerisk.flows.ingest import ingest_flow
from devicerisk.store import lake, warehouse
from devicerisk.synth import SynthConfig, generate
from factories import event, write_batch


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

    from devicerisk.governance.stores import audit_trail
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


def test_ingest_flow_goes_on_past_files_it_cannot_ingest_and_reports_them(
    prefect_db: Path, env_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link leading outside landing is refused, a file whose staging keeps failing is set aside, a record
    whose time overflows is quarantined, and files that are no batches are reported: the good batch goes in."""
    from devicerisk.ingest import pipeline

    real_treat = pipeline.treat_batch

    def treat(parsed, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "evt-poison" in parsed.column("event_id").to_pylist():
            raise OverflowError("date value out of range")
        return real_treat(parsed, *args, **kwargs)

    monkeypatch.setattr(pipeline, "treat_batch", treat)
    folder = env_settings.landing_dir / "telemetry"
    write_batch(
        folder / "a.ndjson", [event(event_id="evt-a"), event(event_id="evt-y", event_time="9999-12-31T23:30:00-01:00")]
    )
    (folder / "b.ndjson").symlink_to(write_batch(tmp_path / "outside.ndjson", [event(event_id="evt-outside")]))
    write_batch(folder / "c.ndjson", [event(event_id="evt-poison")])
    write_batch(folder / "d.ndjson.gz", [event(event_id="evt-d")], compress=True)
    (folder / "notes.txt").write_text("not a batch")
    (folder / ".e.ndjson.tmp").write_bytes(b"{")

    summary = ingest_flow(str(env_settings.data_dir))

    assert (summary.batches, summary.accepted, summary.quarantined, summary.failed_batches) == (2, 2, 1, 2)
    assert summary.reasons == {"event_time is more than 24 hours ahead of the ingest time": 1}
    assert summary.landing_strays == 4  # notes.txt, the dot-file and the two files set aside
    notes = "\n".join(summary.notes)
    assert "b.ndjson: refused: a link to a file outside landing" in notes
    assert "c.ndjson: staging failed: OverflowError" in notes
    assert "landing/telemetry/notes.txt: not a batch: unsupported name" in notes
    assert "landing/telemetry/.e.ndjson.tmp: being written (a dot-file)" in notes
    failed = warehouse.ledger(env_settings.warehouse_path).filter(pc.is_valid(pc.field("failure")))
    assert sorted(failed.column("file_name").to_pylist()) == ["b.ndjson", "c.ndjson"]
    events = lake.dataset(env_settings.lake_dir, lake.EVENTS)
    assert sorted(events.to_table(columns=["event_id"]).column("event_id").to_pylist()) == ["evt-a", "evt-d"]

    again = ingest_flow(str(env_settings.data_dir))  # nothing loops: the set-aside files are not tried again
    assert (again.batches, again.failed_batches, again.skipped_batches) == (0, 0, 2)


def stat_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777
