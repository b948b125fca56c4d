"""Transaction features from risk signals, computed in C: the numbers of ``features.TRANSACTION_SQL``.

The SQL is the definition (training uses it, and it runs anywhere DuckDB does); this path computes the
same point-in-time windows in one pass per account, device and network over the signal rows
(``devicerisk._windows``), for scoring at high rates. A parity test holds the two together on generated
lakes. Without the built extension, ``available()`` is False and scoring uses the SQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.risk import declared, signals
from devicerisk.risk import features as F

try:  # the optional C engine (see _windows.c)
    from devicerisk import _windows
except ImportError:  # pragma: no cover - depends on the build
    _windows = None

#: The signal columns the engine reads, in its argument order.
ENGINE_COLUMNS = (
    "t",
    "acct",
    "dev",
    "net",
    "cp",
    "etype",
    "action",
    "crash",
    "root_app",
    "hook_app",
    "failed",
    "hw_emu",
    "rooted",
    "emu_model",
    "imei_ok",
    "bank",
    "amount",
    "sim",
    "tzc",
    "langr",
    "platform",
    "major",
)
_DTYPES = {
    "t": np.int64,
    "acct": np.uint64,
    "dev": np.uint64,
    "net": np.uint64,
    "cp": np.uint64,
    "amount": np.float64,
    "failed": np.int8,
    "hw_emu": np.int8,
    "rooted": np.int8,
    "emu_model": np.int8,
    "imei_ok": np.int8,
    "bank": np.int8,
    "sim": np.uint32,
    "tzc": np.uint32,
    "langr": np.uint32,
    "platform": np.uint32,
    "major": np.int32,
}


@contextmanager
def _small_pages() -> Iterator[None]:
    """numpy without transparent huge pages for a while: the large arrays here are written once and
    dropped, and on first touch a huge page can cost a compaction; 4 KiB pages fault in faster (a
    169,132 × 39 matrix: 0.12 s with huge pages, 0.03 s without, on a fresh process here)."""
    setter = getattr(np._core.multiarray, "_set_madvise_hugepage", None)  # private: absent, nothing changes
    if setter is None:
        yield
        return
    previous = setter(False)
    try:
        yield
    finally:
        setter(previous)


def available() -> bool:
    """Whether the C engine is built (and fills exactly the model's feature columns)."""
    return _windows is not None and _windows.feature_count() == len(F.ENGINE_FEATURE_NAMES)


def _column(sig: pa.Table, name: str) -> np.ndarray:
    return np.ascontiguousarray(sig.column(name).to_numpy(), dtype=_DTYPES.get(name, np.uint8))


def in_time_order(sig: pa.Table) -> pa.Table:
    """``sig`` stably sorted by ``t``. Segments come sorted, and a refresh's rows overlap only the newest
    hours of the log before them, so only the tail from the first row that a later row precedes is sorted
    (and its columns taken): the head before it is in order and no later than any row after it."""
    t = sig.column("t").to_numpy()
    if len(t) < 2 or bool(np.all(t[1:] >= t[:-1])):
        return sig
    later_min = np.minimum.accumulate(t[::-1])[::-1]  # the earliest time from each row on
    head = int(np.argmax(t > later_min))
    tail = sig.slice(head).take(pa.array(np.argsort(t[head:], kind="stable")))
    return pa.concat_tables([sig.slice(0, head), tail])


@dataclass(frozen=True, slots=True)
class Reports:
    """The feedback labels as the engines read them, made once for many feature runs over one history:
    the report steps (:func:`signals.report_steps`) and the reported transactions
    (:func:`declared.fraud_reports`)."""

    steps: pa.Table
    fraud: pa.Table

    @classmethod
    def of(cls, sig: pa.Table, labels: pa.Table | None) -> Reports:
        """The reports of ``labels`` over the whole of ``sig``, valid for a query at any time: a link older
        than the query's 31-day history adds its step and takes it back before the query."""
        low, high = (v.as_py() or 0 for v in pc.min_max(sig.column("t")).values())
        first, last = (signals.EPOCH + timedelta(microseconds=v) for v in (low, high))
        steps = signals.report_steps(sig, labels, first, last + timedelta(microseconds=1))
        return cls(steps.sort_by([("t", "ascending")]), declared.fraud_reports(labels))


def transaction_features(
    sig: pa.Table, labels: pa.Table | None, start: datetime, end: datetime, reports: Reports | None = None
) -> tuple[pa.Table, np.ndarray]:
    """Features of every transaction with ``start <= event_time < end``, from the signal rows.

    Returns the rows (``qid`` event id, ``t``, ``acct``, ``txn``) in time order and their matrix in
    ``features.FEATURE_NAMES`` order (NaN for missing). ``sig`` must cover at least the 31 days before
    ``start`` (the longest window); older rows and rows at or after ``end`` are not read. ``reports``:
    the labels' :class:`Reports` over a history that holds ``sig``'s rows, when the caller has them.
    """
    if not available():
        raise RuntimeError("the C feature engine (devicerisk._windows) is not built")
    with _small_pages():
        return _features(sig, labels, start, end, reports)


def _features(
    sig: pa.Table, labels: pa.Table | None, start: datetime, end: datetime, reports: Reports | None
) -> tuple[pa.Table, np.ndarray]:
    sig = in_time_order(sig)
    start_us, end_us = signals.micros(start), signals.micros(end)
    # only the rows a window can reach: from the oldest sighting bound (a whole day before start - 31 d)
    t = _column(sig, "t")
    first, last = np.searchsorted(t, [(start_us - F.HIST) // F.D * F.D, end_us], side="left")
    sig = sig.slice(first, last - first)
    cols = dict(zip(ENGINE_COLUMNS, (_column(sig, name) for name in ENGINE_COLUMNS), strict=True))
    t = cols["t"]
    is_query = (cols["etype"] == signals.ETYPES["transaction"]) & (cols["acct"] != 0)
    qidx = np.flatnonzero(is_query & (t >= start_us)).astype(np.int64)  # every row is before end now
    if reports is None:
        steps, fraud = signals.report_steps(sig, labels, start, end).sort_by([("t", "ascending")]), None
    else:
        steps, fraud = reports.steps, reports.fraud
    step_cols = tuple(
        np.ascontiguousarray(steps.column(name).to_numpy(), dtype=dtype)
        for name, dtype in (("t", np.int64), ("kind", np.uint8), ("key", np.uint64), ("step", np.int8))
    )
    X = np.full((len(qidx), len(F.FEATURE_NAMES)), np.nan)  # the engine fills its columns, declared the rest
    _windows.windows(tuple(cols.values()), step_cols, start_us, end_us, qidx, X)
    declared.compute(
        sig, labels, t[qidx], cols["acct"][qidx], cols["cp"][qidx], X[:, len(F.ENGINE_FEATURE_NAMES) :], fraud
    )
    take = pa.array(qidx)
    rows = pa.table(
        {
            "qid": sig.column("event_id").take(take),
            "t": pa.array(t[qidx]),
            "acct": sig.column("account_id_pid").take(take),
            "txn": sig.column("transaction_id_pid").take(take),
        }
    )
    return rows, X


def matrix(X: np.ndarray, names: list[str] | tuple[str, ...]) -> np.ndarray:
    """The columns of a full feature matrix that a model reads, in its order (``X`` itself, not a copy, when
    the model reads them all in order, as every model trained here does)."""
    if tuple(names) == F.FEATURE_NAMES:
        return X
    index = {name: i for i, name in enumerate(F.FEATURE_NAMES)}
    return np.ascontiguousarray(X[:, [index[n] for n in names]])


def as_table(rows: pa.Table, X: np.ndarray) -> pa.Table:
    """Rows and matrix as one feature table, shaped like ``features.transaction_features`` (NaN as null)."""
    columns = {name: pa.array(X[:, i], mask=np.isnan(X[:, i])) for i, name in enumerate(F.FEATURE_NAMES)}
    return pa.table(
        {
            "qid": rows.column("qid"),
            "t": rows.column("t"),
            "acct": rows.column("acct"),
            "txn": rows.column("txn"),
            **columns,
        }
    )
