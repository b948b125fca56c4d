"""Declared feature families at their window edges, through the training (SQL) and the scoring (engine) path."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from devicerisk.risk import declared
from devicerisk.risk import features as F
from factories import ACCT, OTHER, T0, events, features_of, labels, txn

CP, CP2 = "c" * 32, "e" * 32
DAY, HOUR, US = timedelta(days=1), timedelta(hours=1), timedelta(microseconds=1)
SECOND = timedelta(seconds=1)


def paid(when_before: timedelta, acct: str = ACCT, cp: str = CP, amount: float = 10.0, **extra: object) -> dict:
    return txn(T0 - when_before, acct=acct, counterparty_pid=cp, amount=amount, **extra)


def test_spending_windows_include_their_start_and_exclude_t() -> None:
    rows = [
        paid(DAY, amount=30.0),
        paid(DAY + US, amount=1000.0),
        paid(7 * DAY, amount=5.0),
        paid(30 * DAY, amount=7.0),
        paid(30 * DAY + US, amount=500.0),
        txn(T0, counterparty_pid=CP, amount=99.0),
        txn(T0 + 2 * SECOND, counterparty_pid=CP, amount=77.0),
    ]
    f = features_of(rows)
    assert f["acct_amount_sum_24h"] == 30.0  # t - 24 h is in the window; 1 µs earlier is not
    assert f["acct_amount_mean_24h"] == 30.0
    assert f["acct_amount_sum_7d"] == 1035.0 and f["acct_amount_mean_7d"] == pytest.approx(1035.0 / 3)
    assert f["acct_amount_sum_30d"] == 1042.0 and f["acct_txn_30d"] == 4
    assert f["amount"] == 99.0  # the row itself counts in no window, nor does anything after it


def test_a_first_payment_has_no_mean_but_zero_sums() -> None:
    f = features_of([txn(T0, counterparty_pid=CP)])
    assert f["acct_amount_sum_30d"] == 0 and f["acct_amount_mean_30d"] is None and f["acct_txn_30d"] == 0


def test_distinct_accounts_paying_a_counterparty() -> None:
    rows = [
        paid(DAY, acct=OTHER),
        paid(DAY + US, acct="f" * 32),
        paid(HOUR),  # this account itself counts
        paid(6 * DAY, acct="g" * 32),
        paid(30 * DAY, acct="h" * 32),
        paid(3 * DAY, acct="h" * 32),
        paid(8 * DAY, acct="i" * 32),
        paid(HOUR, acct="j" * 32, cp=CP2),
        txn(T0, counterparty_pid=CP),
    ]
    f = features_of(rows)
    assert f["cp_accounts_24h"] == 2  # OTHER (at exactly t - 24 h) and this account
    assert f["cp_accounts_7d"] == 5  # also f, g, and h (seen 30 d and again 3 d before); not i (8 d), not j
    assert f["cp_txn_7d"] == 5


def test_distinct_runs_end_a_window_after_the_last_sighting() -> None:
    """A pair seen every 5 days counts until 7 days after its last sighting, never twice."""
    other = [paid(d * DAY, acct=OTHER) for d in (8, 13, 18)]
    assert features_of([*other, txn(T0, counterparty_pid=CP)])["cp_accounts_7d"] == 0  # last seen 8 d before
    again = [*other, paid(3 * DAY, acct=OTHER), txn(T0, counterparty_pid=CP)]
    assert features_of(again)["cp_accounts_7d"] == 1


def test_counterparty_fraud_share_counts_reports_made_before_t_on_transactions_in_the_window() -> None:
    rows = [paid(d * DAY, acct=OTHER, transaction_id_pid=f"x{d}") for d in (1, 2, 3, 6)]
    rows += [paid(10 * DAY, acct=OTHER, transaction_id_pid="x10"), txn(T0, counterparty_pid=CP)]
    reports = labels(
        [
            ("transaction", "x1", T0 - HOUR),
            ("transaction", "x2", T0 + HOUR),  # after t: unknown
            ("transaction", "x10", T0 - DAY),
        ]
    )
    f = features_of(rows, reports)
    assert f["cp_fraud_share_7d"] == pytest.approx(1 / 4)  # x1 of x1, x2, x3, x6; x10 is older than 7 d
    assert f["cp_fraud_share_30d"] == pytest.approx(2 / 5)
    assert features_of(rows)["cp_fraud_share_7d"] == 0  # no report: none of 4
    assert features_of([txn(T0, counterparty_pid=CP)])["cp_fraud_share_7d"] is None  # nothing paid: unknown


def test_counterparty_age_and_novelty_for_the_account() -> None:
    rows = [paid(50 * HOUR, acct=OTHER), paid(31 * DAY + US), txn(T0, counterparty_pid=CP)]
    f = features_of(rows)
    assert f["cp_age_h"] == 50  # the 31-day window: the older payment is out of sight
    assert f["cp_new_for_account"] == 1  # this account's own payment to it was 31 d and 1 µs before
    seen = features_of([paid(31 * DAY), txn(T0, counterparty_pid=CP)])
    assert seen["cp_new_for_account"] == 0 and seen["cp_age_h"] == 31 * 24


def test_without_a_counterparty_its_features_are_unknown() -> None:
    f = features_of([paid(HOUR), txn(T0)])
    assert all(f[w.name] is None for w in F.WINDOWS if w.entity != "acct")
    assert f["acct_txn_30d"] == 1


def test_account_probes_read_the_account_windows() -> None:
    rows = [paid(HOUR, amount=40.0), paid(2 * HOUR, amount=20.0)]
    probe = F.account_features(events(rows), None, T0 - DAY, T0).to_pylist()[0]
    assert probe["acct_amount_sum_24h"] == 60.0 and probe["acct_amount_mean_24h"] == 30.0
    assert probe["cp_accounts_24h"] is None  # a probe pays no counterparty


def test_stream_lookups_match_a_plain_scan() -> None:
    rng = np.random.default_rng(5)
    keys = rng.integers(1, 6, size=400).astype(np.uint64)
    times = rng.integers(0, 1000, size=400)
    values = rng.integers(0, 100_000, size=400) / 100  # amounts in cents
    q_keys = rng.integers(0, 7, size=300).astype(np.uint64)
    q_t = rng.integers(-10, 1010, size=300)
    by_key = declared.order(keys, times)
    q = declared.Queries(q_keys, q_t)
    q.read(declared.Stream(keys[by_key], times[by_key], {"v": values[by_key]}))
    k, t = q_keys[q.order], q_t[q.order]
    inside = [(keys == a) & (times >= b - 100) & (times < b) for a, b in zip(k, t, strict=True)]
    assert q.windowed(100, "v").tolist() == [float(sum(Decimal(str(v)) for v in values[m])) for m in inside]
    assert q.windowed(100).tolist() == [m.sum() for m in inside]
    assert q.first_since(100).tolist() == [times[m].min() if m.any() else declared.NONE for m in inside]
    before = [((keys == a) & (times < b - 7)).sum() for a, b in zip(k, t, strict=True)]
    assert q.count_before(declared.Stream.of(keys, times), 7).tolist() == before


def test_unlogged_payments_are_no_accounts_sighting() -> None:
    """Payments without an account (0) paired across counterparties must not leave a stray start or end."""
    day = 86_400_000_000
    sig = pa.table(
        {
            "t": np.array([0, 1], dtype=np.int64),
            "etype": pa.array([1, 1], pa.uint8()),
            "acct": np.array([0, 0], dtype=np.uint64),
            "cp": np.array([11, 22], dtype=np.uint64),
            "amount": [1.0, 1.0],
            "txn": np.array([5, 6], dtype=np.uint64),
        }
    )
    X = declared.compute(
        sig,
        None,
        np.array([10 * day, 10 * day]),
        np.array([7, 7], dtype=np.uint64),
        np.array([11, 22], dtype=np.uint64),
    )
    j = [w.name for w in F.WINDOWS].index("cp_accounts_7d")
    assert X[:, j].tolist() == [0.0, 0.0]


def test_a_payment_reported_twice_counts_once_in_the_share() -> None:
    rows = [paid(3 * DAY, acct=OTHER, transaction_id_pid="x1"), txn(T0, counterparty_pid=CP)]
    twice = labels([("transaction", "x1", T0 - 2 * DAY), ("transaction", "x1", T0 - DAY)])
    f = features_of(rows, twice)
    assert f["cp_fraud_share_7d"] == 1.0 and f["cp_fraud_share_30d"] == 1.0
