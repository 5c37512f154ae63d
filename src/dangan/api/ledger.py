"""Routes for the ledger: checkpoints, the verifier key, entries and proofs.

The checkpoint and key are public: anyone may check a receipt. Entries and proofs need
the ``ledger:read`` scope (entries carry no personal data, but they do show activity).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from dangan.api.deps import AppContext, context, require_scope
from dangan.clients import Client
from dangan.errors import InvalidRequest, NotFound
from dangan.ledger.checkpoints import StoredCheckpoint, checkpoint_timestamp, latest_checkpoint
from dangan.ledger.log import find_seq, get_entry, read_head
from dangan.ledger.merkle import leaf_hash
from dangan.ledger.tree import consistency_proof_at, inclusion_proof_at
from dangan.signing.tsa import request_timestamp

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])
_Reader = Annotated[Client, Depends(require_scope("ledger:read"))]
_Ctx = Annotated[AppContext, Depends(context)]
#: Positions and sizes are 64-bit in the database (and in RFC 9162).
MAX_INDEX = 2**63 - 1


@router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    summary="The latest signed checkpoint (C2SP tlog-checkpoint signed note)",
)
async def checkpoint(ctx: _Ctx) -> PlainTextResponse:
    backends = ctx.backends

    def current() -> StoredCheckpoint | None:
        with backends.engine.connect() as conn:
            latest = latest_checkpoint(conn)
            size = read_head(conn).size
        return latest if latest is not None and latest.size == size else None

    latest = await run_in_threadpool(current)
    if latest is None:
        # Entries were appended since (e.g. by the CLI): sign one through the writer.
        latest = await asyncio.wrap_future(
            backends.writer.submit(lambda conn: backends.ledger.checkpoint(conn, now=backends.clock()))
        )
    return PlainTextResponse(latest.note, headers={"Cache-Control": "no-cache"})


@router.get(
    "/checkpoint/timestamp",
    summary="RFC 3161 time-stamp response over the latest checkpoint's signed note",
    response_class=Response,
    responses={200: {"content": {"application/timestamp-reply": {}}}},
)
async def checkpoint_timestamp_route(ctx: _Ctx) -> Response:
    backends = ctx.backends

    def stamp(note: bytes) -> bytes:
        return backends.signing.tsa.respond(request_timestamp(note, nonce=False))

    def job(conn: Connection) -> tuple[int, bytes]:
        latest = backends.ledger.checkpoint(conn, now=backends.clock())
        reply = checkpoint_timestamp(conn, latest, stamp=stamp, now=backends.clock())
        return latest.size, reply

    size, reply = await asyncio.wrap_future(backends.writer.submit(job))
    return Response(
        reply,
        media_type="application/timestamp-reply",
        headers={"X-Checkpoint-Size": str(size), "Cache-Control": "no-cache"},
    )


@router.get(
    "/key",
    response_class=PlainTextResponse,
    summary="The checkpoint verifier key: <name>+<hex key id>+<base64(0x01 ‖ Ed25519 key)>",
)
async def key(ctx: _Ctx) -> PlainTextResponse:
    return PlainTextResponse(ctx.backends.ledger.verifier_key() + "\n")


@router.get(
    "/entries/{seq}",
    summary="An entry's canonical bytes: exactly the Merkle leaf data",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
async def entry(
    seq: Annotated[int, Path(ge=0, le=MAX_INDEX)], _client: _Reader, ctx: _Ctx
) -> Response:
    def load() -> bytes:
        with ctx.backends.engine.connect() as conn:
            found = get_entry(conn, seq)
        if found is None:
            raise NotFound(f"no ledger entry {seq}")
        return found.body

    body = await run_in_threadpool(load)
    return Response(body, media_type="application/json", headers={"X-Leaf-Hash": leaf_hash(body).hex()})


@router.get("/proofs/inclusion", summary="RFC 9162 inclusion proof, by seq or by leaf hash")
async def inclusion(
    _client: _Reader,
    ctx: _Ctx,
    tree_size: Annotated[int, Query(ge=1, le=MAX_INDEX)],
    seq: Annotated[int | None, Query(ge=0, le=MAX_INDEX)] = None,
    leaf: Annotated[str | None, Query(alias="leaf_hash", pattern="^[0-9a-f]{64}$")] = None,
) -> dict[str, object]:
    if (seq is None) == (leaf is None):
        raise InvalidRequest("give exactly one of seq and leaf_hash")

    def prove() -> dict[str, object]:
        with ctx.backends.engine.connect() as conn:
            index = seq if seq is not None else find_seq(conn, bytes.fromhex(leaf or ""))
            head = read_head(conn)
            proof = inclusion_proof_at(conn, index, tree_size, head_size=head.size)
        return {"seq": index, "tree_size": tree_size, "inclusion_proof": [p.hex() for p in proof]}

    return await run_in_threadpool(prove)


@router.get("/proofs/consistency", summary="RFC 9162 consistency proof between two tree sizes")
async def consistency(
    _client: _Reader,
    ctx: _Ctx,
    first: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    second: Annotated[int, Query(ge=0, le=MAX_INDEX)],
) -> dict[str, object]:
    if first > second:
        raise InvalidRequest("first must not exceed second")

    def prove() -> dict[str, object]:
        with ctx.backends.engine.connect() as conn:
            head = read_head(conn)
            proof = consistency_proof_at(conn, first, second, head_size=head.size)
        return {"first": first, "second": second, "consistency_proof": [p.hex() for p in proof]}

    return await run_in_threadpool(prove)
