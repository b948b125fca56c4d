"""The review queue: a day's top-risk accounts or transactions, by level, newest day by default, paginated."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from devicerisk.api.deps import Analyst, ServiceDep
from devicerisk.api.present import answer

router = APIRouter(prefix="/v1/queue", tags=["queue"])


@router.get("", summary="Top-risk accounts or transactions of a day, highest score first")
async def review_queue(
    service: ServiceDep,
    caller: Analyst,
    kind: Literal["account", "transaction"] = "account",
    level: Literal["highest", "elevated", "normal"] | None = None,
    day: Annotated[date | None, Query(description="The day (UTC); default: the newest day scored.")] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
) -> Response:
    view = await service.aview()
    page = view.queue(kind, level, day, offset, limit)  # in memory: the event loop serves it, no thread hop
    await service.arecord(caller, f"api.queue_{kind}", {"shown": len(page["items"]), "offset": offset})
    return answer(view, page)
