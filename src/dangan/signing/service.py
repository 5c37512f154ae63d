"""The signing services of one deployment: its development PKI and its time-stamp authority.

``dangan init`` makes the PKI (and a random passphrase for its key files); every process
then loads it once. Production deployments will configure their own CA chain and TSA.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from threading import Lock

from dangan.clock import Clock
from dangan.config import Settings
from dangan.signing.errors import KeySourceError
from dangan.signing.pki import DevPki
from dangan.signing.tsa import TimestampAuthority

#: How long a generated CRL is reused before a fresh one is signed.
CRL_REFRESH = timedelta(hours=1)


def crl_url(settings: Settings) -> str:
    """The CRL distribution point written into the development PKI's certificates."""
    return f"{settings.effective_public_url}/pki/issuing-ca.crl"


def read_or_make_passphrase(path: Path, *, create: bool) -> bytes:
    """The PKI passphrase from ``path``; with ``create``, a random one is made when missing."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        if not create:
            raise KeySourceError(f"no PKI passphrase at {path}: run 'dangan init' first") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    passphrase = secrets.token_urlsafe(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, passphrase + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return passphrase


def open_dev_pki(settings: Settings, *, now: datetime, create: bool = False) -> DevPki:
    """The deployment's development PKI (made on first use when ``create``)."""
    directory = settings.effective_pki_dir
    if not create and not (directory / "root-ca.pem").exists():
        raise KeySourceError(f"no development PKI in {directory}: run 'dangan init' first")
    passphrase = read_or_make_passphrase(settings.effective_pki_passphrase_file, create=create)
    return DevPki.create(directory, now=now, crl_url=crl_url(settings), passphrase=passphrase)


@dataclass
class SigningServices:
    """The PKI and the TSA, loaded once per process."""

    pki: DevPki
    """The development PKI."""
    tsa: TimestampAuthority
    """dangan's own RFC 3161 TSA (``POST /tsa``)."""
    clock: Clock
    """Source of "now"."""
    _crl: tuple[datetime, bytes] | None = field(default=None, repr=False)
    _crl_lock: Lock = field(default_factory=Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> SigningServices:
        """Load the PKI made by ``dangan init`` and start the TSA on its TSA credential."""
        pki = open_dev_pki(settings, now=clock())
        tsa = TimestampAuthority.from_credential(
            pki.tsa,
            policy_oid=settings.tsa_policy_oid,
            accuracy_ms=settings.tsa_accuracy_ms,
            clock=clock,
        )
        return cls(pki=pki, tsa=tsa, clock=clock)

    def current_crl(self) -> bytes:
        """The issuing CA's CRL (DER), re-signed every :data:`CRL_REFRESH`."""
        now = self.clock()
        with self._crl_lock:
            if self._crl is None or now - self._crl[0] >= CRL_REFRESH:
                self._crl = (now, self.pki.crl(now=now))
            return self._crl[1]
