"""Scores and reasons in one pass over the trees: the same numbers and words as predict_proba and top_reasons."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator

from devicerisk.risk import reasons
from devicerisk.risk.features import BY_NAME, FEATURE_NAMES
from devicerisk.risk.model import RiskModel, Thresholds, fit, fit_unsupervised, levels
from devicerisk.risk.service import score_table
from factories import risk_matrix

NAMES = list(FEATURE_NAMES)
HOURS, RATIO, CRASH = (NAMES.index(n) for n in ("device_age_for_account_h", "amount_to_median", "crash_rate_7d"))
ROWS = 30_000  # more than PARALLEL_ROWS: the accelerator splits the rows between threads


def _matrix(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts and flags (as :func:`risk_matrix`) and continuous, partly missing hours and ratios; fraud
    shows in several of them at once, so rows have from none to three reasons, some worded with values
    rounded to one and two decimals (ties such as 0.25 and 0.35 included)."""
    X, _ = risk_matrix(n, seed)
    rng = np.random.default_rng(seed)
    fraud = rng.random(n) < 0.15
    signals = fraud[:, None] & (rng.random((n, 4)) < 0.6)
    X[:, 0] = rng.poisson(np.where(signals[:, 0], 9.0, 0.4))
    X[:, HOURS] = np.where(signals[:, 1], rng.exponential(0.5, n), rng.exponential(400.0, n))
    X[:, RATIO] = np.where(signals[:, 2], rng.uniform(4, 30, n), rng.lognormal(0, 0.4, n))
    X[:, NAMES.index("emulator_model")] = signals[:, 3] | (rng.random(n) < 0.02)
    X[:, CRASH] = rng.choice([0.0, 0.125, 0.25, 0.35, 1 / 3, 2.675, 0.005], n)
    X[rng.random(n) < 0.05, HOURS] = np.nan
    X[rng.random(n) < 0.05, RATIO] = np.nan
    X[::97, HOURS] = 0.35  # a tie in decimal, not in binary: 0.35 is stored just below it
    X[::89, HOURS] = 0.25  # an exact binary tie: rounds to even
    return X, fraud.astype(int)


@pytest.fixture(scope="module")
def fitted() -> tuple[RiskModel, np.ndarray]:
    X, y = _matrix(4000, seed=3)
    model = fit(X[:3000], y[:3000], X[3000:], y[3000:], NAMES)
    assert model.kind == "supervised"
    return model, _matrix(ROWS, seed=4)[0]


def test_the_score_from_the_margin_is_predict_proba(fitted: tuple[RiskModel, np.ndarray]) -> None:
    model, X = fitted
    pairs = model.sigmoid_calibration()
    assert pairs is not None and len(pairs) == 1  # a frozen estimator: one calibrator (ensemble="auto")
    scores, _ = reasons.score_and_explain(model, X)
    expected = model.score(X)
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-9)
    assert np.ptp(expected) > 50  # scores spread over the range, not a constant
    paths = reasons.tree_paths(model)
    assert paths is not None
    margin = reasons.walk(paths, X)[0]
    np.testing.assert_allclose(margin, model.margin(X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(reasons.walk(paths, X[:500], accelerated=False)[0], margin[:500], rtol=0, atol=1e-12)


def test_an_ensemble_of_sigmoids_is_averaged_as_predict_proba_does(fitted: tuple[RiskModel, np.ndarray]) -> None:
    model, X = fitted
    X_cal, y_cal = _matrix(3000, seed=5)
    ensemble = CalibratedClassifierCV(FrozenEstimator(model.booster()), method="sigmoid", ensemble=True)
    ensemble.fit(X_cal, y_cal)
    several = RiskModel("supervised", ensemble, NAMES, model.reference)
    pairs = several.sigmoid_calibration()
    assert pairs is not None and len(pairs) == 5 and len(set(pairs)) > 1  # one per fold: a mean of several
    np.testing.assert_allclose(
        reasons.score_and_explain(several, X[:2000])[0], several.score(X[:2000]), rtol=0, atol=1e-9
    )


def test_another_calibration_is_scored_by_predict_proba(fitted: tuple[RiskModel, np.ndarray]) -> None:
    model, X = fitted
    X_cal, y_cal = _matrix(3000, seed=5)
    isotonic = CalibratedClassifierCV(FrozenEstimator(model.booster()), method="isotonic").fit(X_cal, y_cal)
    other = RiskModel("supervised", isotonic, NAMES, model.reference)
    assert other.sigmoid_calibration() is None
    with pytest.raises(ValueError, match="not a sigmoid"):
        other.score_from_margin(np.zeros(3))
    scores, why = reasons.score_and_explain(other, X[:300])
    np.testing.assert_array_equal(scores, other.score(X[:300]))
    assert why.to_pylist() == reasons.top_reasons(other, X[:300], reasons.contributions(other, X[:300]))


def test_the_unsupervised_fallback_keeps_its_path() -> None:
    X, _ = risk_matrix(600)
    model = fit_unsupervised(X[:400], NAMES)
    scores, why = reasons.score_and_explain(model, X[400:])
    np.testing.assert_array_equal(scores, model.score(X[400:]))
    expected = reasons.top_reasons(model, X[400:], reasons.occlusion(model, X[400:]))
    assert why.to_pylist() == expected and any(expected)


def test_the_reasons_are_the_row_by_row_reasons(fitted: tuple[RiskModel, np.ndarray]) -> None:
    model, X = fitted
    _, why = reasons.score_and_explain(model, X)
    expected = reasons.top_reasons(model, X, reasons.contributions(model, X))
    assert why.type == pa.list_(pa.string()) and len(why) == len(X)
    assert why.to_pylist() == expected
    words = [w for row in expected for w in row]
    # the comparison covers rows with every number of reasons and values worded with one and two decimals
    assert {len(row) for row in expected} == {0, 1, 2, 3}
    assert any("device first used on this account" in w for w in words) and len(set(words)) > 200
    assert any("crashes per app start" in w for w in words)
    assert reasons.explain(model, X[:2000]) == expected[:2000]


def test_the_accelerator_chooses_as_numpy_does(fitted: tuple[RiskModel, np.ndarray]) -> None:
    model, X = fitted
    paths = reasons.tree_paths(model)
    assert paths is not None
    minimum = reasons.MIN_CONTRIBUTION["supervised"]
    one = reasons.walk_strongest(paths, X, minimum, threads=1)
    two = reasons.walk_strongest(paths, X, minimum, threads=2)
    some = slice(0, 3000)
    slow = reasons.walk_strongest(paths, X[some], minimum, accelerated=False)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    np.testing.assert_allclose(one[0][some], slow[0], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(one[1][some], slow[1])
    assert (one[1][:, 0] >= 0).mean() > 0.5  # most rows have a reason
    contrib = reasons.walk(paths, X, threads=2)[1]
    np.testing.assert_array_equal(contrib, reasons.walk(paths, X, threads=1)[1])


def test_a_split_without_a_threshold_is_walked_by_numpy(fitted: tuple[RiskModel, np.ndarray]) -> None:
    """A NaN threshold (trees trained on infinite values) would misroute missing values in the C walk, which
    refuses it; the numpy walk, which routes them by their flag, serves instead."""
    model, X = fitted
    paths = reasons.tree_paths(model)
    assert paths is not None
    threshold = paths.threshold.copy()
    threshold[int(np.flatnonzero(paths.is_leaf == 0)[0])] = np.nan
    broken = dataclasses.replace(paths, threshold=threshold)
    rows = X[:500]
    np.testing.assert_array_equal(reasons.walk(broken, rows)[0], reasons.walk(broken, rows, accelerated=False)[0])
    with pytest.raises(ValueError, match="no threshold"):
        reasons._trees.walk(
            rows,
            len(rows),
            rows.shape[1],
            broken.feature,
            broken.threshold,
            broken.missing_left,
            broken.left,
            broken.right,
            broken.is_leaf,
            broken.value,
            broken.roots,
            broken.baseline,
            np.zeros(len(rows)),
            np.zeros(rows.shape),
            None,
            1,
            0.0,
            1,
        )


def test_without_the_accelerator_the_same_scores_and_reasons(
    fitted: tuple[RiskModel, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    model, X = fitted
    X = X[:2000]
    fast = reasons.score_and_explain(model, X)
    monkeypatch.setattr(reasons, "_trees", None)
    slow = reasons.score_and_explain(model, X)
    np.testing.assert_allclose(slow[0], fast[0], rtol=0, atol=1e-9)
    assert slow[1].equals(fast[1])


def test_strongest_takes_ties_in_stable_order() -> None:
    contrib = np.array([[0.2, 0.5, 0.5, 0.01, 0.5], [0.1, 0.1, 0.04, 0.3, 0.1], [0.0, 0.0, 0.0, 0.0, 0.0]])
    chosen = reasons.strongest(contrib, 0.05, 3)
    assert chosen.tolist() == [[1, 2, 4], [3, 0, 1], [-1, -1, -1]]
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :3]
    assert np.array_equal(np.where(np.take_along_axis(contrib, order, 1) >= 0.05, order, -1), chosen)
    model = RiskModel("supervised", None, NAMES[:5], np.zeros(5))
    X = np.arange(15.0).reshape(3, 5)
    assert reasons.worded(model, X, chosen).to_pylist() == reasons.top_reasons(model, X, contrib)
    assert reasons.top_reasons(model, X, contrib)[0] == [reasons.word(NAMES[j], X[0, j]) for j in (1, 2, 4)]


def _as_written(name: str, value: float) -> str:
    """A reason straight from its feature's definition."""
    feature = BY_NAME[name]
    if feature.kind == "flag":
        return feature.reason if value >= 0.5 else feature.when_absent
    return feature.reason.format(v=value)


def test_many_values_are_worded_as_one_at_a_time() -> None:
    """Values reduced to what their wording shows: near-ties, signs, huge and odd values stay exact."""
    values = np.array(
        [
            0,
            0.05,
            0.15,
            0.25,
            0.35,
            0.45,
            0.5,
            0.95,
            0.9499999999999999,
            1.005,
            2.5,
            2.675,
            3.0,
            17.25,
            123.456789,
            1 / 3,
            0.049999999,
            0.7,
            1e12,
            2.0**30,
            -0.0,
            -0.04,
            -3.5,
            np.inf,
            -np.inf,
            np.nan,
        ]
    )
    features = np.repeat(np.arange(len(NAMES)), len(values))
    cells = np.tile(values, len(NAMES))
    codes, words = reasons.word_many(NAMES, features, cells)
    expected = [_as_written(NAMES[j], v) for j, v in zip(features, cells, strict=True)]
    assert [reasons.word(NAMES[j], v) for j, v in zip(features, cells, strict=True)] == expected
    assert [words[c] for c in codes] == expected
    assert len(words) < 0.7 * len(cells)  # equal wordings are formatted once (flags, whole counts)
    codes, words = reasons.word_many(NAMES, np.array([HOURS, HOURS, HOURS]), np.array([0.31, 0.32, 0.35]))
    assert codes[0] == codes[1] != codes[2] and words[codes[2]] == reasons.word(NAMES[HOURS], 0.35)


def test_score_table_levels_and_reasons(fitted: tuple[RiskModel, np.ndarray]) -> None:
    model, X = fitted
    X = X[:3000]
    columns = {name: pa.array(X[:, j]) for j, name in enumerate(NAMES)}
    ids = pa.array([f"{i:032x}" for i in range(len(X))])
    feats = pa.table({"qid": ids, "txn": ids, "acct": ids, "t": pa.array(np.arange(len(X))), **columns})
    score = model.score(X)
    thresholds = Thresholds(*np.quantile(score, [0.8, 0.95]))
    table = score_table(feats, model, thresholds)
    np.testing.assert_allclose(table.column("score").to_numpy(), score, rtol=0, atol=1e-9)
    assert table.column("level").to_pylist() == levels(score, thresholds).tolist()
    assert set(table.column("level").to_pylist()) == {"normal", "elevated", "highest"}
    assert table.column("reasons").to_pylist() == reasons.explain(model, X)


def test_float_noise_of_a_window_sum_does_not_tip_a_shown_digit() -> None:
    """Two engines summing a window in another order agree to about 1e-15, not to the bit: a value on a rounding tie
    (4.385 shown to two decimals) is worded the same from either side of it, one at a time and in a batch."""
    two = next(i for i, n in enumerate(NAMES) if reasons.shows(BY_NAME[n]) == 2)
    noisy = np.array([4.385 - 4e-15, 4.385, 4.385 + 4e-15, 0.125 - 1e-16, 0.125 + 1e-16])
    one_by_one = [reasons.word(NAMES[two], v) for v in noisy]
    codes, words = reasons.word_many(NAMES, np.full(len(noisy), two), noisy)
    assert one_by_one[0] == one_by_one[1] == one_by_one[2] and one_by_one[3] == one_by_one[4]
    assert [words[c] for c in codes] == one_by_one
