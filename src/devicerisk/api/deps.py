"""What every endpoint depends on, as ``Annotated`` types: the service's state, and the caller (key, role, purpose).

A request is checked in this order: its key (missing, malformed, unknown or revoked: 401), the key's role
(403), then its stated purpose (``X-Purpose``: missing or not one the endpoint serves: 400). Only then are
its parameters read, so an unauthenticated client learns nothing about them. (No ``from __future__ import
annotations`` here: FastAPI reads the dependency's annotations, which name the endpoint's purposes.)
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from devicerisk.api.problems import Problem
from devicerisk.api.service import Service
from devicerisk.contract import purposes

#: Purposes of lookups and labels: the contract's purposes of processing (2.8) but those that need consent (a
#: lookup names one account, and the serving snapshots hold no consent state to check it against); of reading
#: the audit trail; of managing keys and privacy requests. Each must be registered (``purposes.require``).
LOOKUP_PURPOSES = tuple(p for p in purposes.processing() if not purposes.require(p).needs_consent)
AUDIT_PURPOSES = tuple(purposes.require(p).name for p in ("audit",))
ADMIN_PURPOSES = tuple(purposes.require(p).name for p in ("security", "data_subject_rights"))

KEY_HEADER, PURPOSE_HEADER, SCHEME = "X-API-Key", "X-Purpose", "APIKeyHeader"
KEY_DESCRIPTION = "An API key (`devicerisk keys create`)."


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
    """A dependency that admits a valid key of ``role`` stating one of ``purposes``.

    It reads the two headers itself: FastAPI's own header parameters cost more per request than a lookup does.
    :func:`document_access` puts them in the OpenAPI schema from the ``role`` and ``purposes`` set here.
    """

    async def caller(request: Request) -> Caller:  # async: in the event loop, no thread-pool hop
        service: Service = request.app.state.service
        found = service.keys.verify(request.headers.get(KEY_HEADER))
        if found is None:
            raise Problem(401, f"a valid API key is required in {KEY_HEADER}", {"WWW-Authenticate": "APIKey"})
        if found.role != role:
            raise Problem(403, f"this endpoint is for the {role} role")
        purpose = request.headers.get(PURPOSE_HEADER)
        if purpose not in purposes:
            raise Problem(400, f"state the purpose of the request in {PURPOSE_HEADER}: one of {', '.join(purposes)}")
        return Caller(found.name, found.role, purpose)

    caller.role, caller.purposes = role, purposes  # type: ignore[attr-defined]
    return caller


def _access(dependant: Dependant) -> tuple[str, tuple[str, ...]] | None:
    """The role and purposes a route's dependencies require, if any."""
    for dep in dependant.dependencies:
        if hasattr(dep.call, "role"):
            return dep.call.role, dep.call.purposes  # type: ignore[union-attr]
        if (found := _access(dep)) is not None:
            return found
    return None


def document_access(app: FastAPI, routers: list[APIRouter]) -> None:
    """Every route of ``routers`` (included in ``app``) that requires a key says so in the app's OpenAPI schema:
    the ``X-API-Key`` security scheme, and the ``X-Purpose`` header with the purposes it serves."""
    build = app.openapi
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute)]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[SCHEME] = {"type": "apiKey", "in": "header", "name": KEY_HEADER, "description": KEY_DESCRIPTION}
        for route in routes:
            access = _access(route.dependant)
            if access is None:
                continue
            role, purposes = access
            for method in route.methods:
                operation = schema["paths"][route.path_format][method.lower()]
                operation["security"] = [{SCHEME: []}]
                operation.setdefault("parameters", []).append(
                    {
                        "name": PURPOSE_HEADER,
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string", "enum": list(purposes)},
                        "description": f"Why you ask ({role} role): one of {', '.join(purposes)}.",
                    }
                )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


Analyst = Annotated[Caller, Depends(require("fraud_analyst", LOOKUP_PURPOSES))]
Auditor = Annotated[Caller, Depends(require("auditor", AUDIT_PURPOSES))]
Admin = Annotated[Caller, Depends(require("admin", ADMIN_PURPOSES))]
