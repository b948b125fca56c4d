"""The device-risk snapshot against a plain computation over the same small lake, and device lookups on it."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from devicerisk.contract.fields import DEVICE_KEY_COLUMNS
from devicerisk.lookup.view import ServingView
from devicerisk.risk import published
from devicerisk.risk.service import RiskStores, score_accounts
from devicerisk.store import lake_scan, serving
from factories import T0, champion, ingest, pid, refs, registered, txn

D1, D2, ALIAS, D3 = pid(0xD1), pid(0xD2), pid(0xA1), pid(0xD3)
A1, A2, A3, A4 = pid(1), pid(2), pid(3), pid(4)


def _rows() -> list[dict[str, Any]]:
    h = timedelta(hours=1)
    return [
        txn(T0 - 2 * h, acct=A1, dev=D1, hardware_emulator=True),
        txn(T0 - 30 * h, acct=A1, dev=D1),
        registered(T0 - 10 * 24 * h, acct=A2, dev=D1, event_id="r2"),
        txn(T0 - 40 * 24 * h, acct=A3, dev=D1, event_id="old"),  # before the 31 days and the serving period
        txn(T0 - 3 * h, acct=A1, dev=D1, event_id="unlogged", account_id_pid=None),  # a device's unlogged use: no edge
        # keyed by its IMEI (first in the device key), found by its Android ID too
        txn(T0 - 5 * h, acct=A2, dev=ALIAS, device_imei_pid=D2, rooted=True, event_id="d2"),
        txn(T0 - 6 * h, acct=A4, dev=D2, installed_hook_app=True, event_id="d2b"),
        txn(T0 - 4 * h, acct=A4, dev=None, event_id="nodevice"),  # no device identifier at all
        txn(T0 + h, acct=A4, dev=D3, event_id="after"),  # after as_of: not seen yet
    ]


def _plain(rows: list[dict[str, Any]], as_of: datetime, since: datetime) -> dict[tuple[str, str], dict[str, Any]]:
    """The aggregation of the module's docstring, row by row in Python."""
    devices: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        key = next((r[c] for c in DEVICE_KEY_COLUMNS if r.get(c) is not None), None)
        if key is not None and r["event_time"] < as_of:
            devices.setdefault(key, []).append(r)
    out = {}
    for key, evs in devices.items():

        def any_of(*cols: str, evs: list[dict[str, Any]] = evs) -> bool:
            return any(bool(e.get(c)) for e in evs for c in cols)

        def accounts(width: timedelta, evs: list[dict[str, Any]] = evs) -> int:
            return len({e["account_id_pid"] for e in evs if e["account_id_pid"] and e["event_time"] >= as_of - width})

        device = {
            "accounts_24h": accounts(timedelta(hours=24)),
            "accounts_31d": accounts(timedelta(days=31)),
            "emulator": any_of("hardware_emulator", "device_model_emulator"),
            "rooted": any_of("rooted"),
            "root_app": any_of("installed_root_app", "running_root_app"),
            "hook_app": any_of("installed_hook_app", "running_hook_app"),
            "first_seen": min(e["event_time"] for e in evs),
            "last_seen": max(e["event_time"] for e in evs),
            "device_ids": sorted({e[c] for e in evs for c in DEVICE_KEY_COLUMNS if e.get(c)}),
        }
        for acct in {e["account_id_pid"] for e in evs if e["account_id_pid"]}:
            times = [e["event_time"] for e in evs if e["account_id_pid"] == acct]
            if max(times) >= since:
                edge = {"account_events": len(times), "account_first_seen": min(times)}
                out[(key, acct)] = device | edge | {"account_last_seen": max(times), "event_date": max(times).date()}
    return out


def test_device_risk_matches_a_plain_computation(tmp_path: Path) -> None:
    rows = _rows()
    ingest(tmp_path / "lake", rows, "b1")
    as_of, days = T0, 30
    got = published.device_risk(lake_scan.snapshot(tmp_path / "lake", "events"), as_of, days)

    want = _plain(rows, as_of, as_of - timedelta(days=days))
    assert {(r["device_key"], r["account_id_pid"]) for r in got.to_pylist()} == set(want)
    assert set(want) == {(D1, A1), (D1, A2), (D2, A2), (D2, A4)}  # the plain computation is not empty either
    for row in got.to_pylist():
        expected = want[(row["device_key"], row["account_id_pid"])]
        assert {k: row[k] for k in expected} == expected
        assert row["as_of"] == as_of


def test_the_score_run_publishes_devices_and_a_lookup_finds_them_by_any_identifier(tmp_path: Path) -> None:
    stores = RiskStores(tmp_path / "lake", tmp_path / "models", tmp_path / "serving")
    champion(stores.models_dir)
    ingest(stores.lake_dir, _rows()[:-1], "b1")
    score_accounts(stores, active_days=2, as_of=T0)
    assert serving.read(stores.serving_dir, serving.DEVICES).num_rows == 4

    view = ServingView.load(stores.serving_dir, refs())
    d2 = view.device(ALIAS)
    assert d2 is not None and d2 == view.device(D2)
    assert d2["device_key"] == D2 and d2["rooted"] and not d2["emulator"] and d2["accounts_24h"] == 2
    assert {a["account_id_pid"] for a in d2["accounts"]} == {A2, A4} and d2["accounts_total"] == 2
    scored = {a["account_id_pid"]: a for a in view.device(D1)["accounts"]}
    assert scored[A1]["score"] == view.account(A1)["score"] is not None  # the account snapshot's score
    assert all(a["score"] == view.account(a["account_id_pid"])["score"] for a in d2["accounts"])
    scores = [a["score"] for a in view.device(D1)["accounts"]]
    assert scores == sorted(scores, key=lambda s: (s is None, -(s or 0)))
    assert view.device(pid(0xBAD)) is None and view.device(D3) is None
