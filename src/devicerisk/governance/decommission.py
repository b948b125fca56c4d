"""Termination of operation (5.1.3): delete every store, or anonymise it into aggregates first, then destroy the keys.

:func:`plan` lists what a decommissioning would remove and destroy, and changes nothing (the dry run);
:func:`run` carries it out, in an order that leaves a record of each step:

1. ``anonymise`` mode: the k-anonymous aggregates (:mod:`devicerisk.governance.final_aggregates`) are written
   to ``anonymised/`` under the data directory;
2. every store is removed: landing, quarantine, each lake table (folder and log: nothing is left for a vacuum),
   the warehouse, serving snapshots, the signal log, models, request outputs, incident reports, the API key
   store (overwritten first), and whatever else the data directory holds;
3. the pseudonym and quarantine keys are destroyed (crypto-shredding: a copy of the quarantine that survives
   elsewhere can no longer be decrypted, and a pseudonym that survives can no longer be linked to anyone);
4. a final ``decommission`` record is appended to the audit trail;
5. the receipt is written; then the audit keys and the demo API key in the secrets folder are destroyed, and the
   receipt is rewritten with their outcome.

The audit trail is kept in both modes: it is the record of the termination and holds no personal data (names
of actions and of the staff who ran them, and counts). Once its key is destroyed it can no longer be verified
with ``audit verify``; the receipt gives its last record's ``seq:hash``, to be kept off the machine. A key given
in an environment variable cannot be destroyed here: the receipt says so and names the variable.
"""

from __future__ import annotations

import getpass
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from devicerisk.config import Settings
from devicerisk.governance import final_aggregates
from devicerisk.governance.stores import audit_trail
from devicerisk.privacy.keys import KeySource, key_sources
from devicerisk.store import api_keys, audit, incidents, lake, writer
from devicerisk.store import decommission as files

#: Entries of the data directory that a decommissioning keeps: the audit trail, what it writes, the folder's README.
_KEPT = ("audit", files.ANONYMISED, "README.md")


class Mode(StrEnum):
    DELETE = "delete"
    ANONYMISE = "anonymise"


class DecommissionError(RuntimeError):
    """A decommissioning that may not start. Nothing was changed."""


@dataclass(frozen=True, slots=True)
class StoreItem:
    """One store to remove: its paths, and what they hold."""

    name: str
    paths: tuple[Path, ...]
    files: int
    bytes: int
    rows: int | None = None  # lake tables and the warehouse: their rows
    shred: tuple[Path, ...] = ()  # files overwritten before they are removed


@dataclass(frozen=True, slots=True)
class Plan:
    """What a decommissioning of one data directory removes, keeps and destroys."""

    data_dir: Path
    mode: Mode
    k: int
    stores: tuple[StoreItem, ...]
    kept: tuple[Path, ...]
    keys: tuple[KeySource, ...]
    api_key_ids: tuple[str, ...]

    @property
    def files(self) -> int:
        return sum(s.files for s in self.stores)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.stores)


@dataclass
class Outcome:
    """What a run did: the receipt (as written) and where it is."""

    receipt: dict[str, Any]
    json_path: Path
    markdown_path: Path
    aggregates: list[final_aggregates.Aggregate] = field(default_factory=list)


def phrase(settings: Settings, mode: Mode) -> str:
    """What the operator types to confirm: the mode and the installation's data directory, in full."""
    return f"{mode} {settings.data_dir.resolve()}"


def _item(name: str, paths: list[Path], rows: int | None = None, shred: tuple[Path, ...] = ()) -> StoreItem | None:
    present = tuple(p for p in paths if p.exists() or p.is_symlink())
    if not present:
        return None
    counted = [files.inventory(p) for p in present]
    return StoreItem(name, present, sum(c[0] for c in counted), sum(c[1] for c in counted), rows, shred)


def _lake_rows(settings: Settings, name: str) -> int | None:
    data = lake.dataset(settings.lake_dir, name)
    return None if data is None else data.count_rows()


def _stores(settings: Settings) -> list[StoreItem | None]:
    warehouse = sorted(settings.data_dir.glob(settings.warehouse_path.name + "*"))
    tables = sorted(p for p in settings.lake_dir.iterdir()) if settings.lake_dir.is_dir() else []
    keys_file = settings.api_keys_path
    return [
        _item("landing", [settings.landing_dir]),
        _item("quarantine", [settings.quarantine_dir]),
        *(_item(f"lake/{p.name}", [p], _lake_rows(settings, p.name) if p.is_dir() else None) for p in tables),
        _item("warehouse", warehouse, sum(files.warehouse_rows(settings.warehouse_path).values())),
        _item("serving", [settings.serving_dir]),
        _item("signals", [settings.signals_dir]),
        _item("models", [settings.models_dir]),
        _item("requests", [settings.requests_dir]),
        _item("incidents", [incidents.incidents_dir(settings.data_dir)]),
        _item("api keys", [keys_file.parent], shred=(keys_file,) if keys_file.is_file() else ()),
    ]


def _kept(entry: Path) -> bool:
    return entry.name in _KEPT or entry.name.startswith(files.RECEIPT_PREFIX)


def plan(settings: Settings, mode: Mode, k: int | None = None) -> Plan:
    """What a decommissioning of ``settings``' data directory would do; reads only (no key is created)."""
    if settings.lake_uri:
        raise DecommissionError(
            "DEVICERISK_LAKE_URI names an object-store lake, which this command does not remove: remove its tables "
            "with the storage's own tools, then run it again without the setting"
        )
    data_dir = settings.data_dir
    if not data_dir.is_dir():
        raise DecommissionError(f"no data directory at {data_dir}")
    found = [s for s in _stores(settings) if s is not None]
    kept = tuple(p for p in sorted(data_dir.iterdir()) if _kept(p))
    ours = found or settings.audit_dir.is_dir() or any(p.name.startswith(files.RECEIPT_PREFIX) for p in kept)
    if not ours:  # a data directory set wrong (a home folder...): remove nothing there
        raise DecommissionError(f"{data_dir} holds no store of devicerisk: is DEVICERISK_DATA_DIR right?")
    known = {p for s in found for p in s.paths} | {settings.lake_dir}
    for entry in sorted(data_dir.iterdir()):
        if entry not in known and not _kept(entry) and (other := _item(f"other/{entry.name}", [entry])):
            found.append(other)
    listed = api_keys.listing(settings.api_keys_path) if settings.api_keys_path.is_file() else []
    return Plan(
        data_dir,
        mode,
        settings.anonymity_k if k is None else k,
        tuple(found),
        kept,
        tuple(key_sources(settings)),
        tuple(a.key_id for a in listed),
    )


def _entry(source: KeySource) -> dict[str, Any]:
    """A key as the receipt names it: purpose, use, id and where it is (never its material)."""
    entry = {"purpose": source.purpose, "use": source.use, "key_id": source.key_id, "setting": source.variable}
    return entry if source.path is None else {**entry, "file": str(source.path)}


def _destroy(source: KeySource) -> dict[str, Any]:
    """Shred one key file; a key in the environment, or a file that cannot be overwritten, is reported."""
    entry = _entry(source)
    if source.path is None:
        action = f"destroy the key in {source.variable} in your secret store"
        return {**entry, "status": "not destroyed", "action": action}
    if not (source.path.is_file() or source.path.is_symlink()):
        return {**entry, "status": "absent"}
    try:
        files.shred(source.path)
    except OSError as err:
        return {**entry, "status": "not destroyed", "action": f"{err.strerror}: destroy it in your secret store"}
    return {**entry, "status": "destroyed"}


def _remove(item: StoreItem) -> None:
    for path in item.shred:
        files.shred(path)
    for path in item.paths:
        files.remove(path)


def run(settings: Settings, chosen: Plan, *, actor: str, now: datetime, receipt_dir: Path | None = None) -> Outcome:
    """Decommission as ``chosen`` (a :func:`plan` the operator confirmed) says; returns the receipt.

    The audit trail is opened first, so a missing audit key stops the run before anything is removed."""
    trail = audit_trail(settings)
    audit.check_name("actor", actor)
    aggregates: list[final_aggregates.Aggregate] = []
    written: list[dict[str, Any]] = []
    with writer.hold(settings.warehouse_path):  # no flow writes the warehouse meanwhile
        if chosen.mode is Mode.ANONYMISE:
            aggregates = final_aggregates.build(settings, chosen.k)
            for agg in aggregates:
                path = files.write_aggregate(settings.data_dir / files.ANONYMISED, agg.name, agg.cells)
                cells = {"cells": agg.cells.num_rows, "cells_suppressed": agg.suppressed}
                written.append({"name": agg.name, "file": str(path.relative_to(settings.data_dir)), **cells})
        for item in chosen.stores:
            _remove(item)
        files.remove(writer.lock_path(settings.warehouse_path))  # the lock we hold, made if there was none
    files.remove_if_empty(settings.lake_dir)  # its tables were stores of their own
    early = [s for s in chosen.keys if s.purpose != "audit"]
    demo_api_key = settings.secrets_dir / api_keys.DEMO_KEY_FILE
    late = [s for s in chosen.keys if s.purpose == "audit"]
    late += [KeySource("api", "demo", demo_api_key, None, None)] if demo_api_key.is_file() else []
    keys = [_destroy(s) for s in early]
    counts = {
        "stores": len(chosen.stores),
        "files": chosen.files,
        "bytes": chosen.bytes,
        "keys_destroyed": sum(k["status"] == "destroyed" for k in keys),
        "aggregates": len(written),
        "cells_suppressed": sum(a["cells_suppressed"] for a in written),
    }
    role, action, purpose = "privacy_officer", "decommission", "termination_of_operation"
    final = audit.append(trail, actor=actor, role=role, action=action, purpose=purpose, counts=counts)
    receipt = _receipt(settings, chosen, actor, now, written, list(keys), final)
    receipt["keys"] += [{**_entry(s), "status": "to be destroyed after this receipt"} for s in late]
    folder = receipt_dir or settings.data_dir
    stem = f"{files.RECEIPT_PREFIX}{now:%Y%m%dT%H%M%SZ}"
    files.write_receipt(folder, stem, receipt, markdown(receipt))
    receipt["keys"] = keys + [_destroy(s) for s in late]
    js, md = files.write_receipt(folder, stem, receipt, markdown(receipt))
    return Outcome(receipt, js, md, aggregates)


def _receipt(
    settings: Settings,
    chosen: Plan,
    actor: str,
    now: datetime,
    written: list[dict[str, Any]],
    keys: list[dict[str, Any]],
    final: dict[str, object],
) -> dict[str, Any]:
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        user = None
    root = chosen.data_dir
    stores = [{**asdict(s), "paths": [str(p.relative_to(root)) for p in s.paths]} for s in chosen.stores]
    for entry in stores:
        entry.pop("shred")  # paths, already listed
    return {
        "receipt": "decommission",
        "policy_clause": "5.1.3",
        "mode": str(chosen.mode),
        "data_dir": str(root.resolve()),
        "actor": actor,
        "system_user": user,
        "started_at": now.isoformat(),
        "finished_at": datetime.now(now.tzinfo).isoformat(),
        "removed": {"stores": stores, "files": chosen.files, "bytes": chosen.bytes},
        "kept": sorted({*(p.name for p in chosen.kept), "audit", *([files.ANONYMISED] if written else [])}),
        "aggregates": {"k": chosen.k, "folder": files.ANONYMISED, "tables": written} if written else None,
        "api_keys_revoked": list(chosen.api_key_ids),
        "keys": keys,
        "audit": {
            "kept": True,
            "why": "the record of the termination; it holds action names, staff names and counts, no personal data",
            "final_record": f"{final['seq']}:{final['hash']}",
            "key_id": final["key_id"],
            "note": "keep this head off the machine; once the audit key is destroyed the trail cannot be verified",
        },
    }


def _count(rows: int | None) -> str:
    return "" if rows is None else f"{rows:,}"


def markdown(receipt: dict[str, Any]) -> str:
    """The receipt for people: what was removed, kept and destroyed, by whom and when."""
    removed = receipt["removed"]
    lines = [
        "# Decommissioning receipt (policy 5.1.3)",
        "",
        f"- mode: **{receipt['mode']}**; data directory `{receipt['data_dir']}`",
        f"- by {receipt['actor']} (system user {receipt['system_user']}), {receipt['started_at']} to "
        f"{receipt['finished_at']}",
        f"- removed: {len(removed['stores'])} stores, {removed['files']:,} files, {removed['bytes']:,} bytes",
        f"- kept: {', '.join(receipt['kept']) or 'nothing'}; audit trail head {receipt['audit']['final_record']}",
        "",
        "| store | files | bytes | rows |",
        "|---|---:|---:|---:|",
        *(f"| {s['name']} | {s['files']:,} | {s['bytes']:,} | {_count(s['rows'])} |" for s in removed["stores"]),
        "",
    ]
    if receipt["aggregates"]:
        k = receipt["aggregates"]["k"]
        lines += [f"Aggregates kept (k = {k}: every cell describes at least {k} subjects):", ""]
        lines += [
            f"- `{t['file']}`: {t['cells']:,} cells, {t['cells_suppressed']:,} suppressed"
            for t in receipt["aggregates"]["tables"]
        ]
        lines.append("")
    lines += ["| key | use | id | status |", "|---|---|---|---|"]
    for key in receipt["keys"]:
        status = key["status"] + (f" ({key['action']})" if key.get("action") else "")
        lines.append(f"| {key['purpose']} | {key['use']} | {key['key_id'] or '-'} | {status} |")
    revoked = len(receipt["api_keys_revoked"])
    return "\n".join([*lines, "", f"API keys revoked with their store: {revoked}.", ""])
