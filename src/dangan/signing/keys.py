"""Key sources: where a signing key lives, and a ready pyHanko signer for it.

    KeySource (protocol)    credential() -> SigningCredential, once per process; close()
    ├── Pkcs12KeySource     a PKCS#12 file (RFC 7292), parsed once, signed in memory
    └── Pkcs11KeySource     a key on a PKCS#11 token (an HSM; SoftHSM2 in tests)

:func:`key_source_from_config` builds either from a :class:`KeySourceConfig`. Both sign
with SHA-256: RSA PKCS#1 v1.5 (RFC 8017 §8.2; 2048 bits or more) or ECDSA on P-256
(DER Ecdsa-Sig-Value, RFC 5753 §7.2). Failures raise
:class:`~dangan.signing.errors.KeySourceError`; messages never carry a PIN or passphrase.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Generic, Literal, Protocol, TypeVar, runtime_checkable

from asn1crypto import algos
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.sign.signers import Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore

from dangan.signing._pkcs11 import SESSIONS, TokenSession, TokenSigner
from dangan.signing._x509 import to_asn1
from dangan.signing.errors import KeySourceError, SigningError
from dangan.signing.pki import IssuedCredential, PrivateKey, load_pkcs12

__all__ = [
    "KeySource",
    "KeySourceConfig",
    "LoadedKeySigner",
    "Pkcs11KeySource",
    "Pkcs12KeySource",
    "SigningCredential",
    "key_source_from_config",
    "signature_mechanism",
]

#: The digest of every signature made here (ETSI TS 119 312 §6.2).
DIGEST_ALGORITHM = "sha256"
#: Largest DER Ecdsa-Sig-Value on P-256: SEQUENCE { INTEGER (33 octets), INTEGER (33) }.
_P256_SIGNATURE_MAX = 72


_T = TypeVar("_T")


class _Once(Generic[_T]):
    """A value made on first use by one thread while the others wait."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: _T | None = None

    def get(self, make: Callable[[], _T]) -> _T:
        with self._lock:
            if self._value is None:
                self._value = make()
            return self._value

    def take(self) -> _T | None:
        with self._lock:
            value, self._value = self._value, None
            return value


@dataclass(frozen=True)
class SigningCredential:
    """A ready pyHanko signer with the certificate it signs for."""

    signer: Signer
    """Signs CMS signed attributes (pass it to pyHanko's ``PdfSigner`` or ``async_sign``)."""
    certificate: x509.Certificate
    """The signer's certificate."""
    chain: tuple[x509.Certificate, ...]
    """CA certificates above it, nearest first, as the source knows them (may be empty)."""


@runtime_checkable
class KeySource(Protocol):
    """Somewhere a signing key lives: a PKCS#12 file, or a PKCS#11 token."""

    def credential(self) -> SigningCredential:
        """The signer, opened on the first call and the same object on later calls.

        Thread-safe. Raises :class:`~dangan.signing.errors.KeySourceError` when the key
        cannot be reached.
        """
        ...

    def close(self) -> None:
        """Release the key (log out of the token); a later :meth:`credential` opens it again."""
        ...


class LoadedKeySigner(Signer):
    """A pyHanko signer holding a parsed ``cryptography`` key.

    pyHanko's ``SimpleSigner`` keeps the key as asn1crypto ``PrivateKeyInfo`` and loads it
    into ``cryptography`` again for every signature (tens of milliseconds for RSA-2048,
    over a hundred times the signature itself); this one parses the key once. Build it with
    :meth:`create`, :meth:`from_credential` or :meth:`from_pkcs12`; it is safe to share
    between threads.

    ``embed_roots`` (default False) also puts self-signed CA certificates into signatures:
    a verifier takes trust anchors from its own configuration, never from the document,
    so leaving the root out only makes signatures smaller and quicker to validate.
    """

    def __init__(
        self,
        *,
        certificate: x509.Certificate,
        private_key: PrivateKey,
        chain: Iterable[x509.Certificate] = (),
        embed_roots: bool = False,
    ) -> None:
        mechanism = signature_mechanism(certificate)
        if certificate.public_key() != private_key.public_key():
            raise KeySourceError("the private key does not belong to the certificate")
        asn1_certificate = to_asn1(certificate)
        super().__init__(
            signing_cert=asn1_certificate,
            cert_registry=SimpleCertificateStore.from_certs(
                [asn1_certificate, *(to_asn1(c) for c in chain)]
            ),
            signature_mechanism=mechanism,
            embed_roots=embed_roots,
        )
        self._private_key = private_key
        if isinstance(private_key, rsa.RSAPrivateKey):
            self._placeholder = bytes((private_key.key_size + 7) // 8)
        else:
            self._placeholder = bytes(_P256_SIGNATURE_MAX)

    @classmethod
    def create(
        cls,
        *,
        certificate: x509.Certificate,
        private_key: PrivateKey,
        chain: Iterable[x509.Certificate] = (),
        embed_roots: bool = False,
    ) -> LoadedKeySigner:
        """A signer for ``certificate``; ``chain`` lists the CA certificates above it.

        Raises :class:`KeySourceError` for a key that is not RSA (2048 bits or more) or
        ECDSA on P-256, or that does not belong to ``certificate``.
        """
        return cls(
            certificate=certificate, private_key=private_key, chain=chain, embed_roots=embed_roots
        )

    @classmethod
    def from_credential(
        cls, credential: IssuedCredential, *, embed_roots: bool = False
    ) -> LoadedKeySigner:
        """A signer for a credential of the development PKI (or one of the same shape)."""
        return cls.create(
            certificate=credential.certificate,
            private_key=credential.private_key,
            chain=credential.chain,
            embed_roots=embed_roots,
        )

    @classmethod
    def from_pkcs12(
        cls, path: Path, passphrase: bytes, *, embed_roots: bool = False
    ) -> LoadedKeySigner:
        """A signer for the key, certificate and chain of a PKCS#12 file (RFC 7292)."""
        private_key, certificate, chain = load_pkcs12(path, passphrase)
        return cls.create(
            certificate=certificate, private_key=private_key, chain=chain, embed_roots=embed_roots
        )

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        """The signature over ``data`` (for CMS, the DER signed attributes, RFC 5652 §5.4)."""
        _check_digest(digest_algorithm)
        if isinstance(self._private_key, rsa.RSAPrivateKey):
            return self._private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self._private_key.sign(data, ec.ECDSA(hashes.SHA256()))

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        """:meth:`sign_raw`, inline: a signature costs less than a hop to a thread.

        A dry run (pyHanko sizing the signature placeholder) returns zeros of the
        largest length a real signature can have.
        """
        if dry_run:
            _check_digest(digest_algorithm)
            return self._placeholder
        return self.sign_raw(data, digest_algorithm)


@dataclass(frozen=True)
class Pkcs12KeySource:
    """A key, certificate and chain in a PKCS#12 file, loaded once and signed in memory."""

    path: Path
    """The PKCS#12 file."""
    _: KW_ONLY
    passphrase: bytes | None = field(default=None, repr=False)
    """Its passphrase; give this or :attr:`passphrase_file`."""
    passphrase_file: Path | None = None
    """A file holding the passphrase (one trailing newline is ignored)."""
    _opened: _Once[SigningCredential] = field(
        default_factory=_Once, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        _exactly_one(self.passphrase, self.passphrase_file, "passphrase", "passphrase_file")

    def credential(self) -> SigningCredential:
        """The signer; the file is read and decrypted on the first call only."""
        return self._opened.get(self._open)

    def close(self) -> None:
        """Forget the key; a later :meth:`credential` reads the file again."""
        self._opened.take()

    def _open(self) -> SigningCredential:
        passphrase = self.passphrase
        if passphrase is None:
            assert self.passphrase_file is not None
            passphrase = _read_secret(self.passphrase_file, "passphrase file")
        private_key, certificate, chain = load_pkcs12(self.path, passphrase)
        signer = LoadedKeySigner.create(
            certificate=certificate, private_key=private_key, chain=chain
        )
        return SigningCredential(signer=signer, certificate=certificate, chain=chain)


@dataclass(frozen=True)
class Pkcs11KeySource:
    """A private key on a PKCS#11 token, used through one logged-in session per process.

    The certificate comes from the token (same label or ID as the key) unless
    :attr:`certificate_file` names a PEM file. Sources naming the same module and token
    share one session, because PKCS#11 logs in the application, not a session (C_Login):
    a second login fails and any logout ends them all. Open it after forking.
    """

    module_path: Path
    """The PKCS#11 module (shared library), e.g. ``/usr/lib/softhsm/libsofthsm2.so``."""
    _: KW_ONLY
    token_label: str
    """Label of the token holding the key."""
    key_label: str | None = None
    """CKA_LABEL of the private key; give this, :attr:`key_id`, or both."""
    key_id: bytes | None = None
    """CKA_ID of the private key."""
    pin: str | None = field(default=None, repr=False)
    """The user PIN; give this or :attr:`pin_file`."""
    pin_file: Path | None = None
    """A file holding the user PIN (one trailing newline is ignored)."""
    certificate_file: Path | None = None
    """PEM certificate of the key, when it is not on the token."""
    chain_file: Path | None = None
    """PEM CA certificates above the key's certificate, nearest first."""
    _opened: _Once[tuple[SigningCredential, TokenSession]] = field(
        default_factory=_Once, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        _exactly_one(self.pin, self.pin_file, "pin", "pin_file")
        if self.key_label is None and self.key_id is None:
            raise KeySourceError("a PKCS#11 key source needs key_label or key_id")

    def credential(self) -> SigningCredential:
        """The signer; the token session is opened and the key found on the first call."""
        return self._opened.get(self._open)[0]

    def close(self) -> None:
        """Stop using the token; the last source of a token logs out and closes the session."""
        opened = self._opened.take()
        if opened is not None:
            SESSIONS.release(opened[1])

    def _open(self) -> tuple[SigningCredential, TokenSession]:
        pin = self.pin
        if pin is None:
            assert self.pin_file is not None
            pin = _read_pin(self.pin_file)
        chain = tuple(_read_certificates(self.chain_file)) if self.chain_file else ()
        given = _read_certificates(self.certificate_file)[0] if self.certificate_file else None
        token = SESSIONS.acquire(os.fspath(self.module_path), self.token_label, pin)
        try:
            signer = TokenSigner(
                token,
                key_label=self.key_label,
                key_id=self.key_id,
                certificate=to_asn1(given) if given else None,
                chain=[to_asn1(c) for c in chain],
            )
            certificate = signer.load()
            signer.use_mechanism(signature_mechanism(certificate))
            signer.check_key()
        except BaseException:
            SESSIONS.release(token)
            raise
        return SigningCredential(signer=signer, certificate=certificate, chain=chain), token


@dataclass(frozen=True, kw_only=True)
class KeySourceConfig:
    """Settings naming a key source; fields of the other kind must stay unset."""

    kind: Literal["pkcs12", "pkcs11"]
    """``pkcs12``: a PKCS#12 file; ``pkcs11``: a key on a PKCS#11 token."""
    path: Path | None = None
    """pkcs12: the PKCS#12 file."""
    passphrase: bytes | None = field(default=None, repr=False)
    """pkcs12: its passphrase (or :attr:`passphrase_file`)."""
    passphrase_file: Path | None = None
    """pkcs12: a file holding the passphrase."""
    module_path: Path | None = None
    """pkcs11: the PKCS#11 module."""
    token_label: str | None = None
    """pkcs11: the token label."""
    key_label: str | None = None
    """pkcs11: CKA_LABEL of the key (and, by default, of its certificate)."""
    key_id: bytes | None = None
    """pkcs11: CKA_ID of the key (and, by default, of its certificate)."""
    pin: str | None = field(default=None, repr=False)
    """pkcs11: the user PIN (or :attr:`pin_file`)."""
    pin_file: Path | None = None
    """pkcs11: a file holding the user PIN."""
    certificate_file: Path | None = None
    """pkcs11: PEM certificate, when it is not on the token."""
    chain_file: Path | None = None
    """pkcs11: PEM CA certificates above the key's certificate."""

    def __post_init__(self) -> None:
        if self.kind not in ("pkcs12", "pkcs11"):
            raise KeySourceError(f"unknown key source kind {self.kind!r}")
        pkcs12 = self.kind == "pkcs12"
        other, needed = (_PKCS11, ("path",)) if pkcs12 else (_PKCS12, _PKCS11[:2])
        stray = [name for name in other if getattr(self, name) is not None]
        if stray:
            raise KeySourceError(f"a {self.kind} key source does not take {', '.join(stray)}")
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise KeySourceError(f"a {self.kind} key source needs {' and '.join(missing)}")


_PKCS12 = ("path", "passphrase", "passphrase_file")
_PKCS11 = (
    *("module_path", "token_label", "key_label", "key_id"),
    *("pin", "pin_file", "certificate_file", "chain_file"),
)


def key_source_from_config(config: KeySourceConfig) -> KeySource:
    """The key source ``config`` names; nothing is read or opened until its first use."""
    if config.kind == "pkcs12":
        assert config.path is not None
        return Pkcs12KeySource(
            config.path, passphrase=config.passphrase, passphrase_file=config.passphrase_file
        )
    assert config.module_path is not None and config.token_label is not None
    return Pkcs11KeySource(
        config.module_path,
        token_label=config.token_label,
        key_label=config.key_label,
        key_id=config.key_id,
        pin=config.pin,
        pin_file=config.pin_file,
        certificate_file=config.certificate_file,
        chain_file=config.chain_file,
    )


def signature_mechanism(certificate: x509.Certificate) -> algos.SignedDigestAlgorithm:
    """sha256WithRSAEncryption or ecdsa-with-SHA256 for the key of ``certificate``."""
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        return algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"})
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
    raise KeySourceError("the key must be RSA (2048 bits or more) or ECDSA on P-256")


def _check_digest(digest_algorithm: str) -> None:
    if digest_algorithm.lower() != DIGEST_ALGORITHM:
        raise SigningError(f"key sources sign with SHA-256 only, not {digest_algorithm}")


def _exactly_one(first: object, second: object, first_name: str, second_name: str) -> None:
    if (first is None) == (second is None):
        raise KeySourceError(f"give exactly one of {first_name} and {second_name}")


def _read_secret(path: Path, what: str) -> bytes:
    try:
        secret = Path(path).read_bytes()
    except OSError as exc:
        raise KeySourceError(f"cannot read the {what} {Path(path).name}") from exc
    secret = secret.removesuffix(b"\n").removesuffix(b"\r")
    if not secret:
        raise KeySourceError(f"the {what} {Path(path).name} is empty")
    return secret


def _read_pin(path: Path) -> str:
    try:
        return _read_secret(path, "PIN file").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KeySourceError(f"the PIN file {Path(path).name} is not UTF-8") from exc


def _read_certificates(path: Path) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise KeySourceError(f"cannot read certificates from {Path(path).name}") from exc
    return certificates

