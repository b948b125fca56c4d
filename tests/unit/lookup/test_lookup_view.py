"""The serving view: lookups, the review queue, masked references, and the switch to a newly published snapshot
while threads keep looking up (no error, every answer from whole snapshots, never an older one after a newer)."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from devicerisk.lookup.view import LiveView, ServingView
from devicerisk.store import serving, snapshots
from devicerisk.store.rows import SubjectRows
from factories import T0, account_snapshot, pid, refs, transaction_snapshot

ACCOUNTS = [pid(i) for i in range(1, 41)]


def _publish(serving_dir: Path, generation: int) -> None:
    """Generation ``generation`` of both snapshots: every score is the generation, so an answer shows its files."""
    score = float(generation % 100)
    serving.publish(serving_dir, serving.ACCOUNTS, account_snapshot(ACCOUNTS, [score] * len(ACCOUNTS), T0))
    rows = [(pid(1000 + i), a, T0 - timedelta(hours=i), score) for i, a in enumerate(ACCOUNTS * 2)]
    serving.publish(serving_dir, serving.TRANSACTIONS, transaction_snapshot(rows))


def test_lookups_answer_from_the_snapshots(tmp_path: Path) -> None:
    scores = [float(i) for i in range(len(ACCOUNTS))]
    serving.publish(tmp_path, serving.ACCOUNTS, account_snapshot(ACCOUNTS, scores, T0))
    rows = [(pid(1000 + i), ACCOUNTS[0], T0 - timedelta(hours=i), 10.0 + i) for i in range(30)]
    rows.insert(3, (pid(999), None, T0, 1.0))  # an unlogged transaction, in the middle: the view reorders
    serving.publish(tmp_path, serving.TRANSACTIONS, transaction_snapshot(rows))
    view = ServingView.load(tmp_path, refs())

    found = view.account(ACCOUNTS[0])
    assert found["score"] == 0.0 and found["reasons"] == [f"reason of {ACCOUNTS[0][-4:]}"]
    assert found["as_of"] == T0.isoformat() and found["model_version"] == "v1"
    times = [t["event_time"] for t in found["transactions"]]
    assert len(times) == 20 and times == sorted(times, reverse=True) and found["transactions_total"] == 30
    assert view.account(ACCOUNTS[1])["transactions"] == []
    assert view.transaction(pid(1005))["score"] == 15.0
    assert view.transaction(pid(999))["account_id_pid"] is None
    for unknown in (pid(998), "not-a-pseudonym", "", "../../etc/passwd", "' OR 1=1 --"):
        assert view.account(unknown) is None and view.transaction(unknown) is None and view.device(unknown) is None


def test_the_queue_is_a_days_riskiest_rows_by_level_with_a_total(tmp_path: Path) -> None:
    yesterday = T0 - timedelta(days=1)
    old = account_snapshot([pid(i) for i in range(100, 105)], [99.0] * 5, yesterday)
    new = account_snapshot(ACCOUNTS, [float((i * 37) % 100) for i in range(len(ACCOUNTS))], T0)
    serving.publish(tmp_path, serving.ACCOUNTS, pa.concat_tables([old, new]))
    view = ServingView.load(tmp_path, refs())
    rows = new.to_pylist()

    page = view.queue("account", offset=5, limit=10)
    want = sorted(rows, key=lambda r: (-r["score"], r["account_id_pid"]))
    assert page["day"] == T0.date().isoformat() and page["total"] == len(ACCOUNTS)
    assert [r["account_id_pid"] for r in page["items"]] == [r["account_id_pid"] for r in want[5:15]]
    highest = view.queue("account", level="highest", limit=100)
    assert highest["total"] == sum(r["level"] == "highest" for r in rows) > 0
    assert all(r["level"] == "highest" for r in highest["items"])
    day = view.queue("account", day=yesterday.date())
    assert day["total"] == 5 and {r["score"] for r in day["items"]} == {99.0}
    assert view.queue("account", day=date(2020, 1, 1))["total"] == 0
    assert view.queue("account", level="no such level")["items"] == []
    assert view.queue("transaction")["total"] == 0  # no transaction snapshot yet
    with pytest.raises(ValueError):
        view.queue("device")


def test_references_resolve_only_to_what_the_view_holds(tmp_path: Path) -> None:
    serving.publish(tmp_path, serving.ACCOUNTS, account_snapshot(ACCOUNTS, [1.0] * len(ACCOUNTS), T0))
    serving.publish(tmp_path, serving.TRANSACTIONS, transaction_snapshot([(pid(7), ACCOUNTS[0], T0, 5.0)]))
    view = ServingView.load(tmp_path, refs())

    ref = view.ref("account", ACCOUNTS[3])
    assert ref.startswith("acc_") and ACCOUNTS[3] not in ref and view.unref("account", ref) == ACCOUNTS[3]
    assert view.ref("account", ACCOUNTS[3]) == ref != view.ref("account", ACCOUNTS[4])
    assert view.unref("transaction", view.ref("transaction", pid(7))) == pid(7)
    assert view.unref("transaction", ref) is None  # another kind's reference
    assert view.unref("account", view.ref("account", pid(999))) is None  # well formed, names nothing here
    assert ServingView.load(tmp_path, refs()).unref("account", ref) is None  # another key's reference
    for forged in ("", "acc_", ref[:-1], ref + "a", ref.upper(), "acc_" + "0" * 26, ACCOUNTS[3], "../" + ref):
        assert view.unref("account", forged) is None
    with pytest.raises(ValueError):
        view.ref("account", "not a pseudonym")
    # a lookup by reference answers what the lookup by pseudonym does, and nothing for what unref refuses
    assert view.by_ref("account", ref) == view.account(ACCOUNTS[3]) is not None
    assert view.by_ref("transaction", view.ref("transaction", pid(7))) == view.transaction(pid(7)) is not None
    for other in ("acc_" + "0" * 26, ref[:-1], view.ref("account", pid(999))):
        assert view.by_ref("account", other) is None
    assert view.by_ref("transaction", ref) is None


def test_lookups_during_snapshot_switches_never_fail_and_each_answer_is_whole(tmp_path: Path) -> None:
    _publish(tmp_path, 0)
    live = LiveView(tmp_path, refs())
    errors: list[BaseException] = []
    seen: list[list[tuple[float, float | None]]] = [[] for _ in range(4)]
    stop = threading.Event()

    def reader(k: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                found = live.current().account(ACCOUNTS[i % len(ACCOUNTS)])
                assert found is not None
                txn = {t["score"] for t in found["transactions"]}
                assert len(txn) == 1 and len(found["transactions"]) == 2  # one whole transaction snapshot
                seen[k].append((found["score"], txn.pop()))
            except BaseException as err:  # every failure counts, whatever it is
                errors.append(err)
            i += 1

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for generation in range(1, 40):
        _publish(tmp_path, generation)
        time.sleep(0.01)
    time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()

    assert errors == []
    assert all(len(s) > 10 for s in seen)
    for answers in seen:  # a reader never goes back to an older snapshot
        accounts = [a for a, _ in answers]
        assert accounts == sorted(accounts)
    assert live.current().account(ACCOUNTS[0])["score"] == 39.0  # the last one published is the one read


def test_a_lookup_after_a_rewrite_never_finds_the_removed_rows(tmp_path: Path) -> None:
    _publish(tmp_path, 1)
    live = LiveView(tmp_path, refs())
    assert live.current().account(ACCOUNTS[0]) is not None
    removed = sum(
        snapshots.remove_rows(p, SubjectRows(frozenset({ACCOUNTS[0]})).mask) for p in snapshots.files(tmp_path)
    )
    assert removed == 3  # its account row and its two transactions
    assert live.current().account(ACCOUNTS[0]) is None  # the very next lookup: wait=True loads the new view first
    assert live.current().account(ACCOUNTS[1]) is not None


def test_without_waiting_the_old_view_answers_until_the_new_one_is_built(tmp_path: Path) -> None:
    _publish(tmp_path, 1)
    live = LiveView(tmp_path, refs(), wait=False)
    first = live.current()
    _publish(tmp_path, 2)
    answered = live.current()  # answers at once, from the view it has, and starts the build
    assert answered.account(ACCOUNTS[0]) is not None
    deadline = time.monotonic() + 30
    while live.current() is first and time.monotonic() < deadline:
        time.sleep(0.01)
    assert live.current().account(ACCOUNTS[0])["score"] == 2.0
    assert first.account(ACCOUNTS[0])["score"] == 1.0  # the old view is unchanged for whoever still holds it
