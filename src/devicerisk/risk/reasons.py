"""Reasons: the factors that raised a score, measured on the model and worded for a fraud analyst.

Method (occlusion against a reference): a feature's contribution to one prediction is how much the
model's raw output (log-odds for the supervised model, anomaly score for the fallback) drops when that
feature alone is set to its reference value (the training median, i.e. what a typical row shows). It is
exact for the model as trained (no surrogate), works for both model kinds, and is cheap here because
most features of most rows already sit at their reference (zero counts, absent flags): only the cells
that differ are re-predicted, one batched ``decision_function`` call per feature. Interactions are
counted in each feature's share, so the contributions need not add up to the total. A missing value is
never a reason: only known values that differ from the reference are measured.
"""

from __future__ import annotations

import numpy as np

from devicerisk.risk.features import BY_NAME
from devicerisk.risk.model import RiskModel, single_threaded

TOP_REASONS = 3
#: Smallest contribution worth an analyst's attention: in log-odds (supervised) or anomaly score (fallback).
MIN_CONTRIBUTION = {"supervised": 0.05, "unsupervised": 0.002}


def contributions(model: RiskModel, X: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """Per row and feature: the raw-output drop when the feature is set to its reference (n × k)."""
    n, k = X.shape
    out = np.zeros((n, k))
    if n == 0:
        return out
    with single_threaded():
        base = model.margin(X) if base is None else base
        for j in model.used_features():  # a feature no tree splits on contributes exactly nothing
            ref = model.reference[j]
            column = X[:, j]
            # a missing value is not a reason an analyst can act on: only known values that differ are measured
            rows = np.flatnonzero(np.isfinite(column) & (column != ref))
            if len(rows) == 0:
                continue
            occluded = X[rows].copy()
            occluded[:, j] = ref
            out[rows, j] = base[rows] - model.margin(occluded)
    return out


def word(name: str, value: float) -> str:
    """One factor in an analyst's words, with its value."""
    feature = BY_NAME[name]
    if feature.kind == "flag":
        text = feature.reason
        return text if value >= 0.5 else f"no {text}"
    return feature.reason.format(v=value)


def top_reasons(model: RiskModel, X: np.ndarray, contrib: np.ndarray, top: int = TOP_REASONS) -> list[list[str]]:
    """For each row, up to ``top`` worded factors that raised its score most (strongest first)."""
    order = np.argsort(-contrib, axis=1)[:, :top]
    reasons: list[list[str]] = []
    for i, row in enumerate(order):
        chosen = [j for j in row if contrib[i, j] >= MIN_CONTRIBUTION[model.kind]]
        reasons.append([word(model.features[j], float(X[i, j])) for j in chosen])
    return reasons


def explain(model: RiskModel, X: np.ndarray, top: int = TOP_REASONS) -> list[list[str]]:
    """Worded top factors of every row of ``X``."""
    return top_reasons(model, X, contributions(model, X), top)
