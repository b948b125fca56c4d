"""Landing retention: processed raw batches are removed after their retention; strays (files no ingest
reads) once older than it; links that lead outside landing are refused."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devicerisk.config import Settings
from devicerisk.governance import purge, retention_check
from devicerisk.governance.stores import stores_for
from devicerisk.ingest.pipeline import REFUSED_LINK, IngestContext, ingest_batch, refuse_links
from devicerisk.store import lake, landing, warehouse
from factories import event, line, write_batch


def test_processed_batches_are_removed_only_after_retention(settings: Settings, ctx: IngestContext) -> None:
    folder = settings.landing_dir / "telemetry"
    done = write_batch(folder / "a.ndjson", [event("operation")])
    ingest_batch(done, ctx)
    waiting = write_batch(folder / "b.ndjson", [event("operation")])  # landed, not yet ingested

    now = datetime.now(UTC)
    assert landing.purge_processed(settings.landing_dir, settings.warehouse_path, timedelta(days=3), now) == []
    assert done.exists()

    removed = landing.purge_processed(
        settings.landing_dir, settings.warehouse_path, timedelta(days=3), now + timedelta(days=3, seconds=1)
    )
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


# -- landing hygiene: links leading out, and files no ingest reads ------------------------------------------------
def _old(path: Path, days: float) -> Path:
    """Date a file (or a link itself) ``days`` back."""
    when = (datetime.now(UTC) - timedelta(days=days)).timestamp()
    os.utime(path, (when, when), follow_symlinks=False)
    return path


def test_a_link_leading_outside_landing_is_refused_with_a_ledger_row(
    settings: Settings, ctx: IngestContext, tmp_path: Path
) -> None:
    outside = write_batch(tmp_path / "elsewhere" / "secrets.ndjson", [event("operation", event_id="evt-outside")])
    folder = settings.landing_dir / "telemetry"
    folder.mkdir(parents=True)
    link = folder / "a.ndjson"
    link.symlink_to(outside)
    good = write_batch(folder / "b.ndjson", [event("operation", event_id="evt-landed")])

    assert landing.pending_files(settings.landing_dir) == [good]
    [refused] = refuse_links(settings.landing_dir, ctx)

    assert (refused.file_name, refused.failed) == ("a.ndjson", REFUSED_LINK)
    entry = warehouse.ledger_entry(settings.warehouse_path, refused.batch_id)
    assert entry is not None and entry.failure == REFUSED_LINK and entry.records_read == 0
    assert not link.is_symlink() and (settings.landing_dir / "failed" / f"{refused.batch_id}-a.ndjson").is_symlink()
    assert outside.read_bytes() == line(event("operation", event_id="evt-outside")) + b"\n"  # untouched
    assert refuse_links(settings.landing_dir, ctx) == []  # set aside: a re-run does not see it again
    assert lake.dataset(settings.lake_dir, lake.EVENTS) is None  # nothing of it was read


def test_files_no_ingest_reads_are_flagged_then_removed_after_the_landing_retention(
    settings: Settings, tmp_path: Path
) -> None:
    telemetry, labels = settings.landing_dir / "telemetry", settings.landing_dir / "labels"
    outside = write_batch(tmp_path / "elsewhere" / "x.ndjson", [event()])
    old = [
        write_batch(telemetry / "notes.txt", [event()]),  # unsupported name, raw identifiers inside
        write_batch(telemetry / ".upload-3.ndjson.tmp", [event()]),  # a write abandoned days ago
        write_batch(settings.landing_dir / "stray.ndjson", [event()]),  # not in a landing folder
        write_batch(settings.landing_dir / "failed" / "0123-c.ndjson", [event()]),  # set aside
        write_batch(labels / "labels.csv", [b"l1,fraud"]),
    ]
    (labels / "link.ndjson").symlink_to(outside)
    old.append(labels / "link.ndjson")
    for path in old:
        _old(path, 4)
    writing = write_batch(telemetry / ".upload-4.ndjson.tmp", [event()])  # being written now
    pending = _old(write_batch(telemetry / "z.ndjson", [event()]), 4)  # a batch not yet ingested: not a stray

    stores = stores_for(settings)
    now = datetime.now(UTC)
    flagged = {v.where: v.records for v in retention_check.verify(stores, now) if v.store == "landing"}
    assert flagged == {
        "telemetry (files no ingest reads)": 2,
        ". (files no ingest reads)": 1,
        "failed (files no ingest reads)": 1,
        "labels (files no ingest reads)": 2,
    }

    assert set(landing.stray_files(settings.landing_dir)) == {*old, writing}
    removed, others = purge.purge_landing(stores, timedelta(days=3), now, frozenset())

    assert (removed, others) == ([], len(old))
    assert not any(p.exists() or p.is_symlink() for p in old)
    assert writing.exists() and pending.exists() and outside.exists()
    assert [v for v in retention_check.verify(stores, now) if v.store == "landing"] == []
