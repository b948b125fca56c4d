"""Finding new landing files: by name and size first, by content when those match."""

from __future__ import annotations

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import IngestContext, ingest_batch, not_yet_ingested
from factories import event, write_batch


def test_new_content_under_an_old_name_and_size_is_new(settings: Settings, ctx: IngestContext) -> None:
    folder = settings.landing_dir / "telemetry"
    path = write_batch(folder / "a.ndjson", [event("operation", event_id="evt-A")])
    ingest_batch(path, ctx)
    assert not_yet_ingested([path], ctx) == []

    size = path.stat().st_size
    write_batch(path, [event("operation", event_id="evt-B")])  # same name, same size, new content
    assert path.stat().st_size == size
    assert not_yet_ingested([path], ctx) == [path]


def test_the_same_content_under_a_new_name_is_skipped_at_commit(settings: Settings, ctx: IngestContext) -> None:
    folder = settings.landing_dir / "telemetry"
    first = write_batch(folder / "a.ndjson", [event("operation", event_id="evt-C")])
    ingest_batch(first, ctx)
    copy = write_batch(folder / "copy.ndjson", [event("operation", event_id="evt-C")])
    assert ingest_batch(copy, ctx).already_done
