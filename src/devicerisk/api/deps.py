"""What every endpoint depends on, as ``Annotated`` types: the service's state, and the caller (key, role, purpose).

A request is checked in this order: its key (missing, malformed, unknown or revoked: 401), the key's role
(403), then its stated purpose (``X-Purpose``: missing or not one the endpoint serves: 400). Only then are
its parameters read, so an unauthenticated client learns nothing about them. (No ``from __future__ import
annotations`` here: FastAPI reads the dependency's annotations, which name the endpoint's purposes.)
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader

from devicerisk.api.problems import Problem
from devicerisk.api.service import Service
from devicerisk.contract.fields import EVENT_TYPES

#: Purposes of lookups and labels: the contract's registered purposes of the data they read.
LOOKUP_PURPOSES = tuple(sorted({e.purpose for e in EVENT_TYPES}))
#: Reading the audit trail; managing keys and privacy requests (the purposes governance records under).
AUDIT_PURPOSES = ("audit",)
ADMIN_PURPOSES = ("security", "data_subject_rights")

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key (`devicerisk keys create`).")


async def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks, in what role, for what purpose: what the audit trail records (never the key)."""

    name: str
    role: str
    purpose: str


def require(role: str, purposes: tuple[str, ...]) -> Callable[..., Awaitable[Caller]]:
    """A dependency that admits a valid key of ``role`` stating one of ``purposes``."""

    async def caller(  # async: checked in the event loop, with no thread-pool hop (it reads no file but a stat)
        service: ServiceDep,
        key: Annotated[str | None, Depends(_api_key)],
        purpose: Annotated[
            str | None,
            Header(alias="X-Purpose", description=f"Why you ask: one of {', '.join(purposes)}."),
        ] = None,
    ) -> Caller:
        found = service.keys.verify(key)
        if found is None:
            raise Problem(401, "a valid API key is required in X-API-Key", {"WWW-Authenticate": "APIKey"})
        if found.role != role:
            raise Problem(403, f"this endpoint is for the {role} role")
        if purpose not in purposes:
            raise Problem(400, f"state the purpose of the request in X-Purpose: one of {', '.join(purposes)}")
        return Caller(found.name, found.role, purpose)

    return caller


Analyst = Annotated[Caller, Depends(require("fraud_analyst", LOOKUP_PURPOSES))]
Auditor = Annotated[Caller, Depends(require("auditor", AUDIT_PURPOSES))]
Admin = Annotated[Caller, Depends(require("admin", ADMIN_PURPOSES))]
