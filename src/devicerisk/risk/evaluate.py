"""Held-out evaluation: ranking, alert-budget precision, calibration, per-scenario recall, single flags."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from devicerisk.risk.model import Thresholds, thresholds_from_budget

#: AUC, AP and precision at the alert budget that the transaction score must reach.
TARGETS = {"roc_auc": 0.95, "average_precision": 0.80, "precision_at_budget": 0.60}


@dataclass(slots=True)
class Evaluation:
    """Metrics of one score on one held-out window."""

    rows: int
    positives: int
    roc_auc: float | None
    average_precision: float | None
    precision_at_budget: float | None
    alerts: int
    brier: float | None
    reliability: list[tuple[float, float]] = field(default_factory=list)  # (mean predicted, observed rate)
    recall_by_scenario: dict[str, float] = field(default_factory=dict)
    single_flags: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]


def _safe(fn: object, y: np.ndarray, s: np.ndarray) -> float | None:
    if len(np.unique(y)) < 2:
        return None
    return float(fn(y, s))  # type: ignore[operator]


def ranking_metrics(y: np.ndarray, scores: np.ndarray) -> tuple[float | None, float | None]:
    """ROC AUC and average precision of ``scores`` against ``y`` (None without both classes)."""
    return _safe(roc_auc_score, y, scores), _safe(average_precision_score, y, scores)


def precision_at_budget(y: np.ndarray, scores: np.ndarray, thresholds: Thresholds) -> tuple[float | None, int]:
    """Share of fraud among the rows at the ``highest`` level (the daily alert budget), and how many."""
    alerts = scores >= thresholds.highest
    n = int(alerts.sum())
    return (float(y[alerts].mean()) if n else None), n


def single_flag_baselines(
    X: np.ndarray, y: np.ndarray, names: list[str], days: float = 1.0, budget_per_day: int | None = None
) -> dict[str, dict[str, float]]:
    """Each feature alone as a score: its AUC, AP and (with a budget) precision at the alert budget.

    A feature is read in the direction that ranks fraud higher (AUC at least 0.5; ``direction`` -1 when
    low values are the risky ones); a missing value counts as the least risky. Precision at the budget
    has the model's definition: the feature scaled to 0-100 (least risky 0), thresholds from the same
    budget over the same days, then the share of fraud among the rows at or above ``highest``; a flag's
    ties all count as alerts, and its absence never does.
    """
    out: dict[str, dict[str, float]] = {}
    if len(np.unique(y)) < 2:
        return out
    for j, name in enumerate(names):
        raw = X[:, j]
        if np.all(np.isnan(raw)) or np.nanmin(raw) == np.nanmax(raw):
            continue
        column, direction = _oriented(raw, 1.0), 1.0
        if roc_auc_score(y, column) < 0.5:
            column, direction = _oriented(raw, -1.0), -1.0
        ap = float(average_precision_score(y, column))
        out[name] = {"roc_auc": float(roc_auc_score(y, column)), "average_precision": ap, "direction": direction}
        if budget_per_day is not None:
            # scaled to 0-100 like a score (least risky = 0), so the model's threshold rule and floor apply
            scaled = (column - column.min()) / (column.max() - column.min()) * 100.0
            precision, _ = precision_at_budget(y, scaled, thresholds_from_budget(scaled, days, budget_per_day))
            out[name]["precision_at_budget"] = 0.0 if precision is None else precision
    return out


def _oriented(column: np.ndarray, sign: float) -> np.ndarray:
    """``sign * column`` with missing values below every known one."""
    signed = sign * column
    return np.where(np.isnan(signed), np.nanmin(signed) - 1.0, signed)


def evaluate(
    y: np.ndarray,
    probability: np.ndarray,
    scores: np.ndarray,
    thresholds: Thresholds,
    scenarios: np.ndarray | None = None,
    X: np.ndarray | None = None,
    names: list[str] | None = None,
    days: float = 1.0,
    budget_per_day: int | None = None,
) -> Evaluation:
    """Metrics of ``probability`` (0–1) and ``scores`` (0–100) against ``y`` (1 = fraud).

    With ``X`` and ``names``, each feature alone is scored as well (``budget_per_day`` over ``days``:
    the budget the thresholds came from, for the single features' precision at the budget).
    """
    y = np.asarray(y, dtype=int)
    p_at_k, alerts = precision_at_budget(y, scores, thresholds)
    both = len(np.unique(y)) == 2
    reliability: list[tuple[float, float]] = []
    if both:
        observed, predicted = calibration_curve(y, np.clip(probability, 0, 1), n_bins=10, strategy="quantile")
        reliability = [(float(p), float(o)) for p, o in zip(predicted, observed, strict=True)]
    recall: dict[str, float] = {}
    if scenarios is not None:
        flagged = scores >= thresholds.elevated
        for name in sorted({s for s in scenarios if s}):
            rows = scenarios == name
            recall[name] = float(flagged[rows].mean())
    return Evaluation(
        rows=len(y),
        positives=int(y.sum()),
        roc_auc=_safe(roc_auc_score, y, probability),
        average_precision=_safe(average_precision_score, y, probability),
        precision_at_budget=p_at_k,
        alerts=alerts,
        brier=float(brier_score_loss(y, np.clip(probability, 0, 1))) if len(y) else None,
        reliability=reliability,
        recall_by_scenario=recall,
        single_flags=single_flag_baselines(X, y, names, days, budget_per_day) if X is not None and names else {},
    )


def at_least_as_good(candidate: Evaluation, champion: Evaluation) -> bool:
    """The promotion gate: the candidate's AUC and AP on the same held-out rows are no worse."""
    if candidate.roc_auc is None or candidate.average_precision is None:
        return False
    if champion.roc_auc is None or champion.average_precision is None:
        return True
    return candidate.roc_auc >= champion.roc_auc and candidate.average_precision >= champion.average_precision
