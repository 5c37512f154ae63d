"""Request dependencies: the app context and bearer-key authentication."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from dangan.bootstrap import Backends
from dangan.clients import Client, authenticate
from dangan.config import Settings
from dangan.api.observability import Metrics


class AppContext:
    """Everything a route needs, built once by ``create_app``."""

    def __init__(self, *, settings: Settings, backends: Backends, metrics: Metrics) -> None:
        self.settings = settings
        self.backends = backends
        self.metrics = metrics


def context(request: Request) -> AppContext:
    """The app's context."""
    return request.app.state.ctx


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def require_scope(scope: str) -> Callable[[Request], Awaitable[Client]]:
    """A dependency that authenticates the caller and insists on ``scope`` (401, then 403)."""

    async def dependency(request: Request) -> Client:
        engine = context(request).backends.engine
        token = _bearer(request)

        def lookup() -> Client:
            with engine.connect() as conn:
                return authenticate(conn, token)

        client = await run_in_threadpool(lookup)
        client.require(scope)
        request.state.client_id = client.id
        return client

    return dependency
