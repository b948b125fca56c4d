"""``LeanRoute`` answers exactly as FastAPI's own handler does, over real HTTP to uvicorn: the same routes are
declared twice, once per route class, and every kind of request is sent to both."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection

from devicerisk.api import lean, problems
from devicerisk.api.problems import Problem
from factories import served

calls: list[str] = []


async def who(request: Request) -> str:
    calls.append("who")
    if request.headers.get("x-key") != "k":
        raise Problem(401, "no key")
    return "analyst"


async def why(request: Request) -> str:
    calls.append("why")
    purpose = request.headers.get("x-purpose")
    if purpose != "risk_control":
        raise Problem(400, "state a purpose")
    return purpose


async def method(*, req: Request) -> str:  # the request by a keyword-only name
    calls.append("method")
    return req.method


Who = Annotated[str, Depends(who)]
Why = Annotated[str, Depends(why)]
Ref = Annotated[str, Path(pattern=r"^[a-z0-9_]{1,8}$")]


def _router(route_class: type[APIRoute], prefix: str) -> APIRouter:
    router = APIRouter(prefix=prefix, route_class=route_class)

    @router.get("/items/{ref}/{n}")
    async def item(caller: Who, purpose: Why, ref: Ref, n: int) -> Response:
        if ref == "none":
            raise Problem(404, "no item")
        return Response(f'{{"ref":"{ref}","n":{n},"by":"{caller}","for":"{purpose}"}}', media_type="application/json")

    @router.get("/twice/{ref}")  # one dependency named twice: called once
    async def twice(a: Who, b: Who, m: Annotated[str, Depends(method)], ref: Ref) -> Response:
        return Response(f'{{"a":"{a}","b":"{b}","m":"{m}","ref":"{ref}"}}', media_type="application/json")

    @router.get("/conn/{ref}")  # a connection parameter: not lean
    async def conn(connection: HTTPConnection, caller: Who, ref: Ref) -> Response:
        return Response(f'{{"method":"{connection.scope["method"]}","ref":"{ref}"}}', media_type="application/json")

    @router.get("/query/{ref}")  # a query parameter: not lean, FastAPI's own handler
    async def query(caller: Who, ref: Ref, page: int = 0) -> Response:
        return Response(f'{{"ref":"{ref}","page":{page}}}', media_type="application/json")

    return router


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    app = FastAPI()
    problems.install(app)
    app.include_router(_router(lean.LeanRoute, "/lean"))
    app.include_router(_router(APIRoute, "/full"))
    with served(app) as base, httpx.Client(base_url=base) as http:
        yield http


GOOD = {"x-key": "k", "x-purpose": "risk_control"}
CASES = [
    ("/items/abc/3", GOOD),
    ("/items/abc/3", {"x-purpose": "risk_control"}),  # no key: 401 before anything else
    ("/items/abc/3", {"x-key": "k"}),  # no purpose: 400
    ("/items/ABC/3", GOOD),  # the path's pattern: 422
    ("/items/abc/x", GOOD),  # not an integer: 422
    ("/items/ABC/x", GOOD),  # both: every error listed
    ("/items/ABC/x", {}),  # the caller is checked before the parameters
    ("/items/none/1", GOOD),  # the endpoint's own problem
    ("/twice/abc", GOOD),
    ("/twice/ABC", GOOD),
    ("/conn/abc", GOOD),
    ("/query/abc?page=2", GOOD),
    ("/query/abc?page=x", GOOD),
]


@pytest.mark.parametrize(("path", "headers"), CASES)
def test_a_lean_route_answers_as_fastapi_does(client: httpx.Client, path: str, headers: dict[str, str]) -> None:
    calls.clear()
    full = client.get("/full" + path, headers=headers)
    full_calls = list(calls)
    calls.clear()
    got = client.get("/lean" + path, headers=headers)
    assert (got.status_code, got.headers.get("content-type"), got.content) == (
        full.status_code,
        full.headers.get("content-type"),
        full.content,
    )
    assert calls == full_calls  # the same dependencies, in the same order


def test_the_lean_handler_is_planned_only_for_simple_routes() -> None:
    routes = {r.path: r for r in _router(lean.LeanRoute, "").routes if isinstance(r, APIRoute)}
    assert lean._lean_handler(routes["/items/{ref}/{n}"].dependant) is not None
    assert lean._lean_handler(routes["/twice/{ref}"].dependant) is not None
    assert lean._lean_handler(routes["/query/{ref}"].dependant) is None  # a query parameter
    assert lean._lean_handler(routes["/conn/{ref}"].dependant) is None  # a connection parameter


def test_dependency_overrides_are_honoured(client: httpx.Client) -> None:
    app = FastAPI()
    problems.install(app)
    app.include_router(_router(lean.LeanRoute, ""))

    async def anyone() -> str:
        return "override"

    app.dependency_overrides[who] = anyone
    with served(app) as base:
        got = httpx.get(base + "/items/abc/3", headers={"x-purpose": "risk_control"})
    assert got.status_code == 200 and got.json()["by"] == "override"
