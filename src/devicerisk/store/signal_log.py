"""The signal log: the lake's ``events`` as fixed-width signal rows in memory-mappable Arrow files.

Decoding the wide events table takes seconds for a few million events; the same events as signal rows
(about 105 bytes each) are read from uncompressed Arrow IPC files by mapping them, in milliseconds. The
rows are the risk layer's: it hands this module a :class:`RowBuilder` (``risk.signals.BUILDER``), whose
fingerprint tells whether a stored log was built by the same rules. The log is a derived cache of the
lake. It covers one Delta version of ``events`` and records the table's Parquet files it was built from:
a refresh turns only the files added since into a new segment, and rebuilds when any covered file is
gone (a delete, a purge, an erasure, clustering) or when the builder's rules changed.

``signals_dir`` holds ``manifest.json`` (replaced atomically, last, so a crash mid-refresh leaves the
old log valid) and immutable ``seg-*.arrow`` segments; files the manifest does not name are leftovers
of an interrupted refresh, removed by the next. Refreshes and drops hold the folder's lock; readers
take none: a reader that finds a segment gone reads the new manifest.

The rows hold pseudonyms (on transactions) and hashes of pseudonyms: personal data, like the lake.
Every path that deletes or rewrites lake rows calls :func:`drop`, and the next refresh rebuilds the
log from what is left, so it never holds a row the lake no longer has.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.store import lake, lake_scan
from devicerisk.store.files import LOCK_NAME, locked, write_atomic
from devicerisk.store.rows import TRANSACTION_COLUMN, SubjectRows

MANIFEST = "manifest.json"
#: More segments than this are consolidated into one, ordered by ``t``, so a read stays a few mappings.
MAX_SEGMENTS = 8
_BATCH_ROWS = 1 << 20  # rows per record batch in a segment: few, long, contiguous columns
_READ_TRIES = 5
_FORMAT = 1


@dataclass(frozen=True, slots=True)
class RowBuilder:
    """How lake events become signal rows: the risk layer's rules, handed to the log.

    ``rules`` is everything the rows depend on (the signal SQL, lookup tables): a log built by other rules,
    or by another layout of this module, is rebuilt, never read.
    """

    rules: str
    columns: Collection[str]  # the events columns ``build`` reads
    build: Callable[[lake_scan.Snapshot], pa.Table]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{_FORMAT}\n{self.rules}".encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Refresh:
    """What one refresh did."""

    version: int | None  # the events version the log now covers (None: the lake has no events table)
    rows_added: int
    rows_total: int
    rebuilt: bool
    seconds: float


@dataclass(frozen=True, slots=True)
class LogView:
    """The log as read: the covered lake version and the signal rows, memory-mapped."""

    version: int
    table: pa.Table
    runs: tuple[int, ...]  # the row at which each segment starts; rows are ordered by ``t`` within one
    ordered: bool  # the whole table is ordered by ``t`` (no segment starts before the one before it ends)


@dataclass(frozen=True, slots=True)
class _Segment:
    name: str
    rows: int
    t_min: int | None
    t_max: int | None


@dataclass(frozen=True, slots=True)
class _Manifest:
    version: int
    files: frozenset[str] | None  # Parquet files relative to the table; None: built through the Delta dataset
    segments: tuple[_Segment, ...]
    fingerprint: str

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.segments)


def _load(signals_dir: Path) -> _Manifest | None:
    try:
        doc = orjson.loads((signals_dir / MANIFEST).read_bytes())
    except FileNotFoundError:
        return None
    files = None if doc["files"] is None else frozenset(doc["files"])
    segments = tuple(_Segment(**s) for s in doc["segments"])
    return _Manifest(int(doc["version"]), files, segments, str(doc["fingerprint"]))


def _save(signals_dir: Path, manifest: _Manifest) -> None:
    doc = {
        "format": _FORMAT,
        "fingerprint": manifest.fingerprint,
        "table": lake.EVENTS,
        "version": manifest.version,
        "files": None if manifest.files is None else sorted(manifest.files),
        "segments": [dataclasses.asdict(s) for s in manifest.segments],
    }
    write_atomic(signals_dir / MANIFEST, orjson.dumps(doc))


def _map(path: Path) -> pa.Table:
    """A segment's rows, memory-mapped (the mapping lives as long as the table's buffers)."""
    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()


def _write_segment(signals_dir: Path, rows: pa.Table, version: int) -> _Segment:
    """``rows`` as a new segment: written under a temporary name, synced, then renamed."""
    name = f"seg-{version:010d}-{uuid.uuid4().hex[:12]}.arrow"
    tmp = signals_dir / f".{name}.tmp"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, rows.schema) as writer:
        for offset in range(0, rows.num_rows, _BATCH_ROWS):  # DuckDB's small chunks joined: fewer batches to map
            writer.write_table(rows.slice(offset, _BATCH_ROWS).combine_chunks())
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, signals_dir / name)
    low, high = pc.min_max(rows.column("t")).values()
    return _Segment(name, rows.num_rows, low.as_py(), high.as_py())


def _remove_strays(signals_dir: Path, keep: _Manifest | None) -> None:
    """Remove every file but the lock, the manifest and the segments ``keep`` names."""
    names = {LOCK_NAME, MANIFEST} | ({s.name for s in keep.segments} if keep is not None else set())
    for path in signals_dir.iterdir():
        if path.name not in names:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _relative(uri: str, root: str) -> str:
    return os.path.relpath(uri.removeprefix("file://"), root)


def _lake_files(lake_dir: Path, snap: lake_scan.Snapshot) -> dict[str, str]:
    """The snapshot's Parquet files: path relative to the table -> the path to scan."""
    root = os.path.abspath(lake.table_path(lake_dir, lake.EVENTS))
    return {_relative(uri, root): uri for uri in snap.files}


def _scannable(files: list[str], columns: Collection[str]) -> bool:
    """Whether DuckDB reads every one of ``columns`` from ``files`` (else the snapshot would fall back to its
    whole Delta dataset, not these files)."""
    con = duckdb.connect(":memory:")
    try:
        return set(columns) <= set(con.read_parquet(files, union_by_name=True).columns)
    finally:
        con.close()


def _append(
    signals_dir: Path, old: _Manifest, snap: lake_scan.Snapshot, files: dict[str, str], builder: RowBuilder
) -> _Manifest | None:
    """``old`` brought up to ``snap`` by a segment of the files added since; None when only a rebuild can."""
    if old.files is None or not snap.files or not old.files <= files.keys():
        return None  # a covered file is gone (or there is no file list to compare): rows may have gone with it
    added = [files[f] for f in sorted(files.keys() - old.files)]
    segments = old.segments
    if added:
        if not _scannable(added, builder.columns):
            return None
        rows = builder.build(dataclasses.replace(snap, files=tuple(added)))
        if segments and rows.schema != pa.ipc.open_file(pa.memory_map(str(signals_dir / segments[0].name))).schema:
            return None  # the signal columns changed type: segments must concatenate without a copy
        if rows.num_rows:
            segments += (_write_segment(signals_dir, rows, snap.version),)
    manifest = _Manifest(snap.version, frozenset(files), segments, old.fingerprint)
    if len(segments) > MAX_SEGMENTS:
        everything = pa.concat_tables([_map(signals_dir / s.name) for s in segments]).sort_by("t")
        manifest = dataclasses.replace(manifest, segments=(_write_segment(signals_dir, everything, snap.version),))
    return manifest


def refresh(lake_dir: Path, signals_dir: Path, builder: RowBuilder) -> Refresh:
    """Bring the log up to the lake's current ``events`` version: a new segment of the files added since,
    or a rebuild when any file it was built from is gone or ``builder``'s rules are not the log's."""
    start = time.perf_counter()
    with locked(signals_dir):
        stored = _load(signals_dir)
        _remove_strays(signals_dir, stored)  # an interrupted refresh's segment, never named by a manifest
        old = stored if stored is not None and stored.fingerprint == builder.fingerprint else None
        snap = lake_scan.snapshot(lake_dir, lake.EVENTS)
        if snap is None:  # no events table (any more): no log
            (signals_dir / MANIFEST).unlink(missing_ok=True)
            _remove_strays(signals_dir, None)
            return Refresh(None, 0, 0, False, time.perf_counter() - start)
        if old is not None and old.version == snap.version:
            return Refresh(snap.version, 0, old.rows, False, time.perf_counter() - start)
        files = _lake_files(lake_dir, snap)
        manifest = None if old is None else _append(signals_dir, old, snap, files, builder)
        rebuilt = manifest is None
        if manifest is None:  # a file list only when DuckDB scanned the files themselves (else the dataset)
            segment = _write_segment(signals_dir, builder.build(snap), snap.version)
            manifest = _Manifest(
                snap.version, frozenset(files) if snap.files else None, (segment,), builder.fingerprint
            )
        _save(signals_dir, manifest)
        _remove_strays(signals_dir, manifest)
    added = manifest.rows - (0 if rebuilt or old is None else old.rows)
    return Refresh(snap.version, added, manifest.rows, rebuilt, time.perf_counter() - start)


def read(signals_dir: Path, builder: RowBuilder | None) -> LogView | None:
    """The log's rows, memory-mapped, with the lake version they cover; None when there is no log, or (with a
    ``builder``) none built by its rules. Without one, any log is read, as erasure counts rows."""
    for _ in range(_READ_TRIES):
        manifest = _load(signals_dir)
        if manifest is None or (builder is not None and manifest.fingerprint != builder.fingerprint):
            return None
        try:
            tables = [_map(signals_dir / s.name) for s in manifest.segments]
        except FileNotFoundError:
            continue  # a refresh replaced the log since the manifest was read: read the new one
        runs = tuple(accumulate((s.rows for s in manifest.segments[:-1]), initial=0))
        ends = [(s.t_min, s.t_max) for s in manifest.segments if s.rows]
        ordered = all(ends[i - 1][1] <= ends[i][0] for i in range(1, len(ends)))  # type: ignore[operator]
        return LogView(manifest.version, pa.concat_tables(tables), runs, ordered)
    raise RuntimeError(f"the signal log at {signals_dir} kept changing while it was read")


def drop(signals_dir: Path) -> int:
    """Remove the whole log (segments, manifest, leftovers); returns the rows it held. The next refresh
    rebuilds it from the lake as it is then."""
    if not signals_dir.is_dir():
        return 0
    with locked(signals_dir):  # waits for a running refresh: it may be building from rows now deleted
        manifest = _load(signals_dir)
        (signals_dir / MANIFEST).unlink(missing_ok=True)  # from here readers see no log
        _remove_strays(signals_dir, None)
    return 0 if manifest is None else manifest.rows


_SUBJECT_SQL = f"""
SELECT count(*) FROM sig
WHERE acct IN (SELECT hash(unnest(CAST($accounts AS VARCHAR[]))))
   OR account_id_pid IN (SELECT unnest(CAST($accounts AS VARCHAR[])))
   OR txn IN (SELECT hash(unnest(CAST($transactions AS VARCHAR[]))))
   OR {TRANSACTION_COLUMN} IN (SELECT unnest(CAST($transactions AS VARCHAR[])))
   OR (acct = 0 AND dev IN (SELECT hash(unnest(CAST($devices AS VARCHAR[])))))
"""


def _subject_count(rows: pa.Table, subject: SubjectRows) -> int:
    ids = {c: v for c, v in subject.identifiers.items() if c != TRANSACTION_COLUMN}
    params = {
        "accounts": sorted(subject.accounts),
        "transactions": sorted(subject.identifiers.get(TRANSACTION_COLUMN, ())),
        "devices": sorted(v for vs in ids.values() for v in vs),
    }
    con = duckdb.connect(":memory:")
    try:
        con.register("sig", rows.select(["acct", "dev", "txn", "account_id_pid", TRANSACTION_COLUMN]))
        return int(con.execute(_SUBJECT_SQL, params).fetchall()[0][0])
    finally:
        con.close()


def subject_rows(signals_dir: Path, subject: SubjectRows, *, on_disk: bool = False) -> int:
    """Signal rows of ``subject``: theirs by account or transaction (hash or pseudonym), or without an account
    on one of their devices (by the device key the row carries).

    ``on_disk`` counts every file in the folder, segments no manifest names included; a leftover that is
    not a readable segment counts as one row, since it cannot be shown to hold none.
    """
    if not on_disk:
        view = read(signals_dir, None)
        return 0 if view is None else _subject_count(view.table, subject)
    if not signals_dir.is_dir():
        return 0
    n = 0
    for path in sorted(p for p in signals_dir.iterdir() if p.name not in (LOCK_NAME, MANIFEST)):
        try:
            n += _subject_count(_map(path), subject)
        except (pa.ArrowInvalid, OSError):
            n += 1
    return n


def stale_rows(lake_dir: Path, signals_dir: Path) -> int:
    """Rows of a log built from lake files the lake no longer has (0: the log is current or behind, or absent)."""
    manifest = _load(signals_dir)
    if manifest is None:
        return 0
    snap = lake_scan.snapshot(lake_dir, lake.EVENTS)
    if snap is None:
        return manifest.rows
    if manifest.files is None or not snap.files:
        return 0 if manifest.version == snap.version else manifest.rows
    return 0 if manifest.files <= _lake_files(lake_dir, snap).keys() else manifest.rows
