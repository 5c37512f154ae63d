"""``dangan verify``, ``verify-ledger`` and ``audit``, including tampering with stored data."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.server import dangan_cli, running_server


def run(*args: str, env: dict, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dangan", *args],
        env={**os.environ, **env, "COLUMNS": "200"},
        capture_output=True, text=True, timeout=300, cwd=cwd,
    )


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A data dir with a few uploaded documents, their receipts and the verifier key."""
    root = tmp_path_factory.mktemp("ledger-cli")
    env = {"DANGAN_DATA_DIR": str(root / "data")}
    key = dangan_cli("clients", "create", "--name", "c", "--org", "o", "--scopes",
                     "documents:read,documents:write", env=env).stdout.strip().splitlines()[-1]
    receipts, files = [], []
    with running_server(env, root / "server.log") as server:
        for i in range(5):
            body = b"%PDF-1.7\n" + f"document {i}\n".encode() * (1000 + i)
            path = root / f"doc{i}.pdf"
            path.write_bytes(body)
            files.append(path)
            response = httpx.post(
                f"{server.url}/v1/documents", headers={"Authorization": f"Bearer {key}"},
                files={"file": (path.name, body, "application/pdf")},
                data={"metadata": json.dumps({"title": "t", "kind": "k", "organisation": "o"})},
            )
            receipts.append(response.json())
        (root / "ledger.pub").write_text(httpx.get(f"{server.url}/v1/ledger/key").text)
    for i, receipt in enumerate(receipts):
        (root / f"receipt{i}.json").write_text(json.dumps(receipt))
    return {"root": root, "env": env, "receipts": receipts, "files": files}


def fresh_copy(deployment: dict, tmp_path: Path) -> dict:
    import shutil

    shutil.copytree(deployment["root"] / "data", tmp_path / "data")
    return {"DANGAN_DATA_DIR": str(tmp_path / "data")}


def test_verify_receipt_offline(deployment: dict) -> None:
    root = deployment["root"]
    ok = run("verify", str(root / "receipt2.json"), "--key", str(root / "ledger.pub"),
             "--file", str(root / "doc2.pdf"), env={})
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    wrong_file = run("verify", str(root / "receipt2.json"), "--key", str(root / "ledger.pub"),
                     "--file", str(root / "doc3.pdf"), env={})
    assert wrong_file.returncode == 1 and "FAILED" in wrong_file.stderr


@pytest.mark.parametrize("field", ["sha256", "entry", "proof", "checkpoint", "key"])
def test_verify_rejects_altered_receipts(deployment: dict, tmp_path: Path, field: str) -> None:
    root = deployment["root"]
    receipt = json.loads((root / "receipt1.json").read_text())
    key = (root / "ledger.pub").read_text()
    if field == "sha256":
        receipt["sha256"] = "f" * 64
    elif field == "entry":
        receipt["ledger"]["entry"] = receipt["ledger"]["entry"].replace('"size":', '"size":1')
    elif field == "proof":
        receipt["ledger"]["inclusion_proof"][0] = "00" * 32
    elif field == "checkpoint":
        lines = receipt["ledger"]["checkpoint"].split("\n")
        lines[1] = str(int(lines[1]) + 1)
        receipt["ledger"]["checkpoint"] = "\n".join(lines)
    else:
        name, key_id, material = key.strip().split("+", 2)
        key = f"{name}+{key_id}+{material[:-6]}AAAAA="
    (tmp_path / "r.json").write_text(json.dumps(receipt))
    (tmp_path / "k.pub").write_text(key)
    result = run("verify", str(tmp_path / "r.json"), "--key", str(tmp_path / "k.pub"), env={})
    assert result.returncode == 1
    assert "receipt" in result.stderr.lower() or "error" in result.stderr.lower()


def test_clean_deployment_passes_verify_ledger_and_audit(deployment: dict, tmp_path: Path) -> None:
    env = fresh_copy(deployment, tmp_path)
    ledger = run("verify-ledger", env=env)
    assert ledger.returncode == 0, ledger.stderr
    assert "OK" in ledger.stdout
    audit = run("audit", env=env)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    sample = run("audit", "--sample", "2", "--seed", "1", env=env)
    assert sample.returncode == 0 and "sample" in sample.stdout


def _object_path(data: Path, sha256: str) -> Path:
    return data / "objects" / "sha256" / sha256[:2] / sha256


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_audit_detects_a_flipped_byte_in_every_object(deployment: dict, tmp_path: Path, position: str) -> None:
    env = fresh_copy(deployment, tmp_path)
    for receipt in deployment["receipts"]:
        path = _object_path(tmp_path / "data", receipt["sha256"])
        os.chmod(path, 0o644)
        raw = bytearray(path.read_bytes())
        at = {"first": 0, "middle": len(raw) // 2, "last": len(raw) - 1}[position]
        raw[at] ^= 0x01
        path.write_bytes(bytes(raw))
        result = run("audit", env=env)
        assert result.returncode == 1
        assert f"corrupt {receipt['sha256']}" in result.stdout
        raw[at] ^= 0x01
        path.write_bytes(bytes(raw))
    assert run("audit", env=env).returncode == 0


def test_audit_detects_missing_and_unreferenced_objects(deployment: dict, tmp_path: Path) -> None:
    env = fresh_copy(deployment, tmp_path)
    victim = deployment["receipts"][0]["sha256"]
    _object_path(tmp_path / "data", victim).unlink()
    stray = "ab" * 32
    stray_path = _object_path(tmp_path / "data", stray)
    stray_path.parent.mkdir(parents=True, exist_ok=True)
    stray_path.write_bytes(b"nobody recorded me")
    result = run("audit", env=env)
    assert result.returncode == 1
    assert f"missing {victim}" in result.stdout
    assert f"unreferenced {stray}" in result.stdout


def test_verify_ledger_detects_a_flipped_byte_in_every_entry(deployment: dict, tmp_path: Path) -> None:
    env = fresh_copy(deployment, tmp_path)
    db = tmp_path / "data" / "dangan.db"
    with sqlite3.connect(db) as conn:
        count = conn.execute("SELECT count(*) FROM ledger_entries").fetchone()[0]
    for seq in range(count):
        with sqlite3.connect(db) as conn:
            body = bytearray(conn.execute("SELECT body FROM ledger_entries WHERE seq=?", (seq,)).fetchone()[0])
            body[len(body) // 2] ^= 0x01
            conn.execute("UPDATE ledger_entries SET body=? WHERE seq=?", (bytes(body), seq))
        result = run("verify-ledger", env=env)
        assert result.returncode == 1, seq
        assert f"ledger entry {seq}" in result.stderr
        with sqlite3.connect(db) as conn:
            body[len(body) // 2] ^= 0x01
            conn.execute("UPDATE ledger_entries SET body=? WHERE seq=?", (bytes(body), seq))
    assert run("verify-ledger", env=env).returncode == 0


def test_verify_ledger_detects_a_rewritten_checkpoint(deployment: dict, tmp_path: Path) -> None:
    env = fresh_copy(deployment, tmp_path)
    db = tmp_path / "data" / "dangan.db"
    with sqlite3.connect(db) as conn:
        size, note = conn.execute("SELECT size, note FROM checkpoints ORDER BY size LIMIT 1").fetchone()
        conn.execute("UPDATE checkpoints SET note=? WHERE size=?", (note.replace("\n—", "\n— x", 1), size))
    result = run("verify-ledger", env=env)
    assert result.returncode == 1
    assert f"checkpoint {size}" in result.stderr


def test_verify_refuses_a_receipt_built_on_a_non_document_entry(deployment: dict, tmp_path: Path) -> None:
    """A real proof of some other entry (here client.created, seq 0) proves no document."""
    from dangan.bootstrap import open_backends
    from dangan.config import Settings
    from dangan.ledger.checkpoints import latest_checkpoint
    from dangan.ledger.log import get_entry
    from dangan.ledger.service import receipt_proof

    backends = open_backends(Settings(data_dir=deployment["root"] / "data"))
    try:
        with backends.engine.connect() as conn:
            ledger = receipt_proof(conn, get_entry(conn, 0), latest_checkpoint(conn))
    finally:
        backends.close()
    for nulls in ({"id": None, "sha256": None, "size": None, "version": None, "media_type": None},
                  {"id": "x", "sha256": "y", "size": 1, "version": 1, "media_type": "z"}):
        (tmp_path / "r.json").write_text(json.dumps({**nulls, "ledger": ledger}))
        result = run("verify", str(tmp_path / "r.json"), "--key", str(deployment["root"] / "ledger.pub"), env={})
        assert result.returncode == 1, result.stdout
        assert "records no document" in result.stderr
