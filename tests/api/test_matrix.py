"""Every endpoint × every role, with no key and with a revoked key: 2xx for the role it serves, 403 for another
role, 401 without a valid key. Over real HTTP to a uvicorn server on a copy of the demo lake."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devicerisk.api.app import create_app
from devicerisk.config import Settings
from devicerisk.store import api_keys
from factories import served, served_transaction

PURPOSE = {"fraud_analyst": "risk_control", "auditor": "audit", "admin": "security"}
CALLERS = ("fraud_analyst", "auditor", "admin", "no key", "revoked key")


@pytest.fixture(scope="module")
def world(lookup_lake: Settings) -> Iterator[dict[str, Any]]:
    """The service on the lake, a key per role, a revoked key per role, and real references and raw values."""
    path = lookup_lake.api_keys_path
    keys = {role: api_keys.create(path, role, f"{role}-m")[1] for role in api_keys.ROLES}
    revoked = {role: api_keys.create(path, role, f"{role}-old")[1] for role in api_keys.ROLES}
    for role in api_keys.ROLES:
        api_keys.revoke(path, f"{role}-old")
    with served(create_app(lookup_lake)) as url, httpx.Client(base_url=url, timeout=60) as client:
        analyst = {"X-API-Key": keys["fraud_analyst"], "X-Purpose": "risk_control"}
        top = client.get("/v1/queue", headers=analyst, params={"limit": 1}).json()["items"][0]
        account = client.get(f"/v1/accounts/{top['account_ref']}", headers=analyst).json()
        txn, _ = served_transaction(lookup_lake)
        device = client.post("/v1/lookup", headers=analyst, json={"kind": "imei", "value": txn["device"]["imei"]})
        yield {
            "client": client,
            "keys": keys,
            "revoked": revoked,
            "account_ref": top["account_ref"],
            "transaction_ref": account["transactions"][0]["transaction_ref"],
            "device_ref": device.json()["devices"][0]["device_ref"],
            "raw_account": txn["account_id"],
            "event": txn,
        }


def _endpoints(w: dict[str, Any]) -> list[tuple[str, str, Any, str]]:
    """(method, path, JSON body, the role it serves) for every endpoint of the app."""
    label = {"subject_type": "account", "subject_id": w["raw_account"], "label": "legitimate"}
    return [
        ("GET", f"/v1/accounts/{w['account_ref']}", None, "fraud_analyst"),
        ("GET", f"/v1/transactions/{w['transaction_ref']}", None, "fraud_analyst"),
        ("GET", f"/v1/devices/{w['device_ref']}", None, "fraud_analyst"),
        ("POST", "/v1/lookup", {"kind": "account", "value": w["raw_account"]}, "fraud_analyst"),
        ("POST", "/v1/score", w["event"], "fraud_analyst"),
        ("GET", "/v1/queue", None, "fraud_analyst"),
        ("POST", "/v1/labels", label, "fraud_analyst"),
        ("GET", "/v1/audit", None, "auditor"),
        ("GET", "/v1/admin/keys", None, "admin"),
        ("POST", "/v1/admin/keys", {"role": "auditor", "name": "made-in-matrix"}, "admin"),
        ("POST", "/v1/admin/keys/made-in-matrix/revoke", None, "admin"),
        ("GET", "/v1/admin/requests", None, "admin"),
    ]


ROUTE_TEMPLATES = {
    ("GET", "/v1/accounts/{ref}"),
    ("GET", "/v1/transactions/{ref}"),
    ("GET", "/v1/devices/{ref}"),
    ("POST", "/v1/lookup"),
    ("POST", "/v1/score"),
    ("GET", "/v1/queue"),
    ("POST", "/v1/labels"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/admin/keys"),
    ("POST", "/v1/admin/keys"),
    ("POST", "/v1/admin/keys/{key}/revoke"),
    ("GET", "/v1/admin/requests"),
    ("GET", "/v1/admin/requests/{request_id}"),  # its 2xx is in the erasure test (it needs a request)
}


def test_the_matrix_names_every_endpoint_of_the_app(world: dict[str, Any]) -> None:
    paths = world["client"].get("/openapi.json").json()["paths"]
    served_routes = {(m.upper(), p) for p, ops in paths.items() for m in ops if p.startswith("/v1/")}
    assert served_routes == ROUTE_TEMPLATES


def test_every_endpoint_for_every_caller(world: dict[str, Any]) -> None:
    client = world["client"]
    seen = []
    for method, path, body, role in _endpoints(world):
        for caller in CALLERS:
            headers = {}
            if caller in api_keys.ROLES:
                headers = {"X-API-Key": world["keys"][caller], "X-Purpose": PURPOSE[caller]}
            elif caller == "revoked key":
                headers = {"X-API-Key": world["revoked"][role], "X-Purpose": PURPOSE[role]}
            answer = client.request(method, path, headers=headers, json=body)
            want = 401 if caller in ("no key", "revoked key") else (403 if caller != role else None)
            if want is None:
                assert 200 <= answer.status_code < 300, (method, path, caller, answer.text)
            else:
                assert answer.status_code == want, (method, path, caller, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
            seen.append((method, path, caller))
    assert len(seen) == len(_endpoints(world)) * len(CALLERS)
