"""The declared engine against a plain scan of every query's window, on random signal rows with edge cases:
ties in time, rows exactly at a window's start, missing accounts and counterparties, NaN amounts, repeated
and late fraud reports; and its C primitives against the numpy ones they replace when the extension is
absent."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from devicerisk.risk import declared
from devicerisk.risk.catalog import HOUR_US, WINDOWS, Window

DAY_US = 24 * HOUR_US
T0 = 1_800_000_000_000_000


def _lake(seed: int) -> tuple[pa.Table, pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    """Signal rows (transactions among other events), fraud labels, and query rows (t, acct, cp)."""
    rng = np.random.default_rng(seed)
    n = 1500
    widths = sorted({w.width for w in WINDOWS})
    anchors = T0 + rng.integers(0, 40, size=n) * DAY_US // 2  # many rows share a time
    edges = anchors - rng.choice(widths, size=n) * (rng.random(n) < 0.2)  # some exactly one width earlier
    t = np.sort(edges + rng.integers(0, 3, size=n) * (rng.random(n) < 0.5) * HOUR_US)
    accounts = np.r_[0, rng.integers(1, 2**63, size=12, dtype=np.uint64)].astype(np.uint64)
    parties = np.r_[0, rng.integers(1, 2**63, size=8, dtype=np.uint64)].astype(np.uint64)
    acct = rng.choice(accounts, size=n, p=[0.05, *[0.95 / 12] * 12])
    cp = rng.choice(parties, size=n, p=[0.1, *[0.9 / 8] * 8])
    etype = np.where(rng.random(n) < 0.8, declared.TRANSACTION, 2).astype(np.uint8)
    amount = np.where(rng.random(n) < 0.05, np.nan, rng.integers(1, 100_000, size=n) / 100)
    ids = [f"t{i}" for i in range(n)]
    txn = (
        duckdb.sql(
            "SELECT hash(i) AS h FROM (SELECT unnest($ids) AS i, generate_subscripts($ids, 1) AS k) ORDER BY k",
            params={"ids": ids},
        )
        .to_arrow_table()
        .column("h")
    )
    sig = pa.table({"t": t, "etype": etype, "acct": acct, "cp": cp, "amount": amount, "txn": txn})
    reported = rng.choice(np.flatnonzero(etype == declared.TRANSACTION), size=120)  # some twice
    lag = rng.choice(
        [-HOUR_US, 0, HOUR_US, DAY_US, 7 * DAY_US, 7 * DAY_US + HOUR_US, 30 * DAY_US + 2 * HOUR_US], size=len(reported)
    )
    labels = pa.table(
        {
            "subject_type": ["transaction"] * len(reported),
            "subject_id_pid": [ids[i] for i in reported],
            "label": rng.choice(["fraud", "legit"], size=len(reported), p=[0.85, 0.15]).tolist(),
            "reported_at": pa.array(
                [datetime.fromtimestamp((t[i] + d) / 1e6, UTC) for i, d in zip(reported, lag, strict=True)],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )
    queries = np.flatnonzero(etype == declared.TRANSACTION)[::3]
    q_t = np.r_[t[queries], t[queries[:50]] + rng.choice(widths, size=50)]  # also a width after a row
    q_acct = np.r_[acct[queries], rng.choice(accounts, size=50)]
    q_cp = np.r_[cp[queries], rng.choice(parties, size=50)]
    return sig, labels, q_t, q_acct, q_cp


def _first_reports(sig: pa.Table, labels: pa.Table) -> dict[int, int]:
    """Transaction row -> its first fraud report's time (µs)."""
    by_id = {}
    for row in labels.to_pylist():
        if row["label"] == "fraud":
            when = int(row["reported_at"].timestamp() * 1_000_000)
            by_id[row["subject_id_pid"]] = min(when, by_id.get(row["subject_id_pid"], when))
    return {int(row[1:]): when for row, when in by_id.items()}


def _plain(w: Window, sig: pa.Table, reports: dict[int, int], t: int, acct: int, cp: int) -> float:
    """One declared feature of one query, by scanning every transaction: the catalog's words, as code."""
    s = {k: sig.column(k).to_numpy() for k in ("t", "etype", "acct", "cp", "amount")}
    is_txn = s["etype"] == declared.TRANSACTION
    inside = is_txn & (s["t"] >= t - w.width) & (s["t"] < t)
    mine = {"acct": s["acct"] == acct, "cp": s["cp"] == cp, "acct_cp": (s["acct"] == acct) & (s["cp"] == cp)}
    if (acct if w.entity == "acct" else cp) == 0 or (w.entity == "acct_cp" and acct == 0):
        return np.nan
    rows = np.flatnonzero(inside & mine[w.entity])
    total = float(sum(Decimal(str(a)) for a in np.nan_to_num(s["amount"][rows])))  # the exact sum, rounded once
    if w.aggregate == "count":
        return float(len(rows))
    if w.aggregate == "sum":
        return total
    if w.aggregate == "mean":
        return total / len(rows) if len(rows) else np.nan
    if w.aggregate == "distinct_accounts":
        return float(len({a for a in s["acct"][rows] if a != 0}))
    if w.aggregate == "fraud_share":
        flagged = sum(1 for i in rows if s["t"][i] < reports.get(int(i), -1) < t)
        return flagged / len(rows) if len(rows) else np.nan
    first = s["t"][rows].min() if len(rows) else None
    if w.aggregate == "age_h":
        return np.nan if first is None else (t - first) / HOUR_US
    return float(first is None)  # new


@pytest.mark.parametrize("seed", [1, 2])
def test_the_engine_equals_a_plain_scan_of_every_window(seed: int) -> None:
    sig, labels, q_t, q_acct, q_cp = _lake(seed)
    X = declared.compute(sig, labels, q_t, q_acct, q_cp)
    reports = _first_reports(sig, labels)
    expected = np.array(
        [
            [_plain(w, sig, reports, int(t), int(a), int(c)) for w in WINDOWS]
            for t, a, c in zip(q_t, q_acct, q_cp, strict=True)
        ]
    )
    for j, w in enumerate(WINDOWS):  # exactly, sums of amounts too (see declared.AMOUNT_SCALE)
        assert np.array_equal(X[:, j], expected[:, j], equal_nan=True), w.name
    assert np.nanmax(X[:, [w.aggregate == "distinct_accounts" for w in WINDOWS]]) >= 2  # the cases are there
    assert np.nanmax(X[:, [w.aggregate == "fraud_share" for w in WINDOWS]]) > 0


def test_a_query_gets_the_same_numbers_from_any_history_that_holds_its_rows() -> None:
    """Batch scoring reads the whole log; score-now reads only the rows sharing a key with its event. A window's
    sum must not depend on the other rows (a float prefix sum did, by 1e-10: enough to tip a tree split)."""
    sig, labels, q_t, q_acct, q_cp = _lake(4)
    together = declared.compute(sig, labels, q_t, q_acct, q_cp)
    acct, cp = sig.column("acct").to_numpy(), sig.column("cp").to_numpy()
    for i in range(0, len(q_t), 5):
        own = sig.filter((acct == q_acct[i]) | (cp == q_cp[i]))
        alone = declared.compute(own, labels, q_t[i : i + 1], q_acct[i : i + 1], q_cp[i : i + 1])
        assert np.array_equal(alone[0], together[i], equal_nan=True), i


def test_without_the_extension_the_numbers_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    if declared._declared is None:
        pytest.fail("the C primitives (devicerisk._declared) are not built")
    sig, labels, q_t, q_acct, q_cp = _lake(3)
    fast = declared.compute(sig, labels, q_t, q_acct, q_cp)
    monkeypatch.setattr(declared, "_declared", None)
    assert np.array_equal(declared.compute(sig, labels, q_t, q_acct, q_cp), fast, equal_nan=True)


def test_the_primitives_order_and_find_like_numpy() -> None:
    rng = np.random.default_rng(9)
    keys = rng.choice(np.array([0, 1, 2**63, 2**64 - 1], dtype=np.uint64), size=5000)
    times = rng.choice(np.array([-(2**62), -1, 0, 5, 2**62]), size=5000)
    by_key = declared.order(keys, times)
    assert by_key.tolist() == np.lexsort((times, keys)).tolist()  # stable, signed times, full 64-bit keys
    q = declared.order(keys[:700], times[:700] + 3)
    q_keys, q_times = keys[:700][q], times[:700][q] + 3
    k, t = keys[by_key], times[by_key]
    found = declared.lower_bounds(k, t, q_keys, q_times)
    assert found.tolist() == [int(np.sum((k < a) | ((k == a) & (t < b)))) for a, b in zip(q_keys, q_times, strict=True)]
    with pytest.raises(ValueError, match="order"):
        declared.lower_bounds(k[::-1].copy(), t[::-1].copy(), q_keys, q_times)
