"""The history one event's features read: the signal log's rows, indexed by the keys the features join on.

Batch scoring runs the feature engines (``risk.windows`` and ``risk.declared``) over the whole signal log.
A transaction's features read only rows that share a key with it: its account (velocity, devices,
novelty, spending), its device (device graph, integrity, locale), its network prefix (accounts on the
network), its counterparty (payments, distinct payers, fraud reports), and, for "app versions behind",
the newest app major version of each platform and day. So the same engines run over just those rows,
and give the numbers batch scoring gives for the same transaction:

- rows of the event's account, device and counterparty within the engines' reach (the whole day 31 days
  before the event, as ``windows`` slices it), and of its network within the 24 h window plus its hour;
- one row per (platform, day) carrying that day's newest major version (the only global aggregate);
- only rows strictly before the event (no feature sees its own time or later).

Rows keep the log's order (the engines order by time stably, as they do the whole log).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from devicerisk.risk import features as F
from devicerisk.risk import signals
from devicerisk.risk.geo import timezone_countries

_NO_MAJOR = np.iinfo(np.int32).min  # the signal rows' missing major version
#: Key columns, and how far back the features read each one's rows (None: the engines' whole reach).
KEYS: dict[str, int | None] = {"acct": None, "dev": None, "cp": None, "net": F.D + F.H}


@dataclass(frozen=True, slots=True)
class _Index:
    """The rows of one key column with a key (not 0), in (key, log order): positions and their keys."""

    keys: np.ndarray
    rows: np.ndarray

    @classmethod
    def of(cls, column: np.ndarray) -> _Index:
        present = np.flatnonzero(column != 0)
        rows = present[np.argsort(column[present], kind="stable")]
        return cls(column[rows], rows)

    def rows_of(self, key: int) -> np.ndarray:
        """Positions of the rows with ``key``, in log order."""
        key = np.uint64(key)
        return self.rows[np.searchsorted(self.keys, key, "left") : np.searchsorted(self.keys, key, "right")]


def _newest_versions(t: np.ndarray, platform: np.ndarray, major: np.ndarray) -> np.ndarray:
    """Positions of one row per (platform, day) with that day's highest major version."""
    known = np.flatnonzero((platform != 0) & (major != _NO_MAJOR))
    if len(known) == 0:
        return known
    day = t[known] // F.D
    by = np.lexsort((-major[known].astype(np.int64), day, platform[known]))
    p, d = platform[known][by], day[by]
    first = np.r_[True, (p[1:] != p[:-1]) | (d[1:] != d[:-1])]
    return np.sort(known[by][first])


@dataclass(frozen=True, slots=True)
class History:
    """The signal log as of one lake version, indexed for one event's rows."""

    version: int
    table: pa.Table
    t: np.ndarray
    indexes: dict[str, _Index]
    versions: np.ndarray  # positions of the newest app major version per (platform, day)

    @classmethod
    def of(cls, view_version: int, table: pa.Table) -> History:
        """Index the signal rows ``table`` (the log of lake version ``view_version``)."""
        table = table.combine_chunks()  # one chunk per column: numpy views, and takes without a chunk search
        t = table.column("t").to_numpy()
        indexes = {name: _Index.of(table.column(name).to_numpy()) for name in KEYS}
        versions = _newest_versions(t, table.column("platform").to_numpy(), table.column("major").to_numpy())
        return cls(view_version, table, t, indexes, versions)

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def before(self, event: pa.Table) -> pa.Table:
        """The rows the features of ``event`` (its one signal row) read, then the event's row, in log order."""
        t = int(event.column("t")[0].as_py())
        oldest = (t - F.HIST) // F.D * F.D  # the first row the engines keep for a query at t
        parts = []
        for name, reach in KEYS.items():
            key = int(event.column(name)[0].as_py())
            if key == 0:
                continue
            rows = self.indexes[name].rows_of(key)
            since = oldest if reach is None else max(oldest, (t - reach) // F.H * F.H)
            parts.append(rows[(self.t[rows] >= since) & (self.t[rows] < t)])
        known = self.versions[(self.t[self.versions] >= oldest) & (self.t[self.versions] < t)]
        rows = np.unique(np.concatenate([known, *parts]))  # sorted: the log's order
        history = self.table.take(pa.array(rows, pa.int64()))
        return pa.concat_tables([history, event.cast(history.schema)])


_local = threading.local()


def event_signals(treated: pa.Table) -> pa.Table:
    """The signal row of one treated transaction, by the log's rules (``signals.SIGNAL_SQL``; a transaction
    is always a visible row). The statement is prepared once per thread, on its own one-thread connection:
    an event's row then costs an execution, not a parse and plan of the whole statement."""
    con = getattr(_local, "con", None)
    events = treated.select(list(F.EVENT_COLUMNS))
    if con is None:
        con = duckdb.connect(":memory:")
        con.execute("SET threads = 1")  # one row: a second thread only costs its wake-up
        con.register("tzc", timezone_countries())
        con.register("events", events)
        con.execute(f"PREPARE signal_row AS {signals.SIGNAL_SQL}")
        _local.con = con
    con.register("events", events)  # the prepared statement reads whatever table the name holds now
    return con.sql("EXECUTE signal_row").to_arrow_table()
