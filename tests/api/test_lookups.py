"""Lookups over a copy of the demo lake through a real uvicorn server: by raw identifier (in the body), by
reference, the review queue and labels; answers desensitised, every lookup audited without a raw value, and
injection or path-traversal attempts in every parameter answered 4xx, never 5xx, reading nothing outside the
stores."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devicerisk.api.app import create_app
from devicerisk.config import Settings
from devicerisk.ingest.runtime import ingest_context
from devicerisk.risk.labels import ingest_labels, read_labels
from devicerisk.store import api_keys, audit, serving
from factories import served, served_transaction

PSEUDONYM = re.compile(r"[0-9a-f]{32}")
ATTACKS = (
    "' OR '1'='1",
    "1; DROP TABLE subject_requests; --",
    "../../../../etc/passwd",
    "..%2F..%2F..%2Fsecrets%2Fpseudonym.key",
    "..\\..\\secrets",
    "a\x00b",
    "%00",
    "${jndi:ldap://127.0.0.1/x}",
    "x" * 4000,
)
FORGED = ("acc_" + "a" * 26, "txn_" + "b" * 26, "dev_" + "c" * 26)  # well-formed references of nothing


@pytest.fixture(scope="module")
def world(lookup_lake: Settings) -> Iterator[dict[str, Any]]:
    keys = {role: api_keys.create(lookup_lake.api_keys_path, role, f"{role}-l")[1] for role in api_keys.ROLES}
    txn, phone = served_transaction(lookup_lake, need_phone=True)
    assert phone is not None
    raw = {
        "account": txn["account_id"],
        "transaction": txn["payload"]["transaction_id"],
        "imei": txn["device"]["imei"],
        "phone": phone,
    }
    with served(create_app(lookup_lake)) as url, httpx.Client(base_url=url, timeout=60) as client:
        client.headers.update({"X-API-Key": keys["fraud_analyst"], "X-Purpose": "risk_control"})
        yield {"client": client, "keys": keys, "raw": raw, "settings": lookup_lake}


def _clean(answer: httpx.Response, raw: dict[str, str]) -> dict[str, Any]:
    """The answer, checked to hold no raw value and no pseudonym."""
    assert answer.status_code == 200, answer.text
    assert not PSEUDONYM.search(answer.text), "a pseudonym in an answer"
    for value in raw.values():
        assert value not in answer.text
    return answer.json()


def test_raw_identifiers_find_their_subject_and_references_lead_back(world: dict[str, Any]) -> None:
    client, raw = world["client"], world["raw"]
    by_account = _clean(client.post("/v1/lookup", json={"kind": "account", "value": raw["account"]}), raw)
    [account] = by_account["accounts"]
    assert account["score"] is not None and account["reasons"] and account["transactions"]
    by_phone = _clean(client.post("/v1/lookup", json={"kind": "phone", "value": raw["phone"]}), raw)
    assert account["account_ref"] in [a["account_ref"] for a in by_phone["accounts"]]
    by_imei = _clean(client.post("/v1/lookup", json={"kind": "imei", "value": raw["imei"]}), raw)
    [device] = by_imei["devices"]
    assert account["account_ref"] in [a["account_ref"] for a in device["accounts"]]
    assert {"accounts_24h", "accounts_31d", "emulator", "rooted", "first_seen"} <= device.keys()
    by_txn = _clean(client.post("/v1/lookup", json={"kind": "transaction", "value": raw["transaction"]}), raw)
    [transaction] = by_txn["transactions"]
    assert transaction["account_ref"] == account["account_ref"]
    again = _clean(client.get(f"/v1/accounts/{account['account_ref']}"), raw)
    assert (again["score"], again["reasons"]) == (account["score"], account["reasons"])
    assert _clean(client.get(f"/v1/transactions/{transaction['transaction_ref']}"), raw) == transaction
    assert _clean(client.get(f"/v1/devices/{device['device_ref']}"), raw) == device
    text = (world["settings"].audit_dir / audit.LOG_NAME).read_text()
    assert not any(value in text for value in raw.values())
    actions = [r["action"] for r in audit.records(world["settings"].audit_dir)]
    for action in ("api.lookup_account", "api.lookup_phone", "api.lookup_imei", "api.lookup_transaction"):
        assert action in actions
    assert {"api.account_risk", "api.transaction_risk", "api.device_risk"} <= set(actions)


def test_the_queue_pages_a_day_highest_score_first(world: dict[str, Any]) -> None:
    client = world["client"]
    first = _clean(client.get("/v1/queue", params={"limit": 5}), world["raw"])
    second = _clean(client.get("/v1/queue", params={"limit": 5, "offset": 5, "day": first["day"]}), world["raw"])
    scores = [r["score"] for r in first["items"] + second["items"]]
    assert scores == sorted(scores, reverse=True) and first["total"] == second["total"] >= 10
    txns = serving.read(world["settings"].serving_dir, serving.TRANSACTIONS)
    assert txns is not None
    days = [r["event_date"] for r in txns.to_pylist() if r["level"] == "highest"]
    day = max(days)
    params = {"kind": "transaction", "level": "highest", "day": day.isoformat(), "limit": 500}
    highest = _clean(client.get("/v1/queue", params=params), world["raw"])
    assert highest["total"] == len(highest["items"]) == days.count(day)
    assert {r["level"] for r in highest["items"]} == {"highest"}
    assert all(r["transaction_ref"].startswith("txn_") for r in highest["items"])


def test_a_label_lands_as_a_file_that_label_ingest_takes(world: dict[str, Any]) -> None:
    client, raw, settings = world["client"], world["raw"], world["settings"]
    label = {"subject_type": "transaction", "subject_id": raw["transaction"], "label": "fraud", "fraud_type": "scam"}
    answer = client.post("/v1/labels", json=label)
    assert answer.status_code == 202 and raw["transaction"] not in answer.text
    before = read_labels(settings.lake_dir).num_rows
    ctx = ingest_context(settings)
    results = [r for r in ingest_labels(ctx, settings.landing_dir) if not r.already_done]
    assert [(r.records_read, r.accepted, r.quarantined) for r in results] == [(1, 1, 0)]
    stored = read_labels(settings.lake_dir)
    assert stored.num_rows == before + 1
    pid = ctx.pseudonymiser.pseudonymise_one("transaction", raw["transaction"])
    ours = [r for r in stored.to_pylist() if r["subject_id_pid"] == pid and r["fraud_type"] == "scam"]
    assert [(r["label"], r["subject_type"]) for r in ours] == [("fraud", "transaction")]
    unknown = {**label, "subject_id": "T-never-seen"}
    assert client.post("/v1/labels", json=unknown).status_code == 404


def _attempts(world: dict[str, Any], attack: str) -> list[tuple[str, str, dict[str, Any]]]:
    """One request per parameter of every endpoint, with ``attack`` in that parameter."""
    q = httpx.QueryParams
    label = {"subject_type": "account", "subject_id": world["raw"]["account"], "label": "fraud"}
    out: list[tuple[str, str, dict[str, Any]]] = []
    for kind in ("accounts", "transactions", "devices"):
        out.append(("GET", f"/v1/{kind}/{_seg(attack)}", {}))
    for name in ("kind", "level", "day", "offset", "limit"):
        out.append(("GET", "/v1/queue", {"params": q({name: attack})}))
    out.append(("POST", "/v1/lookup", {"json": {"kind": attack, "value": "U1"}}))
    for kind in ("account", "transaction", "phone", "imei", "mac", "oaid", "idfa"):
        out.append(("POST", "/v1/lookup", {"json": {"kind": kind, "value": attack}}))
    for name in ("subject_type", "subject_id", "label", "fraud_type", "fraud_from"):
        out.append(("POST", "/v1/labels", {"json": {**label, name: attack}}))
    admin = {"X-API-Key": world["keys"]["admin"], "X-Purpose": "security"}
    auditor = {"X-API-Key": world["keys"]["auditor"], "X-Purpose": "audit"}
    out.append(("POST", f"/v1/admin/keys/{_seg(attack)}/revoke", {"headers": admin}))
    out.append(("GET", f"/v1/admin/requests/{_seg(attack)}", {"headers": admin}))
    for name in ("role", "name"):
        out.append(
            ("POST", "/v1/admin/keys", {"headers": admin, "json": {"role": "auditor", "name": "z", name: attack}})
        )
    for name in ("after", "limit"):
        out.append(("GET", "/v1/audit", {"headers": auditor, "params": q({name: attack})}))
    if attack.isprintable():  # header values cannot hold control characters
        out.append(("GET", "/v1/queue", {"headers": {"X-API-Key": attack, "X-Purpose": "risk_control"}}))
        out.append(("GET", "/v1/queue", {"headers": {"X-Purpose": attack}}))
    return out


def _seg(attack: str) -> str:
    """``attack`` as one URL path segment (percent-encoded, so it reaches the app as the parameter's value)."""
    from urllib.parse import quote

    return quote(attack, safe="")


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("attack", ATTACKS, ids=range(len(ATTACKS)))
def test_injection_and_traversal_in_every_parameter_is_a_4xx(world: dict[str, Any], attack: str) -> None:
    client, settings = world["client"], world["settings"]
    root = settings.data_dir.parent
    outside = {k: v for k, v in _tree(root).items() if not k.startswith("data/")}
    labels_before = set((settings.landing_dir / "labels").iterdir())
    secret = settings.pseudonym_key_file.read_text().strip()
    for method, path, extra in _attempts(world, attack):
        answer = client.request(method, path, **extra)
        assert 400 <= answer.status_code < 500, (method, path, extra, answer.status_code, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert secret not in answer.text and "root:" not in answer.text and "Traceback" not in answer.text
    assert {k: v for k, v in _tree(root).items() if not k.startswith("data/")} == outside
    assert set((settings.landing_dir / "labels").iterdir()) == labels_before  # no label landed


def test_forged_references_find_nothing(world: dict[str, Any]) -> None:
    for kind in ("accounts", "transactions", "devices"):
        for ref in FORGED:  # of its own kind or another's
            answer = world["client"].get(f"/v1/{kind}/{ref}")
            assert answer.status_code == 404 and answer.headers["content-type"] == "application/problem+json"
