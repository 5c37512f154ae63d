"""Public, unauthenticated routes for licence verification: the JSON API and the trust
list an offline verifier saves. Rate-limited per client address; nothing here logs the
token or what it says (the access log names the route, not the path)."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from dangan.api.deps import AppContext, context
from dangan.api.ratelimit import TooManyRequests, client_key, public_rate_limit
from dangan.licences.verification import verify_public

router = APIRouter(tags=["public"])

#: Nobody may cache the answer: a suspension must show at once.
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
VERIFY_PATH = "/v1/public/licences/verify"


@router.get(
    VERIFY_PATH,
    summary="Verify a licence's QR token: its live status and the minimum about it",
    dependencies=[Depends(public_rate_limit)],
)
async def verify_licence(
    ctx: Annotated[AppContext, Depends(context)],
    token: Annotated[str, Query(min_length=1, max_length=2000)],
) -> JSONResponse:
    # One indexed read, answered on the event loop: cheaper than a thread hop.
    return JSONResponse(verify_public(ctx.licences, token).to_json(), headers=_NO_STORE)


@router.get(
    "/.well-known/dangan/trust-list.json",
    summary="The QR-signing keys and certificates, for verifying tokens offline",
)
async def trust_list(ctx: Annotated[AppContext, Depends(context)]) -> dict[str, Any]:
    return ctx.licences.trust_list().to_json()


class VerifyFastPath:
    """ASGI middleware that answers a well-formed ``GET /v1/public/licences/verify``
    itself, before routing and dependency injection.

    Every scan of every licence lands here, and routing through some forty routes plus
    solving the route's dependencies cost several times the verification itself. It
    sits inside :class:`RequestContextMiddleware` (request id, access log, metrics) and
    does what the route above does; anything else — another path, a malformed query,
    an address over its rate limit — goes on to the route, which answers with the
    usual problem details.
    """

    def __init__(self, app: ASGIApp, *, route: object) -> None:
        self.app = app
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != VERIFY_PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        token = _only_token(scope.get("query_string", b""))
        ctx: AppContext = scope["app"].state.ctx
        client = scope.get("client")
        try:
            if token is None:
                raise ValueError("not a single token parameter")
            ctx.public_limiter.check(client_key(client[0] if client else None))
        except (ValueError, TooManyRequests):
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route  # names the route in the access log and metrics
        body = json.dumps(
            verify_public(ctx.licences, token).to_json(), ensure_ascii=False, separators=(",", ":")
        ).encode()
        await send({"type": "http.response.start", "status": 200, "headers": _FAST_HEADERS + [
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


_FAST_HEADERS = [
    (b"content-type", b"application/json"),
    *((k.lower().encode(), v.encode()) for k, v in _NO_STORE.items()),
]


def _only_token(query: bytes) -> str | None:
    """The value of the query's one ``token`` parameter (1 to 2000 characters)."""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    if len(pairs) != 1 or pairs[0][0] != "token" or not 1 <= len(pairs[0][1]) <= 2000:
        return None
    return pairs[0][1]
