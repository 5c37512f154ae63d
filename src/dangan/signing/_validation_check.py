"""Private: validate every signature of a PDF with pyHanko, in the calling process.

This runs inside a worker process (see ``_validation_pool``): it trusts nothing in the
PDF, turns every parsing error into a FORMAT_FAILURE value, and never raises for bad
input. Before pyHanko looks at a signature, :func:`byte_range_problem` checks its
/ByteRange and /Contents the strict way (ISO 32000-2 §12.8.1): four non-negative
integers, the first range starting at 0, the gap holding exactly the /Contents hex
string of the very signature dictionary being validated, nothing beyond the file.

A :class:`WorkerValidator` keeps what does not depend on the document (its event loop,
the parsed trust roots and CRLs) from one job to the next.
"""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import dataclass
from datetime import datetime

from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import enumerate_sig_fields
from pyhanko.sign.general import SigningError, UnacceptableSignerError
from pyhanko.sign.validation import async_validate_pdf_signature, async_validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko_certvalidator import ValidationContext

from dangan.signing._pdf_errors import PDF_STRUCTURE_ERRORS
from dangan.signing._validation_levels import DocumentFacts, read_facts
from dangan.signing._validation_map import from_ades
from dangan.signing._validation_report import (
    DocumentReport,
    Indication,
    SignatureReport,
    SubIndication,
)
from dangan.signing._validation_summary import document_report, signature_report, timestamp_report
from dangan.signing._validation_trust import ParsedTrustMaterial

#: What pyHanko and the libraries under it raise on broken input (as in ``pades``).
MALFORMED = (
    *PDF_STRUCTURE_ERRORS,
    SigningError,
    UnacceptableSignerError,
    MemoryError,
)
_HEX = re.compile(rb"[0-9A-Fa-f]*")


@dataclass(frozen=True)
class ValidationJob:
    """What a worker needs to validate one PDF; plain bytes, so it pickles."""

    pdf: bytes
    """The PDF."""
    trust_roots: tuple[bytes, ...]
    """DER certificates of the trust anchors."""
    crls: tuple[bytes, ...]
    """DER CRLs to use besides those in the PDF's DSS."""
    now: datetime
    """The validation time."""
    pdf_sha256: str
    """SHA-256 (hex) of ``pdf``, as the caller computed it."""


class WorkerValidator:
    """Validates jobs one after another, keeping an event loop and parsed trust material."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._trust = ParsedTrustMaterial()

    def validate(self, job: ValidationJob) -> DocumentReport:
        """The report of ``job.pdf``; never raises for anything the PDF holds."""
        try:
            reader = PdfFileReader(io.BytesIO(job.pdf), strict=True)
            if reader.encrypted:
                raise PdfError("encrypted PDFs are not validated")
            filled = enumerate_sig_fields(reader, filled_status=True)
            # Plain str: pyHanko's TextStringObject drags ~75 KB of PDF objects into the
            # pickled report.
            fields = [(str(name), ref) for name, _value, ref in filled]
        except MALFORMED as exc:
            detail = f"the PDF cannot be read ({type(exc).__name__})"
            return failed_document(job.now, job.pdf_sha256, "unreadable", detail)
        try:
            run = self._loop.run_until_complete
            reports = run(_validate_fields(reader, fields, job, self._trust))
        finally:
            self._cancel_leftovers()
        return document_report(reports, now=job.now, digest=job.pdf_sha256)

    def _cancel_leftovers(self) -> None:
        """Nothing started for one document may run on into the next (as ``asyncio.run``)."""
        leftovers = asyncio.all_tasks(self._loop)
        if leftovers:
            for task in leftovers:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))

    def close(self) -> None:
        """Close the event loop."""
        self._loop.close()


def validate_document(job: ValidationJob) -> DocumentReport:
    """The report of ``job.pdf`` from a one-off :class:`WorkerValidator`."""
    validator = WorkerValidator()
    try:
        return validator.validate(job)
    finally:
        validator.close()


def failed_document(now: datetime, digest: str, problem: str, detail: str) -> DocumentReport:
    """TOTAL_FAILED/FORMAT_FAILURE for a document that could not be validated at all."""
    return DocumentReport(
        indication=Indication.TOTAL_FAILED,
        sub_indication=SubIndication.FORMAT_FAILURE,
        detail=detail,
        signatures=(),
        validation_time=now,
        document_sha256=digest,
        problem=problem,  # type: ignore[arg-type]
    )


async def _validate_fields(
    reader: PdfFileReader,
    fields: list[tuple[str, object]],
    job: ValidationJob,
    trust: ParsedTrustMaterial,
) -> list[SignatureReport]:
    embedded, reports = [], []
    for name, ref in fields:
        try:
            signature = EmbeddedPdfSignature(reader, ref, name)
            problem = byte_range_problem(job.pdf, signature)
        except MALFORMED as exc:
            problem = f"the signature cannot be read ({type(exc).__name__})"
        if problem is None:
            embedded.append(signature)
        else:
            reports.append(_format_failure(name, problem))
    embedded.sort(key=lambda s: s.signed_revision)
    facts = read_facts(reader, embedded, pdf_length=len(job.pdf))
    context = _context(reader, job, trust)
    for signature in embedded:
        reports.append(await _validate_one(signature, context, facts))
    return reports


async def _validate_one(
    signature: EmbeddedPdfSignature, context: ValidationContext, facts: DocumentFacts
) -> SignatureReport:
    name = signature.field_name
    try:
        if signature.sig_object_type == "/DocTimeStamp":
            status = await async_validate_pdf_timestamp(signature, validation_context=context)
            return timestamp_report(signature, status, facts)
        status = await async_validate_pdf_signature(
            signature, signer_validation_context=context, ts_validation_context=context
        )
        return signature_report(signature, status, facts)
    except SignatureValidationError as exc:
        main, sub = from_ades(exc.ades_subindication, SubIndication.FORMAT_FAILURE)
        if sub is SubIndication.FORMAT_FAILURE:
            main = Indication.TOTAL_FAILED
        detail = f"the signature cannot be validated: {exc}"
        return SignatureReport(name, "approval", main, sub, detail)
    except MALFORMED as exc:
        return _format_failure(name, f"the signature cannot be validated ({type(exc).__name__})")


def byte_range_problem(pdf: bytes, signature: EmbeddedPdfSignature) -> str | None:
    """What is wrong with the /ByteRange and /Contents of ``signature``, or None."""
    byte_range = signature.byte_range
    if not isinstance(byte_range, list) or len(byte_range) != 4:
        return "/ByteRange is not four numbers"
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in byte_range):
        return "/ByteRange holds a negative or non-integer number"
    start1, length1, start2, length2 = byte_range
    if start1 != 0 or length1 == 0 or start2 <= length1 or start2 + length2 > len(pdf):
        return "/ByteRange does not start at 0, overlaps, or runs past the end of the file"
    gap = pdf[length1:start2]
    if len(gap) < 2 or gap[:1] != b"<" or gap[-1:] != b">" or len(gap) % 2:
        return "the /ByteRange gap is not one hex string"
    hex_digits = gap[1:-1]
    if not _HEX.fullmatch(hex_digits):
        return "the /ByteRange gap is not one hex string"
    if bytes.fromhex(hex_digits.decode("ascii")) != signature.pkcs7_content:
        return "the /ByteRange gap is not this signature's /Contents"
    return None


def _format_failure(name: str, detail: str) -> SignatureReport:
    return SignatureReport(
        field_name=name,
        kind="approval",
        indication=Indication.TOTAL_FAILED,
        sub_indication=SubIndication.FORMAT_FAILURE,
        detail=detail,
    )


def _context(
    reader: PdfFileReader, job: ValidationJob, trust: ParsedTrustMaterial
) -> ValidationContext:
    """Trust only ``job.trust_roots``; the DSS (ETSI EN 319 142-1 §5.4.2) adds certificates
    and revocation data, never trust. Nothing is fetched from the network. A fresh context
    per document, so nothing one document brings reaches another."""
    options: dict[str, object] = {
        "trust_roots": trust.certificates(job.trust_roots),
        "crls": trust.crls(job.crls),
        "allow_fetching": False,
        "moment": job.now,
        "revocation_mode": "soft-fail",
    }
    try:
        return DocumentSecurityStore.read_dss(reader).as_validation_context(options)
    except MALFORMED:  # no DSS (NoDSSFoundError is a ValueError) or a damaged one
        return ValidationContext(**options)  # type: ignore[arg-type]
