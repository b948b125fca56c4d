"""The audit trail: append-only, hash-chained, and every kind of tampering is found and located."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest

from devicerisk.store import audit


def _write(folder: Path, n: int) -> None:
    for i in range(n):
        audit.append(folder, actor="ingest-flow", role="pipeline", action="ingest", purpose="risk_control",
                     counts={"accepted": i})  # fmt: skip


def _lines(folder: Path) -> list[str]:
    return (folder / audit.LOG_NAME).read_text().splitlines()


def _rewrite(folder: Path, lines: list[str]) -> None:
    (folder / audit.LOG_NAME).write_text("\n".join(lines) + "\n")


def test_an_untouched_log_verifies(tmp_path: Path) -> None:
    _write(tmp_path, 5)
    assert audit.verify(tmp_path) == []
    assert [r["seq"] for r in audit.records(tmp_path)] == [1, 2, 3, 4, 5]


def test_clause_5_2_3_an_edit_is_found_where_it_is(tmp_path: Path) -> None:
    _write(tmp_path, 5)
    lines = _lines(tmp_path)
    record = json.loads(lines[2])
    record["counts"]["accepted"] = 999
    lines[2] = json.dumps(record, sort_keys=True)
    _rewrite(tmp_path, lines)
    assert audit.verify(tmp_path) == [audit.Problem(3, "its content does not match its hash: the record was edited")]


@pytest.mark.parametrize("change", ["delete", "insert", "reorder", "truncate"])
def test_clause_5_2_3_deletion_insertion_reordering_and_truncation_are_found(tmp_path: Path, change: str) -> None:
    _write(tmp_path, 5)
    lines = _lines(tmp_path)
    if change == "delete":
        del lines[1]
    elif change == "insert":
        lines.insert(2, lines[2])
    elif change == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
    else:
        lines = lines[:-2]
    _rewrite(tmp_path, lines)
    problems = audit.verify(tmp_path)
    assert len(problems) == 1
    expected_line = {"delete": 2, "insert": 4, "reorder": 2, "truncate": 4}[change]
    assert problems[0].line == expected_line, problems


def test_clause_5_2_1_audit_fields_that_could_hold_a_value_are_refused(tmp_path: Path) -> None:
    with pytest.raises(audit.AuditError):
        audit.append(tmp_path, actor="analyst", role="fraud", action="lookup", purpose="risk control for 13800138000")
    assert not (tmp_path / audit.LOG_NAME).exists()


def _append_many(folder: str, n: int) -> None:
    _write(Path(folder), n)


def test_clause_5_2_3_several_writer_processes_keep_the_chain_whole(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    writers = [ctx.Process(target=_append_many, args=(str(tmp_path), 25)) for _ in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert all(w.exitcode == 0 for w in writers)
    assert audit.verify(tmp_path) == []
    assert len(audit.records(tmp_path)) == 100
