"""Private: reports built from pyHanko's statuses, and the document's bottom line."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import (
    DocumentTimestampStatus,
    PdfSignatureStatus,
    TimestampSignatureStatus,
)

from dangan.signing._validation_levels import DocumentFacts
from dangan.signing._validation_map import (
    changes_after,
    coverage_name,
    signature_verdict,
    timestamp_verdict,
)
from dangan.signing._validation_report import (
    DocumentReport,
    Indication,
    SignatureReport,
    SubIndication,
    TimestampReport,
)

_DOCMDP_NAMES = {1: "no_changes", 2: "fill_forms", 3: "annotate"}


def signature_report(
    signature: EmbeddedPdfSignature, status: PdfSignatureStatus, facts: DocumentFacts
) -> SignatureReport:
    """The report of an approval or certification signature."""
    verdict = signature_verdict(status)
    docmdp = _certification_permission(signature)
    tst = status.timestamp_validity
    return SignatureReport(
        field_name=signature.field_name,
        kind="certification" if docmdp is not None else "approval",
        indication=verdict[0] if verdict else Indication.TOTAL_PASSED,
        sub_indication=verdict[1] if verdict else None,
        detail=verdict[2] if verdict else "valid, and nothing forbidden changed after it",
        signer_subject=_subject(status.signing_cert),
        signer_certificate_sha256=hashlib.sha256(status.signing_cert.dump()).hexdigest(),
        signing_time=status.signer_reported_dt,
        timestamp=_timestamp(tst) if tst is not None else None,
        pades_level=facts.pades_level(signature, timestamped=tst is not None),
        trusted=status.trusted and status.revocation_details is None,
        trust_anchor=_anchor(status.validation_path),
        coverage=_coverage(signature, status, facts),  # type: ignore[arg-type]
        modification_level=_level_name(status),
        changes=changes_after(status, facts.later_revisions(signature)),
        docmdp=docmdp,  # type: ignore[arg-type]
    )


def timestamp_report(
    signature: EmbeddedPdfSignature, status: DocumentTimestampStatus, facts: DocumentFacts
) -> SignatureReport:
    """The report of a document timestamp (ETSI EN 319 142-1 §5.4.3)."""
    verdict = timestamp_verdict(status)
    return SignatureReport(
        field_name=signature.field_name,
        kind="document_timestamp",
        indication=verdict[0] if verdict else Indication.TOTAL_PASSED,
        sub_indication=verdict[1] if verdict else None,
        detail=verdict[2] if verdict else "the document timestamp is valid",
        signer_subject=_subject(status.signing_cert),
        signer_certificate_sha256=hashlib.sha256(status.signing_cert.dump()).hexdigest(),
        timestamp=_timestamp(status),
        trusted=status.trusted,
        trust_anchor=_anchor(status.validation_path),
        coverage=_coverage(signature, status, facts),  # type: ignore[arg-type]
        modification_level=_level_name(status),
        changes=changes_after(status, facts.later_revisions(signature)),
    )


def document_report(
    reports: Sequence[SignatureReport], *, now: datetime, digest: str
) -> DocumentReport:
    """The bottom line: TOTAL_PASSED needs ≥ 1 signature and every report passing."""
    common = {"signatures": tuple(reports), "validation_time": now, "document_sha256": digest}
    if not any(r.kind != "document_timestamp" for r in reports) and all(r.passed for r in reports):
        # An empty conjunction fails: a PDF without signatures proves nothing.
        return DocumentReport(
            Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE,
            "the PDF holds no signature", problem="no_signature", **common,
        )
    failed = [r for r in reports if r.indication is Indication.TOTAL_FAILED]
    undecided = [r for r in reports if r.indication is Indication.INDETERMINATE]
    worst = (failed or undecided or [None])[0]
    if worst is None:
        return DocumentReport(
            Indication.TOTAL_PASSED, None, f"all {len(reports)} signature(s) pass", **common
        )
    detail = f"signature {worst.field_name!r}: {worst.detail}"
    return DocumentReport(worst.indication, worst.sub_indication, detail, **common)


def _certification_permission(signature: EmbeddedPdfSignature) -> str | None:
    """The /P of a DocMDP transform in the signature's /Reference (ISO 32000-2 §12.8.2.2)."""
    try:
        for reference in signature.sig_object.get("/Reference", ()):
            reference = reference.get_object()
            if reference.get("/TransformMethod") == "/DocMDP":
                params = reference.get("/TransformParams", {})
                return _DOCMDP_NAMES.get(int(params.get("/P", 2)), "fill_forms")
    except (ValueError, LookupError, TypeError, AttributeError):
        return None
    return None


def _coverage(signature: EmbeddedPdfSignature, status, facts: DocumentFacts) -> str:
    start2, length2 = signature.byte_range[2], signature.byte_range[3]
    if start2 + length2 == facts.pdf_length:
        return "entire file"
    return coverage_name(status.coverage)


def _level_name(status) -> str | None:
    level = status.modification_level
    return level.name if level is not None else None


def _timestamp(status: TimestampSignatureStatus) -> TimestampReport:
    return TimestampReport(
        gen_time=status.timestamp,
        tsa_subject=_subject(status.signing_cert) or "",
        trusted=bool(status.intact and status.valid and status.trusted),
    )


def _subject(certificate: asn1_x509.Certificate | None) -> str | None:
    if certificate is None:
        return None
    try:
        return x509.load_der_x509_certificate(certificate.dump()).subject.rfc4514_string()
    except ValueError:
        return certificate.subject.human_friendly


def _anchor(path) -> str | None:
    if path is None:
        return None
    try:
        return _subject(path[0])  # type: ignore[index]
    except (IndexError, TypeError, AttributeError):
        return None
