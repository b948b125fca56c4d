"""The service's state, built once per process: settings, key store, audit trail, serving view and scorer.

The serving view and the real-time scorer are opened on first use, so the app starts (and answers the key,
audit and admin endpoints) before any snapshot or model exists.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from devicerisk.config import Settings
from devicerisk.governance.stores import audit_trail
from devicerisk.store import audit
from devicerisk.store.api_keys import KeyStore


@dataclass
class Service:
    """What the endpoints share. Thread-safe: FastAPI runs plain ``def`` endpoints in a thread pool."""

    settings: Settings
    keys: KeyStore
    trail: audit.Trail
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _opened: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, settings: Settings) -> Service:
        """The service of ``settings``: reads the audit key now, so a missing key fails at start."""
        return cls(settings, KeyStore(settings.api_keys_path), audit_trail(settings))

    def record(self, caller: Any, action: str, counts: dict[str, int] | None = None) -> None:
        """Audit one request: who (the key's name), role, action, purpose and counts, never a value asked for."""
        audit.append(
            self.trail, actor=caller.name, role=caller.role, action=action, purpose=caller.purpose, counts=counts
        )
