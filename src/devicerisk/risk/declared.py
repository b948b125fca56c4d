"""Declared features: each one a ``catalog.Window`` declaration, computed by this one engine everywhere.

Training (signal rows made from the lake in memory) and scoring (the signal log) both call
:func:`compute` with the same declarations, so a declared feature has one definition and cannot drift
between the two. Adding one is a declaration in ``catalog.WINDOWS`` plus its reason wording.

Every aggregate is read strictly before the query row's time ``t``, as every feature is, from streams of
rows per entity in (key, time) order, looked up by queries in (key, time) order:

- a count or sum over ``[t - w, t)`` is the prefix of the stream's rows before ``(key, t)`` less the prefix
  before ``(key, t - w)``;
- a distinct count of accounts over ``[t - w, t)`` counts runs of a pair's sightings (no gap longer than
  ``w``): a run starts counting after its first sighting and stops ``w`` after its last;
- the share of a counterparty's transactions in ``[t - w, t)`` reported as fraud by ``t`` counts each
  report from its ``reported_at`` until its transaction leaves the window, over the windowed count;
- an age is the time since the first sighting in ``[t - w, t)``; NaN (unknown) when there is none.

Empty windows give 0 for counts and sums, NaN for means, shares and ages (the model's missing branch).

Two primitives do the work: :func:`order` (rows by key and time) and :func:`lower_bounds` (stream positions
of many queries in one merge). The optional C extension ``devicerisk._declared`` computes them; without
it, numpy's sorts give the same positions, more slowly.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from devicerisk import engine
from devicerisk.risk.catalog import HOUR_US, WINDOWS, Window

try:  # the optional C primitives (see _declared.c)
    from devicerisk import _declared
except ImportError:  # pragma: no cover - depends on the build
    _declared = None

TRANSACTION = 1  # signals.ETYPES["transaction"]
NONE = np.iinfo(np.int64).min  # no sighting; also the time before every row
_MIX = np.uint64(0x9E3779B97F4A7C15)  # a 64-bit odd constant: pair keys from two hashes
_NEVER = np.iinfo(np.int64).max  # the gap after a pair's last sighting
#: Amounts are summed as whole ten-thousandths in int64, so a window's sum is exact whatever rows come before
#: it in the stream. A float prefix carries the rounding of every earlier row: the whole log and the few rows
#: score-now reads gave sums 4e-10 apart, enough to tip a tree split. Four decimals hold every currency's
#: minor unit. The prefix may wrap; a difference of two prefixes is still exact while the window's own sum fits
#: in int64 (9.2e14 in money), and a single amount is clipped to fit before it is scaled.
AMOUNT_SCALE = 10_000
_AMOUNT_LIMIT = 9e14


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


def order(keys: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The stable order of rows by (key, time): equal (key, time) rows keep their order."""
    keys = np.ascontiguousarray(keys, dtype=np.uint64)
    times = np.ascontiguousarray(times, dtype=np.int64)
    if _declared is None:
        return np.lexsort((times, keys))
    out = np.empty(len(keys), dtype=np.int64)
    _declared.order(keys, times, out)
    return out


def lower_bounds(keys: np.ndarray, times: np.ndarray, q_keys: np.ndarray, q_times: np.ndarray) -> np.ndarray:
    """Per query, the number of rows before ``(q_key, q_time)``: the index of its key's first row at or after
    ``q_time``. Rows and queries must both be in (key, time) order."""
    keys, q_keys = (np.ascontiguousarray(k, dtype=np.uint64) for k in (keys, q_keys))
    times, q_times = (np.ascontiguousarray(t, dtype=np.int64) for t in (times, q_times))
    if _declared is not None:
        out = np.empty(len(q_keys), dtype=np.int64)
        _declared.lower_bounds(keys, times, q_keys, q_times, out)
        return out
    is_row = np.r_[np.ones(len(keys), dtype=np.int64), np.zeros(len(q_keys), dtype=np.int64)]
    merged = np.lexsort((is_row, np.r_[times, q_times], np.r_[keys, q_keys]))  # a query before its equal rows
    rows_before = np.cumsum(is_row[merged]) - is_row[merged]
    out = np.empty(len(q_keys), dtype=np.int64)
    asked = is_row[merged] == 0
    out[merged[asked] - len(keys)] = rows_before[asked]
    return out


def pair_keys(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """One 64-bit key per (a, b) pair of 64-bit hashes (0 where either is missing)."""
    with np.errstate(over="ignore"):
        mixed = (a * _MIX) ^ b
    return np.where((a == 0) | (b == 0), np.uint64(0), mixed)


def fixed_point(amounts: np.ndarray) -> np.ndarray:
    """``amounts`` (NaN as 0) in whole ``1 / AMOUNT_SCALE`` units, for exact sums (see ``AMOUNT_SCALE``)."""
    clipped = np.clip(np.nan_to_num(amounts), -_AMOUNT_LIMIT, _AMOUNT_LIMIT)
    return np.rint(clipped * AMOUNT_SCALE).astype(np.int64)


class Stream:
    """Rows of one entity in (key, time) order, with the prefix sums of ``values`` (columns by name)."""

    def __init__(self, keys: np.ndarray, times: np.ndarray, values: dict[str, np.ndarray] | None = None) -> None:
        self.keys, self.times = keys, times
        self.prefix = {name: np.concatenate([[0], np.cumsum(fixed_point(v))]) for name, v in (values or {}).items()}

    @classmethod
    def of(cls, keys: np.ndarray, times: np.ndarray) -> Stream:
        """A stream of rows in any order."""
        by_key = order(keys, times)
        return cls(keys[by_key], times[by_key])


class Queries:
    """One entity's queries in (key, time) order (``order`` puts them back), with the positions each window
    edge needs in a stream found once."""

    def __init__(self, keys: np.ndarray, t: np.ndarray) -> None:
        self.order = order(keys, t)
        self.keys, self.t = keys[self.order], t[self.order]
        self.stream = Stream(keys[:0], t[:0])
        self._at: dict[int, np.ndarray] = {}

    def asks(self, keys: np.ndarray) -> np.ndarray:
        """Which rows (their ``keys`` in order) have a key some query asks for (the rest change no answer)."""
        at = lower_bounds(self.keys, self.t, keys, np.full(len(keys), NONE))
        found = self.keys[np.minimum(at, len(self.keys) - 1)] == keys
        return found & (at < len(self.keys)) & (keys != 0)

    def read(self, stream: Stream) -> None:
        """Look up ``stream`` from now on."""
        self.stream, self._at = stream, {}

    def at(self, width: int) -> np.ndarray:
        """Per query, the index of its key's first row at or after ``t - width``."""
        if width not in self._at:
            self._at[width] = lower_bounds(self.stream.keys, self.stream.times, self.keys, self.t - width)
        return self._at[width]

    def windowed(self, width: int, value: str = "n") -> np.ndarray:
        """Per query, the sum of ``value`` (default: the count) over its key's rows in ``[t - width, t)``."""
        if value == "n":
            return (self.at(0) - self.at(width)).astype(float)
        prefix = self.stream.prefix[value]
        return (prefix[self.at(0)] - prefix[self.at(width)]) / AMOUNT_SCALE

    def first_since(self, width: int) -> np.ndarray:
        """Per query, the time of its key's first row in ``[t - width, t)``; ``NONE`` when there is none."""
        at, times = self.at(width), self.stream.times
        return np.where(at < self.at(0), times[np.minimum(at, len(times) - 1)] if len(times) else NONE, NONE)

    def count_before(self, stream: Stream, shift: int = 0) -> np.ndarray:
        """Per query, the number of its key's rows in ``stream`` before ``t - shift``."""
        k, t = stream.keys, stream.times
        return lower_bounds(k, t, self.keys, self.t - shift) - lower_bounds(k, t, self.keys, np.full_like(self.t, NONE))


class Sightings:
    """Each (account, counterparty) pair's sightings, for distinct counts of accounts per counterparty.

    The gaps to the pair's previous and next sighting are found in (pair, time) order; the rows are then
    read in (counterparty, time) order, so the run boundaries of any width are streams already in order.
    """

    def __init__(
        self, pair: np.ndarray, times: np.ndarray, by_pair: np.ndarray, by_other: np.ndarray, other: np.ndarray
    ) -> None:
        """``pair`` and ``times`` of the rows; ``by_pair`` and ``by_other``: the sightings' rows in (pair, time)
        and in (counterparty, time) order; ``other``: the counterparty of each row."""
        p, s = pair[by_pair], times[by_pair]
        gap = np.where(p[1:] == p[:-1], s[1:] - s[:-1], _NEVER)
        before, after = np.empty(len(pair), dtype=np.int64), np.empty(len(pair), dtype=np.int64)
        before[by_pair], after[by_pair] = np.r_[_NEVER, gap], np.r_[gap, _NEVER]
        self.other, self.times = other[by_other], times[by_other]
        self.before, self.after = before[by_other], after[by_other]

    def distinct_accounts(self, q: Queries, width: int) -> np.ndarray:
        """Distinct accounts per counterparty over ``[t - width, t)``: a pair counts from the first sighting of a
        run of sightings (no gap over ``width``) until ``width`` after the run's last."""
        starts, ends = self.before > width, self.after > width
        started = q.count_before(Stream(self.other[starts], self.times[starts]))
        ended = q.count_before(Stream(self.other[ends], self.times[ends]), width)
        return (started - ended).astype(float)


def fraud_reports(labels: pa.Table | None) -> pa.Table:
    """The transactions reported as fraud: their 64-bit key (``txn``) and first report time (``r``, µs)."""
    if labels is None or labels.num_rows == 0:
        return pa.table({"txn": pa.array([], pa.uint64()), "r": pa.array([], pa.int64())})
    fraud = labels.filter(
        pc.and_(pc.equal(labels.column("label"), "fraud"), pc.equal(labels.column("subject_type"), "transaction"))
    )
    with engine.registered(f=fraud.select(["subject_id_pid", "reported_at"])) as con:
        return con.sql(
            "SELECT hash(subject_id_pid) AS txn, min(epoch_us(reported_at)) AS r FROM f "
            "WHERE subject_id_pid IS NOT NULL GROUP BY 1"
        ).to_arrow_table()  # one report a payment: the first


def _reported(txns: pa.Table, hashed: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(counterparty, transaction time, reported time) of every transaction (signal rows ``txns``) reported as
    fraud (``hashed``: :func:`fraud_reports`)."""
    if hashed.num_rows == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty.astype(np.uint64), empty, empty
    where = pc.index_in(hashed.column("txn"), value_set=txns.column("txn"))
    found = pc.is_valid(where)
    rows = pc.filter(where, found)
    cp = txns.column("cp").take(rows).to_numpy()
    t = txns.column("t").take(rows).to_numpy()
    r = pc.filter(hashed.column("r"), found).to_numpy()
    keep = (cp != 0) & (t < r)
    return cp[keep], t[keep], r[keep]


def compute(
    sig: pa.Table,
    labels: pa.Table | None,
    q_t: np.ndarray,
    q_acct: np.ndarray,
    q_cp: np.ndarray,
    out: np.ndarray | None = None,
    reports: pa.Table | None = None,
) -> np.ndarray:
    """The declared features (``catalog.WINDOWS`` order) of query rows at ``q_t`` (microseconds) of
    accounts ``q_acct`` paying counterparties ``q_cp`` (64-bit hashes, 0: none), from signal rows ``sig``;
    written into ``out`` (len(q_t) × len(WINDOWS), a view of a wider matrix, say) when given. ``reports``:
    :func:`fraud_reports` of ``labels``, when the caller has them already (made here otherwise)."""
    X = np.full((len(q_t), len(WINDOWS)), np.nan) if out is None else out
    if X.shape != (len(q_t), len(WINDOWS)):
        raise ValueError(f"out must be {len(q_t)} × {len(WINDOWS)}, not {X.shape}")
    if len(q_t) == 0:
        return X
    txn = sig.select(["t", "etype", "acct", "cp", "amount", "txn"])
    txn = txn.filter(pc.equal(txn.column("etype"), TRANSACTION))
    q_t = np.asarray(q_t, dtype=np.int64)
    queries = {"acct": Queries(q_acct, q_t), "cp": Queries(q_cp, q_t), "acct_cp": Queries(pair_keys(q_acct, q_cp), q_t)}
    sightings = _read(txn, queries)
    reported = _reported(txn, fraud_reports(labels) if reports is None else reports)
    features = np.empty((len(WINDOWS), len(q_t)))  # a row per feature: each written in one place
    for entity, q in queries.items():
        unknown = q.keys == 0  # no entity: unknown, never "none seen"
        for j, w in enumerate(WINDOWS):
            if w.entity == entity:
                features[j, q.order] = np.where(unknown, np.nan, _one(w, q, sightings, reported))
    X[:] = features.T
    return X


def _read(txn: pa.Table, queries: dict[str, Queries]) -> Sightings:
    """Give each entity's queries their stream: the transactions (signal rows ``txn``) with a key some query
    asks for, in (key, time) order. Returns the counterparties' sightings."""
    t = np.ascontiguousarray(txn.column("t").to_numpy(), dtype=np.int64)
    acct = np.ascontiguousarray(txn.column("acct").to_numpy(), dtype=np.uint64)
    cp = np.ascontiguousarray(txn.column("cp").to_numpy(), dtype=np.uint64)
    amount = txn.column("amount").to_numpy().astype(float)
    asked = {}
    for entity, keys in (("acct", acct), ("cp", cp)):
        by_key = order(keys, t)
        rows = asked[entity] = by_key[queries[entity].asks(keys[by_key])]
        values = {"amount": amount[rows]} if entity == "acct" else None
        queries[entity].read(Stream(keys[rows], t[rows], values))
    a, c = np.zeros(len(t), dtype=bool), np.zeros(len(t), dtype=bool)
    a[asked["acct"]], c[asked["cp"]] = True, True
    pair = pair_keys(acct, cp)
    paid = np.flatnonzero(c & (acct != 0))  # an unlogged payment is no account's sighting
    by_pair = paid[order(pair[paid], t[paid])]
    mine = by_pair[a[by_pair]]  # the pair's rows: account and counterparty both asked for
    queries["acct_cp"].read(Stream(pair[mine], t[mine]))
    return Sightings(pair, t, by_pair, asked["cp"][acct[asked["cp"]] != 0], cp)


def _one(w: Window, q: Queries, sightings: Sightings, reported: tuple[np.ndarray, ...]) -> np.ndarray:
    """One declared feature of the queries ``q`` (in their (key, time) order)."""
    if w.aggregate == "count":
        return q.windowed(w.width)
    if w.aggregate == "sum":
        return q.windowed(w.width, "amount")
    if w.aggregate == "mean":
        n = q.windowed(w.width)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, q.windowed(w.width, "amount") / n, np.nan)
    if w.aggregate == "distinct_accounts":
        return sightings.distinct_accounts(q, w.width)
    if w.aggregate == "fraud_share":
        cp, t_txn, r = reported
        live = r < t_txn + w.width  # a report made after its transaction left the window never counts
        flagged = q.count_before(Stream.of(cp[live], r[live]))
        flagged -= q.count_before(Stream.of(cp[live], t_txn[live]), w.width)
        n = q.windowed(w.width)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, flagged / n, np.nan)
    first = q.first_since(w.width)
    if w.aggregate == "age_h":
        return np.where(first != NONE, (q.t - first) / HOUR_US, np.nan)
    if w.aggregate == "new":
        return (first == NONE).astype(float)
    raise ValueError(f"unknown aggregate {w.aggregate!r} of declared feature {w.name!r}")
