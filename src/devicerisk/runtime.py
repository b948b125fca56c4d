"""One run's configuration, resolved once: the settings, the keys, the retention policy, and each layer's view.

A flow run builds one :class:`Runtime` from its data directory; its tasks receive the views they need
(``ingest`` for ingest, ``stores`` for governance, ``risk`` and ``plan`` for training and scoring), so
settings are read and keys loaded once per run, never per task. A parent flow shares its runtime with
the subflows it calls (:func:`sharing`): each flow asks :func:`for_run`, which returns the parent's when
there is one for the same data directory. Keys never travel as flow parameters: only the data directory does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from devicerisk.config import Settings
from devicerisk.governance.stores import Stores, stores_for
from devicerisk.ingest.pipeline import IngestContext
from devicerisk.ingest.runtime import ingest_context
from devicerisk.risk.service import RiskStores, TrainingPlan
from devicerisk.store import audit


@dataclass(frozen=True, slots=True)
class Runtime:
    """The settings of a run with the keys and the retention policy loaded once."""

    settings: Settings
    stores: Stores  # governance's view: every store, the keyrings, the retention policy, the audit trail
    ingest: IngestContext  # ingest's view, with the same current pseudonym and quarantine keys
    risk: RiskStores  # training's and scoring's stores
    plan: TrainingPlan  # the alert budget and the training windows

    @property
    def audit(self) -> audit.Trail:
        return self.stores.audit


class LocalLakeOnly(ValueError):
    """The flows were given an object-store lake, which only the ingest library writes and reads yet."""


def build(settings: Settings) -> Runtime:
    """Resolve ``settings``: keys, policy and audit trail are read here, so a missing one fails the run at once."""
    if settings.lake_uri:
        # scoring, training, retention and analytics still read the lake as local files: one lake, not two
        raise LocalLakeOnly(
            "DEVICERISK_LAKE_URI is set, but the flows need a local lake yet: only devicerisk.ingest (ingest_context) "
            "writes and reads the events table in object storage (docs/OPERATIONS.md, 'Scale-out')"
        )
    stores = stores_for(settings)
    ingest = ingest_context(settings, stores.keyring[0], stores.quarantine_key)
    return Runtime(settings, stores, ingest, RiskStores.of(settings), TrainingPlan.of(settings))


_CURRENT: ContextVar[Runtime | None] = ContextVar("devicerisk_runtime", default=None)


def for_run(data_dir: str | Path | None) -> Runtime:
    """The runtime of this flow run: the enclosing flow's for the same data directory, else a new one."""
    settings = Settings.at(data_dir)
    current = _CURRENT.get()
    if current is not None and current.settings.data_dir == settings.data_dir:
        return current
    return build(settings)


@contextmanager
def sharing(runtime: Runtime) -> Iterator[Runtime]:
    """Within the block, flows called for the same data directory reuse ``runtime`` (subflows run inline)."""
    token = _CURRENT.set(runtime)
    try:
        yield runtime
    finally:
        _CURRENT.reset(token)
