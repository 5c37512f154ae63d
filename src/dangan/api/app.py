"""The ASGI application: ``create_app(settings)`` builds it, nothing happens at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import dangan
from dangan.api import documents, ledger, ops, pki, seals, validation
from dangan.api.deps import AppContext
from dangan.api.observability import Metrics, RequestContextMiddleware
from dangan.api.problems import install_problem_handlers
from dangan.bootstrap import Backends, open_backends
from dangan.config import Settings, load_settings


def create_app(settings: Settings, *, backends: Backends | None = None) -> FastAPI:
    """The service for ``settings``; the schema must already be up to date (``dangan init``)."""
    backends = backends or open_backends(settings)
    metrics = Metrics.create()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        _app.state.ctx.validator.close()
        _app.state.ctx.sealing.close()
        backends.close()

    app = FastAPI(
        title="dangan",
        version=dangan.__version__,
        summary="Paperless e-documents and electronic archives: store, record, prove.",
        lifespan=lifespan,
    )
    app.state.ctx = AppContext(settings=settings, backends=backends, metrics=metrics)
    install_problem_handlers(app)
    app.include_router(ops.router)
    app.include_router(documents.router)
    app.include_router(ledger.router)
    app.include_router(pki.router)
    app.include_router(seals.router)
    app.include_router(validation.router)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory``: settings from the environment."""
    return create_app(load_settings())
