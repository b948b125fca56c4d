"""Everything retention and data-subject requests act on, resolved once from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from devicerisk.config import Settings
from devicerisk.governance.retention import TIME_COLUMNS, RetentionPolicy, load_policy
from devicerisk.ingest.runtime import ensure_private_dir
from devicerisk.privacy.keys import (
    Key,
    load_audit_keyring,
    load_pseudonym_keyring,
    load_quarantine_key,
    load_quarantine_keyring,
    load_verification_key,
)
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.store import audit


@dataclass(frozen=True, slots=True)
class Stores:
    """Store locations, keys and the retention policy."""

    data_dir: Path
    lake_dir: Path
    warehouse_path: Path
    serving_dir: Path
    models_dir: Path
    quarantine_dir: Path
    landing_dir: Path
    audit_dir: Path
    requests_dir: Path
    signals_dir: Path  # the signal log, a derived cache of the lake's events: dropped whenever lake rows go
    policy: RetentionPolicy
    grace: timedelta
    cluster_file_bytes: int
    keyring: tuple[Pseudonymiser, ...]  # current key first
    quarantine_key: Key
    quarantine_keys: dict[str, Key]  # by key id, for files sealed before a rotation
    audit: audit.Trail  # the audit log in ``audit_dir`` with the keys that sign and verify it
    verification_key: Key | None  # checks the platform's identity tokens (6.4.2); None: none configured

    @property
    def snapshot_roots(self) -> dict[str, Path]:
        """The Parquet snapshot stores by name."""
        return {"serving": self.serving_dir, "models": self.models_dir}


def stores_for(settings: Settings) -> Stores:
    """The stores of ``settings``; reads the keys and the retention config (errors surface here)."""
    ensure_private_dir(settings.data_dir)
    keyring = tuple(Pseudonymiser(k, settings.default_phone_region) for k in load_pseudonym_keyring(settings))
    return Stores(
        data_dir=settings.data_dir,
        lake_dir=settings.lake_dir,
        warehouse_path=settings.warehouse_path,
        serving_dir=settings.serving_dir,
        models_dir=settings.models_dir,
        quarantine_dir=settings.quarantine_dir,
        landing_dir=settings.landing_dir,
        audit_dir=settings.audit_dir,
        requests_dir=settings.requests_dir,
        signals_dir=settings.signals_dir,
        policy=load_policy(settings.retention_config),
        grace=timedelta(hours=settings.vacuum_grace_hours),
        cluster_file_bytes=settings.lake_cluster_file_bytes,
        keyring=keyring,
        quarantine_key=load_quarantine_key(settings),
        quarantine_keys=load_quarantine_keyring(settings),
        audit=audit_trail(settings),
        verification_key=load_verification_key(settings),
    )


def audit_trail(settings: Settings) -> audit.Trail:
    """The audit log of ``settings`` with its keyring (the audit key only: no pseudonym key is needed)."""
    return audit.Trail(settings.audit_dir, tuple(load_audit_keyring(settings)))


def time_column(schema: pa.Schema) -> str | None:
    """The column that dates a row of a table that is not per-event, if it has one."""
    return next((c for c in TIME_COLUMNS if c in schema.names), None)


def before(schema: pa.Schema, name: str, cutoff: date) -> ds.Expression:
    """Rows whose ``name`` (a date or a timestamp) falls before the start of ``cutoff``."""
    kind = schema.field(name).type
    if pa.types.is_timestamp(kind):
        start = datetime(cutoff.year, cutoff.month, cutoff.day, tzinfo=None if kind.tz is None else UTC)
        return ds.field(name) < pa.scalar(start, kind)
    return ds.field(name) < pa.scalar(cutoff, pa.date32())
