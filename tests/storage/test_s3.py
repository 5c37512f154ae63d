"""What only the S3 store does, checked behind its back with a raw minio client.

The point of these tests is that retention holds *in the storage*: even a client that
bypasses dangan cannot delete a locked version (S3 Object Lock, DESIGN.md invariant 5).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from minio import Minio
from minio.error import S3Error

from dangan.config import Settings
from dangan.errors import BackendUnavailable, IntegrityError
from dangan.storage import Retention, RetentionMode
from dangan.storage.s3 import S3ObjectStore
from tests.support.seaweed import HOST, free_ports

pytestmark = pytest.mark.s3


@pytest.fixture
def s3(s3_settings: Settings, tmp_path: Path) -> Iterator[S3ObjectStore]:
    store = S3ObjectStore.from_settings(s3_settings, spool_dir=tmp_path / "spool")
    yield store
    store.close()


@pytest.fixture
def raw(s3_settings: Settings) -> Minio:
    """A plain minio client on the same endpoint, going around dangan."""
    endpoint = urlsplit(s3_settings.s3_endpoint)
    return Minio(
        endpoint.netloc,
        access_key=s3_settings.s3_access_key,
        secret_key=s3_settings.s3_secret_key,
        secure=endpoint.scheme == "https",
    )


def put(store: S3ObjectStore, data: bytes) -> str:
    writer = store.open_writer()
    writer.write(data)
    return writer.commit().sha256


def key_of(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256}"


def versions(raw: Minio, bucket: str, sha256: str) -> list[tuple[str, bool]]:
    listing = raw.list_objects(bucket, prefix=key_of(sha256), include_version=True)
    return [(item.version_id, item.is_delete_marker) for item in listing]


def test_bucket_is_created_with_object_lock(s3: S3ObjectStore, raw: Minio) -> None:
    raw.get_object_lock_config(s3.bucket)  # raises unless Object Lock is on
    assert raw.get_bucket_versioning(s3.bucket).status == "Enabled"


@pytest.mark.parametrize("lock", ["compliance", "governance", "legal-hold"])
def test_object_lock_refuses_raw_deletion(s3: S3ObjectStore, raw: Minio, lock: str) -> None:
    sha = put(s3, os.urandom(1000))
    until = datetime.now(UTC) + timedelta(minutes=2)
    if lock == "legal-hold":
        s3.set_legal_hold(sha, True)
    else:
        s3.set_retention(sha, Retention(mode=RetentionMode(lock.upper()), until=until))
    [(version_id, _)] = versions(raw, s3.bucket, sha)
    with pytest.raises(S3Error) as refused:
        raw.remove_object(s3.bucket, key_of(sha), version_id=version_id)
    assert refused.value.code == "AccessDenied"
    assert s3.stat(sha) is not None
    if lock == "legal-hold":
        s3.set_legal_hold(sha, False)
        raw.remove_object(s3.bucket, key_of(sha), version_id=version_id)
        assert s3.stat(sha) is None


def test_a_delete_marker_does_not_remove_a_locked_version(s3: S3ObjectStore, raw: Minio) -> None:
    data = os.urandom(1000)
    sha = put(s3, data)
    until = datetime.now(UTC) + timedelta(minutes=2)
    s3.set_retention(sha, Retention(mode=RetentionMode.COMPLIANCE, until=until))
    raw.remove_object(s3.bucket, key_of(sha))  # no version: S3 only adds a delete marker
    assert sorted(marker for _, marker in versions(raw, s3.bucket, sha)) == [False, True]
    assert put(s3, data) == sha  # written again: a new latest version
    assert b"".join(s3.read(sha)) == data


def test_same_content_is_uploaded_once(s3: S3ObjectStore, raw: Minio) -> None:
    data = os.urandom(2000)
    sha = put(s3, data)
    assert put(s3, data) == sha
    assert len(versions(raw, s3.bucket, sha)) == 1


def test_delete_removes_every_version(s3: S3ObjectStore, raw: Minio) -> None:
    data = os.urandom(1000)
    sha = put(s3, data)
    raw.remove_object(s3.bucket, key_of(sha))  # a delete marker,
    assert put(s3, data) == sha  # then a second version of the same content
    assert len(versions(raw, s3.bucket, sha)) == 3
    s3.delete(sha, now=datetime.now(UTC))
    assert versions(raw, s3.bucket, sha) == []


def test_a_corrupted_spool_is_refused_by_the_server(s3: S3ObjectStore) -> None:
    data = os.urandom(4096)
    writer = s3.open_writer()
    writer.write(data)
    [spooled] = list(s3.spool_dir.iterdir())
    with spooled.open("r+b") as file:  # flip one byte behind the writer's back
        file.write(bytes([data[0] ^ 0xFF]))
    with pytest.raises(IntegrityError):
        writer.commit()  # x-amz-checksum-sha256 carries the hash of what was written
    writer.abort()
    assert s3.stat(hashlib.sha256(data).hexdigest()) is None


def test_a_bucket_without_object_lock_is_refused(s3_settings: Settings, raw: Minio) -> None:
    plain = f"dangan-plain-{uuid.uuid4().hex[:12]}"
    raw.make_bucket(plain)
    try:
        with pytest.raises(BackendUnavailable, match="without Object Lock"):
            S3ObjectStore.from_settings(s3_settings.model_copy(update={"s3_bucket": plain}))
    finally:
        raw.remove_bucket(plain)


def test_check_fails_without_the_bucket(s3: S3ObjectStore, raw: Minio, tmp_path: Path) -> None:
    s3.check()
    missing = S3ObjectStore(
        client=raw, bucket=f"dangan-missing-{uuid.uuid4().hex[:12]}", spool_dir=tmp_path / "x"
    )
    with pytest.raises(BackendUnavailable, match="does not exist"):
        missing.check()


def test_an_unreachable_endpoint_is_backend_unavailable(s3_settings: Settings) -> None:
    [port] = free_ports(1)  # nothing listens there
    settings = s3_settings.model_copy(update={"s3_endpoint": f"http://{HOST}:{port}"})
    with pytest.raises(BackendUnavailable):
        S3ObjectStore.from_settings(settings)
