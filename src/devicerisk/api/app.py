"""The app factory: ``create_app(settings)`` builds the lookup service (what ``devicerisk serve`` runs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from devicerisk.api import admin, audit_trail, identify, labels, problems, queue, risk, score
from devicerisk.api.deps import document_access
from devicerisk.api.service import Service, settle
from devicerisk.config import Settings

DESCRIPTION = """The fraud team's risk lookups: accounts, transactions, devices, score-now, lookup by a raw identifier,
the review queue, and feedback labels. Every request carries an API key (`X-API-Key`) of the role its endpoint
serves and states its purpose (`X-Purpose`); every lookup is audited. Identifiers are shown masked, and
pseudonyms only as references (`*_ref`) this service resolves. Errors are RFC 9457 problem details."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service over the stores of ``settings`` (default: the environment's)."""
    settings = settings or Settings()
    service = Service.of(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        settle()  # the app is built: keep its objects out of the collections that would stall requests
        yield
        service.close()

    app = FastAPI(title="devicerisk lookup service", version="1", description=DESCRIPTION, lifespan=lifespan)
    app.state.service = service
    problems.install(app)
    app.add_middleware(problems.BodyLimit, limit=settings.api_max_body_bytes)
    routers = [m.router for m in (risk, identify, score, queue, labels, audit_trail, admin)]
    for router in routers:
        app.include_router(router)
    document_access(app, routers)

    @app.get("/health", tags=["health"], summary="Whether the service is up (no key needed, nothing read)")
    async def health() -> dict[str, str]:  # nothing to wait for: no thread-pool hop
        return {"status": "ok"}

    return app
