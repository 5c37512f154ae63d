"""Routes answered before routing: endpoints that take the bare request.

FastAPI's way to an endpoint — the router's search through some forty routes, the nested
routers of ``include_router``, the request/response wrapper and the exception middleware
— cost an upload about as much time on the event loop as receiving and checking the upload
itself. A :class:`RequestRoute` endpoint needs none of it: it takes the
:class:`~starlette.requests.Request`, reads and checks what it needs, and returns a
Response. :class:`DirectRoutes` calls such endpoints straight from the middleware stack,
inside :class:`~dangan.api.observability.RequestContextMiddleware` (request id, access
log, metrics), with dangan's errors turned into the same problem details as elsewhere.
The routes stay registered with FastAPI for the OpenAPI document (and answer there too).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from dangan.api.problems import dangan_error_response
from dangan.errors import DanganError


class RequestRoute(APIRoute):
    """A route whose endpoint takes the bare :class:`Request` and returns a Response.

    The endpoint authenticates and reads its headers itself (FastAPI's dependency and
    parameter solving was about a fifth of an upload's work on the event loop); its
    parameters are documented through ``openapi_extra``.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return self.endpoint


class DirectRoutes:
    """ASGI middleware that calls the endpoints of ``routes`` (the :class:`RequestRoute`
    among them) for requests whose method and path they match exactly."""

    def __init__(self, app: ASGIApp, *, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self._routes = {
            (method, route.path): route
            for route in routes
            if isinstance(route, RequestRoute)
            for method in route.methods
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # names the route in the access log and metrics
        request = Request(scope, receive, send)
        try:
            response = await route.endpoint(request)
        except DanganError as exc:
            response = dangan_error_response(request, exc)
        await response(scope, receive, send)
