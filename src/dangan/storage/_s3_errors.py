"""Translating minio and urllib3 errors into dangan errors, at the S3 boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import urllib3
from minio.error import MinioException, S3Error

from dangan.errors import (
    BackendUnavailable,
    DanganError,
    IntegrityError,
    InvalidRequest,
    NotFound,
    RetentionLocked,
)

# S3 error codes. SeaweedFS answers some requests with codes other than AWS's.
MISSING = frozenset({"NoSuchKey", "NoSuchVersion"})
NO_RETENTION = frozenset({"NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError"})
NO_LEGAL_HOLD = frozenset({"NoSuchObjectLockConfiguration", "NoSuchObjectLegalHold"})
BAD_DIGEST = frozenset({"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"})
BAD_REQUEST = frozenset({"InvalidArgument", "InvalidRequest"})


@contextmanager
def s3_errors(
    action: str, *, sha256: str | None = None, denied_means_locked: bool = False
) -> Iterator[None]:
    """Raise dangan errors, ``from`` the original, for what minio or urllib3 raise inside.

    ``denied_means_locked`` marks calls (delete, retention, hold) where S3 answers
    AccessDenied because Object Lock refuses them.
    """
    try:
        yield
    except S3Error as exc:
        raise translate(exc, action, sha256=sha256, locked=denied_means_locked) from exc
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise BackendUnavailable(f"S3 could not {action}: {exc}") from exc


def translate(exc: S3Error, action: str, *, sha256: str | None, locked: bool) -> DanganError:
    """The dangan error for an S3 error response."""
    if exc.code in MISSING:
        return NotFound(f"No object {sha256}." if sha256 else f"S3 could not {action}.")
    if exc.code == "AccessDenied" and locked:
        return RetentionLocked(f"S3 Object Lock refused to {action}.")
    if exc.code in BAD_DIGEST:
        return IntegrityError(f"S3 refused to {action}: the content did not match its digest.")
    if exc.code in BAD_REQUEST:
        return InvalidRequest(f"S3 refused to {action}: {exc.message}")
    return BackendUnavailable(f"S3 could not {action}: {exc.code}: {exc.message}")
