"""A kept-alive connection is asked to reconnect after a number of requests."""

from __future__ import annotations

import asyncio

from dangan.api._keepalive import KeepAliveLimit


async def ok(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"0"), (b"connection", b"keep-alive")]})
    await send({"type": "http.response.body", "body": b""})


def call(app: KeepAliveLimit, *, client=("10.0.0.1", 50000), http_version: str = "1.1") -> dict:
    scope = {"type": "http", "http_version": http_version, "method": "GET", "path": "/healthz",
             "client": client, "server": ("127.0.0.1", 8000), "headers": []}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return dict(sent[0]["headers"])


def test_every_nth_response_on_a_connection_closes_it() -> None:
    app = KeepAliveLimit(ok, max_requests=3)
    closes = [call(app).get(b"connection") for _ in range(7)]
    assert closes == [b"keep-alive", b"keep-alive", b"close"] * 2 + [b"keep-alive"]
    # each connection counts on its own
    assert call(app, client=("10.0.0.1", 50001)).get(b"connection") == b"keep-alive"


def test_connections_without_a_peer_or_connection_header_are_left_alone() -> None:
    app = KeepAliveLimit(ok, max_requests=1)
    assert call(app, client=None)[b"connection"] == b"keep-alive"
    assert call(app, http_version="2")[b"connection"] == b"keep-alive"
    assert call(app)[b"connection"] == b"close"
