"""Signature validation of a stored document version (``GET /v1/documents/{id}/validation``).

Validation reads; it changes nothing and records nothing. Only PDFs are validated: any
other media type is :class:`UnsupportedMediaType`, since ETSI EN 319 102-1 reports are
about PAdES signatures here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from dangan.documents.service import DocumentVersion, get_version
from dangan.errors import IntegrityError, NotFound, UnsupportedMediaType
from dangan.signing.trust import TrustAnchors
from dangan.signing.validation import DocumentReport, PdfValidator, oversized_report
from dangan.storage import ObjectStore

__all__ = ["VersionValidation", "validate_version"]

PDF = "application/pdf"


@dataclass(frozen=True)
class VersionValidation:
    """The validation report of one stored version."""

    document: str
    """The document's id."""
    version: int
    """The version validated."""
    report: DocumentReport
    """What the validation found."""

    def to_dict(self) -> dict[str, Any]:
        """The report's JSON-able dict (:meth:`DocumentReport.to_dict`) with the version named."""
        return {"document": self.document, "version": self.version, **self.report.to_dict()}


async def validate_version(
    engine: Engine,
    store: ObjectStore,
    doc_id: str,
    version: int | None,
    *,
    validator: PdfValidator,
    trust: TrustAnchors,
    now: datetime,
    max_bytes: int,
) -> VersionValidation:
    """Validate the signatures of ``version`` (the current one when ``None``) of ``doc_id``.

    :class:`NotFound` for an unknown document or version, :class:`UnsupportedMediaType`
    when the version is not a PDF. A version over ``max_bytes`` is not read: it gets a
    ``too_large`` report.
    """
    ver = await asyncio.to_thread(_lookup, engine, doc_id, version)
    if ver.media_type != PDF:
        raise UnsupportedMediaType(
            f"document {doc_id} version {ver.version} is {ver.media_type}: "
            "only PDF signatures are validated"
        )
    if ver.size > max_bytes:
        report = oversized_report(ver.sha256, now=now, max_bytes=max_bytes)
    else:
        content = await asyncio.to_thread(_read, store, doc_id, ver)
        report = await validator.validate(
            content, trust_roots=trust.roots, crls=trust.crls, now=now, max_bytes=max_bytes
        )
        if report.document_sha256 != ver.sha256:
            raise IntegrityError(
                f"the content of document {doc_id} version {ver.version} does not match "
                "its recorded SHA-256",
                sha256=ver.sha256,
            )
    return VersionValidation(document=doc_id, version=ver.version, report=report)


def _lookup(engine: Engine, doc_id: str, version: int | None) -> DocumentVersion:
    with engine.connect() as conn:
        return get_version(conn, doc_id, version)


def _read(store: ObjectStore, doc_id: str, ver: DocumentVersion) -> bytes:
    try:
        return b"".join(store.read(ver.sha256))
    except NotFound as exc:  # the database knows this version: its content must exist
        raise IntegrityError(
            f"the content of document {doc_id} version {ver.version} is missing from the store",
            sha256=ver.sha256,
        ) from exc
