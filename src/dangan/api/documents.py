"""Routes for documents: upload, metadata, listing and content."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from dangan.api._direct import RequestRoute
from dangan.api._offload import run_chained
from dangan.api.deps import (
    AppContext,
    authenticate_request,
    context,
    created,
    idempotency_key_header,
    require_scope,
)
from dangan.api.ranges import parse_range
from dangan.api.schemas import PRINTABLE, DocumentMetadataIn, DocumentOut, DocumentPage, ReceiptOut
from dangan.api.upload import ReceivedUpload, receive_upload
from dangan.clients import Client
from dangan.documents import (
    DocumentMetadata,
    IngestRequest,
    admit_upload,
    find_replay,
    get_document,
    get_version,
    list_documents,
    request_fingerprint,
)
from dangan.errors import IntegrityError, NotFound

router = APIRouter(prefix="/v1/documents", tags=["documents"])


def _filter() -> Any:
    return Query(max_length=200, pattern=PRINTABLE)



_UPLOAD_OPENAPI = {
    "parameters": [
        {
            "name": "idempotency-key",
            "in": "header",
            "required": False,
            "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Idempotency-Key"},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "metadata"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "metadata": {
                            "type": "string",
                            "description": 'JSON: {"title", "kind", "organisation", '
                            '"external_id"?, "case_ref"?}',
                        },
                    },
                }
            }
        },
    },
}


# No docstring: FastAPI would publish it as the operation's description.
async def upload_document(request: Request) -> Response:
    ctx: AppContext = request.app.state.ctx
    client = await authenticate_request(request, "documents:write")
    key = idempotency_key_header(request.headers.get("idempotency-key"))
    settings, backends = ctx.settings, ctx.backends
    upload = await receive_upload(
        request, store=backends.store, max_bytes=settings.max_upload_bytes, digest=key is not None
    )
    try:
        meta = DocumentMetadataIn.parse(upload.metadata)
        media_type = admit_upload(
            client=client,
            meta=meta,
            head=upload.head,
            size=upload.writer.size,
            allowed_media_types=settings.allowed_media_types,
        )
    except BaseException:
        upload.writer.abort()
        raise
    # From here the worker thread owns the upload's writer: it commits or aborts it.
    receipt, replayed = await run_chained(
        ctx.blocking, _store_and_record, _abandon, ctx, upload, client, meta, media_type, key
    )
    if not replayed:
        ctx.metrics.ingested_documents.inc()
        ctx.metrics.ingested_bytes.inc(receipt["size"])
    return created(receipt, location=f"/v1/documents/{receipt['id']}", replayed=replayed)


router.add_api_route(
    "",
    upload_document,
    methods=["POST"],
    route_class_override=RequestRoute,
    status_code=201,
    response_model=ReceiptOut,
    summary="Upload a document; returns a receipt",
    openapi_extra=_UPLOAD_OPENAPI,
    responses={
        201: {
            "description": "Recorded. A retry with the same Idempotency-Key gets the first "
            "receipt again, with the header Idempotent-Replayed: true",
        },
        409: {"description": "The Idempotency-Key was used for other content or metadata"},
        413: {"description": "The file exceeds DANGAN_MAX_UPLOAD_BYTES"},
        415: {"description": "The content is not of an accepted media type"},
        422: {"description": "The metadata is invalid"},
    },
)


def _store_and_record(
    ctx: AppContext,
    upload: ReceivedUpload,
    client: Client,
    meta: DocumentMetadata,
    media_type: str,
    key: str | None,
) -> Future[tuple[dict[str, Any], bool]]:
    """In a worker thread: check the key, make the content durable, queue the record."""
    try:
        if key is not None:
            # A key reused for other content is refused before the content is stored.
            with ctx.backends.engine.connect() as conn:
                find_replay(
                    conn,
                    client_id=client.id,
                    key=key,
                    fingerprint=request_fingerprint(meta, upload.writer.sha256()),
                )
        stored = upload.writer.commit()
    finally:
        upload.writer.abort()
    request = IngestRequest(client, meta, stored, media_type, key)
    return ctx.backends.writer.submit_item(ctx.ingest, request)


def _abandon(
    _ctx: AppContext,
    upload: ReceivedUpload,
    _client: Client,
    _meta: DocumentMetadata,
    _media_type: str,
    _key: str | None,
) -> None:
    """In a worker thread, instead of :func:`_store_and_record` when the request was
    cancelled before that started: the upload is dropped."""
    upload.writer.abort()


@router.get("", response_model=DocumentPage, summary="List documents, newest first")
async def list_documents_route(
    _client: Annotated[Client, Depends(require_scope("documents:read"))],
    ctx: Annotated[AppContext, Depends(context)],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    organisation: Annotated[str | None, _filter()] = None,
    kind: Annotated[str | None, _filter()] = None,
    case_ref: Annotated[str | None, _filter()] = None,
    external_id: Annotated[str | None, _filter()] = None,
) -> DocumentPage:
    def query() -> DocumentPage:
        with ctx.backends.engine.connect() as conn:
            docs, next_cursor = list_documents(
                conn,
                limit=limit,
                cursor=cursor,
                organisation=organisation,
                kind=kind,
                case_ref=case_ref,
                external_id=external_id,
            )
        return DocumentPage(items=[DocumentOut.of(d) for d in docs], next_cursor=next_cursor)

    return await run_in_threadpool(query)


@router.get("/{doc_id}", response_model=DocumentOut, summary="A document with its versions")
async def get_document_route(
    doc_id: str,
    _client: Annotated[Client, Depends(require_scope("documents:read"))],
    ctx: Annotated[AppContext, Depends(context)],
) -> DocumentOut:
    def query() -> DocumentOut:
        with ctx.backends.engine.connect() as conn:
            return DocumentOut.of(get_document(conn, doc_id))

    return await run_in_threadpool(query)


@router.get(
    "/{doc_id}/content",
    summary="The content of a version (streamed; supports Range and If-None-Match)",
    response_class=StreamingResponse,
    operation_id="get_document_content",
)
@router.head(
    "/{doc_id}/content",
    summary="Headers of a version's content (size, ETag) without the body",
    response_class=StreamingResponse,
    operation_id="head_document_content",
)
async def get_content(
    request: Request,
    doc_id: str,
    _client: Annotated[Client, Depends(require_scope("documents:read"))],
    ctx: Annotated[AppContext, Depends(context)],
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    def lookup():
        with ctx.backends.engine.connect() as conn:
            return get_version(conn, doc_id, version)

    ver = await run_in_threadpool(lookup)
    etag = f'"{ver.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, max-age=31536000, immutable" if version else "private, no-cache",
        "X-Content-SHA256": ver.sha256,
        "X-Document-Version": str(ver.version),
    }
    if request.headers.get("if-none-match") in (etag, "*"):
        return Response(status_code=304, headers=headers)
    span = parse_range(request.headers.get("range"), ver.size)
    if span is not None and request.headers.get("if-range") not in (None, etag):
        span = None  # RFC 9110 §13.1.5: the validator changed, send everything
    start, end = span if span is not None else (0, ver.size)
    headers["Content-Length"] = str(end - start)
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{ver.size}"
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=ver.media_type)
    try:
        body = await run_in_threadpool(ctx.backends.store.read, ver.sha256, start=start, end=end)
    except NotFound as exc:  # the database knows this version: its content must exist
        raise IntegrityError(
            f"the content of document {doc_id} version {ver.version} is missing from the store",
            sha256=ver.sha256,
        ) from exc
    return StreamingResponse(body, status_code=status, headers=headers, media_type=ver.media_type)
