"""``dangan verify-qr``: payloads and QR images checked offline against a saved trust list."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import cbor2
import pytest
import segno
from PIL import Image
from typer.testing import CliRunner

from dangan.cli import app
from dangan.licences.token import qr_url, sign_token, token_text
from dangan.licences.trust_list import TrustedKey, TrustList
from tests.licences.qr_values import IDENTIFIER, PDF_SHA256, PUBLIC_URL

pytest_plugins = ["tests.licences.qr_fixtures"]


def run(*args: str):
    return CliRunner().invoke(app, ["verify-qr", *args])


def _url(key, claims) -> str:
    raw = sign_token(claims, key=key.private_key, certificate=key.certificate)
    return qr_url(PUBLIC_URL, token_text(raw))


@pytest.fixture
def trust_file(tmp_path: Path, trust: TrustList) -> Path:
    path = tmp_path / "trust-list.json"
    path.write_text(json.dumps(trust.to_json()), encoding="utf-8")
    return path


def _fields(output: str) -> dict[str, str]:
    return {
        name.strip(): value.strip()
        for name, _, value in (line.partition(":") for line in output.splitlines()[1:])
        if value and not name.startswith(" ")
    }


def test_a_payload_is_recognised(qr_key, trust_file, make_claims, qr_now) -> None:
    claims = make_claims()
    url = _url(qr_key, claims)
    result = run(url, "--trust-list", str(trust_file))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "RECOGNISED"
    fields = _fields(result.stdout)
    assert fields["licence"] == str(IDENTIFIER)
    assert fields["type code"] == "0101"
    assert fields["issuer"] == "91110000600037341L"
    assert fields["holder"] == "张*明"
    assert fields["issued"] == qr_now.strftime("%Y-%m-%d %H:%M:%SZ")
    assert fields["expires"] == claims.expires_at.strftime("%Y-%m-%d %H:%M:%SZ")
    assert fields["PDF SHA-256"].split()[0] == PDF_SHA256.hex()
    assert fields["key id"] == f"{qr_key.kid.hex()} (active)"
    assert "live status (suspended, revoked) can only be checked online" in result.stdout
    assert lines[-1].strip() == url  # the trust list's issuer, never the payload's host


def test_a_bare_token_in_lower_case_is_recognised(qr_key, trust_file, make_claims) -> None:
    token = _url(qr_key, make_claims(expires_at=None)).rpartition("/")[2]
    result = run(token.lower(), "--trust-list", str(trust_file))
    assert result.exit_code == 0, result.output
    assert _fields(result.stdout)["expires"] == "no end date"


def test_a_png_is_decoded_with_zbar(qr_key, trust_file, make_claims, tmp_path: Path) -> None:
    image = tmp_path / "licence-qr.png"
    segno.make_qr(_url(qr_key, make_claims()), error="q").save(image, scale=4)
    result = run(str(image), "--trust-list", str(trust_file))
    assert result.exit_code == 0, result.output
    assert _fields(result.stdout)["licence"] == str(IDENTIFIER)


def test_an_expired_licence_is_recognised_and_marked(qr_key, trust_file, make_claims, qr_now):
    url = _url(qr_key, make_claims(expires_at=qr_now + timedelta(days=1)))
    at = (qr_now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = run(url, "--trust-list", str(trust_file), "--at", at)
    assert result.exit_code == 0, result.output
    assert _fields(result.stdout)["expires"].endswith(" (EXPIRED)")


def _not_recognised(payload: str, trust_file: Path, *options: str) -> None:
    result = run(payload, "--trust-list", str(trust_file), *options)
    assert result.exit_code == 1, result.output
    assert result.stdout == "NOT RECOGNISED\n"  # no reason: nothing to help a forger


def test_a_forged_token_is_not_recognised(stranger_key, trust_file, make_claims) -> None:
    _not_recognised(_url(stranger_key, make_claims()), trust_file)


def test_an_altered_token_is_not_recognised(qr_key, trust_file, make_claims) -> None:
    raw = sign_token(make_claims(), key=qr_key.private_key, certificate=qr_key.certificate)
    message = cbor2.loads(raw)
    protected, unprotected, payload, signature = message.value
    claims = cbor2.loads(payload)
    claims[-65537][2] = "王*明"  # the masked holder
    altered = cbor2.CBORTag(18, [protected, dict(unprotected), cbor2.dumps(claims), signature])
    _not_recognised(qr_url(PUBLIC_URL, token_text(cbor2.dumps(altered))), trust_file)


def test_an_expired_key_token_is_not_recognised(old_qr_key, trust_file, make_claims, qr_now):
    # The old key is in the trust list (retired) but its certificate ended before iat.
    assert old_qr_key.certificate.not_valid_after_utc < qr_now
    _not_recognised(_url(old_qr_key, make_claims()), trust_file)
    # What it signed while valid still verifies.
    then = qr_now - timedelta(days=2 * 365)
    result = run(_url(old_qr_key, make_claims(issued_at=then)), "--trust-list", str(trust_file))
    assert result.exit_code == 0 and f"{old_qr_key.kid.hex()} (retired)" in result.stdout


def test_a_revoked_key_is_not_recognised(qr_key, make_claims, tmp_path: Path, qr_now) -> None:
    revoked = TrustList(
        issuer=PUBLIC_URL,
        generated_at=qr_now,
        keys=(TrustedKey.from_certificate(qr_key.certificate, status="revoked"),),
    )
    path = tmp_path / "trust-list.json"
    path.write_text(json.dumps(revoked.to_json()), encoding="utf-8")
    _not_recognised(_url(qr_key, make_claims()), path)


@pytest.mark.parametrize(
    "payload", ["https://example.com/", "HTTPS://LICENCE.EXAMPLE.GOV.CN/V/AAAA", "hello"]
)
def test_foreign_payloads_are_not_recognised(payload: str, trust_file: Path) -> None:
    _not_recognised(payload, trust_file)


def test_a_token_from_the_future_is_not_recognised(qr_key, trust_file, make_claims, qr_now):
    url = _url(qr_key, make_claims())
    at = (qr_now - timedelta(minutes=10)).isoformat()
    _not_recognised(url, trust_file, "--at", at)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not a JSON file"),
        ('{"format": "x"}', "is malformed: the trust list: missing generated_at, issuer, keys"),
        ("[]", "is malformed: the trust list must be a JSON object"),
    ],
)
def test_a_malformed_trust_list_exits_2(
    qr_key, make_claims, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "trust-list.json"
    path.write_text(content, encoding="utf-8")
    result = run(_url(qr_key, make_claims()), "--trust-list", str(path))
    assert result.exit_code == 2
    assert message in result.stderr and "RECOGNISED" not in result.stdout


def test_a_kid_that_does_not_match_its_certificate_exits_2(
    trust: TrustList, tmp_path: Path, qr_key, make_claims
) -> None:
    document = trust.to_json()
    document["keys"][0]["kid"] = "00" * 8
    path = tmp_path / "trust-list.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    result = run(_url(qr_key, make_claims()), "--trust-list", str(path))
    assert result.exit_code == 2 and "does not match its certificate" in result.stderr


def test_images_that_cannot_be_checked_exit_2(trust_file: Path, tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), 255).save(blank)
    result = run(str(blank), "--trust-list", str(trust_file))
    assert result.exit_code == 2 and "holds 0 QR codes; expected one" in result.stderr
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    result = run(str(broken), "--trust-list", str(trust_file))
    assert result.exit_code == 2 and "cannot read the image" in result.stderr
    missing = run(str(tmp_path / "absent.png"), "--trust-list", str(trust_file))
    assert missing.exit_code == 2 and "cannot read the image" in missing.stderr


def test_a_missing_trust_list_or_a_naive_time_exits_2(tmp_path: Path, trust_file: Path) -> None:
    assert run("AAAA", "--trust-list", str(tmp_path / "absent.json")).exit_code == 2
    result = run("AAAA", "--trust-list", str(trust_file), "--at", "2025-01-01T00:00:00")
    assert result.exit_code == 2 and "time zone" in result.output


def test_help_names_the_command() -> None:
    result = CliRunner().invoke(app, ["verify-qr", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "PAYLOAD|IMAGE" in result.stdout and "--trust-list" in result.stdout
