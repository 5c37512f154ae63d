"""SIGKILL in the middle of concurrent uploads loses nothing that was acknowledged."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import httpx

from dangan.bootstrap import initialise, open_backends
from dangan.config import Settings
from dangan.db.tables import document_versions, objects
from dangan.ledger.log import verify_chain
from sqlalchemy import select
from tests.support.server import dangan_cli, running_server

WRITERS = 8


def uploader(url: str, key: str, n: int, stop: threading.Event, acked: list, lock: threading.Lock) -> None:
    """Upload distinct documents until the server dies; remember every 2xx receipt."""
    auth = {"Authorization": f"Bearer {key}"}
    meta = json.dumps({"title": "crash", "kind": "k", "organisation": "o"})
    i = 0
    with httpx.Client(timeout=30) as http:
        while not stop.is_set():
            body = b"%PDF-1.7\n" + f"{n}-{i}".encode() + hashlib.sha256(f"{n}{i}".encode()).digest() * (
                1 + (i * 997 % 40_000)
            )
            i += 1
            try:
                response = http.post(
                    f"{url}/v1/documents",
                    headers=auth,
                    files={"file": ("c.pdf", body, "application/pdf")},
                    data={"metadata": meta},
                )
            except httpx.TransportError:
                return
            if 200 <= response.status_code < 300:
                with lock:
                    acked.append((response.json(), hashlib.sha256(body).hexdigest()))


def test_sigkill_during_concurrent_uploads_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"DANGAN_DATA_DIR": str(data)}
    key = dangan_cli(
        "clients", "create", "--name", "c", "--org", "o", "--scopes", "documents:read,documents:write",
        env=env,
    ).stdout.strip().splitlines()[-1]
    acked: list = []
    lock, stop = threading.Lock(), threading.Event()
    with running_server(env, tmp_path / "server.log") as server:
        threads = [
            threading.Thread(target=uploader, args=(server.url, key, n, stop, acked, lock))
            for n in range(WRITERS)
        ]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()  # mid-flight: the writers are still sending
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert len(acked) >= 150, "the server acknowledged too few uploads before the kill"

    with running_server(env, tmp_path / "server2.log") as server:
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(timeout=30) as http:
            for receipt, sha in acked:
                assert receipt["sha256"] == sha
                response = http.get(f"{server.url}/v1/documents/{receipt['id']}/content", headers=auth)
                assert response.status_code == 200, receipt
                assert hashlib.sha256(response.content).hexdigest() == sha

    settings = Settings(data_dir=data)
    initialise(settings)
    backends = open_backends(settings)
    try:
        with backends.engine.connect() as conn:
            head = verify_chain(conn)
            referenced = {r.sha256 for r in conn.execute(select(objects.c.sha256))}
            referenced |= {r.sha256 for r in conn.execute(select(document_versions.c.sha256))}
        assert head.size >= len(acked) + 1
        for sha in referenced:
            stat = backends.store.stat(sha)
            assert stat is not None, f"the database points at a missing object {sha}"
            digest = hashlib.sha256()
            for chunk in backends.store.read(sha):
                digest.update(chunk)
            assert digest.hexdigest() == sha
        assert not any(p.is_file() for p in (data / "objects" / "tmp").rglob("*"))
    finally:
        backends.close()
