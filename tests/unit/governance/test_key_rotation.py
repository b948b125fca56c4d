"""Storage protection (5.2.2): keys outside data/, owner-only data/, and key rotation that keeps data usable."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

import retention_world as world
from devicerisk.config import Settings
from devicerisk.governance import requests, rotation, subject_data
from devicerisk.governance.requests import RequestKind
from devicerisk.governance.stores import stores_for
from devicerisk.governance.subjects import resolve
from devicerisk.ingest.pipeline import ingest_batch
from devicerisk.ingest.runtime import ingest_context
from devicerisk.store import lake, quarantine
from factories import verified, write_batch


def _new_key(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text(secrets.token_hex(32))
    os.chmod(path, 0o600)
    return path


def _rotated(settings: Settings, pseudonym: bool = True, quarantine_key: bool = True) -> Settings:
    update: dict[str, object] = {}
    if pseudonym:
        update |= {
            "pseudonym_key_file": _new_key(settings.secrets_dir, "pseudonym-2.key"),
            "previous_pseudonym_key_files": [settings.pseudonym_key_file],
        }
    if quarantine_key:
        update |= {
            "quarantine_key_file": _new_key(settings.secrets_dir, "quarantine-2.key"),
            "previous_quarantine_key_files": [settings.quarantine_key_file],
        }
    return settings.model_copy(update=update)


def test_clause_5_2_2_keys_must_live_outside_the_data_directory(settings: Settings) -> None:
    inside = settings.data_dir / "old.key"
    with pytest.raises(ValueError, match="outside the data directory"):
        Settings(data_dir=settings.data_dir, previous_pseudonym_key_files=[inside])


def test_clause_5_2_2_data_directory_is_owner_only(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)
    os.chmod(settings.data_dir, 0o755)  # created too open by someone else
    stores_for(settings)
    assert os.stat(settings.data_dir).st_mode & 0o777 == 0o700


def test_clause_5_2_2_after_a_pseudonym_key_rotation_requests_find_data_under_both_keys(settings: Settings) -> None:
    s = settings.model_copy(update={"vacuum_grace_hours": 0})
    world.build(s)
    rotated = _rotated(s, quarantine_key=False)
    later = world._events(world.SUBJECT.account_id, 0, "operation", "transaction")
    ingest_batch(write_batch(s.landing_dir / "telemetry" / "after-rotation.ndjson", later), ingest_context(rotated))
    events = lake.dataset(s.lake_dir, "events")
    assert events is not None
    assert len(set(events.to_table(columns=["key_id"]).column("key_id").to_pylist())) == 2  # rows carry their key

    stores = stores_for(rotated)
    subject = resolve(world.SUBJECT, stores.keyring, stores.lake_dir)
    assert len(subject.accounts) == 2  # the same account under the old and the new key
    found = requests.submit(stores, RequestKind.ACCESS, world.SUBJECT, world.NOW, verification=verified()).found or {}
    assert found["lake.events"] == 11 + 2
    requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())
    assert subject_data.locate(stores, subject) == {}

    only_new = stores_for(rotated.model_copy(update={"previous_pseudonym_key_files": []}))
    assert len(resolve(world.SUBJECT, only_new.keyring, only_new.lake_dir).accounts) == 1  # why the old key stays


def test_clause_5_2_2_quarantine_stays_readable_across_a_rotation_and_can_be_resealed(settings: Settings) -> None:
    world.build(settings)
    (batch,) = quarantine.batches(settings.quarantine_dir)
    old_id = quarantine.key_id(settings.quarantine_dir, batch)
    rotated = _rotated(settings, pseudonym=False)
    stores = stores_for(rotated)
    assert stores.quarantine_key.key_id != old_id
    assert subject_data.locate(stores, resolve(world.SUBJECT, stores.keyring, stores.lake_dir))["quarantine"] == 1

    assert rotation.rekey_quarantine(stores) == 1
    assert quarantine.key_id(settings.quarantine_dir, batch) == stores.quarantine_key.key_id
    assert rotation.rekey_quarantine(stores) == 0  # idempotent
    retired = stores_for(rotated.model_copy(update={"previous_quarantine_key_files": []}))
    rows = quarantine.read(settings.quarantine_dir, batch, retired.quarantine_key)
    assert len(rows) == 1 and b"not a number" in rows[0].raw  # readable without the retired key


def test_clause_5_2_2_a_batch_sealed_with_an_unknown_key_is_a_clear_error(settings: Settings) -> None:
    world.build(settings)
    stores = stores_for(_rotated(settings, pseudonym=False).model_copy(update={"previous_quarantine_key_files": []}))
    with pytest.raises(rotation.KeyRingError, match="not in the keyring"):
        rotation.rekey_quarantine(stores)
