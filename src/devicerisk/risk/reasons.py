"""Reasons: the factors that raised a score, measured on the model and worded for a fraud analyst.

Supervised model (tree-path contributions, Saabas' method): every node of every boosted tree has an
expected value, the training-count-weighted mean of the leaves below it. A row's path from the root to
its leaf passes splits; each split moves the expected value from the parent's to the child's, and that
move is credited to the split's feature. Summed over the trees, a feature's credit is how much it moved
the model's raw output (log-odds, before calibration) for this row; all credits plus the roots' values
add up exactly to the raw output, so nothing is a surrogate and nothing is left over. Computed in C for
many rows at once (``devicerisk._trees``), in numpy when the extension is not built.

Unsupervised fallback (occlusion against a reference): a feature's contribution is how much the anomaly
score drops when that feature alone is set to its reference value (the training median): only the cells
that differ are re-scored, one batched call per feature.

Either way a missing value is never a reason: its contribution is 0 (the analyst cannot act on "unknown").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from devicerisk.risk.features import BY_NAME
from devicerisk.risk.model import RiskModel, single_threaded

try:  # the optional C accelerator (see _trees.c)
    from devicerisk import _trees
except ImportError:  # pragma: no cover - depends on the build
    _trees = None

TOP_REASONS = 3
#: Smallest contribution worth an analyst's attention: in log-odds (supervised) or anomaly score (fallback).
MIN_CONTRIBUTION = {"supervised": 0.05, "unsupervised": 0.002}


def contributions(model: RiskModel, X: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """Per row and feature: how much the feature raised the model's raw output (n × k)."""
    if model.kind == "supervised" and len(X):
        paths = tree_paths(model)
        if paths is not None:
            out = path_contributions(paths, X)
            out[np.isnan(X)] = 0.0  # a missing value is not a reason an analyst can act on
            return out
    return occlusion(model, X, base)


def occlusion(model: RiskModel, X: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
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


@dataclass(frozen=True, slots=True)
class TreePaths:
    """The boosted trees' nodes, concatenated (child indices global), with each node's expected value."""

    feature: np.ndarray  # int64
    threshold: np.ndarray  # float64
    missing_left: np.ndarray  # uint8
    left: np.ndarray  # int64
    right: np.ndarray  # int64
    is_leaf: np.ndarray  # uint8
    value: np.ndarray  # float64: expected raw output below the node
    roots: np.ndarray  # int64: each tree's root
    bias: float  # baseline plus the roots' expected values: the raw output with no split credited


def tree_paths(model: RiskModel) -> TreePaths | None:
    """The supervised model's trees as flat arrays (None if a split is categorical: those are occluded)."""
    hgb = model.estimator.estimator.estimator  # CalibratedClassifierCV -> FrozenEstimator -> HGB
    trees = [tree.nodes for trees in hgb._predictors for tree in trees]
    if len(trees) == 0 or any(nodes["is_categorical"].any() for nodes in trees):
        return None
    sizes = np.array([len(nodes) for nodes in trees])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    nodes = np.concatenate(trees)
    shift = np.repeat(offsets, sizes)
    leaf = nodes["is_leaf"].astype(bool)
    left = np.where(leaf, 0, nodes["left"].astype(np.int64) + shift)
    right = np.where(leaf, 0, nodes["right"].astype(np.int64) + shift)
    value = nodes["value"].astype(np.float64)
    count = nodes["count"].astype(np.float64)
    for i in np.flatnonzero(~leaf)[::-1]:  # children come after their parent: fill the values bottom-up
        a, b = left[i], right[i]
        total = count[a] + count[b]
        value[i] = (value[a] * count[a] + value[b] * count[b]) / total if total else (value[a] + value[b]) / 2
    bias = float(np.ravel(hgb._baseline_prediction)[0] + value[offsets].sum())
    return TreePaths(nodes["feature_idx"].astype(np.int64), nodes["num_threshold"].astype(np.float64),
                     nodes["missing_go_to_left"].astype(np.uint8), left, right, leaf.astype(np.uint8), value,
                     offsets.astype(np.int64), bias)  # fmt: skip


def path_contributions(paths: TreePaths, X: np.ndarray, accelerated: bool = True) -> np.ndarray:
    """Per row and feature, the tree-path credits summed over the trees (missing values included)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    out = np.zeros(X.shape)
    if _trees is not None and accelerated:
        _trees.path_contributions(X, X.shape[0], X.shape[1], paths.feature, paths.threshold, paths.missing_left,
                                  paths.left, paths.right, paths.is_leaf, paths.value, paths.roots, out)  # fmt: skip
        return out
    rows = np.arange(len(X))
    for root in paths.roots:  # one tree at a time, one level at a time, over the rows still inside the tree
        node = np.full(len(X), root)
        active = rows[~paths.is_leaf[node].astype(bool)]
        while len(active):
            at = node[active]
            f = paths.feature[at]
            x = X[active, f]
            go_left = np.where(np.isnan(x), paths.missing_left[at] == 1, x <= paths.threshold[at])
            child = np.where(go_left, paths.left[at], paths.right[at])
            out[active, f] += paths.value[child] - paths.value[at]  # one split per (row, tree): no collisions
            node[active] = child
            active = active[~paths.is_leaf[child].astype(bool)]
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
