"""Scores, levels and reasons of a batch: the one-pass path against the separate one, on the same rows.

Builds a synthetic lake in a temporary folder outside the repository, trains the models on it, computes
the transaction features of the whole lake and tiles them to ``--rows`` rows (the lake's own rows
repeated: the trees' work per row is the same, and the distinct worded factors are the lake's). Then, in
rounds that alternate the two paths on the same matrix, it times:

- the separate path, as scoring did before the one pass: ``model.score`` (scikit-learn's
  ``predict_proba``, one OpenMP thread), the tree-path contributions (the C walk on one thread, keeping
  the n × k matrix), ``top_reasons`` worded row by row, and the levels and reasons built as Arrow arrays
  from Python lists;
- the one-pass path: ``reasons.score_and_explain`` (one walk for margins and reasons, two threads from
  ``PARALLEL_ROWS`` rows on, each distinct factor worded once) and the levels from their codes.

It checks that both give the same scores (within 1e-9) and the same reasons, and prints the first round
(cold: the first large allocations of the process) and the fastest of the rounds (the machine is shared).

Usage::

    .venv/bin/python bench/score_bench.py --accounts 6000 --days 21 --rows 169132 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from devicerisk.risk import features as F
from devicerisk.risk import reasons
from devicerisk.risk.labels import read_labels
from devicerisk.risk.model import LEVELS, RiskModel, Thresholds, level_codes, levels, single_threaded
from devicerisk.risk.service import load_models, scan_events
from devicerisk.risk.training import matrix
from risk_bench import new_lake, settings_for, train_job

OUT = Path(__file__).parent / "out"


def separate(model: RiskModel, X: np.ndarray, thresholds: Thresholds) -> tuple[dict[str, float], Any]:
    """Scoring as before the one pass: predict_proba, contributions, reasons row by row, arrays from lists."""
    t0 = time.perf_counter()
    score = model.score(X)
    t1 = time.perf_counter()
    paths = reasons.tree_paths(model)
    assert paths is not None
    contrib = reasons.walk(paths, X, threads=1)[1]
    contrib[np.isnan(X)] = 0.0
    t2 = time.perf_counter()
    why = reasons.top_reasons(model, X, contrib)
    t3 = time.perf_counter()
    level = pa.array(levels(score, thresholds).tolist(), pa.string())
    listed = pa.array(why, pa.list_(pa.string()))
    t4 = time.perf_counter()
    parts = {"score_s": t1 - t0, "contributions_s": t2 - t1, "reasons_s": t3 - t2, "arrays_s": t4 - t3}
    return parts | {"total_s": t4 - t0}, (score, listed, level)


def one_pass(model: RiskModel, X: np.ndarray, thresholds: Thresholds) -> tuple[dict[str, float], Any]:
    """Scoring as ``service.score_table`` does it now."""
    t0 = time.perf_counter()
    score, why = reasons.score_and_explain(model, X)
    t1 = time.perf_counter()
    level = pa.array(LEVELS, pa.string()).take(pa.array(level_codes(score, thresholds)))
    t2 = time.perf_counter()
    return {"score_and_reasons_s": t1 - t0, "levels_s": t2 - t1, "total_s": t2 - t0}, (score, why, level)


def parts_of_one_pass(model: RiskModel, X: np.ndarray) -> dict[str, float]:
    """Where the one pass's time goes: the walk (on one and on two threads) and the wording."""
    paths = reasons.tree_paths(model)
    assert paths is not None
    minimum = reasons.MIN_CONTRIBUTION[model.kind]
    out = {}
    for threads in (1, 2):
        t0 = time.perf_counter()
        margin, chosen = reasons.walk_strongest(paths, X, minimum, threads=threads)
        out[f"walk_{threads}_thread_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.score_from_margin(margin)
    t1 = time.perf_counter()
    reasons.worded(model, X, chosen)
    t2 = time.perf_counter()
    return out | {"score_from_margin_s": t1 - t0, "worded_s": t2 - t1}


def features_of_lake(root: str, key: str, qkey: str) -> tuple[RiskModel, Thresholds, np.ndarray]:
    s = settings_for(root, key, qkey)
    model, thresholds = load_models(s.models_dir)["transaction"]
    whole = scan_events(s.lake_dir)
    oldest, newest = whole.bounds()
    feats = F.transaction_features(whole, read_labels(s.lake_dir), oldest, newest + timedelta(microseconds=1))
    return model, thresholds, matrix(feats, model.features)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=6000)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--seed", type=int, default=2031)
    parser.add_argument("--rows", type=int, default=169_132, help="rows to score (the lake's tiled); 0: the lake's")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    root, key, qkey, lake = new_lake(args.accounts, args.days, args.seed, "devicerisk-score-bench-")
    try:
        train_job(root, key, qkey)
        model, thresholds, base = features_of_lake(root, key, qkey)
        assert model.kind == "supervised", model.notes
        rows = args.rows or len(base)
        X = np.ascontiguousarray(np.resize(base, (rows, base.shape[1])))
        paths = reasons.tree_paths(model)
        assert paths is not None
        trees = {"trees": len(paths.roots), "nodes": len(paths.value)}
        print(json.dumps({"lake": lake, "lake_transactions": len(base), "rows": rows} | trees))

        runs: dict[str, list[dict[str, float]]] = {"separate": [], "one_pass": [], "one_pass_parts": []}
        with single_threaded():  # predict_proba on one OpenMP thread, as model.score runs it
            for r in range(args.rounds):
                sep, (score_a, why_a, level_a) = separate(model, X, thresholds)
                new, (score_b, why_b, level_b) = one_pass(model, X, thresholds)
                runs["separate"].append(sep)
                runs["one_pass"].append(new)
                runs["one_pass_parts"].append(parts_of_one_pass(model, X))
                if r == 0:  # the same numbers and words, checked once
                    assert np.abs(score_a - score_b).max() <= 1e-9
                    assert why_a.equals(why_b) and level_a.equals(level_b)
                print(
                    f"  round {r + 1}: separate {sep['total_s']:.3f} s, one pass {new['total_s']:.3f} s, "
                    f"load average {os.getloadavg()[0]:.2f}"
                )

        def best(name: str) -> dict[str, float]:
            return {k: min(run[k] for run in runs[name]) for k in runs[name][0]}

        summary = {
            "rows": rows,
            "lake_transactions": len(base),
            **trees,
            "rounds": args.rounds,
            "first_round": {"separate": runs["separate"][0], "one_pass": runs["one_pass"][0]},
            "fastest": {name: best(name) for name in runs},
        }
        fastest = summary["fastest"]
        summary["speedup"] = fastest["separate"]["total_s"] / fastest["one_pass"]["total_s"]
        summary["one_pass_rows_per_s"] = rows / fastest["one_pass"]["total_s"]
        print(json.dumps(summary, indent=2))
        print(
            f"one pass: {fastest['one_pass']['total_s']:.3f} s for {rows:,} rows "
            f"({summary['one_pass_rows_per_s']:,.0f}/s), {summary['speedup']:.1f}× the separate path "
            f"({fastest['separate']['total_s']:.3f} s)"
        )
        OUT.mkdir(exist_ok=True)
        (OUT / "score_results.json").write_text(json.dumps(summary, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
