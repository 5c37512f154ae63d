"""Identifiers: UUIDv7 (RFC 9562 §5.7), random and time-ordered, never sequential.

Also random names (request ids, :class:`RandomNames`) and names that only need to be
unique (temporary files, :class:`UniqueNames`).
"""

from __future__ import annotations

import itertools
import os
import secrets
import uuid
from datetime import datetime

_RAND_BITS = 74
_RAND_BYTES = 10  # 80 bits drawn, the low 74 used


def new_id(now: datetime) -> str:
    """A UUIDv7 string: 48-bit Unix milliseconds, then 74 random bits (RFC 9562 §5.7)."""
    return new_ids(now, 1)[0]


def new_ids(now: datetime, count: int) -> list[str]:
    """``count`` UUIDv7 strings for ``now``, with one call to the OS CSPRNG for all."""
    millis = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    pool = os.urandom(_RAND_BYTES * count)
    ids = []
    for i in range(count):
        chunk = pool[i * _RAND_BYTES : (i + 1) * _RAND_BYTES]
        rand = int.from_bytes(chunk, "big") & ((1 << _RAND_BITS) - 1)
        value = (
            (millis << 80)
            | (0x7 << 76)
            | ((rand >> 62) << 64)
            | (0b10 << 62)
            | (rand & ((1 << 62) - 1))
        )
        ids.append(str(uuid.UUID(int=value)))
    return ids


class UniqueNames:
    """Names as unique as a random UUID's 32 hex digits, without a call to the OS CSPRNG
    for each: 16 random digits drawn once per process, then a 16-digit counter.

    Neither secret nor unordered: for temporary file names, never for anything a client
    sees (a counter would tell how busy the process is).
    """

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._counter = itertools.count()

    def next(self) -> str:
        """A new name."""
        if self._pid != os.getpid():  # first use, or a forked child: a prefix of its own
            self._pid, self._prefix = os.getpid(), secrets.token_hex(8)
        return f"{self._prefix}{next(self._counter):016x}"


class RandomNames:
    """Names of 32 random hex digits, like a random UUID's, drawn from the OS CSPRNG 256
    at a time rather than one call per name.

    Unrelated to each other, so a client learns nothing from the ones it sees (request
    ids). Not thread-safe: one per event loop.
    """

    _BATCH = 256

    def __init__(self) -> None:
        self._pid = -1
        self._pool = b""
        self._used = 0

    def next(self) -> str:
        """A new name."""
        if self._used >= len(self._pool) or self._pid != os.getpid():
            self._pid, self._pool, self._used = os.getpid(), os.urandom(16 * self._BATCH), 0
        start, self._used = self._used, self._used + 16
        return self._pool[start : self._used].hex()
