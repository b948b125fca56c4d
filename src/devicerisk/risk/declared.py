"""Declared features: each one a ``catalog.Window`` declaration, computed by this one engine everywhere.

Training (signal rows made from the lake in memory) and scoring (the signal log) both call
:func:`compute` with the same declarations, so a declared feature has one definition and cannot drift
between the two. Adding one is a declaration in ``catalog.WINDOWS`` plus its reason wording.

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

from devicerisk.risk.catalog import HOUR_US, WINDOWS, Window

TRANSACTION = 1  # signals.ETYPES["transaction"]
NONE = np.iinfo(np.int64).min  # no sighting
_MIX = np.uint64(0x9E3779B97F4A7C15)  # a 64-bit odd constant: pair keys from two hashes


def _distinct(values: np.ndarray, order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sorted distinct values, each value's index among them, and the stable order that sorts ``values``
    (``np.unique`` by sorting: its hash path is many times slower on a million distinct 64-bit values).
    Values already in order (times of the time-sorted signal rows) are not sorted again."""
    if order is None:
        ordered_already = len(values) < 2 or bool(np.all(values[1:] >= values[:-1]))
        order = np.arange(len(values)) if ordered_already else np.argsort(values, kind="stable")
    ordered = values[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]] if len(ordered) else np.zeros(0, dtype=bool)
    codes = np.empty(len(values), dtype=np.int64)
    codes[order] = np.cumsum(first) - 1
    return ordered[first], codes, order


class Stream:
    """Rows of one entity, sorted by (key, time): prefix sums and first sightings for many queries at once.

    Keys become dense codes and times their rank among the stream's distinct times, so (key, time) is one
    int64 (``code × (times + 1) + rank``) and every lookup is a plain ``searchsorted``: a row's time is before
    ``x`` exactly when its rank is below the number of the stream's distinct times before ``x``. ``values``
    name the columns whose prefix sums ``sum_before`` reads (``n``, a count, always).
    """

    def __init__(self, keys: np.ndarray, times: np.ndarray, values: dict[str, np.ndarray] | None = None,
                 time_values: np.ndarray | None = None, in_order: bool = False,
                 ranks: np.ndarray | None = None) -> None:  # fmt: skip
        """``time_values``: the sorted distinct times, when known (a superset of ``times`` shared by streams);
        ``in_order``: the rows already come in (key, time) order, with ``ranks``, their times' indexes in
        ``time_values``, when known."""
        self.time_values = _distinct(times)[0] if time_values is None else time_values
        values = values or {}
        if not in_order:
            if len(times) > 1 and not np.all(times[1:] >= times[:-1]):  # time order first, then a stable key sort
                by_time = np.argsort(times, kind="stable")
                keys, times, values = keys[by_time], times[by_time], {k: v[by_time] for k, v in values.items()}
            ranks = np.searchsorted(self.time_values, times)  # times in order: a fast search
            order = np.argsort(keys, kind="stable")
            keys, times, ranks = keys[order], times[order], ranks[order]
            values = {k: v[order] for k, v in values.items()}
        elif ranks is None:
            ranks = np.searchsorted(self.time_values, times)
        self.key_values, codes, _ = _distinct(keys)  # in order: a linear pass
        self.span = len(self.time_values) + 1
        self.packed = codes * self.span + ranks
        self.times = times
        columns = {"n": np.ones(len(keys))} | values
        self.prefix = {name: np.concatenate([[0.0], np.cumsum(v)]) for name, v in columns.items()}

    def codes(self, q_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per query, where its key's packed values begin, and whether the stream has its key at all."""
        code = np.minimum(np.searchsorted(self.key_values, q_keys), len(self.key_values) - 1)
        return code.astype(np.int64) * self.span, self.key_values[code] == q_keys

    def position(self, base: np.ndarray, known: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Per query, the index of its key's first row at or after ``x`` (0 for an unknown key)."""
        return np.where(known, np.searchsorted(self.packed, base + np.searchsorted(self.time_values, x)), 0)

    def sum_before(self, q_keys: np.ndarray, q_times: np.ndarray, value: str = "n") -> np.ndarray:
        """Per query, the sum of ``value`` (default: the count) over its key's rows strictly before its time."""
        if not len(self.key_values):
            return np.zeros(len(q_keys))
        base, known = self.codes(q_keys)
        start = np.where(known, np.searchsorted(self.packed, base), 0)
        return self.prefix[value][self.position(base, known, q_times)] - self.prefix[value][start]


def pair_keys(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One 64-bit key per (a, b) pair of 64-bit hashes (0 where either is missing)."""
    with np.errstate(over="ignore"):
        mixed = (a * _MIX) ^ b
    return np.where((a == 0) | (b == 0), np.uint64(0), mixed)


class Sightings:
    """Each (account, other) pair's sightings, for distinct counts of accounts per ``other``.

    The gaps to the pair's previous and next sighting are found once, in (pair, time) order; the rows are
    then kept in (other, time) order, so any run boundaries per width are already in a stream's order.
    """

    def __init__(self, acct: np.ndarray, other: np.ndarray, times: np.ndarray, time_values: np.ndarray,
                 ranks: np.ndarray) -> None:  # fmt: skip
        pair = pair_keys(acct, other)
        by_pair = np.argsort(pair, kind="stable")  # rows come in time order: (pair, time) order
        p, s = pair[by_pair], times[by_pair]
        same = p[1:] == p[:-1]
        gap = np.where(same, s[1:] - s[:-1], np.iinfo(np.int64).max)
        before, after = np.empty(len(p), dtype=np.int64), np.empty(len(p), dtype=np.int64)
        before[by_pair] = np.r_[np.iinfo(np.int64).max, gap] if len(p) else gap
        after[by_pair] = np.r_[gap, np.iinfo(np.int64).max] if len(p) else gap
        by_other = np.argsort(other, kind="stable")
        self.other, self.times, self.ranks = other[by_other], times[by_other], ranks[by_other]
        self.before, self.after = before[by_other], after[by_other]
        self.time_values = time_values

    def distinct_accounts(self, q_keys: np.ndarray, q_t: np.ndarray, width: int) -> np.ndarray:
        """Distinct accounts per ``other`` over ``[t - width, t)``: a pair counts from the first sighting of a
        run of sightings (no gap over ``width``) until ``width`` after the run's last."""
        starts, ends = self.before > width, self.after > width
        started, ended = (Stream(self.other[m], self.times[m], None, self.time_values, True, self.ranks[m])
                          for m in (starts, ends))  # fmt: skip
        return started.sum_before(q_keys, q_t) - ended.sum_before(q_keys, q_t - width)


def _reported(txns: pa.Table, labels: pa.Table | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(counterparty, transaction time, reported time) of every transaction (signal rows ``txns``) reported as
    fraud."""
    if labels is None or labels.num_rows == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty.astype(np.uint64), empty, empty
    fraud = labels.filter(pc.and_(pc.equal(labels.column("label"), "fraud"),
                                  pc.equal(labels.column("subject_type"), "transaction")))  # fmt: skip
    con = duckdb.connect(":memory:")
    try:
        con.register("f", fraud.select(["subject_id_pid", "reported_at"]))
        hashed = con.sql(
            "SELECT hash(subject_id_pid) AS txn, min(epoch_us(reported_at)) AS r FROM f "
            "WHERE subject_id_pid IS NOT NULL GROUP BY 1"
        ).to_arrow_table()  # one report a payment: the first
    finally:
        con.close()
    where = pc.index_in(hashed.column("txn"), value_set=txns.column("txn"))
    found = pc.is_valid(where)
    rows = pc.filter(where, found)
    cp = txns.column("cp").take(rows).to_numpy()
    t = txns.column("t").take(rows).to_numpy()
    r = pc.filter(hashed.column("r"), found).to_numpy()
    keep = (cp != 0) & (t < r)
    return cp[keep], t[keep], r[keep]


def _wanted(keys: np.ndarray, q_keys: np.ndarray) -> np.ndarray:
    """Which rows have a key some query asks for (the rest cannot change any answer)."""
    return pc.is_in(pa.array(keys), value_set=pa.array(np.unique(q_keys[q_keys != 0]))).to_numpy(zero_copy_only=False)


def compute(sig: pa.Table, labels: pa.Table | None, q_t: np.ndarray, q_acct: np.ndarray,
            q_cp: np.ndarray) -> np.ndarray:  # fmt: skip
    """The declared features (``catalog.WINDOWS`` order) of query rows at ``q_t`` (microseconds) of
    accounts ``q_acct`` paying counterparties ``q_cp`` (64-bit hashes, 0: none), from signal rows ``sig``
    (in time order, as signal tables are)."""
    X = np.full((len(q_t), len(WINDOWS)), np.nan)
    if len(q_t) == 0:
        return X
    txn = sig.filter(pc.equal(sig.column("etype"), TRANSACTION))
    t = np.ascontiguousarray(txn.column("t").to_numpy(), dtype=np.int64)
    acct = np.ascontiguousarray(txn.column("acct").to_numpy(), dtype=np.uint64)
    cp = np.ascontiguousarray(txn.column("cp").to_numpy(), dtype=np.uint64)
    amount = np.nan_to_num(txn.column("amount").to_numpy().astype(float))
    q_t = q_t.astype(np.int64)
    a, c = _wanted(acct, q_acct), _wanted(cp, q_cp)
    axis, ranks, _ = _distinct(t)  # one time axis for the streams of these rows
    streams = {"acct": Stream(acct[a], t[a], {"amount": amount[a]}, axis), "cp": Stream(cp[c], t[c], None, axis),
               "acct_cp": Stream(pair_keys(acct[a & c], cp[a & c]), t[a & c], None, axis)}  # fmt: skip
    paid = c & (acct != 0)  # an unlogged payment is no account's sighting
    sightings = Sightings(acct[paid], cp[paid], t[paid], axis, ranks[paid])
    q_keys = {"acct": q_acct, "cp": q_cp, "acct_cp": pair_keys(q_acct, q_cp)}
    reported = _reported(txn, labels)
    for entity, keys in q_keys.items():
        order = np.lexsort((q_t, keys))  # queries in (key, time) order: each search starts where the last ended
        lookup = Lookup(streams[entity], keys[order], q_t[order])
        for j, w in enumerate(WINDOWS):
            if w.entity == entity:
                X[order, j] = _one(w, lookup, sightings, reported)
                X[keys == 0, j] = np.nan  # no entity: unknown, never "none seen"
    return X


class Lookup:
    """One entity's queries against its stream, with the positions each window edge needs found once."""

    def __init__(self, stream: Stream, keys: np.ndarray, q_t: np.ndarray) -> None:
        self.stream, self.keys, self.t = stream, keys, q_t
        self.empty = not len(stream.key_values)
        if not self.empty:
            self.base, self.known = stream.codes(keys)
        self._at: dict[int, np.ndarray] = {}

    def at(self, width: int) -> np.ndarray:
        """Per query, the index of its key's first row at or after ``t - width``."""
        if width not in self._at:
            self._at[width] = self.stream.position(self.base, self.known, self.t - width)
        return self._at[width]

    def windowed(self, width: int, value: str = "n") -> np.ndarray:
        """Per query, the sum of ``value`` over its key's rows in ``[t - width, t)``."""
        if self.empty:
            return np.zeros(len(self.keys))
        prefix = self.stream.prefix[value]
        return prefix[self.at(0)] - prefix[self.at(width)]

    def first_since(self, width: int) -> np.ndarray:
        """Per query, the time of its key's first row in ``[t - width, t)``; ``NONE`` when there is none."""
        if self.empty:
            return np.full(len(self.keys), NONE)
        s = self.stream
        at, end = self.at(width), np.searchsorted(s.packed, self.base + s.span)
        first = s.times[np.minimum(at, len(s.times) - 1)]
        return np.where(self.known & (at < end) & (first < self.t), first, NONE)


def _one(w: Window, q: Lookup, sightings: Sightings, reported: tuple[np.ndarray, ...]) -> np.ndarray:
    if w.aggregate == "count":
        return q.windowed(w.width)
    if w.aggregate == "sum":
        return q.windowed(w.width, "amount")
    if w.aggregate == "mean":
        n = q.windowed(w.width)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, q.windowed(w.width, "amount") / n, np.nan)
    if w.aggregate == "distinct_accounts":
        return sightings.distinct_accounts(q.keys, q.t, w.width)
    if w.aggregate == "fraud_share":
        cp, t_txn, r = reported
        live = r < t_txn + w.width  # a report made after its transaction left the window never counts
        flagged = Stream(cp[live], r[live]).sum_before(q.keys, q.t)
        flagged -= Stream(cp[live], t_txn[live]).sum_before(q.keys, q.t - w.width)
        n = q.windowed(w.width)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, flagged / n, np.nan)
    first = q.first_since(w.width)
    if w.aggregate == "age_h":
        return np.where(first != NONE, (q.t - first) / HOUR_US, np.nan)
    if w.aggregate == "new":
        return (first == NONE).astype(float)
    raise ValueError(f"unknown aggregate {w.aggregate!r} of declared feature {w.name!r}")
