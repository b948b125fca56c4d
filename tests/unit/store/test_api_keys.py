"""The lookup service's key store: hashes only, owner-only, one role per key, revocation seen at once."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from devicerisk.store import api_keys


def test_a_key_is_shown_once_and_only_its_salted_hash_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "access" / "api_keys.json"
    record, key = api_keys.create(path, "fraud_analyst", "ann")
    secret = key.rsplit("_", 1)[1]
    text = path.read_text()
    assert key not in text and secret not in text and record.digest in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert api_keys.KeyStore(path).verify(key) == record
    assert "digest" not in record.public() and "salt" not in record.public()


@pytest.mark.parametrize(
    "presented", [None, "", "drk_", "not a key", "drk_000000000000_" + "A" * 43, "x" * 10_000, "drk_../../etc\x00"]
)
def test_malformed_unknown_or_wrong_keys_are_refused(tmp_path: Path, presented: str | None) -> None:
    path = tmp_path / "api_keys.json"
    api_keys.create(path, "admin", "root")
    assert api_keys.KeyStore(path).verify(presented) is None


def test_a_right_id_with_a_wrong_secret_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "api_keys.json"
    _, key = api_keys.create(path, "auditor", "aud")
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert api_keys.KeyStore(path).verify(forged) is None


def test_a_running_store_sees_a_revocation_at_its_next_check(tmp_path: Path) -> None:
    path = tmp_path / "api_keys.json"
    _, key = api_keys.create(path, "fraud_analyst", "ann")
    running = api_keys.KeyStore(path)
    assert running.verify(key) is not None
    assert [k.name for k in api_keys.revoke(path, "ann")] == ["ann"]
    assert running.verify(key) is None
    assert api_keys.revoke(path, "ann") == []  # already revoked: nothing matches
    assert [k.active for k in api_keys.listing(path)] == [False]


def test_roles_and_names_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "api_keys.json"
    with pytest.raises(api_keys.KeyStoreError, match="unknown role"):
        api_keys.create(path, "root", "x")
    with pytest.raises(api_keys.KeyStoreError, match="short name"):
        api_keys.create(path, "admin", "Li Wei 13800138000 !")
    api_keys.create(path, "admin", "root")
    with pytest.raises(api_keys.KeyStoreError, match="active key named"):
        api_keys.create(path, "admin", "root")


def test_the_demo_key_is_created_once_and_replaced_when_revoked(tmp_path: Path) -> None:
    path, secrets_dir = tmp_path / "data" / "api_keys.json", tmp_path / "secrets"
    key_file, created = api_keys.ensure_demo_key(path, secrets_dir)
    assert created and stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = key_file.read_text().strip()
    assert api_keys.KeyStore(path).verify(key).role == "fraud_analyst"  # type: ignore[union-attr]
    assert api_keys.ensure_demo_key(path, secrets_dir) == (key_file, False)
    api_keys.revoke(path, api_keys.DEMO_KEY_NAME)
    assert api_keys.ensure_demo_key(path, secrets_dir) == (key_file, True)
    assert key_file.read_text().strip() != key
    assert sum(k.active for k in api_keys.listing(path)) == 1
