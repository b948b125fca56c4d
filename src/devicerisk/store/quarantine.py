"""Quarantine: rejected records with their reasons, encrypted at rest.

Each batch with rejects gets two files named by batch id, so a re-run overwrites rather than adds:
``{batch}.records.enc`` (AES-GCM, the raw records for operators who hold the key) and
``{batch}.reasons.json`` (line numbers and reasons only; reasons never quote a value).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from devicerisk.privacy.encryption import seal, unseal
from devicerisk.privacy.keys import Key
from devicerisk.store.files import write_atomic


@dataclass(frozen=True, slots=True)
class Rejected:
    """One rejected record: where it was in the batch, why, and its raw bytes."""

    line: int
    reason: str
    raw: bytes


def _paths(quarantine_dir: Path, batch_id: str) -> tuple[Path, Path]:
    return quarantine_dir / f"{batch_id}.records.enc", quarantine_dir / f"{batch_id}.reasons.json"


def write(quarantine_dir: Path, batch_id: str, rejected: list[Rejected], key: Key) -> None:
    """Store a batch's rejects (nothing is written for a batch without rejects)."""
    if not rejected:
        return
    records_path, reasons_path = _paths(quarantine_dir, batch_id)
    plain = b"".join(
        orjson.dumps({"line": r.line, "reason": r.reason, "raw_b64": base64.b64encode(r.raw).decode()}) + b"\n"
        for r in rejected
    )
    written = written_at(quarantine_dir, batch_id) if reasons_path.exists() else datetime.now(UTC)
    write_atomic(records_path, seal(key, plain, batch_id.encode()))
    reasons = {
        "batch_id": batch_id,
        "key_id": key.key_id,
        "written_at": written.isoformat(),  # a rewrite (erasure, re-keying) keeps the batch's retention clock
        "rejects": [{"line": r.line, "reason": r.reason} for r in rejected],
    }
    write_atomic(reasons_path, json.dumps(reasons, indent=1).encode())


def read(quarantine_dir: Path, batch_id: str, key: Key) -> list[Rejected]:
    """Decrypt a batch's rejects (for operators replaying fixed records)."""
    records_path, _ = _paths(quarantine_dir, batch_id)
    if not records_path.exists():
        return []
    plain = unseal(key, records_path.read_bytes(), batch_id.encode())
    rows = [orjson.loads(line) for line in plain.splitlines()]
    return [Rejected(r["line"], r["reason"], base64.b64decode(r["raw_b64"])) for r in rows]


def batches(quarantine_dir: Path) -> list[str]:
    """Ids of the batches that have quarantined records."""
    return sorted(p.name.removesuffix(".reasons.json") for p in quarantine_dir.glob("*.reasons.json"))


def reasons(quarantine_dir: Path, batch_id: str) -> list[dict[str, object]]:
    """A batch's reject reasons, readable without the key."""
    _, reasons_path = _paths(quarantine_dir, batch_id)
    if not reasons_path.exists():
        return []
    return json.loads(reasons_path.read_text())["rejects"]


def written_at(quarantine_dir: Path, batch_id: str) -> datetime:
    """When a batch's rejects were first stored (recorded in the reasons file; before that, its modification time)."""
    _, reasons_path = _paths(quarantine_dir, batch_id)
    recorded = json.loads(reasons_path.read_text()).get("written_at")
    if recorded is not None:
        return datetime.fromisoformat(recorded)
    return datetime.fromtimestamp(reasons_path.stat().st_mtime, UTC)


def remove_batch(quarantine_dir: Path, batch_id: str) -> int:
    """Delete a batch's quarantine files; returns how many records they held."""
    held = len(reasons(quarantine_dir, batch_id))
    for path in _paths(quarantine_dir, batch_id):
        path.unlink(missing_ok=True)
    return held


def remove_records(
    quarantine_dir: Path, batch_id: str, key: Key, drop: Callable[[Sequence[bytes]], Sequence[bool]]
) -> int:
    """Rewrite a batch's rejects without the records ``drop`` selects (given every record's raw bytes at once, it
    says which go); returns how many went.

    The batch's files are rewritten atomically, re-sealed with ``key``; a batch left empty is removed.
    """
    rejected = read(quarantine_dir, batch_id, key)
    kept = [r for r, gone in zip(rejected, drop([r.raw for r in rejected]), strict=True) if not gone]
    gone = len(rejected) - len(kept)
    if gone:
        if kept:
            write(quarantine_dir, batch_id, kept, key)
        else:
            remove_batch(quarantine_dir, batch_id)
    return gone


def key_id(quarantine_dir: Path, batch_id: str) -> str:
    """The id of the key that sealed a batch's rejects (recorded beside them)."""
    _, reasons_path = _paths(quarantine_dir, batch_id)
    return str(json.loads(reasons_path.read_text())["key_id"])
