"""Reasons: the factors that raised a score, measured on the model and worded for a fraud analyst.

Supervised model (tree-path contributions, Saabas' method): every node of every boosted tree has an
expected value, the training-count-weighted mean of the leaves below it. A row's path from the root to
its leaf passes splits; each split moves the expected value from the parent's to the child's, and that
move is credited to the split's feature. Summed over the trees, a feature's credit is how much it moved
the model's raw output (log-odds, before calibration) for this row; all credits plus the roots' values
add up exactly to the raw output, so nothing is a surrogate and nothing is left over. Computed in C for
many rows at once (``devicerisk._trees``), in numpy when the extension is not built. The same walk gives
the raw output itself, which the sigmoid calibration turns into the score: :func:`score_and_explain`
scores and explains a batch in one pass over the trees.

Unsupervised fallback (occlusion against a reference): a feature's contribution is how much the anomaly
score drops when that feature alone is set to its reference value (the training median): only the cells
that differ are re-scored, one batched call per feature.

Either way a missing value is never a reason: its contribution is 0 (the analyst cannot act on "unknown").
A batch's reasons are worded once per distinct factor, not once per row: a value is first reduced to what
its wording shows (a flag's side of 0.5, a number rounded to its format's decimals).
"""

from __future__ import annotations

import functools
import re
import string
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from devicerisk.risk.features import BY_NAME, Feature
from devicerisk.risk.model import RiskModel, single_threaded

try:  # the optional C accelerator (see _trees.c)
    from devicerisk import _trees
except ImportError:  # pragma: no cover - depends on the build
    _trees = None

TOP_REASONS = 3
#: Smallest contribution worth an analyst's attention: in log-odds (supervised) or anomaly score (fallback).
MIN_CONTRIBUTION = {"supervised": 0.05, "unsupervised": 0.002}
#: Threads that walk the trees of a large batch, and the batch size from which a second one pays for its start.
THREADS = 2
PARALLEL_ROWS = 20_000


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
    baseline: float  # the model's raw output before any tree


#: Flattened trees by booster: a fitted booster never changes, and one event scored at a time (score now)
#: would otherwise flatten its trees again on every call.
_PATHS: weakref.WeakKeyDictionary[Any, TreePaths | None] = weakref.WeakKeyDictionary()


def tree_paths(model: RiskModel) -> TreePaths | None:
    """The supervised model's trees as flat arrays (None if a split is categorical: those are occluded)."""
    hgb = model.booster()
    if hgb not in _PATHS:
        _PATHS[hgb] = _flatten(hgb)
    return _PATHS[hgb]


def _flatten(hgb: Any) -> TreePaths | None:
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
    baseline = float(np.ravel(hgb._baseline_prediction)[0])
    return TreePaths(
        nodes["feature_idx"].astype(np.int64),
        nodes["num_threshold"].astype(np.float64),
        nodes["missing_go_to_left"].astype(np.uint8),
        left,
        right,
        leaf.astype(np.uint8),
        value,
        offsets.astype(np.int64),
        baseline + float(value[offsets].sum()),
        baseline,
    )


def _threads(n: int, threads: int | None) -> int:
    return threads or (THREADS if n >= PARALLEL_ROWS else 1)


def _in_c(paths: TreePaths, accelerated: bool) -> bool:
    """Whether the C walk serves: built, wanted, and every split threshold a number (the C walk sends a
    missing value left as -inf, which a NaN threshold would send right; numpy routes it by its flag)."""
    return _trees is not None and accelerated and not np.isnan(paths.threshold[paths.is_leaf == 0]).any()


def _c_walk(
    paths: TreePaths,
    X: np.ndarray,
    margin: np.ndarray,
    out: np.ndarray | None,
    chosen: np.ndarray | None,
    top: int,
    minimum: float,
    threads: int,
) -> None:
    """The C walk over the trees (``devicerisk._trees``): fills ``margin``, and ``out`` (the n × k contributions)
    or ``chosen`` (each row's ``top`` strongest features over ``minimum``)."""
    _trees.walk(
        X,
        len(X),
        X.shape[1],
        paths.feature,
        paths.threshold,
        paths.missing_left,
        paths.left,
        paths.right,
        paths.is_leaf,
        paths.value,
        paths.roots,
        paths.baseline,
        margin,
        out,
        chosen,
        top,
        minimum,
        threads,
    )


def walk(
    paths: TreePaths, X: np.ndarray, accelerated: bool = True, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the raw output and the tree-path credits per feature (missing values included), in one pass.

    The raw output adds the leaves to the baseline in tree order, as the model's own decision function
    does, so it is the same number. ``threads`` defaults to :data:`THREADS` for :data:`PARALLEL_ROWS`
    rows or more, one below.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    n = len(X)
    if _in_c(paths, accelerated):
        margin, out = np.empty(n), np.empty(X.shape)
        _c_walk(paths, X, margin, out, None, 1, 0.0, _threads(n, threads))
        return margin, out
    margin, out = np.full(n, paths.baseline), np.zeros(X.shape)
    rows = np.arange(n)
    for root in paths.roots:  # one tree at a time, one level at a time, over the rows still inside the tree
        node = np.full(n, root)
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
        margin += paths.value[node]  # each row's leaf, in tree order
    return margin, out


def path_contributions(paths: TreePaths, X: np.ndarray, accelerated: bool = True) -> np.ndarray:
    """Per row and feature, the tree-path credits summed over the trees (missing values included)."""
    return walk(paths, X, accelerated)[1]


def walk_strongest(
    paths: TreePaths,
    X: np.ndarray,
    minimum: float,
    top: int = TOP_REASONS,
    accelerated: bool = True,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the raw output and :func:`strongest` of its contributions (a missing value's counted as 0),
    without keeping the n × k contributions."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    n = len(X)
    if _in_c(paths, accelerated):
        margin, chosen = np.empty(n), np.empty((n, top), dtype=np.int64)
        _c_walk(paths, X, margin, None, chosen, top, minimum, _threads(n, threads))
        return margin, chosen
    margin, out = walk(paths, X, accelerated=False)
    out[np.isnan(X)] = 0.0
    return margin, strongest(out, minimum, top)


def strongest(contrib: np.ndarray, minimum: float, top: int = TOP_REASONS) -> np.ndarray:
    """Per row, the indices of up to ``top`` features of largest contribution at least ``minimum``, largest
    first and ties to the lower index (a stable sort's order); -1 after the last (n × top)."""
    c = np.where(contrib >= minimum, contrib, -np.inf)
    rows = np.arange(len(c))
    out = np.full((len(c), top), -1, dtype=np.int64)
    for r in range(min(top, c.shape[1])):
        j = c.argmax(axis=1)  # the first of equal maxima: the lower index
        hit = c[rows, j] > -np.inf
        out[hit, r] = j[hit]
        c[rows, j] = -np.inf
    return out


#: Decimals a reason's value is snapped to before it is worded: far below any digit a reason shows, far above the
#: float noise of summing a window in another order (two engines, or one over a subset of the history), which
#: could otherwise tip a value lying on a rounding tie (4.385) to either side of it.
SNAP_DECIMALS = 9


def word(name: str, value: float) -> str:
    """One factor in an analyst's words, with its value."""
    return _wording(name)(float(np.round(value, SNAP_DECIMALS)))  # as :func:`word_many` does


@functools.cache
def _wording(name: str) -> Callable[[float], str]:
    """:func:`word` for one feature. A reason with one ``{v:.Nf}`` field is %-formatted: the same digits,
    about twice as fast, which counts when a batch words thousands of distinct factors."""
    feature = BY_NAME[name]
    if feature.kind == "flag":
        text, absent = feature.reason, feature.when_absent
        return lambda value: text if value >= 0.5 else absent
    decimals = shows(feature)
    if decimals == EXACT:
        return lambda value: feature.reason.format(v=value)
    (prefix, *_), *rest = string.Formatter().parse(feature.reason)
    suffix = "".join(literal for literal, *_ in rest)
    return (prefix.replace("%", "%%") + f"%.{decimals}f" + suffix.replace("%", "%%")).__mod__


def top_reasons(model: RiskModel, X: np.ndarray, contrib: np.ndarray, top: int = TOP_REASONS) -> list[list[str]]:
    """For each row, up to ``top`` worded factors that raised its score most (strongest first), row by row:
    the plain statement of what :func:`worded` computes for a whole batch (the tests hold them equal)."""
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :top]  # equal contributions: the lower index first
    reasons: list[list[str]] = []
    for i, row in enumerate(order):
        chosen = [j for j in row if contrib[i, j] >= MIN_CONTRIBUTION[model.kind]]
        reasons.append([word(model.features[j], float(X[i, j])) for j in chosen])
    return reasons


EXACT = -1  # a reason whose wording may show any digit of its value
#: ``value × 10^N`` rounds to the same integer in floats as in decimal when it is below this and more than
#: 2^-20 from a tie: the float product's error (at most 2^-24 there) cannot cross the half.
_ROUNDS_BELOW = 2.0**30


def shows(feature: Feature) -> int:
    """How many decimals of its value a reason shows: ``N`` for ``{v:.Nf}``, 0 for a flag (rounding to an
    integer keeps its side of 0.5), :data:`EXACT` for any other wording."""
    if feature.kind == "flag":
        return 0
    fields = [
        (name, spec, conversion)
        for _, name, spec, conversion in string.Formatter().parse(feature.reason)
        if name is not None
    ]
    if len(fields) != 1 or fields[0][0] != "v" or fields[0][2] is not None:
        return EXACT
    match = re.fullmatch(r"\.(\d)f", fields[0][1] or "")
    return int(match.group(1)) if match else EXACT


def word_many(names: list[str], features: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """:func:`word` of many (feature index into ``names``, value) pairs: codes into a list of distinct words.

    A value is reduced to what its wording shows before the pairs are told apart: round(value × 10^N)
    (see :func:`shows`) where that is unambiguous (non-negative, below :data:`_ROUNDS_BELOW`, not near a
    tie), else its bits.
    """
    k = len(names)
    values = np.round(np.ascontiguousarray(values, dtype=np.float64), SNAP_DECIMALS)  # as :func:`word` does
    decimals = np.array([shows(BY_NAME[name]) for name in names], dtype=np.int64)
    with np.errstate(invalid="ignore", over="ignore"):
        p = values * (10.0 ** np.maximum(decimals, 0))[features]
        shown = np.floor(p + 0.5)
        rounded = (
            (decimals[features] >= 0) & (p < _ROUNDS_BELOW) & (np.abs(p - shown) < 0.5 - 2.0**-20) & ~np.signbit(values)
        )
    key = np.where(rounded, shown, 0).astype(np.int64) * k + features  # (rounded value, feature) as one integer
    exact = np.flatnonzero(~rounded)
    if len(exact):  # (bits, feature) pairs do not fit one integer: numbered apart, as negative keys
        bits_code, bits = pd.factorize(values[exact].view(np.int64))
        exact_code, exact_keys = pd.factorize(bits_code * k + features[exact])
        key[exact] = -1 - exact_code
    codes, keys = _factorize(key)
    feature = keys % k  # each distinct key's feature and value: the rounded number over 10^N...
    value = (keys // k) / 10.0 ** np.maximum(decimals[feature], 0)
    if len(exact):  # ... or the exact value
        pair = exact_keys[-1 - keys[keys < 0]]
        feature[keys < 0] = pair % k
        value[keys < 0] = bits[pair // k].view(np.float64)
    wording = [_wording(name) for name in names]
    return codes, [wording[j](v) for j, v in zip(feature.tolist(), value.tolist(), strict=True)]


def _factorize(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes into the distinct integer keys, as ``pd.factorize``; by a lookup table when the keys span
    little (rounded counts, hours and ratios do), several times faster than hashing."""
    if len(key) == 0:
        return pd.factorize(key)
    low = int(key.min())
    span = int(key.max()) - low + 1
    if span > 4 * len(key) + 2**20:
        return pd.factorize(key)
    table = np.zeros(span, dtype=np.int64)
    table[key - low] = 1
    distinct = np.flatnonzero(table)
    table[distinct] = np.arange(len(distinct))
    return table[key - low], distinct + low


def worded(model: RiskModel, X: np.ndarray, chosen: np.ndarray) -> pa.ListArray:
    """The reasons of every row as a ``list<string>`` array: the features ``chosen`` per row (n × top,
    -1 for none; see :func:`strongest`) worded with their values."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    n, k = X.shape
    valid = chosen >= 0
    counts = np.zeros(n, dtype=np.int32)
    for r in range(chosen.shape[1]):  # column by column: much faster than a row-wise sum over a few columns
        counts += valid[:, r]
    features = chosen[valid]  # row by row, each row's strongest first
    codes, words = word_many(model.features, features, X.ravel()[np.repeat(np.arange(n), counts) * k + features])
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    flat = pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(words, pa.string()))
    return pa.ListArray.from_arrays(pa.array(offsets), flat.dictionary_decode())


def explain(model: RiskModel, X: np.ndarray, top: int = TOP_REASONS) -> list[list[str]]:
    """Worded top factors of every row of ``X``."""
    return worded(model, X, strongest(contributions(model, X), MIN_CONTRIBUTION[model.kind], top)).to_pylist()


def score_and_explain(model: RiskModel, X: np.ndarray, top: int = TOP_REASONS) -> tuple[np.ndarray, pa.ListArray]:
    """The scores (as :meth:`RiskModel.score`) and worded reasons (as :func:`explain`) of every row of ``X``.

    A supervised model with sigmoid calibration and numeric splits is walked once: the raw output gives
    the score, the contributions the reasons. Any other model is scored and explained separately.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    minimum = MIN_CONTRIBUTION[model.kind]
    paths = tree_paths(model) if model.kind == "supervised" and len(X) else None
    if paths is not None and model.sigmoid_calibration() is not None:
        margin, chosen = walk_strongest(paths, X, minimum, top)
        return model.score_from_margin(margin), worded(model, X, chosen)
    return model.score(X), worded(model, X, strongest(contributions(model, X), minimum, top))
