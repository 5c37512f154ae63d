"""Request dependencies: the app context and bearer-key authentication."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from dangan.api.observability import Metrics
from dangan.api.ratelimit import RateLimiter
from dangan.bootstrap import Backends
from dangan.clients import Client, authenticate
from dangan.config import Settings
from dangan.documents import IngestWriter
from dangan.errors import InvalidRequest
from dangan.licences.service import LicenceService
from dangan.seals.service import SealingService
from dangan.signing.validation import PdfValidator


class AppContext:
    """Everything a route needs, built once by ``create_app``."""

    def __init__(self, *, settings: Settings, backends: Backends, metrics: Metrics) -> None:
        self.settings = settings
        self.backends = backends
        self.metrics = metrics
        self.keys = KeyCache(ttl=AUTH_CACHE_SECONDS)
        self.ingest = IngestWriter(clock=backends.clock)
        #: Worker processes for signature validation (started on first use); the app's
        #: lifespan closes them.
        self.validator = PdfValidator(workers=settings.validation_workers)
        #: Seal registry and sealing/signing; keeps key sources open for the process.
        self.sealing = SealingService(settings=settings, backends=backends)
        #: Licence issuance, lifecycle and verification.
        self.licences = LicenceService.from_settings(
            settings, backends=backends, sealing=self.sealing
        )
        #: Requests per client address on the public verification routes.
        self.public_limiter = RateLimiter(per_minute=settings.public_rate_limit)
        #: Threads for blocking store work on the upload path (write, fsync, link);
        #: many, since they mostly wait for the disk. The app's lifespan shuts them down.
        self.blocking = ThreadPoolExecutor(max_workers=32, thread_name_prefix="dangan-io")

    def close(self) -> None:
        """Stop what the context started: the validation workers, the sealing and licence
        services and the I/O threads (after their work is done), each whatever the others
        did."""
        try:
            self.validator.close()
            self.sealing.close()
            self.licences.close()
        finally:
            # Uploads in those threads finish storing and recording before the database
            # and store close (the lifespan closes them next).
            self.blocking.shutdown(wait=True)


#: How long a successful key lookup is reused; a revoked key stops working within this.
AUTH_CACHE_SECONDS = 2.0


class KeyCache:
    """Recently authenticated keys, by the SHA-256 of the key, for ``ttl`` seconds.

    Only successes are cached, and only briefly, so that a busy client does not cost a
    database round trip per request while a revocation still takes effect within ``ttl``.
    """

    def __init__(self, *, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[bytes, tuple[float, Client]] = {}

    def get(self, token: str) -> Client | None:
        key = hashlib.sha256(token.encode()).digest()
        hit = self._entries.get(key)
        if hit is None or hit[0] < time.monotonic():
            self._entries.pop(key, None)
            return None
        return hit[1]

    def put(self, token: str, client: Client) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        key = hashlib.sha256(token.encode()).digest()
        self._entries[key] = (time.monotonic() + self.ttl, client)


async def context(request: Request) -> AppContext:
    """The app's context (async: FastAPI would run a plain function in a thread)."""
    return request.app.state.ctx


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


async def authenticate_request(request: Request, scope: str) -> Client:
    """The caller of ``request``, who must hold ``scope``: 401 without a valid key, then 403.

    Recently seen keys come from the context's :class:`KeyCache`; others are looked up in
    the database (in a worker thread) and cached on success.
    """
    ctx: AppContext = request.app.state.ctx
    token = _bearer(request)
    client = ctx.keys.get(token) if token else None
    if client is None:

        def lookup() -> Client:
            with ctx.backends.engine.connect() as conn:
                return authenticate(conn, token)

        client = await run_in_threadpool(lookup)
        if token:
            ctx.keys.put(token, client)
    client.require(scope)
    request.state.client_id = client.id
    return client


def require_scope(scope: str) -> Callable[[Request], Awaitable[Client]]:
    """A dependency that authenticates the caller and insists on ``scope`` (401, then 403)."""

    async def dependency(request: Request) -> Client:
        return await authenticate_request(request, scope)

    return dependency


def idempotency_key_header(value: str | None) -> str | None:
    """The ``Idempotency-Key`` header, checked: 1 to 200 printable characters."""
    if value is None:
        return None
    value = value.strip()
    if not 1 <= len(value) <= 200 or not value.isprintable():
        raise InvalidRequest("Idempotency-Key must be 1 to 200 printable characters")
    return value


def created(body: dict[str, Any], *, location: str, replayed: bool) -> JSONResponse:
    """201 with ``body`` and its ``Location``; a retry answered from an Idempotency-Key
    says so with ``Idempotent-Replayed: true``."""
    headers = {"Location": location}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(body, status_code=201, headers=headers)
