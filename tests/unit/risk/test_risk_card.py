"""The model card reports the fraud not yet known and flags any single feature that reaches a target alone."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from devicerisk.risk import card
from devicerisk.risk.evaluate import evaluate
from devicerisk.risk.features import FEATURE_NAMES
from devicerisk.risk.model import RiskModel, Thresholds
from devicerisk.risk.training import Trained

NAMES = list(FEATURE_NAMES)


def trained_with_known_fraud() -> Trained:
    """Most frauds were already reported (account_fraud_reports > 0) and score top; the rest score weakly."""
    rng = np.random.default_rng(7)
    n = 2000
    y = (rng.random(n) < 0.1).astype(int)
    known = (y == 1) & (rng.random(n) < 0.85)
    X = np.zeros((n, len(NAMES)))
    X[:, NAMES.index("account_fraud_reports")] = known.astype(float)
    scores = np.where(known, 99.0, rng.random(n) * 50 + y * 5)
    model = RiskModel("supervised", None, NAMES, np.zeros(len(NAMES)))
    th = Thresholds(90.0, 95.0)
    ev = evaluate(y, scores / 100, scores, th, None, X, NAMES)
    return Trained(model, th, ev, scores, y, X, n, int(y.sum()))


def test_card_reports_metrics_on_rows_not_reported_before() -> None:
    t = trained_with_known_fraud()
    rows = card.unreported_rows(t)
    assert rows.sum() == (t.test_X[:, NAMES.index("account_fraud_reports")] == 0).sum() < len(rows)
    auc = roc_auc_score(t.test_target[rows], t.test_scores[rows])
    ap = average_precision_score(t.test_target[rows], t.test_scores[rows])
    assert ap < t.evaluation.average_precision  # the already-known fraud flattered the headline figure
    text = "\n".join(card._score_section("transaction", t, "top 20 a day"))
    assert f"{int(rows.sum()):,} held-out rows whose account and device had no fraud report" in text
    assert f"ROC AUC {auc:.4f}, average precision {ap:.4f}" in text


def test_single_feature_check_covers_average_precision() -> None:
    t = trained_with_known_fraud()
    single = t.evaluation.single_flags["account_fraud_reports"]
    assert single["roc_auc"] < 0.95 and single["average_precision"] >= 0.80  # AP alone reaches the target
    text = "\n".join(card._score_section("transaction", t, "top 20 a day"))
    assert "reaching the ROC AUC or average precision target on their own: account_fraud_reports" in text
    assert "none reaches" not in text


def test_single_feature_check_covers_precision_at_the_alert_budget() -> None:
    """A rare flag that is precise but catches little passes the precision target alone, not AUC or AP."""
    rng = np.random.default_rng(11)
    n = 2000
    y = np.zeros(n, dtype=int)
    y[:200] = 1
    X = np.zeros((n, len(NAMES)))
    flag, hours = NAMES.index("emulator_model"), NAMES.index("hours_since_registration")
    X[:30, flag] = 1.0  # 30 fraud and 5 legitimate rows carry the flag
    X[200:205, flag] = 1.0
    X[:, hours] = np.where(y == 1, rng.uniform(0, 50, n), rng.uniform(20, 1000, n))  # new accounts are risky
    X[300:320, hours] = np.nan
    scores = rng.random(n) * 100
    ev = evaluate(y, scores / 100, scores, Thresholds(90.0, 95.0), None, X, NAMES, days=2, budget_per_day=20)
    single = ev.single_flags
    # 40 alerts wanted (20 a day, 2 days) but the flag ties its 35 rows and its absence never alerts
    assert single["emulator_model"]["precision_at_budget"] == 30 / 35
    assert single["emulator_model"]["roc_auc"] < 0.95 and single["emulator_model"]["average_precision"] < 0.8
    assert single["hours_since_registration"]["direction"] == -1.0  # read with low values as the risky ones
    assert single["hours_since_registration"]["roc_auc"] > 0.9
    text = "\n".join(card._single_feature_section(single))
    assert "reaching the ROC AUC or average precision or precision at the alert budget target on their own: " in text
    assert "emulator_model" in text.split("on their own: ")[1].split(".")[0]
    best_auc = max(single, key=lambda k: single[k]["roc_auc"])
    assert best_auc == "hours_since_registration"
    assert f"Best single feature by ROC AUC {best_auc} ({single[best_auc]['roc_auc']:.3f}, target 0.95)" in text
    assert "by precision at the alert budget hours_since_registration (1.000, target 0.6)" in text
    assert any(line.startswith("| emulator_model |") and line.endswith("| 0.857 |") for line in text.splitlines())
    assert "| hours_since_registration (low values risky) |" in text
