"""One settings object for the whole pipeline (env prefix ``DEVICERISK_``).

Secrets come from the environment or from files outside ``data/``. Demo mode may generate local keys
in ``secrets_dir`` and says so loudly; production mode uses only the keys it is given explicitly.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from devicerisk.contract.fields import FUTURE_SKEW, MAX_BATCH_BYTES, MAX_RECORD_BYTES


class Mode(StrEnum):
    DEMO = "demo"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Where the stores live, where the keys come from, and the pipeline's knobs."""

    model_config = SettingsConfigDict(env_prefix="DEVICERISK_", env_file=None, extra="ignore")

    mode: Mode = Mode.DEMO
    data_dir: Path = Path("data")
    secrets_dir: Path = Path(".secrets")
    pseudonym_key: SecretStr | None = Field(default=None, description="hex or base64, at least 32 bytes")
    pseudonym_key_file: Path | None = None
    quarantine_key: SecretStr | None = Field(default=None, description="hex or base64, 32 bytes (AES-256-GCM)")
    quarantine_key_file: Path | None = None
    audit_key: SecretStr | None = Field(default=None, description="hex or base64, at least 32 bytes (HMAC)")
    audit_key_file: Path | None = None
    verification_key: SecretStr | None = Field(
        default=None, description="hex or base64, at least 32 bytes: HMAC of identity tokens, shared with the platform"
    )
    verification_key_file: Path | None = None
    # Keys retired by a rotation: still used to find (pseudonym), read (quarantine) or verify (audit) older data.
    previous_pseudonym_key_files: list[Path] = Field(default_factory=list)
    previous_quarantine_key_files: list[Path] = Field(default_factory=list)
    previous_audit_key_files: list[Path] = Field(default_factory=list)
    default_phone_region: str = "CN"
    minor_age: int = Field(default=18, ge=1, le=25)
    parse_chunk_rows: int = Field(default=65_536, ge=1, description="rows parsed per columnar block")
    max_record_bytes: int = Field(
        default=MAX_RECORD_BYTES,
        ge=1024,
        le=MAX_RECORD_BYTES,
        description="longer records are quarantined (the contract's bound at most)",
    )
    max_batch_bytes: int = Field(
        default=MAX_BATCH_BYTES, ge=1 << 20, description="decompressed bytes read of a batch; the rest is quarantined"
    )
    max_future_skew_hours: float = Field(
        default=FUTURE_SKEW.total_seconds() / 3600, ge=0, description="times further ahead of ingest are quarantined"
    )
    retention_config: Path | None = Field(default=None, description="TOML file of retention periods per class")
    vacuum_grace_hours: int = Field(default=1, ge=0, description="unreferenced lake files live this long")
    lake_cluster_file_bytes: int = Field(default=512 << 10, ge=1 << 16, description="target file size when clustering")
    risk_alert_budget: int = Field(default=20, ge=1, description="transactions a day at the highest risk level")
    risk_label_gap_days: float = Field(default=2, gt=0, description="least gap before test; label delay lengthens")
    risk_test_days: float = Field(default=2, gt=0, description="held-out days judging a new model")
    serving_days: int = Field(
        default=30, ge=1, le=366, description="days of scores the serving snapshots hold for lookups"
    )
    anonymity_k: int = Field(
        default=10, ge=2, description="least distinct subjects an anonymised aggregate cell describes (k-anonymity)"
    )
    lake_uri: str | None = Field(
        default=None,
        description="an s3:// URI for the events the ingest writes and reads, instead of data_dir/lake (see "
        "docs/OPERATIONS.md: the other flows do not read it yet)",
    )
    lake_storage_options: dict[str, str] = Field(
        default_factory=dict, description="deltalake storage options for lake_uri (JSON), e.g. AWS_ENDPOINT_URL"
    )
    dask_address: str | None = Field(
        default=None,
        description="a Dask scheduler (tcp://host:8786): ingest stages batches, scoring scores slices there",
    )
    api_max_body_bytes: int = Field(
        default=64 << 10, ge=1024, le=16 << 20, description="the lookup service refuses longer request bodies (413)"
    )

    @classmethod
    def at(cls, data_dir: str | Path | None = None) -> Settings:
        """The environment's settings, with ``data_dir`` (when given) over the data directory: how every command
        and flow run builds its settings."""
        return cls() if data_dir is None else cls(data_dir=Path(data_dir))

    @model_validator(mode="after")
    def _keys_outside_data(self) -> Settings:
        data = self.data_dir.resolve()
        keys = (
            self.secrets_dir,
            self.pseudonym_key_file,
            self.quarantine_key_file,
            self.audit_key_file,
            self.verification_key_file,
            *self.previous_pseudonym_key_files,
            *self.previous_quarantine_key_files,
            *self.previous_audit_key_files,
        )
        for path in keys:
            if path is not None and path.resolve().is_relative_to(data):
                raise ValueError(f"keys must live outside the data directory: {path}")
        return self

    # -- store locations: the store modules take these as arguments ------------------------------
    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def audit_dir(self) -> Path:
        return self.data_dir / "audit"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def models_dir(self) -> Path:
        """The model registry: one folder per model version (skops file, metadata, training snapshot)."""
        return self.data_dir / "models"

    @property
    def serving_dir(self) -> Path:
        """Serving snapshots of the latest scores, published atomically for the lookup service."""
        return self.data_dir / "serving"

    @property
    def signals_dir(self) -> Path:
        """The signal log: the lake's events as fixed-width rows for fast scoring (a derived cache of the lake)."""
        return self.data_dir / "signals"

    @property
    def api_keys_path(self) -> Path:
        """The lookup service's API keys: hashes only, one role each (``devicerisk keys``)."""
        return self.data_dir / "access" / "api_keys.json"

    @property
    def requests_dir(self) -> Path:
        """Data-subject request outputs: access exports and receipts (identifiers masked)."""
        return self.data_dir / "requests"
