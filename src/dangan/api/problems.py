"""RFC 9457 problem details: the one place errors become HTTP responses."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from dangan.api.observability import current_request_id
from dangan.errors import DanganError

log = logging.getLogger("dangan.api")

PROBLEM_JSON = "application/problem+json"


def problem_type(code: str) -> str:
    """The problem ``type`` URI (RFC 9457 §3.1.1): a stable, non-resolvable URN per code."""
    return f"urn:dangan:problem:{code}"


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A ``application/problem+json`` response with dangan's stable ``code`` member."""
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title,
        "status": status,
        "code": code,
        "instance": request.url.path,
    }
    if detail:
        body["detail"] = detail
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def _dangan_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DanganError)
    return dangan_error_response(request, exc)


def dangan_error_response(request: Request, exc: DanganError) -> JSONResponse:
    """The problem details of one of dangan's errors."""
    headers = dict(exc.headers)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="dangan"'
    if exc.status >= 500:
        log.error("request failed: %s", exc.detail, extra={"code": exc.code})
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=headers,
        **exc.extra,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()
    ]
    return problem_response(
        request,
        status=422,
        code="invalid_request",
        title="The request parameters are invalid",
        detail="; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors),
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    phrase = HTTPStatus(exc.status_code).phrase
    code = phrase.lower().replace(" ", "_").replace("-", "_")
    return problem_response(
        request,
        status=exc.status_code,
        code=code,
        title=phrase,
        detail=str(exc.detail) if exc.detail and exc.detail != phrase else None,
        headers=getattr(exc, "headers", None),
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem_response(
        request, status=500, code="internal_error", title="Internal server error"
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error through problem details."""
    app.add_exception_handler(DanganError, _dangan_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
