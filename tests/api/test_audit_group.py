"""The service's audit writer: many threads, every record on disk when its call returns, one chain that verifies,
fewer flushes than records."""

from __future__ import annotations

import asyncio
import threading
from unittest import mock

from devicerisk.api.audit_writer import GroupAudit
from devicerisk.config import Settings
from devicerisk.governance.stores import audit_trail
from devicerisk.store import audit


def test_records_from_many_threads_form_one_intact_chain(settings: Settings) -> None:
    trail = audit_trail(settings)
    writer = GroupAudit(trail)
    seen: list[int] = []

    def work(n: int) -> None:
        for i in range(40):
            writer.record(audit.body(f"t{n}", "fraud_analyst", "api.account_risk", "risk_control", {"i": i}))
            seen.append(_on_disk(trail, f"t{n}", i))  # on disk before the call returned

    with mock.patch.object(writer._appender, "append", wraps=writer._appender.append) as spy:
        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    records = audit.records(trail.folder)
    assert len(records) == 320 and [r["seq"] for r in records] == list(range(1, 321))
    assert audit.verify(trail) == []
    assert len(seen) == 320 and all(seen)
    for n in range(8):  # each thread's records in its own order
        assert [r["counts"]["i"] for r in records if r["actor"] == f"t{n}"] == list(range(40))
    assert sum(len(call.args[0]) for call in spy.call_args_list) == 320 and spy.call_count < 320


def test_a_failed_flush_fails_the_requests_it_held(settings: Settings) -> None:
    trail = audit_trail(settings)
    writer = GroupAudit(trail)
    writer.record(audit.body("a", "auditor", "api.audit_read", "audit"))
    (trail.folder / audit.HEAD_NAME).write_text("not a head\n")  # a damaged head: the chain cannot go on
    try:
        writer.record(audit.body("a", "auditor", "api.audit_read", "audit"))
    except ValueError:
        pass
    else:
        raise AssertionError("the write should have failed")
    assert len(audit.records(trail.folder)) == 1


def _on_disk(trail: audit.Trail, actor: str, i: int) -> bool:
    """Whether a whole line of the log holds the record (other threads may be writing the line after it)."""
    *whole, _ = (trail.folder / audit.LOG_NAME).read_text().split("\n")
    return any(f'"actor": "{actor}"' in line and f'"counts": {{"i": {i}}}' in line for line in whole)


def test_coroutines_and_threads_share_the_chain_and_each_turn_of_the_loop_is_one_flush(settings: Settings) -> None:
    """The lookups' path: each coroutine's record is on disk when its await returns; the records queued in one
    turn of the event loop go out in one flush; a thread writing at the same time joins the same chain."""
    trail = audit_trail(settings)
    writer = GroupAudit(trail)
    seen: list[bool] = []

    async def one(n: int, i: int) -> None:
        await writer.arecord(audit.body(f"c{n}", "fraud_analyst", "api.account_risk", "risk_control", {"i": i}))
        seen.append(_on_disk(trail, f"c{n}", i))

    async def rounds() -> None:
        for i in range(10):  # 10 turns of 25 requests each
            await asyncio.gather(*(one(n, i) for n in range(25)))

    def other() -> None:
        for i in range(30):
            writer.record(audit.body("thread", "auditor", "api.audit_read", "audit", {"i": i}))

    with mock.patch.object(writer._appender, "append", wraps=writer._appender.append) as spy:
        thread = threading.Thread(target=other)
        thread.start()
        asyncio.run(rounds())
        thread.join()
    records = audit.records(trail.folder)
    assert len(records) == 280 and [r["seq"] for r in records] == list(range(1, 281))
    assert audit.verify(trail) == [] and len(seen) == 250 and all(seen)
    from_loop = [c.args[0] for c in spy.call_args_list if c.args[0][0]["actor"].startswith("c")]
    assert [len(batch) for batch in from_loop] == [25] * 10  # one flush per turn of the loop
    writer.close()
