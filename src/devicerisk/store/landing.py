"""The landing zone: raw batches as received. The only store that holds raw identifiers.

It is read by ingest and emptied by retention: a processed batch's file is removed once the short
landing retention has passed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.compute as pc

from devicerisk.ingest.read import batch_id_of
from devicerisk.store import warehouse

log = logging.getLogger(__name__)

TELEMETRY = "telemetry"
LABELS = "labels"
SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")


def pending_files(landing_dir: Path, kind: str = TELEMETRY) -> list[Path]:
    """Landing files in name order; files being written (dot-prefixed) are not listed."""
    folder = landing_dir / kind
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.name.endswith(SUFFIXES)
    )


def purge_processed(landing_dir: Path, warehouse_path: Path, retention: timedelta, now: datetime) -> list[str]:
    """Delete landing files of batches committed longer than ``retention`` ago; returns their batch ids.

    A file is deleted only if its content still hashes to the committed batch, so a new file that
    reuses an old name is never lost.
    """
    ledger = warehouse.ledger(warehouse_path)
    due = ledger.filter(
        pc.and_(
            pc.is_null(ledger.column("landing_removed_at")),
            pc.less_equal(ledger.column("committed_at"), now - retention),
        )
    )
    removed: list[str] = []
    for row in due.select(["batch_id", "file_name"]).to_pylist():
        path = landing_dir / TELEMETRY / row["file_name"]
        if path.exists() and batch_id_of(path.read_bytes()) == row["batch_id"]:
            path.unlink()
            log.info("removed landing file of batch %s after its retention", row["batch_id"])
        removed.append(row["batch_id"])
    if removed:
        warehouse.mark_landing_removed(warehouse_path, removed, now)
    return removed
