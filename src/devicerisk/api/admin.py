"""Administration: API keys (list, create, revoke) and the status of data-subject requests."""

from __future__ import annotations

from typing import Annotated, Any

import duckdb
from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from devicerisk.api.deps import Admin, ServiceDep
from devicerisk.api.problems import Problem
from devicerisk.store import api_keys, governance

router = APIRouter(prefix="/v1/admin", tags=["admin"])
KeyRef = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$", description="A key's id or name.")]
RequestId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]


class NewKey(BaseModel):
    role: Annotated[str, Field(pattern="^(" + "|".join(api_keys.ROLES) + ")$")]
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")]


@router.get("/keys", summary="Every API key: name, role, dates (never a key or its hash)")
def list_keys(service: ServiceDep, caller: Admin) -> dict[str, Any]:
    keys = [k.public() for k in api_keys.listing(service.keys.path)]
    service.record(caller, "api.keys_list", {"keys": len(keys)})
    return {"keys": keys}


@router.post("/keys", status_code=201, summary="Create a key: it is in this answer once, and never again")
def create_key(service: ServiceDep, caller: Admin, body: NewKey) -> dict[str, Any]:
    try:
        record, key = api_keys.create(service.keys.path, body.role, body.name)
    except api_keys.KeyStoreError as err:
        raise Problem(409, str(err)) from None
    service.record(caller, "api.key_create", {"keys": 1})
    return {**record.public(), "key": key}


@router.post("/keys/{key}/revoke", summary="Revoke the active keys with this id or name: refused from now on")
def revoke_key(service: ServiceDep, caller: Admin, key: KeyRef) -> dict[str, Any]:
    revoked = api_keys.revoke(service.keys.path, key)
    service.record(caller, "api.key_revoke", {"keys": len(revoked)})
    if not revoked:
        raise Problem(404, "no active key has this id or name")
    return {"revoked": [k.public() for k in revoked]}


def _public(row: governance.RequestRow) -> dict[str, Any]:
    """A request's status, without its subject."""
    return {
        "request_id": row.request_id,
        "kind": row.kind,
        "status": row.status,
        "received_at": row.received_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "records_found": sum((row.found or {}).values()),
        "steps_done": list(row.done),
        "reason": row.reason,
        "verification": row.verification,  # method, who verified and when (6.4.2): no identifier, no token
    }


def _requests(service: ServiceDep) -> list[governance.RequestRow]:
    try:
        return governance.requests(service.settings.warehouse_path)
    except duckdb.IOException:  # a writer holds the warehouse: ask again shortly
        raise Problem(503, "the request store is busy: try again", {"Retry-After": "2"}) from None


@router.get("/requests", summary="Data-subject requests and their status (subjects are not shown)")
def list_requests(service: ServiceDep, caller: Admin) -> dict[str, Any]:
    rows = _requests(service)
    service.record(caller, "api.requests_list", {"requests": len(rows)})
    return {"requests": [_public(r) for r in rows]}


@router.get("/requests/{request_id}", summary="One data-subject request's status")
def get_request(service: ServiceDep, caller: Admin, request_id: RequestId) -> dict[str, Any]:
    row = next((r for r in _requests(service) if r.request_id == request_id), None)
    service.record(caller, "api.request_status", {"found": int(row is not None)})
    if row is None:
        raise Problem(404, "no request has this id")
    return _public(row)
