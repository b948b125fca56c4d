"""Immutable views of the serving snapshots, and the holder that switches to a newly published one atomically.

A :class:`ServingView` is loaded from the serving folder's snapshot files (``account_risk``,
``transaction_risk``, ``device_risk``) and indexed once: every lookup is a binary search in sorted arrays.
It is never changed after it is built, so any number of threads read it without a lock, and an answer comes
from one whole set of files.

:class:`LiveView` holds the current view. ``current()`` stats the snapshot files on every call (three
``stat`` calls: inode, modification time, size) and, when one was replaced (a score run published, a purge or
an erasure rewrote it), loads a new view and swaps one reference. Readers that hold the old view finish on it.
With ``wait=True`` (the default) a call that finds a change waits for the new view, so a lookup that starts
after an erasure completed never finds the erased subject; concurrent calls share one build. With
``wait=False`` the new view is built by a background thread while lookups go on answering from the old one:
the subject can then be found for as long as the build takes (seconds for 1M accounts).

Views hold pseudonyms; the API shows them only as masked references (:mod:`devicerisk.lookup.refs`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from devicerisk.contract.fields import DEVICE_KEY_COLUMNS
from devicerisk.lookup.index import Index
from devicerisk.lookup.refs import Refs
from devicerisk.risk.published import PHONE_COLUMN
from devicerisk.store import serving
from devicerisk.store.rows import ACCOUNT_COLUMN, TRANSACTION_COLUMN

RECENT_TRANSACTIONS = 20  # transaction scores shown with an account
DEVICE_ACCOUNTS = 100  # accounts shown with a device (the total is given too)
_ACCOUNT_FIELDS = ("score", "level", "reasons", "model_version", "model_kind", "as_of", "scored_at")
_TXN_FIELDS = ("transaction_id_pid", "account_id_pid", "event_time", "score", "level", "reasons", "model_version")
_DEVICE_FIELDS = (
    "device_key",
    "accounts_24h",
    "accounts_31d",
    "emulator",
    "rooted",
    "root_app",
    "hook_app",
    "first_seen",
    "last_seen",
    "as_of",
)
_EDGE_FIELDS = {"account_id_pid": "account_id_pid", "account_events": "events"}
_EDGE_TIMES = {"account_first_seen": "first_seen", "account_last_seen": "last_seen"}
QUEUE_KINDS = ("account", "transaction")

#: A snapshot file's identity: (inode, modification time in ns, size), or None when it does not exist.
Identity = tuple[tuple[int, int, int] | None, ...]


def _json(value: Any) -> Any:
    """A value from a snapshot row in JSON form (times as ISO 8601 text)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def _rows(table: pa.Table, rows: np.ndarray | list[int], columns: tuple[str, ...] | list[str]) -> list[dict]:
    if len(rows) == 0:
        return []
    picked = table.select(list(columns)).take(pa.array(np.asarray(rows, dtype=np.int64)))
    return [{k: _json(v) for k, v in r.items()} for r in picked.to_pylist()]


def identity(serving_dir: Path) -> Identity:
    """The identity of each snapshot file a view reads, cheaply (stat only)."""
    out = []
    for name in serving.SNAPSHOTS:
        try:
            st = os.stat(serving.path_of(serving_dir, name))
        except FileNotFoundError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


def _load(path: Path) -> tuple[pa.Table | None, tuple[int, int, int] | None]:
    """A snapshot and the identity of the very file read (a rename after the open does not change it)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, after fstat and the read
    except FileNotFoundError:
        return None, None
    with fh:
        st = os.fstat(fh.fileno())
        return pq.read_table(fh), (st.st_ino, st.st_mtime_ns, st.st_size)


@dataclass(frozen=True, slots=True)
class _Queue:
    """One kind's rows ordered by (day descending, score descending, pseudonym), per level filter."""

    orders: dict[str | None, np.ndarray]  # level (None: every level) -> row positions
    days: dict[str | None, np.ndarray]  # the same rows' day numbers, negated (ascending)

    @classmethod
    def build(cls, table: pa.Table, key: str) -> _Queue:
        if table.num_rows == 0 or "score" not in table.column_names:
            empty = np.array([], dtype=np.int64)
            return cls({None: empty}, {None: empty})
        order = pc.sort_indices(
            table, [("event_date", "descending"), ("score", "descending"), (key, "ascending")]
        ).to_numpy()
        days = -pc.cast(table.column("event_date"), pa.int32()).to_numpy(zero_copy_only=False)[order]
        levels = table.column("level").to_numpy(zero_copy_only=False)[order]
        orders: dict[str | None, np.ndarray] = {None: order}
        negdays: dict[str | None, np.ndarray] = {None: days}
        for level in np.unique(levels.astype(str)):
            mask = levels == level
            orders[str(level)], negdays[str(level)] = order[mask], days[mask]
        return cls(orders, negdays)

    def page(self, level: str | None, day: date | None, offset: int, limit: int) -> tuple[date | None, int, np.ndarray]:
        """The day shown (``day``, default the newest), its rows' total and the rows of one page."""
        order, days = self.orders.get(level), self.days.get(level)
        if order is None or days is None or len(order) == 0:
            return day, 0, np.array([], dtype=np.int64)
        newest = -int(self.days[None][0])
        wanted = -((day - date(1970, 1, 1)).days) if day is not None else -newest
        lo, hi = int(np.searchsorted(days, wanted, "left")), int(np.searchsorted(days, wanted, "right"))
        shown = day if day is not None else date.fromordinal(date(1970, 1, 1).toordinal() + newest)
        start = min(lo + offset, hi)
        return shown, hi - lo, order[start : min(start + limit, hi)]


@dataclass(frozen=True)
class ServingView:
    """One loaded set of serving snapshots with their indexes. Immutable: safe to share between threads."""

    refs: Refs
    identity: Identity
    accounts: pa.Table  # sorted by account
    transactions: pa.Table  # sorted by account, then newest first
    devices: pa.Table  # sorted by device key, then account
    loaded_at: datetime
    _idx: dict[str, Index] = field(repr=False)
    _queues: dict[str, _Queue] = field(repr=False)

    @classmethod
    def load(cls, serving_dir: Path, refs: Refs) -> ServingView:
        """Load and index the serving folder's snapshots (missing ones are empty)."""
        tables, ids = [], []
        for name in serving.SNAPSHOTS:
            table, ident = _load(serving.path_of(serving_dir, name))
            tables.append(table)
            ids.append(ident)
        empty = pa.table({ACCOUNT_COLUMN: pa.array([], pa.string())})
        accounts, transactions, devices = (empty if t is None else t for t in tables)
        return cls.of(refs, tuple(ids), accounts, transactions, devices)

    @classmethod
    def of(
        cls, refs: Refs, ident: Identity, accounts: pa.Table, transactions: pa.Table, devices: pa.Table
    ) -> ServingView:
        """A view of these snapshot tables (sorted and indexed here)."""
        accounts = accounts.sort_by([(ACCOUNT_COLUMN, "ascending")]) if accounts.num_rows else accounts
        if transactions.num_rows:
            transactions = transactions.sort_by([(ACCOUNT_COLUMN, "ascending"), ("event_time", "descending")])
        if devices.num_rows:
            devices = devices.sort_by([("device_key", "ascending"), (ACCOUNT_COLUMN, "ascending")])
        idx = {"account": Index.sorted_column(accounts.column(ACCOUNT_COLUMN))}
        idx["account_transactions"] = Index.sorted_column(transactions.column(ACCOUNT_COLUMN))
        if transactions.num_rows:
            newest_first = pc.sort_indices(
                transactions, [(TRANSACTION_COLUMN, "ascending"), ("event_time", "descending")]
            )
            idx["transaction"] = Index.build(transactions.column(TRANSACTION_COLUMN), newest_first)
        if PHONE_COLUMN in accounts.column_names:
            idx["phone"] = Index.build(accounts.column(PHONE_COLUMN))
        if devices.num_rows:
            idx["device"] = Index.sorted_column(devices.column("device_key"))
            aliases = pa.chunked_array([c for name in DEVICE_KEY_COLUMNS for c in devices.column(name).chunks])
            rows = np.tile(np.arange(devices.num_rows, dtype=np.int64), len(DEVICE_KEY_COLUMNS))
            idx["device_alias"] = Index.build(aliases, pa.array(rows))
        queues = {"account": _Queue.build(accounts, ACCOUNT_COLUMN)}
        queues["transaction"] = _Queue.build(transactions, TRANSACTION_COLUMN)
        return cls(refs, ident, accounts, transactions, devices, datetime.now().astimezone(), idx, queues)

    def _find(self, index: str, key: str) -> np.ndarray:
        found = self._idx.get(index)
        return found.span(key) if found is not None and isinstance(key, str) else np.array([], dtype=np.int64)

    # -- lookups: plain JSON-able dicts holding pseudonyms (mask them before showing) ------------------------
    def account(self, account_pid: str, recent: int = RECENT_TRANSACTIONS) -> dict[str, Any] | None:
        """The account's latest score, level, reasons, model and as-of time, and its newest transaction scores
        (at most ``recent``); None when no snapshot knows it. An account with transaction scores but no account
        score yet has ``score`` None."""
        rows = self._find("account", account_pid)
        txns = self._find("account_transactions", account_pid)
        if len(rows) == 0 and len(txns) == 0:
            return None
        head = _rows(self.accounts, rows[:1], _ACCOUNT_FIELDS) if len(rows) else [dict.fromkeys(_ACCOUNT_FIELDS)]
        transactions = _rows(self.transactions, txns[: max(0, recent)], _TXN_FIELDS)
        return {"account_id_pid": account_pid, **head[0], "transactions": transactions, "transactions_total": len(txns)}

    def transaction(self, transaction_pid: str) -> dict[str, Any] | None:
        """The transaction's score (its newest event's, if it has several), or None."""
        rows = self._find("transaction", transaction_pid)
        if len(rows) == 0:
            return None
        return _rows(self.transactions, rows[:1], (*_TXN_FIELDS, "model_kind", "scored_at"))[0]

    def device_key_of(self, pid: str) -> str | None:
        """The device key of a device known by ``pid``: its key, or any of its identifier pseudonyms."""
        if len(self._find("device", pid)):
            return pid
        rows = self._find("device_alias", pid)
        return None if len(rows) == 0 else self.devices.column("device_key")[int(rows[0])].as_py()

    def device(self, device_pid: str, limit: int = DEVICE_ACCOUNTS) -> dict[str, Any] | None:
        """The device's signals and the accounts seen on it, riskiest first (at most ``limit``), with their
        latest account scores; None when the device is unknown."""
        key = self.device_key_of(device_pid)
        if key is None:
            return None
        rows = self._find("device", key)
        out = _rows(self.devices, rows[:1], _DEVICE_FIELDS)[0]
        edges = _rows(self.devices, rows, [*_EDGE_FIELDS, *_EDGE_TIMES])
        accounts = []
        for edge in edges:
            found = self._find("account", edge["account_id_pid"])
            score = _rows(self.accounts, found[:1], ("score", "level", "reasons", "as_of")) if len(found) else []
            named = {new: edge[old] for old, new in {**_EDGE_FIELDS, **_EDGE_TIMES}.items()}
            accounts.append(named | (score[0] if score else dict.fromkeys(("score", "level", "reasons", "as_of"))))
        accounts.sort(key=lambda a: (a["score"] is None, -(a["score"] or 0.0), a["account_id_pid"]))
        return out | {"accounts": accounts[: max(0, limit)], "accounts_total": len(accounts)}

    def phone_accounts(self, phone_pid: str) -> list[str]:
        """The accounts whose current phone number has the pseudonym ``phone_pid``."""
        rows = self._find("phone", phone_pid)
        return sorted(self.accounts.column(ACCOUNT_COLUMN).take(pa.array(rows)).to_pylist()) if len(rows) else []

    def queue(
        self, kind: str, level: str | None = None, day: date | None = None, offset: int = 0, limit: int = 50
    ) -> dict[str, Any]:
        """One page of a day's riskiest accounts or transactions (``day`` None: the newest day), highest score
        first, optionally of one level, with the total for pagination."""
        if kind not in QUEUE_KINDS:
            raise ValueError(f"unknown queue kind {kind!r} (known: {', '.join(QUEUE_KINDS)})")
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must not be negative")
        table = self.accounts if kind == "account" else self.transactions
        shown, total, rows = self._queues[kind].page(level, day, offset, limit)
        columns = (ACCOUNT_COLUMN, *_ACCOUNT_FIELDS) if kind == "account" else (*_TXN_FIELDS, "model_kind")
        return {
            "kind": kind,
            "day": None if shown is None else shown.isoformat(),
            "level": level,
            "offset": offset,
            "limit": limit,
            "total": total,
            "items": _rows(table, rows, columns),
        }

    # -- masked references ------------------------------------------------------------------------------
    def ref(self, kind: str, pid: str) -> str:
        """The masked reference of a pseudonym of ``kind`` (account, transaction, device)."""
        return self.refs.ref(kind, pid)

    def unref(self, kind: str, ref: str) -> str | None:
        """The pseudonym a reference stands for, if this view knows it (None: unknown, malformed or forged)."""
        pid = self.refs.pid(kind, ref)
        if pid is None:
            return None
        if kind == "account":
            known = len(self._find("account", pid)) or len(self._find("account_transactions", pid))
        elif kind == "transaction":
            known = len(self._find("transaction", pid))
        else:
            known = self.device_key_of(pid) is not None
        return pid if known else None


class LiveView:
    """The current :class:`ServingView` of a serving folder, switched atomically when a snapshot is replaced."""

    def __init__(self, serving_dir: Path, refs: Refs, wait: bool = True) -> None:
        self.serving_dir = serving_dir
        self._refs = refs
        self._wait = wait
        self._swap = threading.Lock()  # one build at a time
        self._starting = threading.Lock()
        self._building: threading.Thread | None = None
        self._view = ServingView.load(serving_dir, refs)

    def current(self) -> ServingView:
        """The newest complete view (see the module's docstring for when a new one is seen)."""
        view = self._view
        if identity(self.serving_dir) == view.identity:
            return view
        if self._wait:
            return self.refresh()
        with self._starting:
            if self._building is None or not self._building.is_alive():
                self._building = threading.Thread(target=self.refresh, name="serving-view", daemon=True)
                self._building.start()
        return view

    def refresh(self) -> ServingView:
        """Load the published snapshots now if they changed, and make them current."""
        with self._swap:
            view = self._view
            if identity(self.serving_dir) != view.identity:
                view = ServingView.load(self.serving_dir, self._refs)
                self._view = view  # one reference swap: readers see the old view or the new one
            return view
