"""What signatures are validated against: trust roots and revocation data.

The service trusts its own development PKI's root and hands the issuing CA's current CRL
to every validation (:func:`deployment_trust`); ``dangan validate`` runs with no server
and trusts the data dir's root plus any PEM files named on the command line
(:func:`local_trust`). Nothing is fetched from the network either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dangan.config import Settings
from dangan.errors import InvalidRequest
from dangan.signing.service import SigningServices

__all__ = ["TrustAnchors", "deployment_trust", "local_trust", "read_trust_roots"]

#: The root certificate ``dangan init`` writes into the PKI directory.
ROOT_FILE = "root-ca.pem"


@dataclass(frozen=True)
class TrustAnchors:
    """The inputs of a validation that decide whom to trust."""

    roots: tuple[x509.Certificate, ...]
    """The only trust anchors; a chain must end in one of them."""
    crls: tuple[bytes, ...] = ()
    """DER CRLs added to those in the PDF's DSS."""


def deployment_trust(signing: SigningServices) -> TrustAnchors:
    """The service's trust: its development PKI's root and the issuing CA's current CRL."""
    return TrustAnchors(roots=(signing.pki.root,), crls=(signing.current_crl(),))


def read_trust_roots(path: Path) -> tuple[x509.Certificate, ...]:
    """Every certificate in the PEM file ``path``; :class:`InvalidRequest` if it holds none."""
    try:
        certificates = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InvalidRequest(f"{path} is not a readable PEM certificate file") from exc
    return tuple(certificates)


def local_trust(settings: Settings, extra_roots: Sequence[Path] = ()) -> TrustAnchors:
    """The trust of an offline validation: the data dir's development root (when
    ``dangan init`` made one) and the certificates in ``extra_roots`` (PEM files)."""
    found: list[x509.Certificate] = []
    dev_root = settings.effective_pki_dir / ROOT_FILE
    if dev_root.is_file():
        found.extend(read_trust_roots(dev_root))
    for path in extra_roots:
        found.extend(read_trust_roots(path))
    return TrustAnchors(roots=_unique(found))


def _unique(certificates: Iterable[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    seen: dict[bytes, x509.Certificate] = {}
    for certificate in certificates:
        seen.setdefault(certificate.public_bytes(serialization.Encoding.DER), certificate)
    return tuple(seen.values())
