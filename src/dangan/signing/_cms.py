"""Private: CMS SignedData (RFC 5652) with one signer and encapsulated content.

The signer uses SHA-256 throughout: RSA PKCS#1 v1.5 (sha256WithRSAEncryption, RFC 5754
§3.2, NULL parameters) or ECDSA P-256 (ecdsa-with-SHA256, RFC 5758 §3.2, no parameters).
Signed attributes are content-type, message-digest, signing-time (RFC 5652 §11.1-11.3)
and signingCertificateV2 (RFC 5035 §5.4, the ESSCertIDv2 profile of RFC 5816 §2.2.1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from dangan.signing._x509 import to_asn1

#: Keys a :class:`Signer` can use.
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

# RFC 5754 §2 wants SHA-2 parameters absent; asn1crypto writes NULL, which §2 requires
# every implementation to accept as well.
_SHA256 = {"algorithm": "sha256"}


@dataclass(frozen=True, kw_only=True)
class Signer:
    """A certificate and key that sign CMS SignedData; build it with :meth:`create`."""

    certificate: asn1_x509.Certificate
    """The signer's certificate, identified by issuer and serial number in SignerInfo."""
    private_key: SigningKey = field(repr=False)
    """The key of :attr:`certificate`."""
    certificates: tuple[asn1_x509.Certificate, ...]
    """What a token carries when certificates are asked for: the signer's, then its chain."""
    signing_certificate_v2: tsp.SigningCertificateV2
    """The signingCertificateV2 attribute value binding the signature to the certificate."""

    @classmethod
    def create(
        cls,
        *,
        certificate: x509.Certificate,
        private_key: SigningKey,
        chain: tuple[x509.Certificate, ...],
    ) -> Signer:
        """A signer for ``certificate``; raises TypeError or ValueError for an unusable key."""
        _check_key(private_key, certificate)
        asn1_certificate = to_asn1(certificate)
        return cls(
            certificate=asn1_certificate,
            private_key=private_key,
            certificates=(asn1_certificate, *(to_asn1(c) for c in chain)),
            signing_certificate_v2=_signing_certificate_v2(asn1_certificate),
        )

    def subject_general_name(self) -> asn1_x509.GeneralName:
        """The certificate's subject as a directoryName GeneralName."""
        return asn1_x509.GeneralName({"directory_name": self.certificate.subject})

    def sign(
        self,
        *,
        content_type: str,
        content: bytes,
        signing_time: datetime,
        include_certificates: bool,
    ) -> cms.ContentInfo:
        """ContentInfo holding SignedData that encapsulates ``content`` (RFC 5652 §5)."""
        attributes = self._signed_attributes(content_type, content, signing_time)
        # RFC 5652 §5.4: the signature covers the DER of the SET OF attributes with its
        # universal SET tag; asn1crypto sorts SET OF members as DER requires.
        signature = self._signature(attributes.dump())
        signer_info = _frozen(
            cms.SignerInfo,
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {
                        "issuer_and_serial_number": {
                            "issuer": self.certificate.issuer,
                            "serial_number": self.certificate.serial_number,
                        }
                    }
                ),
                "digest_algorithm": _SHA256,
                "signed_attrs": attributes,
                "signature_algorithm": self._signature_algorithm(),
                "signature": signature,
            },
        )
        signed_data: dict[str, object] = {
            # §5.1: version 3 because the eContentType is not id-data.
            "version": "v3",
            "digest_algorithms": [_SHA256],
            "encap_content_info": {
                "content_type": content_type,
                "content": cms.ParsableOctetString(content),
            },
            "signer_infos": [signer_info],
        }
        if include_certificates:
            signed_data["certificates"] = [
                cms.CertificateChoices({"certificate": c}) for c in self.certificates
            ]
        return cms.ContentInfo({"content_type": "signed_data", "content": signed_data})

    def _signed_attributes(
        self, content_type: str, content: bytes, signing_time: datetime
    ) -> cms.CMSAttributes:
        return _frozen(
            cms.CMSAttributes,
            [
                {"type": "content_type", "values": [content_type]},
                {"type": "message_digest", "values": [hashlib.sha256(content).digest()]},
                {"type": "signing_time", "values": [_cms_time(signing_time)]},
                {"type": "signing_certificate_v2", "values": [self.signing_certificate_v2]},
            ],
        )

    def _signature(self, data: bytes) -> bytes:
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        # An ECDSA signature is DER Ecdsa-Sig-Value, as CMS carries it (RFC 5753 §7.2).
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))

    def _signature_algorithm(self) -> dict[str, str]:
        if isinstance(self.private_key, rsa.RSAPrivateKey):
            return {"algorithm": "sha256_rsa"}
        return {"algorithm": "sha256_ecdsa"}


def _check_key(private_key: object, certificate: x509.Certificate) -> None:
    if isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < 2048:
            raise ValueError("RSA keys must have at least 2048 bits")
    elif isinstance(private_key, ec.EllipticCurvePrivateKey):
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("ECDSA keys must be on P-256, to pair with SHA-256")
    else:
        raise TypeError("the key must be RSA or ECDSA")
    if certificate.public_key() != private_key.public_key():
        raise ValueError("the private key does not belong to the certificate")



def _signing_certificate_v2(certificate: asn1_x509.Certificate) -> tsp.SigningCertificateV2:
    # RFC 5035 §5.4.1 ESSCertIDv2: hashAlgorithm keeps its DEFAULT (SHA-256) and so is
    # omitted; issuerSerial names the certificate unambiguously.
    return _frozen(
        tsp.SigningCertificateV2,
        {
            "certs": [
                {
                    "cert_hash": hashlib.sha256(certificate.dump()).digest(),
                    "issuer_serial": {
                        "issuer": [asn1_x509.GeneralName({"directory_name": certificate.issuer})],
                        "serial_number": certificate.serial_number,
                    },
                }
            ]
        },
    )


def _frozen(kind: type[core.Asn1Value], value: object) -> core.Asn1Value:
    """``kind(value)`` encoded once and decoded again.

    asn1crypto treats a value built from Python data as mutated for ever and re-encodes
    it, and everything inside it, on every dump; a decoded value keeps its DER. Without
    this, nesting makes each token cost thousands of re-encodings.
    """
    return kind.load(kind(value).dump())


def _cms_time(moment: datetime) -> cms.Time:
    # RFC 5652 §11.3: UTCTime for 1950-2049, GeneralizedTime otherwise, whole seconds.
    moment = moment.astimezone(UTC).replace(microsecond=0)
    if 1950 <= moment.year <= 2049:
        return cms.Time({"utc_time": core.UTCTime(moment)})
    return cms.Time({"generalized_time": core.GeneralizedTime(moment)})
