"""Fixtures for the signing tests: one development PKI per run, and the openssl command.

Keys are made once per session (RSA key generation is the slow part); tests that need a
fresh directory make their own small PKI with ECDSA keys.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest
from asn1crypto import cms, core, tsp
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dangan.signing.pki import DevPki, IssuedCredential
from tests.support.softhsm import SealKeys, put_seal_keys, softhsm, softhsm_missing

PASSPHRASE = b"dev passphrase \xe5\xaf\x86"
CRL_URL = "http://127.0.0.1:8080/pki/issuing.crl"

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")


def openssl(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``openssl args``; stdout and stderr come back as text."""
    assert OPENSSL is not None
    result = subprocess.run(
        [OPENSSL, *map(str, args)], capture_output=True, text=True, check=False, timeout=60
    )
    if check and result.returncode != 0:
        raise AssertionError(f"openssl {args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def write_pem(path: Path, certificates: Sequence[x509.Certificate]) -> Path:
    """Write ``certificates`` to ``path`` as concatenated PEM."""
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates))
    return path


class TimeStampResp(core.Sequence):
    """TimeStampResp with the token OPTIONAL, as RFC 3161 §2.4.2 has it (asn1crypto's is not)."""

    _fields: ClassVar[list[tuple]] = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def parse_response(der: bytes, *, decode_all: bool = True) -> TimeStampResp:
    """The response; with ``decode_all`` every field is decoded now, so DER errors show here.

    Decoding everything costs tens of milliseconds in asn1crypto, hence the option.
    """
    response = TimeStampResp.load(der, strict=True)
    if decode_all:
        _ = response.native
    return response


@pytest.fixture(scope="session")
def now() -> datetime:
    """The real time: openssl checks certificates against the machine's clock."""
    return datetime.now(UTC)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory, now: datetime) -> DevPki:
    """A development PKI with an RSA-2048 TSA, made once per run."""
    return DevPki.create(
        tmp_path_factory.mktemp("pki"), now=now, crl_url=CRL_URL, passphrase=PASSPHRASE
    )


@pytest.fixture(scope="session")
def ecdsa_tsa(pki: DevPki, now: datetime) -> IssuedCredential:
    """A second TSA credential of the same PKI, with an ECDSA P-256 key."""
    return pki.issue_tsa_certificate(key_type="p256", now=now)


@pytest.fixture(scope="session")
def tsa_credentials(pki: DevPki, ecdsa_tsa: IssuedCredential) -> dict[str, IssuedCredential]:
    """The TSA credentials by key type."""
    return {"rsa2048": pki.tsa, "p256": ecdsa_tsa}


@pytest.fixture(scope="session")
def softhsm_seal_keys(
    tmp_path_factory: pytest.TempPathFactory, pki: DevPki, now: datetime
) -> Iterator[SealKeys]:
    """RSA-2048 and ECDSA P-256 seal keys of the development PKI on SoftHSM2 tokens.

    Every SoftHSM2 token of the run is made here, before anything opens the module:
    SoftHSM2 reads its token directory once per process.
    """
    reason = softhsm_missing()
    if reason is not None:
        pytest.skip(reason)
    credentials = {
        key_type: pki.issue_seal_certificate(
            organisation="北京市数据局 HSM", key_type=key_type, now=now
        )
        for key_type in ("rsa2048", "p256")
    }
    with softhsm(tmp_path_factory.mktemp("softhsm")) as hsm:
        yield put_seal_keys(hsm, credentials)
