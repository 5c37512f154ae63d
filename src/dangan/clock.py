"""Time is a parameter: code that needs "now" takes a :data:`Clock`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

#: A function returning the current instant, timezone-aware.
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The machine's wall clock in UTC."""
    return datetime.now(UTC)
