"""QR tokens: COSE_Sign1 (RFC 9052) over CWT claims (RFC 8392), signed with ES256.

Tokens are signed by real QR-signing keys of the run's development PKI. Attacks are
built by hand here (re-encoding and re-signing what ``sign_token`` would never write), so
the verifier is tested against tokens from an independent encoder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

import cbor2
import pytest
import segno
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from dangan.licences.identifiers import LicenceIdentifier
from dangan.licences.qr_key import QrSigningKey
from dangan.licences.token import (
    QrClaims,
    TokenNotRecognised,
    qr_url,
    sign_token,
    token_bytes,
    token_from_payload,
    token_text,
    verify_token,
)
from dangan.licences.trust_list import TrustedKey, TrustList
from tests.licences.qr_values import IDENTIFIER, ISSUER_USCC, PDF_SHA256, PUBLIC_URL

pytest_plugins = ["tests.licences.qr_fixtures"]

GENERIC = "The QR code is not recognised"
ES256_PROTECTED = bytes.fromhex("a10126")  # {1: -7}


def _sign(key: QrSigningKey, claims: QrClaims) -> bytes:
    return sign_token(claims, key=key.private_key, certificate=key.certificate)


def _cose(
    key: ec.EllipticCurvePrivateKey,
    payload: bytes,
    *,
    kid: bytes,
    protected: bytes = ES256_PROTECTED,
    unprotected: dict | None = None,
    tag: int = 18,
) -> bytes:
    """A COSE_Sign1 made by hand: Sig_structure (RFC 9052 §4.4), r || s (RFC 9053 §2.1)."""
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
    r, s = decode_dss_signature(key.sign(to_sign, ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    header = {4: kid} if unprotected is None else unprotected
    return cbor2.dumps(cbor2.CBORTag(tag, [protected, header, payload, signature]))


def _claims_map(claims: QrClaims, **changes: object) -> dict:
    result = {
        1: claims.issuer,
        6: int(claims.issued_at.timestamp()),
        4: int(claims.expires_at.timestamp()),
        -65537: [claims.licence, claims.type_code, claims.holder, claims.pdf_sha256],
    }
    for label, value in changes.items():
        number = {"iss": 1, "iat": 6, "exp": 4, "licence": -65537}[label]
        if value is None:
            del result[number]
        else:
            result[number] = value
    return result


def _refused(token: str | bytes, trust: TrustList, now) -> TokenNotRecognised:
    with pytest.raises(TokenNotRecognised) as caught:
        verify_token(token, trust, now=now)
    error = caught.value
    assert str(error) == GENERIC and error.detail == GENERIC
    assert (error.code, error.status) == ("token_not_recognised", 404)
    assert error.title == "Not recognised"
    assert error._reason not in str(error) and error._reason not in repr(error)
    return error


# Signing and the wire format ---------------------------------------------------------------


def test_a_signed_token_verifies_with_its_claims(qr_key, trust, make_claims, qr_now) -> None:
    claims = make_claims(issued_at=qr_now + timedelta(microseconds=999_999))
    verified, key = verify_token(_sign(qr_key, claims), trust, now=qr_now)
    assert verified == make_claims()  # NumericDate: whole seconds (RFC 8392 §2)
    assert key.kid == qr_key.kid and key.status == "active"
    assert verified.licence == "1.2.156.3005.2.0101.91110000600037341L.471689829492.1.P"


def test_the_token_is_cose_sign1_over_cwt_claims(qr_key, make_claims) -> None:
    claims = make_claims()
    raw = _sign(qr_key, claims)
    message = cbor2.loads(raw)
    assert message.tag == 18  # COSE_Sign1, RFC 9052 §4.2
    protected, unprotected, payload, signature = message.value
    assert protected == ES256_PROTECTED  # alg (1) ES256 (-7), RFC 9053 §2.1
    der = qr_key.certificate.public_bytes(serialization.Encoding.DER)
    assert dict(unprotected) == {4: hashlib.sha256(der).digest()[:8]}  # kid, RFC 9052 §3.1
    assert cbor2.loads(payload) == {
        1: ISSUER_USCC,  # iss
        6: int(claims.issued_at.timestamp()),  # iat
        4: int(claims.expires_at.timestamp()),  # exp
        -65537: [str(IDENTIFIER), "0101", "张*明", PDF_SHA256],  # private use (RFC 8392 §9.1)
    }
    # Sig_structure of RFC 9052 §4.4, written out byte by byte: array(4), "Signature1",
    # bstr protected, empty external_aad, bstr payload (2-byte length).
    to_be_signed = (
        bytes.fromhex("846a5369676e617475726531") + b"\x43" + ES256_PROTECTED + b"\x40"
        + b"\x58" + bytes([len(payload)]) + payload
    )
    assert len(signature) == 64
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    public_key = qr_key.certificate.public_key()
    public_key.verify(encode_dss_signature(r, s), to_be_signed, ec.ECDSA(hashes.SHA256()))


def test_exp_is_omitted_when_the_licence_has_no_end(qr_key, trust, make_claims, qr_now) -> None:
    raw = _sign(qr_key, make_claims(expires_at=None))
    assert set(cbor2.loads(cbor2.loads(raw).value[2])) == {1, 6, -65537}
    claims, _ = verify_token(raw, trust, now=qr_now)
    assert claims.expires_at is None


def test_an_expired_licence_still_verifies(qr_key, trust, make_claims, qr_now) -> None:
    ended = qr_now - timedelta(days=1)
    claims, _ = verify_token(_sign(qr_key, make_claims(expires_at=ended)), trust, now=qr_now)
    assert claims.expires_at == ended  # the caller shows "Expired"; the token is genuine


def test_the_qr_url_fits_version_15_at_level_q(qr_key, make_claims) -> None:
    # Measured: 55-character identifier, 3-character masked name, 18-character USCC, with
    # exp: a 228-byte token, a 398-character URL, QR version 15-Q in alphanumeric mode
    # (version 15-Q holds at most 426 alphanumeric characters).
    assert len(str(IDENTIFIER)) == 55
    url = qr_url(PUBLIC_URL, token_text(_sign(qr_key, make_claims())))
    assert url.startswith("HTTPS://LICENCE.EXAMPLE.GOV.CN/V/")
    qr = segno.make_qr(url, error="q", boost_error=False)
    assert qr.error == "Q" and qr.mode == "alphanumeric"
    assert qr.version <= 15


def test_sign_token_refuses_what_it_cannot_sign(qr_key, stranger_key, make_claims) -> None:
    claims = make_claims()
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(ValueError, match="P-256"):
        sign_token(claims, key=p384, certificate=qr_key.certificate)
    with pytest.raises(ValueError, match="does not hold the signing key"):
        sign_token(claims, key=stranger_key.private_key, certificate=qr_key.certificate)
    other = LicenceIdentifier.generate(type_code="0102", issuer_uscc=ISSUER_USCC, serial="1")
    with pytest.raises(ValueError, match="does not match the issuer and type code"):
        _sign(qr_key, make_claims(licence=str(other)))
    with pytest.raises(ValueError, match="32-byte"):
        _sign(qr_key, make_claims(pdf_sha256=b"\x00" * 31))
    with pytest.raises(ValueError, match="timezone-aware"):
        _sign(qr_key, make_claims(issued_at=claims.issued_at.replace(tzinfo=None)))


# Text form and URL --------------------------------------------------------------------------


def test_token_text_is_unpadded_upper_case_base32() -> None:
    assert token_text(b"foobar") == "MZXW6YTBOI"  # RFC 4648 §10, without "======"
    assert token_bytes("MZXW6YTBOI") == b"foobar"
    assert token_bytes("mzxw6ytboi") == b"foobar"
    assert token_bytes("MZXW6YTBOI======") == b"foobar"


@pytest.mark.parametrize(
    "text", ["", "MZXW6YTBO1", "MZXW6YTBOI!", "MZXW6YTBOIA", "MZXW6YTBOJ", "ＭＺＸＷ", "A" * 2000]
)
def test_malformed_token_text_is_not_recognised(text: str) -> None:
    with pytest.raises(TokenNotRecognised) as caught:
        token_bytes(text)
    assert str(caught.value) == GENERIC


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("https://licence.example.gov.cn", "HTTPS://LICENCE.EXAMPLE.GOV.CN/V/MZXW6YTBOI"),
        ("https://licence.example.gov.cn/", "HTTPS://LICENCE.EXAMPLE.GOV.CN/V/MZXW6YTBOI"),
        ("http://Example.gov.cn:8443/zw/", "HTTP://EXAMPLE.GOV.CN:8443/zw/V/MZXW6YTBOI"),
    ],
)
def test_qr_url(public_url: str, expected: str) -> None:
    assert qr_url(public_url, "MZXW6YTBOI") == expected


@pytest.mark.parametrize(
    ("public_url", "text"),
    [
        ("ftp://example.gov.cn", "MZXW6YTBOI"),
        ("https://example.gov.cn/?a=1", "MZXW6YTBOI"),
        ("https://user@example.gov.cn", "MZXW6YTBOI"),
        ("https://example.gov.cn", "mzxw6ytboi"),
    ],
)
def test_qr_url_refuses(public_url: str, text: str) -> None:
    with pytest.raises(ValueError):
        qr_url(public_url, text)


@pytest.mark.parametrize(
    "payload",
    [
        "HTTPS://LICENCE.EXAMPLE.GOV.CN/V/MZXW6YTBOI",
        "https://licence.example.gov.cn/v/mzxw6ytboi",
        "https://licence.example.gov.cn/zw/V/MZXW6YTBOI/",
        "  MZXW6YTBOI\n",
        "mzxw6ytboi",
    ],
)
def test_token_from_payload(payload: str) -> None:
    assert token_from_payload(payload) == "MZXW6YTBOI"


@pytest.mark.parametrize(
    "payload",
    ["https://licence.example.gov.cn/x/MZXW6YTBOI", "https://licence.example.gov.cn/V/",
     "https://[::1/V/MZXW6YTBOI", "not a token", ""],
)
def test_foreign_payloads_are_not_recognised(payload: str) -> None:
    with pytest.raises(TokenNotRecognised):
        token_from_payload(payload)


def test_a_url_payload_verifies(qr_key, trust, make_claims, qr_now) -> None:
    url = qr_url(PUBLIC_URL, token_text(_sign(qr_key, make_claims())))
    claims, _ = verify_token(token_from_payload(url.lower()), trust, now=qr_now)
    assert claims == make_claims()


# Refusals: one opaque error, the reason kept for logs ----------------------------------------


def test_structural_damage_is_not_recognised(qr_key, trust, make_claims, qr_now) -> None:
    raw = _sign(qr_key, make_claims())
    message = cbor2.loads(raw)
    protected, unprotected, payload, signature = message.value
    cases = {
        b"\xff": "not CBOR",
        raw + b"\x00": "preferred CBOR encoding",
        raw[:-1]: "not CBOR",
        cbor2.dumps(message.value): "not a tagged COSE_Sign1",
        cbor2.dumps(cbor2.CBORTag(17, message.value)): "not a tagged COSE_Sign1",
        cbor2.dumps(cbor2.CBORTag(18, list(message.value)[:3])): "not an array of 4",
        cbor2.dumps(cbor2.CBORTag(18, [protected, {4: b"\x00" * 7}, payload, signature])):
            "kid is not 8 bytes",
        cbor2.dumps(cbor2.CBORTag(18, [protected, dict(unprotected), payload, signature[:63]])):
            "not 64 bytes",
        cbor2.dumps(cbor2.CBORTag(18, [protected, dict(unprotected), payload, b"\x01" * 64])):
            "bad signature",
    }
    for token, reason in cases.items():
        assert reason in _refused(token, trust, qr_now)._reason


def test_another_algorithm_is_not_recognised(qr_key, trust, make_claims, qr_now) -> None:
    payload = cbor2.dumps(_claims_map(make_claims()))
    key = qr_key.private_key
    for protected, unprotected in [
        (cbor2.dumps({1: -35}), None),  # ES384, validly signed with the P-256 key
        (cbor2.dumps({1: -7, 2: [1]}), None),  # a "crit" header
        (b"", {1: -7, 4: qr_key.kid}),  # alg outside the protected header
    ]:
        token = _cose(key, payload, kid=qr_key.kid, protected=protected, unprotected=unprotected)
        assert "protected header" in _refused(token, trust, qr_now)._reason
    extra = _cose(key, payload, kid=qr_key.kid, unprotected={4: qr_key.kid, 33: b""})
    assert "unprotected header" in _refused(extra, trust, qr_now)._reason


def test_a_forged_token_is_not_recognised(stranger_key, trust, make_claims, qr_now) -> None:
    assert "unknown kid" in _refused(_sign(stranger_key, make_claims()), trust, qr_now)._reason
    # Signed by the stranger but naming a trusted kid: the signature does not verify.
    payload = cbor2.dumps(_claims_map(make_claims()))
    trusted_kid = trust.keys[0].kid
    forged = _cose(stranger_key.private_key, payload, kid=trusted_kid)
    assert "bad signature" in _refused(forged, trust, qr_now)._reason


def test_an_altered_claim_is_not_recognised(qr_key, trust, make_claims, qr_now) -> None:
    message = cbor2.loads(_sign(qr_key, make_claims()))
    protected, unprotected, _payload, signature = message.value
    altered = cbor2.dumps(_claims_map(make_claims(holder="李*明")))
    token = cbor2.dumps(cbor2.CBORTag(18, [protected, dict(unprotected), altered, signature]))
    assert _refused(token, trust, qr_now)._reason == "bad signature"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iat": "2025-01-01"}, "not a NumericDate"),
        ({"iat": -1}, "not a NumericDate"),
        ({"iat": 2**62}, "out of range"),
        ({"exp": 1.5}, "not a NumericDate"),
        ({"iss": None}, "claims are not"),
        ({"iss": 91110000600037341}, "not text"),
        ({"licence": ["a", "b", "c"]}, "array of 4"),
        ({"licence": [str(IDENTIFIER), "0101", "张*明", b"\x00" * 20]}, "not 32 bytes"),
        ({"licence": ["1.2.3", "0101", "张*明", PDF_SHA256]}, "does not match"),
        ({"licence": [str(IDENTIFIER).lower(), "0101", "张*明", PDF_SHA256]}, "does not match"),
        ({"iss": "12100000400000624D"}, "does not match"),
        ({"licence": [str(IDENTIFIER), "0102", "张*明", PDF_SHA256]}, "does not match"),
    ],
)
def test_validly_signed_claims_of_the_wrong_shape_are_not_recognised(
    qr_key, trust, make_claims, qr_now, changes: dict, reason: str
) -> None:
    payload = cbor2.dumps(_claims_map(make_claims(), **changes))
    token = _cose(qr_key.private_key, payload, kid=qr_key.kid)
    assert reason in _refused(token, trust, qr_now)._reason


def test_claims_not_in_preferred_encoding_are_not_recognised(
    qr_key, trust, make_claims, qr_now
) -> None:
    payload = cbor2.dumps(_claims_map(make_claims()))
    assert payload[:2] == b"\xa4\x01"
    for variant in (b"\xa4\x18\x01" + payload[2:], b"\xbf" + payload[1:] + b"\xff"):
        token = _cose(qr_key.private_key, variant, kid=qr_key.kid)  # validly signed
        assert "preferred CBOR" in _refused(token, trust, qr_now)._reason


def test_an_unknown_claim_is_not_recognised(qr_key, trust, make_claims, qr_now) -> None:
    payload = cbor2.dumps({**_claims_map(make_claims()), 2: "subject"})
    token = _cose(qr_key.private_key, payload, kid=qr_key.kid)
    assert "claims are not" in _refused(token, trust, qr_now)._reason


def test_iat_in_the_future_beyond_the_skew(qr_key, trust, make_claims, qr_now) -> None:
    soon = _sign(qr_key, make_claims(issued_at=qr_now + timedelta(minutes=5)))
    assert verify_token(soon, trust, now=qr_now)[0].issued_at == qr_now + timedelta(minutes=5)
    later = _sign(qr_key, make_claims(issued_at=qr_now + timedelta(minutes=5, seconds=1)))
    assert _refused(later, trust, qr_now)._reason == "iat is in the future"


def test_the_key_must_be_valid_at_iat(qr_key, old_qr_key, trust, make_claims, qr_now) -> None:
    # The old key's certificate ended about a year ago: what it signed then still verifies.
    then = qr_now - timedelta(days=2 * 365)
    claims, key = verify_token(_sign(old_qr_key, make_claims(issued_at=then)), trust, now=qr_now)
    assert claims.issued_at == then and key.status == "retired"
    late = _sign(old_qr_key, make_claims(issued_at=qr_now))
    late_reason = _refused(late, trust, qr_now)._reason
    assert late_reason == "the key's certificate was not valid at iat"
    early = qr_key.certificate.not_valid_before_utc - timedelta(seconds=1)
    backdated = _sign(qr_key, make_claims(issued_at=early))
    assert _refused(backdated, trust, qr_now)._reason == late_reason


def test_a_revoked_key_is_not_recognised(qr_key, trust, make_claims, qr_now) -> None:
    revoked = TrustList(
        issuer=trust.issuer,
        generated_at=qr_now,
        keys=(TrustedKey.from_certificate(qr_key.certificate, status="revoked"),),
    )
    token = _sign(qr_key, make_claims())
    assert verify_token(token, trust, now=qr_now)[1].status == "active"
    assert _refused(token, revoked, qr_now)._reason == "the key is revoked"


def test_every_refusal_reads_the_same(
    qr_key, stranger_key, trust, make_claims: Callable[..., QrClaims], qr_now
) -> None:
    good = _sign(qr_key, make_claims())
    tokens = [b"\xff", _sign(stranger_key, make_claims()), good[:-1] + bytes([good[-1] ^ 1])]
    errors = [_refused(token, trust, qr_now) for token in tokens]
    assert len({(str(e), repr(e), e.detail, e.code, e.status, str(e.extra)) for e in errors}) == 1
    assert len({e._reason for e in errors}) == 3
