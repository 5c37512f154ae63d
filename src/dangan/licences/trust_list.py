"""The QR-signing trust list: which keys sign licence QR tokens, and since when.

Published at ``GET /.well-known/dangan/trust-list.json`` and saved by offline verifiers
(``dangan verify-qr --trust-list FILE``). The JSON form::

    {"format": "dangan-trust-list/1",
     "issuer": "https://licence.example.gov.cn",
     "generated_at": "2025-01-01T00:00:00Z",
     "keys": [{"kid": "<16 lowercase hex digits>", "alg": "ES256", "status": "active",
               "not_before": "…Z", "not_after": "…Z", "certificate": "<base64 DER>"}]}

A key id is the first 8 bytes of the SHA-256 of the certificate's DER; a reader recomputes
it and refuses a file whose kid does not match its certificate.

Errors: :class:`MalformedTrustList` (422 malformed_trust_list), a subclass of
:class:`~dangan.errors.InvalidRequest`, says what is wrong with a file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Literal, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dangan.clock import utc_text
from dangan.errors import InvalidRequest

__all__ = ["FORMAT", "KeyStatus", "MalformedTrustList", "TrustList", "TrustedKey", "kid_for"]

#: The ``format`` member of every trust list this module writes and reads.
FORMAT = "dangan-trust-list/1"
#: A key's standing: "active" signs new tokens, "retired" only verifies old ones,
#: "revoked" verifies nothing.
KeyStatus = Literal["active", "retired", "revoked"]
_STATUSES = ("active", "retired", "revoked")
_KID_BYTES = 8
_KID_HEX = re.compile(r"[0-9a-f]{16}")
_TOP_MEMBERS = {"format", "issuer", "generated_at", "keys"}
_KEY_MEMBERS = {"kid", "alg", "status", "not_before", "not_after", "certificate"}
_RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z", re.ASCII)


class MalformedTrustList(InvalidRequest):
    code = "malformed_trust_list"
    title = "The trust list is malformed"
    status = 422


def kid_for(certificate: x509.Certificate) -> bytes:
    """The key id of ``certificate``: the first 8 bytes of the SHA-256 of its DER."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).digest()[:_KID_BYTES]


@dataclass(frozen=True)
class TrustedKey:
    """A QR-signing key as the trust list describes it."""

    kid: bytes
    """First 8 bytes of the SHA-256 of the certificate's DER (the COSE ``kid``)."""
    certificate: x509.Certificate
    """The key's certificate; its ECDSA P-256 public key verifies tokens."""
    not_before: datetime
    """Start of the certificate's validity (UTC): no token may be issued before it."""
    not_after: datetime
    """End of the certificate's validity (UTC): no token may be issued after it."""
    status: KeyStatus
    """"active", "retired" (still verifies tokens signed earlier) or "revoked"."""

    @classmethod
    def from_certificate(cls, certificate: x509.Certificate, *, status: KeyStatus) -> TrustedKey:
        """The key of ``certificate``, with kid and validity taken from it."""
        if status not in _STATUSES:
            raise ValueError(f"unknown key status {status!r}")
        return cls(
            kid=kid_for(certificate),
            certificate=certificate,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            status=status,
        )

    @cached_property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The certificate's public key (a P-256 key: trust lists hold nothing else);
        taken out of the certificate once, as every scan needs it."""
        return cast(ec.EllipticCurvePublicKey, self.certificate.public_key())

    def to_json(self) -> dict[str, str]:
        """This key as a member of the ``keys`` array."""
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            "kid": self.kid.hex(),
            "alg": "ES256",
            "status": self.status,
            "not_before": _rfc3339(self.not_before),
            "not_after": _rfc3339(self.not_after),
            "certificate": base64.b64encode(der).decode("ascii"),
        }


@dataclass(frozen=True)
class TrustList:
    """The keys an offline verifier trusts for the QR tokens of one service."""

    issuer: str
    """The service's public URL."""
    generated_at: datetime
    """When the list was made (UTC)."""
    keys: tuple[TrustedKey, ...]
    """Every QR-signing key, whatever its status."""

    def find(self, kid: bytes) -> TrustedKey | None:
        """The key with id ``kid``, or None."""
        return next((key for key in self.keys if key.kid == kid), None)

    def to_json(self) -> dict[str, Any]:
        """The JSON document served at ``/.well-known/dangan/trust-list.json``."""
        return {
            "format": FORMAT,
            "issuer": self.issuer,
            "generated_at": _rfc3339(self.generated_at),
            "keys": [key.to_json() for key in self.keys],
        }

    @classmethod
    def from_json(cls, document: object) -> TrustList:
        """The trust list in a parsed JSON ``document``; MalformedTrustList says what is wrong."""
        top = _members(document, _TOP_MEMBERS, "the trust list")
        if top["format"] != FORMAT:
            raise MalformedTrustList(f"the trust list format must be {FORMAT!r}")
        issuer = top["issuer"]
        if not isinstance(issuer, str) or not issuer.startswith(("https://", "http://")):
            raise MalformedTrustList("the trust list issuer must be an http(s) URL")
        entries = top["keys"]
        if not isinstance(entries, list):
            raise MalformedTrustList("the trust list keys must be an array")
        keys = tuple(_key_from_json(entry, index) for index, entry in enumerate(entries))
        if len({key.kid for key in keys}) != len(keys):
            raise MalformedTrustList("the trust list names a key id twice")
        generated_at = _parse_time(top["generated_at"], "generated_at")
        return cls(issuer=issuer, generated_at=generated_at, keys=keys)


def _key_from_json(entry: object, index: int) -> TrustedKey:
    where = f"key #{index + 1} of the trust list"
    member = _members(entry, _KEY_MEMBERS, where)
    if member["alg"] != "ES256":
        raise MalformedTrustList(f"{where}: alg must be 'ES256'")
    if member["status"] not in _STATUSES:
        raise MalformedTrustList(f"{where}: status must be one of {', '.join(_STATUSES)}")
    kid = member["kid"]
    if not isinstance(kid, str) or not _KID_HEX.fullmatch(kid):
        raise MalformedTrustList(f"{where}: kid must be 16 lowercase hex digits")
    certificate = _certificate(member["certificate"], where)
    key = TrustedKey.from_certificate(certificate, status=member["status"])
    if key.kid.hex() != kid:
        raise MalformedTrustList(f"{where}: kid {kid} does not match its certificate")
    not_before = _parse_time(member["not_before"], f"{where}: not_before")
    not_after = _parse_time(member["not_after"], f"{where}: not_after")
    if (not_before, not_after) != (key.not_before, key.not_after):
        raise MalformedTrustList(f"{where}: not_before and not_after differ from the certificate")
    return key


def _certificate(value: object, where: str) -> x509.Certificate:
    try:
        der = base64.b64decode(value if isinstance(value, str) else "", validate=True)
        certificate = x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as exc:
        raise MalformedTrustList(f"{where}: certificate must be a base64 DER certificate") from exc
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise MalformedTrustList(f"{where}: the certificate's key is not ECDSA P-256 (ES256)")
    return certificate


def _members(value: object, expected: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise MalformedTrustList(f"{where} must be a JSON object")
    missing, extra = expected - value.keys(), value.keys() - expected
    if missing or extra:
        detail = [f"missing {', '.join(sorted(missing))}"] if missing else []
        detail += [f"unexpected {', '.join(sorted(map(str, extra)))}"] if extra else []
        raise MalformedTrustList(f"{where}: {'; '.join(detail)}")
    return value


def _parse_time(value: object, where: str) -> datetime:
    """An RFC 3339 UTC time written with a trailing Z, as :func:`_rfc3339` writes it."""
    message = f"{where} must be an RFC 3339 UTC time such as 2025-01-31T08:00:00Z"
    if not isinstance(value, str) or not _RFC3339_UTC.fullmatch(value):
        raise MalformedTrustList(message)
    try:
        return datetime.fromisoformat(value[:-1]).replace(tzinfo=UTC)
    except ValueError as exc:  # e.g. 2025-02-30
        raise MalformedTrustList(message) from exc


def _rfc3339(moment: datetime) -> str:
    """``moment`` as RFC 3339 §5.6 UTC with a Z; whole seconds unless it has a fraction."""
    if moment.tzinfo is None:
        raise ValueError("times in a trust list must be timezone-aware")
    return utc_text(moment)
