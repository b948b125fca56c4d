"""Risk by reference: an account, a transaction or a device, as the serving snapshots hold it.

References are what the service's answers show instead of pseudonyms (``account_ref`` ...); a raw identifier is
never put in a URL (URLs get logged): it goes to ``POST /v1/lookup``, which answers with references.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from devicerisk.api.deps import Analyst, ServiceDep
from devicerisk.api.lean import LeanRoute
from devicerisk.api.present import answer
from devicerisk.api.problems import Problem

router = APIRouter(prefix="/v1", tags=["risk"], route_class=LeanRoute)
Ref = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,64}$", description="A reference from an earlier answer.")]


async def _one(service: ServiceDep, caller: Analyst, kind: str, ref: str) -> Response:
    """One lookup, in the event loop: the view's reads are in memory (well under a millisecond), and the audit
    record is awaited, not waited for in a thread."""
    view = await service.aview()
    found = view.by_ref(kind, ref)
    await service.arecord(caller, f"api.{kind}_risk", {"found": int(found is not None)})
    if found is None:
        raise Problem(404, f"no {kind} with this reference in the serving snapshots")
    return answer(view, found)


@router.get("/accounts/{ref}", summary="An account's latest risk: score, level, reasons, model, as-of, recent scores")
async def account_risk(service: ServiceDep, caller: Analyst, ref: Ref) -> Response:
    return await _one(service, caller, "account", ref)


@router.get("/transactions/{ref}", summary="A transaction's risk score, level and reasons")
async def transaction_risk(service: ServiceDep, caller: Analyst, ref: Ref) -> Response:
    return await _one(service, caller, "transaction", ref)


@router.get("/devices/{ref}", summary="A device's risk: its accounts and their scores, and the device-graph signals")
async def device_risk(service: ServiceDep, caller: Analyst, ref: Ref) -> Response:
    return await _one(service, caller, "device", ref)
