"""Object keys and byte ranges, shared by every backend.

A key is the lowercase hex SHA-256 of the content (FIPS 180-4). Backends lay objects out
under ``sha256/<first two hex digits>/<hex>`` so that no directory (or listing prefix)
grows past 1/256 of the store. Keys arrive from callers, so they are validated before
they ever become a path or an S3 key.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from dangan.errors import InvalidRequest, NotFound, RangeNotSatisfiable

if TYPE_CHECKING:
    from dangan.storage.base import ObjectStore

#: Top-level folder (fs) or key prefix (S3) that holds the objects.
KEY_PREFIX = "sha256"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def is_sha256(value: object) -> bool:
    """Whether ``value`` is 64 lowercase hex digits."""
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None


def check_sha256(value: object) -> str:
    """Return ``value`` if it is a well-formed key, else raise :class:`InvalidRequest`."""
    if not is_sha256(value):
        raise InvalidRequest("An object key must be 64 lowercase hex digits (a SHA-256).")
    return value  # type: ignore[return-value]


def fan_out(sha256: str) -> tuple[str, str, str]:
    """The layout of a key: ``(prefix, first two hex digits, full hex)``."""
    return KEY_PREFIX, sha256[:2], sha256


def object_key(sha256: str) -> str:
    """The S3 object name of a key, ``sha256/ab/<hex>``."""
    return "/".join(fan_out(sha256))


def resolve_range(size: int, start: int, end: int | None) -> tuple[int, int]:
    """Clamp the half-open byte range ``[start, end)`` to an object of ``size`` bytes.

    ``end`` beyond the object is clamped (as in RFC 9110 §14.1.2); ``start == size``
    is an empty read, so an empty object reads as nothing; ``start > size`` cannot be
    served (RFC 9110 §15.5.17).
    """
    if start < 0 or (end is not None and end < start):
        raise InvalidRequest("A byte range needs 0 <= start <= end.")
    if start > size:
        raise RangeNotSatisfiable(
            f"The range starts at byte {start} but the object has {size} bytes."
        )
    stop = size if end is None else min(end, size)
    return start, stop


def object_range(store: ObjectStore, sha256: str, start: int, end: int | None) -> tuple[int, int]:
    """:func:`resolve_range` for a stored object; :class:`NotFound` when it is absent."""
    found = store.stat(sha256)
    if found is None:
        raise NotFound(f"No object {sha256}.")
    return resolve_range(found.size, start, end)
