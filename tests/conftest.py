"""Shared fixtures: isolated settings with their own keys and data folder."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import IngestContext
from devicerisk.ingest.runtime import ingest_context


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a fresh data folder and real keys from (test-local) key files outside it."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    for name in ("pseudonym", "quarantine"):
        key_file = secrets_dir / f"{name}.key"
        key_file.write_text(secrets.token_hex(32))
        os.chmod(key_file, 0o600)
    return Settings(
        mode="production",
        data_dir=tmp_path / "data",
        secrets_dir=secrets_dir,
        pseudonym_key_file=secrets_dir / "pseudonym.key",
        quarantine_key_file=secrets_dir / "quarantine.key",
    )


@pytest.fixture
def ctx(settings: Settings) -> IngestContext:
    return ingest_context(settings)
