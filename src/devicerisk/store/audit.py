"""The audit trail (5.2.1, 5.2.3): an append-only, authenticated chain of records of actions on personal data.

Each record holds who, role, what, purpose, when and counts, never a raw value, the hash of the record
before it and the id of the audit key. Its own hash is an HMAC-SHA256 under that key, which lives
outside the data directory: editing, deleting, inserting or reordering records breaks the chain, and
only a holder of the key could re-chain it. :func:`verify` says where it breaks. A head file keeps the
last sequence number and hash, so removing records from the end is detected too; :func:`missing_activity`
compares the log with what the other stores record, and a head kept off the machine can be checked.
Writers in several processes append under an exclusive file lock.
"""

from __future__ import annotations

import fcntl
import hmac
import json
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from devicerisk.contract import purposes
from devicerisk.privacy.keys import Key
from devicerisk.store.files import LOCK_NAME, locked

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


@dataclass(frozen=True, slots=True)
class Trail:
    """An audit log: its folder and its keys, the current one (which signs new records) first, then retired ones."""

    folder: Path
    keys: tuple[Key, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("an audit trail needs its key")


def _canonical(body: Mapping[str, object]) -> bytes:
    """The bytes a record's hash covers: ``json.dumps(body, sort_keys=True, separators=(",", ":"),
    ensure_ascii=True)``.

    Records hold short names (``[A-Za-z0-9_.:-]``), ISO times, hex digests and integers only, never a float or a
    control character (:func:`body` checks every name and makes every count an ``int``, as it always has), and
    for those orjson writes the very same bytes, several times faster (the two differ on floats and on DEL). Text that
    is not ASCII (orjson's output is then not ASCII) and what orjson refuses (integers over 64 bits) go through
    json itself.
    """
    try:
        data = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        data = None
    if data is not None and data.isascii():
        return data
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _digest(key: Key, prev_hash: str, body: Mapping[str, object]) -> str:
    return hmac.digest(key.material, prev_hash.encode() + _canonical(body), "sha256").hex()  # one call into C


def check_name(field: str, value: str) -> str:
    if not _NAME.fullmatch(value):
        raise AuditError(f"audit field {field!r} must be a short name ([A-Za-z0-9_.:-], at most 64 characters)")
    return value


def _read_head(folder: Path) -> tuple[int, str]:
    path = folder / HEAD_NAME
    return _parse_head(path.read_bytes()) if path.exists() else (0, GENESIS)


def _chain(trail: Trail, content: dict[str, object]) -> dict[str, object]:
    """``content`` as the next record after the head, signed with the current key (the caller holds the lock)."""
    return _signed(trail.keys[0], content, *_read_head(trail.folder))


def _signed(key: Key, content: dict[str, object], seq: int, prev: str) -> dict[str, object]:
    """``content`` as the record after record ``seq`` (whose hash is ``prev``), signed with ``key``."""
    signed = {**content, "seq": seq + 1, "prev": prev, "key_id": key.key_id}
    return {**signed, "hash": _digest(key, prev, signed)}


def body(
    actor: str,
    role: str,
    action: str,
    purpose: str,
    counts: Mapping[str, int] | None = None,
    when: datetime | None = None,
    target: str | None = None,
) -> dict[str, object]:
    """A record's content, checked (:class:`AuditError` if a field could hold a value, and
    ``purposes.UnregisteredPurposeError`` for a purpose the contract does not register), for :func:`append_many`.

    ``target`` names what was acted on when it is not a data subject (a processor), a short name too; records
    without one are written as before, so their hashes do not change.
    """
    content: dict[str, object] = {
        "actor": check_name("actor", actor),
        "role": check_name("role", role),
        "action": check_name("action", action),
        "purpose": purposes.require(check_name("purpose", purpose)).name,  # only a registered purpose (2.8)
        "counts": {check_name("count", k): int(v) for k, v in (counts or {}).items()},
        "at": (when or datetime.now(UTC)).isoformat(),
    }
    if target is not None:
        content["target"] = check_name("target", target)
    return content


def append_many(trail: Trail, bodies: list[dict[str, object]]) -> list[dict[str, object]]:
    """Append records made by :func:`body`, in order, under one lock with one flush to disk (a group commit);
    returns them. A process that appends often keeps an :class:`Appender` instead."""
    appender = Appender(trail)
    try:
        return appender.append(bodies)
    finally:
        appender.close()


class Appender:
    """Appends to one trail and keeps its lock, log and head files open between appends (thread-safe).

    Opening, locking and replacing files cost more than the flush itself (a lookup service appends a record
    per request): here an append is a lock, a read of the head, one write and ``fdatasync`` of the log, and
    the head rewritten in place. Other processes append and :func:`expire` at the same time; under the lock,
    a file another process replaced or removed since is opened again, so every record joins the one chain.
    """

    def __init__(self, trail: Trail) -> None:
        self.trail = trail
        self._mutex = threading.Lock()  # a file lock held through one descriptor does not exclude threads
        self._fds: dict[str, int] = {}
        self._paths = {name: str(trail.folder / name) for name in (LOCK_NAME, HEAD_NAME, LOG_NAME)}

    def append(self, bodies: list[dict[str, object]]) -> list[dict[str, object]]:
        """Append records made by :func:`body`, in order; on disk when this returns. Returns them."""
        if not bodies:
            return []
        with self._mutex:
            lock = self._locked()
            try:
                head = self._fd(HEAD_NAME, os.O_RDWR | os.O_CREAT)
                seq, prev = _parse_head(os.pread(head, 256, 0))
                records = []
                for content in bodies:
                    record = _signed(self.trail.keys[0], content, seq, prev)
                    seq, prev = int(record["seq"]), str(record["hash"])  # type: ignore[call-overload]
                    records.append(record)
                log = self._fd(LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
                data = memoryview("".join(_line(r) for r in records).encode())
                while data:  # a regular file takes it all at once, but a short write must not cut a record
                    data = data[os.write(log, data) :]
                _sync(log)
                os.pwrite(head, _head_line(records[-1]), 0)  # never shorter: the sequence only grows
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return records

    def _locked(self) -> int:
        """The folder's writer lock, held (its lock file recreated if it was removed since it was opened)."""
        while True:
            lock = self._fd(LOCK_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self._current(LOCK_NAME, lock):
                return lock
            fcntl.flock(lock, fcntl.LOCK_UN)

    def _current(self, name: str, fd: int) -> bool:
        try:
            st = os.stat(self._paths[name])
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (st.st_ino, st.st_dev) == (held.st_ino, held.st_dev)

    def _fd(self, name: str, flags: int) -> int:
        """The open descriptor of ``name``, opened again if the path now names another file (or none)."""
        fd = self._fds.get(name)
        if fd is not None and self._current(name, fd):
            return fd
        if fd is not None:
            os.close(fd)
        self.trail.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._fds[name] = fd = os.open(self._paths[name], flags, 0o600)
        return fd

    def close(self) -> None:
        """Close the files (a later append opens them again)."""
        with self._mutex:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


def _sync(fd: int) -> None:
    """Data and size on disk (``fdatasync`` where the platform has it: no wait for the file's times)."""
    getattr(os, "fdatasync", os.fsync)(fd)


def _head_line(record: Mapping[str, object]) -> bytes:
    return f"{record['seq']} {record['hash']}\n".encode()


def _parse_head(text: bytes) -> tuple[int, str]:
    """The head's sequence number and hash (an empty head: the log's start)."""
    if not text:
        return 0, GENESIS
    seq, digest = text.split()
    return int(seq), digest.decode()


def _write_head(folder: Path, record: Mapping[str, object]) -> None:
    tmp = folder / f".{HEAD_NAME}.tmp"
    tmp.write_bytes(_head_line(record))
    os.replace(tmp, folder / HEAD_NAME)


def _line(record: Mapping[str, object]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=True) + "\n"


def append(
    trail: Trail,
    *,
    actor: str,
    role: str,
    action: str,
    purpose: str,
    counts: Mapping[str, int] | None = None,
    when: datetime | None = None,
    target: str | None = None,
) -> dict[str, object]:
    """Append one record and return it. Counts are integers; names are short identifiers."""
    return append_many(trail, [body(actor, role, action, purpose, counts, when, target)])[0]


def _split(lines: list[str]) -> tuple[dict[str, object] | None, list[str]]:
    """The anchor left by :func:`expire` (if the log starts with one) and the record lines."""
    if lines and lines[0].startswith('{"anchor"'):
        return json.loads(lines[0])["anchor"], lines[1:]
    return None, lines


def expire(trail: Trail, before: datetime, *, actor: str = "retention-flow") -> int:
    """Drop the records dated before ``before`` from the start of the log (its retention); returns how many.

    The first line becomes an anchor with the sequence number and hash of the last record dropped,
    so the records kept still verify. An ``audit.expire`` record, chained like any other and written
    in the same atomic replace, says through which record the log was cut: an anchor without it
    (records removed from the start by hand) is reported by :func:`verify`.
    """
    with locked(trail.folder):
        path = trail.folder / LOG_NAME
        _, lines = _split(path.read_text().splitlines() if path.exists() else [])
        dated = [datetime.fromisoformat(str(json.loads(line)["at"])) for line in lines]
        cut = next((i for i, at in enumerate(dated) if at >= before), len(lines))
        if cut == 0:
            return 0
        last = json.loads(lines[cut - 1])
        anchor = json.dumps({"anchor": {"seq": last["seq"], "hash": last["hash"]}}, sort_keys=True)
        content = body(actor, "pipeline", "audit.expire", "retention", {"records": cut, "through_seq": last["seq"]})
        record = _chain(trail, content)
        tmp = trail.folder / f".{LOG_NAME}.tmp"
        tmp.write_text(anchor + "\n" + "".join(line + "\n" for line in lines[cut:]) + _line(record))
        os.replace(tmp, path)
        _write_head(trail.folder, record)
    return cut


def records(folder: Path) -> list[dict[str, object]]:
    """Every record of the log, oldest first (read without the key: :func:`verify` authenticates them)."""
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


def _key_problem(key_ids: list[str], key_id: object, newest_rank: int) -> str | None:
    """Why ``key_id`` may not sign the record here: none, unknown, or a retired key after a newer one."""
    if key_id is None:
        return "carries no audit key id: it was written without the audit key"
    if key_id not in key_ids:
        return f"is signed with audit key {key_id}, which is not in the keyring: forged, or a retired key is missing"
    if key_ids.index(str(key_id)) > newest_rank:
        return f"is signed with the retired audit key {key_id} after a newer key: records were added with an old key"
    return None


def _walk(trail: Trail, lines: list[str], first: int, prev: str, seq: int) -> tuple[list[Problem], str, int]:
    """Check each record's sequence, link, key and hash from line ``first``; returns the problems and the tail."""
    key_ids = [k.key_id for k in trail.keys]
    rank = len(key_ids) - 1  # keys only get newer along the log: current first, the oldest retired one last
    for number, line in enumerate(lines, start=first):
        try:
            record = json.loads(line)
            claimed = record.pop("hash")
        except (json.JSONDecodeError, KeyError, AttributeError):
            return [Problem(number, "not a valid audit record")], prev, seq
        if record.get("seq") != seq + 1:
            return (
                [
                    Problem(
                        number,
                        f"sequence {record.get('seq')} where {seq + 1} was expected: "
                        "a record was deleted, inserted or moved",
                    )
                ],
                prev,
                seq,
            )
        if record.get("prev") != prev:
            reason = "does not chain to the record before it: records were reordered or replaced"
            return [Problem(number, reason)], prev, seq
        if (why := _key_problem(key_ids, record.get("key_id"), rank)) is not None:
            return [Problem(number, why)], prev, seq
        rank = key_ids.index(record["key_id"])
        if not hmac.compare_digest(_digest(trail.keys[rank], prev, record), str(claimed)):
            reason = "its content does not match its hash: the record was edited, or chained without the audit key"
            return [Problem(number, reason)], prev, seq
        prev, seq = str(claimed), seq + 1
    return [], prev, seq


def _seen_hash(folder: Path, anchor: Mapping[str, object] | None, seq: int) -> str | None:
    """The hash the log holds for record ``seq`` (``None`` if it was cut before the anchor, so cannot be compared)."""
    if anchor is not None and seq == anchor["seq"]:
        return str(anchor["hash"])
    return next((str(r["hash"]) for r in records(folder) if r["seq"] == seq), None)


def _against_head(folder: Path, anchor: Mapping[str, object] | None, end: int, head: tuple[int, str]) -> str | None:
    """Why the log does not reach, or no longer holds, a head recorded earlier (off the machine)."""
    seq, digest = head
    if seq > end:
        return f"the log ends at record {end} but a head recorded earlier says {seq}: records were removed from the end"
    cut_before = anchor is not None and seq < int(anchor["seq"])  # type: ignore[call-overload]
    if not cut_before and _seen_hash(folder, anchor, seq) != digest:
        return f"record {seq} is not the one a head recorded earlier names: the log was rewritten"
    return None


def verify(trail: Trail, head: tuple[int, str] | None = None) -> list[Problem]:
    """Check the whole chain and the head file; an empty list means the log is intact.

    ``head`` is a (sequence, hash) pair recorded earlier and kept off this machine: the log must still
    reach that record and hold it unchanged. Without it, or :func:`missing_activity`, a log cut at its
    end together with its head file cannot be told from a shorter one.
    """
    folder = trail.folder
    path, head_path = folder / LOG_NAME, folder / HEAD_NAME
    if not path.exists():
        if head_path.exists():
            return [Problem(1, f"the log is missing but its head says {_read_head(folder)[0]} records: it was deleted")]
        return [] if head is None else [Problem(1, f"the log is missing but it reached record {head[0]}: deleted")]
    anchor, lines = _split(path.read_text().splitlines())
    prev, seq, first = GENESIS, 0, 1
    problems: list[Problem] = []
    if anchor is not None:  # the log was cut by expire(): the chain resumes after the anchor
        prev, seq, first = str(anchor["hash"]), int(anchor["seq"]), 2  # type: ignore[call-overload]
        if not any(_expired_through(line) == anchor["seq"] for line in lines):
            problems.append(
                Problem(
                    1,
                    f"the log starts after record {anchor['seq']} but no audit.expire record "
                    "says so: records were removed from the start",
                )
            )
    walked, prev, seq = _walk(trail, lines, first, prev, seq)
    problems += walked
    if problems:
        return problems
    end_line = len(lines) + first
    if not head_path.exists():
        return [Problem(end_line, f"the head file {HEAD_NAME} is missing: records may have been removed from the end")]
    if _read_head(folder) != (seq, prev):
        return [
            Problem(
                end_line,
                f"the log ends at record {seq} but the head says {_read_head(folder)[0]}: "
                "records were removed from the end",
            )
        ]
    if head is not None and (why := _against_head(folder, anchor, seq, head)) is not None:
        return [Problem(end_line, why)]
    return []


def _time(record: Mapping[str, object]) -> datetime:
    at = datetime.fromisoformat(str(record["at"]))
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def missing_activity(folder: Path, activity: Mapping[str, datetime]) -> list[Problem]:
    """Actions the other stores record but the log does not: it is shorter than the activity it audits.

    ``activity`` maps an action to the newest time the stores record it (a batch in the ledger, a finished
    request, a purge). The action's record is written at or after that time, so a log without such a
    record was cut at its end or deleted (or the run stopped before writing it; its next run covers it).
    Activity older than the first record kept is not checked once :func:`expire` has cut the log.
    """
    path = folder / LOG_NAME
    anchor, lines = _split(path.read_text().splitlines() if path.exists() else [])
    kept = records(folder)
    since = _time(kept[0]) if anchor is not None and kept else None
    newest: dict[str, datetime] = {}
    for record in kept:
        action, at = str(record["action"]), _time(record)
        newest[action] = max(at, newest.get(action, at))
    end_line = len(lines) + (2 if anchor is not None else 1)
    problems = []
    for action, at in sorted(activity.items()):
        if (since is None or at >= since) and not (action in newest and newest[action] >= at):
            where = "the log is missing" if not kept else "the log holds none since"
            when = at.isoformat(timespec="seconds")
            problems.append(
                Problem(
                    end_line,
                    f"the stores record {action} at {when} but {where}: records were "
                    "removed from the end or the log was deleted",
                )
            )
    return problems
