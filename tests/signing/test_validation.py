"""Tests for PDF signature validation (``dangan.signing.validation``): documents that
pass, trust and revocation, hostile inputs, and the JSON-able rendering of reports.

Attacks on signed documents are in ``test_validation_attacks.py``.
"""

from __future__ import annotations

import asyncio
import json
import pickle
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from dangan.signing.keys import LoadedKeySigner
from dangan.signing.pki import DevPki
from dangan.signing.validation import (
    DocumentReport,
    Indication,
    PdfValidator,
    SubIndication,
    validate_pdf,
)
from tests.signing.conftest import PASSPHRASE
from tests.signing.pades_tools import (
    LEVELS,
    level_options,
    one_page_pdf,
    sign,
    validation_report,
)

pytest_plugins = ["tests.signing.pades_fixtures"]


@pytest.fixture(scope="module")
def validator() -> Iterator[PdfValidator]:
    with PdfValidator(workers=2) as pool:
        yield pool


def _assert_verdict(report: DocumentReport, indication: Indication, sub: SubIndication | None):
    assert (report.indication, report.sub_indication) == (indication, sub), report.detail


# --- documents that pass --------------------------------------------------------------------


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", ["rsa2048", "p256"])
def test_each_pades_level_passes_with_the_dev_root(
    validator, pki: DevPki, signers, timestamper, make_context, blank_pdf, kind, level
) -> None:
    signed = sign(
        blank_pdf, signer=signers[kind], **level_options(level, timestamper, make_context)
    )
    report = validation_report(validator, signed, roots=[pki.root])
    _assert_verdict(report, Indication.TOTAL_PASSED, None)
    approval = [s for s in report.signatures if s.kind == "approval"]
    assert len(approval) == 1
    signature = approval[0]
    assert signature.pades_level == level
    assert signature.trusted and signature.coverage in ("entire file", "entire revision")
    assert signature.signer_certificate_sha256 is not None
    assert "DEVELOPMENT" in (signature.signer_subject or "")
    assert (signature.timestamp is None) == (level == "B-B")
    if signature.timestamp is not None:
        assert signature.timestamp.trusted and "TSA" in signature.timestamp.tsa_subject
    if level == "B-LTA":
        assert [s.kind for s in report.signatures] == ["approval", "document_timestamp"]
        assert signature.modification_level == "LTA_UPDATES"


def test_two_sequential_signatures_both_pass(validator, pki, signers, timestamper, blank_pdf):
    once = sign(blank_pdf, signer=signers["rsa2048"], level="B-T", timestamper=timestamper)
    twice = sign(once, signer=signers["p256"], level="B-T", timestamper=timestamper)
    report = validation_report(validator, twice, roots=[pki.root])
    _assert_verdict(report, Indication.TOTAL_PASSED, None)
    first, second = report.signatures
    assert (first.field_name, second.field_name) == ("Signature1", "Signature2")
    assert first.coverage == "entire revision" and second.coverage == "entire file"
    assert first.modification_level == "FORM_FILLING" and first.changes


def test_a_certification_reports_its_docmdp(validator, pki, signers, blank_pdf):
    signed = sign(blank_pdf, signer=signers["p256"], level="B-B", certify=True, docmdp="annotate")
    report = validation_report(validator, signed, roots=[pki.root])
    _assert_verdict(report, Indication.TOTAL_PASSED, None)
    assert report.signatures[0].kind == "certification"
    assert report.signatures[0].docmdp == "annotate"


# --- trust and revocation -----------------------------------------------------------------


def test_an_untrusted_root_is_indeterminate(validator, signers, blank_pdf, tmp_path, now):
    stranger = DevPki.create(
        tmp_path / "other", now=now, crl_url="http://127.0.0.1/x.crl",
        passphrase=PASSPHRASE, tsa_key_type="p256",
    )
    signed = sign(blank_pdf, signer=signers["p256"], level="B-B")
    report = validation_report(validator, signed, roots=[stranger.root])
    _assert_verdict(report, Indication.INDETERMINATE, SubIndication.NO_CERTIFICATE_CHAIN_FOUND)
    assert not report.signatures[0].trusted


def test_no_trust_roots_at_all_never_pass(validator, signers, blank_pdf):
    signed = sign(blank_pdf, signer=signers["p256"], level="B-B")
    report = validation_report(validator, signed, roots=[])
    assert report.indication is Indication.INDETERMINATE


@pytest.fixture(scope="module")
def revoked(pki: DevPki, now: datetime):
    """A signing credential and a CRL of the dev PKI listing it as revoked a minute ago."""
    credential = pki.issue_signing_certificate(
        person="李娜", organisation="吊销测试", key_type="p256", now=now
    )
    revoked_at = datetime.now(UTC) - timedelta(minutes=1)
    serial = credential.certificate.serial_number
    crl = pki.crl(now=datetime.now(UTC), revoked=[(serial, revoked_at, None)])
    return credential, crl


def test_revoked_signer_with_a_later_timestamp_fails(
    validator, pki, revoked, timestamper, blank_pdf
):
    """EN 319 102-1 §5.1.3: the timestamp proves the signature came after the revocation."""
    credential, crl = revoked
    signer = LoadedKeySigner.from_credential(credential)
    signed = sign(blank_pdf, signer=signer, level="B-T", timestamper=timestamper)
    report = validation_report(validator, signed, roots=[pki.root], crls=[crl])
    _assert_verdict(report, Indication.TOTAL_FAILED, SubIndication.REVOKED)
    assert not report.signatures[0].trusted


def test_revoked_signer_without_proof_of_existence_is_indeterminate(
    validator, pki, revoked, blank_pdf
):
    credential, crl = revoked
    signed = sign(blank_pdf, signer=LoadedKeySigner.from_credential(credential), level="B-B")
    report = validation_report(validator, signed, roots=[pki.root], crls=[crl])
    _assert_verdict(report, Indication.INDETERMINATE, SubIndication.REVOKED_NO_POE)


def test_the_same_signer_passes_with_a_crl_that_does_not_list_it(
    validator, pki, revoked, blank_pdf
):
    credential, _ = revoked
    signed = sign(blank_pdf, signer=LoadedKeySigner.from_credential(credential), level="B-B")
    clean = pki.crl(now=datetime.now(UTC))
    report = validation_report(validator, signed, roots=[pki.root], crls=[clean])
    _assert_verdict(report, Indication.TOTAL_PASSED, None)


# --- hostile and broken input ----------------------------------------------------------------


def _nested_pdf(depth: int) -> bytes:
    """A catalog holding an array nested ``depth`` deep (a parser recursion bomb)."""
    body = b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R /Bomb " + b"[" * depth + b"]" * depth
    body += b" >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    return _with_xref(b"%PDF-1.7\n", body, objects=2)


def _with_xref(header: bytes, body: bytes, *, objects: int, declared: int | None = None) -> bytes:
    offsets, position = [], len(header)
    for number in range(1, objects + 1):
        offsets.append(body.index(b"%d 0 obj" % number) + len(header))
    xref = b"xref\n0 %d\n0000000000 65535 f \n" % (declared or objects + 1)
    xref += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        declared or objects + 1,
        position + len(body),
    )
    return header + body + xref + trailer


HOSTILE = {
    "garbage": bytes(range(256)) * 64,
    "empty": b"",
    "not a pdf but a header": b"%PDF-1.7\n%%EOF\n",
    "deeply nested": _nested_pdf(200_000),
    "huge xref": _with_xref(
        b"%PDF-1.7\n",
        b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n",
        objects=2,
        declared=2_000_000_000,
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_gets_a_format_failure(validator, pki, name) -> None:
    report = validation_report(validator, HOSTILE[name], roots=[pki.root], timeout_s=30)
    _assert_verdict(report, Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert report.problem in ("unreadable", "no_signature", "timeout", "crashed")
    assert report.signatures == ()


def test_a_truncated_signed_pdf_fails(validator, pki, signers, blank_pdf) -> None:
    signed = sign(blank_pdf, signer=signers["p256"], level="B-B")
    for cut in (len(signed) // 2, len(signed) - 40, 600):
        report = validation_report(validator, signed[:cut], roots=[pki.root])
        assert report.indication is not Indication.TOTAL_PASSED
        assert report.indication is Indication.TOTAL_FAILED


def test_an_unsigned_pdf_is_not_a_pass(validator, pki, blank_pdf) -> None:
    report = validation_report(validator, blank_pdf, roots=[pki.root])
    _assert_verdict(report, Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert report.problem == "no_signature" and report.signatures == ()


def test_an_encrypted_pdf_is_unreadable(validator, pki) -> None:
    report = validation_report(validator, one_page_pdf(password="secret"), roots=[pki.root])
    _assert_verdict(report, Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert report.problem == "unreadable"


def test_an_oversize_pdf_is_not_parsed(validator, pki, signers, blank_pdf) -> None:
    signed = sign(blank_pdf, signer=signers["p256"], level="B-B")
    report = validation_report(validator, signed, roots=[pki.root], max_bytes=len(signed) - 1)
    _assert_verdict(report, Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert report.problem == "too_large"


def test_a_validation_past_its_deadline_is_stopped_and_the_pool_recovers(
    validator, pki, signers, blank_pdf
) -> None:
    signed = sign(blank_pdf, signer=signers["p256"], level="B-B")
    report = validation_report(validator, signed, roots=[pki.root], timeout_s=0.0)
    _assert_verdict(report, Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert report.problem == "timeout"
    again = validation_report(validator, signed, roots=[pki.root])
    assert again.passed


def test_a_worker_out_of_memory_gives_a_report(pki, signers) -> None:
    """2 MB over the idle footprint cannot even receive a 4 MB PDF. (The cap was 8 MB until
    reports stopped carrying pyHanko objects back; this validation fits in 8 MB now.)"""
    big = sign(one_page_pdf(filler_bytes=4_000_000), signer=signers["p256"], level="B-B")
    with PdfValidator(memory_bytes=2 * 1024 * 1024) as small:
        report = validation_report(small, big, roots=[pki.root])
    _assert_verdict(report, Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    assert report.problem in ("unreadable", "crashed")


def test_validate_pdf_without_a_pool_starts_its_own_worker(pki, signers, blank_pdf) -> None:
    signed = sign(blank_pdf, signer=signers["p256"], level="B-B")
    report = asyncio.run(validate_pdf(signed, trust_roots=[pki.root], now=datetime.now(UTC)))
    assert report.passed


def test_a_naive_now_is_a_programming_error(pki, blank_pdf) -> None:
    with pytest.raises(ValueError, match="timezone"):
        asyncio.run(validate_pdf(blank_pdf, trust_roots=[pki.root], now=datetime.now()))


# --- rendering ---------------------------------------------------------------------------------


def test_to_dict_is_json_and_says_everything(validator, pki, signers, timestamper, blank_pdf):
    signed = sign(blank_pdf, signer=signers["rsa2048"], level="B-T", timestamper=timestamper)
    report = validation_report(validator, signed, roots=[pki.root])
    rendered = json.loads(json.dumps(report.to_dict(), ensure_ascii=False))
    assert rendered["indication"] == "TOTAL_PASSED" and rendered["sub_indication"] is None
    (signature,) = rendered["signatures"]
    assert signature["pades_level"] == "B-T"
    assert signature["coverage"] == "entire file"
    assert datetime.fromisoformat(signature["timestamp"]["gen_time"]).tzinfo is not None
    assert "张伟" in signature["signer_subject"]
    assert len(signature["signer_certificate_sha256"]) == 64


def test_a_report_holds_plain_values(validator, pki, signers, blank_pdf):
    """The field name was pyHanko's TextStringObject, which pickled ~75 KB of PDF objects
    into every report crossing back from the worker."""
    signed = sign(blank_pdf, signer=signers["p256"], level="B-B")
    report = validation_report(validator, signed, roots=[pki.root])
    assert type(report.signatures[0].field_name) is str
    assert len(pickle.dumps(report)) < 4096
