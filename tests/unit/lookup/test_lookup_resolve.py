"""Raw identifiers as an investigator gives them, resolved under every key of a rotated keyring; malformed
ones refused with a message that names the kind, never the value."""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta

import pyarrow as pa
import pytest

from devicerisk.config import Settings
from devicerisk.governance.stores import stores_for
from devicerisk.lookup.resolve import KINDS, MalformedIdentifierError, candidates, find
from devicerisk.lookup.resolve import keyring as resolve_keyring
from devicerisk.lookup.view import ServingView
from devicerisk.privacy.keys import load_pseudonym_keyring
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.store import serving
from factories import T0, account_snapshot, refs

OLD_ACCOUNT, NEW_ACCOUNT = "ACC-2024-0001", "ACC-2026-0042"
PHONE, IMEI, IDFA = "+86 138 0013 8000", "49-015420-323751-8", "6D92078A-8246-4BA4-AE5B-76104861E7DC"


@pytest.fixture
def rotated(settings: Settings) -> tuple[Settings, Pseudonymiser, Pseudonymiser]:
    """``settings`` after a key rotation: a new current key, the old one retired but still in the keyring."""
    old_file = settings.secrets_dir / "pseudonym-retired.key"
    old_file.write_text(settings.pseudonym_key_file.read_text())
    new_file = settings.secrets_dir / "pseudonym-new.key"
    new_file.write_text(secrets.token_hex(32))
    os.chmod(new_file, 0o600)
    os.chmod(old_file, 0o600)
    s = settings.model_copy(update={"pseudonym_key_file": new_file, "previous_pseudonym_key_files": [old_file]})
    new, old = (Pseudonymiser(k) for k in load_pseudonym_keyring(s))
    return s, old, new


def _serving(s: Settings, old: Pseudonymiser, new: Pseudonymiser) -> ServingView:
    """The account scored before the rotation is known by its old-key pseudonyms, the other by its new ones."""
    before, after = old.pseudonymise_one("account", OLD_ACCOUNT), new.pseudonymise_one("account", NEW_ACCOUNT)
    phones = [old.pseudonymise_one("phone", PHONE), new.pseudonymise_one("phone", PHONE)]  # the number moved
    table = account_snapshot([before, after], [80.0, 10.0], T0, phone_pid=phones)
    serving.publish(s.serving_dir, serving.ACCOUNTS, table)
    device, idfa = old.pseudonymise_one("imei", IMEI), new.pseudonymise_one("idfa", IDFA)
    edges = pa.table(
        {
            "device_key": [device, idfa],
            "account_id_pid": [before, after],
            "account_events": [3, 1],
            "event_date": pa.array([T0.date()] * 2, pa.date32()),
            "device_ids": [[device], [idfa]],
            "first_seen": pa.array([T0 - timedelta(days=3)] * 2, pa.timestamp("us", tz="UTC")),
        }
    )
    serving.publish(s.serving_dir, serving.DEVICES, edges)
    return ServingView.load(s.serving_dir, refs())


def test_identifiers_resolve_under_every_key_of_a_rotated_keyring(rotated, caplog) -> None:
    s, old, new = rotated
    view = _serving(s, old, new)
    keyring = resolve_keyring(s)
    assert len(keyring) == 2 and [p.key_id for p in keyring] == [p.key_id for p in stores_for(s).keyring]
    caplog.set_level(logging.DEBUG)

    account = candidates("account", OLD_ACCOUNT, keyring)
    assert set(account.pids) == {
        old.pseudonymise_one("account", OLD_ACCOUNT),
        new.pseudonymise_one("account", OLD_ACCOUNT),
    }
    assert find(view, account) == {"accounts": [old.pseudonymise_one("account", OLD_ACCOUNT)], "devices": []}
    assert find(view, candidates("account", NEW_ACCOUNT, keyring))["accounts"] == [
        new.pseudonymise_one("account", NEW_ACCOUNT)
    ]
    by_phone = find(view, candidates("phone", "13800138000", keyring))  # normalised as ingest does
    assert sorted(by_phone["accounts"]) == sorted(
        [old.pseudonymise_one("account", OLD_ACCOUNT), new.pseudonymise_one("account", NEW_ACCOUNT)]
    )
    assert find(view, candidates("imei", "490154203237518", keyring))["devices"] == [old.pseudonymise_one("imei", IMEI)]
    assert find(view, candidates("idfa", IDFA.lower(), keyring))["devices"] == [new.pseudonymise_one("idfa", IDFA)]
    assert find(view, candidates("mac", "00:1A:2B:3C:4D:5E", keyring)) == {"accounts": [], "devices": []}
    assert "imei" in KINDS and "phone" in KINDS and "imsi" not in KINDS  # device kinds are the device key's
    for raw in (OLD_ACCOUNT, "13800138000", "490154203237518", IDFA.lower()):
        assert raw not in caplog.text
        assert raw not in repr(candidates("account", raw, keyring))


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("imei", "not-an-imei"),
        ("phone", "12"),
        ("mac", "zz:zz"),
        ("idfa", "00000000-0000-0000-0000-000000000000"),  # a placeholder, not an identifier
        ("account", ""),
        ("account", "x" * 129),
        ("ssn", "110101199003074514"),
        ("imsi", "460001234567890"),  # not a device key: no device is named by it
    ],
)
def test_a_malformed_identifier_gives_a_clear_error_without_its_value(rotated, kind: str, value: str) -> None:
    s, _, _ = rotated
    with pytest.raises(MalformedIdentifierError) as err:
        candidates(kind, value, stores_for(s).keyring)
    message = str(err.value)
    assert kind in message or "identifier" in message
    assert not value or value not in message
