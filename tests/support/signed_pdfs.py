"""PDFs signed by the run's development PKI, for tests outside ``tests/signing``.

Load with ``pytest_plugins = ["tests.support.signed_pdfs"]``. It brings the PAdES
fixtures of ``tests/signing`` (signers, TSA, validation contexts) and points their ``pki``
at the PKI of ``tests/conftest.py``'s ``shared_pki`` — the one every ``settings``
deployment trusts — so the service and ``dangan validate`` accept what is signed here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dangan.config import Settings
from dangan.signing.pki import DevPki
from dangan.signing.service import open_dev_pki
from tests.signing.pades_tools import byte_range, level_options, one_page_pdf, sign

pytest_plugins = ["tests.signing.pades_fixtures"]


@pytest.fixture(scope="module")
def now() -> datetime:
    """The real time (the service validates at its own clock's "now")."""
    return datetime.now(UTC)


@pytest.fixture(scope="module")
def pki(shared_pki: tuple[Path, Path], now: datetime) -> DevPki:
    """The run's development PKI: the one every ``settings`` deployment trusts."""
    pki_dir, passphrase_file = shared_pki
    return open_dev_pki(
        Settings(data_dir=pki_dir.parent, pki_dir=pki_dir, pki_passphrase_file=passphrase_file),
        now=now,
    )


@pytest.fixture(scope="module")
def signed_pdf(signers, timestamper, make_context) -> bytes:
    """A one-page PDF signed PAdES B-T by a personal certificate of the run's PKI."""
    options = level_options("B-T", timestamper, make_context)
    return sign(one_page_pdf(), signer=signers["rsa2048"], **options)


@pytest.fixture(scope="module")
def tampered_pdf(signed_pdf: bytes) -> bytes:
    """``signed_pdf`` with one byte of the page text changed, inside the first signed range."""
    at = signed_pdf.index(b"dangan test page") + 7
    start, length, _, _ = byte_range(signed_pdf)
    assert start <= at < start + length
    return signed_pdf[:at] + bytes([signed_pdf[at] ^ 0x01]) + signed_pdf[at + 1 :]
