"""Removing whole stores at the end of operation (5.1.3): inventory, removal, shredding of key files, and the
files a decommissioning leaves (its aggregates and its receipt).

Lake tables are removed outright, folder and transaction log together, rather than vacuumed first: a vacuum
removes only the files no version references, and here every version goes, so no reader or other store can
still reference them (the signal log and the serving snapshots, derived from the lake, go too). Nothing
follows a symbolic link: a link is removed, never what it points to.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from devicerisk.store.files import write_atomic

#: What a decommissioning writes under the data directory, and keeps there.
ANONYMISED = "anonymised"
RECEIPT_PREFIX = "decommission-receipt-"


def inventory(path: Path) -> tuple[int, int]:
    """Files and bytes at ``path`` (a file, a link or a folder tree; links are counted, never followed)."""
    if path.is_symlink() or path.is_file():
        return 1, path.lstat().st_size
    files = size = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            files += 1
            size += (Path(root) / name).lstat().st_size
    return files, size


def remove(path: Path) -> None:
    """Remove a file, a link (not its target) or a folder tree; a missing path is already removed."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path)


def remove_if_empty(folder: Path) -> None:
    """Remove ``folder`` if it is an empty folder (not a link)."""
    if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
        folder.rmdir()


def shred(path: Path) -> None:
    """Overwrite a file with random bytes, flush them to disk, then unlink it (key files and the API key store).

    On a copy-on-write or journalling file system, or an SSD that remaps blocks, the old blocks may survive the
    overwrite: the operator's documentation says so. The link is unlinked, never the file it points to."""
    if not path.is_symlink():
        size = path.stat().st_size
        with path.open("r+b") as fh:
            fh.write(secrets.token_bytes(max(size, 64)))
            fh.flush()
            os.fsync(fh.fileno())
    path.unlink()


def warehouse_rows(path: Path) -> dict[str, int]:
    """Rows per table of a warehouse file, read-only (an absent file has none)."""
    if not path.is_file():
        return {}
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY table_name").fetchall()]
        return {n: int(con.table(n).aggregate("count(*)").fetchall()[0][0]) for n in names}
    finally:
        con.close()


def write_aggregate(folder: Path, name: str, table: pa.Table) -> Path:
    """Write one anonymised aggregate as ``<name>.csv`` (owner-only); returns its path."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{name}.csv"
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink)
    write_atomic(path, sink.getvalue().to_pybytes())
    return path


def write_receipt(folder: Path, stem: str, receipt: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """Write the receipt's JSON and Markdown files (atomically, owner-only); returns their paths, JSON first."""
    js, md = folder / f"{stem}.json", folder / f"{stem}.md"
    write_atomic(js, json.dumps(receipt, indent=1, sort_keys=True, ensure_ascii=False).encode())
    write_atomic(md, markdown.encode())
    return js, md
