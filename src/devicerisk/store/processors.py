"""Entrusted processing (4.4): the register of processors and the extracts made for them.

Everything lives under ``entrust/`` in the data directory:

- ``register.json``: one entry per entrustment (processor, purpose, scope, expiry, status, where its extract is,
  and how it ended: when, by whom, and who at the processor confirmed the deletion). Rewritten atomically under
  the folder's lock, so a reader sees the old register or the new one and two writers never lose an entry; an
  entry also lists the erasures (6.2.2) that removed a data subject's rows from its extract since it was made;
- ``extracts/<extract_id>/``: the extract's Parquet file and ``manifest.json``, written last, so a folder with a
  manifest holds a whole extract.

Nothing here holds a raw identifier or key material: the extract's pseudonyms are re-keyed for the processor, and
the register keeps the salt of its key and the key's id, never the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from devicerisk.store.files import locked, write_atomic

ENTRUST = "entrust"
REGISTER = "register.json"
EXTRACTS = "extracts"
MANIFEST = "manifest.json"
ACTIVE = "active"
ENDED = "ended"
#: A processor's name: a short name, as the audit trail takes it (no path separator, no leading dot).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
_EXTRACT_ID = re.compile(r"ext-\d{8}T\d{6}Z-[0-9a-f]{6}")


class RegisterError(ValueError):
    """A register entry that may not be written (a malformed processor name)."""


@dataclass(frozen=True, slots=True)
class Deletion:
    """How an entrustment ended: the local extract removed, and the processor's confirmation of its own deletion."""

    at: datetime
    by: str  # who revoked it (the retention flow, at expiry)
    reason: str  # "revoked" (``entrust end``) or "expired" (the daily purge)
    files_removed: int
    confirmed_by: str | None = None  # who at the processor confirmed the deletion
    confirmed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Erasure:
    """A data subject's rows removed from an extract kept here by an erasure (6.2.2): a processor that already holds
    a copy must remove them too, so the request is forwarded to it."""

    at: datetime
    request_id: str  # the data subject request (its id names no identifier)
    rows: int


@dataclass(frozen=True, slots=True)
class Entrustment:
    """One register entry: what was entrusted to whom, for what, until when, and how it ended."""

    extract_id: str
    processor: str
    purpose: str
    event_types: tuple[str, ...]
    fields: tuple[str, ...]  # contract field paths
    columns: tuple[str, ...]  # the extract's columns
    rekeyed: tuple[str, ...]  # columns re-keyed in the processor's domain
    window_from: datetime | None
    window_to: datetime | None
    created_at: datetime
    created_by: str
    until: date  # the last day the processor may hold the extract
    location: str  # the extract's folder, relative to the data directory (shown; files are found by the id)
    rows: int
    key_domain: str  # the id of the processor's key, never the key
    lake_key_ids: tuple[str, ...]  # the pseudonym keys of the lake rows it was made from
    salt: str  # hex: with the pseudonym key it re-derives the processor's key (to read a processor's answer)
    status: str = ACTIVE
    deletion: Deletion | None = None
    erasures: tuple[Erasure, ...] = ()  # subjects' rows removed since the export, oldest first

    def expired(self, today: date) -> bool:
        """Whether the extract is past its last day."""
        return today > self.until


def check_processor(name: str) -> str:
    """``name`` if it is a valid processor name, else :class:`RegisterError`."""
    if not _NAME.fullmatch(name):
        raise RegisterError(
            f"processor name {name!r} is not a short name (letters, digits, '_', '.', '-'; at most 64 characters)"
        )
    return name


def entrust_dir(data_dir: Path) -> Path:
    """Where the register and the extracts of a data directory live."""
    return data_dir / ENTRUST


def extract_folder(data_dir: Path, extract_id: str) -> Path:
    """The folder of one extract; an id not of :func:`new_extract_id`'s form (an edited register) is refused, so
    no path outside the extracts folder is ever written or deleted."""
    if not _EXTRACT_ID.fullmatch(extract_id):
        raise RegisterError(f"not an extract id: {extract_id!r}")
    return entrust_dir(data_dir) / EXTRACTS / extract_id


def new_extract_id(now: datetime) -> str:
    """A fresh extract id: its UTC time, then random hex (two exports in one second do not collide)."""
    return f"ext-{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def new_salt() -> str:
    """A random salt for a processor's key, as hex."""
    return secrets.token_hex(16)


# -- the register --------------------------------------------------------------------------------------------------
def _encode(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def _to_json(entry: Entrustment) -> dict[str, Any]:
    nested = ("deletion", "erasures")
    out = {f.name: _encode(getattr(entry, f.name)) for f in dataclasses.fields(entry) if f.name not in nested}
    deletion = entry.deletion
    out["deletion"] = None if deletion is None else {k: _encode(v) for k, v in dataclasses.asdict(deletion).items()}
    out["erasures"] = [{k: _encode(v) for k, v in dataclasses.asdict(e).items()} for e in entry.erasures]
    return out


_TUPLES = ("event_types", "fields", "columns", "rekeyed", "lake_key_ids")


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _from_json(raw: dict[str, Any]) -> Entrustment:
    values = {k: tuple(v) if k in _TUPLES else v for k, v in raw.items()}
    values |= {k: _time(values[k]) for k in ("window_from", "window_to", "created_at")}
    values["until"] = date.fromisoformat(values["until"])
    if (d := values.pop("deletion")) is not None:
        d = {**d, "at": datetime.fromisoformat(d["at"]), "confirmed_at": _time(d["confirmed_at"])}
    erasures = tuple(Erasure(**{**e, "at": datetime.fromisoformat(e["at"])}) for e in values.pop("erasures", []))
    return Entrustment(**values, deletion=None if d is None else Deletion(**d), erasures=erasures)


def _read(folder: Path) -> list[Entrustment]:
    path = folder / REGISTER
    if not path.exists():
        return []
    return [_from_json(e) for e in json.loads(path.read_text())["entrustments"]]


def register(data_dir: Path) -> list[Entrustment]:
    """Every entry of the register, oldest first (empty when nothing was ever entrusted)."""
    return _read(entrust_dir(data_dir))


@contextmanager
def updating(data_dir: Path) -> Iterator[list[Entrustment]]:
    """The register as a list to change in place, under the register's lock; written back atomically on exit
    (not when the block raises: a refused or failed change leaves the register as it was)."""
    folder = entrust_dir(data_dir)
    with locked(folder):
        entries = _read(folder)
        yield entries
        save(data_dir, entries)


def save(data_dir: Path, entries: list[Entrustment]) -> None:
    """Write the register atomically; only under :func:`updating` (which also calls it on exit), for a change that
    must be on record before the files it describes change."""
    for entry in entries:
        check_processor(entry.processor)
    doc = {"version": 1, "entrustments": [_to_json(e) for e in entries]}
    write_atomic(entrust_dir(data_dir) / REGISTER, json.dumps(doc, indent=1, sort_keys=True).encode())


# -- the extract files ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ExtractFile:
    """One file of an extract, as the manifest lists it."""

    name: str
    rows: int
    bytes: int
    sha256: str


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_table(folder: Path, name: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> ExtractFile:
    """Stream ``batches`` into the Parquet file ``name`` in ``folder`` (owner-only; renamed into place when whole)."""
    staged = stage_table(folder, name, schema, batches)
    replace_staged(folder, name)
    return staged


def _staged(folder: Path, name: str) -> Path:
    return folder / f".{name}.tmp"


def stage_table(folder: Path, name: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> ExtractFile:
    """Write ``batches`` as the next version of the file ``name``, beside it (flushed to disk); the file is
    unchanged until :func:`replace_staged`. Returns the new version as the manifest will list it."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = _staged(folder, name)
    rows = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        with pq.ParquetWriter(fh, schema, compression="zstd") as writer:
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
        fh.flush()
        os.fsync(fh.fileno())
    return ExtractFile(name, rows, tmp.stat().st_size, sha256_of(tmp))


def settle_staged(folder: Path, name: str, rows: int) -> bool:
    """Finish or drop a staged version of ``name`` that a run cut off left behind: it replaces the file when the
    register already counts its ``rows`` (the run recorded it, then stopped), else it is removed. Whether the file
    was replaced."""
    tmp = _staged(folder, name)
    if not tmp.exists():
        return False
    try:
        whole = pq.read_metadata(tmp).num_rows == rows
    except (OSError, pa.ArrowInvalid):  # cut off while it was written
        whole = False
    if whole:
        os.replace(tmp, folder / name)
    else:
        tmp.unlink()
    return whole


def replace_staged(folder: Path, name: str) -> None:
    """Make the staged version of ``name`` the file (an atomic rename); nothing to do if none is staged."""
    tmp = _staged(folder, name)
    if tmp.exists():
        os.replace(tmp, folder / name)


def row_count(folder: Path, name: str) -> int:
    """How many rows the extract file ``name`` holds (from its footer)."""
    return pq.read_metadata(folder / name).num_rows


def described(folder: Path, name: str) -> ExtractFile:
    """The extract file ``name`` as a manifest lists it, as it is on disk now."""
    path = folder / name
    return ExtractFile(name, row_count(folder, name), path.stat().st_size, sha256_of(path))


def read_batches(folder: Path, name: str) -> Iterator[pa.RecordBatch]:
    """The rows of the extract file ``name``, a batch at a time."""
    yield from pq.ParquetFile(folder / name).iter_batches()


def matching_rows(folder: Path, name: str, mask: Callable[[pa.Table], pa.Array]) -> int:
    """How many rows of the extract file ``name`` ``mask`` selects."""
    return int(pc.sum(mask(pq.read_table(folder / name))).as_py() or 0)


def stage_without(folder: Path, name: str, mask: Callable[[pa.Table], pa.Array]) -> ExtractFile | None:
    """Stage the extract file ``name`` without the rows ``mask`` selects (a non-null boolean per row), as
    :func:`stage_table` does; the staged version as the manifest will list it, or None when no row matched."""
    table = pq.read_table(folder / name)
    selected = mask(table)
    if not pc.any(selected).as_py():
        return None
    kept = table.filter(pc.invert(selected))
    return stage_table(folder, name, kept.schema, kept.to_batches())


def write_manifest(folder: Path, manifest: dict[str, Any]) -> Path:
    """Write the extract's manifest, last: its presence marks a whole extract."""
    path = folder / MANIFEST
    write_atomic(path, json.dumps(manifest, indent=1, sort_keys=True, default=_encode).encode())
    return path


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """An extract's manifest, if it has one."""
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def extract_files(folder: Path) -> list[Path]:
    """The files an extract's folder still holds (leftovers of an unfinished write included)."""
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def remove_extract(folder: Path) -> int:
    """Delete an extract's files and its folder; returns how many files were removed."""
    files = extract_files(folder)
    for path in files:
        path.unlink()
    for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True) if folder.is_dir() else []:
        sub.rmdir()
    if folder.is_dir():
        folder.rmdir()
    return len(files)
