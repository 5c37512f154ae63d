"""Bytes out equal bytes in, at any size, with flat server memory (real server process)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator

import httpx
import psutil
import pytest

from tests.support.server import Server, dangan_cli, running_server

MiB = 1024 * 1024
BOUNDARY = "dangan-test-boundary"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    root = tmp_path_factory.mktemp("large")
    env = {"DANGAN_DATA_DIR": str(root / "data"), "DANGAN_MAX_UPLOAD_BYTES": str(2048 * MiB)}
    key = dangan_cli(
        "clients", "create", "--name", "big", "--org", "o", "--scopes", "documents:read,documents:write",
        env=env,
    ).stdout.strip().splitlines()[-1]
    with running_server(env, root / "server.log") as srv:
        yield srv, key


def generated(size: int, seed: bytes) -> Iterator[bytes]:
    """``size`` bytes of non-repeating content, generated 1 MiB at a time (never all in memory)."""
    block = hashlib.shake_256(seed).digest(MiB)
    sent, n = 0, 0
    while sent < size:
        chunk = (b"%PDF-1.7\n" if n == 0 else n.to_bytes(8, "big")) + block
        chunk = chunk[: min(MiB, size - sent)]
        sent += len(chunk)
        n += 1
        yield chunk


def multipart_stream(size: int, seed: bytes, digest: "hashlib._Hash") -> Iterator[bytes]:
    meta = json.dumps({"title": "big", "kind": "scan", "organisation": "o"})
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n{meta}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    for chunk in generated(size, seed):
        digest.update(chunk)
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


class PeakRss:
    """Samples a process's resident set size every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.baseline = self.proc.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def roundtrip(server: Server, key: str, size: int) -> tuple[str, str, PeakRss]:
    auth = {"Authorization": f"Bearer {key}"}
    sent = hashlib.sha256()
    with PeakRss(server.process.pid) as rss:
        response = httpx.post(
            f"{server.url}/v1/documents",
            headers={**auth, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
            content=multipart_stream(size, str(size).encode(), sent),
            timeout=600,
        )
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["size"] == size and receipt["sha256"] == sent.hexdigest()
    received, count = hashlib.sha256(), 0
    with httpx.stream("GET", f"{server.url}/v1/documents/{receipt['id']}/content",
                      headers=auth, timeout=600) as download:
        assert download.status_code == 200
        for chunk in download.iter_bytes():
            received.update(chunk)
            count += len(chunk)
    assert count == size
    return sent.hexdigest(), received.hexdigest(), rss


def test_tiny_roundtrip(server) -> None:
    srv, key = server
    auth = {"Authorization": f"Bearer {key}"}
    body = b"[]"
    meta = {"metadata": json.dumps({"title": "t", "kind": "k", "organisation": "o"})}
    response = httpx.post(f"{srv.url}/v1/documents", headers=auth,
                          files={"file": ("t.json", body, "application/json")}, data=meta)
    assert response.status_code == 201, response.text
    back = httpx.get(f"{srv.url}/v1/documents/{response.json()['id']}/content", headers=auth)
    assert back.content == body


def test_ten_megabyte_roundtrip(server) -> None:
    srv, key = server
    sent, received, _ = roundtrip(srv, key, 10 * 1000 * 1000)
    assert sent == received


@pytest.mark.slow
def test_one_gib_roundtrip_with_flat_server_memory(server) -> None:
    srv, key = server
    sent, received, rss = roundtrip(srv, key, 1024 * MiB)
    assert sent == received
    growth = rss.peak - rss.baseline
    print(f"server RSS baseline {rss.baseline / MiB:.1f} MiB, peak {rss.peak / MiB:.1f} MiB, growth {growth / MiB:.1f} MiB")
    assert growth < 64 * MiB
