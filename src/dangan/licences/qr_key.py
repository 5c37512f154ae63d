"""The QR-signing keys: a directory of certificates and encrypted keys, and their trust list.

The caller keeps them in ``<pki_dir>/qr-signing``::

    <kid hex>.pem       the certificate, issued by the development PKI
    <kid hex>.key       its private key, encrypted PKCS#8 PEM, mode 0600
    <kid hex>.revoked   present when the key is revoked (its content is ignored)

The newest key (latest notBefore) that is valid now and not revoked signs new tokens and
is "active"; every other key stays in the trust list, as "retired" so that tokens signed
earlier keep verifying, or as "revoked". Only the active key's private key is decrypted.

Errors: :class:`~dangan.signing.errors.DevPkiError` for a file whose name is not its
certificate's key id or an active key without its key file, and
:class:`~dangan.signing.errors.KeySourceError` for a key that cannot be decrypted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from dangan.licences.trust_list import KeyStatus, TrustedKey, TrustList, kid_for
from dangan.signing._files import (
    certificates_pem,
    private_key_pem,
    read_certificate,
    read_private_key,
    write_file,
)
from dangan.signing.errors import DevPkiError
from dangan.signing.pki import DevPki

__all__ = ["QrSigningKey", "create_qr_key", "load_qr_keys", "trust_list"]

_STEM = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True)
class QrSigningKey:
    """The key that signs new QR tokens."""

    kid: bytes
    """First 8 bytes of the SHA-256 of the certificate's DER (the COSE ``kid``)."""
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    """The ECDSA P-256 private key (ES256)."""
    certificate: x509.Certificate
    """Its certificate, issued by the development PKI."""


def create_qr_key(
    pki: DevPki, directory: Path, passphrase: bytes, *, now: datetime
) -> QrSigningKey:
    """A new QR-signing key certified by ``pki`` at ``now``, saved in ``directory``.

    Being the newest, it becomes the active key from its notBefore on.
    """
    credential = pki.issue_qr_signing_certificate(now=now)
    key, certificate = credential.private_key, credential.certificate
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise DevPkiError("the development PKI issued a QR-signing key that is not ECDSA")
    kid = kid_for(certificate)
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The key first, so that a certificate never exists without its key.
    write_file(directory / f"{kid.hex()}.key", private_key_pem(key, passphrase), private=True)
    write_file(directory / f"{kid.hex()}.pem", certificates_pem([certificate]), private=False)
    return QrSigningKey(kid=kid, private_key=key, certificate=certificate)


def load_qr_keys(
    directory: Path, passphrase: bytes, *, now: datetime | None = None
) -> tuple[QrSigningKey | None, tuple[TrustedKey, ...]]:
    """The active key at ``now`` (None when no key is valid) and every key, newest first.

    ``now`` defaults to the system clock; tests and callers holding a clock pass it.
    """
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    directory = Path(directory)
    certificates = _certificates(directory) if directory.is_dir() else []
    revoked = {kid for kid, _ in certificates if (directory / f"{kid.hex()}.revoked").exists()}
    usable = [
        (kid, certificate)
        for kid, certificate in certificates
        if kid not in revoked
        and certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc
    ]
    active = max(usable, key=_newest, default=None)
    active_kid = active[0] if active else None

    def status(kid: bytes) -> KeyStatus:
        return "revoked" if kid in revoked else "active" if kid == active_kid else "retired"

    keys = tuple(
        TrustedKey.from_certificate(certificate, status=status(kid))
        for kid, certificate in sorted(certificates, key=_newest, reverse=True)
    )
    if active is None:
        return None, keys
    return _signing_key(directory, *active, passphrase), keys


def trust_list(keys: Iterable[TrustedKey], *, issuer: str, now: datetime) -> TrustList:
    """The trust list of ``keys`` published by the service at ``issuer`` (its public URL)."""
    return TrustList(issuer=issuer, generated_at=now.replace(microsecond=0), keys=tuple(keys))


def _certificates(directory: Path) -> list[tuple[bytes, x509.Certificate]]:
    """Every ``<kid hex>.pem`` of ``directory`` with its kid, checked against its name."""
    found = []
    for path in sorted(directory.glob("*.pem")):
        if not _STEM.fullmatch(path.stem):
            raise DevPkiError(f"{path.name} in {directory} is not named <key id>.pem")
        certificate = read_certificate(path)
        kid = kid_for(certificate)
        if kid.hex() != path.stem:
            raise DevPkiError(f"{path.name} holds the certificate of key id {kid.hex()}")
        found.append((kid, certificate))
    return found


def _newest(entry: tuple[bytes, x509.Certificate]) -> tuple[datetime, bytes]:
    kid, certificate = entry
    return certificate.not_valid_before_utc, kid


def _signing_key(
    directory: Path, kid: bytes, certificate: x509.Certificate, passphrase: bytes
) -> QrSigningKey:
    path = directory / f"{kid.hex()}.key"
    if not path.exists():
        raise DevPkiError(f"the active QR-signing key {kid.hex()} lacks its key file {path.name}")
    key = read_private_key(path, passphrase)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
        key.curve, ec.SECP256R1
    ):
        raise DevPkiError(f"{path.name} is not an ECDSA P-256 key")
    if key.public_key() != certificate.public_key():
        raise DevPkiError(f"{path.name} does not match {kid.hex()}.pem")
    return QrSigningKey(kid=kid, private_key=key, certificate=certificate)
