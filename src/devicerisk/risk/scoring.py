"""Scoring the transactions not scored yet, in parts: plan, score each part, then commit them all at once.

Planning brings the signal log up to the lake (a write) and lists the transactions to score; scoring a part
(a slice of them, or all at once) reads the lake, the log and the model and writes nothing, so parts can run
anywhere at the same time (Dask workers); the commit appends every part's scores to the lake in one commit and
republishes serving, from one process. Parts are slices of one time order, not days: a day's part would start
its window sums at another row, and a worded reason's amount could then differ in its last cent from the one
pass's; a slice walks the same rows as the one pass, so both give the same scores and reasons (a test holds it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.risk import features as F
from devicerisk.risk import published, signals, windows
from devicerisk.risk.labels import read_labels
from devicerisk.risk.service import (
    LOOKBACK,
    NoModel,
    RiskStores,
    load_models,
    scan_events,
    score_rows,
    score_table,
)
from devicerisk.store import registry, scores, serving


@dataclass(frozen=True, slots=True)
class ScorePart:
    """Transactions to score: those of ``ids`` with ``start <= event_time < end`` (``end`` None: no bound)."""

    start: datetime
    end: datetime | None
    ids: pa.Array


@dataclass(frozen=True, slots=True)
class ScorePlan:
    """A scoring run's champion model version, the transactions not scored yet, and the signal log's refresh."""

    version: str
    todo: pa.Table  # event_id, event_time
    counts: dict[str, int] = field(default_factory=dict)

    def whole(self) -> list[ScorePart]:
        """Every transaction to score in one part."""
        return self.slices(1)

    def slices(self, k: int) -> list[ScorePart]:
        """The transactions to score dealt into ``k`` parts in time order (every k-th one), each as long as the
        others. Every part walks the same history from the same start, so its features (and worded reasons) are
        those of one pass over all of them, to the last bit."""
        todo = self.todo.sort_by([("event_time", "ascending"), ("event_id", "ascending")])
        start, ids, n = pc.min(todo.column("event_time")).as_py(), todo.column("event_id").combine_chunks(), len(todo)
        return [ScorePart(start, None, ids.take(pa.array(range(i, n, k), pa.int64()))) for i in range(min(k, n))]


def plan_transactions(stores: RiskStores) -> ScorePlan | None:
    """The champion and the transactions not scored yet (late arrivals too), with the signal log brought up to
    the lake first; None when there is nothing to score."""
    version = registry.champion(stores.models_dir)
    if version is None:
        raise NoModel("no model has been trained yet: run `devicerisk risk train`")
    # by event id, not by time: a transaction ingested late, older than the newest scored one, is still new
    todo = scores.unscored_transactions(stores.lake_dir)
    if todo.num_rows == 0:
        return None
    counts: dict[str, int] = {}
    if stores.signals_dir is not None and windows.available():
        refreshed = signals.refresh_log(stores.lake_dir, stores.signals_dir)
        counts = {"signal_rows_added": refreshed.rows_added, "signal_log_rebuilt": int(refreshed.rebuilt)}
    return ScorePlan(version, todo, counts)


def score_part(stores: RiskStores, version: str, part: ScorePart) -> pa.Table:
    """Scores, levels and reasons of one part's transactions (``qid``, ``txn``, ``account_id_pid``, ``t``, ...).

    With the signal log and the C engine, the features come from the log; otherwise (or if an erasure dropped
    the log since the plan) from the DuckDB SQL over the lake. Both give the same numbers.
    """
    model, thresholds = load_models(stores.models_dir, version)["transaction"]
    labels = read_labels(stores.lake_dir)
    view = None
    if stores.signals_dir is not None and windows.available():
        view = signals.read_log(stores.signals_dir)
    if view is not None and view.table.num_rows:
        newest = signals.EPOCH + timedelta(microseconds=pc.max(view.table.column("t")).as_py() + 1)
        rows, X = windows.transaction_features(view.table, labels, part.start, _until(part, newest), only=part.ids)
        return score_rows(rows, windows.matrix(X, model.features), model, thresholds)
    events = scan_events(stores.lake_dir, part.start - LOOKBACK)
    newest = events.bounds()[1] + timedelta(microseconds=1)
    feats = F.transaction_features(events, labels, part.start, _until(part, newest))
    return score_table(feats.filter(pc.is_in(feats.column("qid"), value_set=part.ids)), model, thresholds)


def _until(part: ScorePart, newest: datetime) -> datetime:
    return newest if part.end is None else min(part.end, newest)


def commit_transactions(stores: RiskStores, plan: ScorePlan, parts: list[pa.Table], run_id: str) -> dict[str, int]:
    """Append the parts' scores (one part at least) to the lake in one commit tagged ``run_id`` (exactly once: a
    transaction already scored is not scored again) and republish the serving snapshot; returns the counts."""
    model = load_models(stores.models_dir, plan.version)["transaction"][0]
    table = pa.concat_tables(parts)
    times = pc.cast(table.column("t"), pa.timestamp("us", tz="UTC"))
    out = pa.table(
        {
            "event_id": table.column("qid"),
            "transaction_id_pid": table.column("txn"),
            "account_id_pid": table.column("account_id_pid"),
            "event_time": times,
            "event_date": pc.cast(times, pa.date32()),
            "score": table.column("score"),
            "level": table.column("level"),
            "reasons": table.column("reasons"),
            "model_version": pa.repeat(pa.scalar(plan.version), table.num_rows),
            "model_kind": pa.repeat(pa.scalar(model.kind), table.num_rows),
            "scored_at": pa.repeat(pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC")), table.num_rows),
        }
    )
    lake_dir = stores.lake_dir
    with published.after_erasures(stores.warehouse_path):
        out = published.not_erased(lake_dir, out, "event_id", pc.unique(out.column("event_date")).to_pylist())
        written = scores.append(lake_dir, scores.TRANSACTION_SCORES, out, run_id)  # exactly once, overlapping or not
        build = lambda: published.recent_transactions(lake_dir, stores.serving_days)  # noqa: E731
        serving.publish_latest(stores.serving_dir, serving.TRANSACTIONS, build)
    alerts = int(pc.sum(pc.equal(written.column("level"), "highest")).as_py() or 0)
    return {"transactions_scored": written.num_rows, "highest": alerts} | plan.counts


def score_transactions(stores: RiskStores, run_id: str) -> dict[str, int]:
    """Score the transactions not scored yet (late arrivals too) in one pass, append them to the lake, republish
    serving: the plan, its one part and the commit, in this process."""
    plan = plan_transactions(stores)
    if plan is None:
        return {"transactions_scored": 0, "highest": 0}
    return commit_transactions(stores, plan, [score_part(stores, plan.version, p) for p in plan.whole()], run_id)
