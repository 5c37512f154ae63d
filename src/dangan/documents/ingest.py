"""Ingest: recording uploaded content in the database and the ledger.

The object is made durable by the store *before* anything here runs; one transaction
then writes the object row, the document, its version and the ``document.ingested``
ledger entry together (DESIGN.md invariants 2 and 4). A crash between the two leaves at
most an unreferenced object, which an audit reports.

Uploads arriving together are written together (:class:`IngestWriter`): one statement
per table for the whole group, then one inclusion-proof query for all their receipts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from dangan.clients import Client
from dangan.clock import Clock
from dangan.db.tables import document_versions, documents, objects
from dangan.documents.service import DocumentMetadata
from dangan.documents.sniff import sniff_media_type
from dangan.errors import Forbidden, UnsupportedMediaType
from dangan.idempotency import (
    find_replay,
    fingerprint,
    remember,
    store_response,
    stored_response,
)
from dangan.ids import new_id
from dangan.ledger.checkpoints import StoredCheckpoint
from dangan.ledger.log import LedgerEntry, NewEvent, append_events, format_time
from dangan.ledger.service import receipt_proof
from dangan.storage import StoredObject


def request_fingerprint(meta: DocumentMetadata, sha256: str) -> str:
    """Hash of what an idempotent retry must repeat exactly: content and metadata."""
    return fingerprint({"sha256": sha256, "metadata": meta.__dict__})


@dataclass(frozen=True)
class Ingested:
    """A recorded (or replayed) upload whose receipt still lacks its ledger proof."""

    receipt: dict[str, Any]
    """The receipt so far (for a replay: as first stored)."""
    entry: LedgerEntry | None
    """The new ledger entry; ``None`` for a replay."""
    client_id: str
    """Who uploaded."""
    idempotency_key: str | None
    """The request's Idempotency-Key, if any."""

    @property
    def replayed(self) -> bool:
        """Whether this answers a retry of an earlier request."""
        return self.entry is None


def record_ingest(
    conn: Connection,
    *,
    client: Client,
    meta: DocumentMetadata,
    stored: StoredObject,
    media_type: str,
    idempotency_key: str | None,
    now: datetime,
) -> Ingested:
    """Record a new document whose content is already durable.

    Runs inside the caller's write transaction. A retry with the same ``idempotency_key``
    writes nothing and answers with the first receipt (see :func:`complete_ingest`).
    """
    request = IngestRequest(client, meta, stored, media_type, idempotency_key)
    if idempotency_key is None:
        return _insert_documents(conn, [request], now)[0]
    fingerprint = request_fingerprint(meta, stored.sha256)
    replay = find_replay(conn, client_id=client.id, key=idempotency_key, fingerprint=fingerprint)
    if replay is not None:
        return Ingested(replay, None, client.id, idempotency_key)
    try:
        # A savepoint, so that losing the race for the key (PostgreSQL, another process)
        # leaves the transaction usable for reading the winner's receipt.
        with conn.begin_nested():
            return _insert_documents(conn, [request], now)[0]
    except SQLIntegrityError:
        replay = find_replay(conn, client_id=client.id, key=idempotency_key, fingerprint=fingerprint)
        if replay is None:
            raise
        return Ingested(replay, None, client.id, idempotency_key)


def complete_ingest(
    conn: Connection, ingested: Ingested, checkpoint: StoredCheckpoint | None
) -> tuple[dict[str, Any], bool]:
    """The final receipt, with the inclusion proof against ``checkpoint``; (receipt, replayed).

    The final receipt is what an idempotent retry gets back, byte for byte.
    """
    if ingested.replayed:
        assert ingested.idempotency_key is not None
        return stored_response(
            conn, client_id=ingested.client_id, key=ingested.idempotency_key
        ), True
    assert ingested.entry is not None
    receipt = dict(ingested.receipt)
    if checkpoint is not None:
        receipt["ledger"] = receipt_proof(conn, ingested.entry, checkpoint)
    if ingested.idempotency_key is not None:
        store_response(
            conn, client_id=ingested.client_id, key=ingested.idempotency_key, response=receipt
        )
    return receipt, False


# Built once (see dangan.ledger.log): the ingest path runs these for every upload.
#: Records an object row, once per content, by dialect.
INSERT_OBJECT = {
    "sqlite": sqlite_insert(objects).on_conflict_do_nothing(index_elements=["sha256"]),
    "postgresql": pg_insert(objects).on_conflict_do_nothing(index_elements=["sha256"]),
}
_INSERT_DOCUMENT = documents.insert()
_INSERT_VERSION = document_versions.insert()


def build_receipt(
    doc_id: str, version: int, stored: StoredObject, media_type: str, entry: LedgerEntry
) -> dict[str, Any]:
    """The JSON receipt handed back for a recorded version."""
    return {
        "id": doc_id,
        "version": version,
        "sha256": stored.sha256,
        "size": stored.size,
        "media_type": media_type,
        "created_at": format_time(entry.created_at),  # as the ledger entry has it
        "ledger": {"seq": entry.seq, "leaf_hash": entry.leaf_hash.hex()},
    }


def admit_upload(
    *,
    client: Client,
    meta: DocumentMetadata,
    head: bytes,
    size: int,
    allowed_media_types: Sequence[str],
) -> str:
    """The upload's media type, once it may be filed: :class:`Forbidden` when the key acts
    for another organisation, :class:`UnsupportedMediaType` when the content (sniffed from
    its first bytes, never from what the client claims) is not accepted."""
    if meta.organisation != client.organisation:
        raise Forbidden(
            f"this API key acts for {client.organisation!r} and cannot file documents "
            f"for {meta.organisation!r}"
        )
    media_type = sniff_media_type(head, complete=size <= len(head))
    if media_type is None or media_type not in allowed_media_types:
        raise UnsupportedMediaType(
            f"content recognised as {media_type or 'unknown'}; accepted: "
            + ", ".join(allowed_media_types)
        )
    return media_type


@dataclass(frozen=True)
class IngestRequest:
    """One upload to record, its content already durable in the store."""

    client: Client
    """Who uploads."""
    meta: DocumentMetadata
    """Validated metadata."""
    stored: StoredObject
    """The committed object."""
    media_type: str
    """Sniffed media type."""
    idempotency_key: str | None
    """The request's Idempotency-Key, if any."""


class IngestWriter:
    """Records waiting uploads together (a :class:`dangan.db.committer.BatchHandler`)."""

    def __init__(self, *, clock: Clock) -> None:
        self.clock = clock

    def run_many(self, conn: Connection, items: Sequence[IngestRequest]) -> list[Ingested]:
        """Record ``items``: those without an Idempotency-Key in bulk, the others one by
        one (a key may repeat within the batch; the later use then replays the first)."""
        now = self.clock()
        values: list[Ingested | None] = [None] * len(items)
        bulk = [i for i, req in enumerate(items) if req.idempotency_key is None]
        for i, req in enumerate(items):
            if req.idempotency_key is not None:
                values[i] = record_ingest(
                    conn, client=req.client, meta=req.meta, stored=req.stored,
                    media_type=req.media_type, idempotency_key=req.idempotency_key, now=now,
                )
        for i, value in zip(bulk, _insert_documents(conn, [items[i] for i in bulk], now)):
            values[i] = value
        return [v for v in values if v is not None]

    def complete_many(
        self, conn: Connection, values: Sequence[Ingested], sealed: StoredCheckpoint | None
    ) -> list[tuple[dict[str, Any], bool]]:
        """Final receipts: fresh ones first (their keys then hold the final receipt),
        then the replays, read back."""
        results: dict[int, tuple[dict[str, Any], bool]] = {}
        for i, value in enumerate(values):
            if not value.replayed:
                results[i] = complete_ingest(conn, value, sealed)
        for i, value in enumerate(values):
            if value.replayed:
                results[i] = complete_ingest(conn, value, sealed)
        return [results[i] for i in range(len(values))]


def _subject(doc_id: str, stored: StoredObject, media_type: str) -> dict[str, Any]:
    return {
        "document": doc_id,
        "version": 1,
        "sha256": stored.sha256,
        "size": stored.size,
        "media_type": media_type,
    }


def _document_row(doc_id: str, req: IngestRequest, now: datetime) -> dict[str, Any]:
    meta = req.meta
    return {
        "id": doc_id,
        "title": meta.title,
        "kind": meta.kind,
        "organisation": meta.organisation,
        "external_id": meta.external_id,
        "case_ref": meta.case_ref,
        "created_by": req.client.id,
        "created_at": now,
        "current_version": 1,
    }


def _version_row(doc_id: str, req: IngestRequest, entry: LedgerEntry, now: datetime) -> dict[str, Any]:
    return {
        "document_id": doc_id,
        "version": 1,
        "sha256": req.stored.sha256,
        "size": req.stored.size,
        "media_type": req.media_type,
        "created_at": now,
        "ledger_seq": entry.seq,
    }


def _insert_documents(
    conn: Connection, items: Sequence[IngestRequest], now: datetime
) -> list[Ingested]:
    """Bulk insert: one statement per table for all ``items``."""
    if not items:
        return []
    doc_ids = [new_id(now) for _ in items]
    conn.execute(
        INSERT_OBJECT[conn.dialect.name],
        [{"sha256": r.stored.sha256, "size": r.stored.size, "created_at": now} for r in items],
    )
    entries = append_events(
        conn,
        [
            NewEvent("document.ingested", r.client.id, _subject(doc_id, r.stored, r.media_type))
            for doc_id, r in zip(doc_ids, items)
        ],
        now=now,
    )
    conn.execute(_INSERT_DOCUMENT, [_document_row(d, r, now) for d, r in zip(doc_ids, items)])
    conn.execute(
        _INSERT_VERSION,
        [_version_row(d, r, e, now) for d, r, e in zip(doc_ids, items, entries)],
    )
    ingested = []
    for doc_id, req, entry in zip(doc_ids, items, entries):
        receipt = build_receipt(doc_id, 1, req.stored, req.media_type, entry)
        if req.idempotency_key is not None:
            remember(
                conn,
                client_id=req.client.id,
                key=req.idempotency_key,
                fingerprint=request_fingerprint(req.meta, req.stored.sha256),
                response=receipt,
                now=now,
            )
        ingested.append(Ingested(receipt, entry, req.client.id, req.idempotency_key))
    return ingested
