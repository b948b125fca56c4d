"""The incident report (5.3.3): what a notification needs, as JSON for the notification run and Markdown for people.

It answers four questions from what :mod:`devicerisk.governance.incident` found: which data categories and
sensitivities were exposed (from the contract), how many subjects and which (pseudonyms, in the JSON only),
whether the data was pseudonymised, minimised or encrypted, and what the keys protect (ids only, never material).
Each investigation is written to its own folder and audited (who, action, purpose, counts; never a pseudonym).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from devicerisk.contract.fields import FIELDS, LABEL_FIELDS
from devicerisk.contract.model import Action, Sensitivity
from devicerisk.governance import entrusted_data
from devicerisk.governance.incident import (
    RAW,
    Exposure,
    Window,
    exposed_files,
    exposed_path,
    exposed_store,
    field_of,
)
from devicerisk.governance.stores import Stores
from devicerisk.store import audit, incidents, processors

CLAUSE = "5.3.3"
_RANK = {Sensitivity.NONE: 0, Sensitivity.PERSONAL: 1, Sensitivity.SENSITIVE: 2}
_DROPPED = sorted(f.path for f in (*FIELDS, *LABEL_FIELDS) if f.actions == {Action.DROP})


@dataclass(frozen=True, slots=True)
class Incident:
    """One investigation: its id, who ran it, what was asked and what was found."""

    incident_id: str
    created_at: datetime
    actor: str
    scope: dict[str, Any]
    exposures: list[Exposure]


def investigate(
    stores: Stores,
    *,
    actor: str,
    now: datetime,
    store: str | None = None,
    window: Window | None = None,
    files: Sequence[Path] = (),
) -> Incident:
    """Find what ``store`` held in ``window``, or what ``files`` held (exactly one of the two is given)."""
    audit.check_name("actor", actor)  # refused before the work, not after it
    if (store is None) == (not files):
        raise ValueError("name either a store (with its exposure window) or the exposed files")
    if store is not None:
        window = window or Window()
        found = exposed_store(stores, store, window)
        scope: dict[str, Any] = {"store": store, "window": window.describe()}
        scope |= {"from": window.start and window.start.isoformat(), "to": window.end and window.end.isoformat()}
    else:
        found = [_exposed_file(stores, f) for f in files]
        scope = {"files": [e.part for e in found]}
    return Incident(incidents.new_id(now), now, actor, scope, found)


def _exposed_file(stores: Stores, given: Path) -> Exposure:
    """What one named file held; an entrusted extract's files are read in the processor's key domain."""
    path = exposed_path(stores, given)
    if path.is_relative_to(processors.entrust_dir(stores.data_dir).resolve()):
        return entrusted_data.exposure(stores, path)
    return exposed_files(stores, [path])[0]


def _fields(exposures: list[Exposure]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for e in exposures:
        for path, held in e.fields.items():
            out.setdefault(path, set()).update(held)
    return out


def _categories(fields: dict[str, set[str]]) -> list[dict[str, Any]]:
    """Each exposed data category, its highest sensitivity and its fields."""
    by_category: dict[str, list[str]] = {}
    for path in sorted(fields):
        by_category.setdefault(field_of(path).category, []).append(path)
    rows = []
    for category, paths in sorted(by_category.items()):
        top = max((field_of(p).sensitivity for p in paths), key=_RANK.__getitem__)
        rows.append({"category": category, "sensitivity": str(top), "fields": paths})
    return sorted(rows, key=lambda r: (-_RANK[Sensitivity(r["sensitivity"])], r["category"]))


def _protection(exposures: list[Exposure], fields: dict[str, set[str]]) -> dict[str, Any]:
    def having(held: str) -> list[str]:
        return sorted(p for p, how in fields.items() if held in how)

    treated = any(RAW not in how for e in exposures for how in e.fields.values())
    personal = [p for p in having("kept as sent") if field_of(p).sensitivity is not Sensitivity.NONE]
    return {
        "pseudonymised": having("pseudonymised"),
        "minimised": having("minimised"),
        "kept_as_sent_personal": personal,
        "raw": having(RAW),
        "dropped_by_the_contract": _DROPPED if treated else [],
        "raw_fields_the_contract_drops": [p for p in having(RAW) if p in _DROPPED],
        "encrypted_parts": [e.part for e in exposures if e.encrypted],
        "unencrypted_parts": [e.part for e in exposures if not e.encrypted and e.rows],
    }


def _keys(stores: Stores, exposures: list[Exposure]) -> list[dict[str, Any]]:
    """Every key by id and what it protects among the exposed parts (key material never leaves the key files)."""
    treated = [e for e in exposures if not e.encrypted]
    sealed = [e for e in exposures if e.encrypted]
    out = []
    for i, p in enumerate(stores.keyring):
        parts = [e.part for e in treated if p.key_id in e.key_ids]
        out.append(
            {
                "purpose": "pseudonym",
                "key_id": p.key_id,
                "state": "current" if i == 0 else "retired",
                "protects": "keyed HMAC-SHA256 pseudonyms of identifiers (a subkey per domain) and the lookup "
                "service's references: without the key a pseudonym cannot be linked to an identifier, "
                "not even by trying every IMEI or phone number",
                "exposed_parts": parts,
            }
        )
    for key_id in sorted(stores.quarantine_keys):
        current = key_id == stores.quarantine_key.key_id
        out.append(
            {
                "purpose": "quarantine",
                "key_id": key_id,
                "state": "current" if current else "retired",
                "protects": "AES-256-GCM encryption at rest of quarantined raw records",
                "exposed_parts": [e.part for e in sealed if key_id in e.key_ids],
            }
        )
    for i, k in enumerate(stores.audit.keys):
        out.append(
            {
                "purpose": "audit",
                "key_id": k.key_id,
                "state": "current" if i == 0 else "retired",
                "protects": "the integrity of the audit chain (no personal data, no secrecy)",
                "exposed_parts": [],
            }
        )
    if stores.verification_key is not None:
        out.append(
            {
                "purpose": "verification",
                "key_id": stores.verification_key.key_id,
                "state": "current",
                "protects": "the platform's identity-verification tokens (6.4.2): whoever holds it can verify a "
                "data-subject request, so if it leaked, replace it on both sides",
                "exposed_parts": [],
            }
        )
    return out


def to_json(stores: Stores, incident: Incident) -> dict[str, Any]:
    """The report as the JSON file holds it: counts, categories, protection, keys and the subjects' pseudonyms."""
    exposures = incident.exposures
    fields = _fields(exposures)
    accounts = set().union(*(e.accounts for e in exposures))
    devices = set().union(*(e.devices for e in exposures))
    notes = [f"{e.part}: {n}" for e in exposures for n in e.notes]
    if any(RAW in how for how in fields.values()) and any(RAW not in how for how in fields.values()):
        notes.append("raw records are pseudonymised under the current key; lake rows under the key they carry")
    return {
        "incident_id": incident.incident_id,
        "clause": CLAUSE,
        "created_at": incident.created_at.isoformat(),
        "actor": incident.actor,
        "scope": incident.scope,
        "exposed": [
            {
                "store": e.store,
                "part": e.part,
                "selection": e.selection,
                "rows": e.rows,
                "encrypted": e.encrypted,
                "fields": {p: sorted(h) for p, h in sorted(e.fields.items())},
                "other_columns": sorted(e.other_columns),
                "key_ids": sorted(e.key_ids),
                "accounts": len(e.accounts),
                "devices_without_account": len(e.devices),
                "unnamed_rows": e.unnamed,
            }
            for e in exposures
        ],
        "rows": sum(e.rows for e in exposures),
        "categories": _categories(fields),
        "sensitivities": sorted({str(field_of(p).sensitivity) for p in fields}, key=lambda s: -_RANK[Sensitivity(s)]),
        "subjects": {
            "count": len(accounts) + len(devices),
            "accounts": sorted(accounts),
            "devices_without_account": sorted(devices),
            "unnamed_rows": sum(e.unnamed for e in exposures),
        },
        "protection": _protection(exposures, fields),
        "keys": _keys(stores, exposures),
        "keys_location": "outside the data directory (settings refuse a key inside it): a copy of the data "
        "directory holds no key",
        "notes": notes,
    }


def _list(items: Sequence[str]) -> str:
    return ", ".join(f"`{i}`" for i in items) if items else "none"


def to_markdown(report: dict[str, Any]) -> str:
    """The report for people: counts, categories, protection and keys; no pseudonym is written out."""
    subjects, prot, scope = report["subjects"], report["protection"], report["scope"]
    exposed = [f"- store `{scope['store']}`, exposed {scope['window']}"] if "store" in scope else []
    exposed += [f"- file `{f}`" for f in scope.get("files", [])]
    lines = [
        f"# Security incident {report['incident_id']} (clause {report['clause']})",
        "",
        f"Investigated by {report['actor']} at {report['created_at']}.",
        "",
        "## Scope",
        "",
        *exposed,
        "",
        "## What was exposed",
        "",
        "| part | rows selected | rows | accounts | devices without account | unnamed rows | encrypted |",
        "|---|---|---:|---:|---:|---:|---|",
        *(
            f"| `{e['part']}` | {e['selection']} | {e['rows']:,} | {e['accounts']:,} | "
            f"{e['devices_without_account']:,} | {e['unnamed_rows']:,} | {'yes' if e['encrypted'] else 'no'} |"
            for e in report["exposed"]
        ),
        "",
        "## Data categories and sensitivities (from the data contract)",
        "",
        f"Sensitivities exposed: {', '.join(report['sensitivities']) or 'none'}.",
        "",
        "| category | highest sensitivity | fields |",
        "|---|---|---|",
        *(f"| {c['category']} | {c['sensitivity']} | {_list(c['fields'])} |" for c in report["categories"]),
        "",
        "## Subjects",
        "",
        f"{subjects['count']:,} subjects: {len(subjects['accounts']):,} accounts and "
        f"{len(subjects['devices_without_account']):,} devices seen without an account; "
        f"{subjects['unnamed_rows']:,} rows name neither. Their pseudonyms are in `incident.json` "
        "(`subjects`), for the platform to notify them.",
        "",
        "## Protection",
        "",
        f"- pseudonymised (keyed): {_list(prot['pseudonymised'])}",
        f"- minimised (only derived attributes kept): {_list(prot['minimised'])}",
        f"- dropped by the contract before any store (not exposed): {_list(prot['dropped_by_the_contract'])}",
        f"- personal fields kept as sent: {_list(prot['kept_as_sent_personal'])}",
        f"- raw, not pseudonymised (landing, or quarantine once decrypted): {_list(prot['raw'])}",
        f"- raw fields the contract would have dropped: {_list(prot['raw_fields_the_contract_drops'])}",
        f"- encrypted at rest (AES-256-GCM): {_list(prot['encrypted_parts'])}",
        f"- not encrypted by the pipeline: {_list(prot['unencrypted_parts'])}",
        "",
        "## Keys",
        "",
        f"Keys are kept {report['keys_location']}. If a key was exposed too, treat what it protects as raw "
        "and rotate it (docs/OPERATIONS.md, key rotation).",
        "",
        "| purpose | key id | state | protects | exposed parts it protects |",
        "|---|---|---|---|---|",
        *(
            f"| {k['purpose']} | `{k['key_id']}` | {k['state']} | {k['protects']} | {_list(k['exposed_parts'])} |"
            for k in report["keys"]
        ),
    ]
    if report["notes"]:
        lines += ["", "## Notes", "", *(f"- {n}" for n in report["notes"])]
    return "\n".join(lines) + "\n"


def record(stores: Stores, incident: Incident, out: Path | None = None) -> tuple[Path, Path]:
    """Write the report (into ``out``, else the incident's own folder) and audit it; returns the two paths."""
    report = to_json(stores, incident)
    folder = out if out is not None else incidents.incidents_dir(stores.data_dir) / incident.incident_id
    paths = incidents.write(folder, to_markdown(report), report)
    audit.append(
        stores.audit,
        actor=incident.actor,
        role="privacy_officer",
        action="incident.report",
        purpose="security",
        counts={
            "parts": len(incident.exposures),
            "rows": report["rows"],
            "subjects": report["subjects"]["count"],
            "accounts": len(report["subjects"]["accounts"]),
            "devices": len(report["subjects"]["devices_without_account"]),
            "unnamed_rows": report["subjects"]["unnamed_rows"],
            "fields": sum(len(c["fields"]) for c in report["categories"]),
        },
        when=incident.created_at,
    )
    return paths
