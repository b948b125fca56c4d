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

from devicerisk.config import Settings
from devicerisk.lookup.columns import Columns, read_rows, readers
from devicerisk.lookup.index import Index, keys_of
from devicerisk.lookup.refs import Refs
from devicerisk.privacy.keys import load_pseudonym_key
from devicerisk.risk.published import PHONE_COLUMN
from devicerisk.store import serving
from devicerisk.store.rows import ACCOUNT_COLUMN, TRANSACTION_COLUMN

RECENT_TRANSACTIONS = 20  # transaction scores shown with an account
DEVICE_ACCOUNTS = 100  # accounts shown with a device (the total is given too)
_SCORE_FIELDS = ("score", "level", "reasons", "as_of")
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


def _array(column: pa.ChunkedArray) -> pa.Array:
    """A column as one array: its chunk when it has one (``combine_chunks`` would copy it)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _paths(serving_dir: Path) -> tuple[str, ...]:
    return tuple(str(serving.path_of(serving_dir, name)) for name in serving.SNAPSHOTS)


def identity(serving_dir: Path, paths: tuple[str, ...] | None = None) -> Identity:
    """The identity of each snapshot file a view reads, cheaply (stat only)."""
    out = []
    for path in paths or _paths(serving_dir):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


_UNUSED = ("event_id",)  # columns a lookup never shows


def _load(path: Path) -> tuple[pa.Table | None, tuple[int, int, int] | None]:
    """A snapshot and the identity of the very file read (a rename after the open does not change it)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, after fstat and the read
    except FileNotFoundError:
        return None, None
    with fh:
        st = os.fstat(fh.fileno())
        names = pq.read_schema(fh).names
        fh.seek(0)
        wanted = [n for n in names if n not in _UNUSED]
        table = pq.read_table(fh, columns=wanted).combine_chunks()  # one chunk: readers and indexes share it
        return table, (st.st_ino, st.st_mtime_ns, st.st_size)


def _ordered(table: pa.Table, key: str, then: str | None = None) -> pa.Table:
    """``table`` ordered by ``key`` (then newest ``then`` first), sorted here only if it was not published so."""
    if table.num_rows == 0:
        return table
    column = _array(table.column(key))
    valid = column.slice(0, len(column) - column.null_count)  # nulls sort last
    ordered = valid.null_count == 0
    if ordered:
        keys = keys_of(valid)
        same = keys[1:] == keys[:-1]
        ordered = bool(np.all(keys[1:] >= keys[:-1]))
    if ordered and then is not None:
        times = pc.cast(table.column(then), pa.int64()).to_numpy(zero_copy_only=False)[: len(valid)]
        ordered = bool(np.all(times[1:][same] <= times[:-1][same]))
    if not ordered:
        order = [(key, "ascending")] + ([] if then is None else [(then, "descending")])
        table = table.sort_by(order)
    return table


@dataclass(frozen=True, slots=True)
class _Queue:
    """One kind's rows ordered by day (newest first), then score (highest first), then the snapshot's order (by
    account), per level filter."""

    orders: dict[str | None, np.ndarray]  # level (None: every level) -> row positions
    days: dict[str | None, np.ndarray]  # the same rows' day numbers, negated (ascending)

    @classmethod
    def build(cls, table: pa.Table) -> _Queue:
        if table.num_rows == 0 or "score" not in table.column_names:
            empty = np.array([], dtype=np.int64)
            return cls({None: empty}, {None: empty})
        day = pc.cast(table.column("event_date"), pa.int32()).to_numpy(zero_copy_only=False)
        score = table.column("score").to_numpy(zero_copy_only=False)
        order = np.lexsort((-score, -day))  # stable: equal scores keep the snapshot's order
        days = -day[order]
        coded = pc.dictionary_encode(table.column("level").cast(pa.string())).combine_chunks()
        levels = coded.indices.to_numpy(zero_copy_only=False)[order]
        orders: dict[str | None, np.ndarray] = {None: order}
        negdays: dict[str | None, np.ndarray] = {None: days}
        for code, level in enumerate(coded.dictionary.to_pylist()):
            mask = levels == code
            orders[level], negdays[level] = order[mask], days[mask]
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
    _cols: dict[str, Columns] = field(repr=False)
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
        view = cls.of(refs, tuple(ids), *(empty if t is None else t for t in tables))
        tables.clear()  # the tables as read, if the view had to reorder them
        pa.default_memory_pool().release_unused()  # the reads' scratch memory back to the system
        return view

    @classmethod
    def of(
        cls, refs: Refs, ident: Identity, accounts: pa.Table, transactions: pa.Table, devices: pa.Table
    ) -> ServingView:
        """A view of these snapshot tables (sorted and indexed here)."""
        accounts = _ordered(accounts, ACCOUNT_COLUMN)
        transactions = _ordered(transactions, ACCOUNT_COLUMN, "event_time")
        devices = _ordered(devices, "device_key")
        idx = {"account": Index.sorted_column(accounts.column(ACCOUNT_COLUMN))}
        idx["account_transactions"] = Index.sorted_column(transactions.column(ACCOUNT_COLUMN))
        if transactions.num_rows:
            # rows are by account, newest first: a stable sort keeps a transaction's newest event first
            idx["transaction"] = Index.build(transactions.column(TRANSACTION_COLUMN))
        if PHONE_COLUMN in accounts.column_names:
            idx["phone"] = Index.build(accounts.column(PHONE_COLUMN))
        if devices.num_rows:
            idx["device"] = Index.sorted_column(devices.column("device_key"))
            ids = devices.column("device_ids").combine_chunks()
            parents = pc.list_parent_indices(ids).to_numpy(zero_copy_only=False).astype(np.int64)
            idx["device_alias"] = Index.of(pc.list_flatten(ids), parents)
        queues = {"account": _Queue.build(accounts), "transaction": _Queue.build(transactions)}
        cols = {"accounts": readers(accounts), "transactions": readers(transactions), "devices": readers(devices)}
        return cls(refs, ident, accounts, transactions, devices, datetime.now().astimezone(), idx, cols, queues)

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
        head = read_rows(self._cols["accounts"], rows[:1], _ACCOUNT_FIELDS) or [dict.fromkeys(_ACCOUNT_FIELDS)]
        transactions = read_rows(self._cols["transactions"], txns[: max(0, recent)], _TXN_FIELDS)
        return {"account_id_pid": account_pid, **head[0], "transactions": transactions, "transactions_total": len(txns)}

    def transaction(self, transaction_pid: str) -> dict[str, Any] | None:
        """The transaction's score (its newest event's, if it has several), or None."""
        rows = self._find("transaction", transaction_pid)
        if len(rows) == 0:
            return None
        return read_rows(self._cols["transactions"], rows[:1], (*_TXN_FIELDS, "model_kind", "scored_at"))[0]

    def device_key_of(self, pid: str) -> str | None:
        """The device key of a device known by ``pid``: its key, or any of its identifier pseudonyms."""
        if len(self._find("device", pid)):
            return pid
        rows = self._find("device_alias", pid)
        return None if len(rows) == 0 else self._cols["devices"]["device_key"][int(rows[0])]

    def device(self, device_pid: str, limit: int = DEVICE_ACCOUNTS) -> dict[str, Any] | None:
        """The device's signals and the accounts seen on it, riskiest first (at most ``limit``), with their
        latest account scores; None when the device is unknown."""
        key = self.device_key_of(device_pid)
        if key is None:
            return None
        rows = self._find("device", key)
        out = read_rows(self._cols["devices"], rows[:1], _DEVICE_FIELDS)[0]
        edges = read_rows(self._cols["devices"], rows, [*_EDGE_FIELDS, *_EDGE_TIMES])
        accounts = []
        for edge in edges:
            found = self._find("account", edge["account_id_pid"])
            score = read_rows(self._cols["accounts"], found[:1], _SCORE_FIELDS) or [dict.fromkeys(_SCORE_FIELDS)]
            named = {new: edge[old] for old, new in {**_EDGE_FIELDS, **_EDGE_TIMES}.items()}
            accounts.append(named | score[0])
        accounts.sort(key=lambda a: (a["score"] is None, -(a["score"] or 0.0), a["account_id_pid"]))
        return out | {"accounts": accounts[: max(0, limit)], "accounts_total": len(accounts)}

    def phone_accounts(self, phone_pid: str) -> list[str]:
        """The accounts whose current phone number has the pseudonym ``phone_pid``."""
        rows = self._find("phone", phone_pid)
        return sorted(self._cols["accounts"][ACCOUNT_COLUMN][int(i)] for i in rows)

    def queue(
        self, kind: str, level: str | None = None, day: date | None = None, offset: int = 0, limit: int = 50
    ) -> dict[str, Any]:
        """One page of a day's riskiest accounts or transactions (``day`` None: the newest day), highest score
        first, optionally of one level, with the total for pagination."""
        if kind not in QUEUE_KINDS:
            raise ValueError(f"unknown queue kind {kind!r} (known: {', '.join(QUEUE_KINDS)})")
        if offset < 0 or limit < 0:
            raise ValueError("offset and limit must not be negative")
        table = self._cols["accounts" if kind == "account" else "transactions"]
        shown, total, rows = self._queues[kind].page(level, day, offset, limit)
        columns = (ACCOUNT_COLUMN, *_ACCOUNT_FIELDS) if kind == "account" else (*_TXN_FIELDS, "model_kind")
        return {
            "kind": kind,
            "day": None if shown is None else shown.isoformat(),
            "level": level,
            "offset": offset,
            "limit": limit,
            "total": total,
            "items": read_rows(table, rows, columns),
        }

    # -- masked references ------------------------------------------------------------------------------
    def ref(self, kind: str, pid: str) -> str:
        """The masked reference of a pseudonym of ``kind`` (account, transaction, device)."""
        return self.refs.ref(kind, pid)

    def by_ref(self, kind: str, ref: str) -> dict[str, Any] | None:
        """The answer for a reference of ``kind`` (account, transaction, device): what :meth:`account`,
        :meth:`transaction` or :meth:`device` answers for its pseudonym; None if it names nothing here."""
        pid = self.refs.pid(kind, ref)
        return None if pid is None else getattr(self, kind)(pid)

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
        self._paths = _paths(serving_dir)
        self._refs = refs
        self._wait = wait
        self._swap = threading.Lock()  # one build at a time
        self._starting = threading.Lock()
        self._building: threading.Thread | None = None
        self._view = ServingView.load(serving_dir, refs)

    @classmethod
    def of(cls, settings: Settings, wait: bool = True) -> LiveView:
        """The live view of the settings' serving folder, references under the current pseudonym key."""
        return cls(settings.serving_dir, Refs(load_pseudonym_key(settings)), wait)

    def fresh(self) -> ServingView | None:
        """The loaded view if no snapshot changed since (a stat of each file): never blocks on a load."""
        view = self._view
        return view if identity(self.serving_dir, self._paths) == view.identity else None

    def current(self) -> ServingView:
        """The newest complete view (see the module's docstring for when a new one is seen)."""
        view = self.fresh()
        if view is not None:
            return view
        view = self._view
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
            if identity(self.serving_dir, self._paths) != view.identity:
                view = ServingView.load(self.serving_dir, self._refs)
                self._view = view  # one reference swap: readers see the old view or the new one
            return view
