"""A per-address rate limit for the public, unauthenticated routes (token bucket)."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict

from fastapi import Request

from dangan.errors import DanganError


class TooManyRequests(DanganError):
    code = "too_many_requests"
    title = "Too many requests from this address; try again shortly"
    status = 429


class RateLimiter:
    """Each client address may make ``per_minute`` requests a minute, in bursts of up to
    ``per_minute``; kept in this process, for the most recently seen addresses."""

    def __init__(self, *, per_minute: int, max_addresses: int = 100_000) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, address: str, *, now: float | None = None) -> None:
        """Take one token for ``address``; :class:`TooManyRequests` with Retry-After when
        its bucket is empty. Runs on the event loop: no awaits, so no lock is needed."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(address, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[address] = (tokens, now)
            wait = math.ceil((1.0 - tokens) / self.rate)
            raise TooManyRequests(headers={"Retry-After": str(wait)})
        self._buckets[address] = (tokens - 1.0, now)
        if len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)  # the address seen longest ago


def client_key(host: str | None) -> str:
    """The bucket of a peer: its IPv4 address, or its IPv6 /64 (one subscriber's
    network: an IPv6 host may take any address in it)."""
    if not host:
        return "unknown"
    if ":" not in host:
        return host
    try:
        return str(ipaddress.IPv6Network(f"{host}/64", strict=False))
    except ValueError:
        return host


async def public_rate_limit(request: Request) -> None:
    """Dependency: the app's :class:`RateLimiter`, keyed by :func:`client_key`."""
    host = request.client.host if request.client else None
    request.app.state.ctx.public_limiter.check(client_key(host))
