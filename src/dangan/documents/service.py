"""Documents: metadata and versions, read back from the database."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from dangan.db.engine import stored_time
from dangan.db.tables import document_versions, documents
from dangan.errors import InvalidRequest, NotFound


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


def _version(row: Any) -> DocumentVersion:
    return DocumentVersion(
        version=row.version,
        sha256=row.sha256,
        size=row.size,
        media_type=row.media_type,
        created_at=stored_time(row.created_at),
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
        created_at=stored_time(row.created_at),
        versions=versions,
    )
