"""Shared fixtures: isolated settings with their own keys and data folder."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# No telemetry calls from the Prefect server: this machine has no network, and tests must not try.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# The library's own log lines go to the Prefect API too, as in a deployment, so the leak test reads them.
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "devicerisk")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")  # library calls outside a flow

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import IngestContext
from devicerisk.ingest.runtime import ingest_context


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a fresh data folder and real keys from (test-local) key files outside it."""
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    for name in ("pseudonym", "quarantine", "audit", "verification"):
        key_file = secrets_dir / f"{name}.key"
        key_file.write_text(secrets.token_hex(32))
        os.chmod(key_file, 0o600)
    return Settings(
        mode="production",
        data_dir=tmp_path / "data",
        secrets_dir=secrets_dir,
        pseudonym_key_file=secrets_dir / "pseudonym.key",
        quarantine_key_file=secrets_dir / "quarantine.key",
        audit_key_file=secrets_dir / "audit.key",
        verification_key_file=secrets_dir / "verification.key",
    )


@pytest.fixture
def ctx(settings: Settings) -> IngestContext:
    return ingest_context(settings)


@pytest.fixture
def env_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``settings`` also in the environment: flows build their own settings from it, as a deployment does."""
    monkeypatch.setenv("DEVICERISK_MODE", "production")
    monkeypatch.setenv("DEVICERISK_PSEUDONYM_KEY_FILE", str(settings.pseudonym_key_file))
    monkeypatch.setenv("DEVICERISK_QUARANTINE_KEY_FILE", str(settings.quarantine_key_file))
    monkeypatch.setenv("DEVICERISK_AUDIT_KEY_FILE", str(settings.audit_key_file))
    monkeypatch.setenv("DEVICERISK_VERIFICATION_KEY_FILE", str(settings.verification_key_file))
    monkeypatch.setenv("DEVICERISK_SECRETS_DIR", str(settings.secrets_dir))
    return settings


@pytest.fixture
def no_grace_settings(env_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """``env_settings`` with no vacuum grace period, so erasures complete within a test."""
    monkeypatch.setenv("DEVICERISK_VACUUM_GRACE_HOURS", "0")
    return env_settings.model_copy(update={"vacuum_grace_hours": 0})


@pytest.fixture(scope="session")
def prefect_db() -> Iterator[Path]:
    """A real Prefect engine and API server on loopback with a temporary SQLite database; yields its path."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        url = PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
        yield Path(url.split(":///", 1)[1])


def drain_prefect_logs() -> None:
    """Send buffered log records to the API so the database holds them before it is read."""
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all()


def _key_env(settings: Settings) -> dict[str, str]:
    """The environment a flow needs to build ``settings`` (production mode, the test's key files)."""
    return {
        "DEVICERISK_MODE": "production",
        "DEVICERISK_PSEUDONYM_KEY_FILE": str(settings.pseudonym_key_file),
        "DEVICERISK_QUARANTINE_KEY_FILE": str(settings.quarantine_key_file),
        "DEVICERISK_AUDIT_KEY_FILE": str(settings.audit_key_file),
        "DEVICERISK_VERIFICATION_KEY_FILE": str(settings.verification_key_file),
        "DEVICERISK_SECRETS_DIR": str(settings.secrets_dir),
    }


@pytest.fixture(scope="session")
def demo_lake(prefect_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A small demo lake built once by the real pipeline flow (two weeks of 1,000 synthetic accounts: events,
    labels, a trained model, scores), for the tests that only read it (the analyst interface, the notebooks).
    Its keys are in the settings returned; the environment is left as it was."""
    from devicerisk.flows.pipeline import pipeline_flow
    from devicerisk.synth import SynthConfig, generate

    root = tmp_path_factory.mktemp("demo-lake")
    secrets_dir = root / "secrets"
    secrets_dir.mkdir(mode=0o700)
    for name in ("pseudonym", "quarantine", "audit", "verification"):
        (secrets_dir / f"{name}.key").write_text(secrets.token_hex(32))
    settings = Settings(
        mode="production",
        data_dir=root / "data",
        secrets_dir=secrets_dir,
        pseudonym_key_file=secrets_dir / "pseudonym.key",
        quarantine_key_file=secrets_dir / "quarantine.key",
        audit_key_file=secrets_dir / "audit.key",
        verification_key_file=secrets_dir / "verification.key",
    )
    generate(settings.landing_dir, SynthConfig(accounts=1000, days=14, seed=7))
    with pytest.MonkeyPatch.context() as env:
        for name, value in _key_env(settings).items():
            env.setenv(name, value)
        pipeline_flow(str(settings.data_dir), accounts=True)  # as the demo runs it: account scores too
    return settings


@pytest.fixture
def demo_keys_in_env(demo_lake: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo lake's keys in the environment, as an analyst's session has them: opening the lake is audited,
    and the record is signed with the lake's audit key."""
    for name, value in _key_env(demo_lake).items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def lookup_lake(demo_lake: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A copy of the demo lake (data and keys) for one test module of the lookup service, which writes to it
    (audit records, API keys, labels, erasures) while the demo lake stays as built."""
    from factories import copy_lake

    return copy_lake(demo_lake, tmp_path_factory.mktemp("lookup-lake"))
