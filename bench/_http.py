"""A minimal keep-alive HTTP/1.1 load client on asyncio streams.

Load generators share the two cores with the server under test, so the client must be
cheap: requests are pre-built bytes, responses are read by Content-Length.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence


class Connection:
    """One persistent connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader and self.writer
        self.writer.write(raw)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        body = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def build_request(method: str, path: str, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """Serialise one HTTP/1.1 request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def run_load(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    bodies: dict[int, bytes] | None = None,
) -> tuple[float, list[float], list[int]]:
    """Send every request over ``concurrency`` connections; (seconds, latencies, statuses).

    With ``bodies``, each response body is kept there under its request's index.
    """
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for item in enumerate(requests):
        queue.put_nowait(item)
    latencies: list[float] = []
    statuses: list[int] = []

    async def worker() -> None:
        conn = Connection(host, port)
        try:
            while True:
                try:
                    index, raw = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                started = time.perf_counter()
                status, body = await conn.request(raw)
                if bodies is not None:
                    bodies[index] = body
                latencies.append(time.perf_counter() - started)
                statuses.append(status)
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, statuses


async def run_for(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    seconds: float,
    accept: Callable[[int, bytes], bool] = lambda status, body: status == 200,
) -> tuple[float, list[float], list[tuple[int, bytes]]]:
    """Send ``requests`` round and round over ``concurrency`` connections for ``seconds``;
    (seconds taken, latencies, the answers ``accept`` refused).

    A connection sends its next request as soon as its answer is read (no pipelining);
    the run ends when every connection's last answer has come after the deadline.
    """
    latencies: list[float] = []
    refused: list[tuple[int, bytes]] = []
    clock = time.perf_counter
    deadline = clock() + seconds

    async def worker(first: int) -> None:
        conn = Connection(host, port)
        index = first
        try:
            while True:
                started = clock()
                if started >= deadline:
                    return
                status, body = await conn.request(requests[index % len(requests)])
                latencies.append(clock() - started)
                if not accept(status, body):
                    refused.append((status, body))
                index += concurrency
        finally:
            conn.close()

    started = clock()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return clock() - started, latencies, refused
