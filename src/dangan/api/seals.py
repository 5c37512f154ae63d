"""Routes for the seal registry and for sealing and signing documents."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from dangan.api.deps import AppContext, context, created, idempotency_key_header, require_scope
from dangan.api.schemas import PRINTABLE
from dangan.clients import Client
from dangan.errors import InvalidRequest
from dangan.seals import registry
from dangan.seals.service import DEFAULT_SEAL_MM, Placement, SealRequest, SignRequest

router = APIRouter(tags=["seals"])

_Name = Field(min_length=1, max_length=200, pattern=PRINTABLE)
_Reason = Field(default=None, min_length=1, max_length=500, pattern=PRINTABLE)
Level = Literal["B-B", "B-T", "B-LT", "B-LTA"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SealImageIn(_In):
    """The seal image: give ``png_base64``, or let the service draw a round red seal."""

    png_base64: str | None = Field(
        default=None, max_length=3_000_000, description="PNG with transparency, base64"
    )
    text: str | None = Field(
        default=None, max_length=40, pattern=PRINTABLE,
        description="generated seal: text along the ring (default: the organisation)",
    )
    center_text: str | None = Field(
        default=None, max_length=20, pattern=PRINTABLE,
        description="generated seal: line under the star (default by kind, e.g. 合同专用章)",
    )
    bottom_text: str | None = Field(
        default=None, max_length=40, pattern=PRINTABLE,
        description="generated seal: code along the bottom (e.g. unified social credit code)",
    )


class SealKeyIn(_In):
    """Where the seal's key lives (see README, "Seals")."""

    type: Literal["dev", "pkcs12", "pkcs11"] = "dev"
    key_type: Literal["rsa2048", "p256"] | None = None
    path: str | None = Field(default=None, max_length=1000)
    passphrase_file: str | None = Field(default=None, max_length=1000)
    module: str | None = Field(default=None, max_length=1000)
    token_label: str | None = Field(default=None, max_length=200)
    key_label: str | None = Field(default=None, max_length=200)
    key_id: str | None = Field(default=None, max_length=200)
    pin_file: str | None = Field(default=None, max_length=1000)
    certificate_file: str | None = Field(default=None, max_length=1000)


class SealIn(_In):
    """``POST /v1/seals``."""

    organisation: str = _Name
    name: str = _Name
    kind: Literal["official", "contract", "finance", "invoice", "approval", "business"]
    image: SealImageIn = SealImageIn()
    key: SealKeyIn = SealKeyIn()


class StatusChangeOut(BaseModel):
    status: str
    reason: str | None
    changed_by: str
    changed_at: datetime
    ledger_seq: int


class SealOut(BaseModel):
    """A registered seal."""

    id: str
    organisation: str
    name: str
    kind: str
    status: Literal["active", "suspended", "revoked"]
    image_sha256: str
    certificate_sha256: str
    certificate_subject: str
    certificate_not_after: datetime
    created_by: str
    created_at: datetime
    updated_at: datetime
    ledger_seq: int
    history: list[StatusChangeOut] = []
    ledger: dict[str, Any] | None = Field(
        default=None, description="proof of the ledger entry this response records"
    )

    @classmethod
    def of(
        cls,
        seal: registry.Seal,
        history: list[registry.StatusChange] | None = None,
        proof: dict[str, Any] | None = None,
    ) -> SealOut:
        certificate = x509.load_der_x509_certificate(seal.certificate)
        return cls(
            id=seal.id,
            organisation=seal.organisation,
            name=seal.name,
            kind=seal.kind,
            status=seal.status,  # type: ignore[arg-type]
            image_sha256=seal.image_sha256,
            certificate_sha256=seal.certificate_sha256,
            certificate_subject=certificate.subject.rfc4514_string(),
            certificate_not_after=certificate.not_valid_after_utc,
            created_by=seal.created_by,
            created_at=seal.created_at,
            updated_at=seal.updated_at,
            ledger_seq=seal.ledger_seq,
            history=[StatusChangeOut(**h.__dict__) for h in history or []],
            ledger=proof,
        )


class StatusIn(_In):
    reason: str | None = _Reason


class SealUseOut(BaseModel):
    ledger_seq: int
    seal_id: str
    document_id: str
    version: int
    client_id: str
    client_name: str
    operator: str | None
    used_at: datetime


class SealUsagePage(BaseModel):
    items: list[SealUseOut]
    next_cursor: str | None


class PlacementIn(_In):
    """Position in millimetres from the page's top-left corner."""

    page: int = Field(default=-1, description="1-based page; negative counts from the end")
    x: float | None = Field(default=None, ge=0, le=5000, description="left edge (default: centred)")
    y: float | None = Field(default=None, ge=0, le=5000, description="top edge (default: 60 mm above the bottom)")


class SealDocumentIn(PlacementIn):
    """``POST /v1/documents/{id}/seal``."""

    seal_id: str = Field(min_length=1, max_length=36)
    size: float = Field(default=DEFAULT_SEAL_MM, gt=5, le=200, description="seal diameter, mm")
    cross_page: bool = Field(
        default=False,
        description="骑缝章: slices along the right edge of every page, one signature",
    )
    level: Level = "B-T"
    reason: str | None = _Reason
    location: str | None = _Reason
    certify: bool = False
    docmdp: Literal["no_changes", "fill_forms", "annotate"] = "fill_forms"
    operator: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=PRINTABLE,
        description="who asked for the seal at the calling system (usage log only)",
    )


class SignDocumentIn(PlacementIn):
    """``POST /v1/documents/{id}/sign``."""

    officer_id: str = Field(min_length=1, max_length=100, pattern=PRINTABLE)
    officer_name: str = Field(min_length=1, max_length=64, pattern=PRINTABLE)
    width: float = Field(default=60, gt=5, le=300)
    height: float = Field(default=20, gt=5, le=300)
    text: str | None = Field(default=None, min_length=1, max_length=200)
    level: Level = "B-T"
    reason: str | None = _Reason
    location: str | None = _Reason
    key_type: Literal["rsa2048", "p256"] = "p256"


def _proof_response(body: BaseModel | dict[str, Any], status: int = 200) -> JSONResponse:
    content = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return JSONResponse(content, status_code=status)


@router.post("/v1/seals", status_code=201, response_model=SealOut, summary="Register a seal")
async def register_seal(
    body: SealIn,
    client: Annotated[Client, Depends(require_scope("seals:admin"))],
    ctx: Annotated[AppContext, Depends(context)],
) -> JSONResponse:
    image = body.image.model_dump(exclude_none=True)
    key = body.key.model_dump(exclude_none=True)
    seal, proof = await run_in_threadpool(
        ctx.sealing.register,
        client,
        organisation=body.organisation,
        name=body.name,
        kind=body.kind,
        image=image,
        key=key,
    )
    response = _proof_response(SealOut.of(seal, proof=proof), 201)
    response.headers["Location"] = f"/v1/seals/{seal.id}"
    return response


@router.get("/v1/seals", response_model=list[SealOut], summary="Seals of your organisation")
async def list_seals(
    client: Annotated[Client, Depends(require_scope("seal:use"))],
    ctx: Annotated[AppContext, Depends(context)],
) -> list[SealOut]:
    def query() -> list[SealOut]:
        with ctx.backends.engine.connect() as conn:
            return [SealOut.of(s) for s in registry.list_seals(conn, organisation=client.organisation)]

    return await run_in_threadpool(query)


def _own_seal(ctx: AppContext, client: Client, seal_id: str) -> registry.Seal:
    with ctx.backends.engine.connect() as conn:
        seal = registry.get_seal(conn, seal_id)
    registry.require_same_organisation(seal, client)
    return seal


@router.get("/v1/seals/{seal_id}", response_model=SealOut, summary="A seal and its history")
async def get_seal(
    seal_id: str,
    client: Annotated[Client, Depends(require_scope("seal:use"))],
    ctx: Annotated[AppContext, Depends(context)],
) -> SealOut:
    def query() -> SealOut:
        seal = _own_seal(ctx, client, seal_id)
        with ctx.backends.engine.connect() as conn:
            return SealOut.of(seal, registry.status_history(conn, seal_id))

    return await run_in_threadpool(query)


@router.get(
    "/v1/seals/{seal_id}/image",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    summary="The seal image (PNG)",
)
async def get_seal_image(
    seal_id: str,
    client: Annotated[Client, Depends(require_scope("seal:use"))],
    ctx: Annotated[AppContext, Depends(context)],
) -> Response:
    def read() -> bytes:
        return ctx.sealing.seal_image(_own_seal(ctx, client, seal_id))

    png = await run_in_threadpool(read)
    return Response(png, media_type="image/png")


@router.get(
    "/v1/seals/{seal_id}/certificate",
    response_class=Response,
    responses={200: {"content": {"application/pem-certificate-chain": {}}}},
    summary="The seal certificate (PEM)",
)
async def get_seal_certificate(
    seal_id: str,
    client: Annotated[Client, Depends(require_scope("seal:use"))],
    ctx: Annotated[AppContext, Depends(context)],
) -> Response:
    seal = await run_in_threadpool(_own_seal, ctx, client, seal_id)
    pem = x509.load_der_x509_certificate(seal.certificate).public_bytes(serialization.Encoding.PEM)
    return Response(pem, media_type="application/pem-certificate-chain")


def _lifecycle_route(action: str, summary: str) -> None:
    async def route(
        seal_id: str,
        client: Annotated[Client, Depends(require_scope("seals:admin"))],
        ctx: Annotated[AppContext, Depends(context)],
        body: StatusIn | None = None,
    ) -> JSONResponse:
        reason = body.reason if body is not None else None

        def change() -> SealOut:
            seal, proof = ctx.sealing.change_status(client, seal_id, action=action, reason=reason)
            with ctx.backends.engine.connect() as conn:
                return SealOut.of(seal, registry.status_history(conn, seal_id), proof)

        return _proof_response(await run_in_threadpool(change))

    router.add_api_route(
        f"/v1/seals/{{seal_id}}/{action}",
        route,
        methods=["POST"],
        response_model=SealOut,
        summary=summary,
        name=f"{action}_seal",
        responses={409: {"description": "not allowed from the seal's current status"}},
    )


_lifecycle_route("suspend", "Suspend an active seal (it cannot seal until reinstated)")
_lifecycle_route("reinstate", "Make a suspended seal active again")
_lifecycle_route("revoke", "Revoke a seal for good")


@router.get(
    "/v1/seals/{seal_id}/usage", response_model=SealUsagePage, summary="The seal's usage log"
)
async def seal_usage(
    seal_id: str,
    client: Annotated[Client, Depends(require_scope("seals:admin"))],
    ctx: Annotated[AppContext, Depends(context)],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> SealUsagePage:
    after = _decode_cursor(cursor)

    def query() -> SealUsagePage:
        _own_seal(ctx, client, seal_id)
        with ctx.backends.engine.connect() as conn:
            uses = registry.list_usage(conn, seal_id, limit=limit + 1, after=after)
        page = uses[:limit]
        next_cursor = _encode_cursor(page[-1].ledger_seq) if len(uses) > limit else None
        return SealUsagePage(items=[SealUseOut(**u.__dict__) for u in page], next_cursor=next_cursor)

    return await run_in_threadpool(query)


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        return int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the cursor is not valid") from None


_VERSION_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "the document, or the seal, belongs to another organisation"},
    404: {"description": "no such document or seal"},
    409: {"description": "the seal is not active, or the document changed meanwhile"},
    413: {"description": "the PDF exceeds DANGAN_MAX_SIGN_BYTES"},
    415: {"description": "the current version is not a PDF"},
    422: {"description": "the PDF cannot take the signature, or the placement is wrong"},
}


def _version_response(doc_id: str, receipt: dict[str, Any], replayed: bool) -> JSONResponse:
    return created(
        receipt, location=f"/v1/documents/{doc_id}?version={receipt['version']}", replayed=replayed
    )


@router.post(
    "/v1/documents/{doc_id}/seal",
    status_code=201,
    summary="Seal the current version with an organisation seal; returns the new version's receipt",
    tags=["documents"],
    responses=_VERSION_RESPONSES,
)
async def seal_document(
    doc_id: str,
    body: SealDocumentIn,
    client: Annotated[Client, Depends(require_scope("seal:use"))],
    ctx: Annotated[AppContext, Depends(context)],
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    request = SealRequest(
        seal_id=body.seal_id,
        placement=Placement(page=body.page, x=body.x, y=body.y, width=body.size, height=body.size),
        cross_page=body.cross_page,
        level=body.level,
        reason=body.reason,
        location=body.location,
        certify=body.certify,
        docmdp=body.docmdp,
        operator=body.operator,
    )
    receipt, replayed = await ctx.sealing.seal_document(
        client, doc_id, request, idempotency_key=idempotency_key_header(idempotency_key)
    )
    if not replayed:
        ctx.metrics.sealed_documents.inc()
    return _version_response(doc_id, receipt, replayed)


@router.post(
    "/v1/documents/{doc_id}/sign",
    status_code=201,
    summary="Sign the current version as an officer; returns the new version's receipt",
    tags=["documents"],
    responses=_VERSION_RESPONSES,
)
async def sign_document(
    doc_id: str,
    body: SignDocumentIn,
    client: Annotated[Client, Depends(require_scope("documents:sign"))],
    ctx: Annotated[AppContext, Depends(context)],
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    request = SignRequest(
        officer_id=body.officer_id,
        officer_name=body.officer_name,
        placement=Placement(
            page=body.page, x=body.x, y=body.y, width=body.width, height=body.height
        ),
        text=body.text,
        level=body.level,
        reason=body.reason,
        location=body.location,
        key_type=body.key_type,
    )
    receipt, replayed = await ctx.sealing.sign_document(
        client, doc_id, request, idempotency_key=idempotency_key_header(idempotency_key)
    )
    if not replayed:
        ctx.metrics.signed_documents.inc()
    return _version_response(doc_id, receipt, replayed)
