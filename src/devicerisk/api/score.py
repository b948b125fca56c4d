"""Score now: one transaction event in contract form, scored by the current champion as batch scoring would.

The event is validated, pseudonymised and minimised in memory; nothing of it is written, logged or audited but
counts. The answer shows the transaction and account as references, like every other answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from devicerisk.api.deps import Analyst, ServiceDep
from devicerisk.api.present import answer
from devicerisk.api.problems import Problem
from devicerisk.lookup.realtime import InvalidEvent

router = APIRouter(prefix="/v1/score", tags=["score"])

EXAMPLE = {
    "event_id": "e-0001",
    "event_type": "transaction",
    "event_time": "2026-11-20T10:00:00+08:00",
    "account_id": "U1001",
    "device": {"imei": "490154203237518", "platform": "android"},
    "payload": {"transaction_id": "T-1", "amount": 129.5, "currency": "CNY", "status": "success"},
}


@router.post("", summary="Score one raw transaction event now (nothing is stored)")
def score_now(
    service: ServiceDep,
    caller: Analyst,
    event: Annotated[
        dict[str, Any], Body(description="One telemetry event as in a landing batch.", examples=[EXAMPLE])
    ],
) -> Response:
    scorer = service.scorer()
    try:
        scored = scorer.score(event)
    except InvalidEvent as err:
        service.record(caller, "api.score_now", {"scored": 0})
        raise Problem(422, f"the event breaks the contract: {'; '.join(err.reasons)}") from None
    service.record(caller, "api.score_now", {"scored": 1})
    return answer(service.view(), {k: v for k, v in scored.items() if k != "event_id"})
