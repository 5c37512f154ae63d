"""The public rate limit: buckets per address (IPv6 per /64), refill, Retry-After."""

from __future__ import annotations

import pytest

from dangan.api.ratelimit import RateLimiter, TooManyRequests, client_key


def test_buckets_refill_and_say_when() -> None:
    limiter = RateLimiter(per_minute=2)
    limiter.check("a", now=0.0)
    limiter.check("a", now=0.0)
    with pytest.raises(TooManyRequests) as caught:
        limiter.check("a", now=1.0)
    assert caught.value.headers["Retry-After"] == "29"
    limiter.check("b", now=1.0)  # another address has its own bucket
    limiter.check("a", now=31.0)  # one token back after 30 s


def test_ipv6_clients_share_their_slash_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key(None) == "unknown"


def test_memory_is_bounded() -> None:
    limiter = RateLimiter(per_minute=1, max_addresses=3)
    for i in range(10):
        limiter.check(f"10.0.0.{i}", now=0.0)
    assert len(limiter._buckets) == 3
    limiter.check("10.0.0.0", now=0.0)  # forgotten, so it starts afresh
