"""A development PKI: a root CA, an issuing CA, and TSA, seal and signing certificates.

Every subject says "DEVELOPMENT — NOT TRUSTED" (in OU, and in the CN of both CAs), so
nothing made here passes for a production credential. The CAs use ECDSA P-256; end
entities RSA-2048 or ECDSA P-256. Files in the PKI directory:

    root-ca.pem, root-ca.key.pem            self-signed root CA, 20 years
    issuing-ca.pem, issuing-ca.key.pem      issuing CA, pathLenConstraint 0, 10 years
    chain.pem                               issuing CA then root CA
    tsa.pem, tsa.key.pem, tsa.p12           the TSA (EKU id-kp-timeStamping, critical)
    <kind>-<serial hex>.pem/.key.pem/.p12   certificates issued later (seal, signing, tsa, qr)

One passphrase protects every private key: ``*.key.pem`` files are encrypted PKCS#8 and
``*.p12`` files PKCS#12 with PBES2/AES-256 (see :mod:`dangan.signing._files`). Key files
are mode 0600. :meth:`DevPki.create` is idempotent: files that exist are loaded and checked
to form one chain. Two processes creating the same directory at once is not supported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization

from dangan.signing._files import (
    certificates_pem,
    pkcs12_bundle,
    private_key_pem,
    read_certificate,
    read_pkcs12,
    read_private_key,
    write_file,
)
from dangan.signing._x509 import (
    DEV_ORGANISATION,
    Issuer,
    KeyType,
    PrivateKey,
    ca_extensions,
    ca_name,
    checked_name,
    end_entity_extensions,
    end_entity_name,
    generate_key,
    key_type_of,
    sign_certificate,
    utc,
    years,
)
from dangan.signing.errors import DevPkiError

__all__ = ["DevPki", "IssuedCredential", "KeyType", "PrivateKey", "Revocation", "load_pkcs12"]

ROOT_LIFETIME = years(20)
ISSUING_LIFETIME = years(10)
TSA_LIFETIME = years(5)
END_ENTITY_LIFETIME = years(3)
#: thisUpdate to nextUpdate of every CRL (RFC 5280 §5.1.2.5).
CRL_LIFETIME = timedelta(days=7)
_CA_KEY_TYPE: KeyType = "p256"
_TSA_NAME = "dangan development TSA"
_QR_SIGNING_NAME = "dangan development QR signing"
#: keyUsage of the QR-signing certificate: digitalSignature only (RFC 5280 §4.2.1.3).
_QR_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: A revoked certificate: serial number, revocation date, and reason (None: no reason code).
Revocation = tuple[int, datetime, x509.ReasonFlags | None]


@dataclass(frozen=True)
class IssuedCredential:
    """An end-entity certificate with its key, chain and PKCS#12 bundle."""

    certificate: x509.Certificate
    """The end-entity certificate."""
    private_key: PrivateKey = field(repr=False)
    """Its private key."""
    chain: tuple[x509.Certificate, ...]
    """The CA certificates above it, nearest first: issuing CA, then root CA."""
    pkcs12_path: Path
    """PKCS#12 bundle of key, certificate and chain, protected by the PKI's passphrase."""


@dataclass(frozen=True, kw_only=True)
class DevPki:
    """A development PKI kept in one directory; build it with :meth:`create`."""

    directory: Path
    """Where the certificate and key files live."""
    crl_url: str
    """CRL distribution point written into every end-entity certificate issued."""
    root: x509.Certificate
    """The self-signed root CA certificate (the trust anchor)."""
    issuing: x509.Certificate
    """The issuing CA certificate, signed by the root."""
    issuing_key: PrivateKey = field(repr=False)
    """The issuing CA's key, which signs end-entity certificates and CRLs."""
    tsa: IssuedCredential
    """The Time-Stamp Authority's credential."""
    passphrase: bytes = field(repr=False)
    """Protects every private key file and PKCS#12 bundle."""

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        now: datetime,
        crl_url: str,
        passphrase: bytes,
        tsa_key_type: KeyType = "rsa2048",
    ) -> DevPki:
        """Load the PKI in ``directory``, making whatever files are missing.

        Raises :class:`DevPkiError` when existing files do not form one chain, when a
        certificate lacks its key, or when the TSA key is not of ``tsa_key_type``.
        """
        utc(now)  # refuse a naive "now" even when every file already exists
        if not passphrase:
            raise ValueError("the development PKI needs a non-empty passphrase")
        directory = Path(directory)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        store = _Store(directory, passphrase)
        root_key, root = store.load_or_make("root-ca", lambda: _make_root(now))
        root_issuer = Issuer.from_certificate(root, root_key)
        issuing_key, issuing = store.load_or_make(
            "issuing-ca", lambda: _make_issuing(root_issuer, now)
        )
        issuer = Issuer.from_certificate(issuing, issuing_key)
        tsa_key, tsa = store.load_or_make(
            "tsa",
            lambda: _make_end_entity(issuer, _tsa_subject(), tsa_key_type, now, crl_url, tsa=True),
        )
        _check_chain([(root, root), (issuing, root), (tsa, issuing)])
        if key_type_of(tsa_key) != tsa_key_type:
            raise DevPkiError(f"the TSA key in {directory} is not of type {tsa_key_type}")
        chain = (issuing, root)
        write_file(directory / "chain.pem", certificates_pem(chain), private=False)
        return cls(
            directory=directory,
            crl_url=crl_url,
            root=root,
            issuing=issuing,
            issuing_key=issuing_key,
            tsa=store.credential("tsa", tsa_key, tsa, chain, overwrite_pkcs12=False),
            passphrase=passphrase,
        )

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The CA certificates, nearest first: issuing CA, then root CA."""
        return (self.issuing, self.root)

    def issue_seal_certificate(
        self, *, organisation: str, key_type: KeyType, now: datetime
    ) -> IssuedCredential:
        """An organisation (seal) certificate; ``organisation`` may be Chinese (UTF8String)."""
        organisation = checked_name(organisation, "organisation")
        subject = end_entity_name(organisation, organisation)
        return self._issue("seal", subject, key_type, now, tsa=False)

    def issue_signing_certificate(
        self, *, person: str, organisation: str, key_type: KeyType, now: datetime
    ) -> IssuedCredential:
        """A personal signing certificate of ``person`` working for ``organisation``."""
        subject = end_entity_name(
            checked_name(person, "person"), checked_name(organisation, "organisation")
        )
        return self._issue("signing", subject, key_type, now, tsa=False)

    def issue_tsa_certificate(self, *, key_type: KeyType, now: datetime) -> IssuedCredential:
        """Another TSA certificate, e.g. to run a TSA with the other key type."""
        return self._issue("tsa", _tsa_subject(), key_type, now, tsa=True)

    def issue_qr_signing_certificate(self, *, now: datetime) -> IssuedCredential:
        """A P-256 certificate for the key signing licence QR tokens (ES256).

        Its keyUsage is digitalSignature alone: a QR token is no commitment of a signer
        (RFC 5280 §4.2.1.3), and the key signs nothing else.
        """
        subject = end_entity_name(_QR_SIGNING_NAME, DEV_ORGANISATION)
        return self._issue("qr", subject, "p256", now, tsa=False, key_usage=_QR_KEY_USAGE)

    def crl(self, *, now: datetime, revoked: Sequence[Revocation] = ()) -> bytes:
        """A DER CRL (RFC 5280 §5) of the issuing CA, valid for :data:`CRL_LIFETIME`.

        The CRL number (§5.2.3) is thisUpdate in microseconds since 1970, so CRLs made
        later carry larger numbers without any counter file to share.
        """
        this_update = utc(now)
        issuer = Issuer.from_certificate(self.issuing, self.issuing_key)
        aki = x509.AuthorityKeyIdentifier(issuer.key_identifier, None, None)
        number = (this_update - _EPOCH) // timedelta(microseconds=1)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.issuing.subject)
            .last_update(this_update)
            .next_update(this_update + CRL_LIFETIME)
            .add_extension(x509.CRLNumber(number), False)
            .add_extension(aki, False)
        )
        for serial, revoked_at, reason in revoked:
            builder = builder.add_revoked_certificate(_revoked(serial, revoked_at, reason))
        crl = builder.sign(self.issuing_key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.DER)

    def _issue(
        self,
        kind: str,
        subject: x509.Name,
        key_type: KeyType,
        now: datetime,
        *,
        tsa: bool,
        key_usage: x509.KeyUsage | None = None,
    ) -> IssuedCredential:
        issuer = Issuer.from_certificate(self.issuing, self.issuing_key)
        key, certificate = _make_end_entity(
            issuer, subject, key_type, now, self.crl_url, tsa=tsa, key_usage=key_usage
        )
        stem = f"{kind}-{certificate.serial_number:032x}"
        store = _Store(self.directory, self.passphrase)
        store.save(stem, key, certificate)
        return store.credential(stem, key, certificate, self.chain, overwrite_pkcs12=True)


def load_pkcs12(
    path: Path, passphrase: bytes
) -> tuple[PrivateKey, x509.Certificate, tuple[x509.Certificate, ...]]:
    """Private key, certificate and chain of a PKCS#12 key source (RFC 7292).

    Raises :class:`~dangan.signing.errors.KeySourceError` for a missing or damaged file, a
    wrong passphrase (without saying which), or a key that is not RSA or ECDSA.
    """
    return read_pkcs12(Path(path), passphrase)


@dataclass(frozen=True)
class _Store:
    """The PKI directory: certificate ``<stem>.pem``, key ``<stem>.key.pem``, ``<stem>.p12``."""

    directory: Path
    passphrase: bytes = field(repr=False)

    def load_or_make(
        self, stem: str, make: Callable[[], tuple[PrivateKey, x509.Certificate]]
    ) -> tuple[PrivateKey, x509.Certificate]:
        """Load the key and certificate ``stem``, or make and save them if both are absent."""
        cert_path, key_path = self._paths(stem)
        if cert_path.exists() and key_path.exists():
            key = read_private_key(key_path, self.passphrase)
            certificate = read_certificate(cert_path)
            if certificate.public_key() != key.public_key():
                raise DevPkiError(f"{cert_path.name} does not match {key_path.name}")
            return key, certificate
        if cert_path.exists() or key_path.exists():
            raise DevPkiError(f"{stem}: a certificate or key file is missing in {self.directory}")
        key, certificate = make()
        self.save(stem, key, certificate)
        return key, certificate

    def save(self, stem: str, key: PrivateKey, certificate: x509.Certificate) -> None:
        """Write the key first, so a certificate file never exists without its key."""
        cert_path, key_path = self._paths(stem)
        write_file(key_path, private_key_pem(key, self.passphrase), private=True)
        write_file(cert_path, certificates_pem([certificate]), private=False)

    def credential(
        self,
        stem: str,
        key: PrivateKey,
        certificate: x509.Certificate,
        chain: tuple[x509.Certificate, ...],
        *,
        overwrite_pkcs12: bool,
    ) -> IssuedCredential:
        """The credential ``stem``, writing its PKCS#12 bundle unless one is kept."""
        path = self.directory / f"{stem}.p12"
        if overwrite_pkcs12 or not path.exists():
            common_name = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
            bundle = pkcs12_bundle(
                friendly_name=str(common_name[0].value) if common_name else stem,
                key=key,
                certificate=certificate,
                chain=chain,
                passphrase=self.passphrase,
            )
            write_file(path, bundle, private=True)
        return IssuedCredential(
            certificate=certificate, private_key=key, chain=chain, pkcs12_path=path
        )

    def _paths(self, stem: str) -> tuple[Path, Path]:
        return self.directory / f"{stem}.pem", self.directory / f"{stem}.key.pem"


def _make_root(now: datetime) -> tuple[PrivateKey, x509.Certificate]:
    key = generate_key(_CA_KEY_TYPE)
    subject = ca_name("dangan root CA")
    certificate = sign_certificate(
        subject=subject,
        public_key=key.public_key(),
        issuer=Issuer.self_signing(subject, key),
        now=now,
        lifetime=ROOT_LIFETIME,
        extensions=ca_extensions(path_length=None),
    )
    return key, certificate


def _make_issuing(root: Issuer, now: datetime) -> tuple[PrivateKey, x509.Certificate]:
    # pathLenConstraint 0: the issuing CA may sign only end-entity certificates
    # (RFC 5280 §4.2.1.9).
    key = generate_key(_CA_KEY_TYPE)
    certificate = sign_certificate(
        subject=ca_name("dangan issuing CA"),
        public_key=key.public_key(),
        issuer=root,
        now=now,
        lifetime=ISSUING_LIFETIME,
        extensions=ca_extensions(path_length=0),
    )
    return key, certificate


def _make_end_entity(
    issuer: Issuer,
    subject: x509.Name,
    key_type: KeyType,
    now: datetime,
    crl_url: str,
    *,
    tsa: bool,
    key_usage: x509.KeyUsage | None = None,
) -> tuple[PrivateKey, x509.Certificate]:
    key = generate_key(key_type)
    extensions = end_entity_extensions(crl_url=crl_url, timestamping=tsa)
    if key_usage is not None:  # replaces the profile's keyUsage, still critical
        extensions = [
            (key_usage, True) if isinstance(extension, x509.KeyUsage) else (extension, critical)
            for extension, critical in extensions
        ]
    certificate = sign_certificate(
        subject=subject,
        public_key=key.public_key(),
        issuer=issuer,
        now=now,
        lifetime=TSA_LIFETIME if tsa else END_ENTITY_LIFETIME,
        extensions=extensions,
    )
    return key, certificate


def _tsa_subject() -> x509.Name:
    return end_entity_name(_TSA_NAME, DEV_ORGANISATION)


def _check_chain(links: Sequence[tuple[x509.Certificate, x509.Certificate]]) -> None:
    """Each (certificate, issuer) pair must verify: files from different runs must not mix."""
    for certificate, issuer in links:
        try:
            certificate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise DevPkiError(
                "the development PKI files do not form one chain; remove the directory "
                "to start over"
            ) from exc


def _revoked(
    serial: int, revoked_at: datetime, reason: x509.ReasonFlags | None
) -> x509.RevokedCertificate:
    builder = x509.RevokedCertificateBuilder().serial_number(serial)
    builder = builder.revocation_date(utc(revoked_at))
    # RFC 5280 §5.3.1: the reason code "unspecified" SHOULD be absent.
    if reason is not None and reason is not x509.ReasonFlags.unspecified:
        builder = builder.add_extension(x509.CRLReason(reason), False)
    return builder.build()
