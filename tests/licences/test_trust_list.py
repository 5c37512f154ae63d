"""The QR-signing trust list (JSON in and out) and the QR-signing key directory."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dangan.licences.qr_key import QrSigningKey, create_qr_key, load_qr_keys, trust_list
from dangan.licences.trust_list import MalformedTrustList, TrustedKey, TrustList, kid_for
from dangan.signing.errors import DevPkiError, KeySourceError
from tests.licences.qr_values import PUBLIC_URL, QR_PASSPHRASE

pytest_plugins = ["tests.licences.qr_fixtures"]


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


# The trust list ---------------------------------------------------------------------------


def test_kid_is_the_first_8_bytes_of_the_certificate_sha256(qr_key: QrSigningKey) -> None:
    assert kid_for(qr_key.certificate) == hashlib.sha256(_der(qr_key.certificate)).digest()[:8]
    assert qr_key.kid == kid_for(qr_key.certificate)


def test_to_json(trust: TrustList, qr_key: QrSigningKey, qr_now) -> None:
    document = json.loads(json.dumps(trust.to_json()))
    assert document["format"] == "dangan-trust-list/1"
    assert document["issuer"] == PUBLIC_URL
    assert document["generated_at"] == qr_now.strftime("%Y-%m-%dT%H:%M:%SZ")
    active = document["keys"][0]
    assert set(active) == {"kid", "alg", "status", "not_before", "not_after", "certificate"}
    assert active["kid"] == qr_key.kid.hex() and len(active["kid"]) == 16
    assert (active["alg"], active["status"]) == ("ES256", "active")
    assert base64.b64decode(active["certificate"]) == _der(qr_key.certificate)
    not_before = qr_key.certificate.not_valid_before_utc
    assert active["not_before"] == not_before.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert document["keys"][1]["status"] == "retired"


def test_from_json_reads_what_to_json_wrote(trust: TrustList) -> None:
    again = TrustList.from_json(json.loads(json.dumps(trust.to_json())))
    assert again == trust
    assert again.find(trust.keys[1].kid) == trust.keys[1]
    assert again.find(b"\x00" * 8) is None


def _broken(trust: TrustList, change) -> dict:
    document = copy.deepcopy(trust.to_json())
    change(document)
    return document


def _set(path: tuple, value):
    def change(document: dict) -> None:
        target = document
        for step in path[:-1]:
            target = target[step]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
    return change


MALFORMED = [
    (_set(("format",), "dangan-trust-list/2"), "format must be 'dangan-trust-list/1'"),
    (_set(("issuer",), "licence.example.gov.cn"), "issuer must be an http(s) URL"),
    (_set(("generated_at",), "2025-01-01 00:00:00"), "generated_at must be an RFC 3339"),
    (_set(("generated_at",), "2025-02-30T00:00:00Z"), "generated_at must be an RFC 3339"),
    (_set(("generated_at",), "2025-01-01T00:00:00+08:00"), "generated_at must be an RFC 3339"),
    (_set(("keys",), {}), "keys must be an array"),
    (_set(("signature",), "x"), "the trust list: unexpected signature"),
    (_set(("issuer",), KeyError), "the trust list: missing issuer"),
    (_set(("keys", 0), "abc"), "key #1 of the trust list must be a JSON object"),
    (_set(("keys", 0, "x5c"), []), "key #1 of the trust list: unexpected x5c"),
    (_set(("keys", 1, "status"), KeyError), "key #2 of the trust list: missing status"),
    (_set(("keys", 0, "alg"), "EdDSA"), "alg must be 'ES256'"),
    (_set(("keys", 0, "status"), "suspended"), "status must be one of active, retired, revoked"),
    (_set(("keys", 0, "kid"), "00" * 8), "does not match its certificate"),
    (_set(("keys", 0, "kid"), "AB" * 8), "kid must be 16 lowercase hex digits"),
    (_set(("keys", 0, "certificate"), "not base64!"), "must be a base64 DER certificate"),
    (_set(("keys", 0, "certificate"), base64.b64encode(b"\x30\x00").decode()), "base64 DER"),
    (_set(("keys", 0, "not_after"), "2099-01-01T00:00:00Z"), "differ from the certificate"),
]


@pytest.mark.parametrize(("change", "message"), MALFORMED)
def test_from_json_refuses_a_malformed_file(trust: TrustList, change, message: str) -> None:
    with pytest.raises(MalformedTrustList) as caught:
        TrustList.from_json(_broken(trust, change))
    assert message in caught.value.detail
    assert (caught.value.code, caught.value.status) == ("malformed_trust_list", 422)


def test_from_json_refuses_a_duplicate_kid(trust: TrustList) -> None:
    document = trust.to_json()
    document["keys"].append(dict(document["keys"][0]))
    with pytest.raises(MalformedTrustList, match="names a key id twice"):
        TrustList.from_json(document)


@pytest.mark.parametrize("document", [None, [], "trust", 1])
def test_from_json_refuses_what_is_not_an_object(document) -> None:
    with pytest.raises(MalformedTrustList, match="the trust list must be a JSON object"):
        TrustList.from_json(document)


def test_from_json_refuses_a_key_that_is_not_p256(trust: TrustList, qr_pki) -> None:
    document = trust.to_json()
    document["keys"][0]["certificate"] = base64.b64encode(_der(qr_pki.tsa.certificate)).decode()
    document["keys"][0]["kid"] = kid_for(qr_pki.tsa.certificate).hex()
    with pytest.raises(MalformedTrustList, match="not ECDSA P-256"):
        TrustList.from_json(document)


# The QR-signing certificate ------------------------------------------------------------------


def test_the_qr_signing_certificate(qr_key: QrSigningKey, qr_pki) -> None:
    certificate = qr_key.certificate
    certificate.verify_directly_issued_by(qr_pki.issuing)
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(certificate.public_key().curve, ec.SECP256R1)
    common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    unit = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    assert (common_name, unit) == ("dangan development QR signing", "DEVELOPMENT — NOT TRUSTED")
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not usage.value.content_commitment and not usage.value.key_cert_sign


# The key directory --------------------------------------------------------------------------


def test_create_qr_key_writes_certificate_and_encrypted_key(qr_pki, tmp_path: Path, qr_now):
    directory = tmp_path / "qr-signing"
    key = create_qr_key(qr_pki, directory, QR_PASSPHRASE, now=qr_now)
    stem = key.kid.hex()
    assert sorted(p.name for p in directory.iterdir()) == [f"{stem}.key", f"{stem}.pem"]
    assert stat.S_IMODE(os.stat(directory / f"{stem}.key").st_mode) == 0o600
    pem = (directory / f"{stem}.key").read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    loaded = serialization.load_pem_private_key(pem, QR_PASSPHRASE)
    assert loaded.public_key() == key.certificate.public_key()
    assert x509.load_pem_x509_certificate((directory / f"{stem}.pem").read_bytes()) == (
        key.certificate
    )


def test_load_qr_keys_picks_the_newest_valid_key(qr_pki, tmp_path: Path, qr_now) -> None:
    directory = tmp_path / "qr-signing"
    expired = create_qr_key(qr_pki, directory, QR_PASSPHRASE, now=qr_now - timedelta(days=1200))
    older = create_qr_key(qr_pki, directory, QR_PASSPHRASE, now=qr_now - timedelta(days=30))
    newest = create_qr_key(qr_pki, directory, QR_PASSPHRASE, now=qr_now)
    active, keys = load_qr_keys(directory, QR_PASSPHRASE, now=qr_now)
    assert active is not None and active.kid == newest.kid
    assert active.private_key.public_key() == newest.certificate.public_key()
    assert [(k.kid, k.status) for k in keys] == [
        (newest.kid, "active"), (older.kid, "retired"), (expired.kid, "retired")
    ]
    # Revoking the newest makes the older one active again.
    (directory / f"{newest.kid.hex()}.revoked").write_text("compromised\n")
    active, keys = load_qr_keys(directory, QR_PASSPHRASE, now=qr_now)
    assert active is not None and active.kid == older.kid
    assert [k.status for k in keys] == ["revoked", "active", "retired"]
    # Before the newest key's notBefore, the older one signs.
    (directory / f"{newest.kid.hex()}.revoked").unlink()
    active, _ = load_qr_keys(directory, QR_PASSPHRASE, now=qr_now - timedelta(days=1))
    assert active is not None and active.kid == older.kid


def test_load_qr_keys_without_a_valid_key(qr_pki, tmp_path: Path, qr_now) -> None:
    assert load_qr_keys(tmp_path / "absent", QR_PASSPHRASE, now=qr_now) == (None, ())
    directory = tmp_path / "qr-signing"
    old = create_qr_key(qr_pki, directory, QR_PASSPHRASE, now=qr_now - timedelta(days=1200))
    active, keys = load_qr_keys(directory, QR_PASSPHRASE, now=qr_now)
    assert active is None and [(k.kid, k.status) for k in keys] == [(old.kid, "retired")]


def test_load_qr_keys_refuses_a_damaged_directory(qr_pki, tmp_path: Path, qr_now) -> None:
    directory = tmp_path / "qr-signing"
    key = create_qr_key(qr_pki, directory, QR_PASSPHRASE, now=qr_now)
    with pytest.raises(KeySourceError):
        load_qr_keys(directory, b"wrong passphrase", now=qr_now)
    (directory / f"{key.kid.hex()}.key").unlink()
    with pytest.raises(DevPkiError, match="lacks its key file"):
        load_qr_keys(directory, QR_PASSPHRASE, now=qr_now)
    (directory / f"{key.kid.hex()}.pem").rename(directory / f"{'0' * 16}.pem")
    with pytest.raises(DevPkiError, match=f"holds the certificate of key id {key.kid.hex()}"):
        load_qr_keys(directory, QR_PASSPHRASE, now=qr_now)


def test_trust_list_of_loaded_keys(qr_pki, tmp_path: Path, qr_now) -> None:
    directory = tmp_path / "qr-signing"
    key = create_qr_key(qr_pki, directory, QR_PASSPHRASE, now=qr_now)
    _, keys = load_qr_keys(directory, QR_PASSPHRASE, now=qr_now)
    listed = trust_list(keys, issuer=PUBLIC_URL, now=qr_now + timedelta(microseconds=5))
    assert listed.generated_at == qr_now
    assert listed.keys == (TrustedKey.from_certificate(key.certificate, status="active"),)
    assert TrustList.from_json(listed.to_json()) == listed
