"""Errors as RFC 9457 problem details, and the request body limit.

Every 4xx and 5xx answer is ``application/problem+json`` with ``type``, ``title``, ``status`` and ``detail``.
A validation error lists where the input is wrong and why, never the input itself (it may be a raw identifier).
An unexpected error is a bare 500: its trace goes to the server's log, never to the client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Problem(Exception):
    """An error the client caused or may act on: its status and a detail that holds no raw value."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


def problem_body(status: int, detail: str, **extra: Any) -> dict[str, Any]:
    """The problem document of ``status``; ``type`` is ``about:blank``, so ``title`` is the status phrase."""
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}


def problem_response(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(
        problem_body(status, detail, **extra), status_code=status, headers=headers, media_type=MEDIA_TYPE
    )


def _where(error: dict[str, Any]) -> dict[str, str]:
    """One validation error without its input: the location and the message only."""
    return {"loc": ".".join(str(p) for p in error.get("loc", ())), "msg": str(error.get("msg", "invalid"))}


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.detail, exc.headers)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem_response(exc.status_code, detail, getattr(exc, "headers", None))


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_where(e) for e in exc.errors()]
    return problem_response(422, "the request is not valid: see errors", errors=errors)


async def _on_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
    return problem_response(500, "internal error: the service logged it")


def install(app: FastAPI) -> None:
    """Every error the app raises answers as problem details."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(Exception, _on_error)


class BodyLimit:
    """ASGI middleware: a request body longer than ``limit`` bytes gets 413, whether its length is declared
    (refused before reading) or not (refused once the limit is passed). The body is read here, at most
    ``limit`` bytes, and handed on whole."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        declared = headers.get(b"content-length")
        if declared is None and b"transfer-encoding" not in headers:  # no body (a GET): nothing to read
            await self.app(scope, receive, send)
            return
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(413, f"the request body is longer than {self.limit:,} bytes")
        await response(scope, receive, send)
