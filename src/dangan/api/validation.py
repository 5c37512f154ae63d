"""Routes for PDF signature validation: of an uploaded PDF, and of a stored version.

Validation only reads. ``POST /v1/validate`` keeps the PDF in memory (up to
``DANGAN_MAX_VALIDATE_BYTES``) and stores nothing: no object, no row, no ledger event.
Whatever the bytes are — hostile, malformed, not a PDF at all — the answer is a 200 report
(TOTAL_FAILED/FORMAT_FAILURE for anything unreadable); the parse runs in the validator's
worker processes, never in the API process.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from dangan.api.deps import AppContext, context, require_scope
from dangan.api.schemas import StoredValidationOut, ValidationReportOut
from dangan.api.upload import receive_in_memory
from dangan.clients import Client
from dangan.documents import validate_version
from dangan.signing.trust import deployment_trust
from dangan.signing.validation import validate_pdf

router = APIRouter(tags=["validation"])

PDF = "application/pdf"
_Reader = Annotated[Client, Depends(require_scope("documents:read"))]
_Ctx = Annotated[AppContext, Depends(context)]

_VALIDATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            PDF: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/v1/validate",
    response_model=ValidationReportOut,
    summary="Validate the signatures of a PDF (nothing is stored)",
    openapi_extra=_VALIDATE_BODY,
    responses={
        200: {
            "description": "The report, whatever the bytes were: content that is not a "
            "readable PDF gets TOTAL_FAILED / FORMAT_FAILURE with a `problem`"
        },
        413: {"description": "The file exceeds DANGAN_MAX_VALIDATE_BYTES"},
        415: {"description": "The body is neither multipart/form-data nor application/pdf"},
    },
)
async def validate_upload(request: Request, _client: _Reader, ctx: _Ctx) -> JSONResponse:
    limit = ctx.settings.max_validate_bytes
    pdf = await receive_in_memory(request, max_bytes=limit, raw_media_type=PDF)
    trust = await run_in_threadpool(deployment_trust, ctx.backends.signing)
    report = await validate_pdf(
        pdf,
        trust_roots=trust.roots,
        crls=trust.crls,
        now=ctx.backends.clock(),
        max_bytes=limit,
        validator=ctx.validator,
    )
    # The dict is sent as is, so that `dangan validate --json` prints the very same JSON.
    return JSONResponse(report.to_dict())


@router.get(
    "/v1/documents/{doc_id}/validation",
    response_model=StoredValidationOut,
    summary="Validate the signatures of a stored version (default: the current one)",
    tags=["documents"],
    responses={
        404: {"description": "No such document or version"},
        415: {"description": "The version is not a PDF"},
    },
)
async def validate_stored(
    doc_id: str,
    _client: _Reader,
    ctx: _Ctx,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> JSONResponse:
    backends = ctx.backends
    trust = await run_in_threadpool(deployment_trust, backends.signing)
    result = await validate_version(
        backends.engine,
        backends.store,
        doc_id,
        version,
        validator=ctx.validator,
        trust=trust,
        now=backends.clock(),
        max_bytes=ctx.settings.max_validate_bytes,
    )
    return JSONResponse(result.to_dict())
