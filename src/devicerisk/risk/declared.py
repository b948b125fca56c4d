"""Declared features: each one a ``features.Window`` declaration, computed by this one engine everywhere.

Training (signal rows made from the lake in memory) and scoring (the signal log) both call
:func:`compute` with the same declarations, so a declared feature has one definition and cannot drift
between the two. Adding one is a declaration in ``features.WINDOWS`` plus its reason wording.

Every aggregate is read strictly before the query row's time ``t``, as every feature is, from sorted
streams of (key, time) per entity:

- a count or sum over ``[t - w, t)`` is the prefix of the entity's rows before ``t`` less the prefix
  before ``t - w``;
- a distinct count of accounts over ``[t - w, t)`` counts runs of a pair's sightings (no gap longer than
  ``w``): a run starts counting after its first sighting and stops ``w`` after its last;
- the share of a counterparty's transactions in ``[t - w, t)`` reported as fraud by ``t`` counts each
  report from its ``reported_at`` until its transaction leaves the window, over the windowed count;
- an age is the time since the first sighting in ``[t - w, t)``; NaN (unknown) when there is none.

Empty windows give 0 for counts and sums, NaN for means, shares and ages (the model's missing branch).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.risk.features import HOUR_US, WINDOWS, Window

TRANSACTION = 1  # signals.ETYPES["transaction"]
NONE = np.iinfo(np.int64).min  # no sighting
_MIX = np.uint64(0x9E3779B97F4A7C15)  # a 64-bit odd constant: pair keys from two hashes


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct values and each value's index among them (``np.unique`` by sorting: its hash
    path is many times slower on a million distinct 64-bit values)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]] if len(ordered) else np.zeros(0, dtype=bool)
    codes = np.empty(len(values), dtype=np.int64)
    codes[order] = np.cumsum(first) - 1
    return ordered[first], codes


class Stream:
    """Rows of one entity, sorted by (key, time): prefix sums and first sightings for many queries at once.

    Keys become dense codes and times their rank among the stream's distinct times, so (key, time) is one
    int64 (``code × (times + 1) + rank``) and every lookup is a plain ``searchsorted``: a row's time is before
    ``x`` exactly when its rank is below the number of the stream's distinct times before ``x``.
    """

    def __init__(self, keys: np.ndarray, times: np.ndarray, values: np.ndarray | None = None) -> None:
        self.key_values, codes = _distinct(keys)
        self.time_values, _ = _distinct(times)
        self.span = len(self.time_values) + 1
        packed = codes.astype(np.int64) * self.span + np.searchsorted(self.time_values, times)
        order = np.argsort(packed, kind="stable")
        self.packed, self.times = packed[order], times[order]
        weights = np.ones(len(order)) if values is None else values[order]
        self.prefix = np.concatenate([[0.0], np.cumsum(weights)])

    def _segments(self, q_keys: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per query: where its key's rows start, its key's first row at or after ``x``, and where they end
        (all equal, so nothing is found, for a key the stream does not have)."""
        if not len(self.key_values):
            zero = np.zeros(len(q_keys), dtype=np.int64)
            return zero, zero, zero
        code = np.minimum(np.searchsorted(self.key_values, q_keys), len(self.key_values) - 1)
        base = code.astype(np.int64) * self.span
        start = np.searchsorted(self.packed, base)
        at = np.searchsorted(self.packed, base + np.searchsorted(self.time_values, x))
        end = np.searchsorted(self.packed, base + self.span)
        known = self.key_values[code] == q_keys
        return np.where(known, start, 0), np.where(known, at, 0), np.where(known, end, 0)

    def sum_before(self, q_keys: np.ndarray, q_times: np.ndarray) -> np.ndarray:
        """Per query, the sum of the values of its key's rows strictly before its time."""
        start, at, _ = self._segments(q_keys, q_times)
        return self.prefix[at] - self.prefix[start]

    def first_since(self, q_keys: np.ndarray, since: np.ndarray, q_times: np.ndarray) -> np.ndarray:
        """Per query, the time of its key's first row in ``[since, t)``; ``NONE`` when there is none."""
        _, at, end = self._segments(q_keys, since)
        if not len(self.times):
            return np.full(len(q_keys), NONE)
        first = self.times[np.minimum(at, len(self.times) - 1)]
        return np.where((at < end) & (first < q_times), first, NONE)


def pair_keys(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One 64-bit key per (a, b) pair of 64-bit hashes (0 where either is missing)."""
    with np.errstate(over="ignore"):
        mixed = (a * _MIX) ^ b
    return np.where((a == 0) | (b == 0), np.uint64(0), mixed)


def _windowed(stream: Stream, keys: np.ndarray, t: np.ndarray, width: int) -> np.ndarray:
    return stream.sum_before(keys, t) - stream.sum_before(keys, t - width)


def _distinct_accounts(acct: np.ndarray, other: np.ndarray, times: np.ndarray, q_keys: np.ndarray, q_t: np.ndarray,
              width: int) -> np.ndarray:  # fmt: skip
    """Distinct accounts per ``other`` over ``[t - width, t)``, from runs of each pair's sightings."""
    pair = pair_keys(acct, other)
    order = np.lexsort((times, pair))
    p, o, s = pair[order], other[order], times[order]
    new_pair = np.r_[True, p[1:] != p[:-1]]
    starts = new_pair | np.r_[False, (s[1:] - s[:-1]) > width]
    ends = np.r_[starts[1:], True]  # the last sighting of each run
    started, ended = Stream(o[starts], s[starts]), Stream(o[ends], s[ends])
    return started.sum_before(q_keys, q_t) - ended.sum_before(q_keys, q_t - width)


def _reported(sig: pa.Table, labels: pa.Table | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(counterparty, transaction time, reported time) of every transaction reported as fraud."""
    if labels is None or labels.num_rows == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty.astype(np.uint64), empty, empty
    fraud = labels.filter(pc.and_(pc.equal(labels.column("label"), "fraud"),
                                  pc.equal(labels.column("subject_type"), "transaction")))  # fmt: skip
    con = duckdb.connect(":memory:")
    try:
        con.register("f", fraud.select(["subject_id_pid", "reported_at"]))
        hashed = con.sql("SELECT hash(subject_id_pid) AS txn, epoch_us(reported_at) AS r FROM f "
                         "WHERE subject_id_pid IS NOT NULL").to_arrow_table()  # fmt: skip
    finally:
        con.close()
    txns = sig.filter(pc.equal(sig.column("etype"), TRANSACTION))
    where = pc.index_in(hashed.column("txn"), value_set=txns.column("txn"))
    found = pc.is_valid(where)
    rows = pc.filter(where, found)
    cp = txns.column("cp").take(rows).to_numpy()
    t = txns.column("t").take(rows).to_numpy()
    r = pc.filter(hashed.column("r"), found).to_numpy()
    keep = (cp != 0) & (t < r)
    return cp[keep], t[keep], r[keep]


def compute(sig: pa.Table, labels: pa.Table | None, q_t: np.ndarray, q_acct: np.ndarray,
            q_cp: np.ndarray) -> np.ndarray:  # fmt: skip
    """The declared features (``features.WINDOWS`` order) of query rows at ``q_t`` (microseconds) of
    accounts ``q_acct`` paying counterparties ``q_cp`` (64-bit hashes, 0: none), from signal rows ``sig``."""
    X = np.full((len(q_t), len(WINDOWS)), np.nan)
    if len(q_t) == 0:
        return X
    txn = sig.filter(pc.equal(sig.column("etype"), TRANSACTION))
    t = np.ascontiguousarray(txn.column("t").to_numpy(), dtype=np.int64)
    acct = np.ascontiguousarray(txn.column("acct").to_numpy(), dtype=np.uint64)
    cp = np.ascontiguousarray(txn.column("cp").to_numpy(), dtype=np.uint64)
    amount = np.nan_to_num(txn.column("amount").to_numpy().astype(float))
    q_t = q_t.astype(np.int64)
    streams = {"acct": Stream(acct, t), "cp": Stream(cp, t)}
    spend = Stream(acct, t, amount)
    pairs = Stream(pair_keys(acct, cp), t)
    q_keys = {"acct": q_acct, "cp": q_cp, "acct_cp": pair_keys(q_acct, q_cp)}
    reported = _reported(sig, labels)
    for entity, keys in q_keys.items():
        order = np.lexsort((q_t, keys))  # queries in (key, time) order: each search starts where the last ended
        k, when = keys[order], q_t[order]
        for j, w in enumerate(WINDOWS):
            if w.entity == entity:
                X[order, j] = _one(w, k, when, streams, spend, pairs, (acct, cp, t), reported)
                X[keys == 0, j] = np.nan  # no entity: unknown, never "none seen"
    return X


def _one(w: Window, keys: np.ndarray, q_t: np.ndarray, streams: dict[str, Stream], spend: Stream, pairs: Stream,
         txns: tuple[np.ndarray, np.ndarray, np.ndarray], reported: tuple[np.ndarray, ...]) -> np.ndarray:  # fmt: skip
    if w.aggregate == "count":
        return _windowed(streams[w.entity], keys, q_t, w.width)
    if w.aggregate == "sum":
        return _windowed(spend, keys, q_t, w.width)
    if w.aggregate == "mean":
        n = _windowed(streams[w.entity], keys, q_t, w.width)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, _windowed(spend, keys, q_t, w.width) / n, np.nan)
    if w.aggregate == "distinct_accounts":
        acct, cp, t = txns
        return _distinct_accounts(acct, cp, t, keys, q_t, w.width)
    if w.aggregate == "fraud_share":
        cp, t_txn, r = reported
        live = r < t_txn + w.width  # a report made after its transaction left the window never counts
        flagged = Stream(cp[live], r[live]).sum_before(keys, q_t)
        flagged -= Stream(cp[live], t_txn[live]).sum_before(keys, q_t - w.width)
        n = _windowed(streams[w.entity], keys, q_t, w.width)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, flagged / n, np.nan)
    stream = pairs if w.entity == "acct_cp" else streams[w.entity]
    first = stream.first_since(keys, q_t - w.width, q_t)
    if w.aggregate == "age_h":
        return np.where(first != NONE, (q_t - first) / HOUR_US, np.nan)
    if w.aggregate == "new":
        return (first == NONE).astype(float)
    raise ValueError(f"unknown aggregate {w.aggregate!r} of declared feature {w.name!r}")
