"""Wire formats of the API (pydantic lives at the edges)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dangan.documents import Document, DocumentMetadata
from dangan.errors import InvalidMetadata

#: Printable text: no control characters (PostgreSQL refuses NUL; none belong in metadata).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
_Text = Field(min_length=1, max_length=500, pattern=PRINTABLE)
_Ident = Field(default=None, min_length=1, max_length=200, pattern=PRINTABLE)


class DocumentMetadataIn(BaseModel):
    """The ``metadata`` form field of an upload."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = _Text
    kind: str = Field(min_length=1, max_length=100, pattern=r"^[\w.:-]+$")
    organisation: str = Field(min_length=1, max_length=200, pattern=PRINTABLE)
    external_id: str | None = _Ident
    case_ref: str | None = _Ident

    @classmethod
    def parse(cls, raw: bytes) -> DocumentMetadata:
        """Validate the raw field; :class:`InvalidMetadata` lists every problem."""
        try:
            model = cls.model_validate_json(raw)
        except ValidationError as exc:
            problems = [
                f"{'.'.join(str(p) for p in e['loc']) or 'metadata'}: {e['msg']}"
                for e in exc.errors()
            ]
            raise InvalidMetadata("; ".join(problems), errors=problems) from exc
        return DocumentMetadata(**model.model_dump())


class LedgerRef(BaseModel):
    """Where the upload stands in the ledger, with the proof that it is there."""

    seq: int = Field(description="0-based leaf index of the entry")
    leaf_hash: str = Field(description="hex SHA-256(0x00 ‖ entry), RFC 9162 §2.1.1")
    entry: str = Field(description="the entry's canonical JSON (RFC 8785): the leaf data")
    tree_size: int = Field(description="size of the tree the proof and checkpoint are for")
    inclusion_proof: list[str] = Field(description="hex hashes, RFC 9162 §2.1.3 order")
    checkpoint: str = Field(description="C2SP tlog-checkpoint signed note for tree_size")


class ReceiptOut(BaseModel):
    """What an upload returns: proof that the content was recorded."""

    id: str
    version: int
    sha256: str
    size: int
    media_type: str
    created_at: str
    ledger: LedgerRef


class VersionOut(BaseModel):
    version: int
    sha256: str
    size: int
    media_type: str
    created_at: datetime
    ledger_seq: int


class DocumentOut(BaseModel):
    id: str
    title: str
    kind: str
    organisation: str
    external_id: str | None
    case_ref: str | None
    created_by: str
    created_at: datetime
    current_version: int
    versions: list[VersionOut]

    @classmethod
    def of(cls, doc: Document) -> DocumentOut:
        meta = doc.metadata
        return cls(
            id=doc.id,
            title=meta.title,
            kind=meta.kind,
            organisation=meta.organisation,
            external_id=meta.external_id,
            case_ref=meta.case_ref,
            created_by=doc.created_by,
            created_at=doc.created_at,
            current_version=doc.versions[-1].version,
            versions=[VersionOut(**v.__dict__) for v in doc.versions],
        )


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    next_cursor: str | None
