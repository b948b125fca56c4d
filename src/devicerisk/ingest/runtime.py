"""Wiring settings to the ingest context: the one place that reads keys and creates data folders."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import IngestContext
from devicerisk.privacy.keys import Key, load_pseudonym_key, load_quarantine_key
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.store import lake


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` readable by its owner only (5.2.2: isolated storage)."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def ingest_context(
    settings: Settings, pseudonymiser: Pseudonymiser | None = None, quarantine_key: Key | None = None
) -> IngestContext:
    """The ingest context for ``settings``, stores in place; the keys are loaded unless given (a run's
    ``devicerisk.runtime.Runtime`` gives the ones it loaded once)."""
    ensure_private_dir(settings.data_dir)
    lake_dir = lake.ObjectStore(settings.lake_uri, settings.lake_storage_options) if settings.lake_uri else None
    return IngestContext(
        lake_dir=lake_dir or settings.lake_dir,
        quarantine_dir=settings.quarantine_dir,
        warehouse_path=settings.warehouse_path,
        pseudonymiser=pseudonymiser or Pseudonymiser(load_pseudonym_key(settings), settings.default_phone_region),
        quarantine_key=quarantine_key or load_quarantine_key(settings),
        minor_age=settings.minor_age,
        phone_region=settings.default_phone_region,
        chunk_rows=settings.parse_chunk_rows,
        future_skew=timedelta(hours=settings.max_future_skew_hours),
        max_record_bytes=settings.max_record_bytes,
        max_batch_bytes=settings.max_batch_bytes,
    )


class KeyMismatch(RuntimeError):
    """A worker process loaded other keys than the flow run it works for."""


def worker_context(data_dir: str | Path, pseudonym_key_id: str, quarantine_key_id: str) -> IngestContext:
    """The ingest context in a worker process (a Dask worker staging a batch for a flow run elsewhere).

    The worker loads the keys from its own settings: only their ids travel, never the material, and a worker
    whose keys are not the flow's fails rather than pseudonymise with another key.
    """
    ctx = ingest_context(Settings.at(data_dir))
    if (ctx.pseudonymiser.key_id, ctx.quarantine_key.key_id) != (pseudonym_key_id, quarantine_key_id):
        raise KeyMismatch(
            "this worker's pseudonym or quarantine key is not the flow run's: give every worker the same "
            "DEVICERISK_* key settings as the flow"
        )
    return ctx
