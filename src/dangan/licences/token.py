"""Compact signed QR tokens: a COSE_Sign1 over CWT claims, written as base32 in a URL.

A token is a tagged COSE_Sign1 (RFC 9052 §4.2)::

    18([h'A10126',                      protected header {1 (alg): -7 (ES256)}
        {4 (kid): h'<8 bytes>'},        first 8 bytes of SHA-256 of the certificate's DER
        <<{1 (iss): issuer USCC, 6 (iat): NumericDate, ? 4 (exp): NumericDate,
           -65537: [licence identifier, type code, masked holder, PDF SHA-256]}>>,
        h'<r || s, 64 bytes>'])         RFC 9053 §2.1

The payload is an RFC 8392 §3 claims set, and the whole token a CWT without the optional
CWT tag 61 (RFC 8392 §6: an application that knows it holds a CWT may omit it). The QR
carries :func:`qr_url`, the public page's URL with the token in RFC 4648 base32, so that
the whole URL fits QR alphanumeric mode.

Error tree (every decoding or verification failure is the same opaque error, so the
verifier is no oracle; the reason is kept in ``_reason`` for logs and tests only)::

    DanganError
    └── TokenNotRecognised      404 token_not_recognised
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from dangan.errors import DanganError
from dangan.licences.identifiers import PREFIX, LicenceIdentifier, validate_uscc
from dangan.licences.trust_list import TrustedKey, TrustList, kid_for

__all__ = [
    "CLOCK_SKEW",
    "QrClaims",
    "TokenNotRecognised",
    "qr_url",
    "sign_token",
    "token_bytes",
    "token_from_payload",
    "token_text",
    "verify_token",
]

#: How far in the future an iat may lie before the token is refused.
CLOCK_SKEW = timedelta(minutes=5)
#: Far more than a version 15 QR holds; longer input is refused before decoding.
MAX_TOKEN_BYTES = 1024
_COSE_SIGN1_TAG = 18  # RFC 9052 §4.2
_ES256 = ec.ECDSA(hashes.SHA256())  # RFC 9053 §2.1
# RFC 9052 §3.1: header label 1 is alg, 4 is kid; RFC 9053 §2.1: ES256 is -7. Only this
# exact protected header is accepted: honouring other algorithms or "crit" labels would
# widen what a forger may try.
_PROTECTED = cbor2.dumps({1: -7})
_KID_LABEL = 4
_KID_BYTES = 8
# RFC 8392 §3.1 claim keys, and one private-use key (RFC 8392 §9.1: keys below -65536
# are private use). One private claim holding an array keeps the token compact: four
# claims of their own would each cost a 5-byte key.
_ISS, _EXP, _IAT, _LICENCE = 1, 4, 6, -65537
_COORDINATE_BYTES = 32  # P-256: r and s are 32 bytes each in the COSE signature
_BASE32 = re.compile(r"[A-Z2-7]+")
#: RFC 4648 base32 letters → the digits int(…, 32) reads.
_TO_BASE32_DIGITS = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789ABCDEFGHIJKLMNOPQRSTUV"
)
_MAX_TEXT = -(-MAX_TOKEN_BYTES * 8 // 5)


class TokenNotRecognised(DanganError):
    """A QR token that is malformed, forged, altered or signed by a key not trusted then."""

    code = "token_not_recognised"
    title = "Not recognised"
    status = 404

    def __init__(self, reason: str = "") -> None:
        super().__init__("The QR code is not recognised")
        #: Why, for logs and tests; never shown to whoever presented the token.
        self._reason = reason


@dataclass(frozen=True)
class QrClaims:
    """What a QR token asserts about a licence."""

    issuer: str
    """The issuing organisation's unified social credit code (CWT ``iss``)."""
    issued_at: datetime
    """When the token was signed, UTC, whole seconds (CWT ``iat``)."""
    expires_at: datetime | None
    """The licence's end, UTC, whole seconds (CWT ``exp``); None when it has no end date."""
    licence: str
    """The licence identifier, ``1.2.156.3005.2.…``."""
    type_code: str
    """The licence type code (the identifier's type code)."""
    holder: str
    """The holder's name, masked (e.g. ``张*明``)."""
    pdf_sha256: bytes
    """SHA-256 of the licence PDF (32 bytes)."""


def sign_token(
    claims: QrClaims, *, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate
) -> bytes:
    """The COSE_Sign1 token of ``claims``, signed with ``key`` (ES256) under ``certificate``."""
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
        key.curve, ec.SECP256R1
    ):
        raise ValueError("QR tokens are signed with an ECDSA P-256 key (ES256)")
    if certificate.public_key() != key.public_key():
        raise ValueError("the certificate does not hold the signing key's public key")
    payload = cbor2.dumps(_claims_map(claims))
    der = key.sign(_sig_structure(_PROTECTED, payload), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    signature = r.to_bytes(_COORDINATE_BYTES, "big") + s.to_bytes(_COORDINATE_BYTES, "big")
    unprotected = {_KID_LABEL: kid_for(certificate)}
    message = cbor2.CBORTag(_COSE_SIGN1_TAG, [_PROTECTED, unprotected, payload, signature])
    return cbor2.dumps(message)


def verify_token(
    token: str | bytes, trust: TrustList, *, now: datetime
) -> tuple[QrClaims, TrustedKey]:
    """The claims of ``token`` (base32 text or raw bytes) and the key that signed it.

    Raises :class:`TokenNotRecognised` unless the token is well formed, signed by a key of
    ``trust`` that is not revoked and whose certificate was valid at iat, and iat is at
    most :data:`CLOCK_SKEW` after ``now``. A licence past its exp still verifies: the
    caller shows it as expired.
    """
    raw = token_bytes(token) if isinstance(token, str) else bytes(token)
    protected, kid, payload, signature = _unpack(raw)
    key = trust.find(kid)
    if key is None:
        raise TokenNotRecognised("unknown kid")
    if key.status == "revoked":
        raise TokenNotRecognised("the key is revoked")
    _check_signature(key, protected, payload, signature)
    claims = _claims_from(payload)
    if claims.issued_at > now + CLOCK_SKEW:
        raise TokenNotRecognised("iat is in the future")
    if not key.not_before <= claims.issued_at <= key.not_after:
        raise TokenNotRecognised("the key's certificate was not valid at iat")
    return claims, key


def token_text(raw: bytes) -> str:
    """``raw`` in RFC 4648 §6 base32, upper case, without padding."""
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def token_bytes(text: str) -> bytes:
    """The token written as ``text`` (base32 in any case, padding optional)."""
    if not isinstance(text, str) or not text.isascii() or len(text) > _MAX_TEXT:
        raise TokenNotRecognised("not base32 text")
    upper = text.upper().rstrip("=")
    if not _BASE32.fullmatch(upper):
        raise TokenNotRecognised("not base32 text")
    # RFC 4648 §6 by integer arithmetic (base64.b32decode is pure Python in 3.11, and
    # every scan decodes a token of ~390 characters): each character is 5 bits.
    bits = 5 * len(upper)
    size, spare = divmod(bits, 8)
    if len(upper) % 8 in (1, 3, 6):
        raise TokenNotRecognised("base32 of an impossible length")
    value = int(upper.translate(_TO_BASE32_DIGITS), 32)
    if value & ((1 << spare) - 1):  # stray bits in the last character
        raise TokenNotRecognised("non-canonical base32")
    return (value >> spare).to_bytes(size, "big")


def qr_url(public_url: str, text: str) -> str:
    """The URL put in the QR: ``public_url`` with scheme and host upper-cased, then ``/V/<text>``.

    Scheme and host are case-insensitive (RFC 3986 §3.1, §3.2.2), so upper case costs
    nothing and keeps the URL in QR alphanumeric mode; the base path is kept as given.
    """
    parts = urlsplit(public_url)
    if parts.scheme.lower() not in ("https", "http") or not parts.netloc:
        raise ValueError(f"the public URL {public_url!r} must be an http(s) URL")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError("the public URL must have no user, query or fragment")
    if not _BASE32.fullmatch(text):
        raise ValueError("the token text must be upper-case base32 (see token_text)")
    path = parts.path.rstrip("/")
    return f"{parts.scheme.upper()}://{parts.netloc.upper()}{path}/V/{text}"


def token_from_payload(payload: str) -> str:
    """The token text (upper case) of a QR payload: a URL ending ``/V/<token>``, or a token."""
    if not isinstance(payload, str):
        raise TokenNotRecognised("the payload is not text")
    text = payload.strip()
    if "://" in text:
        try:
            path = urlsplit(text).path
        except ValueError as exc:
            raise TokenNotRecognised("not a URL") from exc
        head, _, text = path.rstrip("/").rpartition("/")
        if not head.lower().endswith("/v"):
            raise TokenNotRecognised("the URL does not end in /v/<token>")
    token_bytes(text)
    return text.upper().rstrip("=")


def _claims_map(claims: QrClaims) -> dict[int, object]:
    """The CWT claims set of ``claims`` (RFC 8392 §3), checked for consistency."""
    identifier = LicenceIdentifier.parse(claims.licence)
    issuer = validate_uscc(claims.issuer)
    if (identifier.issuer_uscc, identifier.type_code) != (issuer, claims.type_code):
        raise ValueError("the licence identifier does not match the issuer and type code")
    if not isinstance(claims.holder, str) or not claims.holder:
        raise ValueError("the masked holder name must be non-empty text")
    if not isinstance(claims.pdf_sha256, bytes) or len(claims.pdf_sha256) != 32:
        raise ValueError("pdf_sha256 must be the 32-byte SHA-256 digest")
    licence = [str(identifier), claims.type_code, claims.holder, claims.pdf_sha256]
    result: dict[int, object] = {_ISS: issuer, _IAT: _numeric_date(claims.issued_at)}
    if claims.expires_at is not None:
        result[_EXP] = _numeric_date(claims.expires_at)
    result[_LICENCE] = licence
    return result


def _numeric_date(moment: datetime) -> int:
    """RFC 8392 §2 NumericDate: whole seconds since 1970-01-01T00:00:00Z."""
    if moment.tzinfo is None:
        raise ValueError("token times must be timezone-aware")
    return int(moment.timestamp())


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    # RFC 9052 §4.4: Sig_structure = ["Signature1", body_protected, external_aad, payload].
    return cbor2.dumps(["Signature1", protected, b"", payload])


def _decode(data: bytes, what: str) -> object:
    """``data`` as one CBOR item in the encoding we write, or TokenNotRecognised.

    Re-encoding must give back ``data``: this refuses trailing bytes, duplicate map keys,
    indefinite lengths and any non-preferred encoding in one test.
    """
    if len(data) > MAX_TOKEN_BYTES:
        raise TokenNotRecognised(f"{what} is too long")
    try:
        item = cbor2.loads(data)
        same = cbor2.dumps(item) == data
    except Exception as exc:
        raise TokenNotRecognised(f"{what} is not CBOR") from exc
    if not same:
        raise TokenNotRecognised(f"{what} is not in preferred CBOR encoding")
    return item


def _unpack(raw: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """Protected header, kid, payload and signature of a COSE_Sign1 (RFC 9052 §4.2)."""
    message = _decode(raw, "the token")
    if not isinstance(message, cbor2.CBORTag) or message.tag != _COSE_SIGN1_TAG:
        raise TokenNotRecognised("not a tagged COSE_Sign1")
    value = message.value  # cbor2 decodes the inside of a tag as immutable: tuple, frozendict
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise TokenNotRecognised("COSE_Sign1 is not an array of 4")
    protected, unprotected, payload, signature = value
    if protected != _PROTECTED:
        raise TokenNotRecognised("the protected header is not {alg: ES256}")
    if not isinstance(unprotected, Mapping) or set(unprotected) != {_KID_LABEL}:
        raise TokenNotRecognised("the unprotected header is not {kid}")
    kid = unprotected[_KID_LABEL]
    if not isinstance(kid, bytes) or len(kid) != _KID_BYTES:
        raise TokenNotRecognised("the kid is not 8 bytes")
    if not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise TokenNotRecognised("payload or signature is not a byte string")
    if len(signature) != 2 * _COORDINATE_BYTES:
        raise TokenNotRecognised("the signature is not 64 bytes")
    return protected, kid, payload, signature


def _check_signature(key: TrustedKey, protected: bytes, payload: bytes, signature: bytes) -> None:
    public_key = key.public_key
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise TokenNotRecognised("the trusted key is not P-256")
    r = int.from_bytes(signature[:_COORDINATE_BYTES], "big")
    s = int.from_bytes(signature[_COORDINATE_BYTES:], "big")
    try:
        public_key.verify(
            encode_dss_signature(r, s),
            _sig_structure(protected, payload),
            _ES256,
        )
    except InvalidSignature as exc:
        raise TokenNotRecognised("bad signature") from exc


def _claims_from(payload: bytes) -> QrClaims:
    """The claims of a signed payload, refusing any claim of the wrong type."""
    claims = _decode(payload, "the payload")
    if not isinstance(claims, Mapping) or not {_ISS, _IAT, _LICENCE} <= set(claims) <= {
        _ISS, _IAT, _EXP, _LICENCE
    }:
        raise TokenNotRecognised("the claims are not {iss, iat, exp?, licence}")
    issuer, licence = claims[_ISS], claims[_LICENCE]
    if not isinstance(licence, (list, tuple)) or len(licence) != 4:
        raise TokenNotRecognised("the licence claim is not an array of 4")
    identifier, type_code, holder, digest = licence
    if not all(isinstance(item, str) for item in (issuer, identifier, type_code, holder)):
        raise TokenNotRecognised("a text claim is not text")
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise TokenNotRecognised("the PDF digest is not 32 bytes")
    # The signature vouches for the claims (sign_token made them from a parsed
    # identifier); checking that they agree is enough here, and every scan runs this.
    if not identifier.startswith(f"{PREFIX}.{type_code}.{issuer}.") or not identifier.isascii():
        raise TokenNotRecognised("the licence identifier does not match iss and type code")
    return QrClaims(
        issuer=issuer,
        issued_at=_time_claim(claims[_IAT]),
        expires_at=_time_claim(claims[_EXP]) if _EXP in claims else None,
        licence=identifier,
        type_code=type_code,
        holder=holder,
        pdf_sha256=digest,
    )


def _time_claim(value: object) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TokenNotRecognised("a time claim is not a NumericDate")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise TokenNotRecognised("a time claim is out of range") from exc
