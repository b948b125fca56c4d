"""The audit trail, for auditors: records as written (names, actions, purposes, counts; never a raw value)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from devicerisk.api.deps import Auditor, ServiceDep
from devicerisk.store import audit

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", summary="Audit records, oldest first after a sequence number")
def audit_records(
    service: ServiceDep,
    caller: Auditor,
    after: Annotated[int, Query(ge=0, le=2**53, description="Records after this sequence number.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    kept = [r for r in audit.records(service.trail.folder) if int(r["seq"]) > after]  # type: ignore[call-overload]
    page = kept[:limit]
    service.record(caller, "api.audit_read", {"records": len(page)})
    fields = ("seq", "at", "actor", "role", "action", "purpose", "counts")
    return {"records": [{f: r[f] for f in fields} for r in page], "more": len(kept) > limit}
