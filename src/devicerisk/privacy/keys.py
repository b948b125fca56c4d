"""Key loading: pseudonymisation, quarantine, audit and verification keys, with ids so they can be rotated.

A key never reaches a log or an exception message; only its id does. The id is a keyed digest of a
constant, so it reveals nothing about the key. Production mode uses only keys given explicitly
(``DEVICERISK_<PURPOSE>_KEY`` or ``_KEY_FILE``): a demo key left in ``secrets_dir`` is never picked up.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from devicerisk.config import Mode, Settings

log = logging.getLogger(__name__)

PSEUDONYM_KEY_FILE = "pseudonym.key"
QUARANTINE_KEY_FILE = "quarantine.key"
AUDIT_KEY_FILE = "audit.key"
VERIFICATION_KEY_FILE = "verification.key"


class MissingKeyError(RuntimeError):
    """A key is missing or malformed. The message never contains key material."""


@dataclass(frozen=True, slots=True)
class Key:
    """Secret bytes and their public id."""

    material: bytes = field(repr=False)
    key_id: str

    @classmethod
    def from_bytes(cls, material: bytes, purpose: str) -> Key:
        if len(material) < 32:
            raise MissingKeyError(f"the {purpose} key must be at least 32 bytes")
        key_id = hmac.new(material, b"devicerisk/key-id/" + purpose.encode(), hashlib.sha256).hexdigest()[:12]
        return cls(material, key_id)

    def __repr__(self) -> str:  # never print the material
        return f"Key(key_id={self.key_id!r})"


def decode_key_text(text: str, purpose: str) -> bytes:
    """Decode a key given as hex or base64 text."""
    text = text.strip()
    try:
        return bytes.fromhex(text)
    except ValueError:
        pass
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MissingKeyError(f"the {purpose} key is neither hex nor base64") from None


def _read_key_file(path: Path, purpose: str) -> bytes:
    try:
        return decode_key_text(path.read_text(), purpose)
    except FileNotFoundError:
        raise MissingKeyError(f"the {purpose} key file does not exist: {path}") from None


def _create_demo_key(path: Path, purpose: str, nbytes: int) -> bytes:
    """Create a random key file readable by the owner only, and say so loudly."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    material = secrets.token_bytes(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(material.hex())
    log.warning(
        "DEMO MODE: generated a local %s key at %s. Use real keys from a secret store in production "
        "(DEVICERISK_MODE=production with DEVICERISK_%s_KEY or DEVICERISK_%s_KEY_FILE).",
        purpose,
        path,
        purpose.upper(),
        purpose.upper(),
    )
    return material


def _load(settings: Settings, purpose: str, default_file: str, nbytes: int) -> Key:
    secret = getattr(settings, f"{purpose}_key")
    key_file: Path | None = getattr(settings, f"{purpose}_key_file")
    if secret is not None:
        material = decode_key_text(secret.get_secret_value(), purpose)
    elif key_file is not None:
        material = _read_key_file(key_file, purpose)
    elif settings.mode is not Mode.DEMO:  # a key file in secrets_dir may be a demo key: never guess
        name = f"DEVICERISK_{purpose.upper()}_KEY"
        raise MissingKeyError(
            f"no {purpose} key: set {name} or {name}_FILE (production mode uses only keys it is "
            "given, never one from the demo's secrets folder)"
        )
    else:
        path = settings.secrets_dir / default_file
        try:
            material = _read_key_file(path, purpose) if path.exists() else _create_demo_key(path, purpose, nbytes)
        except FileExistsError:  # another process created it first
            material = _read_key_file(path, purpose)
    return Key.from_bytes(material, purpose)


def load_pseudonym_key(settings: Settings) -> Key:
    """The key of the pseudonymisation PRF."""
    return _load(settings, "pseudonym", PSEUDONYM_KEY_FILE, 32)


def load_quarantine_key(settings: Settings) -> Key:
    """The AES-256-GCM key that encrypts quarantined records at rest."""
    key = _load(settings, "quarantine", QUARANTINE_KEY_FILE, 32)
    if len(key.material) != 32:
        raise MissingKeyError("the quarantine key must be exactly 32 bytes (AES-256)")
    return key


def load_verification_key(settings: Settings) -> Key | None:
    """The HMAC key shared with the platform that signs identity-verification tokens (6.4.2).

    ``None`` in production mode when none is given: platform tokens are then refused (requests verified in
    person or by documents still go), and the rest of the pipeline, which never needs this key, runs as before.
    """
    if settings.mode is not Mode.DEMO and settings.verification_key is None and settings.verification_key_file is None:
        return None
    return _load(settings, "verification", VERIFICATION_KEY_FILE, 32)


def load_audit_keyring(settings: Settings) -> list[Key]:
    """The HMAC key that authenticates the audit chain, then the retired ones (records written before a rotation)."""
    retired = [_retired(p, "audit") for p in settings.previous_audit_key_files]
    return [_load(settings, "audit", AUDIT_KEY_FILE, 32), *retired]


def load_pseudonym_keyring(settings: Settings) -> list[Key]:
    """The current pseudonym key, then the retired ones (to find data pseudonymised before a rotation)."""
    retired = [_retired(p, "pseudonym") for p in settings.previous_pseudonym_key_files]
    return [load_pseudonym_key(settings), *retired]


def load_quarantine_keyring(settings: Settings) -> dict[str, Key]:
    """Quarantine keys by id: the current one and the retired ones, so every sealed file stays readable."""
    keys = [load_quarantine_key(settings)]
    keys += [_retired(p, "quarantine") for p in settings.previous_quarantine_key_files]
    return {k.key_id: k for k in reversed(keys)}


def _retired(path: Path, purpose: str) -> Key:
    return Key.from_bytes(_read_key_file(path, purpose), purpose)


#: Every purpose that has a key, in the order a decommissioning destroys them (the audit key last).
PURPOSES = ("pseudonym", "quarantine", "audit", "verification")
_DEFAULT_FILES = {
    "pseudonym": PSEUDONYM_KEY_FILE,
    "quarantine": QUARANTINE_KEY_FILE,
    "audit": AUDIT_KEY_FILE,
    "verification": VERIFICATION_KEY_FILE,
}


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where one key of the installation is: a file (``path``), or an environment variable (``path`` None)."""

    purpose: str
    use: str  # "current", "retired", or "unused" (a demo key left in secrets_dir that production mode ignores)
    path: Path | None
    variable: str | None  # the setting that names it, when one does
    key_id: str | None  # None when the file is missing or its text is no key


def _id_of(text: str, purpose: str) -> str | None:
    try:
        return Key.from_bytes(decode_key_text(text, purpose), purpose).key_id
    except MissingKeyError:
        return None


def _file_source(path: Path, purpose: str, use: str, variable: str | None) -> KeySource:
    text = path.read_text() if path.is_file() else None
    return KeySource(purpose, use, path, variable, None if text is None else _id_of(text, purpose))


def key_sources(settings: Settings) -> list[KeySource]:
    """Every key the settings use or the secrets folder holds, with its id; creates nothing (unlike the loaders,
    which make a demo key when there is none). A key file that does not exist is listed with no id."""
    found: list[KeySource] = []
    for purpose in PURPOSES:
        name = f"DEVICERISK_{purpose.upper()}_KEY"
        secret: SecretStr | None = getattr(settings, f"{purpose}_key")
        key_file: Path | None = getattr(settings, f"{purpose}_key_file")
        demo = settings.secrets_dir / _DEFAULT_FILES[purpose]
        if secret is not None:
            found.append(KeySource(purpose, "current", None, name, _id_of(secret.get_secret_value(), purpose)))
        elif key_file is not None:
            found.append(_file_source(key_file, purpose, "current", f"{name}_FILE"))
        elif settings.mode is Mode.DEMO:
            found.append(_file_source(demo, purpose, "current", None))
        if demo.is_file() and all(s.path is None or s.path.resolve() != demo.resolve() for s in found):
            found.append(_file_source(demo, purpose, "unused", None))
        for path in getattr(settings, f"previous_{purpose}_key_files", ()):  # the verification key has none
            found.append(_file_source(path, purpose, "retired", f"DEVICERISK_PREVIOUS_{purpose.upper()}_KEY_FILES"))
    return found
