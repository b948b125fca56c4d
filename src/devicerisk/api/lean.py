"""A route class that runs simple endpoints without FastAPI's generic request handling.

FastAPI's handler solves every request's dependencies generically: for each dependency it collects the path,
query, header and cookie parameters (none, here), checks what kind of callable it is, and validates through
pydantic. On an account lookup that costs about as much as the lookup's own work. :class:`LeanRoute` plans a
route once, from the same ``Dependant`` FastAPI builds from its declaration (so the route, its OpenAPI schema
and its checks keep one definition), and when the route is simple enough it runs the plan directly:

- dependencies: coroutine functions whose only parameter (if any) is the request, and which have no
  sub-dependencies of their own, awaited in declaration order (the caller's 401/403/400 come first, as
  FastAPI's order has them);
- then path parameters, validated by their own field (pattern, length...), a failure raising the same
  ``RequestValidationError`` FastAPI raises (422);
- an endpoint declared to return a ``Response``, returned as it is.

Anything else (a body, query or header parameters, a connection, response or security-scopes parameter, a
dependency with ``yield`` or its own dependencies, overrides set on the app) is handled by FastAPI's own
handler. A lean route answers as FastAPI would (a test holds them to the same statuses, bodies and calls); what
it does not do is FastAPI's request telemetry (its spans, and the endpoint context of a validation error).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi import routing as fastapi_routing
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
Call = Callable[..., Awaitable[Any]]


#: Special parameters a dependant may take besides the request: each needs FastAPI's own handler.
_SPECIAL = (
    "websocket_param_name",
    "http_connection_param_name",
    "response_param_name",
    "background_tasks_param_name",
    "security_scopes_param_name",
)


def _takes_only(dep: Dependant, *, path: bool) -> bool:
    """Whether ``dep`` takes nothing but the request (if anything) and, where ``path``, path parameters."""
    params = [dep.query_params, dep.header_params, dep.cookie_params, dep.body_params]
    if not path:
        params.append(dep.path_params)
    return not any(params) and not any(getattr(dep, name) for name in _SPECIAL)


def _simple_dependency(dep: Dependant) -> tuple[str, Call, str | None, bool] | None:
    """(name, call, the name it takes the request by, cached) of a dependency the lean handler can run."""
    if dep.name is None or dep.dependencies or not _takes_only(dep, path=False):
        return None
    if dep.call is None or not inspect.iscoroutinefunction(dep.call):
        return None
    return dep.name, dep.call, dep.request_param_name, dep.use_cache


def _lean_handler(dependant: Dependant) -> Handler | None:
    """The lean handler of ``dependant``, or None if it needs FastAPI's own."""
    call = dependant.call
    if call is None or not inspect.iscoroutinefunction(call) or dependant.request_param_name is not None:
        return None
    try:
        returns = inspect.signature(call, eval_str=True).return_annotation
    except (NameError, TypeError, ValueError):  # an annotation that cannot be read here: FastAPI's handler
        return None
    if not (inspect.isclass(returns) and issubclass(returns, Response)) or not _takes_only(dependant, path=True):
        return None
    planned = [_simple_dependency(dep) for dep in dependant.dependencies]
    if any(p is None for p in planned):
        return None
    dependencies = [p for p in planned if p is not None]
    paths = [(field.name, field.alias, field) for field in dependant.path_params]

    async def handler(request: Request) -> Response:
        values: dict[str, Any] = {}
        solved: dict[Call, Any] = {}  # a dependency named twice is called once, as FastAPI caches it
        for name, dependency, request_name, cached in dependencies:
            if cached and dependency in solved:
                values[name] = solved[dependency]
                continue
            value = await (dependency(**{request_name: request}) if request_name else dependency())
            values[name] = solved[dependency] = value
        errors: list[Any] = []
        given = request.path_params
        for name, alias, field in paths:
            value, failed = field.validate(given.get(alias), values, loc=("path", alias))
            if failed:
                errors.extend(failed)
            values[name] = value
        if errors:
            raise RequestValidationError(errors)
        return await call(**values)

    return handler


class LeanRoute(APIRoute):
    """An ``APIRoute`` served by a lean handler when its endpoint is simple enough (see the module's docstring),
    by FastAPI's own handler otherwise, or while the app has dependency overrides."""

    def get_route_handler(self) -> Handler:
        full = super().get_route_handler()
        # an included route is built per inclusion, whose dependencies (the router's, the include's) are the
        # effective route's: plan from those, never from this route's own list alone
        context_var = getattr(fastapi_routing, "_effective_route_context_var", None)
        if context_var is None:
            return full
        effective = context_var.get()
        route = effective if effective is not None and effective.original_route is self else self
        lean = None if route.dependant is None else _lean_handler(route.dependant)
        if lean is None:
            return full
        provider = route.dependency_overrides_provider

        async def handler(request: Request) -> Response:
            if provider is not None and getattr(provider, "dependency_overrides", None):
                return await full(request)
            return await lean(request)

        return handler
