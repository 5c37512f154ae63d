"""The object store protocol: immutable, content-addressed blobs.

An object's key is the lowercase hex SHA-256 of its bytes (DESIGN.md invariant 1). Writes
stream: the writer hashes while it writes, so memory stays flat for any size, and the
object becomes visible under its hash only on :meth:`ObjectWriter.commit`, after it is
durable (fsynced, or acknowledged by S3). Retention and legal hold live here too, so
that deletion is refused below the API (DESIGN.md invariant 5).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

#: Size of the chunks readers yield.
CHUNK_SIZE = 1024 * 1024


class RetentionMode(enum.Enum):
    """S3 Object Lock retention modes (the fs store enforces both the same way)."""

    GOVERNANCE = "GOVERNANCE"
    COMPLIANCE = "COMPLIANCE"


@dataclass(frozen=True)
class StoredObject:
    """A committed object."""

    sha256: str
    """Lowercase hex SHA-256 of the content; the object's key."""
    size: int
    """Length of the content in bytes."""


@dataclass(frozen=True)
class Retention:
    """A retention lock on an object."""

    mode: RetentionMode
    """How strictly the lock holds (COMPLIANCE cannot be shortened or removed)."""
    until: datetime
    """The object cannot be deleted before this instant (timezone-aware, UTC)."""


@runtime_checkable
class ObjectWriter(Protocol):
    """A streaming write of one new object; hash and size are computed as it goes."""

    @property
    def size(self) -> int:
        """Bytes written so far."""
        ...

    def write(self, chunk: bytes) -> None:
        """Append ``chunk`` to the object."""
        ...

    def commit(self) -> StoredObject:
        """Make the object durable and visible under its SHA-256; idempotent on content."""
        ...

    def abort(self) -> None:
        """Discard everything written; safe to call more than once and after commit."""
        ...


@runtime_checkable
class ObjectStore(Protocol):
    """Content-addressed, immutable object storage."""

    def open_writer(self) -> ObjectWriter:
        """Start a streaming write of a new object."""
        ...

    def stat(self, sha256: str) -> StoredObject | None:
        """The object's size, or ``None`` when it is absent."""
        ...

    def read(self, sha256: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``start`` up to (excluding) ``end`` of the object.

        Raises :class:`dangan.errors.NotFound` when the object is absent.
        """
        ...

    def iter_keys(self) -> Iterator[str]:
        """Every stored object's SHA-256, in no particular order (for audits)."""
        ...

    def set_retention(self, sha256: str, retention: Retention) -> None:
        """Lock the object until ``retention.until``; a lock can be extended, never shortened."""
        ...

    def get_retention(self, sha256: str) -> Retention | None:
        """The object's retention lock, if any."""
        ...

    def set_legal_hold(self, sha256: str, on: bool) -> None:
        """Place or lift a legal hold."""
        ...

    def get_legal_hold(self, sha256: str) -> bool:
        """Whether a legal hold is in place."""
        ...

    def delete(self, sha256: str, *, now: datetime) -> None:
        """Remove the object for good (lawful disposition only).

        Raises :class:`dangan.errors.RetentionLocked` while a retention lock is in force at
        ``now`` or a legal hold is set, and :class:`dangan.errors.NotFound` when absent.
        """
        ...

    def check(self) -> None:
        """Raise :class:`dangan.errors.BackendUnavailable` unless the store is usable."""
        ...

    def cleanup_temp(self) -> int:
        """Remove temporary files left by writers that died (call at startup after a crash).

        Files of writers still alive, in this or another process, are kept. Returns how
        many files were removed.
        """
        ...

    def close(self) -> None:
        """Release clients, files and temporary space."""
        ...
