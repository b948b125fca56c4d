"""The service's state, built once per process: settings, key store, audit trail, serving view and scorer.

The serving view is loaded when the service starts (empty until a score run publishes snapshots); the real-time
scorer is opened on first use (``devicerisk serve`` opens it right after starting), so the app starts, and answers
every other endpoint, before any model exists.
"""

from __future__ import annotations

import gc
import threading
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread

from devicerisk.api.audit_writer import GroupAudit
from devicerisk.api.problems import Problem
from devicerisk.config import Settings
from devicerisk.governance.stores import audit_trail
from devicerisk.lookup.realtime import NotScorable, RealtimeScorer
from devicerisk.lookup.refs import Refs
from devicerisk.lookup.view import LiveView, ServingView
from devicerisk.privacy.keys import load_pseudonym_keyring
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.store import audit
from devicerisk.store.api_keys import KeyStore


def settle() -> None:
    """Exempt every object alive now from later garbage collections.

    What the service builds at start (its modules, the serving view, the scorer's model) lives as long as the
    process. Left in the collector's oldest generation, each full collection walks all of it, about 150 ms on
    this service's imports alone, and every request waiting behind it is delayed as long: that was the lookup
    latency's p99. Frozen, a full collection walks only what requests have made since.
    """
    gc.collect()  # garbage of the start-up, not frozen with the rest
    gc.freeze()


@dataclass
class Service:
    """What the endpoints share. Thread-safe: FastAPI runs plain ``def`` endpoints in a thread pool; the lookups
    are ``async`` and use the ``a*`` methods, which never block the event loop."""

    settings: Settings
    keys: KeyStore
    trail: audit.Trail
    keyring: tuple[Pseudonymiser, ...]  # the current pseudonym key first: raw identifiers -> pseudonyms
    live: LiveView  # the serving snapshots, switched atomically when one is republished
    audit_log: GroupAudit  # the trail's writer for every request, by group commit
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _opened: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, settings: Settings) -> Service:
        """The service of ``settings``: reads the keys and loads the serving snapshots now, so a missing key
        fails at start and the first lookup is as quick as the others."""
        keys = load_pseudonym_keyring(settings)
        keyring = tuple(Pseudonymiser(k, settings.default_phone_region) for k in keys)
        live = LiveView(settings.serving_dir, Refs(keys[0]))
        trail = audit_trail(settings)
        return cls(settings, KeyStore(settings.api_keys_path), trail, keyring, live, GroupAudit(trail))

    def view(self) -> ServingView:
        """The newest complete serving view (a republished snapshot is seen by the next lookup)."""
        return self.live.current()

    async def aview(self) -> ServingView:
        """:meth:`view` for a coroutine: a snapshot's load (seconds) runs in a worker thread, not the event loop."""
        view = self.live.fresh()
        return view if view is not None else await anyio.to_thread.run_sync(self.live.current)

    def scorer(self) -> RealtimeScorer:
        """The real-time scorer, opened at its first use (it loads the champion and the indexed history, and
        refreshes them in the background); 503 while there is nothing to score with."""
        with self._lock:
            scorer = self._opened.get("scorer")
            if scorer is None:
                try:
                    scorer = self._opened["scorer"] = RealtimeScorer.open(self.settings)
                except NotScorable as err:
                    raise Problem(503, f"score now is not available: {err}", {"Retry-After": "60"}) from None
                settle()  # the model and the modules it imported live as long as the process
            return scorer

    def close(self) -> None:
        """Stop the scorer's refreshing thread, if it was opened, and write the audit records still queued."""
        with self._lock:
            scorer = self._opened.pop("scorer", None)
        if scorer is not None:
            scorer.close()
        self.audit_log.close()

    def record(self, caller: Any, action: str, counts: dict[str, int] | None = None) -> None:
        """Audit one request: who (the key's name), role, action, purpose and counts, never a value asked for."""
        self.audit_log.record(audit.body(caller.name, caller.role, action, caller.purpose, counts))

    async def arecord(self, caller: Any, action: str, counts: dict[str, int] | None = None) -> None:
        """:meth:`record` for a coroutine."""
        await self.audit_log.arecord(audit.body(caller.name, caller.role, action, caller.purpose, counts))
