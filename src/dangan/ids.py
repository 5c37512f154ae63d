"""Identifiers: UUIDv7 (RFC 9562 §5.7), random and time-ordered, never sequential."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime


def new_id(now: datetime) -> str:
    """A UUIDv7 string: 48-bit Unix milliseconds, then 74 random bits (RFC 9562 §5.7)."""
    millis = int(now.timestamp() * 1000) & ((1 << 48) - 1)
    rand = secrets.randbits(74)
    value = (millis << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))
