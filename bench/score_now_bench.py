"""Score-now benchmark: the latency of scoring one raw transaction event with the champion model.

Builds a 30-day lake once (the risk benchmark's generator settings: ``--accounts 14500 --days 30 --seed
2029`` gives about 5.1M events) in a cache folder outside the repository, reused by later runs with the
same arguments: every telemetry batch but the newest is ingested, the labels too, the signal log is built
and both models are trained and promoted. The newest batch stays in landing, never ingested: its
transactions are the held-out events, scored one at a time as raw contract records, each with the whole
lake as its history.

Measured in one process after the scorer is opened (its open time reported too): p50, p90, p99 and max
of ``RealtimeScorer.score`` over ``--events`` held-out transactions, beside the same run's references on
the same events, timed after the scores: the contract validation and privacy treatment of the event
alone, and the model's bare ``predict_proba`` on one row (single-threaded).

Usage::

    .venv/bin/python bench/score_now_bench.py --accounts 14500 --days 30 --seed 2029
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import ingest_batches
from devicerisk.ingest.runtime import ingest_context
from devicerisk.risk import signals
from devicerisk.risk.labels import ingest_labels
from devicerisk.risk.model import single_threaded
from devicerisk.risk.service import RiskStores, TrainingPlan, train_and_register
from devicerisk.risk.truth import pseudonymised_truth
from devicerisk.synth import SynthConfig, generate
from risk_bench import BENCH_MIX, BUDGET, GAP_DAYS, TEST_DAYS

OUT = Path(__file__).parent / "out"
HELD_OUT = "held_out.ndjson"


def settings_for(root: Path) -> Settings:
    """The bench lake's settings: production mode, with the bench's own keys in its secrets folder."""
    secrets_dir = root / "secrets"
    return Settings(
        mode="production",
        data_dir=root / "data",
        secrets_dir=secrets_dir,
        pseudonym_key_file=secrets_dir / "pseudonym.key",
        quarantine_key_file=secrets_dir / "quarantine.key",
        audit_key_file=secrets_dir / "audit.key",
    )


def build(root: Path, accounts: int, days: int, seed: int) -> dict[str, Any]:
    """Generate, ingest all batches but the newest (kept aside as the held-out events), train and promote."""
    secrets_dir = root / "secrets"
    secrets_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
    for name in ("pseudonym", "quarantine", "audit"):
        (secrets_dir / f"{name}.key").write_text(secrets.token_hex(32))
    s = settings_for(root)
    start = time.perf_counter()
    config = SynthConfig(
        accounts=accounts, days=days, seed=seed, events_per_batch=200_000, gzip=False, scenario_mix=BENCH_MIX
    )
    result = generate(s.landing_dir, config)
    *earlier, last = result.batches
    held_out = root / HELD_OUT
    os.replace(last, held_out)  # out of landing: never ingested
    ctx = ingest_context(s)
    accepted = sum(r.accepted for r in ingest_batches(earlier, ctx))
    labels = sum(r.accepted for r in ingest_labels(ctx, s.landing_dir))
    log = signals.refresh_log(s.lake_dir, s.signals_dir)
    truth = pseudonymised_truth(s.landing_dir, ctx.pseudonymiser)
    outcome = train_and_register(RiskStores.of(s), TrainingPlan(BUDGET, GAP_DAYS, TEST_DAYS), truth)
    figures = {
        "events_generated": result.events,
        "events_in_lake": accepted,
        "labels": labels,
        "signal_rows": log.rows_total,
        "model": outcome.version,
        "model_kind": outcome.metadata["transaction"]["kind"],
        "build_s": time.perf_counter() - start,
    }
    (root / "built.json").write_text(json.dumps(figures))
    return figures


def lake(accounts: int, days: int, seed: int, cache: Path | None) -> tuple[Path, dict[str, Any]]:
    """The cached bench lake for these arguments, built first if it is not there (or was not finished)."""
    root = cache or Path(tempfile.gettempdir()) / f"devicerisk-score-now-{accounts}-{days}-{seed}"
    if (root / "built.json").exists():
        return root, json.loads((root / "built.json").read_text())
    return root, build(root, accounts, days, seed)


def held_out_transactions(root: Path, n: int) -> list[dict[str, Any]]:
    """Up to ``n`` raw transaction events of the held-out batch, spread evenly over it."""
    records = [orjson.loads(line) for line in (root / HELD_OUT).read_bytes().splitlines() if line.strip()]
    txns = [r for r in records if r.get("event_type") == "transaction"]
    step = max(1, len(txns) // n)
    return txns[::step][:n]


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "mean_ms": float(ms.mean()),
    }


def measure(root: Path, events: int) -> dict[str, Any]:
    from devicerisk.api.service import settle
    from devicerisk.lookup.realtime import RealtimeScorer

    s = settings_for(root)
    start = time.perf_counter()
    scorer = RealtimeScorer.open(s, refresh_seconds=None)
    opened = time.perf_counter() - start
    settle()  # as the service does once its scorer is open: what lives as long as the process is not collected
    todo = held_out_transactions(root, events)
    print(f"scorer opened in {opened:.1f} s; scoring {len(todo)} held-out transactions", flush=True)
    for raw in todo[:50]:  # warm up: first calls load code paths and fault pages in
        scorer.score(raw)
    timings: list[float] = []
    levels: dict[str, int] = {}
    for raw in todo:
        t0 = time.perf_counter()
        out = scorer.score(raw)
        timings.append(time.perf_counter() - t0)
        levels[out["level"]] = levels.get(out["level"], 0) + 1
    # the references after the scores, so their threads never run beside a score being timed
    treat: list[float] = []
    bare: list[float] = []
    with single_threaded():  # one row: the booster's OpenMP threads would only wait for each other
        for raw in todo:
            t0 = time.perf_counter()
            treated = scorer.treat(raw)
            treat.append(time.perf_counter() - t0)
            row = scorer.features(treated)[1]
            t0 = time.perf_counter()
            scorer.model.estimator.predict_proba(row)
            bare.append(time.perf_counter() - t0)
    load = os.getloadavg()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "events": len(todo),
        "open_s": opened,
        "score": percentiles(timings),
        "reference_validate_and_treat": percentiles(treat),
        "reference_predict_proba_one_row": percentiles(bare),
        "levels": levels,
        "peak_rss_mib": rss,
        "history_rows": scorer.history_rows,
        "load_average_1_5_15": [round(x, 2) for x in load],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=14_500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=2029)
    parser.add_argument("--events", type=int, default=3000, help="held-out transactions to score")
    parser.add_argument("--cache", type=Path, default=None, help="the lake's folder (default: in the temp folder)")
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    root, built = lake(args.accounts, args.days, args.seed, args.cache)
    print(json.dumps(built))
    if args.build_only:
        return
    summary = {"lake": built} | measure(root, args.events)
    print(json.dumps(summary, indent=2))
    OUT.mkdir(exist_ok=True)
    (OUT / "score_now_results.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
