"""No file stops ingest: a file whose staging or commit raises gets a failed ledger row and is set aside.

The faults are injected where the issue found one (a commit step raising on one batch's data); the
rest is real: files, lake, warehouse and the thread that stages the next batch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devicerisk.config import Settings
from devicerisk.ingest import pipeline
from devicerisk.ingest.pipeline import IngestContext, ingest_batches
from devicerisk.store import lake, landing, warehouse
from factories import event, write_batch


def _telemetry(settings: Settings, name: str, event_id: str) -> Path:
    return write_batch(settings.landing_dir / "telemetry" / name, [event("operation", event_id=event_id)])


def _lake_ids(ctx: IngestContext) -> list[str]:
    data = lake.dataset(ctx.lake_dir, lake.EVENTS)
    return [] if data is None else sorted(data.to_table(columns=["event_id"]).column("event_id").to_pylist())


@pytest.fixture
def poisoned(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Event ids that make staging (``stage-*``) or the commit (``commit-*``) of their batch raise."""
    ids = {"stage-poison", "commit-poison"}
    real_treat, real_prepare = pipeline.treat_batch, pipeline.prepare_batch

    def treat(parsed, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "stage-poison" in parsed.column("event_id").to_pylist():
            raise OverflowError("date value out of range")
        return real_treat(parsed, *args, **kwargs)

    def prepare(staged, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "commit-poison" in staged.events.column("event_id").to_pylist():
            raise OverflowError("date value out of range")
        return real_prepare(staged, *args, **kwargs)

    monkeypatch.setattr(pipeline, "treat_batch", treat)
    monkeypatch.setattr(pipeline, "prepare_batch", prepare)
    return ids


def test_a_failing_file_is_set_aside_with_a_ledger_row_and_later_batches_go_on(
    settings: Settings, ctx: IngestContext, poisoned: set[str]
) -> None:
    paths = [
        _telemetry(settings, "a.ndjson", "evt-a"),
        _telemetry(settings, "b.ndjson", "stage-poison"),
        _telemetry(settings, "c.ndjson", "commit-poison"),
        _telemetry(settings, "d.ndjson", "evt-d"),
    ]
    ids = {p.name: landing.batch_id_of_file(p) for p in paths}

    results = list(ingest_batches(landing.pending_files(settings.landing_dir), ctx))

    assert [(r.file_name, r.accepted, r.failed is None) for r in results] == [
        ("a.ndjson", 1, True),
        ("b.ndjson", 0, False),
        ("c.ndjson", 0, False),
        ("d.ndjson", 1, True),
    ]
    assert _lake_ids(ctx) == ["evt-a", "evt-d"]
    for name, step in (("b.ndjson", "staging"), ("c.ndjson", "commit")):
        entry = warehouse.ledger_entry(ctx.warehouse_path, ids[name])
        assert entry is not None and not entry.committed
        assert entry.failure is not None and entry.failure.startswith(
            f"{step} failed: OverflowError at test_failed_files.py:"
        )
        assert "date value" not in entry.failure  # the error's message may quote data: only its type is kept
        assert not (settings.landing_dir / "telemetry" / name).exists()
        assert (settings.landing_dir / "failed" / f"{ids[name]}-{name}").exists()

    again = list(ingest_batches(landing.pending_files(settings.landing_dir), ctx))  # the re-run does not loop
    assert [r.file_name for r in again] == []


def test_a_set_aside_file_moved_back_is_ingested_once_the_fault_is_gone(
    settings: Settings, ctx: IngestContext, poisoned: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _telemetry(settings, "c.ndjson", "commit-poison")
    batch_id = landing.batch_id_of_file(path)
    [failed] = ingest_batches([path], ctx)
    assert failed.failed is not None

    monkeypatch.undo()  # the fault is fixed
    (settings.landing_dir / "failed" / f"{batch_id}-c.ndjson").rename(path)
    [result] = ingest_batches(landing.pending_files(settings.landing_dir), ctx)

    assert (result.accepted, result.failed) == (1, None)
    entry = warehouse.ledger_entry(ctx.warehouse_path, batch_id)
    assert entry is not None and entry.committed and entry.accepted == 1


def test_a_fault_after_the_commit_keeps_the_batch_committed(
    settings: Settings, ctx: IngestContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Setting aside never undoes a batch whose ledger row is written: its file stays for retention."""
    path = _telemetry(settings, "a.ndjson", "evt-a")

    def commit_then_fail(staged: pipeline.StagedBatch) -> pipeline.BatchResult:
        pipeline.commit_batch(staged, ctx)
        raise RuntimeError("after the ledger")

    [result] = pipeline.ingest_batches([path], ctx, commit=commit_then_fail)

    assert result.failed is None and result.already_done
    entry = warehouse.ledger_entry(ctx.warehouse_path, result.batch_id)
    assert entry is not None and entry.committed and entry.accepted == 1
    assert path.exists()
