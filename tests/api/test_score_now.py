"""Score now over HTTP (uvicorn on a copy of the demo lake): a transaction event in contract form gets the score,
level and reasons batch scoring gave the same transaction; a bad event gets the contract's reasons; nothing is
written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devicerisk.api.app import create_app
from devicerisk.config import Settings
from devicerisk.store import api_keys, scores
from factories import landing_events, served


@pytest.fixture(scope="module")
def scoring(lookup_lake: Settings) -> Iterator[dict[str, Any]]:
    key = api_keys.create(lookup_lake.api_keys_path, "fraud_analyst", "score-now")[1]
    with served(create_app(lookup_lake)) as url, httpx.Client(base_url=url, timeout=120) as client:
        client.headers.update({"X-API-Key": key, "X-Purpose": "risk_control"})
        yield {"client": client, "settings": lookup_lake}


def _files(settings: Settings) -> dict[str, int]:
    """Every file of the data folder but the audit trail's, with its modification time."""
    audit_dir = settings.audit_dir
    return {
        str(p): p.stat().st_mtime_ns for p in settings.data_dir.rglob("*") if p.is_file() and audit_dir not in p.parents
    }


def test_score_now_equals_the_batch_score_of_the_same_transaction(scoring: dict[str, Any]) -> None:
    client, settings = scoring["client"], scoring["settings"]
    batch = scores.read(settings.lake_dir, scores.TRANSACTION_SCORES)
    assert batch is not None
    rows = {r["event_id"]: r for r in batch.to_pylist()}
    ranked = sorted(rows.values(), key=lambda r: (-r["score"], r["event_id"]))
    picked = ranked[:5] + ranked[len(ranked) // 2 :: max(1, len(ranked) // 10)][:5]  # the riskiest, and calm ones
    assert len({r["level"] for r in picked}) >= 2 and any(r["reasons"] for r in picked)
    wanted = {r["event_id"] for r in picked}
    raw = {e["event_id"]: e for e in landing_events(settings.landing_dir, "transaction") if e["event_id"] in wanted}
    before = _files(settings)
    for row in picked:
        answer = client.post("/v1/score", json=raw[row["event_id"]])
        assert answer.status_code == 200, answer.text
        out = answer.json()
        assert out["score"] == pytest.approx(row["score"], abs=1e-9)
        assert (out["level"], out["reasons"], out["model_version"]) == (
            row["level"],
            row["reasons"],
            row["model_version"],
        )
        assert "transaction_id_pid" not in out and out["transaction_ref"].startswith("txn_")
        assert row["transaction_id_pid"] not in answer.text and raw[row["event_id"]]["account_id"] not in answer.text
        same = client.get(f"/v1/transactions/{out['transaction_ref']}").json()
        assert same["score"] == pytest.approx(out["score"], abs=1e-9)
    assert _files(settings) == before  # nothing written but the audit records


def test_a_bad_event_gets_the_contracts_reasons(scoring: dict[str, Any]) -> None:
    client, settings = scoring["client"], scoring["settings"]
    event = next(landing_events(settings.landing_dir, "transaction"))
    answer = client.post("/v1/score", json={**event, "event_time": "yesterday"})
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    assert "event_time" in answer.json()["detail"] and event["account_id"] not in answer.text
    other = next(landing_events(settings.landing_dir, "operation"))
    assert client.post("/v1/score", json=other).status_code == 422
