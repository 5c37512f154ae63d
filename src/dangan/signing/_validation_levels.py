"""Private: facts about a PDF's revisions that set the PAdES level a signature reached.

ETSI EN 319 142-1 §6: B-T adds a signature timestamp (or a document timestamp over the
signature), B-LT a DSS (§5.4.2) added after the signature holding its certificate and
revocation data, B-LTA a document timestamp (§5.4.3) covering that DSS. The level is
what the file shows; whether each part validates is the signature report's business.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

PadesLevelSeen = Literal["B-B", "B-T", "B-LT", "B-LTA"]


@dataclass(frozen=True)
class DocumentFacts:
    """What the later revisions of a PDF add, read once per document."""

    revisions: int
    """Number of revisions (the original plus each incremental update)."""
    pdf_length: int
    """Length of the file in bytes."""
    dss_revision: int | None
    """The revision that last changed the DSS, or None without a DSS."""
    dss_first_revision: int | None
    """The revision that introduced the DSS, or None without a DSS."""
    dss_certificates: frozenset[str]
    """SHA-256 (hex) of each certificate in the DSS."""
    dss_has_revocation_data: bool
    """Whether the DSS holds any CRL or OCSP response."""
    document_timestamp_revisions: tuple[int, ...]
    """The revision each document timestamp covers."""

    def later_revisions(self, signature: EmbeddedPdfSignature) -> int:
        """How many incremental updates follow the revision ``signature`` signed."""
        return max(self.revisions - 1 - signature.signed_revision, 0)

    def pades_level(self, signature: EmbeddedPdfSignature, *, timestamped: bool) -> PadesLevelSeen:
        revision = signature.signed_revision
        later_document_timestamps = [r for r in self.document_timestamp_revisions if r > revision]
        if not (timestamped or later_document_timestamps):
            return "B-B"
        certificate = hashlib.sha256(signature.signer_cert.dump()).hexdigest()
        if (
            self.dss_revision is None
            or self.dss_revision <= revision
            or certificate not in self.dss_certificates
            or not self.dss_has_revocation_data
        ):
            return "B-T"
        # The DSS may be topped up after the document timestamp (with the TSA's own
        # validation data); what counts is a timestamp over a DSS made after the signature.
        first = max(self.dss_first_revision or 0, revision + 1)
        if any(r >= first for r in later_document_timestamps):
            return "B-LTA"
        return "B-LT"


def read_facts(
    reader: PdfFileReader, signatures: Sequence[EmbeddedPdfSignature], *, pdf_length: int
) -> DocumentFacts:
    """The facts of ``reader``; a damaged DSS counts as no DSS."""
    (first, revision), certificates, revocation = _dss(reader)
    return DocumentFacts(
        revisions=reader.xrefs.total_revisions,
        pdf_length=pdf_length,
        dss_revision=revision,
        dss_first_revision=first,
        dss_certificates=certificates,
        dss_has_revocation_data=revocation,
        document_timestamp_revisions=tuple(
            s.signed_revision for s in signatures if s.sig_object_type == "/DocTimeStamp"
        ),
    )


def _dss(reader: PdfFileReader) -> tuple[tuple[int | None, int | None], frozenset[str], bool]:
    nothing = (None, None), frozenset(), False
    try:
        raw = reader.root.raw_get("/DSS")
    except KeyError:
        return nothing
    try:
        ref = raw.reference if isinstance(raw, generic.IndirectObject) else reader.root_ref
        revisions = reader.xrefs.get_introducing_revision(ref), reader.xrefs.get_last_change(ref)
        dss = raw.get_object()
        certificates = frozenset(
            hashlib.sha256(ref.get_object().data).hexdigest() for ref in dss.get("/Certs", ())
        )
        revocation = bool(dss.get("/CRLs", ())) or bool(dss.get("/OCSPs", ()))
    except (ValueError, LookupError, TypeError, AttributeError, RecursionError):
        return nothing
    return revisions, certificates, revocation
