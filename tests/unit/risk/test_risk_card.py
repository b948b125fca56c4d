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
    assert "reaching the AUC or AP target on their own: account_fraud_reports" in text
    assert "none reaches" not in text
