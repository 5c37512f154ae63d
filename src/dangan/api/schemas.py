"""Wire formats of the API (pydantic lives at the edges)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dangan.documents import Document, DocumentMetadata
from dangan.errors import InvalidMetadata
from dangan.signing.validation import (
    Coverage,
    DocumentProblem,
    Indication,
    SignatureKind,
    SubIndication,
)

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


class TimestampReportOut(BaseModel):
    """A signature timestamp (RFC 3161 token) as validation found it."""

    model_config = ConfigDict(extra="forbid")

    gen_time: datetime = Field(description="genTime of the token (RFC 3161 §2.4.2)")
    tsa_subject: str = Field(description="the TSA certificate's subject (RFC 4514)")
    trusted: bool = Field(description="the token verifies and its TSA chains to a trust root")


class SignatureReportOut(BaseModel):
    """One signature field with its ETSI EN 319 102-1 §5.1.3 indication."""

    model_config = ConfigDict(extra="forbid")

    field_name: str = Field(description="fully qualified name of the signature field")
    kind: SignatureKind = Field(description="approval, certification or document timestamp")
    indication: Indication = Field(description="main indication (EN 319 102-1 Table 4)")
    sub_indication: SubIndication | None = Field(
        description="why it did not pass (EN 319 102-1 Table 5); null with TOTAL_PASSED"
    )
    detail: str = Field(description="one human sentence saying what was found")
    signer_subject: str | None = Field(description="subject of the signing certificate")
    signer_certificate_sha256: str | None = Field(description="hex SHA-256 of its DER")
    signing_time: datetime | None = Field(
        description="the time the signer claims (not proof of anything)"
    )
    timestamp: TimestampReportOut | None = Field(description="the signature timestamp, if any")
    pades_level: Literal["B-B", "B-T", "B-LT", "B-LTA"] | None = Field(
        description="PAdES baseline level seen (ETSI EN 319 142-1 §6)"
    )
    trusted: bool = Field(description="the signer chains to a trust root and is not revoked")
    trust_anchor: str | None = Field(description="subject of the root the chain ends in")
    coverage: Coverage | None = Field(description="how much of the file the /ByteRange covers")
    modification_level: str | None = Field(
        description="what changed after the signature: NONE, LTA_UPDATES, FORM_FILLING, "
        "ANNOTATIONS or OTHER"
    )
    changes: list[str] = Field(description="what changed after the signature, in short phrases")
    docmdp: Literal["no_changes", "fill_forms", "annotate"] | None = Field(
        description="DocMDP permission of a certification signature (ISO 32000-2 §12.8.2.2.2)"
    )


class ValidationReportOut(BaseModel):
    """The ETSI EN 319 102-1 style report of every signature in a PDF, with a bottom line.

    The bottom line is TOTAL_PASSED only with at least one signature and every signature
    and document timestamp TOTAL_PASSED.
    """

    model_config = ConfigDict(extra="forbid")

    indication: Indication = Field(description="bottom line for the whole document")
    sub_indication: SubIndication | None = Field(
        description="sub-indication of the first failed signature or of the document problem"
    )
    detail: str = Field(description="one human sentence explaining the bottom line")
    problem: DocumentProblem | None = Field(
        description="why the document could not be validated at all (no_signature: a "
        "readable PDF without signatures), or null"
    )
    validation_time: datetime = Field(description="the time the validation was made for")
    document_sha256: str = Field(description="hex SHA-256 of the bytes validated")
    signatures: list[SignatureReportOut] = Field(
        description="signatures and document timestamps, in signing order"
    )


class StoredValidationOut(ValidationReportOut):
    """The validation report of a stored document version."""

    document: str = Field(description="the document's id")
    version: int = Field(description="the version validated")
