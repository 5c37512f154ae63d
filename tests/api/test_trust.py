"""The trust services over HTTP, cross-checked with openssl: TSA, CRL, checkpoint tokens."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "openssl"], capture_output=True).returncode != 0,
    reason="needs the openssl command",
)


def openssl(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=60)


@pytest.fixture
def ca_file(api: TestClient, tmp_path: Path) -> Path:
    response = api.get("/pki/ca.pem")
    assert response.status_code == 200
    assert response.text.count("BEGIN CERTIFICATE") == 2
    path = tmp_path / "ca.pem"
    path.write_text(response.text)
    return path


def test_tsa_answers_openssl_queries(api: TestClient, ca_file: Path, tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes("电子证照 licence bytes".encode())
    query = tmp_path / "req.tsq"
    assert openssl("ts", "-query", "-data", data, "-sha256", "-cert", "-out", query).returncode == 0
    response = api.post("/tsa", content=query.read_bytes(),
                        headers={"Content-Type": "application/timestamp-query"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/timestamp-reply"
    reply = tmp_path / "resp.tsr"
    reply.write_bytes(response.content)
    verified = openssl("ts", "-verify", "-data", data, "-in", reply, "-CAfile", ca_file)
    assert "Verification: OK" in verified.stdout, verified.stderr
    text = openssl("ts", "-reply", "-in", reply, "-text").stdout
    assert "Status: Granted." in text and "Policy OID: 2.25." in text


def test_tsa_rejects_garbage_in_protocol_and_wrong_media_type_in_http(api: TestClient, tmp_path: Path) -> None:
    response = api.post("/tsa", content=b"not a request", headers={"Content-Type": "application/timestamp-query"})
    assert response.status_code == 200
    reply = tmp_path / "bad.tsr"
    reply.write_bytes(response.content)
    assert "Status: Rejected." in openssl("ts", "-reply", "-in", reply, "-text").stdout
    wrong = api.post("/tsa", content=b"x", headers={"Content-Type": "text/plain"})
    assert wrong.status_code == 415 and wrong.json()["code"] == "unsupported_media_type"
    huge = api.post("/tsa", content=b"x" * 20000, headers={"Content-Type": "application/timestamp-query"})
    assert huge.status_code == 413


def test_crl_verifies_against_the_issuing_ca(api: TestClient, ca_file: Path, tmp_path: Path) -> None:
    response = api.get("/pki/issuing-ca.crl")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pkix-crl"
    crl = tmp_path / "ca.crl"
    crl.write_bytes(response.content)
    result = openssl("crl", "-inform", "DER", "-in", crl, "-CAfile", ca_file, "-noout")
    assert "verify OK" in result.stdout + result.stderr


def test_checkpoint_timestamp_verifies_and_is_kept(api: TestClient, ca_file: Path, tmp_path: Path) -> None:
    first = api.get("/v1/ledger/checkpoint/timestamp")
    assert first.status_code == 200
    size = first.headers["x-checkpoint-size"]
    note = api.get("/v1/ledger/checkpoint").text
    assert note.split("\n")[1] == size
    (tmp_path / "note.txt").write_bytes(note.encode())
    (tmp_path / "cp.tsr").write_bytes(first.content)
    verified = openssl("ts", "-verify", "-data", tmp_path / "note.txt", "-in", tmp_path / "cp.tsr",
                       "-CAfile", ca_file)
    assert "Verification: OK" in verified.stdout, verified.stderr
    assert api.get("/v1/ledger/checkpoint/timestamp").content == first.content
