"""The promotion gate on real models in a real registry: the better model on the held-out rows wins."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from devicerisk.risk.evaluate import evaluate
from devicerisk.risk.features import FEATURE_NAMES
from devicerisk.risk.model import RiskModel, fit, thresholds_from_budget
from devicerisk.risk.service import _gate, _model_meta, load_models
from devicerisk.risk.training import Split, Trained, TrainingResult
from devicerisk.store import registry
from factories import risk_matrix

NAMES = list(FEATURE_NAMES)


def trained(model: RiskModel, X: np.ndarray, y: np.ndarray) -> Trained:
    p = model.probability(X)
    th = thresholds_from_budget(p * 100, 1, 20)
    return Trained(model, th, evaluate(y, p, p * 100, th), p * 100, y, X, 2000, int(y.sum()))


def models() -> tuple[RiskModel, RiskModel, np.ndarray, np.ndarray]:
    X, y = risk_matrix(4000, seed=3)
    good = fit(X[:2000], y[:2000], X[2000:3000], y[2000:3000], NAMES)
    shuffled = np.random.default_rng(0).permutation(y[:3000])
    weak = fit(X[:2000], shuffled[:2000], X[2000:3000], shuffled[2000:3000], NAMES)
    return good, weak, X[3000:], y[3000:]


def register(
    models_dir: Path, version: str, model: RiskModel, X: np.ndarray, y: np.ndarray, account: RiskModel | None = None
) -> None:
    account = account or model
    meta = {
        "transaction": _model_meta(model, trained(model, X, y).thresholds, {}),
        "account": _model_meta(account, trained(account, X, y).thresholds, {}),
    }
    registry.save(models_dir, version, {"transaction": model.estimator, "account": account.estimator}, meta)
    registry.promote(models_dir, version)


def result(model: RiskModel, X: np.ndarray, y: np.ndarray, account: RiskModel | None = None) -> TrainingResult:
    when = datetime(2026, 11, 1, tzinfo=UTC)
    return TrainingResult(Split(when, when, when, when), trained(model, X, y), trained(account or model, X, y))


def test_the_champion_stays_when_the_candidate_is_worse(tmp_path: Path) -> None:
    good, weak, X, y = models()
    register(tmp_path, "champion", good, X, y)
    promoted, why = _gate(tmp_path, result(weak, X, y))
    assert not promoted and "champion champion kept" in why
    assert load_models(tmp_path)["transaction"][0].kind == "supervised"


def test_a_better_candidate_replaces_the_champion(tmp_path: Path) -> None:
    good, weak, X, y = models()
    register(tmp_path, "champion", weak, X, y)
    promoted, why = _gate(tmp_path, result(good, X, y))
    assert promoted and "at least as good" in why


def test_an_unsupervised_candidate_never_replaces_a_supervised_champion(tmp_path: Path) -> None:
    good, _, X, y = models()
    register(tmp_path, "champion", good, X, y)
    fallback = fit(X, np.zeros(len(X), dtype=int), X, np.zeros(len(X), dtype=int), NAMES)
    promoted, why = _gate(tmp_path, result(fallback, X, y))
    assert fallback.kind == "unsupervised" and not promoted and "never replaces" in why


def fallback(X: np.ndarray) -> RiskModel:
    return fit(X, np.zeros(len(X), dtype=int), X, np.zeros(len(X), dtype=int), NAMES)


def test_an_unsupervised_account_fallback_never_replaces_a_supervised_account_champion(tmp_path: Path) -> None:
    good, _, X, y = models()
    register(tmp_path, "champion", good, X, y)
    promoted, why = _gate(tmp_path, result(good, X, y, account=fallback(X)))  # transaction score as good
    assert not promoted and "account" in why and "never replaces" in why
    assert load_models(tmp_path)["account"][0].kind == "supervised"


def test_a_worse_account_score_keeps_the_champion(tmp_path: Path) -> None:
    good, weak, X, y = models()
    register(tmp_path, "champion", good, X, y)
    promoted, why = _gate(tmp_path, result(good, X, y, account=weak))
    assert not promoted and "account score" in why and "champion champion kept" in why


def test_both_scores_must_pass(tmp_path: Path) -> None:
    good, weak, X, y = models()
    register(tmp_path, "champion", weak, X, y, account=good)
    promoted, why = _gate(tmp_path, result(good, X, y, account=good))  # better transaction, equal account
    assert promoted and why.count("at least as good") == 2, why


def test_a_candidate_judged_on_unreported_fraud_never_replaces_the_champion(tmp_path: Path) -> None:
    good, weak, X, y = models()
    register(tmp_path, "champion", weak, X, y)
    when = datetime(2026, 11, 1, tzinfo=UTC)
    immature = Split(when, when, when, when, when, 13.0, test_mature=False)
    promoted, why = _gate(tmp_path, TrainingResult(immature, trained(good, X, y), trained(good, X, y)))
    assert not promoted and "not all reported yet" in why and "13.0-day" in why
    assert _gate(tmp_path / "empty", TrainingResult(immature, trained(good, X, y), trained(good, X, y)))[0]


def test_a_model_that_floods_the_alert_budget_is_never_promoted(tmp_path: Path) -> None:
    """Tied top scores put far more than the budget at ``highest``: such a model serves no one, first or not."""
    good, _, X, y = models()
    flooding = trained(good, X, y)
    flooding.alerts_per_day, flooding.budget_per_day = 41.0, 20
    when = datetime(2026, 11, 1, tzinfo=UTC)
    promoted, why = _gate(tmp_path / "empty", TrainingResult(Split(when, when, when, when), flooding, flooding))
    assert not promoted and "more than twice the budget of 20" in why
    flooding.alerts_per_day = 40.0  # twice the budget is still allowed
    assert _gate(tmp_path / "empty", TrainingResult(Split(when, when, when, when), flooding, flooding))[0]
