"""Two scoring runs at once on one lake, in two real processes: every score is written exactly once, in the lake
and in the serving snapshot."""

from __future__ import annotations

import multiprocessing as mp
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from devicerisk.store import scores, serving
from factories import T0, accounts, champion, ingest, txn


def _score_in_process(kind: str, root: Path, run_id: str, barrier: Any, results: Any) -> None:
    """Score in this process. Its first lake append waits until the other process reaches its own, so both runs
    have decided what to write before either commits: the overlap that duplicated scores, made certain."""
    from devicerisk.risk.scoring import score_transactions
    from devicerisk.risk.service import RiskStores, score_accounts
    from devicerisk.store import lake

    commit = lake.append
    overlapped: list[bool] = []

    def append_after_the_other_decided(*args: Any, **kwargs: Any) -> int:
        if not overlapped:
            try:
                barrier.wait(timeout=120)
                overlapped.append(True)
            except threading.BrokenBarrierError:
                overlapped.append(False)
        return commit(*args, **kwargs)

    lake.append = append_after_the_other_decided  # type: ignore[assignment]
    lake_dir, models_dir, serving_dir = root / "lake", root / "models", root / "serving"
    if kind == "transactions":
        counts = score_transactions(RiskStores(lake_dir, models_dir, serving_dir), run_id)
    else:
        counts = score_accounts(RiskStores(lake_dir, models_dir, serving_dir))
    results.put((counts, overlapped == [True]))


def _two_runs_at_once(kind: str, root: Path) -> list[dict[str, int]]:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    runs = [ctx.Process(target=_score_in_process, args=(kind, root, f"run-{i}", barrier, results)) for i in (1, 2)]
    for run in runs:
        run.start()
    done = [results.get(timeout=300) for _ in runs]
    for run in runs:
        run.join(timeout=60)
        assert run.exitcode == 0
    assert all(overlapped for _, overlapped in done)  # both runs had decided before either committed
    return [counts for counts, _ in done]


def test_two_overlapping_runs_write_each_score_once(tmp_path: Path) -> None:
    champion(tmp_path / "models")
    rows = [txn(T0 + timedelta(minutes=7 * i), acct=f"{i % 6:032x}", amount=10.0 + i) for i in range(60)]
    ingest(tmp_path / "lake", rows, "b1")

    counts = _two_runs_at_once("transactions", tmp_path)

    table = scores.read(tmp_path / "lake", scores.TRANSACTION_SCORES)
    assert table is not None and table.num_rows == 60
    assert pc.count_distinct(table.column("event_id")).as_py() == 60
    assert sorted(c["transactions_scored"] for c in counts) == [0, 60]  # the run that committed second wrote none
    published = serving.read(tmp_path / "serving", serving.TRANSACTIONS)
    assert published is not None and sorted(published.column("event_id").to_pylist()) == sorted(
        table.column("event_id").to_pylist()
    )


def test_two_overlapping_account_runs_write_each_score_once(tmp_path: Path) -> None:
    champion(tmp_path / "models")
    ingest(tmp_path / "lake", accounts(5, T0 - timedelta(hours=3)), "b1")

    _two_runs_at_once("accounts", tmp_path)

    table = scores.read(tmp_path / "lake", scores.ACCOUNT_SCORES)
    assert table is not None and table.num_rows == 5  # one row per (account, as-of time, model version)
    keys = {(r["account_id_pid"], r["as_of"], r["model_version"]) for r in table.to_pylist()}
    assert len(keys) == 5
    published = serving.read(tmp_path / "serving", serving.ACCOUNTS)
    assert published is not None and published.num_rows == 5


def test_a_run_that_publishes_last_never_replaces_newer_account_scores(tmp_path: Path) -> None:
    """Two overlapping account runs can finish in either order: the snapshot keeps the later as-of time."""
    from devicerisk.risk.service import RiskStores, score_accounts

    lake_dir, models_dir, serving_dir = tmp_path / "lake", tmp_path / "models", tmp_path / "serving"
    champion(models_dir)
    ingest(lake_dir, accounts(5, T0 - timedelta(hours=3)), "b1")
    newer, older = T0 + timedelta(hours=1), T0

    score_accounts(RiskStores(lake_dir, models_dir, serving_dir), as_of=newer)
    score_accounts(RiskStores(lake_dir, models_dir, serving_dir), as_of=older)  # decided earlier, publishes last

    published = serving.read(serving_dir, serving.ACCOUNTS)
    assert published is not None and set(published.column("as_of").to_pylist()) == {newer}
    assert scores.read(lake_dir, scores.ACCOUNT_SCORES).num_rows == 10  # both are in the lake
