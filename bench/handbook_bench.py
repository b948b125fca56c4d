"""The public-benchmark bench: the fraud-detection handbook's simulator, through the real pipeline.

For each seed, ``devicerisk.synth.handbook`` simulates the handbook's card transactions (5,000
customers, 10,000 terminals, its three fraud scenarios). The last 7 days are the held-out week. Then:

- **devicerisk**: the weeks before it are written as contract telemetry (customer = account, terminal
  = counterparty) with fraud labels reported 1 to 7 days late, and go through ingest, label ingest and
  training as the flows run them; then the held-out week and the labels reported by its end are ingested
  and scored by the score flow's path (signal log, feature engine, champion model).
- **the handbook's baselines**, trained in the same run on its engineered features as its chapter 3.5
  does: one training week that ends 7 days before the held-out week (the delay after which its frauds
  are known), logistic regression on standardised features and a random forest.

All are judged on the same held-out transactions against the ground truth: ROC AUC, average precision,
precision at 20 alerts a day (the day's 20 highest scores) and, per scenario, recall at 100 alerts a day.

Usage::

    .venv/bin/python bench/handbook_bench.py --seeds 1 2 3 --days 70
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import ingest_batches
from devicerisk.ingest.runtime import ingest_context
from devicerisk.risk.labels import ingest_labels
from devicerisk.risk.scoring import score_transactions
from devicerisk.risk.service import RiskStores, TrainingPlan, train_and_register
from devicerisk.risk.truth import pseudonymised_truth
from devicerisk.store import scores
from devicerisk.store.landing import pending_files
from devicerisk.synth.handbook import DAY_S, SCENARIOS, HandbookConfig, baseline_features, simulate, write_landing

OUT = Path(__file__).parent / "out"
PRECISION_ALERTS, RECALL_ALERTS = 20, 100  # alerts a day
DELAY_DAYS, TEST_DAYS = 7, 7


def daily_top(day: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """A mask of each day's ``k`` highest scores (ties broken by order)."""
    mask = np.zeros(len(score), dtype=bool)
    for d in np.unique(day):
        idx = np.flatnonzero(day == d)
        mask[idx[np.argsort(-score[idx], kind="stable")[:k]]] = True
    return mask


def judge(test: pd.DataFrame, score: np.ndarray) -> dict[str, Any]:
    """AUC, AP, precision at 20 alerts a day and recall per scenario at 100 a day on the held-out rows."""
    y, day = test["fraud"].to_numpy(), test["day"].to_numpy()
    top_p, top_r = daily_top(day, score, PRECISION_ALERTS), daily_top(day, score, RECALL_ALERTS)
    scen = test["scenario"].to_numpy()
    recall = {name: float(top_r[scen == s].mean()) if (scen == s).any() else None for s, name in SCENARIOS.items()}
    return {
        "roc_auc": float(roc_auc_score(y, score)),
        "average_precision": float(average_precision_score(y, score)),
        f"precision_at_{PRECISION_ALERTS}_per_day": float(y[top_p].mean()),
        f"recall_at_{RECALL_ALERTS}_per_day": float(y[top_r].sum() / max(y.sum(), 1)),
        "recall_per_scenario": recall,
    }


def baselines(tx: pd.DataFrame, feats: pd.DataFrame, days: int, seed: int) -> dict[str, np.ndarray]:
    """The handbook's baselines: one training week ending ``DELAY_DAYS`` before the held-out week."""
    test_from = days - TEST_DAYS
    train = ((tx["day"] >= test_from - DELAY_DAYS - 7) & (tx["day"] < test_from - DELAY_DAYS)).to_numpy()
    test = (tx["day"] >= test_from).to_numpy()
    X, y = feats.to_numpy(dtype=float), tx["fraud"].to_numpy()
    models = {
        "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        "random forest": RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=2),
    }
    return {name: m.fit(X[train], y[train]).predict_proba(X[test])[:, 1] for name, m in models.items()}


def devicerisk_scores(tx: pd.DataFrame, config: HandbookConfig, root: Path, seed: int) -> tuple[np.ndarray, dict]:
    """Train on the weeks before the held-out week, then ingest and score it; scores in ``tx``'s test order."""
    s = Settings(
        mode="production",
        data_dir=root / "data",
        pseudonym_key=secrets.token_hex(32),
        quarantine_key=secrets.token_hex(32),
        secrets_dir=root / "secrets",
    )
    ctx = ingest_context(s)
    test_from_s = (config.days - TEST_DAYS) * DAY_S
    figures: dict[str, Any] = {}
    start = time.perf_counter()
    write_landing(tx, config, s.landing_dir, until_s=test_from_s, seed=seed)
    list(ingest_batches(pending_files(s.landing_dir), ctx))
    list(ingest_labels(ctx, s.landing_dir))
    figures["ingest_s"] = time.perf_counter() - start
    truth = pseudonymised_truth(s.landing_dir, ctx.pseudonymiser)
    start = time.perf_counter()
    outcome = train_and_register(RiskStores.of(s), TrainingPlan(PRECISION_ALERTS, 2.0, 2.0), truth, seed)
    figures["train_s"] = time.perf_counter() - start
    figures["model_kind"] = outcome.metadata["transaction"]["kind"]
    figures["card_metrics"] = {
        k: outcome.metadata["transaction"]["metrics"].get(k) for k in ("roc_auc", "average_precision")
    }
    write_landing(tx, config, s.landing_dir, since_s=test_from_s, seed=seed)  # the held-out week and its labels
    list(ingest_batches(pending_files(s.landing_dir), ctx))
    list(ingest_labels(ctx, s.landing_dir))
    start = time.perf_counter()
    score_transactions(RiskStores.of(s), "handbook")
    figures["score_s"] = time.perf_counter() - start
    scored = scores.read(s.lake_dir, scores.TRANSACTION_SCORES)
    assert scored is not None
    test = tx[tx["day"] >= config.days - TEST_DAYS]
    raw_ids = [f"hb-tx-{i}" for i in test["tx_id"]]
    wanted = ctx.pseudonymiser.pseudonymise("transaction", pa.array(raw_ids))
    by_pid = dict(zip(scored.column("transaction_id_pid").to_pylist(), scored.column("score").to_pylist(), strict=True))
    got = np.array([by_pid.get(p, np.nan) for p in wanted.to_pylist()], dtype=float)
    figures["unscored"] = int(np.isnan(got).sum())
    return np.nan_to_num(got, nan=0.0), figures


def run_seed(seed: int, days: int) -> dict[str, Any]:
    config = HandbookConfig(days=days, seed=seed)
    start = time.perf_counter()
    tx = simulate(config)
    simulated = time.perf_counter() - start
    feats = baseline_features(tx, DELAY_DAYS)
    test = tx[tx["day"] >= days - TEST_DAYS]
    result: dict[str, Any] = {
        "seed": seed,
        "days": days,
        "transactions": len(tx),
        "simulate_s": simulated,
        "test_transactions": len(test),
        "test_frauds": int(test["fraud"].sum()),
    }
    models = {name: judge(test, s) for name, s in baselines(tx, feats, days, seed).items()}
    root = Path(tempfile.mkdtemp(prefix="devicerisk-handbook-"))
    try:
        mine, figures = devicerisk_scores(tx, config, root, seed)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["devicerisk_run"] = figures
    result["models"] = {"devicerisk": judge(test, mine), **models}
    return result


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| seed | model | ROC AUC | AP | precision at 20/day | " + " | ".join(SCENARIOS.values()) + " |",
        "|---|---|---:|---:|---:|" + "---:|" * len(SCENARIOS),
    ]
    for r in results:
        for name, m in r["models"].items():
            rec = " | ".join(f"{v:.2f}" if v is not None else "-" for v in m["recall_per_scenario"].values())
            lines.append(
                f"| {r['seed']} | {name} | {m['roc_auc']:.3f} | {m['average_precision']:.3f} | "
                f"{m[f'precision_at_{PRECISION_ALERTS}_per_day']:.2f} | {rec} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument(
        "--days",
        type=int,
        default=70,
        help="simulated days (at least 58: the baselines' "
        "30-day windows, a training week, the delay week and the held-out week)",
    )
    args = parser.parse_args()
    if args.days < 58:
        parser.error("--days must be at least 58")
    results = []
    for seed in args.seeds:
        results.append(run_seed(seed, args.days))
        print(json.dumps(results[-1], indent=2), flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "handbook_results.json").write_text(json.dumps(results, indent=2))
    print("recall per scenario at 100 alerts a day")
    print(table(results))


if __name__ == "__main__":
    main()
