"""Documents: recording ingested content, reading metadata and versions back.

The object is made durable by the store *before* :func:`record_ingest` runs; the
transaction then writes the object row, the document, its version and the
``document.ingested`` ledger entry together (DESIGN.md invariants 2 and 4). A crash
between the two leaves at most an unreferenced object, which an audit reports.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from dangan.clients import Client
from dangan.db.tables import document_versions, documents, idempotency_keys, objects
from dangan.errors import IdempotencyConflict, InvalidRequest, NotFound
from dangan.ids import new_id
from dangan.ledger.checkpoints import StoredCheckpoint
from dangan.ledger.log import LedgerEntry, append_event
from dangan.ledger.service import receipt_proof
from dangan.storage import StoredObject


@dataclass(frozen=True)
class DocumentMetadata:
    """What the uploader says about a document (validated at the API edge)."""

    title: str
    """Human title; may contain personal data, so it never enters the ledger."""
    kind: str
    """Kind of material, e.g. ``application`` or ``approval-result``."""
    organisation: str
    """Organisation the document belongs to."""
    external_id: str | None = None
    """The uploader's own identifier for the document."""
    case_ref: str | None = None
    """Reference of the case (the "one thing") the document belongs to."""


@dataclass(frozen=True)
class DocumentVersion:
    """One immutable version of a document's content."""

    version: int
    """1-based version number."""
    sha256: str
    """Hex SHA-256 of the content; the object key."""
    size: int
    """Content length in bytes."""
    media_type: str
    """Media type sniffed from the content."""
    created_at: datetime
    """When the version was recorded."""
    ledger_seq: int
    """Sequence number of the ledger entry that recorded it."""


@dataclass(frozen=True)
class Document:
    """A document with all its versions, oldest first."""

    id: str
    """Random identifier (UUIDv7)."""
    metadata: DocumentMetadata
    """Uploader-supplied metadata."""
    created_by: str
    """Client id of the uploader."""
    created_at: datetime
    """When the document was first recorded."""
    versions: tuple[DocumentVersion, ...]
    """Every version, oldest first."""


def request_fingerprint(meta: DocumentMetadata, sha256: str) -> str:
    """Hash of what an idempotent retry must repeat exactly: content and metadata."""
    payload = rfc8785.dumps({"sha256": sha256, "metadata": meta.__dict__})
    return hashlib.sha256(payload).hexdigest()


def find_replay(conn: Connection, *, client_id: str, key: str, fingerprint: str) -> dict | None:
    """The stored receipt for a retried request, ``None`` for a new key.

    Raises :class:`IdempotencyConflict` when the key was used for a different request.
    """
    row = conn.execute(
        select(idempotency_keys.c.request_hash, idempotency_keys.c.response).where(
            idempotency_keys.c.client_id == client_id, idempotency_keys.c.key == key
        )
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != fingerprint:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with different content or metadata"
        )
    return json.loads(row.response)


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
    fingerprint = request_fingerprint(meta, stored.sha256)
    if idempotency_key is not None:
        replay = find_replay(conn, client_id=client.id, key=idempotency_key, fingerprint=fingerprint)
        if replay is not None:
            return Ingested(replay, None, client.id, idempotency_key)
    if idempotency_key is None:
        receipt, entry = _insert_document(conn, client, meta, stored, media_type, now)
        return Ingested(receipt, entry, client.id, None)
    try:
        # A savepoint, so that losing the race for the key (PostgreSQL, another process)
        # leaves the transaction usable for reading the winner's receipt.
        with conn.begin_nested():
            receipt, entry = _insert_document(conn, client, meta, stored, media_type, now)
            conn.execute(
                _INSERT_IDEMPOTENCY,
                {
                    "client_id": client.id,
                    "key": idempotency_key,
                    "request_hash": fingerprint,
                    "response": json.dumps(receipt),
                    "created_at": now,
                },
            )
    except SQLIntegrityError:
        replay = find_replay(conn, client_id=client.id, key=idempotency_key, fingerprint=fingerprint)
        if replay is None:
            raise
        return Ingested(replay, None, client.id, idempotency_key)
    return Ingested(receipt, entry, client.id, idempotency_key)


def complete_ingest(
    conn: Connection, ingested: Ingested, checkpoint: StoredCheckpoint | None
) -> tuple[dict[str, Any], bool]:
    """The final receipt, with the inclusion proof against ``checkpoint``; (receipt, replayed).

    The final receipt is what an idempotent retry gets back, byte for byte.
    """
    if ingested.replayed:
        row = conn.execute(
            select(idempotency_keys.c.response).where(
                idempotency_keys.c.client_id == ingested.client_id,
                idempotency_keys.c.key == ingested.idempotency_key,
            )
        ).one()
        return json.loads(row.response), True
    assert ingested.entry is not None
    receipt = dict(ingested.receipt)
    if checkpoint is not None:
        receipt["ledger"] = receipt_proof(conn, ingested.entry, checkpoint)
    if ingested.idempotency_key is not None:
        conn.execute(
            update(idempotency_keys)
            .where(
                idempotency_keys.c.client_id == ingested.client_id,
                idempotency_keys.c.key == ingested.idempotency_key,
            )
            .values(response=json.dumps(receipt))
        )
    return receipt, False


# Built once (see dangan.ledger.log): the ingest path runs these for every upload.
_INSERT_OBJECT = {
    "sqlite": sqlite_insert(objects).on_conflict_do_nothing(index_elements=["sha256"]),
    "postgresql": pg_insert(objects).on_conflict_do_nothing(index_elements=["sha256"]),
}
_INSERT_DOCUMENT = documents.insert()
_INSERT_VERSION = document_versions.insert()
_INSERT_IDEMPOTENCY = idempotency_keys.insert()


def _insert_document(
    conn: Connection,
    client: Client,
    meta: DocumentMetadata,
    stored: StoredObject,
    media_type: str,
    now: datetime,
) -> tuple[dict[str, Any], LedgerEntry]:
    doc_id = new_id(now)
    conn.execute(
        _INSERT_OBJECT[conn.dialect.name],
        {"sha256": stored.sha256, "size": stored.size, "created_at": now},
    )
    entry = append_event(
        conn,
        kind="document.ingested",
        actor=client.id,
        subject={
            "document": doc_id,
            "version": 1,
            "sha256": stored.sha256,
            "size": stored.size,
            "media_type": media_type,
        },
        now=now,
    )
    conn.execute(
        _INSERT_DOCUMENT,
        {
            "id": doc_id,
            "title": meta.title,
            "kind": meta.kind,
            "organisation": meta.organisation,
            "external_id": meta.external_id,
            "case_ref": meta.case_ref,
            "created_by": client.id,
            "created_at": now,
            "current_version": 1,
        },
    )
    conn.execute(
        _INSERT_VERSION,
        {
            "document_id": doc_id,
            "version": 1,
            "sha256": stored.sha256,
            "size": stored.size,
            "media_type": media_type,
            "created_at": now,
            "ledger_seq": entry.seq,
        },
    )
    return build_receipt(doc_id, 1, stored, media_type, entry), entry


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
        "created_at": entry.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "ledger": {"seq": entry.seq, "leaf_hash": entry.leaf_hash.hex()},
    }


def get_document(conn: Connection, doc_id: str) -> Document:
    """A document and its versions; :class:`NotFound` when absent."""
    row = conn.execute(select(documents).where(documents.c.id == doc_id)).one_or_none()
    if row is None:
        raise NotFound(f"no document {doc_id}")
    versions = conn.execute(
        select(document_versions)
        .where(document_versions.c.document_id == doc_id)
        .order_by(document_versions.c.version)
    ).all()
    return _document(row, tuple(_version(v) for v in versions))


def get_version(conn: Connection, doc_id: str, version: int | None) -> DocumentVersion:
    """One version (the current one when ``version`` is ``None``)."""
    doc = get_document(conn, doc_id)
    if version is None:
        return doc.versions[-1]
    for v in doc.versions:
        if v.version == version:
            return v
    raise NotFound(f"document {doc_id} has no version {version}")


def list_documents(
    conn: Connection,
    *,
    limit: int,
    cursor: str | None = None,
    organisation: str | None = None,
    kind: str | None = None,
    case_ref: str | None = None,
    external_id: str | None = None,
) -> tuple[list[Document], str | None]:
    """A page of documents, newest first, and the cursor for the next page (or ``None``)."""
    query = select(documents).order_by(documents.c.id.desc()).limit(limit + 1)
    for column, value in (
        (documents.c.organisation, organisation),
        (documents.c.kind, kind),
        (documents.c.case_ref, case_ref),
        (documents.c.external_id, external_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if cursor is not None:
        query = query.where(documents.c.id < _decode_cursor(cursor))
    rows = conn.execute(query).all()
    page, more = rows[:limit], len(rows) > limit
    ids = [r.id for r in page]
    by_doc: dict[str, list[DocumentVersion]] = {i: [] for i in ids}
    if ids:
        for v in conn.execute(
            select(document_versions)
            .where(document_versions.c.document_id.in_(ids))
            .order_by(document_versions.c.version)
        ):
            by_doc[v.document_id].append(_version(v))
    docs = [_document(r, tuple(by_doc[r.id])) for r in page]
    return docs, (_encode_cursor(page[-1].id) if more else None)


def _encode_cursor(doc_id: str) -> str:
    return base64.urlsafe_b64encode(doc_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("the cursor is not valid") from exc
    if len(raw) != 36:
        raise InvalidRequest("the cursor is not valid")
    return raw


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _version(row: Any) -> DocumentVersion:
    return DocumentVersion(
        version=row.version,
        sha256=row.sha256,
        size=row.size,
        media_type=row.media_type,
        created_at=_aware(row.created_at),
        ledger_seq=row.ledger_seq,
    )


def _document(row: Any, versions: tuple[DocumentVersion, ...]) -> Document:
    return Document(
        id=row.id,
        metadata=DocumentMetadata(
            title=row.title,
            kind=row.kind,
            organisation=row.organisation,
            external_id=row.external_id,
            case_ref=row.case_ref,
        ),
        created_by=row.created_by,
        created_at=_aware(row.created_at),
        versions=versions,
    )
