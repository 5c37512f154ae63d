"""Tests for the worker pool behind ``PdfValidator`` (``dangan.signing._validation_pool``):
jobs handed over from the event loop, the thread fallback when every worker is busy, and
cancellation, which must never let one document's report answer another's request.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

from dangan.signing.validation import Indication, PdfValidator
from tests.signing.pades_tools import sign

pytest_plugins = ["tests.signing.pades_fixtures"]


def _digest(pdf: bytes) -> str:
    return hashlib.sha256(pdf).hexdigest()


def test_more_validations_than_workers_all_get_their_own_report(pki, signers, blank_pdf):
    """One worker, four concurrent requests: one is handed over in the loop, the others
    wait in threads for the slot, and each gets the report of its own document."""
    pdfs = [
        sign(blank_pdf, signer=signers["p256"], level="B-B", field_name=f"Signature{n}")
        for n in range(4)
    ]

    async def validate_all(validator: PdfValidator):
        now = datetime.now(UTC)
        return await asyncio.gather(
            *(validator.validate(pdf, trust_roots=[pki.root], now=now) for pdf in pdfs)
        )

    with PdfValidator(workers=1) as validator:
        asyncio.run(validate_all(validator))  # the worker starts
        reports = asyncio.run(validate_all(validator))
    assert [r.document_sha256 for r in reports] == [_digest(pdf) for pdf in pdfs]
    assert [r.signatures[0].field_name for r in reports] == [f"Signature{n}" for n in range(4)]
    assert all(r.passed for r in reports)


def test_a_cancelled_validation_does_not_answer_the_next_one(pki, signers, blank_pdf):
    first = sign(blank_pdf, signer=signers["p256"], level="B-B")
    second = sign(blank_pdf, signer=signers["rsa2048"], level="B-B")

    async def cancel_then_validate(validator: PdfValidator):
        now = datetime.now(UTC)
        await validator.validate(first, trust_roots=[pki.root], now=now)  # a warm worker
        task = asyncio.create_task(validator.validate(first, trust_roots=[pki.root], now=now))
        await asyncio.sleep(0)  # the job is sent; its report is not read yet
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled()
        return await validator.validate(second, trust_roots=[pki.root], now=now)

    with PdfValidator(workers=1) as validator:
        report = asyncio.run(cancel_then_validate(validator))
    assert report.document_sha256 == _digest(second)
    assert report.indication is Indication.TOTAL_PASSED


def test_a_validator_serves_one_event_loop_after_another(pki, signers, blank_pdf):
    """As the CLI and the tests use it: a fresh ``asyncio.run`` per validation."""
    signed = sign(blank_pdf, signer=signers["p256"], level="B-B")
    with PdfValidator() as validator:
        for _ in range(3):
            report = asyncio.run(
                validator.validate(signed, trust_roots=[pki.root], now=datetime.now(UTC))
            )
            assert report.passed
