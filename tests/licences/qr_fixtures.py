"""QR-signing keys of the run's development PKI, and claims to sign with them.

Load with ``pytest_plugins = ["tests.licences.qr_fixtures"]``. The keys are certified by
the PKI of ``tests/conftest.py``'s ``shared_pki``; each is made once per run. The values
they use are in :mod:`tests.licences.qr_values`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dangan.config import Settings
from dangan.licences.qr_key import QrSigningKey, create_qr_key
from dangan.licences.token import QrClaims
from dangan.licences.trust_list import TrustedKey, TrustList
from dangan.signing.pki import DevPki
from dangan.signing.service import open_dev_pki
from tests.licences.qr_values import (
    HOLDER,
    IDENTIFIER,
    ISSUER_USCC,
    PDF_SHA256,
    PUBLIC_URL,
    QR_PASSPHRASE,
)


@pytest.fixture(scope="session")
def qr_now() -> datetime:
    """The run's "now", whole seconds (the PKI issues certificates at the real time)."""
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="session")
def qr_pki(shared_pki: tuple[Path, Path], qr_now: datetime) -> DevPki:
    """The run's development PKI."""
    pki_dir, passphrase_file = shared_pki
    settings = Settings(
        data_dir=pki_dir.parent, pki_dir=pki_dir, pki_passphrase_file=passphrase_file
    )
    return open_dev_pki(settings, now=qr_now)


@pytest.fixture(scope="session")
def qr_key(
    qr_pki: DevPki, tmp_path_factory: pytest.TempPathFactory, qr_now: datetime
) -> QrSigningKey:
    """The active QR-signing key."""
    directory = tmp_path_factory.mktemp("pki") / "qr-signing"
    return create_qr_key(qr_pki, directory, QR_PASSPHRASE, now=qr_now)


@pytest.fixture(scope="session")
def old_qr_key(
    qr_pki: DevPki, tmp_path_factory: pytest.TempPathFactory, qr_now: datetime
) -> QrSigningKey:
    """A key certified four years ago: valid from then until about a year ago."""
    directory = tmp_path_factory.mktemp("old-qr-signing")
    return create_qr_key(qr_pki, directory, QR_PASSPHRASE, now=qr_now - timedelta(days=4 * 365))


@pytest.fixture(scope="session")
def stranger_key(
    qr_pki: DevPki, tmp_path_factory: pytest.TempPathFactory, qr_now: datetime
) -> QrSigningKey:
    """A QR-signing key of the same PKI that no trust list names."""
    directory = tmp_path_factory.mktemp("stranger-qr-signing")
    return create_qr_key(qr_pki, directory, QR_PASSPHRASE, now=qr_now)


@pytest.fixture(scope="session")
def trust(qr_key: QrSigningKey, old_qr_key: QrSigningKey, qr_now: datetime) -> TrustList:
    """The service's trust list: the active key, and the old one retired."""
    return TrustList(
        issuer=PUBLIC_URL,
        generated_at=qr_now,
        keys=(
            TrustedKey.from_certificate(qr_key.certificate, status="active"),
            TrustedKey.from_certificate(old_qr_key.certificate, status="retired"),
        ),
    )


@pytest.fixture
def make_claims(qr_now: datetime) -> Callable[..., QrClaims]:
    """Claims of the realistic licence, issued now and ending in ten years; override any."""
    claims = QrClaims(
        issuer=ISSUER_USCC,
        issued_at=qr_now,
        expires_at=qr_now + timedelta(days=3652),
        licence=str(IDENTIFIER),
        type_code=IDENTIFIER.type_code,
        holder=HOLDER,
        pdf_sha256=PDF_SHA256,
    )
    return lambda **changes: replace(claims, **changes)
