"""Immutable, content-addressed object storage.

:func:`open_store` picks the backend named by ``settings.storage``: ``fs`` (files under the
data directory, the embedded default) or ``s3`` (any S3 API with Object Lock).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import CHUNK_SIZE, ObjectStore, ObjectWriter, Retention, RetentionMode, StoredObject

if TYPE_CHECKING:
    from dangan.config import Settings

__all__ = [
    "CHUNK_SIZE",
    "ObjectStore",
    "ObjectWriter",
    "Retention",
    "RetentionMode",
    "StoredObject",
    "open_store",
]


def open_store(settings: Settings) -> ObjectStore:
    """The object store configured by ``settings``, ready to use.

    Raises :class:`ValueError` when the s3 backend lacks its endpoint or keys, so a
    misconfigured service stops at startup with a clear message.
    """
    # Backends are imported here so that only the one in use loads its client library.
    if settings.storage == "fs":
        from .fs import FsObjectStore

        return FsObjectStore.from_settings(settings)
    if settings.storage == "s3":
        missing = [
            f"DANGAN_{name.upper()}"
            for name in ("s3_endpoint", "s3_access_key", "s3_secret_key")
            if not getattr(settings, name)
        ]
        if missing:
            raise ValueError(f"storage=s3 needs {', '.join(missing)} to be set.")
        from .s3 import S3ObjectStore

        return S3ObjectStore.from_settings(settings)
    raise ValueError(f"Unknown storage backend {settings.storage!r}; use 'fs' or 's3'.")
