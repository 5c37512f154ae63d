"""Private helpers of the development PKI: keys, names, certificate profiles and key files.

Profiles follow RFC 5280 §4.2; every name carries :data:`DEV_LABEL` so that nothing made
here can be mistaken for a production credential.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from dangan.errors import InvalidRequest

#: The key algorithms the development PKI issues.
KeyType = Literal["rsa2048", "p256"]
#: Private keys the signing package can use.
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

#: Marks every subject of the development PKI (in OU, and in the CN of each CA).
DEV_LABEL = "DEVELOPMENT — NOT TRUSTED"
#: Organisation of the development CAs and TSA.
DEV_ORGANISATION = "dangan"
#: ub-common-name and ub-organization-name of RFC 5280 Appendix A.1.
MAX_NAME_LENGTH = 64
#: notBefore is set this far before "now" so that a slightly slow clock elsewhere accepts
#: a certificate issued a moment ago.
BACKDATE = timedelta(minutes=5)
#: PBKDF2 iterations protecting PKCS#12 bundles: a development compromise between the
#: OWASP figure (600,000) and test speed.
PKCS12_KDF_ROUNDS = 100_000


@dataclass(frozen=True)
class Issuer:
    """Whoever signs a certificate: a CA, or a key certifying itself (a root)."""

    name: x509.Name
    """Issuer name written into the certificate."""
    private_key: PrivateKey = field(repr=False)
    """Key that signs."""
    key_identifier: bytes
    """The issuer's SKI, repeated as the AKI of what it signs (RFC 5280 §4.2.1.1)."""
    not_after: datetime | None
    """End of the issuer's validity; nothing it signs outlives it. None for a root."""

    @classmethod
    def from_certificate(cls, certificate: x509.Certificate, private_key: PrivateKey) -> Issuer:
        """The CA holding ``certificate`` and ``private_key``."""
        ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        return cls(
            name=certificate.subject,
            private_key=private_key,
            key_identifier=ski.value.digest,
            not_after=certificate.not_valid_after_utc,
        )

    @classmethod
    def self_signing(cls, subject: x509.Name, private_key: PrivateKey) -> Issuer:
        """A key that signs its own certificate, under ``subject``."""
        ski = x509.SubjectKeyIdentifier.from_public_key(private_key.public_key())
        return cls(name=subject, private_key=private_key, key_identifier=ski.digest, not_after=None)


def utc(now: datetime) -> datetime:
    """``now`` in UTC; a naive datetime is a programming error, not "local time"."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def years(count: int) -> timedelta:
    """``count`` Julian years, close enough for certificate lifetimes."""
    return timedelta(days=round(365.25 * count))


def generate_key(key_type: KeyType) -> PrivateKey:
    """A fresh RSA-2048 (e = 65537) or ECDSA P-256 key."""
    if key_type == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unsupported key type {key_type!r}")


def key_type_of(key: PrivateKey) -> KeyType | None:
    """The :data:`KeyType` of ``key``, or None when the PKI would not issue such a key."""
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048:
        return "rsa2048"
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return "p256"
    return None


def random_serial() -> int:
    """A random positive 128-bit serial number (RFC 5280 §4.1.2.2: at most 20 octets)."""
    return secrets.randbits(128) or 1


def checked_name(value: str, what: str) -> str:
    """``value`` if it can be a subject attribute, else :class:`InvalidRequest`."""
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise InvalidRequest(f"{what} must be a non-empty name without surrounding spaces")
    if len(value) > MAX_NAME_LENGTH or not value.isprintable():
        raise InvalidRequest(f"{what} must be at most {MAX_NAME_LENGTH} printable characters")
    return value


def ca_name(common_name: str) -> x509.Name:
    """The subject of a development CA; cryptography encodes O, OU and CN as UTF8String."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANISATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, DEV_LABEL),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} ({DEV_LABEL})"),
        ]
    )


def end_entity_name(common_name: str, organisation: str) -> x509.Name:
    """The subject of an end entity: the person or seal (CN) of an organisation (O)."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, DEV_LABEL),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    # RFC 5280 §4.2.1.3: CAs sign certificates and CRLs; end entities sign documents, and
    # nonRepudiation (contentCommitment) marks signatures meant as a commitment.
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=not cert_sign,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def ca_extensions(*, path_length: int | None) -> list[tuple[x509.ExtensionType, bool]]:
    """BasicConstraints and keyUsage of a CA, both critical (RFC 5280 §4.2.1.9, §4.2.1.3)."""
    return [
        (x509.BasicConstraints(ca=True, path_length=path_length), True),
        (_key_usage(cert_sign=True), True),
    ]


def end_entity_extensions(
    *, crl_url: str, timestamping: bool
) -> list[tuple[x509.ExtensionType, bool]]:
    """Extensions of a signing, seal or TSA certificate.

    A TSA certificate carries exactly one EKU, id-kp-timeStamping, marked critical
    (RFC 3161 §2.3); the others carry none, so any document-signing use is allowed.
    """
    distribution_point = x509.DistributionPoint(
        full_name=[x509.UniformResourceIdentifier(crl_url)],
        relative_name=None,
        reasons=None,
        crl_issuer=None,
    )
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (_key_usage(cert_sign=False), True),
        (x509.CRLDistributionPoints([distribution_point]), False),
    ]
    if timestamping:
        extensions.append((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True))
    return extensions


def sign_certificate(
    *,
    subject: x509.Name,
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    issuer: Issuer,
    now: datetime,
    lifetime: timedelta,
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    """A certificate for ``public_key`` signed by ``issuer`` with ECDSA or RSA and SHA-256.

    SKI is the RFC 5280 §4.2.1.2 method (1) hash; AKI repeats the issuer's SKI
    (§4.2.1.1, also on a root, where it is allowed). notAfter never exceeds the issuer's.
    """
    start = utc(now)
    not_after = start + lifetime
    if issuer.not_after is not None:
        not_after = min(not_after, issuer.not_after)
    aki = x509.AuthorityKeyIdentifier(
        key_identifier=issuer.key_identifier,
        authority_cert_issuer=None,
        authority_cert_serial_number=None,
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.name)
        .public_key(public_key)
        .serial_number(random_serial())
        .not_valid_before(start - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
        .add_extension(aki, False)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    return builder.sign(issuer.private_key, hashes.SHA256())


def to_asn1(certificate: x509.Certificate) -> asn1_x509.Certificate:
    """The same certificate as asn1crypto parses it (what pyHanko works with)."""
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
