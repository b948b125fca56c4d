"""Schemathesis against the service's own OpenAPI schema, over real HTTP to uvicorn on a copy of the demo lake:
no generated request gets a server error. Bounded: at most 25 examples per operation (about 300 in all). (Hypothesis
drives schemathesis's strategies directly: its pytest plugin does not run under this pytest.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from devicerisk.api.app import create_app
from devicerisk.config import Settings
from devicerisk.store import api_keys
from factories import served

PURPOSE = {"fraud_analyst": "risk_control", "auditor": "audit", "admin": "security"}


@pytest.fixture(scope="module")
def fuzzed(lookup_lake: Settings) -> Iterator[dict[str, Any]]:
    keys = {role: api_keys.create(lookup_lake.api_keys_path, role, f"{role}-s")[1] for role in api_keys.ROLES}
    with served(create_app(lookup_lake)) as url:
        yield {"url": url, "keys": keys, "schema": schemathesis.openapi.from_url(f"{url}/openapi.json")}


def _role(path: str) -> str:
    return "admin" if path.startswith("/v1/admin") else "auditor" if path == "/v1/audit" else "fraud_analyst"


def _fuzz(operation: Any, url: str, headers: dict[str, str], statuses: list[int]) -> None:
    """Up to 25 generated requests to ``operation``: none may get a server error."""

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        response = case.call(base_url=url, headers=headers, timeout=60)
        case.validate_response(response, checks=[not_a_server_error])
        assert "Traceback" not in response.text
        statuses.append(response.status_code)

    check()


def test_no_generated_request_gets_a_server_error(fuzzed: dict[str, Any]) -> None:
    operations = [result.ok() for result in fuzzed["schema"].get_all_operations()]
    assert len(operations) >= 12
    statuses: list[int] = []
    for operation in operations:
        role = _role(operation.path)
        _fuzz(operation, fuzzed["url"], {"X-API-Key": fuzzed["keys"][role], "X-Purpose": PURPOSE[role]}, statuses)
    assert len(statuses) >= 100 and max(statuses) < 500
    assert any(200 <= s < 300 for s in statuses)  # the generated requests reach the endpoints, not only refusals
