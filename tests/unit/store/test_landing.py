"""Landing retention: processed raw batches are removed after their retention, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import IngestContext, ingest_batch
from devicerisk.store import landing, warehouse
from factories import event, write_batch


def test_processed_batches_are_removed_only_after_retention(settings: Settings, ctx: IngestContext) -> None:
    folder = settings.landing_dir / "telemetry"
    done = write_batch(folder / "a.ndjson", [event("operation")])
    ingest_batch(done, ctx)
    waiting = write_batch(folder / "b.ndjson", [event("operation")])  # landed, not yet ingested

    now = datetime.now(UTC)
    assert landing.purge_processed(settings.landing_dir, settings.warehouse_path, timedelta(days=3), now) == []
    assert done.exists()

    removed = landing.purge_processed(settings.landing_dir, settings.warehouse_path, timedelta(days=3),
                                      now + timedelta(days=3, seconds=1))  # fmt: skip
    assert len(removed) == 1 and not done.exists() and waiting.exists()
    entry = warehouse.ledger_entry(settings.warehouse_path, removed[0])
    assert entry is not None and entry.landing_removed_at is not None
    assert entry.accepted == 1  # the accounting outlives the raw file


def test_a_new_file_reusing_an_old_name_is_not_deleted(settings: Settings, ctx: IngestContext) -> None:
    path = write_batch(settings.landing_dir / "telemetry" / "a.ndjson", [event("operation")])
    ingest_batch(path, ctx)
    write_batch(path, [event("crash")])  # upstream re-used the name for new data
    later = datetime.now(UTC) + timedelta(days=4)
    landing.purge_processed(settings.landing_dir, settings.warehouse_path, timedelta(days=3), later)
    assert path.exists()


def test_pending_files_skip_partial_writes(settings: Settings) -> None:
    folder = settings.landing_dir / "telemetry"
    write_batch(folder / "b.ndjson.gz", [event()], compress=True)
    write_batch(folder / "a.ndjson", [event()])
    (folder / ".c.ndjson.tmp").write_bytes(b"{")
    (folder / "notes.txt").write_text("not a batch")
    assert [p.name for p in landing.pending_files(settings.landing_dir)] == ["a.ndjson", "b.ndjson.gz"]


def test_a_warehouse_from_before_file_sizes_gains_the_column(tmp_path) -> None:
    """Upgrading keeps an existing ledger working: the missing column is added, old rows stay."""
    import duckdb

    from devicerisk.store import warehouse

    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    old_schema = warehouse.SCHEMA.split("-- Warehouses created before")[0].replace(",\n    file_bytes BIGINT", "")
    con.execute(old_schema)
    con.execute("INSERT INTO batch_ledger VALUES ('b1', 'a.ndjson', 0, 1, 1, 0, 0, 0, '{}', NULL, now(), NULL)")
    con.close()
    assert warehouse.seen_files(path) == set()
    entry = warehouse.ledger_entry(path, "b1")
    assert entry is not None and entry.accepted == 1 and entry.file_bytes is None
