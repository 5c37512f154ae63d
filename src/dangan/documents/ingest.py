"""Ingest: recording uploaded content in the database and the ledger.

The object is made durable by the store *before* anything here runs; one transaction
then writes the object row, the document, its version and the ``document.ingested``
ledger entry together (DESIGN.md invariants 2 and 4). A crash between the two leaves at
most an unreferenced object, which an audit reports.

Uploads arriving together are written together (:class:`IngestWriter`): one statement
per table for the whole group. Their receipts' inclusion proofs come from the append
itself, checked against the signed checkpoint (or, failing that, from one query for all).
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
from dangan.db.direct import DirectStatement
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
from dangan.ids import new_ids
from dangan.ledger.checkpoints import StoredCheckpoint
from dangan.ledger.log import AppendedRun, LedgerEntry, NewEvent, append_run, format_time
from dangan.ledger.service import receipt_proofs
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
    run: AppendedRun | None = None
    """The append that recorded the entry (shared by the uploads recorded with it)."""

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
    return complete_ingests(conn, [ingested], checkpoint)[0]


def complete_ingests(
    conn: Connection, values: Sequence[Ingested], checkpoint: StoredCheckpoint | None
) -> list[tuple[dict[str, Any], bool]]:
    """:func:`complete_ingest` for each of ``values`` (the proofs, see :func:`_proofs`).

    Fresh receipts are finished first (their keys then hold the final receipt), then the
    replays are read back, so a key used twice in one batch replays the final receipt.
    """
    results: list[tuple[dict[str, Any], bool] | None] = [None] * len(values)
    fresh = [i for i, value in enumerate(values) if value.entry is not None]
    proofs = _proofs(conn, [values[i] for i in fresh], checkpoint)
    for i, proof in zip(fresh, proofs):
        ingested = values[i]
        receipt = dict(ingested.receipt)
        if proof is not None:
            receipt["ledger"] = proof
        if ingested.idempotency_key is not None:
            store_response(
                conn, client_id=ingested.client_id, key=ingested.idempotency_key, response=receipt
            )
        results[i] = (receipt, False)
    for i, ingested in enumerate(values):
        if ingested.replayed:
            assert ingested.idempotency_key is not None
            receipt = stored_response(
                conn, client_id=ingested.client_id, key=ingested.idempotency_key
            )
            results[i] = (receipt, True)
    return [r for r in results if r is not None]


def _proofs(
    conn: Connection, fresh: Sequence[Ingested], checkpoint: StoredCheckpoint | None
) -> list[dict[str, Any] | None]:
    """The ``ledger`` members of fresh receipts, per append that recorded them: from the
    append itself when it ended at the checkpoint, else read from the stored tree."""
    if checkpoint is None:
        return [None] * len(fresh)
    runs: dict[int, list[int]] = {}
    for i, value in enumerate(fresh):
        runs.setdefault(id(value.run), []).append(i)
    proofs: list[dict[str, Any] | None] = [None] * len(fresh)
    for members in runs.values():
        entries = [entry for i in members if (entry := fresh[i].entry) is not None]
        found = receipt_proofs(conn, entries, checkpoint, run=fresh[members[0]].run)
        for i, proof in zip(members, found):
            proofs[i] = proof
    return proofs


# Built once and run on the driver's cursor (see dangan.db.direct): the ingest path runs
# these for every batch of uploads.
#: Records an object row, once per content, by dialect.
INSERT_OBJECT = {
    "sqlite": sqlite_insert(objects).on_conflict_do_nothing(index_elements=["sha256"]),
    "postgresql": pg_insert(objects).on_conflict_do_nothing(index_elements=["sha256"]),
}
_INSERT_OBJECT = {name: DirectStatement(stmt) for name, stmt in INSERT_OBJECT.items()}
_INSERT_DOCUMENT = DirectStatement(documents.insert())
_INSERT_VERSION = DirectStatement(document_versions.insert())


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
        """Final receipts (:func:`complete_ingests`)."""
        return complete_ingests(conn, values, sealed)


def _subject(doc_id: str, stored: StoredObject, media_type: str) -> dict[str, Any]:
    return {
        "document": doc_id,
        "version": 1,
        "sha256": stored.sha256,
        "size": stored.size,
        "media_type": media_type,
    }


def _insert_documents(
    conn: Connection, items: Sequence[IngestRequest], now: datetime
) -> list[Ingested]:
    """Bulk insert: one statement per table for all ``items``."""
    if not items:
        return []
    doc_ids = new_ids(now, len(items))
    _INSERT_OBJECT[conn.dialect.name].execute_columns(
        conn,
        {"sha256": [r.stored.sha256 for r in items], "size": [r.stored.size for r in items]},
        constants={"created_at": now},
    )
    run = append_run(
        conn,
        [
            NewEvent("document.ingested", r.client.id, _subject(doc_id, r.stored, r.media_type))
            for doc_id, r in zip(doc_ids, items)
        ],
        now=now,
    )
    entries = run.entries
    metas = [r.meta for r in items]
    _INSERT_DOCUMENT.execute_columns(
        conn,
        {
            "id": doc_ids,
            "title": [m.title for m in metas],
            "kind": [m.kind for m in metas],
            "organisation": [m.organisation for m in metas],
            "external_id": [m.external_id for m in metas],
            "case_ref": [m.case_ref for m in metas],
            "created_by": [r.client.id for r in items],
        },
        constants={"created_at": now, "current_version": 1},
    )
    _INSERT_VERSION.execute_columns(
        conn,
        {
            "document_id": doc_ids,
            "sha256": [r.stored.sha256 for r in items],
            "size": [r.stored.size for r in items],
            "media_type": [r.media_type for r in items],
            "ledger_seq": [e.seq for e in entries],
        },
        constants={"version": 1, "created_at": now},
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
        ingested.append(Ingested(receipt, entry, req.client.id, req.idempotency_key, run))
    return ingested
