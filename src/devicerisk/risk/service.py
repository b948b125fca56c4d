"""Training, registering and scoring on the lake: what the flows and the CLI call.

Each function takes the stores it works on (:class:`RiskStores`, a view of the settings) and returns a
small summary; the stores do the I/O.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from devicerisk.config import Settings
from devicerisk.risk import card, published, reasons, signals, windows
from devicerisk.risk import features as F
from devicerisk.risk.evaluate import at_least_as_good, evaluate
from devicerisk.risk.labels import read_labels
from devicerisk.risk.maturity import observed_label_delay
from devicerisk.risk.model import LEVELS, RiskModel, Thresholds, level_codes, to_score
from devicerisk.risk.training import NotEnoughData, Trained, TrainingResult, make_split, matrix, train
from devicerisk.store import lake, lake_scan, registry, scores, serving, signal_log

log = logging.getLogger(__name__)

LOOKBACK = F.HISTORY  # every feature window ends within it: scoring sees the history training sees
SCORES = ("transaction", "account")


@dataclass(frozen=True, slots=True)
class RiskStores:
    """The stores training and scoring read and write: a view of the settings."""

    lake_dir: Path
    models_dir: Path
    serving_dir: Path
    signals_dir: Path | None = None  # the signal log; None: features by the SQL over the lake
    serving_days: int = 30  # the serving snapshots' period (Settings.serving_days)

    @classmethod
    def of(cls, settings: Settings) -> RiskStores:
        return cls(
            settings.lake_dir, settings.models_dir, settings.serving_dir, settings.signals_dir, settings.serving_days
        )


@dataclass(frozen=True, slots=True)
class TrainingPlan:
    """How a model is trained and judged: the alert budget, the gap for the label delay, the held-out days."""

    budget_per_day: int = 20
    gap_days: float = 2.0
    test_days: float = 2.0

    @classmethod
    def of(cls, settings: Settings) -> TrainingPlan:
        return cls(settings.risk_alert_budget, settings.risk_label_gap_days, settings.risk_test_days)


class NoModel(LookupError):
    """Scoring was asked for before any model was trained and promoted."""


@dataclass(slots=True)
class TrainOutcome:
    version: str
    promoted: bool
    reason: str
    metadata: dict[str, Any]
    card: dict[str, bytes] = field(default_factory=dict)


def _version_of(lake_dir: Path, name: str) -> int | None:
    table = lake.open_table(lake_dir, name)
    return None if table is None else table.version()


def load_events(lake_dir: Path, since: datetime | None = None) -> pa.Table:
    """The feature columns of the events table (from ``since``, a day early for the date partition)."""
    data = lake.dataset(lake_dir, lake.EVENTS)
    if data is None:
        raise LookupError(f"the lake at {lake_dir} has no events yet: ingest first")
    flt = None if since is None else ds.field("event_date") >= pa.scalar((since - timedelta(days=1)).date())
    return data.to_table(columns=list(F.EVENT_COLUMNS), filter=flt)


def scan_events(lake_dir: Path, since: datetime | None = None, version: int | None = None) -> lake_scan.Snapshot:
    """The events table (at ``version``, default the current one) from ``since`` (a day early for the date
    partition), for DuckDB to scan."""
    day = None if since is None else (since - timedelta(days=1)).date()
    snap = lake_scan.snapshot(lake_dir, lake.EVENTS, day, version)
    if snap is None:
        raise LookupError(f"the lake at {lake_dir} has no events yet: ingest first")
    return snap


def libraries() -> dict[str, str]:
    names = ("scikit-learn", "skops", "numpy", "duckdb", "pyarrow", "deltalake")
    return {"python": platform.python_version(), **{n: package_version(n) for n in names}}


def _model_meta(model: RiskModel, thresholds: Thresholds, metrics: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": model.kind,
        "features": model.features,
        "reference": model.reference.tolist(),
        "rank_map": None if model.rank_map is None else model.rank_map.tolist(),
        "notes": model.notes,
        "thresholds": {"elevated": thresholds.elevated, "highest": thresholds.highest},
        "metrics": metrics,
    }


def not_trainable(stores: RiskStores, plan: TrainingPlan) -> str | None:
    """Why the lake cannot train a model yet (no events, or too short a span), or None if it can."""
    table = lake.open_table(stores.lake_dir, lake.EVENTS)
    if table is None:
        return "the lake has no events yet"
    times = table.to_pyarrow_dataset().to_table(columns=["event_time"]).column("event_time")
    try:
        make_split(pc.min(times).as_py(), pc.max(times).as_py(), plan.gap_days, plan.test_days)
    except NotEnoughData as err:
        return str(err)
    return None


def train_and_register(
    stores: RiskStores,
    plan: TrainingPlan = TrainingPlan(),
    truth: pa.Table | None = None,
    seed: int = 0,
    now: datetime | None = None,
) -> TrainOutcome:
    """Train both scores on the whole lake, save a new version with its card, and promote it if it passes the gate."""
    lake_dir, models_dir, budget_per_day = stores.lake_dir, stores.models_dir, plan.budget_per_day
    events = load_events(lake_dir)
    labels = read_labels(lake_dir)
    times = events.column("event_time")
    start, end = pc.min(times).as_py(), pc.max(times).as_py() + timedelta(microseconds=1)
    delay = observed_label_delay(events, labels)
    split = make_split(start, end, plan.gap_days, plan.test_days, delay.days, labels_only=truth is None)
    result = train(events, labels, split, budget_per_day, truth, seed)
    version = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    metadata: dict[str, Any] = {
        "version": version,
        "trained_at": datetime.now(UTC).isoformat(),
        "training_window": {
            "start": split.start,
            "train_end": split.train_end,
            "test_start": split.test_start,
            "end": split.end,
            "newest": split.newest,
            "training_mature": split.training_mature,
            "test_mature": split.test_mature,
        },
        "label_delay": {**asdict(delay), "text": delay.describe()},
        "events_version": _version_of(lake_dir, lake.EVENTS),
        "labels_version": _version_of(lake_dir, lake.LABELS),
        "budget_per_day": budget_per_day,
        "judged_against": "the generator's ground truth" if truth is not None else "the feedback labels",
        "libraries": libraries(),
        "notes": result.notes,
    }
    for name in SCORES:
        trained = getattr(result, name)
        metadata[name] = _model_meta(trained.model, trained.thresholds, trained.evaluation.as_dict())
    promoted, why = _gate(models_dir, result)
    metadata["promotion"] = {"promoted": promoted, "reason": why}
    files = card.render(result, metadata)
    registry.save(models_dir, version, {n: getattr(result, n).model.estimator for n in SCORES}, metadata, files)
    if promoted:
        registry.promote(models_dir, version)
    log.info("model %s trained (%s); %s", version, result.transaction.model.kind, why)
    return TrainOutcome(version, promoted, why, metadata, files)


def _gate(models_dir: Path, result: TrainingResult) -> tuple[bool, str]:
    """Promote only if each score (transaction and account) passes its own gate against the champion's."""
    flooding = [f"{name} score: {why}" for name in SCORES if (why := getattr(result, name).floods())]
    if flooding:
        return False, "not promoted: " + "; ".join(flooding)
    current = registry.champion(models_dir)
    if current is None:
        return True, "no champion yet"
    if not result.split.test_mature:
        return False, (
            f"champion {current} kept: the held-out window's fraud is not all reported yet (it ends less "
            f"than the {result.split.label_delay_days:.1f}-day label delay before the newest data)"
        )
    champions = load_models(models_dir, current)
    verdicts = [(name, *_gate_one(champions[name][0], getattr(result, name), current)) for name in SCORES]
    why = "; ".join(f"{name} score: {reason}" for name, _, reason in verdicts)
    return all(ok for _, ok, _ in verdicts), why


def _gate_one(champion: RiskModel, candidate: Trained, current: str) -> tuple[bool, str]:
    """Does one candidate score replace the champion's: unless the champion does better on the candidate's test rows."""
    if candidate.model.kind != "supervised":
        if champion.kind == "supervised":
            return False, f"an unsupervised fallback never replaces the supervised champion {current}"
        return True, "both are unsupervised fallbacks (no labels to compare them on): the newer one replaces it"
    if champion.features != candidate.model.features:
        return True, f"champion {current} uses other features; it cannot be compared and is replaced"
    p = champion.probability(candidate.test_X)
    champ_eval = evaluate(candidate.test_target, p, to_score(p), candidate.thresholds)
    if at_least_as_good(candidate.evaluation, champ_eval):
        return True, f"at least as good as champion {current} on the held-out window"
    return False, (
        f"champion {current} kept: AUC {champ_eval.roc_auc:.4f} / AP {champ_eval.average_precision:.4f} "
        f"against the candidate's {candidate.evaluation.roc_auc:.4f} / "
        f"{candidate.evaluation.average_precision:.4f}"
    )


def load_models(models_dir: Path, version: str | None = None) -> dict[str, tuple[RiskModel, Thresholds]]:
    """The models of ``version`` (default: the champion) with their thresholds."""
    version = version or registry.champion(models_dir)
    if version is None:
        raise NoModel("no model has been trained yet: run `devicerisk risk train`")
    meta = registry.metadata(models_dir, version)
    out = {}
    for name in SCORES:
        m = meta[name]
        estimator = registry.load_estimator(models_dir, version, name)
        rank_map = None if m["rank_map"] is None else np.asarray(m["rank_map"])
        model = RiskModel(m["kind"], estimator, list(m["features"]), np.asarray(m["reference"]), rank_map, m["notes"])
        out[name] = (model, Thresholds(**m["thresholds"]))
    return out


def score_rows(rows: pa.Table, X: np.ndarray, model: RiskModel, thresholds: Thresholds) -> pa.Table:
    """Scores, levels and worded reasons of query ``rows`` (``qid``, ``acct``, ``txn``, ``t`` kept) from the
    model's matrix ``X`` (one row each, in the model's feature order)."""
    score, why = reasons.score_and_explain(model, X)
    return pa.table(
        {
            "qid": rows.column("qid"),
            "txn": rows.column("txn"),
            "account_id_pid": rows.column("acct"),
            "t": rows.column("t"),
            "score": pa.array(score, pa.float64()),
            "level": pa.array(LEVELS, pa.string()).take(pa.array(level_codes(score, thresholds))),
            "reasons": why,
        }
    )


def score_table(feats: pa.Table, model: RiskModel, thresholds: Thresholds) -> pa.Table:
    """Scores, levels and worded reasons of a feature table (``qid``, ``acct``, ``txn``, ``t`` kept)."""
    return score_rows(feats, matrix(feats, model.features), model, thresholds)


def _signal_features(
    lake_dir: Path, signals_dir: Path, labels: pa.Table, start: datetime, todo: pa.Array
) -> tuple[pa.Table, np.ndarray, signal_log.Refresh]:
    """Features of the ``todo`` transactions from ``start`` on, by the C engine over the signal log (brought
    up to the lake's current version first): rows and the full feature matrix."""
    for _ in range(2):  # an erasure may drop the log between the refresh and the read: then refresh again
        refreshed = signals.refresh_log(lake_dir, signals_dir)
        view = signals.read_log(signals_dir)
        if view is not None:
            break
    if view is None or view.table.num_rows == 0:
        raise LookupError(f"the lake at {lake_dir} has no events yet, or its signal log was dropped twice")
    end = signals.EPOCH + timedelta(microseconds=pc.max(view.table.column("t")).as_py() + 1)
    rows, X = windows.transaction_features(view.table, labels, start, end)
    wanted = pc.is_in(rows.column("qid"), value_set=todo)
    return rows.filter(wanted), X[wanted.to_numpy(zero_copy_only=False)], refreshed


def score_transactions(stores: RiskStores, run_id: str) -> dict[str, int]:
    """Score the transactions not scored yet (late arrivals too), append them to the lake, republish serving.

    With the stores' signal log and the C engine built, the features come from the log (refreshed first);
    otherwise from the DuckDB SQL over the lake. Both give the same numbers (a parity test holds them).
    """
    lake_dir, models_dir, serving_dir, signals_dir = (
        stores.lake_dir,
        stores.models_dir,
        stores.serving_dir,
        stores.signals_dir,
    )
    version = registry.champion(models_dir)
    model, thresholds = load_models(models_dir, version)["transaction"]
    # by event id, not by time: a transaction ingested late, older than the newest scored one, is still new
    todo = scores.unscored_transactions(lake_dir)
    if todo.num_rows == 0:
        return {"transactions_scored": 0, "highest": 0}
    start = pc.min(todo.column("event_time")).as_py()
    labels, ids = read_labels(lake_dir), todo.column("event_id").combine_chunks()
    extra: dict[str, int] = {}
    if signals_dir is not None and windows.available():
        rows, X, refreshed = _signal_features(lake_dir, signals_dir, labels, start, ids)
        table = score_rows(rows, windows.matrix(X, model.features), model, thresholds)
        extra = {"signal_rows_added": refreshed.rows_added, "signal_log_rebuilt": int(refreshed.rebuilt)}
    else:
        events = scan_events(lake_dir, start - LOOKBACK)
        end = events.bounds()[1] + timedelta(microseconds=1)
        feats = F.transaction_features(events, labels, start, end)
        table = score_table(feats.filter(pc.is_in(feats.column("qid"), value_set=ids)), model, thresholds)
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
            "model_version": pa.repeat(pa.scalar(version), table.num_rows),
            "model_kind": pa.repeat(pa.scalar(model.kind), table.num_rows),
            "scored_at": pa.repeat(pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC")), table.num_rows),
        }
    )
    written = scores.append(lake_dir, scores.TRANSACTION_SCORES, out, run_id)  # exactly once, runs overlapping or not
    build = lambda: published.recent_transactions(lake_dir, stores.serving_days)  # noqa: E731
    serving.publish_latest(serving_dir, serving.TRANSACTIONS, build)
    alerts = int(pc.sum(pc.equal(written.column("level"), "highest")).as_py() or 0)
    return {"transactions_scored": written.num_rows, "highest": alerts} | extra


def score_accounts(stores: RiskStores, active_days: float = 7.0, as_of: datetime | None = None) -> dict[str, int]:
    """Score every account active in the last ``active_days`` as of ``as_of`` (default: the lake's newest event).

    The lake commit is tagged ``accounts-<as_of>-<model version>``: a re-run for the same as-of time and
    champion (a retry, or a second run with no new events) appends nothing.
    """
    lake_dir, models_dir, serving_dir = stores.lake_dir, stores.models_dir, stores.serving_dir
    version = registry.champion(models_dir)
    model, thresholds = load_models(models_dir, version)["account"]
    pinned = None
    if as_of is None:
        whole = scan_events(lake_dir)
        as_of, pinned = whole.bounds()[1] + timedelta(microseconds=1), whole.version
    events = scan_events(lake_dir, as_of - LOOKBACK, pinned)
    feats = F.account_features(events, read_labels(lake_dir), as_of - timedelta(days=active_days), as_of)
    table = score_table(feats, model, thresholds)
    n = table.num_rows
    out = pa.table(
        {
            "account_id_pid": table.column("account_id_pid"),
            "as_of": pa.repeat(pa.scalar(as_of, pa.timestamp("us", tz="UTC")), n),
            "event_date": pa.repeat(pa.scalar(as_of.date(), pa.date32()), n),
            "score": table.column("score"),
            "level": table.column("level"),
            "reasons": table.column("reasons"),
            "model_version": pa.repeat(pa.scalar(version), n),
            "model_kind": pa.repeat(pa.scalar(model.kind), n),
            "scored_at": pa.repeat(pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC")), n),
        }
    )
    scores.append(lake_dir, scores.ACCOUNT_SCORES, out, f"accounts-{as_of:%Y%m%dT%H%M%S%fZ}-{version}")
    whole, days = scan_events(lake_dir, None, events.version), stores.serving_days  # phones and devices: all history
    run = published.with_phones(out, whole)
    merge = lambda: published.merged_accounts(serving.read(serving_dir, serving.ACCOUNTS), run, days)  # noqa: E731
    serving.publish_latest(serving_dir, serving.ACCOUNTS, merge)
    edges = lambda: published.device_risk(whole, as_of, days)  # noqa: E731
    serving.publish_latest(serving_dir, serving.DEVICES, edges)
    return {"accounts_scored": n, "highest": int(pc.sum(pc.equal(out.column("level"), "highest")).as_py() or 0)}


def top_accounts(serving_dir: Path, n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` riskiest accounts of the serving snapshot (pseudonyms: mask before showing)."""
    table = serving.read(serving_dir, serving.ACCOUNTS)
    if table is None:
        return []
    ranked = table.sort_by([("score", "descending"), ("account_id_pid", "ascending")]).slice(0, n)
    return ranked.select(["account_id_pid", "score", "level", "reasons", "model_version", "model_kind"]).to_pylist()
