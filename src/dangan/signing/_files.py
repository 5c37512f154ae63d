"""Private helpers: certificate and key files of the development PKI and PKCS#12 key sources.

Private keys are written as encrypted PKCS#8 PEM (RFC 5958, PBES2 with PBKDF2-HMAC-SHA256
and AES-256-CBC, RFC 8018) and as PKCS#12 bundles (RFC 7292) using PBES2/AES-256-CBC for
both key and certificate bags and an HMAC-SHA256 MAC, which OpenSSL 3 opens without
``-legacy``. Key files are mode 0600 and every file is written atomically.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from dangan.signing._x509 import PKCS12_KDF_ROUNDS, PrivateKey
from dangan.signing.errors import DevPkiError, KeySourceError

_PRIVATE_MODE = 0o600
_PUBLIC_MODE = 0o644
_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


def write_file(path: Path, data: bytes, *, private: bool) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename.

    A crash leaves either the old file or the new one, never half a key. A private
    file is created with mode 0600 from the start, so it is never readable by others.
    """
    mode = _PRIVATE_MODE if private else _PUBLIC_MODE
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def certificates_pem(certificates: Sequence[x509.Certificate]) -> bytes:
    """Concatenated PEM of ``certificates``, in order."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def private_key_pem(key: PrivateKey, passphrase: bytes) -> bytes:
    """``key`` as encrypted PKCS#8 PEM ("BEGIN ENCRYPTED PRIVATE KEY")."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def pkcs12_bundle(
    *,
    friendly_name: str,
    key: PrivateKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    passphrase: bytes,
) -> bytes:
    """A PKCS#12 bundle of ``key``, ``certificate`` and its ``chain`` (nearest CA first)."""
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(PKCS12_KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(passphrase)
    )
    return pkcs12.serialize_key_and_certificates(
        friendly_name.encode("utf-8"), key, certificate, list(chain), encryption
    )


def read_certificate(path: Path) -> x509.Certificate:
    """The single PEM certificate in ``path``."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise DevPkiError(f"cannot read the certificate {path.name}") from exc


def read_private_key(path: Path, passphrase: bytes) -> PrivateKey:
    """The encrypted PKCS#8 key in ``path``; opaque about why it failed (no oracle)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), passphrase)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeySourceError(f"cannot open the key {path.name}") from exc
    return _supported(key, path)


def read_pkcs12(
    path: Path, passphrase: bytes
) -> tuple[PrivateKey, x509.Certificate, tuple[x509.Certificate, ...]]:
    """Key, certificate and the other certificates of the PKCS#12 bundle in ``path``."""
    try:
        key, certificate, others = pkcs12.load_key_and_certificates(path.read_bytes(), passphrase)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeySourceError(
            f"cannot open the PKCS#12 file {path.name}: wrong passphrase or damaged file"
        ) from exc
    if key is None or certificate is None:
        raise KeySourceError(f"the PKCS#12 file {path.name} lacks a key or a certificate")
    return _supported(key, path), certificate, tuple(others)


def _supported(key: object, path: Path) -> PrivateKey:
    # RSA below 2048 bits is too weak for new signatures (ETSI TS 119 312); ECDSA on the
    # NIST prime curves is what PAdES validators accept.
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, _CURVES):
        return key
    raise KeySourceError(f"the key in {path.name} is not RSA (2048 bits or more) or ECDSA")
