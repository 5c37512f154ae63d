"""The command line against a real server process."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dangan.api.deps import AUTH_CACHE_SECONDS
from tests.support.server import dangan_cli, running_server


def test_init_is_idempotent(tmp_path: Path) -> None:
    env = {"DANGAN_DATA_DIR": str(tmp_path / "data")}
    first = dangan_cli("init", env=env)
    second = dangan_cli("init", env=env)
    assert "ready" in first.stderr and "ready" in second.stderr
    assert (tmp_path / "data" / "dangan.db").exists()


def test_clients_create_prints_the_key_alone_on_the_last_line(tmp_path: Path) -> None:
    env = {"DANGAN_DATA_DIR": str(tmp_path / "data")}
    result = dangan_cli("clients", "create", "--name", "审批系统", "--org", "org", "--scopes",
                        "documents:read,documents:write", env=env)
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("dgn_") and " " not in lines[-1]
    listing = dangan_cli("clients", "list", env=env).stdout
    assert "审批系统" in listing and lines[-1] not in listing


def test_unknown_scope_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "DANGAN_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "dangan", "clients", "create", "--name", "n", "--org", "o",
         "--scopes", "documents:wrte"],
        env=env, capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert "unknown scope" in result.stderr and "documents:wrte" in result.stderr


def test_put_get_and_revoke(tmp_path: Path) -> None:
    env = {"DANGAN_DATA_DIR": str(tmp_path / "data")}
    created = dangan_cli("clients", "create", "--name", "c", "--org", "o", "--scopes",
                         "documents:read,documents:write", env=env)
    key = created.stdout.strip().splitlines()[-1]
    client_id = created.stderr.split()[1]  # "client <id> (name, org): scopes"
    source = tmp_path / "scan.pdf"
    source.write_bytes(b"%PDF-1.7\n" + os.urandom(3 * 1024 * 1024))
    with running_server(env, tmp_path / "server.log") as server:
        client_env = {**env, "DANGAN_URL": server.url, "DANGAN_API_KEY": key}
        put = dangan_cli("put", str(source), "--org", "o", "--case-ref", "C-9", env=client_env)
        receipt = json.loads(put.stdout)
        assert receipt["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
        target = tmp_path / "back.pdf"
        dangan_cli("get", receipt["id"], "-o", str(target), env=client_env)
        assert target.read_bytes() == source.read_bytes()
        assert not (tmp_path / "back.pdf.part").exists()

        dangan_cli("clients", "revoke", client_id, env=env)
        # Successful lookups are cached for AUTH_CACHE_SECONDS: the key dies within that.
        deadline = time.monotonic() + AUTH_CACHE_SECONDS + 3
        while True:
            response = httpx.get(f"{server.url}/v1/documents", headers={"Authorization": f"Bearer {key}"})
            if response.status_code != 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert response.status_code == 401


def test_get_reports_a_missing_document(tmp_path: Path) -> None:
    env = {"DANGAN_DATA_DIR": str(tmp_path / "data")}
    key = dangan_cli("clients", "create", "--name", "c", "--org", "o", "--scopes",
                     "documents:read", env=env).stdout.strip().splitlines()[-1]
    with running_server(env, tmp_path / "server.log") as server:
        result = subprocess.run(
            [sys.executable, "-m", "dangan", "get", "00000000-0000-7000-8000-000000000000"],
            env={**os.environ, **env, "DANGAN_URL": server.url, "DANGAN_API_KEY": key},
            capture_output=True, text=True, cwd=tmp_path,
        )
    assert result.returncode == 1
    assert "404" in result.stderr
    assert not any(tmp_path.glob("00000000*"))


def test_init_refuses_to_replace_a_lost_signing_key(tmp_path: Path) -> None:
    env = {"DANGAN_DATA_DIR": str(tmp_path / "data")}
    key = dangan_cli("clients", "create", "--name", "c", "--org", "o", "--scopes",
                     "documents:write", env=env).stdout.strip().splitlines()[-1]
    with running_server(env, tmp_path / "server.log") as server:
        assert httpx.get(f"{server.url}/v1/ledger/checkpoint").status_code == 200  # signs one
    assert key
    (tmp_path / "data" / "keys" / "ledger.key").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "dangan", "init"],
        env={**os.environ, **env}, capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert "restore the key file" in result.stderr
    assert not (tmp_path / "data" / "keys" / "ledger.key").exists()
