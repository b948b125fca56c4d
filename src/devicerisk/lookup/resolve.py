"""Resolution of a raw identifier as an investigator gives it: an account id, a device identifier (IMEI, IDFA,
OAID, MAC, Android ID, IDFV) or a phone number.

The value is normalised and pseudonymised exactly as ingest does, under every key of the keyring (rows
written before a key rotation are found too), by :mod:`devicerisk.governance.subjects`, the one place that
turns a person's identifiers into pseudonyms. The raw value lives only in the caller's memory: nothing here
logs, prints or stores it, and error messages name its kind, never the value. A phone number resolves to the
accounts whose current number it is (from the account snapshot); a device identifier to the device it names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from devicerisk.config import Settings
from devicerisk.contract.fields import DEVICE_KEY_COLUMNS
from devicerisk.governance.subjects import (
    DOMAIN_COLUMNS,
    Identifiers,
    MalformedIdentifierError,
    pseudonymise_identifiers,
)
from devicerisk.lookup.view import ServingView
from devicerisk.privacy.keys import load_pseudonym_keyring
from devicerisk.privacy.pseudonymise import Pseudonymiser

#: Device identifier kinds a device can be looked up by: those the contract's device key is made of.
DEVICE_KINDS = tuple(d for d, (_, column) in DOMAIN_COLUMNS.items() if column in DEVICE_KEY_COLUMNS)
#: Every kind of raw identifier a lookup accepts.
KINDS = ("account", "transaction", "phone", *DEVICE_KINDS)

__all__ = ["DEVICE_KINDS", "KINDS", "Candidates", "MalformedIdentifierError", "candidates", "find", "keyring"]


@dataclass(frozen=True, slots=True)
class Candidates:
    """The pseudonyms one raw identifier may have (one per key of the keyring), by kind."""

    kind: str  # account, transaction, phone, or a device kind (imei, mac, ...)
    pids: tuple[str, ...]

    def __repr__(self) -> str:
        return f"Candidates({self.kind}, {len(self.pids)} pseudonyms)"


def keyring(settings: Settings) -> list[Pseudonymiser]:
    """The settings' pseudonymisers: the current key first, then the retired ones."""
    return [Pseudonymiser(k, settings.default_phone_region) for k in load_pseudonym_keyring(settings)]


def candidates(kind: str, value: str, keyring: Sequence[Pseudonymiser]) -> Candidates:
    """The pseudonyms of ``value`` (a raw identifier of ``kind``) under every key of ``keyring``.

    Raises :class:`MalformedIdentifierError` for an unknown kind, or a value that cannot be normalised (the
    message names the kind, never the value).
    """
    if kind not in KINDS:
        raise MalformedIdentifierError(f"unknown identifier kind {kind!r} (known: {', '.join(KINDS)})")
    if not isinstance(value, str) or not value.strip():
        raise MalformedIdentifierError(f"the {kind} identifier given is empty")
    if kind == "transaction":  # a transaction id is no subject's identifier: its own domain, nothing to link
        pids = {p.pseudonymise_one("transaction", value) for p in keyring}
        return Candidates(kind, tuple(sorted(p for p in pids if p is not None)))
    if kind == "account":
        ids = Identifiers(account_id=value)
    elif kind == "phone":
        ids = Identifiers(phone=value)
    else:
        ids = Identifiers(devices={kind: value})
    subject = pseudonymise_identifiers(ids, keyring)
    found = subject.accounts if kind == "account" else subject.identifiers[DOMAIN_COLUMNS[kind][1]]
    return Candidates(kind, tuple(sorted(found)))


def find(view: ServingView, found: Candidates) -> dict[str, list[str]]:
    """What the view knows of the candidates: ``accounts`` and ``transactions`` (pseudonyms) and ``devices``
    (device keys)."""
    if found.kind == "transaction":
        known = [p for p in found.pids if view.transaction(p) is not None]
        return {"transactions": known, "accounts": [], "devices": []}
    if found.kind == "account":
        return {"accounts": [p for p in found.pids if view.account(p, recent=0) is not None], "devices": []}
    if found.kind == "phone":
        accounts = dict.fromkeys(a for p in found.pids for a in view.phone_accounts(p))
        return {"accounts": list(accounts), "devices": []}
    devices = dict.fromkeys(k for p in found.pids if (k := view.device_key_of(p)) is not None)
    return {"accounts": [], "devices": list(devices)}
