"""Score now: one raw transaction event scored in real time by the champion model, as batch scoring would.

A :class:`RealtimeScorer` is opened once per service process. It holds the champion's transaction model,
the feedback labels and the signal log's rows indexed by key (``lookup.history``). ``score`` takes one
raw event in contract form, validates and treats it in memory as ingest would (``lookup.event``), makes
its signal row by the log's rules, runs the batch feature engines (``risk.windows``, ``risk.declared``)
over the rows sharing a key with it, and scores and words it with ``risk.service.score_rows``: the same
definitions as batch scoring, so the same score, level and reasons for the same transaction.

Nothing is written while scoring. The state (model, labels, history) is replaced whole, off the request
path: :meth:`RealtimeScorer.refresh` (run every ``refresh_seconds`` by a background thread) reloads what
changed: a new champion, new labels, new events (the signal log refreshed to the lake first, as the
score flow does). A request reads one state from start to end.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from devicerisk.config import Settings
from devicerisk.lookup.event import InvalidEvent, Treatment
from devicerisk.lookup.history import History, event_signals
from devicerisk.risk import signals, windows
from devicerisk.risk.labels import read_labels
from devicerisk.risk.model import RiskModel, Thresholds
from devicerisk.risk.service import load_models, score_rows
from devicerisk.store import lake, registry

__all__ = ["InvalidEvent", "NotScorable", "RealtimeScorer"]

log = logging.getLogger(__name__)


class NotScorable(LookupError):
    """The scorer cannot score yet: no champion model, no events in the lake, or no C feature engine."""


@dataclass(frozen=True, slots=True)
class _State:
    """Everything one score reads, replaced whole by a refresh."""

    model_version: str
    model: RiskModel
    thresholds: Thresholds
    labels: pa.Table
    labels_version: int | None
    history: History
    reports: windows.Reports  # the labels as the engines read them, over the whole history


def _table_version(lake_dir: Path, name: str) -> int | None:
    table = lake.open_table(lake_dir, name)
    return None if table is None else table.version()


def _history(lake_dir: Path, signals_dir: Path) -> History:
    """The signal log of the lake's current events, refreshed first only when it is behind."""
    view = signals.read_log(signals_dir)
    if view is None or view.version != _table_version(lake_dir, lake.EVENTS):
        signals.refresh_log(lake_dir, signals_dir)  # the score flow's refresh: under the log's lock
        view = signals.read_log(signals_dir)
    if view is None:
        raise NotScorable("the lake has no events yet: ingest first")
    return History.of(view.version, view.table)


class RealtimeScorer:
    """Scores one raw transaction event at a time with the current champion (see the module's docstring)."""

    def __init__(self, settings: Settings, treatment: Treatment, state: _State) -> None:
        self.settings = settings
        self.treatment = treatment
        self._state = state
        self._refreshing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def open(cls, settings: Settings, refresh_seconds: float | None = 5.0) -> RealtimeScorer:
        """Load the champion, the labels and the indexed history; with ``refresh_seconds``, a daemon thread
        refreshes them that often (None: only when :meth:`refresh` is called)."""
        if not windows.available():
            raise NotScorable("the C feature engine (devicerisk._windows) is not built")
        version = registry.champion(settings.models_dir)
        if version is None:
            raise NotScorable("no model has been trained yet: run `devicerisk risk train`")
        model, thresholds = load_models(settings.models_dir, version)["transaction"]
        labels_version = _table_version(settings.lake_dir, lake.LABELS)
        history = _history(settings.lake_dir, settings.signals_dir)
        labels = read_labels(settings.lake_dir)
        reports = windows.Reports.of(history.table, labels)
        state = _State(version, model, thresholds, labels, labels_version, history, reports)
        scorer = cls(settings, Treatment.of(settings), state)
        if refresh_seconds is not None:
            scorer._thread = threading.Thread(
                target=scorer._keep_fresh, args=(refresh_seconds,), name="score-now-refresh", daemon=True
            )
            scorer._thread.start()
        return scorer

    def close(self) -> None:
        """Stop the refreshing thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> RealtimeScorer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def model(self) -> RiskModel:
        return self._state.model

    @property
    def model_version(self) -> str:
        return self._state.model_version

    @property
    def history_rows(self) -> int:
        """The signal rows the history holds."""
        return self._state.history.rows

    @property
    def history_version(self) -> int:
        """The lake's events version the history covers."""
        return self._state.history.version

    def _keep_fresh(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            try:
                self.refresh()
            except Exception:  # the next round tries again; the current state keeps answering
                log.exception("score-now refresh failed; the previous state is kept")

    def refresh(self) -> dict[str, bool]:
        """Reload what changed since the state was loaded: the champion, the labels, the events."""
        with self._refreshing:
            s, state = self.settings, self._state
            changed = {"model": False, "labels": False, "events": False}
            version = registry.champion(s.models_dir)
            if version is not None and version != state.model_version:
                model, thresholds = load_models(s.models_dir, version)["transaction"]
                state = replace(state, model_version=version, model=model, thresholds=thresholds)
                changed["model"] = True
            labels_version = _table_version(s.lake_dir, lake.LABELS)
            if labels_version != state.labels_version:
                state = replace(state, labels=read_labels(s.lake_dir), labels_version=labels_version)
                changed["labels"] = True
            view_version = _table_version(s.lake_dir, lake.EVENTS)
            if view_version != state.history.version:
                state = replace(state, history=_history(s.lake_dir, s.signals_dir))
                changed["events"] = True
            if changed["labels"] or changed["events"]:
                state = replace(state, reports=windows.Reports.of(state.history.table, state.labels))
            self._state = state  # one assignment: a request sees the old state or the new one, whole
            if any(changed.values()):
                log.info("score-now state refreshed: %s", ", ".join(k for k, v in changed.items() if v))
            return changed

    def treat(self, raw: Any, now: datetime | None = None) -> pa.Table:
        """The treated lake row of one raw transaction event (validated; nothing written)."""
        treated = self.treatment.treat(raw, now)
        if treated.column("event_type")[0].as_py() != "transaction":
            raise InvalidEvent(["score now scores transaction events only"])
        if treated.column("account_id_pid")[0].as_py() is None:
            raise InvalidEvent(["missing account_id: a transaction without an account is not scored"])
        return treated

    def features(self, treated: pa.Table, state: _State | None = None) -> tuple[pa.Table, np.ndarray]:
        """The feature row of one treated transaction (rows: ``qid``, ``t``, ``acct``, ``txn``), in the
        model's feature order, from the history before it."""
        state = state or self._state
        sig = event_signals(treated)
        rows = state.history.before(sig)
        at = signals.EPOCH + timedelta(microseconds=int(sig.column("t")[0].as_py()))
        found, X = windows.transaction_features(rows, state.labels, at, at + timedelta(microseconds=1), state.reports)
        if found.num_rows != 1:  # the event is the only transaction at or after its own time
            raise RuntimeError(f"expected one feature row for the event, got {found.num_rows}")
        return found, windows.matrix(X, state.model.features)

    def score(self, raw: Any, now: datetime | None = None) -> dict[str, Any]:
        """Score one raw transaction event (a decoded JSON object in contract form).

        Returns the score, level, worded reasons, model version and kind, the transaction and account
        pseudonyms and the as-of time (the event's time: the features read only what came before it).
        Raises :class:`InvalidEvent` with the contract's reasons for an event it rejects.
        """
        state = self._state
        treated = self.treat(raw, now)
        rows, X = self.features(treated, state)
        scored = score_rows(rows, X, state.model, state.thresholds).to_pylist()[0]
        as_of = treated.column("event_time")[0].as_py()
        return {
            "event_id": scored["qid"],
            "transaction_id_pid": scored["txn"],
            "account_id_pid": scored["account_id_pid"],
            "score": scored["score"],
            "level": scored["level"],
            "reasons": scored["reasons"],
            "model_version": state.model_version,
            "model_kind": state.model.kind,
            "as_of": as_of,
            "scored_at": now or datetime.now(UTC),
            "history_version": state.history.version,
        }
