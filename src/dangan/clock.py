"""Time is a parameter: code that needs "now" takes a :data:`Clock`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

#: A function returning the current instant, timezone-aware.
Clock = Callable[[], datetime]


def utc_text(moment: datetime) -> str:
    """``moment`` (timezone-aware) in UTC as RFC 3339 §5.6 with a trailing Z, to the
    microsecond when it has a fraction, whole seconds otherwise."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def system_clock() -> datetime:
    """The machine's wall clock in UTC."""
    return datetime.now(UTC)
