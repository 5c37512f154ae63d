"""New versions of a document: sealed or signed content appended to what was there.

The old version stays as it was (DESIGN.md invariant 1); the new content is a new object,
already durable in the store when :func:`add_version` runs. One transaction writes the
object row, the version row, moves the document's current version and appends the
ledger entry naming both contents (invariant 2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, update

from dangan.clients import Client
from dangan.db.tables import document_versions, documents
from dangan.documents.ingest import INSERT_OBJECT
from dangan.documents.service import DocumentVersion
from dangan.errors import Conflict
from dangan.ledger.log import LedgerEntry, append_event
from dangan.storage import StoredObject


class VersionConflict(Conflict):
    """Another version was recorded since the one the change was made from."""

    code = "version_conflict"
    title = "The document changed meanwhile"


@dataclass(frozen=True)
class NewVersion:
    """A recorded version and the ledger entry that records it."""

    document_id: str
    version: DocumentVersion
    entry: LedgerEntry


def add_version(
    conn: Connection,
    *,
    document_id: str,
    based_on: DocumentVersion,
    stored: StoredObject,
    media_type: str,
    client: Client,
    event: str,
    details: Mapping[str, Any],
    now: datetime,
) -> NewVersion:
    """Record ``stored`` as the version after ``based_on`` and append ``event``.

    The ledger subject names the document, both versions and both contents, plus
    ``details`` (ids and hashes only). :class:`VersionConflict` when ``based_on`` is no
    longer the current version: the caller made its change from stale content.
    """
    number = based_on.version + 1
    moved = conn.execute(
        update(documents)
        .where(documents.c.id == document_id, documents.c.current_version == based_on.version)
        .values(current_version=number)
    )
    if moved.rowcount != 1:
        raise VersionConflict(
            f"document {document_id} has a version after {based_on.version}; "
            "make the change again from the current version"
        )
    # The same content may be stored already (e.g. identical content of another document).
    conn.execute(
        INSERT_OBJECT[conn.dialect.name],
        {"sha256": stored.sha256, "size": stored.size, "created_at": now},
    )
    entry = append_event(
        conn,
        kind=event,
        actor=client.id,
        subject={
            "document": document_id,
            "version": number,
            "sha256": stored.sha256,
            "size": stored.size,
            "media_type": media_type,
            "previous_version": based_on.version,
            "previous_sha256": based_on.sha256,
            **details,
        },
        now=now,
    )
    version = DocumentVersion(
        version=number,
        sha256=stored.sha256,
        size=stored.size,
        media_type=media_type,
        created_at=now,
        ledger_seq=entry.seq,
    )
    conn.execute(document_versions.insert().values(document_id=document_id, **version.__dict__))
    return NewVersion(document_id, version, entry)

