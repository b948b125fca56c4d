"""The audit trail's own retention (3 years) and its promises under several writers (5.2.1, 5.2.3)."""

from __future__ import annotations

import json
import multiprocessing as mp
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devicerisk.store import audit

NOW = datetime.now(UTC)


def _append(folder: Path, when: datetime, n: int = 1) -> None:
    for i in range(n):
        audit.append(folder, actor="retention-flow", role="pipeline", action="retention.purge", purpose="retention",
                     counts={"removed": i}, when=when)  # fmt: skip


def test_clause_5_2_3_audit_records_older_than_three_years_expire_and_the_rest_still_verifies(tmp_path: Path) -> None:
    _append(tmp_path, NOW - timedelta(days=4 * 365), 3)
    _append(tmp_path, NOW - timedelta(days=10), 2)
    assert audit.expire(tmp_path, NOW - timedelta(days=1095)) == 3
    assert audit.verify(tmp_path) == []
    kept = audit.records(tmp_path)
    assert [r["seq"] for r in kept] == [4, 5, 6]
    assert kept[-1]["action"] == "audit.expire" and kept[-1]["counts"] == {"records": 3, "through_seq": 3}
    assert audit.expire(tmp_path, NOW - timedelta(days=1095)) == 0  # nothing more to cut
    _append(tmp_path, NOW)  # appending after a cut chains on
    assert audit.verify(tmp_path) == []


def test_clause_5_2_3_records_removed_from_the_start_are_found_even_behind_a_forged_anchor(tmp_path: Path) -> None:
    _append(tmp_path, NOW, 4)
    lines = (tmp_path / audit.LOG_NAME).read_text().splitlines()
    second = json.loads(lines[1])
    (tmp_path / audit.LOG_NAME).write_text("\n".join(lines[2:]) + "\n")
    assert audit.verify(tmp_path)[0].line == 1  # record 3 where 1 was expected
    anchor = json.dumps({"anchor": {"hash": second["hash"], "seq": second["seq"]}}, sort_keys=True)
    (tmp_path / audit.LOG_NAME).write_text(anchor + "\n" + "\n".join(lines[2:]) + "\n")
    problems = audit.verify(tmp_path)
    assert problems[0].line == 1 and "removed from the start" in problems[0].reason


def _writer(folder: str, n: int) -> None:
    _append(Path(folder), NOW, n)


def _expirer(folder: str, rounds: int) -> None:
    for _ in range(rounds):
        audit.expire(Path(folder), NOW - timedelta(days=1))


def test_clause_5_2_3_writers_and_the_expiry_in_several_processes_keep_the_chain_whole(tmp_path: Path) -> None:
    _append(tmp_path, NOW - timedelta(days=2000), 20)  # old records, cut while the writers append
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), 15)) for _ in range(3)]
    procs.append(ctx.Process(target=_expirer, args=(str(tmp_path), 5)))
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs)
    assert audit.verify(tmp_path) == []
    kept = audit.records(tmp_path)
    assert sum(r["action"] == "retention.purge" for r in kept) == 45  # every new record survived
    assert [r["seq"] for r in kept] == list(range(kept[0]["seq"], kept[0]["seq"] + len(kept)))
