"""Outputs of data-subject requests under the requests folder: access exports and receipts.

Everything written here is for a person to read, so identifiers arrive already masked; the caller
masks with :mod:`devicerisk.privacy.masking`. Files are written atomically and owner-only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from devicerisk.store.files import write_atomic

RECEIPT = "receipt.json"
EXPORT = "export.json"


def folder(requests_dir: Path, request_id: str) -> Path:
    """Where a request's files go."""
    return requests_dir / request_id


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True, default=str, ensure_ascii=False).encode()


def _csv_ready(table: pa.Table) -> pa.Table:
    """``table`` in types CSV can hold: lists, structs and maps as JSON text, string views as strings."""
    for index, f in enumerate(table.schema):
        if pa.types.is_nested(f.type):
            cells = [None if v is None else _json_text(v) for v in table.column(index).to_pylist()]
            table = table.set_column(index, f.name, pa.array(cells, pa.string()))
        elif pa.types.is_string_view(f.type):
            table = table.set_column(index, f.name, table.column(index).cast(pa.string()))
    return table


def _json_text(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _clear(out: Path) -> None:
    """Remove what an earlier, unfinished export left, so the folder holds one export only (the receipt stays)."""
    if out.is_dir():
        for path in out.rglob("*"):
            if path.is_file() and path.name != RECEIPT:
                path.unlink()


def write_export(requests_dir: Path, request_id: str, tables: dict[str, pa.Table], summary: str) -> list[Path]:
    """Write each (masked) table as JSON and CSV, plus a one-file JSON of everything and a summary.

    ``export.json`` is written last: its presence marks a whole export (see :func:`export_counts`).
    """
    out = folder(requests_dir, request_id)
    _clear(out)
    written: list[Path] = []
    for name, table in tables.items():
        csv_sink = pa.BufferOutputStream()
        pacsv.write_csv(_csv_ready(table), csv_sink)
        write_atomic(out / f"{name}.csv", csv_sink.getvalue().to_pybytes())
        write_atomic(out / f"{name}.json", _json_bytes(table.to_pylist()))
        written += [out / f"{name}.csv", out / f"{name}.json"]
    write_atomic(out / "summary.md", summary.encode())
    write_atomic(out / EXPORT, _json_bytes({name: t.to_pylist() for name, t in tables.items()}))
    return [*written, out / "summary.md", out / EXPORT]


def has_export(requests_dir: Path, request_id: str) -> bool:
    """Whether a whole export of the request is on disk."""
    return (folder(requests_dir, request_id) / EXPORT).exists()


def export_counts(requests_dir: Path, request_id: str) -> dict[str, int] | None:
    """Rows per table in the export on disk (``None``: there is no whole export)."""
    if not has_export(requests_dir, request_id):
        return None
    path = folder(requests_dir, request_id) / EXPORT
    return {name: len(rows) for name, rows in json.loads(path.read_text()).items()}


def write_receipt(requests_dir: Path, request_id: str, receipt: dict[str, Any]) -> Path:
    """Write a completed request's receipt (counts per store, never an identifier)."""
    path = folder(requests_dir, request_id) / RECEIPT
    write_atomic(path, _json_bytes(receipt))
    return path


def read_receipt(requests_dir: Path, request_id: str) -> dict[str, Any] | None:
    """A request's receipt, if it has one."""
    path = folder(requests_dir, request_id) / RECEIPT
    return json.loads(path.read_text()) if path.exists() else None


def exports_before(requests_dir: Path, cutoff: datetime) -> list[Path]:
    """Export files (not receipts) written before ``cutoff``."""
    if not requests_dir.is_dir():
        return []
    return [
        p
        for p in sorted(requests_dir.rglob("*"))
        if p.is_file() and p.name != RECEIPT and datetime.fromtimestamp(p.stat().st_mtime, UTC) < cutoff
    ]


def remove_exports_before(requests_dir: Path, cutoff: datetime) -> int:
    """Delete the export files written before ``cutoff``; receipts (counts only) stay with the request."""
    old = exports_before(requests_dir, cutoff)
    for path in old:
        path.unlink()
    return len(old)
