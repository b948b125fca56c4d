"""The landing zone: raw batches as received. The only store that holds raw identifiers.

It is read by ingest and emptied by retention: a processed batch's file is removed once the short
landing retention has passed. Whatever else lies in landing (dot-files being written, files of an
unsupported name, files set aside in ``failed/`` because they could not be ingested, links) is a
*stray*: never read by ingest, and removed once it is older than the landing retention. A link that
leads outside landing is never followed.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.store import warehouse
from devicerisk.store.files import write_atomic

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
TELEMETRY = "telemetry"
LABELS = "labels"
FAILED = "failed"  # files set aside: they could not be ingested
SUFFIXES = (".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz")


def content_digest() -> hashlib._Hash:
    """A fresh hash of a batch's bytes; :func:`batch_id_of_digest` turns it into the batch id."""
    return hashlib.sha256()


def batch_id_of_digest(digest: hashlib._Hash) -> str:
    """The content id of the bytes fed to ``digest``."""
    return digest.hexdigest()[:32]


def batch_id_of(raw: bytes) -> str:
    """The content id of a batch file's bytes."""
    return batch_id_of_digest(hashlib.sha256(raw))


def batch_id_of_file(path: Path) -> str:
    """The content id of a landing file, read in chunks."""
    digest = content_digest()
    for chunk in read_chunks(path):
        digest.update(chunk)
    return batch_id_of_digest(digest)


def read_chunks(path: Path, first: int = _CHUNK, size: int = _CHUNK) -> Iterator[bytes]:
    """A landing file's bytes as received: ``first`` bytes, then ``size`` at a time (memory stays bounded)."""
    with path.open("rb") as fh:
        chunk = fh.read(first)
        while chunk:
            yield chunk
            chunk = fh.read(size)


def file_version(path: Path) -> tuple[int, int]:
    """(size, modification time in ns): changes when a file is replaced."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def read_json_typed(path: Path, columns: dict[str, str]) -> pa.Table | None:
    """A landing NDJSON file (plain or gzip) read by DuckDB into typed ``columns``, or None if it cannot.

    DuckDB reads with several threads and fails the whole file on malformed JSON, invalid UTF-8,
    duplicate keys or out-of-range numbers; the caller then falls back to a record-by-record path.
    """
    con = duckdb.connect(":memory:")
    try:
        query = "SELECT * FROM read_json($path, format = 'newline_delimited', columns = $columns)"
        return con.sql(query, params={"path": str(path), "columns": columns}).to_arrow_table()
    except duckdb.Error as err:
        log.info("DuckDB could not read %s whole (%s); records are checked one by one", path.name, type(err).__name__)
        return None
    finally:
        con.close()


def pending_files(landing_dir: Path, kind: str = TELEMETRY) -> list[Path]:
    """Landing files in name order; files being written (dot-prefixed) and links leading outside landing
    are not listed."""
    folder = landing_dir / kind
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.name.endswith(SUFFIXES) and not _leads_out(p, landing_dir)
    )


def write_label_file(landing_dir: Path, lines: list[bytes], name: str) -> Path:
    """Land label records (NDJSON lines) as ``labels/<name>.ndjson`` for label ingest: written to a dot-file and
    renamed, so ingest never reads a part of it. Landing holds raw ids, and its retention removes the file."""
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        raise ValueError("a label file's name is one plain name")
    path = landing_dir / LABELS / f"{name}.ndjson"
    write_atomic(path, b"".join(line.rstrip(b"\n") + b"\n" for line in lines), mode=0o600)
    return path


def _leads_out(path: Path, landing_dir: Path) -> bool:
    """Whether ``path`` is a link whose target lies outside landing (or cannot be resolved)."""
    if not path.is_symlink():
        return False
    try:
        return not path.resolve(strict=True).is_relative_to(landing_dir.resolve())
    except (OSError, RuntimeError):  # dangling, or a loop
        return True


def outside_links(landing_dir: Path, kind: str = TELEMETRY) -> list[Path]:
    """Links in a landing folder that lead outside landing: refused, never read."""
    folder = landing_dir / kind
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _leads_out(p, landing_dir))


def file_id(path: Path) -> str:
    """The batch id of a landing file, also of one that cannot be read: a link is known by its name and
    target (never read through), an unreadable file by its name."""
    if path.is_symlink():
        return batch_id_of(b"link\0" + path.name.encode() + b"\0" + os.fsencode(os.readlink(path)))
    try:
        return batch_id_of_file(path)
    except OSError:
        return batch_id_of(b"unreadable\0" + path.name.encode())


def set_aside(path: Path, batch_id: str) -> Path | None:
    """Move a landing file that cannot be ingested to ``failed/`` (a link is moved, not its target).

    Ingest no longer lists it, so a re-run goes on with the next batch; retention removes it like any
    stray. Moving it back into its folder has it ingested again. Returns where it went (None if it could not).
    """
    target = path.parent.parent / FAILED / f"{batch_id}-{path.name}"
    try:
        target.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(path, target)
    except OSError as err:
        log.error("could not set aside landing file %s (%s)", path.name, type(err).__name__)
        return None
    return target


def purge_processed(
    landing_dir: Path, warehouse_path: Path, retention: timedelta, now: datetime, keep: frozenset[Path] = frozenset()
) -> list[str]:
    """Delete landing files of batches committed longer than ``retention`` ago, except ``keep`` (files a legal
    hold keeps); returns their batch ids.

    A file is deleted only if its content still hashes to the committed batch, so a new file that
    reuses an old name is never lost.
    """
    removed: list[str] = []
    for row in _due(warehouse_path, retention, now):
        path = landing_dir / TELEMETRY / row["file_name"]
        if path in keep:
            continue
        if path.exists() and batch_id_of_file(path) == row["batch_id"]:
            path.unlink()
            log.info("removed landing file of batch %s after its retention", row["batch_id"])
        removed.append(row["batch_id"])
    if removed:
        warehouse.mark_landing_removed(warehouse_path, removed, now)
    return removed


def _due(warehouse_path: Path, retention: timedelta, now: datetime) -> list[dict[str, str]]:
    """Batches committed longer than ``retention`` ago whose landing file has not been removed (a failed file
    was set aside: it is a stray)."""
    ledger = warehouse.ledger(warehouse_path)
    due = ledger.filter(
        pc.and_(
            pc.and_(pc.is_null(ledger.column("landing_removed_at")), pc.is_null(ledger.column("failure"))),
            pc.less_equal(ledger.column("committed_at"), now - retention),
        )
    )
    return due.select(["batch_id", "file_name"]).to_pylist()


def expired_files(landing_dir: Path, warehouse_path: Path, retention: timedelta, now: datetime) -> list[Path]:
    """Landing files of batches whose landing retention has passed and that are still on disk."""
    paths = [landing_dir / TELEMETRY / row["file_name"] for row in _due(warehouse_path, retention, now)]
    return [p for p in paths if p.exists()]


def ingested(warehouse_path: Path, path: Path) -> bool:
    """Whether the ledger has the batch in this landing file."""
    entry = warehouse.ledger_entry(warehouse_path, batch_id_of_file(path))
    return entry is not None and entry.committed


def remove_processed(landing_dir: Path, warehouse_path: Path, path: Path, now: datetime) -> bool:
    """Delete a landing file early if the ledger has its batch (an erasure); returns whether it went."""
    batch_id = batch_id_of_file(path)
    entry = warehouse.ledger_entry(warehouse_path, batch_id)
    if entry is None or not entry.committed:
        return False
    path.unlink()
    warehouse.mark_landing_removed(warehouse_path, [batch_id], now)
    log.info("removed landing file of batch %s early: it held a subject whose data was erased", batch_id)
    return True


# -- landing kinds without a ledger: label deliveries, and the synthetic ground truth of the demo -------------
TRUTH = "truth"
UNLEDGERED = (LABELS, TRUTH)


def unledgered_files(landing_dir: Path) -> list[Path]:
    """Raw files of the landing kinds no ingest ledger tracks (labels, truth)."""
    return [p for kind in UNLEDGERED for p in pending_files(landing_dir, kind)]


def expired_unledgered(landing_dir: Path, retention: timedelta, now: datetime) -> list[Path]:
    """Unledgered landing files older than ``retention`` (by when they were delivered: their modification time)."""
    return [
        p for p in unledgered_files(landing_dir) if now - datetime.fromtimestamp(p.stat().st_mtime, UTC) > retention
    ]


def purge_unledgered(
    landing_dir: Path, retention: timedelta, now: datetime, keep: frozenset[Path] = frozenset()
) -> int:
    """Delete unledgered landing files older than ``retention``, except ``keep``; returns how many went."""
    expired = [p for p in expired_unledgered(landing_dir, retention, now) if p not in keep]
    for path in expired:
        path.unlink()
        log.info("removed landing file %s/%s after its retention", path.parent.name, path.name)
    return len(expired)


# -- strays: files in landing that no ingest reads ---------------------------------------------------------------
def stray_files(landing_dir: Path) -> list[Path]:
    """Every file in landing that is not a batch of a landing kind: dot-files (being written), files of an
    unsupported name or outside the kind folders, links that lead outside landing, and ``failed/``."""
    batches = {p for kind in (TELEMETRY, *UNLEDGERED) for p in pending_files(landing_dir, kind)}
    out: list[Path] = []
    for root, folders, files in os.walk(landing_dir):  # links to folders are listed, never followed
        here = Path(root)
        out += [here / name for name in files if here / name not in batches]
        out += [here / name for name in folders if (here / name).is_symlink()]
    return sorted(out)


def stray_kind(path: Path, landing_dir: Path) -> str:
    """What a stray is, in words (for the ingest report)."""
    where = path.relative_to(landing_dir)
    if where.parts[0] == FAILED:
        return "set aside: it could not be ingested"
    if path.is_symlink():
        return "a link that leads outside landing" if _leads_out(path, landing_dir) else "a link to no batch file"
    if path.name.startswith("."):
        return "being written (a dot-file)"
    if len(where.parts) == 2 and where.parts[0] in (TELEMETRY, *UNLEDGERED):
        return "not a batch: unsupported name (expected " + ", ".join(SUFFIXES) + ")"
    return "not in a landing folder (" + ", ".join((TELEMETRY, *UNLEDGERED)) + ")"


def _modified_at(path: Path) -> datetime:
    """When a file (or a link itself) was last written: when it was delivered, or set aside."""
    return datetime.fromtimestamp(path.lstat().st_mtime, UTC)


def expired_strays(landing_dir: Path, retention: timedelta, now: datetime) -> list[Path]:
    """Strays older than ``retention``, by their modification time (a dot-file's last write)."""
    return [p for p in stray_files(landing_dir) if now - _modified_at(p) > retention]


def purge_strays(landing_dir: Path, retention: timedelta, now: datetime, keep: frozenset[Path] = frozenset()) -> int:
    """Delete strays older than ``retention``, except ``keep``; returns how many went."""
    expired = [p for p in expired_strays(landing_dir, retention, now) if p not in keep]
    for path in expired:
        path.unlink(missing_ok=True)  # a link goes, never its target
        log.info("removed stray landing file %s after the landing retention", path.relative_to(landing_dir))
    return len(expired)


def readable_strays(paths: list[Path]) -> list[Path]:
    """The regular files among strays: those whose bytes may be read (never through a link, never a pipe)."""
    return [p for p in paths if not p.is_symlink() and p.is_file()]


def remove_lines(path: Path, drop: Callable[[Sequence[bytes]], Sequence[bool]]) -> int:
    """Rewrite an NDJSON landing file without the lines ``drop`` selects (given every line at once, it says which
    go), keeping its delivery time; returns how many went (a file left empty is removed)."""
    packed = path.name.endswith(".gz")
    raw = path.read_bytes()
    lines = [line for line in (gzip.decompress(raw) if packed else raw).splitlines() if line.strip()]
    kept = [line for line, gone in zip(lines, drop(lines), strict=True) if not gone]
    gone = len(lines) - len(kept)
    if gone:
        stat = path.stat()
        if kept:
            data = b"".join(line + b"\n" for line in kept)
            write_atomic(path, gzip.compress(data) if packed else data)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        else:
            path.unlink()
    return gone


def read_truth(landing_dir: Path) -> pa.Table | None:
    """The synthetic generator's ground truth (raw ids, like the rest of landing; readers pseudonymise them
    in memory at once): (subject_type, subject_id, fraud, scenario) of every row, or None without the file."""
    path = landing_dir / TRUTH / "scenarios.ndjson"
    if not path.exists():
        return None
    con = duckdb.connect(":memory:")
    try:
        query = """
            SELECT subject_type, subject_id, fraud, scenario FROM read_json($path, format = 'newline_delimited',
                columns = {subject_type: 'VARCHAR', subject_id: 'VARCHAR', fraud: 'BOOLEAN', scenario: 'VARCHAR'})
        """
        return con.sql(query, params={"path": str(path)}).to_arrow_table()
    finally:
        con.close()
