"""Public, unauthenticated routes for licence verification: the JSON API and the trust
list an offline verifier saves. Rate-limited per client address; nothing here logs the
token or what it says (the access log names the route, not the path)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from dangan.api.deps import AppContext, context
from dangan.api.ratelimit import public_rate_limit
from dangan.licences.verification import verify_public

router = APIRouter(tags=["public"])

#: The page and the JSON may be cached briefly by nobody but the browser: a suspension
#: must show at once.
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


@router.get(
    "/v1/public/licences/verify",
    summary="Verify a licence's QR token: its live status and the minimum about it",
    dependencies=[Depends(public_rate_limit)],
)
async def verify_licence(
    ctx: Annotated[AppContext, Depends(context)],
    token: Annotated[str, Query(min_length=1, max_length=2000)],
) -> JSONResponse:
    # One indexed read, answered on the event loop: cheaper than a thread hop.
    verification = verify_public(ctx.licences, token)
    return JSONResponse(verification.to_json(), headers=_NO_STORE)


@router.get(
    "/.well-known/dangan/trust-list.json",
    summary="The QR-signing keys and certificates, for verifying tokens offline",
)
async def trust_list(ctx: Annotated[AppContext, Depends(context)]) -> dict[str, Any]:
    return ctx.licences.trust_list().to_json()
