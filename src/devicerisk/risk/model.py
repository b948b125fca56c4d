"""The risk models: supervised gradient boosting, calibrated, or an unsupervised fallback; scores and levels.

A score is the calibrated fraud probability in percent (0–100, kept at full precision so that the
ranking survives; shown with one or two decimals). Calibration is Platt scaling (a sigmoid of the
boosted trees' log-odds), which is monotonic and strictly increasing, so distinct model outputs keep
distinct scores and the alert budget cuts between them (isotonic steps tied thousands of clear frauds
at 100 and let them all through the budget). Levels come from two
thresholds chosen from the alert budget: ``highest`` holds about the top ``budget`` scores per day,
``elevated`` the next ``ELEVATED_FACTOR`` times as many. A score exactly on a threshold takes the higher
level (``score >= threshold``), so the budget is an upper bound only up to ties.

With fewer than ``MIN_POSITIVES`` fraud labels, or fewer than ``MIN_CALIBRATION_POSITIVES`` in the
calibration slice, there is nothing to learn or calibrate from; an
IsolationForest scores instead, its score mapped to 0–100 by its rank among the training rows. Such a
model is marked ``kind = "unsupervised"`` and its scores are not probabilities.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
from sklearn.frozen import FrozenEstimator
from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)

MIN_POSITIVES = 20
MIN_NEGATIVES = 20
MIN_CALIBRATION_POSITIVES = 10  # fewer frauds cannot fit the sigmoid's two parameters: probabilities would be noise
ELEVATED_FACTOR = 4
NEGATIVES_PER_POSITIVE = 20  # legitimate rows the booster trains on per fraud row (see ``balanced``)
LEVELS = ("normal", "elevated", "highest")
_QUANTILES = 1001  # resolution of the unsupervised rank map


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Score thresholds of the two alert levels (0–100); ``highest >= elevated``."""

    elevated: float
    highest: float


def single_threaded() -> threadpool_limits:
    """OpenMP limited to one thread: tree prediction here runs 10-20× faster than with a thread team,
    whose start-up and spinning dominate small batches on a busy 2-core machine (measured in bench/)."""
    return threadpool_limits(1, user_api="openmp")


def level(score: float, thresholds: Thresholds) -> str:
    """The level of one score; a score exactly on a threshold takes the higher level."""
    if score >= thresholds.highest:
        return "highest"
    if score >= thresholds.elevated:
        return "elevated"
    return "normal"


def level_codes(scores: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """:func:`level` of many scores, as indices into :data:`LEVELS` (int8)."""
    return np.where(scores >= thresholds.highest, 2, np.where(scores >= thresholds.elevated, 1, 0)).astype(np.int8)


def levels(scores: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """:func:`level` of many scores."""
    return np.array(LEVELS, dtype=object)[level_codes(scores, thresholds)]


def to_score(probability: np.ndarray) -> np.ndarray:
    """Probabilities (0–1) as 0–100 scores."""
    return np.clip(probability, 0.0, 1.0) * 100.0


def thresholds_from_budget(scores: np.ndarray, days: float, budget_per_day: int) -> Thresholds:
    """Thresholds that put about ``budget_per_day`` scores a day at ``highest`` (over ``days`` of ``scores``)."""
    ranked = np.sort(np.asarray(scores, dtype=float))[::-1]
    if len(ranked) == 0:
        return Thresholds(elevated=100.0, highest=100.0)

    def kth(k: float) -> float:
        i = int(np.clip(round(k), 1, len(ranked))) - 1
        return float(ranked[i])

    floor = 0.01  # a score of (almost) zero is never an alert
    highest = max(kth(budget_per_day * days), floor)
    elevated = min(max(kth(budget_per_day * days * (1 + ELEVATED_FACTOR)), floor), highest)
    return Thresholds(elevated=elevated, highest=highest)


@dataclass(slots=True)
class RiskModel:
    """A fitted model and what scoring needs to use and explain it."""

    kind: str  # "supervised" | "unsupervised"
    estimator: Any  # CalibratedClassifierCV (sigmoid) over a frozen HGB, or an IsolationForest
    features: list[str]
    reference: np.ndarray  # per feature: the typical value a reason is measured against
    rank_map: np.ndarray | None = None  # unsupervised: quantiles of training anomaly scores
    notes: list[str] = field(default_factory=list)

    def probability(self, X: np.ndarray) -> np.ndarray:
        """Fraud probability (supervised) or anomaly rank (unsupervised), 0–1."""
        if len(X) == 0:
            return np.zeros(0)
        with single_threaded():
            if self.kind == "supervised":
                return self.estimator.predict_proba(X)[:, 1]
            assert self.rank_map is not None
            raw = -self.estimator.score_samples(np.nan_to_num(X, nan=-1.0))
            return np.searchsorted(self.rank_map, raw, side="right") / len(self.rank_map)

    def margin(self, X: np.ndarray) -> np.ndarray:
        """The model's raw output before calibration (log-odds, or anomaly score), for reasons."""
        if self.kind == "supervised":
            return self.booster().decision_function(X)
        return -self.estimator.score_samples(np.nan_to_num(X, nan=-1.0))

    def score(self, X: np.ndarray) -> np.ndarray:
        return to_score(self.probability(X))

    def booster(self) -> HistGradientBoostingClassifier:
        """The supervised model's boosted trees (CalibratedClassifierCV -> FrozenEstimator -> HGB)."""
        return self.estimator.estimator.estimator

    def sigmoid_calibration(self) -> list[tuple[float, float]] | None:
        """Each calibrator's ``(a, b)`` when the probability is their mean of ``1 / (1 + exp(a·m + b))`` over
        the booster's raw output ``m`` (as ``predict_proba`` computes it); None for any other model."""
        est = self.estimator
        if self.kind != "supervised" or est.method != "sigmoid" or len(est.classes_) != 2:
            return None
        pairs = []
        for pair in est.calibrated_classifiers_:  # one pair (ensemble="auto" is False for a frozen estimator)
            if pair.estimator is not est.estimator or len(pair.calibrators) != 1:  # other trees than the booster
                return None
            pairs.append((float(pair.calibrators[0].a_), float(pair.calibrators[0].b_)))
        return pairs or None

    def score_from_margin(self, margin: np.ndarray) -> np.ndarray:
        """:meth:`score` from the booster's raw output (needs :meth:`sigmoid_calibration`)."""
        pairs = self.sigmoid_calibration()
        if pairs is None:
            raise ValueError("the score is not a sigmoid of the boosted trees' raw output")
        probability = np.zeros(len(margin))
        for a, b in pairs:  # in predict_proba's order: sum, then divide
            probability += expit(-(a * margin + b))
        return to_score(probability / len(pairs))

    def used_features(self) -> list[int]:
        """Indices of the features any tree splits on; the others cannot change a prediction."""
        if self.kind != "supervised":
            return list(range(len(self.features)))
        hgb = self.booster()
        used = {
            int(f)
            for trees in hgb._predictors
            for tree in trees
            for f in tree.nodes["feature_idx"][~tree.nodes["is_leaf"].astype(bool)]
        }
        return sorted(used)


def reference_values(X: np.ndarray) -> np.ndarray:
    """Per feature, the median of the non-missing training values (0 where a feature is always missing)."""
    with warnings.catch_warnings():  # an all-missing feature has no median: its reference is 0
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0) if len(X) else np.zeros(X.shape[1])
    return np.nan_to_num(ref, nan=0.0)


def balanced(
    X: np.ndarray, y: np.ndarray, weight: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str | None]:
    """Every fraud row and at most ``NEGATIVES_PER_POSITIVE`` legitimate rows per fraud, drawn at random.

    The booster bins each feature at quantiles of its training rows: with 1 fraud in 100 rows, the rare
    values where fraud lives (the largest amounts, say) share one bin with far more common ones, and no
    split can tell them apart. Fewer legitimate rows put bins where the frauds are, and train faster; the
    sigmoid calibration, fitted on the untouched calibration rows, restores the probabilities.
    """
    positives = int(y.sum())
    keep_negatives = NEGATIVES_PER_POSITIVE * positives
    negatives = np.flatnonzero(y == 0)
    if len(negatives) <= keep_negatives:
        return X, y, weight, None
    rng = np.random.default_rng(seed)
    chosen = np.sort(np.concatenate([np.flatnonzero(y == 1), rng.choice(negatives, keep_negatives, replace=False)]))
    note = (
        f"trained on all {positives} fraud rows and {keep_negatives} of {len(negatives)} legitimate ones drawn "
        "at random; calibrated on every calibration row"
    )
    return X[chosen], y[chosen], weight[chosen], note


def fit(
    X: np.ndarray,
    y: np.ndarray,
    X_cal: np.ndarray,
    y_cal: np.ndarray,
    features: list[str],
    seed: int = 0,
    weight: np.ndarray | None = None,
) -> RiskModel:
    """Fit the supervised model on (X, y) (rows weighted by ``weight``, default 1) and calibrate it on the later
    (X_cal, y_cal); fall back if too few labels."""
    positives, negatives = int(y.sum()), int(len(y) - y.sum())
    cal_positives, cal_negatives = int(y_cal.sum()), int(len(y_cal) - y_cal.sum())
    if (
        positives < MIN_POSITIVES
        or negatives < MIN_NEGATIVES
        or cal_positives < MIN_CALIBRATION_POSITIVES
        or cal_negatives == 0
    ):
        why = (
            f"too few labels to learn from ({positives} fraud, {negatives} legitimate in training; "
            f"{cal_positives} fraud in calibration, at least {MIN_CALIBRATION_POSITIVES} needed): "
            "unsupervised IsolationForest fallback, "
            "scores are anomaly ranks, not probabilities"
        )
        log.warning(why)
        return fit_unsupervised(np.concatenate([X, X_cal]), features, seed, [why])
    weight = np.ones(len(y)) if weight is None else weight
    X, y, weight, note = balanced(X, y, weight, seed)
    hgb = HistGradientBoostingClassifier(
        max_iter=200,
        learning_rate=0.08,
        max_leaf_nodes=31,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=20,
        random_state=seed,
    )
    # a feature that is always missing (e.g. amounts for account probes) trains as a constant
    with single_threaded():
        hgb.fit(np.where(np.isnan(X).all(axis=0), 0.0, X), y, sample_weight=weight)
        calibrated = CalibratedClassifierCV(FrozenEstimator(hgb), method="sigmoid")
        with warnings.catch_warnings():  # a rare class smaller than the folds is fine for a 2-parameter fit
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            calibrated.fit(X_cal, y_cal)
    return RiskModel("supervised", calibrated, features, reference_values(X), notes=[note] if note else [])


def fit_unsupervised(X: np.ndarray, features: list[str], seed: int = 0, notes: list[str] | None = None) -> RiskModel:
    """An IsolationForest over the features; its scores are mapped to ranks among the training rows."""
    forest = IsolationForest(n_estimators=200, random_state=seed, n_jobs=1)
    filled = np.nan_to_num(X, nan=-1.0)
    forest.fit(filled)
    raw = -forest.score_samples(filled)
    rank_map = np.quantile(raw, np.linspace(0, 1, _QUANTILES)) if len(raw) else np.zeros(_QUANTILES)
    return RiskModel("unsupervised", forest, features, reference_values(X), rank_map, list(notes or []))
