"""Operational endpoints: liveness, readiness, metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from dangan.api.deps import AppContext, context
from dangan.errors import BackendUnavailable

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database and object store are reachable")
async def readyz(ctx: AppContext = Depends(context)) -> dict[str, object]:
    def probe() -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            with ctx.backends.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # any driver error means "not ready"
            raise BackendUnavailable(f"database unreachable: {type(exc).__name__}") from exc
        ctx.backends.store.check()
        checks["storage"] = "ok"
        return checks

    return {"status": "ready", "checks": await run_in_threadpool(probe)}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(ctx: AppContext = Depends(context)) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
