"""Routes of the trust services: the RFC 3161 TSA and the development PKI's CRL and CAs."""

from __future__ import annotations

from typing import Annotated

from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from dangan.api.deps import AppContext, context
from dangan.errors import PayloadTooLarge, UnsupportedMediaType
from dangan.signing.tsa import MAX_REQUEST_BYTES

router = APIRouter(tags=["trust services"])
_Ctx = Annotated[AppContext, Depends(context)]

TIMESTAMP_QUERY = "application/timestamp-query"
TIMESTAMP_REPLY = "application/timestamp-reply"


@router.post(
    "/tsa",
    summary="RFC 3161 time-stamp authority (application/timestamp-query → -reply)",
    response_class=Response,
    responses={200: {"content": {TIMESTAMP_REPLY: {}}}},
    openapi_extra={
        "requestBody": {"required": True, "content": {TIMESTAMP_QUERY: {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def timestamp(request: Request, ctx: _Ctx) -> Response:
    # RFC 3161 §3.4: a TimeStampReq over HTTP, answered with a TimeStampResp. A
    # malformed request gets a TimeStampResp with status "rejection", not an HTTP error.
    if request.headers.get("content-type", "").split(";")[0].strip() != TIMESTAMP_QUERY:
        raise UnsupportedMediaType(f"send the request as {TIMESTAMP_QUERY}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REQUEST_BYTES:
            raise PayloadTooLarge(f"a time-stamp request is at most {MAX_REQUEST_BYTES} bytes")
    reply = await run_in_threadpool(ctx.backends.signing.tsa.respond, bytes(body))
    return Response(reply, media_type=TIMESTAMP_REPLY, headers={"Cache-Control": "no-store"})


@router.get(
    "/pki/issuing-ca.crl",
    summary="CRL of the development issuing CA (DER)",
    response_class=Response,
    responses={200: {"content": {"application/pkix-crl": {}}}},
)
async def crl(ctx: _Ctx) -> Response:
    body = await run_in_threadpool(ctx.backends.signing.current_crl)
    return Response(body, media_type="application/pkix-crl", headers={"Cache-Control": "max-age=300"})


@router.get(
    "/pki/ca.pem",
    summary="The development CA certificates (issuing CA, then root), PEM",
    response_class=Response,
    responses={200: {"content": {"application/x-pem-file": {}}}},
)
async def ca_certificates(ctx: _Ctx) -> Response:
    pem = b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in ctx.backends.signing.pki.chain
    )
    return Response(pem, media_type="application/x-pem-file")
