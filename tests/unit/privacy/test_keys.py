"""Key loading: demo keys are created loudly and privately; production never invents one."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from devicerisk.config import Settings
from devicerisk.privacy.keys import MissingKeyError, load_pseudonym_key, load_quarantine_key


def test_demo_mode_creates_an_owner_only_key_and_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(mode="demo", data_dir=tmp_path / "data", secrets_dir=tmp_path / "secrets")
    with caplog.at_level(logging.WARNING):
        key = load_pseudonym_key(settings)
    path = tmp_path / "secrets" / "pseudonym.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "DEMO MODE" in caplog.text
    assert key.material.hex() not in caplog.text and path.read_text() not in caplog.text
    assert load_pseudonym_key(settings).key_id == key.key_id  # reused, not regenerated


def test_production_mode_refuses_to_run_without_a_key(tmp_path: Path) -> None:
    settings = Settings(mode="production", data_dir=tmp_path / "data", secrets_dir=tmp_path / "secrets")
    with pytest.raises(MissingKeyError, match="DEVICERISK_PSEUDONYM_KEY"):
        load_pseudonym_key(settings)
    assert not (tmp_path / "secrets").exists()


def test_key_from_environment_never_appears_in_repr(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = "ab" * 32
    monkeypatch.setenv("DEVICERISK_PSEUDONYM_KEY", secret)
    monkeypatch.setenv("DEVICERISK_MODE", "production")
    settings = Settings(data_dir=tmp_path / "data")
    key = load_pseudonym_key(settings)
    assert key.material == bytes.fromhex(secret)
    assert secret not in repr(key) and secret not in repr(settings) and secret not in str(settings.model_dump())


def test_keys_inside_the_data_directory_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="outside the data directory"):
        Settings(data_dir=tmp_path / "data", secrets_dir=tmp_path / "data" / "keys")


@pytest.mark.parametrize("text", ["zz-not-a-key", "abcd"])
def test_malformed_or_short_keys_are_clear_errors(tmp_path: Path, text: str) -> None:
    settings = Settings(mode="production", data_dir=tmp_path / "data", quarantine_key=text)
    with pytest.raises(MissingKeyError) as err:
        load_quarantine_key(settings)
    assert text not in str(err.value)
