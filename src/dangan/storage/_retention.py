"""The rules of retention locks and legal holds, shared by every backend.

They follow S3 Object Lock (AWS S3 User Guide, "Locking objects with Object Lock"): a
lock may be extended or strengthened (GOVERNANCE to COMPLIANCE) but never shortened or
weakened, and an object cannot be deleted while a lock is in force or a legal hold is
set. The fs store enforces these rules itself; the S3 store checks them before asking
the server, which enforces them again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dangan.errors import InvalidRequest, RetentionLocked

from .base import Retention, RetentionMode


def ensure_aware(moment: datetime, what: str) -> datetime:
    """``moment`` in UTC; a naive datetime is refused, since its instant is ambiguous."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidRequest(f"{what} must be a timezone-aware datetime.")
    return moment.astimezone(UTC)


def normalise(retention: Retention) -> Retention:
    """``retention`` in UTC, rounded *up* to a whole second.

    S3 keeps retain-until dates to the second; rounding up means that no backend ever
    releases a lock before the instant the caller asked for.
    """
    until = ensure_aware(retention.until, "Retention.until")
    whole = until.replace(microsecond=0)
    if whole != until:
        whole += timedelta(seconds=1)
    if not isinstance(retention.mode, RetentionMode):
        raise InvalidRequest("Retention.mode must be a RetentionMode.")
    return Retention(mode=retention.mode, until=whole)


def needs_change(current: Retention | None, new: Retention) -> bool:
    """Whether ``new`` changes ``current``; raise :class:`RetentionLocked` if it weakens it."""
    if current is None:
        return True
    if new.until < current.until:
        raise RetentionLocked(
            "A retention lock can be extended, never shortened.",
            until=current.until.isoformat(),
        )
    if current.mode is RetentionMode.COMPLIANCE and new.mode is RetentionMode.GOVERNANCE:
        raise RetentionLocked("A COMPLIANCE lock cannot be weakened to GOVERNANCE.")
    return new != current


def ensure_deletable(retention: Retention | None, legal_hold: bool, *, now: datetime) -> None:
    """Raise :class:`RetentionLocked` while a lock is in force at ``now`` or a hold is set."""
    now = ensure_aware(now, "now")
    if legal_hold:
        raise RetentionLocked("The object is under legal hold.")
    if retention is not None and now < retention.until:
        raise RetentionLocked(
            f"The object is retained ({retention.mode.value}) until "
            f"{retention.until.isoformat()}.",
            until=retention.until.isoformat(),
        )
