"""The audit trail's own retention (3 years) and its promises under several writers (5.2.1, 5.2.3)."""

from __future__ import annotations

import json
import multiprocessing as mp
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from devicerisk.privacy.keys import Key
from devicerisk.store import audit

NOW = datetime.now(UTC)


@pytest.fixture
def trail(tmp_path: Path) -> audit.Trail:
    return audit.Trail(tmp_path, (Key.from_bytes(secrets.token_bytes(32), "audit"),))


def _append(trail: audit.Trail, when: datetime, n: int = 1) -> None:
    for i in range(n):
        audit.append(
            trail,
            actor="retention-flow",
            role="pipeline",
            action="retention.purge",
            purpose="retention",
            counts={"removed": i},
            when=when,
        )


def test_clause_5_2_3_audit_records_older_than_three_years_expire_and_the_rest_verifies(trail: audit.Trail) -> None:
    _append(trail, NOW - timedelta(days=4 * 365), 3)
    _append(trail, NOW - timedelta(days=10), 2)
    assert audit.expire(trail, NOW - timedelta(days=1095)) == 3
    assert audit.verify(trail) == []
    kept = audit.records(trail.folder)
    assert [r["seq"] for r in kept] == [4, 5, 6]
    assert kept[-1]["action"] == "audit.expire" and kept[-1]["counts"] == {"records": 3, "through_seq": 3}
    assert audit.expire(trail, NOW - timedelta(days=1095)) == 0  # nothing more to cut
    _append(trail, NOW)  # appending after a cut chains on
    assert audit.verify(trail) == []
    # activity older than the records kept is no longer checked against the log; newer activity still is
    assert audit.missing_activity(trail.folder, {"ingest": NOW - timedelta(days=2000)}) == []
    assert len(audit.missing_activity(trail.folder, {"ingest": NOW - timedelta(days=1)})) == 1


def test_clause_5_2_3_records_removed_from_the_start_are_found_even_behind_a_forged_anchor(trail: audit.Trail) -> None:
    _append(trail, NOW, 4)
    lines = (trail.folder / audit.LOG_NAME).read_text().splitlines()
    second = json.loads(lines[1])
    (trail.folder / audit.LOG_NAME).write_text("\n".join(lines[2:]) + "\n")
    assert audit.verify(trail)[0].line == 1  # record 3 where 1 was expected
    anchor = json.dumps({"anchor": {"hash": second["hash"], "seq": second["seq"]}}, sort_keys=True)
    (trail.folder / audit.LOG_NAME).write_text(anchor + "\n" + "\n".join(lines[2:]) + "\n")
    problems = audit.verify(trail)
    assert problems[0].line == 1 and "removed from the start" in problems[0].reason


def _trail(folder: str, material: bytes) -> audit.Trail:
    return audit.Trail(Path(folder), (Key.from_bytes(material, "audit"),))


def _writer(folder: str, material: bytes, n: int) -> None:
    _append(_trail(folder, material), NOW, n)


def _expirer(folder: str, material: bytes, rounds: int) -> None:
    for _ in range(rounds):
        audit.expire(_trail(folder, material), NOW - timedelta(days=1))


def test_clause_5_2_3_writers_and_the_expiry_in_several_processes_keep_the_chain_whole(trail: audit.Trail) -> None:
    _append(trail, NOW - timedelta(days=2000), 20)  # old records, cut while the writers append
    ctx = mp.get_context("spawn")
    where = (str(trail.folder), trail.keys[0].material)
    procs = [ctx.Process(target=_writer, args=(*where, 15)) for _ in range(3)]
    procs.append(ctx.Process(target=_expirer, args=(*where, 5)))
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs)
    assert audit.verify(trail) == []
    kept = audit.records(trail.folder)
    assert sum(r["action"] == "retention.purge" for r in kept) == 45  # every new record survived
    assert [r["seq"] for r in kept] == list(range(kept[0]["seq"], kept[0]["seq"] + len(kept)))
