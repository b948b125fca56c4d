"""Keys, roles, purposes, problem details and the body limit, over real HTTP to a real
uvicorn server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devicerisk.api.app import create_app
from devicerisk.config import Settings
from devicerisk.store import api_keys
from factories import served

RAW_ACCOUNT = "U77001234"
PROBLEM = "application/problem+json"


@pytest.fixture
def api(settings: Settings) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """A client of the service over ``settings``, and one key of each role."""
    keys = {role: api_keys.create(settings.api_keys_path, role, f"{role}-1")[1] for role in api_keys.ROLES}
    with served(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client, keys


def _h(key: str | None, purpose: str | None) -> dict[str, str]:
    return {k: v for k, v in (("X-API-Key", key), ("X-Purpose", purpose)) if v is not None}


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"] and "Traceback" not in response.text
    return body


def test_keys_are_created_listed_and_revoked_over_http_and_a_revoked_key_is_refused_at_once(api: Any) -> None:
    client, keys = api
    admin = _h(keys["admin"], "security")
    made = client.post("/v1/admin/keys", headers=admin, json={"role": "fraud_analyst", "name": "bob"})
    assert made.status_code == 201
    bob = made.json()["key"]
    listed = client.get("/v1/admin/keys", headers=admin).json()["keys"]
    assert {k["name"] for k in listed} == {"fraud_analyst-1", "auditor-1", "admin-1", "bob"}
    assert bob not in str(listed) and "digest" not in str(listed)
    assert client.get("/v1/queue", headers=_h(bob, "risk_control")).json()["items"] == []  # no snapshot yet
    assert client.post("/v1/admin/keys/bob/revoke", headers=admin).status_code == 200
    _problem(client.get("/v1/queue", headers=_h(bob, "risk_control")), 401)
    _problem(client.post("/v1/admin/keys/bob/revoke", headers=admin), 404)


def test_a_key_of_another_role_is_403_and_a_missing_or_unknown_purpose_is_400(api: Any) -> None:
    client, keys = api
    _problem(client.get("/v1/audit", headers=_h(keys["fraud_analyst"], "risk_control")), 403)
    _problem(client.get("/v1/audit", headers=_h(keys["admin"], "security")), 403)
    _problem(client.get("/v1/audit", headers=_h(keys["auditor"], None)), 400)
    _problem(client.get("/v1/audit", headers=_h(keys["auditor"], "marketing")), 400)
    _problem(client.get("/v1/audit", headers=_h(None, "audit")), 401)
    assert client.get("/v1/audit", headers=_h(keys["auditor"], "audit")).status_code == 200


def test_bodies_over_the_limit_are_413_declared_or_streamed(api: Any, settings: Settings) -> None:
    client, keys = api
    headers = {**_h(keys["fraud_analyst"], "risk_control"), "Content-Type": "application/json"}
    big = b'{"pad": "' + b"x" * settings.api_max_body_bytes + b'"}'
    _problem(client.post("/v1/labels", headers=headers, content=big), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is found while reading
        yield from (big[i : i + 4096] for i in range(0, len(big), 4096))

    _problem(client.post("/v1/labels", headers=headers, content=chunks()), 413)


def test_invalid_input_is_a_422_problem_that_does_not_echo_the_input(api: Any) -> None:
    client, keys = api
    secret_like = "13800138000-" + "Z" * 200
    body = {"subject_type": "account", "subject_id": secret_like, "label": "fraud"}
    answer = _problem(client.post("/v1/labels", headers=_h(keys["fraud_analyst"], "risk_control"), json=body), 422)
    assert answer["errors"] == [{"loc": "body.subject_id", "msg": "String should have at most 128 characters"}]
    assert "13800138000" not in str(answer)
    malformed = client.post(
        "/v1/labels",
        headers={**_h(keys["fraud_analyst"], "risk_control"), "Content-Type": "application/json"},
        content=b'{"subject_id": "13800138000", ',
    )
    assert "13800138000" not in _problem(malformed, 422)["detail"] + str(malformed.json()["errors"])


def test_an_unexpected_error_is_a_bare_500_problem(api: Any, settings: Settings) -> None:
    client, keys = api
    settings.api_keys_path.write_text("{not json")  # the key store is damaged: the service cannot check keys
    answer = _problem(client.get("/v1/audit", headers=_h(keys["auditor"], "audit")), 500)
    assert answer["detail"] == "internal error: the service logged it" and "JSONDecodeError" not in str(answer)


def test_the_docs_and_schema_are_served_without_a_key(api: Any) -> None:
    client, _ = api
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "X-API-Key" in str(schema["components"]["securitySchemes"])
    _problem(client.get("/no/such/path"), 404)


def test_the_openapi_schema_says_which_key_and_purposes_each_endpoint_needs(api: Any) -> None:
    """The key and purpose are read from the headers by the service's own check; the schema still documents them,
    with exactly the purposes the check admits."""
    client, keys = api
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key (`devicerisk keys create`).",
    }
    operations = {(path, method): op for path, ops in schema["paths"].items() for method, op in ops.items()}
    keyed = {k: op for k, op in operations.items() if k != ("/health", "get")}
    assert len(keyed) >= 12 and "security" not in operations["/health", "get"]
    for (path, _method), op in keyed.items():
        assert op["security"] == [{"APIKeyHeader": []}], path
        (purpose,) = [p for p in op["parameters"] if p["name"] == "X-Purpose"]
        assert purpose["in"] == "header" and purpose["required"] is True
        if path == "/v1/audit":  # each documented purpose is admitted, and one not documented is refused
            for allowed in purpose["schema"]["enum"]:
                assert client.get(path, headers=_h(keys["auditor"], allowed)).status_code == 200
            _problem(client.get(path, headers=_h(keys["auditor"], "marketing")), 400)
