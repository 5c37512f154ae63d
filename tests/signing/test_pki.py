"""Tests for the development PKI (``dangan.signing.pki``), cross-checked with openssl."""

from __future__ import annotations

import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dangan.errors import DanganError, InvalidRequest
from dangan.signing.errors import DevPkiError, KeySourceError
from dangan.signing.pki import CRL_LIFETIME, DevPki, load_pkcs12
from tests.signing.conftest import CRL_URL, PASSPHRASE, needs_openssl, openssl, write_pem

LABEL = "DEVELOPMENT — NOT TRUSTED"
ORGANISATION = "北京市朝阳区市场监督管理局"


@pytest.fixture(scope="module")
def seal(pki: DevPki, now: datetime):
    return pki.issue_seal_certificate(organisation=ORGANISATION, key_type="p256", now=now)


@pytest.fixture(scope="module")
def signer(pki: DevPki, now: datetime):
    return pki.issue_signing_certificate(
        person="张伟", organisation=ORGANISATION, key_type="rsa2048", now=now
    )


def _small_pki(directory: Path, now: datetime, **options: object) -> DevPki:
    options.setdefault("tsa_key_type", "p256")
    return DevPki.create(directory, now=now, crl_url=CRL_URL, passphrase=b"pw", **options)


def _subject(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    return str(certificate.subject.get_attributes_for_oid(oid)[0].value)


@needs_openssl
def test_openssl_verifies_every_end_entity(pki: DevPki, seal, signer) -> None:
    root = pki.directory / "root-ca.pem"
    issuing = pki.directory / "issuing-ca.pem"
    for credential in (pki.tsa, seal, signer):
        leaf = write_pem(pki.directory / "leaf-under-test.pem", [credential.certificate])
        result = openssl("verify", "-CAfile", root, "-untrusted", issuing, leaf)
        assert result.stdout.strip().endswith(": OK")


@needs_openssl
def test_only_the_tsa_certificate_is_fit_for_timestamping(pki: DevPki, seal) -> None:
    # RFC 3161 §2.3 as OpenSSL checks it: -purpose timestampsign wants the EKU alone, critical.
    common = ["verify", "-purpose", "timestampsign", "-CAfile", pki.directory / "root-ca.pem"]
    common += ["-untrusted", pki.directory / "issuing-ca.pem"]
    assert openssl(*common, pki.directory / "tsa.pem").returncode == 0
    leaf = write_pem(pki.directory / "seal-under-test.pem", [seal.certificate])
    refused = openssl(*common, leaf, check=False)
    assert refused.returncode != 0
    assert "unsuitable certificate purpose" in refused.stdout + refused.stderr


@needs_openssl
def test_tsa_certificate_text(pki: DevPki) -> None:
    text = openssl(
        "x509", "-in", pki.directory / "tsa.pem", "-noout", "-text", "-nameopt", "utf8"
    ).stdout
    assert "X509v3 Extended Key Usage: critical\n                Time Stamping" in text
    assert "X509v3 Key Usage: critical\n                Digital Signature, Non Repudiation" in text
    assert f"URI:{CRL_URL}" in text
    assert "X509v3 Subject Key Identifier" in text and "X509v3 Authority Key Identifier" in text
    assert LABEL in text
    assert "Public-Key: (2048 bit)" in text


@needs_openssl
def test_ca_certificates(pki: DevPki) -> None:
    issuing = openssl(
        "x509", "-in", pki.directory / "issuing-ca.pem", "-noout", "-text", "-nameopt", "utf8"
    ).stdout
    assert "CA:TRUE, pathlen:0" in issuing
    assert "Certificate Sign, CRL Sign" in issuing
    for ca in (pki.root, pki.issuing):
        assert LABEL in _subject(ca, NameOID.COMMON_NAME)
        assert _subject(ca, NameOID.ORGANIZATIONAL_UNIT_NAME) == LABEL
        assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    lifetime = pki.root.not_valid_after_utc - pki.root.not_valid_before_utc
    assert timedelta(days=20 * 365) < lifetime < timedelta(days=20 * 366)
    lifetime = pki.issuing.not_valid_after_utc - pki.issuing.not_valid_before_utc
    assert timedelta(days=10 * 365) < lifetime < timedelta(days=10 * 366)


@needs_openssl
def test_seal_certificate_names_a_chinese_organisation_in_utf8(pki: DevPki, seal) -> None:
    certificate = seal.certificate
    assert _subject(certificate, NameOID.ORGANIZATION_NAME) == ORGANISATION
    assert _subject(certificate, NameOID.ORGANIZATIONAL_UNIT_NAME) == LABEL
    organisation = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0]
    assert organisation._type is x509.name._ASN1Type.UTF8String
    path = write_pem(pki.directory / "seal-text.pem", [certificate])
    dump = openssl("asn1parse", "-in", path).stdout
    assert f"UTF8STRING        :{ORGANISATION}" in dump
    text = openssl("x509", "-in", path, "-noout", "-text", "-nameopt", "utf8").stdout
    assert "Digital Signature, Non Repudiation" in text
    assert "Extended Key Usage" not in text
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)


def test_signing_certificate(signer, pki: DevPki) -> None:
    certificate = signer.certificate
    assert _subject(certificate, NameOID.COMMON_NAME) == "张伟"
    assert _subject(certificate, NameOID.ORGANIZATION_NAME) == ORGANISATION
    assert isinstance(certificate.public_key(), rsa.RSAPublicKey)
    assert certificate.public_key() == signer.private_key.public_key()
    assert signer.chain == (pki.issuing, pki.root)
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    assert points.value[0].full_name == [x509.UniformResourceIdentifier(CRL_URL)]


@needs_openssl
def test_qr_signing_certificate(pki: DevPki, now: datetime) -> None:
    qr = pki.issue_qr_signing_certificate(now=now)
    certificate = qr.certificate
    assert _subject(certificate, NameOID.COMMON_NAME) == "dangan development QR signing"
    assert _subject(certificate, NameOID.ORGANIZATIONAL_UNIT_NAME) == LABEL
    assert isinstance(qr.private_key, ec.EllipticCurvePrivateKey)
    assert isinstance(qr.private_key.curve, ec.SECP256R1)
    assert qr.chain == (pki.issuing, pki.root)
    assert qr.pkcs12_path.name == f"qr-{certificate.serial_number:032x}.p12"
    path = write_pem(pki.directory / "qr-text.pem", [certificate])
    text = openssl("x509", "-in", path, "-noout", "-text", "-nameopt", "utf8").stdout
    assert "X509v3 Key Usage: critical\n                Digital Signature\n" in text
    assert "Extended Key Usage" not in text
    leaf = openssl("verify", "-CAfile", pki.directory / "root-ca.pem",
                   "-untrusted", pki.directory / "issuing-ca.pem", path)
    assert leaf.stdout.strip().endswith(": OK")


def test_serial_numbers_are_random_positive_128_bit(pki: DevPki, now: datetime) -> None:
    serials = {
        pki.issue_seal_certificate(
            organisation=f"机构{i}", key_type="p256", now=now
        ).certificate.serial_number
        for i in range(5)
    }
    serials |= {c.serial_number for c in (pki.root, pki.issuing, pki.tsa.certificate)}
    assert len(serials) == 8
    assert all(0 < serial < 2**128 for serial in serials)


@needs_openssl
def test_crl_verifies_and_lists_revocations(pki: DevPki, seal, signer, now: datetime) -> None:
    revoked = [
        (seal.certificate.serial_number, now - timedelta(hours=1), x509.ReasonFlags.key_compromise),
        (signer.certificate.serial_number, now, None),
    ]
    der = pki.crl(now=now, revoked=revoked)
    path = pki.directory / "issuing.crl"
    path.write_bytes(der)
    result = openssl(
        "crl",
        "-inform",
        "DER",
        "-in",
        path,
        "-noout",
        "-text",
        "-verify",
        "-CAfile",
        pki.directory / "chain.pem",
    )
    assert "verify OK" in result.stdout + result.stderr
    assert f"{seal.certificate.serial_number:X}" in result.stdout
    assert "Key Compromise" in result.stdout
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(pki.issuing.public_key())
    assert crl.next_update_utc - crl.last_update_utc == CRL_LIFETIME
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    later = x509.load_der_x509_crl(pki.crl(now=now + timedelta(seconds=1)))
    assert later.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number > number
    entry = crl.get_revoked_certificate_by_serial_number(signer.certificate.serial_number)
    assert entry is not None and len(entry.extensions) == 0  # no reason code: none written


@needs_openssl
def test_pkcs12_opens_with_openssl_without_legacy(pki: DevPki, seal) -> None:
    for path in (pki.tsa.pkcs12_path, seal.pkcs12_path):
        info = openssl(
            "pkcs12", "-info", "-noout", "-in", path, "-passin", f"pass:{PASSPHRASE.decode()}"
        )
        assert "PBES2, PBKDF2, AES-256-CBC" in info.stdout + info.stderr
        assert "MAC: sha256" in info.stdout + info.stderr
    wrong = openssl(
        "pkcs12", "-info", "-noout", "-in", seal.pkcs12_path, "-passin", "pass:wrong", check=False
    )
    assert wrong.returncode != 0


def test_load_pkcs12_returns_key_certificate_and_chain(pki: DevPki, seal) -> None:
    key, certificate, chain = load_pkcs12(seal.pkcs12_path, PASSPHRASE)
    assert certificate == seal.certificate
    assert key.public_key() == certificate.public_key()
    assert chain == (pki.issuing, pki.root)


def test_load_pkcs12_wraps_errors_opaquely(pki: DevPki, seal, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.p12"
    garbage.write_bytes(b"not a PKCS#12 file")
    cases = [(seal.pkcs12_path, b"wrong"), (garbage, PASSPHRASE), (tmp_path / "none.p12", b"x")]
    for path, passphrase in cases:
        with pytest.raises(KeySourceError) as raised:
            load_pkcs12(path, passphrase)
        assert isinstance(raised.value, DanganError)
        assert raised.value.code == "key_source_unavailable"
        assert raised.value.__cause__ is not None


def test_files_and_modes(pki: DevPki, seal) -> None:
    names = {p.name for p in pki.directory.iterdir()}
    assert {
        "root-ca.pem",
        "root-ca.key.pem",
        "issuing-ca.pem",
        "issuing-ca.key.pem",
        "chain.pem",
        "tsa.pem",
        "tsa.key.pem",
        "tsa.p12",
    } <= names
    private = [p for p in pki.directory.iterdir() if p.name.endswith((".key.pem", ".p12"))]
    assert seal.pkcs12_path in private
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        if path.name.endswith(".key.pem"):
            assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


def test_create_is_idempotent(tmp_path: Path, now: datetime) -> None:
    first = _small_pki(tmp_path / "pki", now)
    again = _small_pki(tmp_path / "pki", now + timedelta(days=1))
    assert again.root == first.root and again.issuing == first.issuing
    assert again.tsa.certificate == first.tsa.certificate
    assert again.tsa.private_key.public_key() == first.tsa.private_key.public_key()
    eku = first.tsa.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def test_create_refuses_files_from_different_runs(tmp_path: Path, now: datetime) -> None:
    one, other = _small_pki(tmp_path / "one", now), _small_pki(tmp_path / "other", now)
    shutil.copy(other.directory / "root-ca.pem", one.directory / "root-ca.pem")
    shutil.copy(other.directory / "root-ca.key.pem", one.directory / "root-ca.key.pem")
    with pytest.raises(DevPkiError, match="one chain"):
        _small_pki(one.directory, now)


def test_create_refuses_a_certificate_without_its_key(tmp_path: Path, now: datetime) -> None:
    pki = _small_pki(tmp_path / "pki", now)
    (pki.directory / "issuing-ca.key.pem").unlink()
    with pytest.raises(DevPkiError, match="missing"):
        _small_pki(pki.directory, now)


def test_create_refuses_another_tsa_key_type(tmp_path: Path, now: datetime) -> None:
    pki = _small_pki(tmp_path / "pki", now)
    with pytest.raises(DevPkiError, match="rsa2048"):
        _small_pki(pki.directory, now, tsa_key_type="rsa2048")


def test_create_with_a_wrong_passphrase_fails_opaquely(tmp_path: Path, now: datetime) -> None:
    pki = _small_pki(tmp_path / "pki", now)
    with pytest.raises(KeySourceError):
        DevPki.create(pki.directory, now=now, crl_url=CRL_URL, passphrase=b"other")


@pytest.mark.parametrize("name", ["", " padded", "x" * 65, "bad\nname"])
def test_unusable_names_are_invalid_requests(pki: DevPki, now: datetime, name: str) -> None:
    with pytest.raises(InvalidRequest):
        pki.issue_seal_certificate(organisation=name, key_type="p256", now=now)
    with pytest.raises(InvalidRequest):
        pki.issue_signing_certificate(person=name, organisation="机构", key_type="p256", now=now)


def test_naive_now_is_refused(pki: DevPki) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        pki.crl(now=datetime(2030, 1, 1))
    assert pki.crl(now=datetime(2030, 1, 1, tzinfo=UTC))
