"""The lookup service's API keys (5.2.1): a small store of key hashes, one role per key.

A key is ``drk_<id>_<secret>``: the id is public and finds the record, the secret is 256 random bits. The store
keeps only a salted SHA-256 of the secret; a slow hash buys nothing against a random 256-bit secret, and
a fast one keeps every request cheap. The file is replaced atomically and is readable by its owner only;
:class:`KeyStore` re-reads it when it changes (one ``stat`` per request), so a revocation holds at once.
The key itself is shown once, when it is created, and never stored, logged or returned again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from devicerisk.store.files import locked, write_atomic

#: The roles a key may have: lookups and labels; reading the audit trail; managing keys and privacy requests.
ROLES = ("fraud_analyst", "auditor", "admin")
PREFIX = "drk"
_KEY = re.compile(r"drk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")  # the audit trail's rule for names: a key's name is its actor
DEMO_KEY_FILE = "api.key"
DEMO_KEY_NAME = "demo-analyst"


class KeyStoreError(ValueError):
    """A key that may not be created or revoked (the message never holds a key)."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One key's record: who holds it, its role, and its hash (never the key)."""

    key_id: str
    name: str
    role: str
    salt: str
    digest: str
    created_at: str
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def public(self) -> dict[str, str | None]:
        """What may be listed: no salt, no hash."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "role": self.role,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def _read(path: Path) -> dict[str, ApiKey]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {r["key_id"]: ApiKey(**r) for r in data["keys"]}


def _write(path: Path, keys: dict[str, ApiKey]) -> None:
    body = {"version": 1, "keys": [asdict(k) for k in keys.values()]}
    write_atomic(path, json.dumps(body, indent=1, sort_keys=True).encode(), mode=0o600)


def create(path: Path, role: str, name: str) -> tuple[ApiKey, str]:
    """Add a key with ``role`` for ``name``; returns its record and the key, which is shown once and never kept."""
    if role not in ROLES:
        raise KeyStoreError(f"unknown role {role!r} (one of: {', '.join(ROLES)})")
    if not _NAME.fullmatch(name):
        raise KeyStoreError("a key's name is a short name ([A-Za-z0-9_.:-], at most 64 characters)")
    with locked(path.parent):
        keys = _read(path)
        if any(k.name == name and k.active for k in keys.values()):
            raise KeyStoreError(f"an active key named {name!r} exists: revoke it first")
        key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_hex(16)
        record = ApiKey(key_id, name, role, salt, _digest(salt, secret), datetime.now(UTC).isoformat())
        _write(path, {**keys, key_id: record})
    return record, f"{PREFIX}_{key_id}_{secret}"


def revoke(path: Path, name_or_id: str) -> list[ApiKey]:
    """Revoke the active keys named ``name_or_id`` (or with that id); returns them (empty: none matched)."""
    now = datetime.now(UTC).isoformat()
    with locked(path.parent):
        keys = _read(path)
        hit = [k for k in keys.values() if k.active and name_or_id in (k.name, k.key_id)]
        for k in hit:
            keys[k.key_id] = ApiKey(**{**asdict(k), "revoked_at": now})
        if hit:
            _write(path, keys)
    return [keys[k.key_id] for k in hit]


def listing(path: Path) -> list[ApiKey]:
    """Every key's record, oldest first."""
    return sorted(_read(path).values(), key=lambda k: k.created_at)


class KeyStore:
    """The keys as the running service sees them: re-read whenever the file changes, so a revocation holds at
    the next request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[str, ApiKey] = {}

    def _current(self) -> dict[str, ApiKey]:
        try:
            st = os.stat(self.path)
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            with self._lock:
                self._keys, self._stamp = (_read(self.path) if stamp else {}), stamp
        return self._keys

    def verify(self, presented: str | None) -> ApiKey | None:
        """The active key ``presented`` is, or None (missing, malformed, unknown, wrong secret or revoked)."""
        match = _KEY.fullmatch(presented or "")
        if match is None:
            return None
        key = self._current().get(match.group(1))
        if key is None or not key.active:
            return None
        return key if hmac.compare_digest(key.digest, _digest(key.salt, match.group(2))) else None


def ensure_demo_key(path: Path, secrets_dir: Path) -> tuple[Path, bool]:
    """Demo mode only: a local ``fraud_analyst`` key in ``secrets_dir`` (owner-only), registered in the store.

    Returns the key file and whether it was created now. A key file whose key the store no longer accepts
    (revoked, or the store was reset) is replaced.
    """
    key_file = secrets_dir / DEMO_KEY_FILE
    if key_file.exists() and KeyStore(path).verify(key_file.read_text().strip()) is not None:
        return key_file, False
    revoke(path, DEMO_KEY_NAME)  # a demo key whose file was lost or revoked: replaced below
    _, key = create(path, "fraud_analyst", DEMO_KEY_NAME)
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(key_file, (key + "\n").encode(), mode=0o600)
    return key_file, True
