"""Tests for the RFC 3161 Time-Stamp Authority core (``dangan.signing.tsa``).

Requests come from ``openssl ts -query`` and from :func:`request_timestamp`; responses are
read by ``openssl ts -reply`` and verified by ``openssl ts -verify`` against the dev root,
for RSA and ECDSA TSA keys, and once by pyHanko's timestamp validation.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from asn1crypto import algos, core, parser, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext

from dangan.signing.errors import TsaConfigurationError
from dangan.signing.pki import DevPki, IssuedCredential
from dangan.signing.tsa import MAX_REQUEST_BYTES, TimestampAuthority, request_timestamp
from tests.signing.conftest import needs_openssl, openssl, parse_response, write_pem

POLICY = "1.3.6.1.4.1.57264.1.1"
GEN_TIME = datetime(2026, 3, 4, 5, 6, 7, 891234, tzinfo=UTC)
IMPRINT = {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x11" * 32}


def _tsa(credential: IssuedCredential, **options: object) -> TimestampAuthority:
    options.setdefault("clock", lambda: GEN_TIME)
    options.setdefault("accuracy_ms", 1500)
    return TimestampAuthority.from_credential(credential, policy_oid=POLICY, **options)


def _tst_info(response_der: bytes) -> tsp.TSTInfo:
    response = parse_response(response_der, decode_all=False)
    assert response["status"]["status"].native == "granted"
    signed_data = response["time_stamp_token"]["content"]
    return signed_data["encap_content_info"]["content"].parsed


def _request(**fields: object) -> bytes:
    fields = {"version": "v1", "message_imprint": IMPRINT, **fields}
    return tsp.TimeStampReq(fields).dump()


def _universal_tags(value: core.Sequence) -> list[int]:
    contents, pointer, tags = value.contents, 0, []
    while pointer < len(contents):
        (class_, _method, tag, _header, _body, _trailer), pointer = parser._parse(
            contents, len(contents), pointer
        )
        if class_ == 0:
            tags.append(tag)
    return tags


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, pki: DevPki, ecdsa_tsa) -> Path:
    """Data file and certificate files for openssl."""
    directory = tmp_path_factory.mktemp("ts")
    (directory / "data").write_bytes("档案 — archive\n".encode() * 100)
    write_pem(directory / "root.pem", [pki.root])
    write_pem(directory / "chain.pem", [pki.issuing])
    write_pem(directory / "rsa2048-untrusted.pem", [pki.tsa.certificate, pki.issuing])
    write_pem(directory / "p256-untrusted.pem", [ecdsa_tsa.certificate, pki.issuing])
    return directory


@needs_openssl
@pytest.mark.parametrize("key_type", ["rsa2048", "p256"])
@pytest.mark.parametrize(("nonce", "cert_req"), list(itertools.product([True, False], repeat=2)))
def test_openssl_reads_and_verifies_the_response(
    work: Path, tsa_credentials, key_type: str, nonce: bool, cert_req: bool
) -> None:
    serial = 0x0123456789ABCDEF0123456789ABCDEF01234567
    tsa = _tsa(tsa_credentials[key_type], serials=lambda: serial, clock=lambda: datetime.now(UTC))
    name = f"{key_type}-{nonce}-{cert_req}"
    query = ["ts", "-query", "-data", work / "data", "-sha256", "-out", work / f"{name}.tsq"]
    query += ["-cert"] if cert_req else []
    query += [] if nonce else ["-no_nonce"]
    openssl(*query)
    (work / f"{name}.tsr").write_bytes(tsa.respond((work / f"{name}.tsq").read_bytes()))

    text = openssl("ts", "-reply", "-in", work / f"{name}.tsr", "-text").stdout
    assert "Status: Granted." in text
    assert f"Policy OID: {POLICY}" in text
    assert "Accuracy: 0x01 seconds, 0x01F4 millis, unspecified micros" in text
    assert int(re.search(r"Serial number: 0x([0-9A-F]+)", text).group(1), 16) == serial
    assert "Ordering: no" in text
    assert "TSA: DirName:" in text and "development TSA" in text
    request_text = openssl("ts", "-query", "-in", work / f"{name}.tsq", "-text").stdout
    nonce_line = re.search(r"Nonce: (.*)", request_text).group(1)
    assert (nonce_line == "unspecified") != nonce
    assert f"Nonce: {nonce_line}" in text

    # Without certReq the token carries no certificates, so the TSA's comes from -untrusted.
    untrusted = work / ("chain.pem" if cert_req else f"{key_type}-untrusted.pem")
    for source in (["-data", work / "data"], ["-queryfile", work / f"{name}.tsq"]):
        verified = openssl(
            "ts",
            "-verify",
            *source,
            "-in",
            work / f"{name}.tsr",
            "-CAfile",
            work / "root.pem",
            "-untrusted",
            untrusted,
        )
        assert "Verification: OK" in verified.stdout


@needs_openssl
@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
def test_requests_from_request_timestamp_verify(work: Path, pki: DevPki, algorithm: str) -> None:
    data = (work / "data").read_bytes()
    request = request_timestamp(data, hash_algorithm=algorithm, policy_oid=POLICY)
    (work / f"{algorithm}.tsq").write_bytes(request)
    (work / f"{algorithm}.tsr").write_bytes(_tsa(pki.tsa).respond(request))
    for source in (["-data", work / "data"], ["-queryfile", work / f"{algorithm}.tsq"]):
        verified = openssl(
            "ts",
            "-verify",
            *source,
            "-in",
            work / f"{algorithm}.tsr",
            "-CAfile",
            work / "root.pem",
            "-untrusted",
            work / "chain.pem",
        )
        assert "Verification: OK" in verified.stdout
    text = openssl("ts", "-reply", "-in", work / f"{algorithm}.tsr", "-text").stdout
    assert f"Hash Algorithm: {algorithm}" in text


@needs_openssl
def test_openssl_detects_a_changed_document(work: Path, pki: DevPki) -> None:
    request = request_timestamp((work / "data").read_bytes())
    (work / "changed.tsr").write_bytes(_tsa(pki.tsa).respond(request))
    (work / "changed").write_bytes((work / "data").read_bytes() + b"!")
    refused = openssl(
        "ts",
        "-verify",
        "-data",
        work / "changed",
        "-in",
        work / "changed.tsr",
        "-CAfile",
        work / "root.pem",
        "-untrusted",
        work / "chain.pem",
        check=False,
    )
    assert "Verification: OK" not in refused.stdout
    assert "message imprint mismatch" in refused.stderr


def _der(tag: int, body: bytes) -> bytes:
    assert len(body) < 128  # short-form length (X.690 §8.1.3.4) is all these need
    return bytes([tag, len(body)]) + body


def _request_with_sha256_parameter() -> bytes:
    """A request whose SHA-256 AlgorithmIdentifier has INTEGER 1 as parameters."""
    sha256_oid = _der(0x06, bytes.fromhex("608648016503040201"))
    algorithm = _der(0x30, sha256_oid + _der(0x02, b"\x01"))
    imprint = _der(0x30, algorithm + _der(0x04, b"\x22" * 32))
    return _der(0x30, _der(0x02, b"\x01") + imprint)


REJECTIONS = {
    "garbage": (b"\x30\x03\x02\x01", "bad_data_format", "the data submitted has the wrong format"),
    "trailing bytes": (request_timestamp(b"x") + b"\x00", "bad_data_format", "wrong format"),
    "too large": (b"\x30" * (MAX_REQUEST_BYTES + 1), "bad_data_format", "wrong format"),
    "version 2": (_request(version="v2"), "bad_request", "transaction not permitted"),
    "md5": (
        _request(
            message_imprint={"hash_algorithm": {"algorithm": "md5"}, "hashed_message": b"\x22" * 16}
        ),
        "bad_alg",
        "unrecognized or unsupported algorithm identifier",
    ),
    "sha1": (
        _request(
            message_imprint={
                "hash_algorithm": {"algorithm": "sha1"},
                "hashed_message": b"\x22" * 20,
            }
        ),
        "bad_alg",
        "unsupported algorithm",
    ),
    # The SHA-2 AlgorithmIdentifier allows only NULL or absent parameters (RFC 5754 §2), so
    # anything else does not even decode.
    "hash parameters": (_request_with_sha256_parameter(), "bad_data_format", "wrong format"),
    "short imprint": (
        _request(
            message_imprint={
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": b"\x22" * 31,
            }
        ),
        "bad_data_format",
        "wrong format",
    ),
    "other policy": (
        _request(req_policy="1.2.3.4"),
        "unaccepted_policy",
        "policy is not supported",
    ),
    "extensions": (
        _request(extensions=[{"extn_id": "1.2.3.4.5", "extn_value": b"\x05\x00"}]),
        "unaccepted_extensions",
        "extension is not supported",
    ),
}


@needs_openssl
@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejections_carry_status_and_fail_info(work: Path, pki: DevPki, case: str) -> None:
    request, fail_info, openssl_words = REJECTIONS[case]
    response = _tsa(pki.tsa).respond(request)
    parsed = parse_response(response)
    assert parsed["status"]["status"].native == "rejection"
    assert parsed["status"]["fail_info"].native == {fail_info}
    assert parsed["status"]["status_string"].native
    assert parsed["time_stamp_token"].native is None
    path = work / f"rejected-{case.replace(' ', '-')}.tsr"
    path.write_bytes(response)
    text = openssl("ts", "-reply", "-in", path, "-text").stdout
    assert "Status: Rejected." in text
    assert openssl_words in re.search(r"Failure info: (.*)", text).group(1)
    assert "TST info:\nNot included." in text


def test_the_accepted_policy_and_null_or_absent_parameters(pki: DevPki) -> None:
    tsa = _tsa(pki.tsa)
    assert _tst_info(tsa.respond(_request(req_policy=POLICY)))["policy"].dotted == POLICY
    for parameters in (None, core.Null()):
        imprint = {
            "hash_algorithm": algos.DigestAlgorithm(
                {"algorithm": "sha256", "parameters": parameters}
            ),
            "hashed_message": b"\x33" * 32,
        }
        info = _tst_info(tsa.respond(_request(message_imprint=imprint)))
        # §2.4.2: the imprint is echoed with the same value, NULL and absent kept apart.
        assert info["message_imprint"].dump() == tsp.MessageImprint(imprint).dump()


def test_token_structure(pki: DevPki) -> None:
    response = parse_response(_tsa(pki.tsa).respond(_request(nonce=2**100, cert_req=True)))
    signed_data = response["time_stamp_token"]["content"]
    assert response["time_stamp_token"]["content_type"].native == "signed_data"
    assert signed_data["version"].native == "v3"
    assert signed_data["encap_content_info"]["content_type"].native == "tst_info"
    info = signed_data["encap_content_info"]["content"].parsed
    assert info["nonce"].native == 2**100
    assert info["message_imprint"]["hashed_message"].native == b"\x11" * 32
    # ordering keeps its DEFAULT FALSE, so DER leaves it out: no BOOLEAN among the fields.
    assert info["ordering"].native is False
    assert 1 not in _universal_tags(info)
    certificates = [c.chosen for c in signed_data["certificates"]]
    tsa_der = pki.tsa.certificate.public_bytes(serialization.Encoding.DER)
    assert {c.dump() for c in certificates} == {
        c.public_bytes(serialization.Encoding.DER) for c in (pki.tsa.certificate, *pki.chain)
    }
    signer = signed_data["signer_infos"][0]
    assert signer["signature_algorithm"]["algorithm"].native == "sha256_rsa"
    attributes = {a["type"].native: a["values"][0] for a in signer["signed_attrs"]}
    assert set(attributes) == {
        "content_type",
        "message_digest",
        "signing_time",
        "signing_certificate_v2",
    }
    assert attributes["content_type"].native == "tst_info"
    tst_der = signed_data["encap_content_info"]["content"].contents
    assert attributes["message_digest"].native == hashlib.sha256(tst_der).digest()
    assert attributes["signing_time"].native == GEN_TIME.replace(microsecond=0)
    ess = attributes["signing_certificate_v2"]["certs"][0]
    assert ess["cert_hash"].native == hashlib.sha256(tsa_der).digest()
    assert ess["issuer_serial"]["serial_number"].native == pki.tsa.certificate.serial_number
    assert b"\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01" not in ess.dump()  # DEFAULT omitted


def test_no_certificates_without_cert_req(tsa_credentials) -> None:
    tsa = _tsa(tsa_credentials["p256"])
    response = parse_response(tsa.respond(_request(cert_req=False)))
    signed_data = response["time_stamp_token"]["content"]
    assert signed_data["certificates"].native is None
    signer = signed_data["signer_infos"][0]
    assert signer["signature_algorithm"]["algorithm"].native == "sha256_ecdsa"
    assert _tst_info(tsa.respond(_request()))["nonce"].native is None


def test_gen_time_comes_from_the_clock_in_utc_to_the_millisecond(pki: DevPki) -> None:
    beijing = GEN_TIME.astimezone(timezone(timedelta(hours=8)))
    info = _tst_info(_tsa(pki.tsa, clock=lambda: beijing).respond(_request()))
    assert info["gen_time"].contents == b"20260304050607.891Z"
    whole = _tsa(pki.tsa, clock=lambda: GEN_TIME.replace(microsecond=0))
    assert _tst_info(whole.respond(_request()))["gen_time"].contents == b"20260304050607Z"


@pytest.mark.parametrize(
    ("accuracy_ms", "expected"),
    [
        (1, {"seconds": None, "millis": 1, "micros": None}),
        (2000, {"seconds": 2, "millis": None, "micros": None}),
        (61_250, {"seconds": 61, "millis": 250, "micros": None}),
    ],
)
def test_accuracy(pki: DevPki, accuracy_ms: int, expected: dict) -> None:
    info = _tst_info(_tsa(pki.tsa, accuracy_ms=accuracy_ms).respond(_request()))
    assert info["accuracy"].native == expected


def test_serial_numbers_are_unique_and_at_most_160_bits(pki: DevPki) -> None:
    tsa = _tsa(pki.tsa)
    serials = [_tst_info(tsa.respond(_request()))["serial_number"].native for _ in range(300)]
    assert len(set(serials)) == len(serials)
    assert all(0 < serial < 2**160 for serial in serials)


def test_pyhanko_validates_the_token(pki: DevPki) -> None:
    data = b"pyHanko checks this"
    tsa = _tsa(pki.tsa, clock=lambda: datetime.now(UTC))
    token = parse_response(tsa.respond(request_timestamp(data)))["time_stamp_token"]
    root = asn1_x509.Certificate.load(pki.root.public_bytes(serialization.Encoding.DER))
    context = ValidationContext(
        trust_roots=[root], allow_fetching=False, revocation_mode="soft-fail"
    )
    status = TimestampSignatureStatus(
        **asyncio.run(
            validate_tst_signed_data(
                token["content"], context, lambda algorithm: hashlib.new(algorithm, data).digest()
            )
        )
    )
    assert status.intact and status.valid and status.trusted


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(tsa_credentials, raw: bytes) -> None:
    status = parse_response(_tsa(tsa_credentials["p256"]).respond(raw))["status"]
    assert status["status"].native in {"granted", "rejection"}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_requests_never_raise(tsa_credentials, data: st.DataObject) -> None:
    request = bytearray(_request(nonce=0x0102030405060708, req_policy=POLICY, cert_req=True))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(request) - 1))
        request[position] = data.draw(st.integers(0, 255))
    der = _tsa(tsa_credentials["p256"]).respond(bytes(request))
    response = parse_response(der, decode_all=False)
    if response["status"]["status"].native == "rejection":
        assert response["time_stamp_token"].native is None
        assert len(response["status"]["fail_info"].native) == 1


def test_configuration_errors(pki: DevPki, now: datetime) -> None:
    seal = pki.issue_seal_certificate(organisation="机构", key_type="p256", now=now)
    with pytest.raises(TsaConfigurationError, match="extendedKeyUsage"):
        _tsa(seal)
    mismatched = IssuedCredential(
        certificate=pki.tsa.certificate,
        private_key=seal.private_key,
        chain=pki.tsa.chain,
        pkcs12_path=pki.tsa.pkcs12_path,
    )
    with pytest.raises(TsaConfigurationError, match="does not belong"):
        _tsa(mismatched)
    with pytest.raises(TsaConfigurationError, match="accuracy"):
        _tsa(pki.tsa, accuracy_ms=0)
    with pytest.raises(TsaConfigurationError, match="OID"):
        TimestampAuthority.from_credential(
            pki.tsa, policy_oid="not-an-oid", accuracy_ms=1, clock=lambda: GEN_TIME
        )
    with pytest.raises(TsaConfigurationError, match="naive"):
        _tsa(pki.tsa, clock=lambda: datetime(2030, 1, 1)).respond(_request())


def test_request_timestamp_shape() -> None:
    request = tsp.TimeStampReq.load(request_timestamp(b"abc", nonce=False, cert_req=False))
    assert request["version"].native == "v1"
    assert request["nonce"].native is None
    assert request["cert_req"].native is False
    assert request["req_policy"].native is None
    assert request["message_imprint"]["hashed_message"].native == hashlib.sha256(b"abc").digest()
    with_nonce = tsp.TimeStampReq.load(request_timestamp(b"abc"))
    assert with_nonce["nonce"].native > 0 and with_nonce["cert_req"].native is True
    with pytest.raises(ValueError, match="md5"):
        request_timestamp(b"abc", hash_algorithm="md5")
