"""Scoring on a real lake with a real champion: re-runs add nothing, late-arriving transactions still get scored."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from devicerisk.risk.scoring import score_transactions
from devicerisk.risk.service import RiskStores, score_accounts
from devicerisk.store import scores
from factories import T0, accounts, champion, ingest, txn


def test_rerunning_account_scoring_adds_no_rows(tmp_path: Path) -> None:
    lake_dir, models_dir, serving_dir = tmp_path / "lake", tmp_path / "models", tmp_path / "serving"
    champion(models_dir)
    ingest(lake_dir, accounts(5, T0 - timedelta(hours=3)), "b1")
    first = score_accounts(RiskStores(lake_dir, models_dir, serving_dir))
    second = score_accounts(RiskStores(lake_dir, models_dir, serving_dir))
    table = scores.read(lake_dir, scores.ACCOUNT_SCORES)
    assert first["accounts_scored"] == second["accounts_scored"] == 5
    assert table is not None and table.num_rows == 5  # one row per (account, as_of, model version)
    ingest(lake_dir, accounts(2, T0 + timedelta(hours=1)), "b2")  # a newer as_of is a new scoring
    score_accounts(RiskStores(lake_dir, models_dir, serving_dir))
    assert scores.read(lake_dir, scores.ACCOUNT_SCORES).num_rows == 10  # the 5 active accounts again, as of later


def test_late_arriving_transactions_are_scored_once(tmp_path: Path) -> None:
    lake_dir, models_dir, serving_dir = tmp_path / "lake", tmp_path / "models", tmp_path / "serving"
    champion(models_dir)
    ingest(lake_dir, [txn(T0), txn(T0 + timedelta(hours=2))], "b1")
    assert score_transactions(RiskStores(lake_dir, models_dir, serving_dir), "r1")["transactions_scored"] == 2
    late = txn(T0 + timedelta(hours=1), acct="c" * 32)  # happened before the newest scored one, arrives now
    no_account = txn(T0 + timedelta(hours=3), account_id_pid=None, event_id="no-account")  # never scorable
    ingest(lake_dir, [late, no_account], "b2")
    assert score_transactions(RiskStores(lake_dir, models_dir, serving_dir), "r2")["transactions_scored"] == 1
    assert score_transactions(RiskStores(lake_dir, models_dir, serving_dir), "r3")["transactions_scored"] == 0
    table = scores.read(lake_dir, scores.TRANSACTION_SCORES)
    assert scores.unscored_transactions(lake_dir).num_rows == 0  # nothing left to hold the next run's window open
    assert table is not None and sorted(table.column("event_id").to_pylist()) == sorted(
        [txn(T0)["event_id"], txn(T0 + timedelta(hours=2))["event_id"], late["event_id"]]
    )


def test_the_signal_log_path_scores_as_the_sql_path(tmp_path: Path) -> None:
    """The same lake scored through the signal log and the C engine, and through the SQL: the same scores,
    levels and reasons; late transactions are scored once either way, the log refreshed incrementally."""
    batches = [
        [txn(T0 + timedelta(minutes=7 * i), acct=f"{i % 4:032x}", amount=10.0 + i) for i in range(30)],
        [txn(T0 + timedelta(minutes=3 + 7 * i), acct=f"{i % 4:032x}", status="failed") for i in range(5)],
    ]
    tables, counts = {}, {}
    for path in ("signals", "sql"):
        root = tmp_path / path
        champion(root / "models")
        signals_dir = root / "signals" if path == "signals" else None
        runs = []
        for n, rows in enumerate(batches):
            ingest(root / "lake", rows, f"b{n}")
            runs.append(
                score_transactions(RiskStores(root / "lake", root / "models", root / "serving", signals_dir), f"r{n}")
            )
        counts[path] = runs
        table = scores.read(root / "lake", scores.TRANSACTION_SCORES)
        assert table is not None
        tables[path] = table.sort_by("event_id").select(["event_id", "score", "level", "reasons"]).to_pylist()
    assert [r["transactions_scored"] for r in counts["signals"]] == [30, 5]
    assert counts["signals"][1]["signal_log_rebuilt"] == 0 and counts["signals"][1]["signal_rows_added"] == 5
    assert tables["signals"] == tables["sql"]
