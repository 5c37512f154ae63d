"""Validation of PDF signatures, with ETSI EN 319 102-1 style reports.

Reports are values: :func:`validate_pdf` returns a frozen :class:`DocumentReport` for
any input, hostile or not, and raises only for programming errors (a naive ``now``).
Each signature gets the main indication of EN 319 102-1 §5.1.3 (TOTAL_PASSED,
TOTAL_FAILED, INDETERMINATE) and a sub-indication; the document passes only when it
holds at least one signature and every signature and document timestamp passes.

Mapping (first failing check wins, in the order of EN 319 102-1 §5.2):

    condition                                              indication / sub-indication
    /ByteRange not 4 integers from 0, overlapping, past    TOTAL_FAILED / FORMAT_FAILURE
      the end; gap not exactly this dictionary's /Contents
      hex; signature dictionary or CMS unreadable
    message digest differs                                 TOTAL_FAILED / HASH_FAILURE
    signature value does not verify                        TOTAL_FAILED / SIG_CRYPTO_FAILURE
    coverage short of its own revision                     TOTAL_FAILED / FORMAT_FAILURE
    changes after it beyond its DocMDP or pyHanko's        TOTAL_FAILED / FORMAT_FAILURE
      diff policy (as DSS's format-checking block)
    signer revoked, trusted timestamp at/after revocation  TOTAL_FAILED / REVOKED
    signer revoked, no such proof of existence             INDETERMINATE / REVOKED_NO_POE
    a CA certificate revoked                               INDETERMINATE / REVOKED_CA_NO_POE
    signer certificate not in the CMS                      INDETERMINATE /
                                                             NO_SIGNING_CERTIFICATE_FOUND
    no path to a given root                                INDETERMINATE /
                                                             NO_CERTIFICATE_CHAIN_FOUND
    other chain problems, as pyHanko's AdES sub-indication INDETERMINATE / e.g. OUT_OF_BOUNDS_NO_POE
      (expired at ``now``, key usage, …)                     or CHAIN_CONSTRAINTS_FAILURE
    signature timestamp does not verify                    INDETERMINATE / SIG_CONSTRAINTS_FAILURE
    signature timestamp's TSA not trusted                  INDETERMINATE / the TSA chain's
    seed values unmet, or pyHanko's bottom line fails      INDETERMINATE / SIG_CONSTRAINTS_FAILURE

Document level: unreadable, encrypted, too large, timed out or crashed →
TOTAL_FAILED/FORMAT_FAILURE with :attr:`DocumentReport.problem` saying which; a readable
PDF without signatures → TOTAL_FAILED/FORMAT_FAILURE, problem ``no_signature`` (ETSI has
no "no signature" sub-indication, and an empty conjunction must not pass).

Untrusted input never runs in the caller's process: parsing and validation happen in a
worker process with capped memory and a deadline (see :class:`PdfValidator`). Validation
is at ``now`` against ``trust_roots`` only; CRLs come from ``crls`` and the PDF's DSS,
nothing is fetched, and a certificate without revocation data is accepted (soft-fail).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dangan.signing._validation_check import ValidationJob, failed_document
from dangan.signing._validation_pool import WorkerLimits, WorkerPool
from dangan.signing._validation_report import (
    Coverage,
    DocumentProblem,
    DocumentReport,
    Indication,
    SignatureKind,
    SignatureReport,
    SubIndication,
    TimestampReport,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT_S",
    "Coverage",
    "DocumentProblem",
    "DocumentReport",
    "Indication",
    "PdfValidator",
    "SignatureKind",
    "SignatureReport",
    "SubIndication",
    "TimestampReport",
    "oversized_report",
    "validate_pdf",
]

#: Largest PDF validated (bytes); larger ones are not parsed at all.
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
#: Wall-clock seconds a validation may take before its worker is killed.
DEFAULT_TIMEOUT_S = 20.0
#: Memory a worker may allocate beyond its idle footprint.
DEFAULT_WORKER_MEMORY = 1024 * 1024 * 1024


class PdfValidator:
    """Warm worker processes for :func:`validate_pdf`; make one per service and reuse it.

    Use it as an (async) context manager or call :meth:`close`.
    """

    def __init__(self, *, workers: int = 1, memory_bytes: int = DEFAULT_WORKER_MEMORY) -> None:
        self._pool = WorkerPool(workers=workers, limits=WorkerLimits(memory_bytes=memory_bytes))

    async def validate(
        self,
        pdf: bytes,
        *,
        trust_roots: Sequence[x509.Certificate],
        now: datetime,
        crls: Sequence[bytes] = (),
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> DocumentReport:
        """See :func:`validate_pdf`."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        digest = hashlib.sha256(pdf).hexdigest()
        if len(pdf) > max_bytes:
            return oversized_report(digest, now=now, max_bytes=max_bytes)
        job = ValidationJob(
            pdf=bytes(pdf),
            trust_roots=tuple(c.public_bytes(serialization.Encoding.DER) for c in trust_roots),
            crls=tuple(bytes(c) for c in crls),
            now=now,
            pdf_sha256=digest,
        )
        outcome = await self._pool.run_async(job, timeout_s=timeout_s)
        if outcome == "timeout":
            detail = f"validation took longer than {timeout_s} s and was stopped"
            return failed_document(now, digest, "timeout", detail)
        if outcome == "crashed":
            detail = "the validating process ended abnormally (e.g. out of memory)"
            return failed_document(now, digest, "crashed", detail)
        return outcome

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.close()

    def __enter__(self) -> PdfValidator:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    async def __aenter__(self) -> PdfValidator:
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()


def oversized_report(sha256: str, *, now: datetime, max_bytes: int) -> DocumentReport:
    """The report for a PDF over ``max_bytes`` (whose SHA-256 is known): TOTAL_FAILED /
    FORMAT_FAILURE, problem ``too_large``, without reading it."""
    detail = f"the PDF is larger than {max_bytes} bytes and was not read"
    return failed_document(now, sha256, "too_large", detail)


async def validate_pdf(
    pdf: bytes,
    *,
    trust_roots: Sequence[x509.Certificate],
    now: datetime,
    crls: Sequence[bytes] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    validator: PdfValidator | None = None,
) -> DocumentReport:
    """The ETSI EN 319 102-1 style report of every signature in ``pdf``, at ``now``.

    ``trust_roots`` are the only trust anchors; ``crls`` (DER) add revocation data to
    the PDF's DSS. A PDF over ``max_bytes``, or whose validation exceeds ``timeout_s``,
    gets a TOTAL_FAILED/FORMAT_FAILURE report. Pass a long-lived ``validator`` to reuse
    warm workers; without one a worker is started for this call and stopped after it.
    """
    if validator is not None:
        return await validator.validate(
            pdf,
            trust_roots=trust_roots,
            now=now,
            crls=crls,
            max_bytes=max_bytes,
            timeout_s=timeout_s,
        )
    with PdfValidator() as own:
        return await own.validate(
            pdf,
            trust_roots=trust_roots,
            now=now,
            crls=crls,
            max_bytes=max_bytes,
            timeout_s=timeout_s,
        )
