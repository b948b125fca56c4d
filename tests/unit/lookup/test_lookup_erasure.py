"""An erasure (6.2.2) carried out while the lookup service answers: lookups never fail during it, and the first
lookup after it completes no longer finds the subject, by account, phone, device or transaction."""

from __future__ import annotations

import threading

import retention_world as world
from devicerisk.config import Settings
from devicerisk.governance import requests
from devicerisk.governance.requests import RequestKind, Status
from devicerisk.governance.stores import stores_for
from devicerisk.lookup.resolve import candidates, find
from devicerisk.lookup.view import LiveView
from devicerisk.risk.scoring import score_transactions
from devicerisk.risk.service import RiskStores, score_accounts
from factories import champion, verified


def test_an_erased_subject_is_gone_from_the_next_lookup(settings: Settings) -> None:
    s = settings.model_copy(update={"vacuum_grace_hours": 0})
    w = world.build(s)
    champion(s.models_dir)
    risk = RiskStores.of(s)
    assert score_transactions(risk, "r1")["transactions_scored"] > 0
    assert score_accounts(risk)["accounts_scored"] == 3
    stores = stores_for(s)
    live = LiveView.of(s)

    before = live.current()
    subject = before.account(w.subject_pid)
    assert subject is not None and subject["score"] is not None and subject["transactions"]
    txn = subject["transactions"][0]["transaction_id_pid"]
    assert find(before, candidates("phone", world.SUBJECT.phone, stores.keyring))["accounts"] == [w.subject_pid]
    device = find(before, candidates("imei", world.SHARED_IMEI, stores.keyring))["devices"]
    assert device == [w.imei_pid]
    assert {a["account_id_pid"] for a in before.device(w.imei_pid)["accounts"]} == {w.subject_pid, w.neighbour_pid}

    errors: list[BaseException] = []
    done = threading.Event()

    def lookups() -> None:  # the service keeps answering while the erasure runs
        while not done.is_set():
            try:
                assert live.current().account(w.neighbour_pid) is not None
            except BaseException as err:
                errors.append(err)

    reader = threading.Thread(target=lookups)
    reader.start()
    try:
        row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())
    finally:
        done.set()
        reader.join()
    assert row.status == Status.COMPLETED
    assert errors == []

    after = live.current()
    assert after.account(w.subject_pid) is None
    assert after.transaction(txn) is None
    assert find(after, candidates("account", world.SUBJECT.account_id, stores.keyring))["accounts"] == []
    assert find(after, candidates("phone", world.SUBJECT.phone, stores.keyring))["accounts"] == []
    assert [a["account_id_pid"] for a in after.device(w.imei_pid)["accounts"]] == [w.neighbour_pid]
    assert after.queue("account", limit=10)["total"] == 2
    assert w.subject_pid not in {r["account_id_pid"] for r in after.queue("transaction", limit=100)["items"]}
    assert after.unref("account", before.ref("account", w.subject_pid)) is None
    assert before.account(w.subject_pid) is not None  # only a view held from before still has it
