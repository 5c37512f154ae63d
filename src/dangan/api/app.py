"""The ASGI application: ``create_app(settings)`` builds it, nothing happens at import."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import dangan
from dangan.api import documents, ledger, licences, ops, pki, public, public_page, seals, validation
from dangan.api._direct import DirectRoutes
from dangan.api._keepalive import KeepAliveLimit
from dangan.api.deps import AppContext
from dangan.api.observability import Metrics, RequestContextMiddleware
from dangan.api.problems import install_problem_handlers
from dangan.bootstrap import Backends, open_backends
from dangan.config import Settings, load_settings
from dangan.licences.lifecycle import expire_due

log = logging.getLogger("dangan.licences")


def create_app(settings: Settings, *, backends: Backends | None = None) -> FastAPI:
    """The service for ``settings``; the schema must already be up to date (``dangan init``)."""
    backends = backends or open_backends(settings)
    metrics = Metrics.create()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_expire_licences(_app.state.ctx))
        yield
        sweeper.cancel()
        _app.state.ctx.close()
        backends.close()

    app = FastAPI(
        title="dangan",
        version=dangan.__version__,
        summary="Paperless e-documents and electronic archives: store, record, prove.",
        lifespan=lifespan,
        # Requests are counted and timed by RequestContextMiddleware (Prometheus, /metrics).
        # FastAPI's own OpenTelemetry hooks would only look up (on every request) whether
        # a tracer or meter provider has been set up; none is.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.ctx = AppContext(settings=settings, backends=backends, metrics=metrics)
    install_problem_handlers(app)
    app.include_router(ops.router)
    app.include_router(documents.router)
    app.include_router(ledger.router)
    app.include_router(pki.router)
    app.include_router(seals.router)
    app.include_router(validation.router)
    app.include_router(licences.router)
    app.include_router(public.router)
    app.include_router(public_page.router)
    verify_route = next(r for r in public.router.routes if getattr(r, "path", None) == public.VERIFY_PATH)
    app.add_middleware(public.VerifyFastPath, route=verify_route)
    # The routers are included without a prefix: their routes' paths are the app's.
    app.add_middleware(DirectRoutes, routes=documents.router.routes)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.add_middleware(KeepAliveLimit, max_requests=settings.keepalive_requests)
    return app


#: How often each worker records the expiry of licences past their last day.
EXPIRY_SWEEP_SECONDS = 600.0


async def _expire_licences(ctx: AppContext) -> None:
    """Record ``licence.expired`` for due licences now and every few minutes; the public
    status shows "expired" from the end of the last day whether or not this has run."""
    while True:
        try:
            await asyncio.to_thread(expire_due, ctx.licences)
        except Exception:  # keep sweeping; the next round retries
            log.exception("licence expiry sweep failed")
        await asyncio.sleep(EXPIRY_SWEEP_SECONDS)


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from the environment."""
    return create_app(load_settings())
