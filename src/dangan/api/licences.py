"""Routes for licence types, issuing licences, their lifecycle, and finding them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from dangan.api.deps import AppContext, context, created, idempotency_key_header, require_scope
from dangan.api.schemas import PRINTABLE
from dangan.clients import Client
from dangan.clock import utc_text
from dangan.licences import lifecycle
from dangan.licences.records import REASON_CODES, StatusChange
from dangan.licences.service import IssueRequest
from dangan.licences.types import list_types
from dangan.licences.views import describe

router = APIRouter(tags=["licences"])


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class HolderIn(_In):
    name: str = Field(min_length=1, max_length=200, pattern=PRINTABLE)
    id_type: Literal["resident_id", "uscc", "passport", "other"]
    id_number: str = Field(min_length=2, max_length=40, pattern=PRINTABLE)


class LicenceIn(_In):
    """``POST /v1/licences``."""

    type: str = Field(min_length=1, max_length=20, pattern=r"^[0-9A-Z]+$")
    holder: HolderIn
    fields: dict[str, Any] = Field(default_factory=dict)
    valid_from: date | None = Field(default=None, description="default: today")
    valid_until: date | None = Field(default=None, description="default: by the type's rules")
    open_ended: bool = Field(default=False, description="no end date (长期), where the type allows")
    level: Literal["B-T", "B-LT"] = "B-T"
    operator: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=PRINTABLE,
        description="who asked at the calling system (seal usage log only)",
    )


class StatusChangeIn(_In):
    reason_code: str = Field(min_length=1, max_length=32)
    reason: str | None = Field(default=None, min_length=1, max_length=1000, pattern=PRINTABLE)


class HolderSearchIn(_In):
    """``POST /v1/licences/search``: the ID number travels in the body, never in a URL."""

    id_type: Literal["resident_id", "uscc", "passport", "other"]
    id_number: str = Field(min_length=2, max_length=40, pattern=PRINTABLE)
    type: str | None = Field(default=None, max_length=20, pattern=r"^[0-9A-Z]+$")


@router.get("/v1/licence-types", summary="Registered licence types")
async def licence_types(
    _client: Annotated[Client, Depends(require_scope("licences:read"))],
    ctx: Annotated[AppContext, Depends(context)],
) -> list[dict[str, Any]]:
    def query() -> list[dict[str, Any]]:
        with ctx.backends.engine.connect() as conn:
            return [
                {**t.definition, "seal_id": t.seal_id} for t in list_types(conn)
            ]

    return await run_in_threadpool(query)


class LicenceTypeIn(_In):
    """``POST /v1/licence-types``: a type definition (see README, "Licences") and the seal
    its licences are sealed with."""

    definition: dict[str, Any]
    seal_id: str = Field(min_length=1, max_length=36)


@router.post("/v1/licence-types", status_code=201, summary="Register a licence type")
async def register_licence_type(
    body: LicenceTypeIn,
    client: Annotated[Client, Depends(require_scope("licences:issue"))],
    ctx: Annotated[AppContext, Depends(context)],
) -> dict[str, Any]:
    licence_type, proof = await run_in_threadpool(
        lambda: lifecycle.register_type(ctx.licences, client, body.definition, body.seal_id)
    )
    return {**licence_type.definition, "seal_id": licence_type.seal_id, "ledger": proof}


@router.post(
    "/v1/licences",
    status_code=201,
    summary="Issue a licence: render, put the QR on, seal, archive and record it",
    responses={
        403: {"description": "the API key acts for another organisation than the type's issuer"},
        404: {"description": "no such licence type"},
        409: {"description": "the type's seal is not active; Idempotency-Key reused"},
        422: {"description": "fields, holder or validity do not fit the type"},
    },
)
async def issue_licence(
    body: LicenceIn,
    client: Annotated[Client, Depends(require_scope("licences:issue"))],
    ctx: Annotated[AppContext, Depends(context)],
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    request = IssueRequest(
        type_code=body.type,
        holder_name=body.holder.name,
        holder_id_type=body.holder.id_type,
        holder_id_number=body.holder.id_number,
        fields=body.fields,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        open_ended=body.open_ended,
        level=body.level,
        operator=body.operator,
    )
    answer, replayed = await ctx.licences.issue(
        client, request, idempotency_key=idempotency_key_header(idempotency_key)
    )
    return created(answer, location=f"/v1/licences/{answer['id']}", replayed=replayed)


@router.get("/v1/licences/{licence_id}", summary="A licence, with its status history")
async def get_licence(
    licence_id: str,
    _client: Annotated[Client, Depends(require_scope("licences:read"))],
    ctx: Annotated[AppContext, Depends(context)],
) -> dict[str, Any]:
    licence, history = await run_in_threadpool(lifecycle.get_licence, ctx.licences, licence_id)
    return {**describe(ctx.licences, licence), "history": [_change(c) for c in history]}


@router.post(
    "/v1/licences/search",
    summary="Licences of a holder, found by a keyed hash of the ID number",
)
async def search_licences(
    body: HolderSearchIn,
    _client: Annotated[Client, Depends(require_scope("licences:read"))],
    ctx: Annotated[AppContext, Depends(context)],
) -> dict[str, Any]:
    found = await run_in_threadpool(
        lambda: lifecycle.find_by_holder(
            ctx.licences, id_type=body.id_type, id_number=body.id_number, type_code=body.type
        )
    )
    return {"items": [describe(ctx.licences, lic) for lic in found]}


def _change(change: StatusChange) -> dict[str, Any]:
    return {
        "status": change.status,
        "reason_code": change.reason_code,
        "reason": change.reason,
        "changed_by": change.changed_by,
        "changed_at": utc_text(change.changed_at),
        "ledger_seq": change.ledger_seq,
    }


def _status_route(action: str) -> None:
    async def route(
        licence_id: str,
        body: StatusChangeIn,
        client: Annotated[Client, Depends(require_scope("licences:issue"))],
        ctx: Annotated[AppContext, Depends(context)],
    ) -> dict[str, Any]:
        licence, proof = await run_in_threadpool(
            lambda: lifecycle.change_status(
                ctx.licences, client, licence_id, action=action,
                reason_code=body.reason_code, reason=body.reason,
            )
        )
        return {**describe(ctx.licences, licence), "ledger": proof}

    router.add_api_route(
        f"/v1/licences/{{licence_id}}/{action}",
        route,
        methods=["POST"],
        name=f"{action}_licence",
        summary=f"{action.capitalize()} a licence (reason codes: {', '.join(REASON_CODES[action])})",
    )


for _action in ("suspend", "reinstate", "revoke"):
    _status_route(_action)

