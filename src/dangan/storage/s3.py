"""The S3 object store, through the minio client, with S3 Object Lock.

Objects live under ``sha256/ab/<hex>`` in one bucket created with Object Lock enabled
(which turns versioning on). Retention and legal holds are Object Lock settings on every
version of a key, so the storage itself refuses deletion (DESIGN.md invariant 5); this
class checks the same rules first, to give a clear error, and maps the server's refusal
to :class:`~dangan.errors.RetentionLocked` as well.

Writes are spooled to a local temporary file while they are hashed, then uploaded under
their SHA-256 unless an object with that key exists already.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.datatypes import Object
from minio.error import S3Error
from minio.helpers import MAX_MULTIPART_COUNT, MIN_PART_SIZE, md5sum_hash
from minio.retention import Retention as S3Retention
from minio.xml import marshal

from dangan.errors import BackendUnavailable, IntegrityError, NotFound

from . import _retention
from ._keys import KEY_PREFIX, check_sha256, is_sha256, object_key, object_range
from ._s3_errors import NO_LEGAL_HOLD, NO_RETENTION, s3_errors
from ._spool import SpooledWriter, SpoolFile, ensure_dir, remove_stale
from .base import CHUNK_SIZE, Retention, RetentionMode, StoredObject

if TYPE_CHECKING:
    from dangan.config import Settings

_MIB = 1024 * 1024


def _parse_endpoint(url: str) -> tuple[str, bool]:
    """``host:port`` and whether to use TLS, from an endpoint URL like ``http://h:8333``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"DANGAN_S3_ENDPOINT must be an http(s) URL, got {url!r}.")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"DANGAN_S3_ENDPOINT must not have a path or query, got {url!r}.")
    return parts.netloc, parts.scheme == "https"


def _http_pool() -> urllib3.PoolManager:
    """Connections for minio: its defaults, with fewer retries so an outage shows quickly.

    TLS is verified against the system trust store (which honours ``SSL_CERT_FILE``).
    """
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=10, read=300),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )


def _part_size(size: int) -> int:
    """The smallest multipart part S3 allows for ``size`` bytes.

    Parts are at least 5 MiB and at most 10,000 (AWS S3 API, UploadPart); minio holds up
    to two parts in memory, so the smallest part keeps uploads lean.
    """
    return max(MIN_PART_SIZE, math.ceil(size / MAX_MULTIPART_COUNT / _MIB) * _MIB)


def _from_s3(lock: S3Retention | None) -> Retention | None:
    if lock is None or not lock.mode:
        return None
    return Retention(mode=RetentionMode(lock.mode), until=lock.retain_until_date.astimezone(UTC))


class S3ObjectStore:
    """Objects in one S3 bucket with Object Lock; see the module docstring."""

    def __init__(
        self,
        *,
        client: Minio,
        bucket: str,
        spool_dir: Path,
        http: urllib3.PoolManager | None = None,
    ) -> None:
        self.bucket = bucket
        """The bucket holding the objects."""
        self.spool_dir = spool_dir.absolute()
        """Where writes are spooled before they are uploaded."""
        self._client = client
        self._http = http
        try:
            ensure_dir(self.spool_dir)
        except OSError as exc:
            raise BackendUnavailable(f"Cannot create spool dir {self.spool_dir}: {exc}") from exc

    @classmethod
    def from_settings(cls, settings: Settings, *, spool_dir: Path | None = None) -> S3ObjectStore:
        """Connect to ``settings.s3_endpoint`` and make sure the bucket exists with Object Lock.

        Writes spool to ``spool_dir``, by default ``<data_dir>/tmp``.
        """
        if not settings.s3_endpoint:
            raise ValueError("The s3 storage backend needs DANGAN_S3_ENDPOINT.")
        if not settings.s3_access_key or not settings.s3_secret_key:
            raise ValueError(
                "The s3 storage backend needs DANGAN_S3_ACCESS_KEY and DANGAN_S3_SECRET_KEY."
            )
        endpoint, secure = _parse_endpoint(settings.s3_endpoint)
        http = _http_pool()
        client = Minio(
            endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            secure=secure,
            region=settings.s3_region,
            http_client=http,
        )
        store = cls(
            client=client,
            bucket=settings.s3_bucket,
            spool_dir=spool_dir or settings.data_dir / "tmp",
            http=http,
        )
        try:
            store.ensure_bucket()
        except BaseException:
            store.close()
            raise
        return store

    def ensure_bucket(self) -> None:
        """Create the bucket with Object Lock if it is missing; refuse one without it."""
        with s3_errors(f"create bucket {self.bucket}"):
            if not self._client.bucket_exists(self.bucket):
                try:
                    self._client.make_bucket(self.bucket, object_lock=True)
                except S3Error as exc:  # another process may have just created it
                    if exc.code != "BucketAlreadyOwnedByYou":
                        raise
            try:
                self._client.get_object_lock_config(self.bucket)
            except S3Error as exc:
                if exc.code not in NO_RETENTION:
                    raise
                # Object Lock can only be enabled when a bucket is created (AWS S3 API).
                raise BackendUnavailable(
                    f"Bucket {self.bucket} exists without Object Lock; retention could not "
                    "be enforced. Use a bucket created with Object Lock enabled."
                ) from exc

    # -- objects -----------------------------------------------------------------------

    def open_writer(self) -> SpooledWriter:
        """Start a streaming write, spooled to a local temporary file."""
        try:
            spool = SpoolFile.create(self.spool_dir)
        except OSError as exc:
            raise BackendUnavailable(f"Cannot start a write in {self.spool_dir}: {exc}") from exc
        return SpooledWriter(spool=spool, install=self._install)

    def stat(self, sha256: str) -> StoredObject | None:
        """The object's size, or ``None`` when it is absent."""
        key = object_key(check_sha256(sha256))
        try:
            with s3_errors(f"stat {sha256}", sha256=sha256):
                info = self._client.stat_object(self.bucket, key)
        except NotFound:
            return None
        return StoredObject(sha256=sha256, size=int(info.size or 0))

    def read(self, sha256: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``[start, end)`` in chunks of at most ``CHUNK_SIZE``."""
        first, stop = object_range(self, sha256, start, end)
        return self._chunks(sha256, first, stop)

    def iter_keys(self) -> Iterator[str]:
        """Every stored object's SHA-256 (latest versions that are not delete markers)."""
        with s3_errors("list objects"):
            listing = self._client.list_objects(
                self.bucket, prefix=f"{KEY_PREFIX}/", recursive=True
            )
            for item in listing:
                parts = (item.object_name or "").split("/")
                if len(parts) == 3 and is_sha256(parts[2]) and parts[1] == parts[2][:2]:
                    yield parts[2]

    def delete(self, sha256: str, *, now: datetime) -> None:
        """Remove every version of the object, unless a lock or hold protects one."""
        key = object_key(check_sha256(sha256))
        with s3_errors(f"list the versions of {sha256}", sha256=sha256):
            versions = self._versions(key)
        contents = [v for v in versions if not v.is_delete_marker]
        if not contents:
            raise NotFound(f"No object {sha256}.")
        for version in contents:
            retention, hold = self._locks(sha256, version.version_id)
            _retention.ensure_deletable(retention, hold, now=now)
        with s3_errors(f"delete {sha256}", sha256=sha256, denied_means_locked=True):
            for version in contents + [v for v in versions if v.is_delete_marker]:
                self._client.remove_object(self.bucket, key, version_id=version.version_id)

    # -- retention and legal hold ------------------------------------------------------

    def set_retention(self, sha256: str, retention: Retention) -> None:
        """Lock every version of the object; extend or strengthen only."""
        new = _retention.normalise(retention)
        current = self.get_retention(sha256)
        if not _retention.needs_change(current, new):
            return
        bypass = (
            current is not None
            and current.mode is RetentionMode.GOVERNANCE
            and new.mode is RetentionMode.COMPLIANCE
        )
        key = object_key(sha256)
        action = f"set the retention of {sha256}"
        with s3_errors(action, sha256=sha256, denied_means_locked=True):
            for version in self._versions(key):
                if not version.is_delete_marker:
                    self._put_retention(key, version.version_id, new, bypass_governance=bypass)

    def get_retention(self, sha256: str) -> Retention | None:
        """The retention lock of the object's latest version, if any."""
        return self._locks(check_sha256(sha256), None)[0]

    def set_legal_hold(self, sha256: str, on: bool) -> None:
        """Place or lift a legal hold on every version of the object."""
        key = object_key(check_sha256(sha256))
        if self.stat(sha256) is None:
            raise NotFound(f"No object {sha256}.")
        action = f"{'place' if on else 'lift'} a legal hold on {sha256}"
        with s3_errors(action, sha256=sha256, denied_means_locked=True):
            for version in self._versions(key):
                if version.is_delete_marker:
                    continue
                if on:
                    self._client.enable_object_legal_hold(self.bucket, key, version.version_id)
                else:
                    self._client.disable_object_legal_hold(self.bucket, key, version.version_id)

    def get_legal_hold(self, sha256: str) -> bool:
        """Whether a legal hold is set on the object's latest version."""
        return self._locks(check_sha256(sha256), None)[1]

    # -- housekeeping ------------------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`BackendUnavailable` unless the bucket answers and the spool is writable."""
        with s3_errors(f"reach bucket {self.bucket}"):
            exists = self._client.bucket_exists(self.bucket)
        if not exists:
            raise BackendUnavailable(f"Bucket {self.bucket} does not exist.")
        try:
            SpoolFile.create(self.spool_dir).discard()
        except OSError as exc:
            raise BackendUnavailable(f"Spool dir {self.spool_dir} is unusable: {exc}") from exc

    def cleanup_temp(self) -> int:
        """Remove spool files of writers that died; returns how many."""
        try:
            return remove_stale(self.spool_dir)
        except OSError as exc:
            raise BackendUnavailable(f"Cannot clean spool dir {self.spool_dir}: {exc}") from exc

    def close(self) -> None:
        """Close pooled connections the store opened itself."""
        if self._http is not None:
            self._http.clear()

    # -- internals ---------------------------------------------------------------------

    def _install(self, spool: SpoolFile, stored: StoredObject) -> None:
        """Upload the spooled file unless the object exists; then check what S3 holds."""
        found = self.stat(stored.sha256)
        if found is None:
            self._upload(spool.path, stored)
            found = self.stat(stored.sha256)
        if found is None or found.size != stored.size:
            held = "nothing" if found is None else f"{found.size} bytes"
            raise IntegrityError(
                f"S3 holds {held} under {stored.sha256}, expected {stored.size} bytes."
            )

    def _upload(self, path: Path, stored: StoredObject) -> None:
        part_size = _part_size(stored.size)
        headers = {}
        if stored.size <= part_size:
            # One PUT: S3 checks the body against our SHA-256 and refuses a mismatch with
            # BadDigest (AWS S3 API, PutObject x-amz-checksum-sha256, base64 digest).
            digest = bytes.fromhex(stored.sha256)
            headers["x-amz-checksum-sha256"] = base64.b64encode(digest).decode("ascii")
        # Larger objects go up in parts; minio signs each part's SHA-256 (SigV4, over
        # http) or sends its Content-MD5 (over https), so S3 verifies every part, and
        # _install compares the size afterwards.
        with s3_errors(f"upload {stored.sha256}"), path.open("rb") as data:
            self._client.put_object(
                self.bucket,
                object_key(stored.sha256),
                data,
                stored.size,
                metadata=headers or None,
                part_size=part_size,
                num_parallel_uploads=1,
            )

    def _chunks(self, sha256: str, start: int, stop: int) -> Iterator[bytes]:
        """GET ``[start, stop)`` and stream it, returning the connection to the pool."""
        if start >= stop:
            return
        received = 0
        with s3_errors(f"read {sha256}", sha256=sha256):
            response = self._client.get_object(
                self.bucket, object_key(sha256), offset=start, length=stop - start
            )
            try:
                for chunk in response.stream(CHUNK_SIZE):
                    received += len(chunk)
                    yield chunk
            finally:
                if received != stop - start:  # stopped early: drop the connection
                    response.close()
                response.release_conn()
        if received != stop - start:
            raise BackendUnavailable(f"S3 sent {received} of {stop - start} bytes of {sha256}.")

    def _versions(self, key: str) -> list[Object]:
        listing = self._client.list_objects(self.bucket, prefix=key, include_version=True)
        return [item for item in listing if item.object_name == key]

    def _locks(self, sha256: str, version_id: str | None) -> tuple[Retention | None, bool]:
        """Retention and legal hold of one version (the latest when ``version_id`` is None)."""
        key = object_key(sha256)
        with s3_errors(f"read the locks of {sha256}", sha256=sha256):
            try:
                retention = _from_s3(
                    self._client.get_object_retention(self.bucket, key, version_id)
                )
            except S3Error as exc:
                if exc.code not in NO_RETENTION:
                    raise
                retention = None
            try:
                hold = self._client.is_object_legal_hold_enabled(self.bucket, key, version_id)
            except S3Error as exc:
                if exc.code not in NO_LEGAL_HOLD:
                    raise
                hold = False
        return retention, hold

    def _put_retention(
        self, key: str, version_id: str | None, retention: Retention, *, bypass_governance: bool
    ) -> None:
        lock = S3Retention(retention.mode.value, retention.until)
        if not bypass_governance:
            self._client.set_object_retention(self.bucket, key, lock, version_id=version_id)
            return
        # Changing a GOVERNANCE lock's mode (here: to COMPLIANCE, never to anything weaker)
        # needs x-amz-bypass-governance-retention (AWS S3 API, PutObjectRetention).
        # minio 7.2 has no parameter for it, so send the request set_object_retention
        # sends, plus that header.
        body = marshal(lock)
        query = {"retention": ""} | ({"versionId": version_id} if version_id else {})
        self._client._execute(  # noqa: SLF001
            "PUT",
            self.bucket,
            object_name=key,
            body=body,
            headers={
                "Content-MD5": md5sum_hash(body),
                "x-amz-bypass-governance-retention": "true",
            },
            query_params=query,
        )
