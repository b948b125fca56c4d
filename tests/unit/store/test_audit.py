"""The audit trail: append-only, chained under the audit key, and every kind of tampering is found and located."""

from __future__ import annotations

import hashlib
import hmac
import json
import multiprocessing as mp
import secrets
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from devicerisk.privacy.keys import Key
from devicerisk.store import audit


def new_key() -> Key:
    return Key.from_bytes(secrets.token_bytes(32), "audit")


@pytest.fixture
def trail(tmp_path: Path) -> audit.Trail:
    return audit.Trail(tmp_path, (new_key(),))


def _write(trail: audit.Trail, n: int) -> None:
    for i in range(n):
        audit.append(
            trail, actor="ingest-flow", role="pipeline", action="ingest", purpose="risk_control", counts={"accepted": i}
        )


def _lines(folder: Path) -> list[str]:
    return (folder / audit.LOG_NAME).read_text().splitlines()


def _rewrite(folder: Path, lines: list[str]) -> None:
    (folder / audit.LOG_NAME).write_text("\n".join(lines) + "\n")


def test_an_untouched_log_verifies(trail: audit.Trail) -> None:
    _write(trail, 5)
    assert audit.verify(trail) == []
    assert [r["seq"] for r in audit.records(trail.folder)] == [1, 2, 3, 4, 5]
    assert {r["key_id"] for r in audit.records(trail.folder)} == {trail.keys[0].key_id}


def test_clause_5_2_3_an_edit_is_found_where_it_is(trail: audit.Trail) -> None:
    _write(trail, 5)
    lines = _lines(trail.folder)
    record = json.loads(lines[2])
    record["counts"]["accepted"] = 999
    lines[2] = json.dumps(record, sort_keys=True)
    _rewrite(trail.folder, lines)
    [problem] = audit.verify(trail)
    assert problem.line == 3 and "the record was edited" in problem.reason


@pytest.mark.parametrize("change", ["delete", "insert", "reorder", "truncate"])
def test_clause_5_2_3_deletion_insertion_reordering_and_truncation_are_found(trail: audit.Trail, change: str) -> None:
    _write(trail, 5)
    lines = _lines(trail.folder)
    if change == "delete":
        del lines[1]
    elif change == "insert":
        lines.insert(2, lines[2])
    elif change == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
    else:
        lines = lines[:-2]
    _rewrite(trail.folder, lines)
    problems = audit.verify(trail)
    assert len(problems) == 1
    expected_line = {"delete": 2, "insert": 4, "reorder": 2, "truncate": 4}[change]
    assert problems[0].line == expected_line, problems


def _sha256_rechain(folder: Path) -> None:
    """What someone without the key can do: recompute every hash as a plain SHA-256 chain, and the head."""
    prev, out = audit.GENESIS, []
    for line in _lines(folder):
        record = json.loads(line)
        record.pop("hash")
        record["prev"] = prev
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        prev = record["hash"] = hashlib.sha256((prev + canonical).encode()).hexdigest()
        out.append(json.dumps(record, sort_keys=True))
    _rewrite(folder, out)
    (folder / audit.HEAD_NAME).write_text(f"{len(out)} {prev}\n")


def test_clause_5_2_3_an_edit_rechained_without_the_key_is_found(trail: audit.Trail) -> None:
    _write(trail, 4)
    lines = _lines(trail.folder)
    record = json.loads(lines[1])
    record["counts"]["accepted"] = 0
    lines[1] = json.dumps(record, sort_keys=True)
    _rewrite(trail.folder, lines)
    _sha256_rechain(trail.folder)
    [problem] = audit.verify(trail)
    assert problem.line == 1 and "without the audit key" in problem.reason


def test_clause_5_2_3_a_log_signed_with_another_key_is_refused(trail: audit.Trail) -> None:
    _write(trail, 2)
    [problem] = audit.verify(audit.Trail(trail.folder, (new_key(),)))
    assert problem.line == 1 and "not in the keyring" in problem.reason


def test_clause_5_2_3_after_a_key_rotation_old_records_verify_and_the_old_key_cannot_add_any(
    trail: audit.Trail,
) -> None:
    _write(trail, 2)
    rotated = audit.Trail(trail.folder, (new_key(), *trail.keys))
    _write(rotated, 2)
    assert audit.verify(rotated) == []
    assert [r["key_id"] for r in audit.records(trail.folder)] == [trail.keys[0].key_id] * 2 + [
        rotated.keys[0].key_id
    ] * 2
    _write(trail, 1)  # someone who kept the retired key appends with it
    [problem] = audit.verify(rotated)
    assert problem.line == 5 and "retired audit key" in problem.reason


def test_clause_5_2_3_cutting_the_tail_and_rewriting_the_head_is_found_against_a_head_kept_elsewhere(
    trail: audit.Trail,
) -> None:
    _write(trail, 5)
    kept_elsewhere = (5, str(audit.records(trail.folder)[-1]["hash"]))
    assert audit.verify(trail, kept_elsewhere) == []
    lines = _lines(trail.folder)[:3]
    _rewrite(trail.folder, lines)
    (trail.folder / audit.HEAD_NAME).write_text(f"3 {json.loads(lines[-1])['hash']}\n")
    assert audit.verify(trail) == []  # a shorter log is still a valid chain: the head kept elsewhere tells
    [problem] = audit.verify(trail, kept_elsewhere)
    assert problem.line == 4 and "removed from the end" in problem.reason
    _write(trail, 2)  # the tail written again: the same length, but not the same record 5
    [problem] = audit.verify(trail, kept_elsewhere)
    assert "rewritten" in problem.reason


@pytest.mark.parametrize("removed", [[audit.HEAD_NAME], [audit.LOG_NAME]])
def test_clause_5_2_3_a_deleted_log_or_head_file_is_found(trail: audit.Trail, removed: list[str]) -> None:
    _write(trail, 3)
    for name in removed:
        (trail.folder / name).unlink()
    [problem] = audit.verify(trail)
    assert "missing" in problem.reason


def test_clause_5_2_3_a_log_shorter_than_the_activity_of_the_stores_is_found(trail: audit.Trail) -> None:
    _write(trail, 2)
    at = datetime.fromisoformat(str(audit.records(trail.folder)[-1]["at"]))
    assert audit.missing_activity(trail.folder, {"ingest": at}) == []
    later, earlier = at + timedelta(seconds=1), at - timedelta(days=1)
    problems = audit.missing_activity(trail.folder, {"ingest": later, "hold.place": earlier})
    assert [p.line for p in problems] == [3, 3]
    assert "hold.place" in problems[0].reason and "ingest" in problems[1].reason
    assert all("removed from the end" in p.reason for p in problems)
    [problem] = audit.missing_activity(trail.folder / "elsewhere", {"ingest": at})
    assert "the log is missing" in problem.reason


def test_clause_5_2_1_audit_fields_that_could_hold_a_value_are_refused(trail: audit.Trail) -> None:
    with pytest.raises(audit.AuditError):
        audit.append(trail, actor="analyst", role="fraud", action="lookup", purpose="risk control for 13800138000")
    assert not (trail.folder / audit.LOG_NAME).exists()


def _append_many(folder: str, material: bytes, n: int) -> None:
    _write(audit.Trail(Path(folder), (Key.from_bytes(material, "audit"),)), n)


def test_clause_5_2_3_several_writer_processes_keep_the_chain_whole(trail: audit.Trail) -> None:
    ctx = mp.get_context("spawn")
    args = (str(trail.folder), trail.keys[0].material, 25)
    writers = [ctx.Process(target=_append_many, args=args) for _ in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert all(w.exitcode == 0 for w in writers)
    assert audit.verify(trail) == []
    assert len(audit.records(trail.folder)) == 100


def _body(i: int) -> dict[str, object]:
    return audit.body("lookup-service", "fraud_analyst", "api.account_risk", "risk_control", {"i": i})


def test_clause_5_2_3_an_appender_kept_open_joins_the_chain_after_other_writers_replace_its_files(
    trail: audit.Trail,
) -> None:
    """A long-lived appender (the lookup service's) keeps its files open: records another process appends, an
    expiry that replaces the log and the head, and a removed lock file all leave one chain that verifies."""
    appender = audit.Appender(trail)
    try:
        appender.append([_body(0), _body(1)])
        writer = mp.get_context("spawn").Process(
            target=_append_many, args=(str(trail.folder), trail.keys[0].material, 3)
        )
        writer.start()
        writer.join()
        assert writer.exitcode == 0
        appender.append([_body(2)])
        cut = audit.expire(trail, datetime.now().astimezone() + timedelta(days=1))  # replaces log and head
        assert cut == 6
        appender.append([_body(3)])
        (trail.folder / ".lock").unlink()  # a new lock file: the appender must lock that one, not the old
        appender.append([_body(4)])
    finally:
        appender.close()
    assert audit.verify(trail) == []
    kept = audit.records(trail.folder)
    assert [r["action"] for r in kept] == ["audit.expire", "api.account_risk", "api.account_risk"]
    assert [r["seq"] for r in kept] == [7, 8, 9] and [r["counts"]["i"] for r in kept[1:]] == [3, 4]
    assert audit._read_head(trail.folder) == (9, kept[-1]["hash"])


def test_a_record_s_hash_covers_json_s_sorted_compact_ascii_form(trail: audit.Trail) -> None:
    """The canonical bytes are json.dumps's (sorted, compact, ASCII) for every record (names, times, integers:
    never a float), whichever library writes them, so records written before and after stay verifiable; and a
    hash is the HMAC of the previous hash and those bytes, so a log written by json alone verifies."""
    records = [
        audit.body("lookup-service", "fraud_analyst", "api.account_risk", "risk_control", {"found": 1}),
        audit.body("a", "b", "c.d:e-f_g", "security", {"z": 2**62, "a": -3, "m": 0}, target="acme-analytics"),
        audit.body("x" * 64, "pipeline", "ingest", "risk_control", {}),
        {"text": "nöt äscii", "n": 1, "nested": {"b": [1, 2], "a": None, "t": True}},
        {"big": 2**70, "n": 1},  # what orjson cannot write
    ]
    assert audit.body("a", "b", "c", "security", {"n": 2.7})["counts"] == {"n": 2}  # a record holds no float
    key = trail.keys[0]
    for record in records:
        signed = audit._signed(key, record, 41, "ab" * 32)
        body = {k: v for k, v in signed.items() if k != "hash"}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
        assert audit._canonical(body) == canonical
        assert signed["hash"] == hmac.new(key.material, b"ab" * 32 + canonical, hashlib.sha256).hexdigest()
