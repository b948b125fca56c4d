"""Key loading: demo keys are created loudly and privately; production never invents one."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from devicerisk.config import Settings
from devicerisk.privacy.keys import (
    MissingKeyError,
    load_audit_keyring,
    load_pseudonym_key,
    load_pseudonym_keyring,
    load_quarantine_key,
)


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


@pytest.mark.parametrize("purpose", ["pseudonym", "quarantine", "audit"])
def test_production_mode_never_uses_a_demo_key_left_in_the_secrets_folder(tmp_path: Path, purpose: str) -> None:
    secrets_dir = tmp_path / "secrets"
    demo = Settings(mode="demo", data_dir=tmp_path / "data", secrets_dir=secrets_dir)
    load_pseudonym_key(demo), load_quarantine_key(demo), load_audit_keyring(demo)  # what `make demo` leaves behind
    assert {p.name for p in secrets_dir.iterdir()} == {"pseudonym.key", "quarantine.key", "audit.key"}
    given = {f"{p}_key": "cd" * 32 for p in ("pseudonym", "quarantine", "audit") if p != purpose}
    production = Settings(mode="production", data_dir=tmp_path / "data", secrets_dir=secrets_dir, **given)
    load = {"pseudonym": load_pseudonym_keyring, "quarantine": load_quarantine_key, "audit": load_audit_keyring}
    with pytest.raises(MissingKeyError, match=f"DEVICERISK_{purpose.upper()}_KEY_FILE"):
        load[purpose](production)
    for other, loader in load.items():
        if other != purpose:
            assert loader(production)  # the keys it was given are used


def test_the_audit_key_is_separate_and_retired_audit_keys_are_kept(tmp_path: Path) -> None:
    retired = tmp_path / "audit-old.key"
    retired.write_text("ef" * 32)
    settings = Settings(
        mode="production",
        data_dir=tmp_path / "data",
        pseudonym_key="ab" * 32,
        audit_key="ab" * 32,
        previous_audit_key_files=[retired],
    )
    current, old = load_audit_keyring(settings)
    assert current.key_id != load_pseudonym_key(settings).key_id  # same bytes, another purpose: another id
    assert old.material == bytes.fromhex("ef" * 32)
    with pytest.raises(ValidationError, match="outside the data directory"):
        Settings(data_dir=tmp_path / "data", audit_key_file=tmp_path / "data" / "audit.key")


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
