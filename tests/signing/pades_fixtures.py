"""Shared fixtures of the PAdES tests, loaded by their modules through ``pytest_plugins``.

Credentials come from the session's development PKI (``tests/signing/conftest.py``); the
TSA runs on the real clock because openssl checks genTime against the machine's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from pyhanko_certvalidator import ValidationContext

from dangan.clock import system_clock
from dangan.signing.pades import InProcessTimeStamper, LoadedKeySigner
from dangan.signing.pki import DevPki, IssuedCredential
from dangan.signing.tsa import TimestampAuthority
from tests.signing.conftest import write_pem
from tests.signing.pades_tools import POLICY, asn1, nss_database, one_page_pdf


@pytest.fixture(scope="module")
def credentials(pki: DevPki, now: datetime) -> dict[str, IssuedCredential]:
    """A personal RSA-2048 signing certificate and a P-256 organisation seal certificate."""
    return {
        "rsa2048": pki.issue_signing_certificate(
            person="张伟", organisation="北京市朝阳区市场监督管理局", key_type="rsa2048", now=now
        ),
        "p256": pki.issue_seal_certificate(
            organisation="北京市朝阳区市场监督管理局", key_type="p256", now=now
        ),
    }


@pytest.fixture(scope="module")
def signers(credentials: dict[str, IssuedCredential]) -> dict[str, LoadedKeySigner]:
    return {kind: LoadedKeySigner.from_credential(c) for kind, c in credentials.items()}


@pytest.fixture(scope="module")
def authority(pki: DevPki) -> TimestampAuthority:
    """dangan's TSA on the real clock: openssl checks genTime against the machine's."""
    return TimestampAuthority.from_credential(
        pki.tsa, policy_oid=POLICY, accuracy_ms=1000, clock=system_clock
    )


@pytest.fixture(scope="module")
def timestamper(authority: TimestampAuthority) -> InProcessTimeStamper:
    return InProcessTimeStamper(authority)


@pytest.fixture(scope="module")
def blank_pdf() -> bytes:
    return one_page_pdf()


@pytest.fixture(scope="module")
def pades_work(tmp_path_factory: pytest.TempPathFactory, pki: DevPki) -> Path:
    """root.pem, untrusted.pem (issuing CA and TSA) and, with certutil, an NSS database."""
    directory = tmp_path_factory.mktemp("pades")
    write_pem(directory / "root.pem", [pki.root])
    write_pem(directory / "untrusted.pem", [pki.issuing, pki.tsa.certificate])
    nss_database(directory / "nss", directory / "root.pem")
    return directory


@pytest.fixture(scope="module")
def make_context(pki: DevPki, now: datetime) -> Callable[[], ValidationContext]:
    """Fresh validation contexts trusting the dev root, with its CRL, never fetching."""
    crl = pki.crl(now=now)

    def make() -> ValidationContext:
        return ValidationContext(
            trust_roots=[asn1(pki.root)],
            other_certs=[asn1(pki.issuing)],
            crls=[crl],
            allow_fetching=False,
        )

    return make
