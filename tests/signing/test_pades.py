"""Tests for PAdES signing (``dangan.signing.pades``), checked by tools other than ours.

Each signature is verified by ``openssl cms -verify`` over its /ByteRange, its signature
timestamp by ``openssl ts -verify``, the PDF by poppler's ``pdfsig`` (with an NSS database
trusting the dev root when ``certutil`` is installed) and by pyHanko's validator, at each
PAdES level and with RSA-2048 and ECDSA P-256 keys.
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext

from dangan.clock import system_clock
from dangan.signing.pades import InProcessTimeStamper, LoadedKeySigner, UnsignablePdf
from dangan.signing.pki import DevPki
from dangan.signing.tsa import TimestampAuthority
from tests.signing.conftest import PASSPHRASE, needs_openssl
from tests.signing.pades_tools import (
    level_options,
    KEY_TYPES,
    LEVELS,
    PDFSIG,
    POLICY,
    asn1,
    extract_signatures,
    needs_pdfsig,
    nss_dir,
    openssl_cms_verify,
    openssl_ts_verify,
    pdfsig,
    sign,
    statuses,
)

# The shared fixtures (signers, timestamper, validation contexts, ...).
pytest_plugins = ["tests.signing.pades_fixtures"]


# --- every level, both key types, checked by openssl, pdfsig and pyHanko ----------------


@pytest.fixture(scope="module")
def signed_by_level(signers, timestamper, make_context, blank_pdf) -> dict[tuple[str, str], bytes]:
    """The blank page signed once at each level with each key type."""
    return {
        (kind, level): sign(
            blank_pdf,
            signer=signers[kind],
            reason="审批通过",
            location="北京",
            **level_options(level, timestamper, make_context),
        )
        for kind in KEY_TYPES
        for level in LEVELS
    }


@needs_openssl
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", KEY_TYPES)
def test_openssl_verifies_the_cms_and_its_timestamp(
    signed_by_level, pades_work: Path, tmp_path: Path, kind: str, level: str
) -> None:
    signature = extract_signatures(signed_by_level[kind, level])[0]
    verdict = openssl_cms_verify(signature, tmp_path, pades_work / "root.pem")
    assert "Verification successful" in verdict, verdict
    token = signature.timestamp_token()
    if level == "B-B":
        assert token is None
        return
    verdict = openssl_ts_verify(
        signature, tmp_path, pades_work / "root.pem", pades_work / "untrusted.pem"
    )
    assert "Verification: OK" in verdict, verdict


@needs_pdfsig
@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", KEY_TYPES)
def test_pdfsig_finds_the_signature_valid(
    signed_by_level, pades_work: Path, tmp_path: Path, kind: str, level: str
) -> None:
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed_by_level[kind, level])
    report = pdfsig(path, nss_dir(pades_work))
    # B-LTA adds a document timestamp after the signature, which pdfsig lists but
    # (poppler 22) cannot check; the signature comes first.
    assert len(report) == (2 if level == "B-LTA" else 1)
    assert "Signature Validation: Signature is Valid." in report[0], report[0]
    assert "Signature Type: ETSI.CAdES.detached" in report[0]
    if nss_dir(pades_work) is not None:
        assert "Certificate Validation: Certificate is Trusted." in report[0], report[0]
    # B-B and B-T end with the signature; B-LT and B-LTA append a DSS after it.
    covers = "Total document signed" in report[0]
    assert covers == (level in ("B-B", "B-T")), report[0]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", KEY_TYPES)
def test_pyhanko_finds_the_signature_intact_and_trusted(
    signed_by_level, make_context, kind: str, level: str
) -> None:
    (status,) = statuses(signed_by_level[kind, level], make_context())
    assert status.bottom_line, status.summary()
    assert status.intact and status.valid and status.trusted
    assert status.md_algorithm == "sha256"
    expected = {"rsa2048": "sha256_rsa", "p256": "sha256_ecdsa"}[kind]
    assert status.pkcs7_signature_mechanism == expected
    if level == "B-B":
        assert status.timestamp_validity is None
    else:
        assert status.timestamp_validity is not None
        assert status.timestamp_validity.intact and status.timestamp_validity.trusted


def test_the_signature_reports_the_signing_time_and_reason(signers, blank_pdf) -> None:
    moment = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    signed = sign(blank_pdf, signer=signers["p256"], level="B-B", now=moment, reason="审批通过")
    signature = PdfFileReader(io.BytesIO(signed)).embedded_signatures[0]
    assert signature.self_reported_timestamp == moment
    assert signature.sig_object["/Reason"] == "审批通过"
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"


# --- B-LT and B-LTA: what the DSS holds is enough to validate -----------------------------


def _dss_only_context(pdf: bytes, pki: DevPki) -> ValidationContext:
    """Trusts the root; every certificate and CRL must come from the PDF's DSS.

    hard-fail: a certificate that names a CRL distribution point (the signer's, the
    TSA's) must have revocation information, and none may be fetched.
    """
    dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(pdf)))
    return dss.as_validation_context(
        {"trust_roots": [asn1(pki.root)], "allow_fetching": False, "revocation_mode": "hard-fail"}
    )


@pytest.mark.parametrize("level", ["B-LT", "B-LTA"])
def test_the_dss_alone_validates_the_signature(signed_by_level, pki: DevPki, level: str) -> None:
    signed = signed_by_level["rsa2048", level]
    dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(signed)))
    subjects = {c.subject.native["common_name"] for c in dss.load_certs()}
    assert {"张伟", "dangan development TSA"} <= subjects
    assert len(dss.crls) >= 1
    (status,) = statuses(signed, _dss_only_context(signed, pki))
    assert status.bottom_line, status.summary()


def test_without_the_dss_the_signature_lacks_revocation_info(signed_by_level, pki: DevPki) -> None:
    # The control for the test above: a B-T signature carries no DSS, so hard-fail fails.
    signed = signed_by_level["rsa2048", "B-T"]
    without_crls = ValidationContext(
        trust_roots=[asn1(pki.root)],
        other_certs=[asn1(pki.issuing)],
        crls=[],
        allow_fetching=False,
        revocation_mode="hard-fail",
    )
    (status,) = statuses(signed, without_crls)
    assert status.intact and not status.trusted


def test_b_lta_ends_with_a_valid_document_timestamp(signed_by_level, pki: DevPki) -> None:
    signed = signed_by_level["p256", "B-LTA"]
    reader = PdfFileReader(io.BytesIO(signed))
    (document_timestamp,) = reader.embedded_timestamp_signatures
    status = asyncio.run(
        async_validate_pdf_timestamp(
            document_timestamp, validation_context=_dss_only_context(signed, pki)
        )
    )
    assert status.intact and status.valid and status.trusted, status.summary()
    # The document timestamp covers the signature and the DSS written for it (pyHanko
    # then appends the timestamp's own validation data in a last DSS update).
    signature, timestamp = extract_signatures(signed)
    assert timestamp.signed_bytes.startswith(signature.signed_bytes[:100])
    assert b"/DSS" in timestamp.signed_bytes and b"/DSS" not in signature.signed_bytes


# --- several signatures, certification ------------------------------------------------------


def test_sequential_signatures_all_stay_valid(
    signers, timestamper, make_context, blank_pdf, pades_work: Path, tmp_path: Path
) -> None:
    first = sign(
        blank_pdf,
        signer=signers["rsa2048"],
        level="B-LTA",
        timestamper=timestamper,
        validation_context=make_context(),
        box=(60, 60, 260, 160),
        text="第一签名",
    )
    second = sign(
        first,
        signer=signers["p256"],
        level="B-T",
        timestamper=timestamper,
        box=(320, 60, 520, 160),
        text="第二签名",
    )
    third = sign(
        second,
        signer=signers["rsa2048"],
        level="B-LT",
        timestamper=timestamper,
        validation_context=make_context(),
    )
    results = statuses(third, make_context())
    assert [s.bottom_line for s in results] == [True, True, True], [s.summary() for s in results]
    assert [s.signing_cert.subject.native["common_name"] for s in results] == [
        "张伟",
        "北京市朝阳区市场监督管理局",
        "张伟",
    ]
    if PDFSIG is not None:
        path = tmp_path / "two.pdf"
        path.write_bytes(second)
        report = pdfsig(path, nss_dir(pades_work))
        # Signature, document timestamp (which pdfsig cannot check), signature.
        assert [("Signature is Valid." in block) for block in report] == [True, False, True]
        assert "Total document signed" in report[-1]


def test_a_certified_pdf_takes_invisible_approval_signatures(
    signers, timestamper, make_context, blank_pdf
) -> None:
    certified = sign(
        blank_pdf,
        signer=signers["p256"],
        level="B-T",
        timestamper=timestamper,
        certify=True,
        docmdp="fill_forms",
    )
    approved = sign(certified, signer=signers["rsa2048"], level="B-T", timestamper=timestamper)
    certification, approval = statuses(approved, make_context())
    assert certification.bottom_line and certification.docmdp_ok, certification.summary()
    assert approval.bottom_line, approval.summary()
    with pytest.raises(UnsignablePdf):
        sign(certified, signer=signers["rsa2048"], level="B-B", box=(60, 60, 260, 160))


def test_no_signature_after_a_no_changes_certification(signers, blank_pdf) -> None:
    locked = sign(blank_pdf, signer=signers["p256"], level="B-B", certify=True, docmdp="no_changes")
    with pytest.raises(UnsignablePdf, match="forbids any change"):
        sign(locked, signer=signers["p256"], level="B-B")


def test_certification_must_come_first(signers, blank_pdf) -> None:
    signed = sign(blank_pdf, signer=signers["p256"], level="B-B")
    with pytest.raises(UnsignablePdf, match="first signature"):
        sign(signed, signer=signers["p256"], level="B-B", certify=True)


def test_signing_twice_names_fields_apart(signers, blank_pdf) -> None:
    signed = sign(blank_pdf, signer=signers["p256"], level="B-B")
    signed = sign(signed, signer=signers["p256"], level="B-B")
    reader = PdfFileReader(io.BytesIO(signed))
    assert [s.field_name for s in reader.embedded_signatures] == ["Signature1", "Signature2"]


def test_a_pkcs12_signer_signs_like_a_credential(credentials, blank_pdf, make_context) -> None:
    signer = LoadedKeySigner.from_pkcs12(credentials["p256"].pkcs12_path, PASSPHRASE)
    (status,) = statuses(sign(blank_pdf, signer=signer, level="B-B"), make_context())
    assert status.bottom_line, status.summary()


def test_the_tight_reservation_fits_variable_size_signatures(
    signers, ecdsa_tsa, blank_pdf, make_context
) -> None:
    # ECDSA signatures (ours and the TSA's) and TSTInfo serials and fractions vary in
    # length; /Contents is reserved from one dry run plus a small margin.
    authority = TimestampAuthority.from_credential(
        ecdsa_tsa, policy_oid=POLICY, accuracy_ms=1000, clock=system_clock
    )
    timestamper = InProcessTimeStamper(authority)
    for _ in range(25):
        signed = sign(blank_pdf, signer=signers["p256"], level="B-T", timestamper=timestamper)
    (signature,) = extract_signatures(signed)
    (status,) = statuses(signed, make_context())
    assert status.bottom_line, status.summary()
    gap_bytes = (len(signed) - len(signature.signed_bytes) - 2) // 2
    assert gap_bytes - len(signature.cms_der) < 600, "more padding than the margin explains"
