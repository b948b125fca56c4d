"""Access requests (6.2.1): the export the subject receives, and the receipt's counts of it.

The export holds every row held about the subject in every store, masked for reading, and their raw records in
landing and quarantine, masked value by value. The receipt counts the export on disk, so the two always agree,
even when records were erased or expired between the request's verification and its export.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from devicerisk.governance import subject_data
from devicerisk.governance.stores import Stores
from devicerisk.privacy.masking import mask_columns, mask_records
from devicerisk.store import request_files
from devicerisk.store.governance import RequestRow
from devicerisk.store.rows import SubjectRows

#: Stores an access export leaves out, and why (said in the export's summary and in the receipt).
NOT_EXPORTED = {
    "signals": "a copy of the events in lake.events, kept to compute risk scores: the same records, exported there",
    "entrust": "copies of events in lake.events made for a processor, pseudonyms re-keyed for it: the same records, "
    "exported there",
}


def _export_store(table: str) -> str:
    """The store an exported table belongs to, named as ``subject_data.locate`` names it."""
    return table.split("/", 1)[0]


def receipt(stores: Stores, row: RequestRow) -> dict[str, Any]:
    """An access receipt's counts, read from the export on disk: the receipt says what the export holds.

    Records found when the request was received but gone since (erased, or past their retention) are named apart.
    """
    tables = request_files.export_counts(stores.requests_dir, row.request_id)
    if tables is None:  # ``requests.process`` makes a missing export again before it completes a request
        raise RuntimeError(f"request {row.request_id} has no export on disk")
    exported: dict[str, int] = {}
    for name, n in tables.items():
        exported[_export_store(name)] = exported.get(_export_store(name), 0) + n
    found = row.found or {}
    gone = {s: n - exported.get(s, 0) for s, n in found.items() if s not in NOT_EXPORTED and n > exported.get(s, 0)}
    out: dict[str, Any] = {
        "records_per_store": exported,
        "records_per_table": tables,
        "records_found_when_received": found,
        "not_exported": {s: why for s, why in NOT_EXPORTED.items() if s in found},
    }
    if gone:
        out["gone_since_received"] = gone  # erased or expired between the request's receipt and its export
    return out


def export(stores: Stores, row: RequestRow, subject: SubjectRows, now: datetime) -> None:
    """Write the subject's export under the request's folder, replacing whatever an earlier attempt left."""
    tables = {name: _masked(t) for name, t in subject_data.collect(stores, subject).items()}
    request_files.write_export(stores.requests_dir, row.request_id, tables, _summary(row, tables, now))


def _masked(table: pa.Table) -> pa.Table:
    """A table as the subject reads it: pseudonyms and batch ids (content hashes, 32 hex digits too) masked like
    identifiers, and raw records (landing, quarantine) masked value by value."""
    table = mask_columns(table, ["batch_id"])
    return mask_records(table, "record") if "record" in table.column_names else table


def _summary(row: RequestRow, tables: dict[str, pa.Table], now: datetime) -> str:
    lines = [
        f"# Your data ({row.request_id})",
        "",
        f"Exported {now:%Y-%m-%d %H:%M} UTC. Identifiers are masked.",
        "",
        "| where | records |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {t.num_rows:,} |" for name, t in tables.items()]
    events = tables.get("lake.events")
    if events is not None and events.num_rows:
        types = events.column("event_type").value_counts().to_pylist()
        lines += ["", "Events by type: " + ", ".join(f"{t['values']} {t['counts']:,}" for t in types)]
    if "landing" in tables or "quarantine" in tables:
        lines += [
            "",
            "`landing` and `quarantine` are your records as received (quarantine: refused as invalid), "
            "every value but times, amounts and settings masked.",
        ]
    left_out = [f"- {store}: {why}" for store, why in NOT_EXPORTED.items() if store in (row.found or {})]
    if left_out:
        lines += ["", "Not in this export:", *left_out]
    return "\n".join(lines) + "\n"
