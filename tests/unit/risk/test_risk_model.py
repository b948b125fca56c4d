"""Scores, levels at their thresholds, the alert budget, the unsupervised fallback and reasons."""

from __future__ import annotations

import numpy as np
import pytest

from devicerisk.risk import reasons
from devicerisk.risk.evaluate import Evaluation, at_least_as_good
from devicerisk.risk.features import FEATURE_NAMES
from devicerisk.risk.model import MIN_CALIBRATION_POSITIVES, Thresholds, fit, level, levels, thresholds_from_budget
from devicerisk.risk.training import calibration_rows
from factories import risk_matrix

TH = Thresholds(elevated=40.0, highest=80.0)


@pytest.mark.parametrize(
    ("score", "expected"),
    [(0.0, "normal"), (39.9, "normal"), (40.0, "elevated"), (79.9, "elevated"), (80.0, "highest"), (100.0, "highest")],
)
def test_a_score_on_a_threshold_takes_the_higher_level(score: float, expected: str) -> None:
    assert level(score, TH) == expected
    assert levels(np.array([score]), TH)[0] == expected


def test_thresholds_follow_the_alert_budget() -> None:
    scores = np.arange(1.0, 101.0)  # 100 scores over 2 days
    th = thresholds_from_budget(scores, days=2, budget_per_day=5)
    assert th.highest == 91.0  # the 10th highest: 5 a day for 2 days
    assert th.elevated == 51.0  # five times as many at elevated or above
    assert int((scores >= th.highest).sum()) == 10


def test_supervised_model_ranks_and_explains() -> None:
    X, y = risk_matrix()
    model = fit(X[:2000], y[:2000], X[2000:], y[2000:], list(FEATURE_NAMES))
    assert model.kind == "supervised" and not model.notes
    p = model.probability(X)
    assert ((p[y == 1].mean()) - p[y == 0].mean()) > 0.5
    row = int(np.flatnonzero((y == 1) & (X[:, 0] >= 10))[0])
    words = reasons.explain(model, X[row : row + 1])[0]
    assert words and words[0] == f"device seen on {X[row, 0]:.0f} accounts in 24 h"
    typical = int(np.flatnonzero((y == 0) & (X[:, 0] == 0))[0])
    assert not any("accounts in 24 h" in w for w in reasons.explain(model, X[typical : typical + 1])[0])


def test_contributions_measure_the_model_not_a_rule() -> None:
    """The tree-path credits of a row add up exactly to the model's raw output, in C and in numpy alike."""
    X, y = risk_matrix()
    model = fit(X[:2000], y[:2000], X[2000:], y[2000:], list(FEATURE_NAMES))
    X = X.copy()
    X[::7, 3] = np.nan  # missing values take the trees' missing-value branches
    paths = reasons.tree_paths(model)
    assert paths is not None
    credit = reasons.path_contributions(paths, X)
    np.testing.assert_allclose(credit.sum(axis=1) + paths.bias, model.margin(X), rtol=0, atol=1e-9)
    np.testing.assert_allclose(reasons.path_contributions(paths, X, accelerated=False), credit, rtol=0, atol=1e-12)
    fraud = np.flatnonzero(y == 1)
    assert np.median(credit[fraud, 0]) > 0.5  # the planted signal (accounts per device) raises fraud rows
    contrib = reasons.contributions(model, X)
    assert np.all(contrib[np.isnan(X)] == 0) and np.array_equal(contrib[~np.isnan(X)], credit[~np.isnan(X)])


def test_the_fallback_is_explained_by_occlusion() -> None:
    X, _ = risk_matrix(600)
    model = fit(X[:400], np.zeros(400, dtype=int), X[400:], np.zeros(200, dtype=int), list(FEATURE_NAMES))
    row = X[np.flatnonzero(X[:, 0] > model.reference[0] + 5)[:1]]
    occluded = row.copy()
    occluded[0, 0] = model.reference[0]
    drop = model.margin(row)[0] - model.margin(occluded)[0]
    assert model.kind == "unsupervised" and drop != 0
    assert reasons.contributions(model, row)[0, 0] == pytest.approx(drop)


def test_the_accelerator_refuses_inconsistent_trees() -> None:
    X, y = risk_matrix(1000)
    paths = reasons.tree_paths(fit(X[:600], y[:600], X[600:], y[600:], list(FEATURE_NAMES)))
    assert paths is not None and reasons._trees is not None

    def walk(k: int, left: np.ndarray, right: np.ndarray) -> None:
        reasons._trees.walk(
            X,
            X.shape[0],
            k,
            paths.feature,
            paths.threshold,
            paths.missing_left,
            left,
            right,
            paths.is_leaf,
            paths.value,
            paths.roots,
            paths.baseline,
            np.zeros(len(X)),
            np.zeros(X.shape),
            None,
            1,
            0.0,
            1,
        )

    split = int(np.flatnonzero(paths.is_leaf == 0)[0])
    looped = paths.left.copy()
    looped[split] = split  # a child pointing back at its parent would never reach a leaf
    with pytest.raises(ValueError, match="bad feature or child index"):
        walk(X.shape[1], looped, paths.right)
    shared = paths.right.copy()
    shared[split] = paths.left[split]  # both branches to one node: a tree no longer
    with pytest.raises(ValueError, match="reached from two parents"):
        walk(X.shape[1], paths.left, shared)
    with pytest.raises(ValueError, match="inconsistent array sizes"):
        walk(X.shape[1] + 1, paths.left, paths.right)
    walk(X.shape[1], paths.left, paths.right)  # the consistent trees pass


@pytest.mark.parametrize("positives", [0, 5])
def test_too_few_labels_fall_back_to_an_isolation_forest_and_say_so(positives: int) -> None:
    X, _ = risk_matrix(600)
    y = np.zeros(len(X), dtype=int)
    y[:positives] = 1
    model = fit(X[:400], y[:400], X[400:], y[400:], list(FEATURE_NAMES))
    assert model.kind == "unsupervised"
    assert "too few labels" in model.notes[0] and "IsolationForest" in model.notes[0]
    p = model.probability(X)
    assert p.min() >= 0 and p.max() <= 1 and len(np.unique(p)) > 10
    assert all(isinstance(w, list) for w in reasons.explain(model, X[:5]))


def test_reason_wording() -> None:
    assert reasons.word("amount_to_median", 6.04) == "amount 6.0× this account's median"
    assert reasons.word("emulator_model", 1.0) == "emulator model string"
    assert reasons.word("accounts_on_device_24h", 14.0) == "device seen on 14 accounts in 24 h"


def test_a_flag_that_is_not_set_reads_plainly() -> None:
    """A flag's absence can raise a score too: it reads as its own statement, never a double negative."""
    assert reasons.word("emulator_model", 0.0) == "no emulator model string"
    assert reasons.word("new_sim_country", 0.0) == "SIM country seen on this account in 31 d"
    assert reasons.word("cp_new_for_account", 0.0) == "counterparty paid before by this account in 31 d"
    flags = [name for name in FEATURE_NAMES if reasons.BY_NAME[name].kind == "flag"]
    assert len(flags) >= 10
    for name in flags:
        absent = reasons.word(name, 0.0)
        assert absent != reasons.word(name, 1.0)
        words = absent.split()
        assert not (words[0] in ("no", "not") and {"not", "no", "invalid"} & set(words[1:])), absent


def _ev(auc: float | None, ap: float | None) -> Evaluation:
    return Evaluation(
        rows=10, positives=2, roc_auc=auc, average_precision=ap, precision_at_budget=None, alerts=0, brier=None
    )


def test_gate_keeps_the_better_champion() -> None:
    assert at_least_as_good(_ev(0.96, 0.85), _ev(0.96, 0.85))  # equal is good enough
    assert not at_least_as_good(_ev(0.959, 0.85), _ev(0.96, 0.85))
    assert not at_least_as_good(_ev(0.97, 0.80), _ev(0.96, 0.85))
    assert not at_least_as_good(_ev(None, None), _ev(0.5, 0.1))
    assert at_least_as_good(_ev(0.9, 0.5), _ev(None, None))


def test_features_no_tree_uses_contribute_nothing() -> None:
    X, y = risk_matrix()
    model = fit(X[:2000], y[:2000], X[2000:], y[2000:], list(FEATURE_NAMES))
    used = set(model.used_features())
    assert 0 in used
    contrib = reasons.contributions(model, X[:200])
    unused = [j for j in range(X.shape[1]) if j not in used]
    assert unused and np.all(contrib[:, unused] == 0)
    for j in unused:  # and occluding them really changes nothing
        occluded = X[:200].copy()
        occluded[:, j] = model.reference[j]
        assert np.allclose(model.margin(occluded), model.margin(X[:200]))


def test_an_unknown_novelty_value_is_never_a_reason() -> None:
    """A NULL device age (no device on the transaction) is not worded as "first used 0.0 h before"."""
    X, y = risk_matrix()
    j = list(FEATURE_NAMES).index("device_age_for_account_h")
    X[:, j] = np.where(y == 1, 0.0, 500.0)  # fraud comes from a device new to the account, and only that
    X[:, 0] = 0.0
    X[:, list(FEATURE_NAMES).index("emulator_model")] = 0.0
    model = fit(X[:2000], y[:2000], X[2000:], y[2000:], list(FEATURE_NAMES))
    row = X[np.flatnonzero(y[2000:] == 1)[:1] + 2000].copy()
    assert "device first used on this account 0.0 h before" in reasons.explain(model, row)[0]
    row[0, j] = np.nan
    assert not any("device first used" in w for w in reasons.explain(model, row)[0])


@pytest.mark.parametrize("cal_positives", [1, MIN_CALIBRATION_POSITIVES - 1])
def test_too_few_calibration_positives_fall_back_and_say_so(cal_positives: int) -> None:
    """A sigmoid fitted on a handful of frauds is not a probability: the model falls back and says why."""
    X, y = risk_matrix(6000, seed=1)
    negatives = np.flatnonzero(y[3000:] == 0)[:1500] + 3000
    positives = np.flatnonzero(y[3000:] == 1)[:cal_positives] + 3000
    cal = np.concatenate([negatives, positives])
    model = fit(X[:3000], y[:3000], X[cal], y[cal], list(FEATURE_NAMES))
    assert model.kind == "unsupervised"
    assert f"{cal_positives} fraud in calibration" in model.notes[0] and "at least" in model.notes[0]
    enough = np.concatenate([negatives, np.flatnonzero(y[3000:] == 1)[:MIN_CALIBRATION_POSITIVES] + 3000])
    assert fit(X[:3000], y[:3000], X[enough], y[enough], list(FEATURE_NAMES)).kind == "supervised"


def test_too_few_frauds_in_the_newest_fifth_calibrate_on_a_random_fifth() -> None:
    y = np.zeros(1000, dtype=int)
    y[:300:3] = 1  # 100 frauds, all among the older rows
    train = np.arange(1000) < 800
    newest = train & (np.arange(1000) >= 640)
    rows, note = calibration_rows(train, newest, y, seed=0)
    assert note is not None and "only 0 fraud" in note
    assert not (rows & ~train).any() and rows.sum() == 160 and y[rows].sum() == 20  # a fifth of each, exactly
    for seed in range(20):  # whatever the draw: 50 frauds always give the 10 a calibration needs
        y50 = np.zeros(1000, dtype=int)
        y50[:500:10] = 1
        assert y50[calibration_rows(train, newest, y50, seed)[0]].sum() == MIN_CALIBRATION_POSITIVES
    y[700:720] = 1  # enough frauds in the newest fifth: it calibrates
    assert calibration_rows(train, newest, y, seed=0) == (newest, None)
