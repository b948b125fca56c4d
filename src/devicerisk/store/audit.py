"""The audit trail (5.2.1, 5.2.3): an append-only, hash-chained log of actions on personal data.

Each record holds who, role, what, purpose, when and counts, never a raw value, and the hash of the
record before it. Editing, deleting, inserting or reordering records breaks the chain, and
:func:`verify` says where. A head file keeps the last sequence number and hash, so removing records
from the end is detected too. Writers in several processes append under an exclusive file lock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from devicerisk.store.files import locked

LOG_NAME = "audit.log"
HEAD_NAME = "audit.head"
GENESIS = "0" * 64
# Free-text fields are short names, never values: a raw identifier cannot be written by mistake.
_NAME = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")


class AuditError(ValueError):
    """A record that may not be written, e.g. because a field could hold a raw value."""


@dataclass(frozen=True, slots=True)
class Problem:
    """Where the chain breaks, and how."""

    line: int
    reason: str


def _digest(prev_hash: str, body: Mapping[str, object]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def check_name(field: str, value: str) -> str:
    if not _NAME.fullmatch(value):
        raise AuditError(f"audit field {field!r} must be a short name ([A-Za-z0-9_.:-], at most 64 characters)")
    return value


def _read_head(folder: Path) -> tuple[int, str]:
    path = folder / HEAD_NAME
    if not path.exists():
        return 0, GENESIS
    seq, digest = path.read_text().split()
    return int(seq), digest


def _body(
    actor: str, role: str, action: str, purpose: str, counts: Mapping[str, int] | None, when: datetime | None
) -> dict[str, object]:
    return {
        "actor": check_name("actor", actor),
        "role": check_name("role", role),
        "action": check_name("action", action),
        "purpose": check_name("purpose", purpose),
        "counts": {check_name("count", k): int(v) for k, v in (counts or {}).items()},
        "at": (when or datetime.now(UTC)).isoformat(),
    }


def _chain(folder: Path, body: dict[str, object]) -> dict[str, object]:
    """``body`` as the next record after the head (the caller holds the lock)."""
    seq, prev = _read_head(folder)
    body = {**body, "seq": seq + 1, "prev": prev}
    return {**body, "hash": _digest(prev, body)}


def _write_head(folder: Path, record: Mapping[str, object]) -> None:
    tmp = folder / f".{HEAD_NAME}.tmp"
    tmp.write_text(f"{record['seq']} {record['hash']}\n")
    os.replace(tmp, folder / HEAD_NAME)


def _line(record: Mapping[str, object]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=True) + "\n"


def append(
    folder: Path,
    *,
    actor: str,
    role: str,
    action: str,
    purpose: str,
    counts: Mapping[str, int] | None = None,
    when: datetime | None = None,
) -> dict[str, object]:
    """Append one record and return it. Counts are integers; names are short identifiers."""
    body = _body(actor, role, action, purpose, counts, when)
    with locked(folder):
        record = _chain(folder, body)
        with (folder / LOG_NAME).open("a") as log:
            log.write(_line(record))
            log.flush()
            os.fsync(log.fileno())
        _write_head(folder, record)
    return record


def _split(lines: list[str]) -> tuple[dict[str, object] | None, list[str]]:
    """The anchor left by :func:`expire` (if the log starts with one) and the record lines."""
    if lines and lines[0].startswith('{"anchor"'):
        return json.loads(lines[0])["anchor"], lines[1:]
    return None, lines


def expire(folder: Path, before: datetime, *, actor: str = "retention-flow") -> int:
    """Drop the records dated before ``before`` from the start of the log (its retention); returns how many.

    The first line becomes an anchor with the sequence number and hash of the last record dropped,
    so the records kept still verify. An ``audit.expire`` record, chained like any other and written
    in the same atomic replace, says through which record the log was cut: an anchor without it
    (records removed from the start by hand) is reported by :func:`verify`.
    """
    with locked(folder):
        path = folder / LOG_NAME
        _, lines = _split(path.read_text().splitlines() if path.exists() else [])
        dated = [datetime.fromisoformat(str(json.loads(line)["at"])) for line in lines]
        cut = next((i for i, at in enumerate(dated) if at >= before), len(lines))
        if cut == 0:
            return 0
        last = json.loads(lines[cut - 1])
        anchor = json.dumps({"anchor": {"seq": last["seq"], "hash": last["hash"]}}, sort_keys=True)
        body = _body(actor, "pipeline", "audit.expire", "retention", {"records": cut, "through_seq": last["seq"]}, None)
        record = _chain(folder, body)
        tmp = folder / f".{LOG_NAME}.tmp"
        tmp.write_text(anchor + "\n" + "".join(line + "\n" for line in lines[cut:]) + _line(record))
        os.replace(tmp, path)
        _write_head(folder, record)
    return cut


def records(folder: Path) -> list[dict[str, object]]:
    """Every record of the log, oldest first."""
    path = folder / LOG_NAME
    if not path.exists():
        return []
    _, lines = _split(path.read_text().splitlines())
    return [json.loads(line) for line in lines if line.strip()]


def _expired_through(line: str) -> object:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record.get("counts", {}).get("through_seq") if record.get("action") == "audit.expire" else None


def verify(folder: Path) -> list[Problem]:
    """Check the whole chain and the head; an empty list means the log is intact."""
    path = folder / LOG_NAME
    anchor, lines = _split(path.read_text().splitlines() if path.exists() else [])
    problems: list[Problem] = []
    prev, expected_seq, first = GENESIS, 1, 1
    if anchor is not None:  # the log was cut by expire(): the chain resumes after the anchor
        prev, expected_seq, first = str(anchor["hash"]), int(anchor["seq"]) + 1, 2  # type: ignore[call-overload]
        if not any(_expired_through(line) == anchor["seq"] for line in lines):
            problems.append(Problem(1, f"the log starts after record {anchor['seq']} but no audit.expire record "
                                       "says so: records were removed from the start"))  # fmt: skip
    for number, line in enumerate(lines, start=first):
        try:
            record = json.loads(line)
            claimed = record.pop("hash")
        except (json.JSONDecodeError, KeyError, AttributeError):
            problems.append(Problem(number, "not a valid audit record"))
            break
        if record.get("seq") != expected_seq:
            problems.append(Problem(number, f"sequence {record.get('seq')} where {expected_seq} was expected: "
                                            "a record was deleted, inserted or moved"))  # fmt: skip
            break
        if record.get("prev") != prev:
            problems.append(
                Problem(number, "does not chain to the record before it: records were reordered or replaced")
            )
            break
        if _digest(prev, {k: v for k, v in record.items() if k != "hash"}) != claimed:
            problems.append(Problem(number, "its content does not match its hash: the record was edited"))
            break
        prev, expected_seq = claimed, expected_seq + 1
    if not problems:
        head_seq, head_hash = _read_head(folder)
        if (head_seq, head_hash) != (expected_seq - 1, prev):
            problems.append(Problem(len(lines) + first, f"the log ends at record {expected_seq - 1} but the head says "
                                                    f"{head_seq}: records were removed from the end"))  # fmt: skip
    return problems
