"""Request ids, JSON logs and Prometheus metrics."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dangan.ids import RandomNames

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "dangan_request_id", default=None
)
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = logging.getLogger("dangan.access")


def current_request_id() -> str | None:
    """The id of the request being served, if any."""
    return _request_id.get()


@dataclass(frozen=True)
class Metrics:
    """The service's Prometheus collectors, on a registry of their own."""

    registry: CollectorRegistry
    """What ``/metrics`` exposes."""
    requests: Counter
    """Requests by method, route template and status."""
    latency: Histogram
    """Request duration by method and route template."""
    ingested_bytes: Counter
    """Bytes of content accepted."""
    ingested_documents: Counter
    """Documents recorded."""
    sealed_documents: Counter
    """Versions made by sealing."""
    signed_documents: Counter
    """Versions made by an officer's signature."""

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "dangan_http_requests",
                "HTTP requests served",
                ["method", "route", "status"],
                registry=registry,
            ),
            latency=Histogram(
                "dangan_http_request_duration_seconds",
                "HTTP request duration",
                ["method", "route"],
                registry=registry,
            ),
            ingested_bytes=Counter(
                "dangan_ingested_bytes", "Bytes of content ingested", registry=registry
            ),
            ingested_documents=Counter(
                "dangan_ingested_documents", "Documents ingested", registry=registry
            ),
            sealed_documents=Counter(
                "dangan_sealed_documents", "Document versions sealed", registry=registry
            ),
            signed_documents=Counter(
                "dangan_signed_documents", "Document versions signed by officers", registry=registry
            ),
        )


#: Paths that may carry a licence token.
_PUBLIC_PREFIXES = ("/v/", "/V/", "/v1/public/")


def _loggable_path(path: str, route: str) -> str:
    """``path``, or for a public verification path its route, or just its prefix when no
    route matched (``/v/…/x``, a trailing slash): the token stays out of the log."""
    for prefix in _PUBLIC_PREFIXES:
        if path.startswith(prefix):
            return route if route.startswith(prefix) else prefix + "…"
    return path



class RequestContextMiddleware:
    """Assigns a request id, echoes it as ``X-Request-ID``, logs and measures each request."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        # Random request ids (they are shown to clients), without a getrandom call per
        # request (which also hands the GIL to another thread, mid-request).
        self._ids = RandomNames()

    def _series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """The request counter and latency histogram of one method, route and status
        (``labels()`` looks them up under a lock on every call; these keep them)."""
        key = (method, route, status)
        series = self._children.get(key)
        if series is None:
            series = self._children[key] = (
                self.metrics.requests.labels(method, route, str(status)),
                self.metrics.latency.labels(method, route),
            )
        return series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = _header(scope, b"x-request-id")
        request_id = supplied if supplied and _VALID_ID.match(supplied) else self._ids.next()
        token = _request_id.set(request_id)
        started = time.perf_counter()
        status: int | None = None  # set when the response starts

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Answer here, while the request id is known; Starlette's outer error
            # middleware would answer without it.
            access_log.exception("unhandled error")
            if status is not None:
                raise
            body = _internal_error_body(scope, request_id)
            await send_with_id(_internal_error_start(len(body)))
            await send({"type": "http.response.body", "body": body})
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            status = status or 500
            counter, histogram = self._series(scope["method"], route, status)
            counter.inc()
            histogram.observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        # A licence token says who holds the licence: public verification
                        # is logged by its route (or its prefix), never by its path.
                        "path": _loggable_path(scope["path"], route),
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            _request_id.reset(token)


def _internal_error_body(scope: Scope, request_id: str) -> bytes:
    """RFC 9457 problem details for an unexpected error: no internals, just the id."""
    return json.dumps(
        {
            "type": "urn:dangan:problem:internal_error",
            "title": "Internal server error",
            "status": 500,
            "code": "internal_error",
            "instance": scope.get("path", ""),
            "request_id": request_id,
        }
    ).encode()


def _internal_error_start(length: int) -> Message:
    return {
        "type": "http.response.start",
        "status": 500,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(length).encode()),
        ],
    }


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


_STANDARD_ATTRS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(*, level: str, as_json: bool) -> None:
    """Send dangan's and uvicorn's logs to stderr, as JSON lines when ``as_json``."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if as_json else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
