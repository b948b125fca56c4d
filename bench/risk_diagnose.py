"""What ranks at the top of the held-out week: each top transaction beside the generator's facts about it.

Builds a lake like ``risk_bench.py`` (or reuses one given with ``--lake``), trains the transaction score as
``train_and_register`` does, and prints, for the ``--top`` highest held-out transactions, the ground truth
(fraud or not, scenario), the account's scenario, tags and ``fraud_since``, whether the transaction is
before or after it, the account's labels, the transaction's own label and the model's reasons; then a
tally of the false positives by kind. Synthetic data only (it needs the truth file).

Usage::

    .venv/bin/python bench/risk_diagnose.py --accounts 5000 --days 30 --seed 2029 --lake /tmp/lake-5k
"""

from __future__ import annotations

import argparse
import collections
import secrets
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import ingest_batches
from devicerisk.ingest.runtime import ingest_context
from devicerisk.risk import features as F
from devicerisk.risk import reasons, training
from devicerisk.risk.labels import ingest_labels, read_labels
from devicerisk.risk.maturity import observed_label_delay
from devicerisk.risk.service import load_events
from devicerisk.risk.truth import pseudonymised_truth
from devicerisk.store.truth import TRUTH_FILE
from devicerisk.synth import SynthConfig, generate
from devicerisk.synth.config import LOOKALIKE_TAGS
from risk_bench import BENCH_MIX, BUDGET, GAP_DAYS, TEST_DAYS


def settings(root: Path) -> Settings:
    keys = root / "keys.txt"
    if not keys.exists():
        keys.write_text(f"{secrets.token_hex(32)} {secrets.token_hex(32)}")
    key, qkey = keys.read_text().split()
    return Settings(
        mode="production", data_dir=root / "data", pseudonym_key=key, quarantine_key=qkey, secrets_dir=root / "secrets"
    )


def build(root: Path, accounts: int, days: int, seed: int) -> None:
    s = settings(root)
    config = SynthConfig(
        accounts=accounts, days=days, seed=seed, events_per_batch=200_000, gzip=False, scenario_mix=BENCH_MIX
    )
    result = generate(s.landing_dir, config)
    ctx = ingest_context(s)
    sum(r.accepted for r in ingest_batches(result.batches, ctx))
    ingest_labels(ctx, s.landing_dir)


def account_facts(s: Settings) -> pa.Table:
    """Per account pseudonym: scenario, tags, fraud_since (the generator's truth rows for accounts)."""
    con = duckdb.connect()
    raw = con.sql(
        "SELECT subject_id, scenario, array_to_string(tags, ',') AS tags, fraud_since FROM read_json($p, "
        "format='newline_delimited') WHERE subject_type = 'account'",
        params={"p": str(s.landing_dir / TRUTH_FILE)},
    ).to_arrow_table()
    pids = ingest_context(s).pseudonymiser.pseudonymise("account", raw.column("subject_id").combine_chunks())
    return raw.drop(["subject_id"]).append_column("acct", pids)


def ev_scenarios(truth: pa.Table, captured: dict[str, pa.Table]) -> np.ndarray:
    """The truth's scenario of each held-out row (None: not fraud)."""
    txn = captured["txn"]
    test = txn.filter(pc.greater_equal(txn.column("t"), captured["test_start"]))
    with duckdb.connect() as con:
        con.register("rows", test.select(["txn"]))
        con.register("truth", truth)
        got = con.sql("""SELECT t.scenario FROM (SELECT row_number() OVER () AS i, txn FROM rows) r
                         LEFT JOIN truth t ON t.subject_type = 'transaction' AND t.subject_pid = r.txn
                         ORDER BY r.i""").to_arrow_table()
    return np.array(got.column("scenario").to_pylist(), dtype=object)


def scenario_ranks(scores: np.ndarray, y: np.ndarray, scenarios: np.ndarray) -> None:
    """Where each scenario's frauds rank among the held-out rows, and the not-fraud rows above them."""
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    above = np.cumsum(y[order] == 0)  # not-fraud rows at or above each rank
    print(f"{'scenario':24s} {'n':>5s} {'top350':>7s} {'top1000':>8s} {'median rank':>12s} {'FP above (med)':>15s}")
    for name in sorted({s for s in scenarios if s}):
        r = rank[scenarios == name]
        print(
            f"{name:24s} {len(r):5d} {np.mean(r < 350):7.2f} {np.mean(r < 1000):8.2f} {int(np.median(r)):12d} "
            f"{int(np.median(above[r])):15d}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=2029)
    parser.add_argument("--lake", type=Path, required=True, help="folder of the lake (built there if empty)")
    parser.add_argument("--top", type=int, default=350)
    parser.add_argument("--show", type=int, default=60, help="false positives to print one by one")
    args = parser.parse_args()
    args.lake.mkdir(parents=True, exist_ok=True)
    s = settings(args.lake)
    if not (s.lake_dir / "events").exists():
        build(args.lake, args.accounts, args.days, args.seed)
    truth = pseudonymised_truth(s.landing_dir, ingest_context(s).pseudonymiser)
    events, labels = load_events(s.lake_dir), read_labels(s.lake_dir)
    times = events.column("event_time")
    start, end = pc.min(times).as_py(), pc.max(times).as_py() + timedelta(microseconds=1)
    split = training.make_split(start, end, GAP_DAYS, TEST_DAYS, observed_label_delay(events, labels).days)
    captured: dict[str, pa.Table] = {}
    compute = F.transaction_features

    def keep(*a: object, **k: object) -> pa.Table:
        captured["txn"] = compute(*a, **k)  # type: ignore[arg-type]
        return captured["txn"]

    F.transaction_features = keep  # type: ignore[assignment]
    captured["test_start"] = int(split.test_start.timestamp() * 1e6)  # type: ignore[assignment]
    result = training.train(events, labels, split, BUDGET, truth)
    ev = result.transaction.evaluation
    print(f"held-out: AUC {ev.roc_auc:.4f}  AP {ev.average_precision:.4f}  precision@budget {ev.precision_at_budget}")
    scenario_ranks(result.transaction.test_scores, result.transaction.test_target, ev_scenarios(truth, captured))
    txn = captured["txn"]
    test = txn.filter(pc.greater_equal(txn.column("t"), int(split.test_start.timestamp() * 1e6)))
    scores, y = result.transaction.test_scores, result.transaction.test_target
    order = np.argsort(-scores, kind="stable")[: args.top]
    why = reasons.explain(result.transaction.model, result.transaction.test_X[order])
    rows = test.select(["txn", "acct", "t"]).take(pa.array(order)).append_column("score", pa.array(scores[order]))
    rows = rows.append_column("fraud", pa.array(y[order].astype(bool)))
    rows = rows.append_column("rank", pa.array(np.arange(len(order))))
    facts = account_facts(s)
    with duckdb.connect() as con:
        for name, table in (("r", rows), ("facts", facts), ("labels", labels), ("truth", truth)):
            con.register(name, table)
        joined = con.sql("""
            SELECT r.rank, r.score, r.fraud, tt.scenario AS txn_scenario, f.scenario AS acct_scenario, f.tags,
                   f.fraud_since, make_timestamp(r.t) AS t,
                   CASE WHEN f.fraud_since IS NULL THEN NULL ELSE make_timestamp(r.t) >= f.fraud_since END AS after,
                   (SELECT string_agg(DISTINCT l.label || ':' || coalesce(l.fraud_type, '') ||
                           CASE WHEN l.fraud_from IS NULL THEN '' ELSE '@from' END, ' ')
                      FROM labels l WHERE l.subject_type = 'account' AND l.subject_id_pid = r.acct) AS acct_labels,
                   (SELECT count(*) FROM labels l WHERE l.subject_type = 'transaction' AND l.account_id_pid = r.acct
                      AND l.label = 'fraud') AS acct_txn_reports,
                   (SELECT string_agg(l.label, ' ') FROM labels l
                      WHERE l.subject_type = 'transaction' AND l.subject_id_pid = r.txn) AS txn_label
            FROM r LEFT JOIN facts f ON f.acct = r.acct
            LEFT JOIN truth tt ON tt.subject_type = 'transaction' AND tt.subject_pid = r.txn
            ORDER BY r.rank
        """).to_arrow_table()
    records = joined.to_pylist()
    for rec, w in zip(records, why, strict=True):
        rec["reasons"] = "; ".join(w)
    fps = [r for r in records if not r["fraud"]]
    print(f"top {len(records)}: {len(records) - len(fps)} fraud, {len(fps)} not fraud")
    kinds: collections.Counter[str] = collections.Counter()
    for r in fps:
        role = r["acct_scenario"] or next((t for t in (r["tags"] or "").split(",") if t in LOOKALIKE_TAGS), "plain")
        when = "" if r["after"] is None else (" after fraud_since" if r["after"] else " before fraud_since")
        kinds[f"{role}{when} | acct label: {r['acct_labels'] or '-'}"] += 1
    for k, n in kinds.most_common():
        print(f"{n:5d}  {k}")
    missed = int(y.sum()) - (len(records) - len(fps))
    print(f"frauds below the top {len(records)}: {missed} of {int(y.sum())}")
    by_scen = collections.Counter(r["txn_scenario"] for r in records if r["fraud"])
    print("fraud in the top by scenario:", dict(by_scen))
    for r in fps[: args.show]:
        print(r)


if __name__ == "__main__":
    main()
