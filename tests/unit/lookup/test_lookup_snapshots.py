"""The serving snapshots cover the serving period: accounts and transactions scored within it are found by a
lookup, older ones are not (while the lake keeps them), whatever run scored them last."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from devicerisk.config import Settings
from devicerisk.lookup.view import ServingView
from devicerisk.risk.service import RiskStores, score_accounts, score_transactions
from devicerisk.store import scores, serving
from factories import T0, champion, ingest, refs, txn

OLD, MID, NEW = "0" * 31 + "1", "0" * 31 + "2", "0" * 31 + "3"


def _stores(tmp_path: Path, days: int = 30) -> RiskStores:
    return RiskStores(tmp_path / "lake", tmp_path / "models", tmp_path / "serving", serving_days=days)


def test_the_serving_period_is_a_setting_of_30_days_by_default(monkeypatch) -> None:
    assert Settings().serving_days == 30
    monkeypatch.setenv("DEVICERISK_SERVING_DAYS", "45")
    assert RiskStores.of(Settings()).serving_days == 45


def test_an_account_scored_20_days_ago_is_found_and_one_older_than_the_period_is_not(tmp_path: Path) -> None:
    stores = _stores(tmp_path)
    champion(stores.models_dir)
    for n, (acct, ago) in enumerate(((OLD, 40), (MID, 20), (NEW, 0))):
        when = T0 - timedelta(days=ago)
        ingest(stores.lake_dir, [txn(when - timedelta(hours=1), acct=acct)], f"b{n}")
        score_accounts(stores, active_days=1, as_of=when)  # each run scores only the account active that day

    view = ServingView.load(stores.serving_dir, refs())
    assert view.account(NEW) is not None and view.account(NEW)["score"] is not None
    mid = view.account(MID)
    assert mid is not None and mid["as_of"] == (T0 - timedelta(days=20)).isoformat()
    assert view.account(OLD) is None  # 40 days before the newest run: past the period
    lake = scores.read(stores.lake_dir, scores.ACCOUNT_SCORES)
    assert OLD in lake.column("account_id_pid").to_pylist()  # the lake keeps it; only serving forgets it


def test_a_newer_run_replaces_an_accounts_row_and_a_shorter_period_drops_more(tmp_path: Path) -> None:
    stores = _stores(tmp_path, days=10)
    champion(stores.models_dir)
    ingest(stores.lake_dir, [txn(T0 - timedelta(days=20, hours=1), acct=MID)], "b1")
    score_accounts(stores, active_days=1, as_of=T0 - timedelta(days=20))
    ingest(stores.lake_dir, [txn(T0 - timedelta(hours=1), acct=NEW), txn(T0 - timedelta(hours=2), acct=MID)], "b2")
    score_accounts(stores, active_days=1, as_of=T0)
    published = serving.read(stores.serving_dir, serving.ACCOUNTS)
    assert sorted(published.column("account_id_pid").to_pylist()) == [MID, NEW]  # one row each
    assert set(published.column("as_of").to_pylist()) == {T0}

    ingest(stores.lake_dir, [txn(T0 + timedelta(days=15), acct=OLD)], "b3")
    score_accounts(stores, active_days=1, as_of=T0 + timedelta(days=15, hours=1))
    assert serving.read(stores.serving_dir, serving.ACCOUNTS).column("account_id_pid").to_pylist() == [OLD]


def test_transaction_scores_of_the_period_are_served_not_only_the_last_week(tmp_path: Path) -> None:
    stores = _stores(tmp_path)
    champion(stores.models_dir)
    rows = [txn(T0 - timedelta(days=ago), acct=acct) for acct, ago in ((OLD, 40), (MID, 20), (NEW, 0))]
    ingest(stores.lake_dir, rows, "b1")
    assert score_transactions(stores, "r1")["transactions_scored"] == 3

    view = ServingView.load(stores.serving_dir, refs())
    found = {a: view.account(a) for a in (OLD, MID, NEW)}
    assert found[OLD] is None
    assert [t["transaction_id_pid"] for t in found[MID]["transactions"]] == [rows[1]["transaction_id_pid"]]
    assert view.transaction(rows[2]["transaction_id_pid"])["account_id_pid"] == NEW
    assert view.transaction(rows[0]["transaction_id_pid"]) is None
