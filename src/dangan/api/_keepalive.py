"""A limit on the requests one kept-alive connection carries (like nginx's
``keepalive_requests``).

With several worker processes, a connection stays with the worker that accepted it for
as long as it lives, so a few long-lived clients can pile onto one worker while another
idles. Asking the client to reconnect now and then (``Connection: close`` on the last
response, RFC 9112 §9.6) lets the next connection go to whichever worker accepts first,
which is the one with the least to do.
"""

from __future__ import annotations

from collections import OrderedDict

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Connections tracked at most; the oldest are forgotten first (their count restarts).
_TRACKED = 4096


class KeepAliveLimit:
    """Closes each connection after it has carried ``max_requests`` requests."""

    def __init__(self, app: ASGIApp, *, max_requests: int) -> None:
        self.app = app
        self.max_requests = max_requests
        self._served: OrderedDict[tuple[object, object], int] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client") if scope["type"] == "http" else None
        if peer is None or scope.get("http_version") not in ("1.0", "1.1"):
            await self.app(scope, receive, send)  # no TCP peer, or no Connection header
            return
        connection = (tuple(peer), tuple(scope.get("server") or ()))
        served = self._served.pop(connection, 0) + 1
        if served < self.max_requests:
            self._served[connection] = served
            if len(self._served) > _TRACKED:
                self._served.popitem(last=False)
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ()) if k != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, send_closing)
