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

Anything else (a body, query or header parameters, a dependency with ``yield``, overrides set on the app) is
handled by FastAPI's own handler, so a route never behaves differently for being lean, only faster.
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


def _simple_dependency(dep: Dependant) -> tuple[str, Call, bool] | None:
    """(name, call, takes the request) of a dependency the lean handler can run, else None."""
    params = (dep.path_params, dep.query_params, dep.header_params, dep.cookie_params, dep.body_params)
    others = (dep.websocket_param_name, dep.http_connection_param_name, dep.response_param_name)
    special = (dep.background_tasks_param_name, dep.security_scopes_param_name)
    if any(params) or dep.dependencies or any(others) or any(special) or dep.name is None:
        return None
    if dep.call is None or not inspect.iscoroutinefunction(dep.call):
        return None
    return dep.name, dep.call, dep.request_param_name is not None


def _lean_handler(dependant: Dependant) -> Handler | None:
    """The lean handler of ``dependant``, or None if it needs FastAPI's own."""
    call = dependant.call
    if call is None or not inspect.iscoroutinefunction(call) or dependant.request_param_name is not None:
        return None
    try:
        returns = inspect.signature(call, eval_str=True).return_annotation
    except (NameError, TypeError, ValueError):  # an annotation that cannot be read here: FastAPI's handler
        return None
    if not (inspect.isclass(returns) and issubclass(returns, Response)):
        return None
    if any((dependant.query_params, dependant.header_params, dependant.cookie_params, dependant.body_params)):
        return None
    if any((dependant.background_tasks_param_name, dependant.response_param_name, dependant.websocket_param_name)):
        return None
    planned = [_simple_dependency(dep) for dep in dependant.dependencies]
    if any(p is None for p in planned):
        return None
    dependencies: list[tuple[str, Call, bool]] = [p for p in planned if p is not None]
    paths = [(field.name, field.alias, field) for field in dependant.path_params]

    async def handler(request: Request) -> Response:
        values: dict[str, Any] = {}
        for name, dependency, takes_request in dependencies:
            values[name] = await (dependency(request) if takes_request else dependency())
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
