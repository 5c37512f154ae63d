"""The ObjectStore contract, run against every backend (fs, and S3 on SeaweedFS)."""

from __future__ import annotations

import hashlib
import os
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from dangan.errors import InvalidRequest, NotFound, RangeNotSatisfiable, RetentionLocked
from dangan.storage import (
    CHUNK_SIZE,
    ObjectStore,
    ObjectWriter,
    Retention,
    RetentionMode,
    StoredObject,
)
from tests.storage.conftest import Backend

MiB = 1024 * 1024
GOVERNANCE = RetentionMode.GOVERNANCE
COMPLIANCE = RetentionMode.COMPLIANCE


def put(store: ObjectStore, data: bytes, *, piece: int = 100_003) -> StoredObject:
    writer = store.open_writer()
    for offset in range(0, len(data), piece):
        writer.write(data[offset : offset + piece])
    return writer.commit()


def read_all(store: ObjectStore, sha256: str, **span: int | None) -> bytes:
    chunks = list(store.read(sha256, **span))
    assert all(0 < len(chunk) <= CHUNK_SIZE for chunk in chunks)
    return b"".join(chunks)


def temp_files(backend: Backend) -> list[str]:
    """Temporary files in the backend's temporary directory: named ones, and unnamed ones
    (O_TMPFILE) that this process holds open, which /proc shows as ``#<inode> (deleted)``."""
    named = [path.name for path in backend.temp_dir.iterdir()]
    unnamed = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the descriptor listdir itself used, closed since
            continue
        if target.startswith(f"{backend.temp_dir}/#"):
            unnamed.append(target.rpartition("/")[2])
    return sorted(named + unnamed)


def wall_now() -> datetime:
    return datetime.now(UTC)


def whole_second_up(moment: datetime) -> datetime:
    whole = moment.replace(microsecond=0)
    return whole if whole == moment else whole + timedelta(seconds=1)


def wait_until_past(backend: Backend, until: datetime) -> datetime:
    """A ``now`` after ``until``; S3 also asks the server's clock, so there we really wait."""
    if backend.name == "s3":
        while wall_now() < until + timedelta(seconds=1):
            time.sleep(0.2)
    return until + timedelta(seconds=1)


def missing_key() -> str:
    return hashlib.sha256(os.urandom(32)).hexdigest()


def test_store_and_writer_satisfy_the_protocols(store: ObjectStore) -> None:
    assert isinstance(store, ObjectStore)
    writer = store.open_writer()
    assert isinstance(writer, ObjectWriter)
    writer.abort()
    store.check()


@pytest.mark.parametrize(
    "size",
    [0, 1, 1000, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17, 5 * MiB + 1],
)
def test_write_commit_read_roundtrip(store: ObjectStore, size: int) -> None:
    data = os.urandom(size)
    writer = store.open_writer()
    for offset in range(0, size, 100_003):
        writer.write(data[offset : offset + 100_003])
    assert writer.size == size
    stored = writer.commit()
    assert stored == StoredObject(sha256=hashlib.sha256(data).hexdigest(), size=size)
    assert store.stat(stored.sha256) == stored
    assert read_all(store, stored.sha256) == data
    assert stored.sha256 in set(store.iter_keys())


def test_writer_accepts_any_bytes_like(store: ObjectStore) -> None:
    writer = store.open_writer()
    writer.write(bytearray(b"abc"))
    writer.write(memoryview(b"xxdefxx")[2:5])
    stored = writer.commit()
    assert read_all(store, stored.sha256) == b"abcdef"


def test_same_content_twice_is_one_object(backend: Backend) -> None:
    store = backend.store
    data = os.urandom(10_000)
    first, second = store.open_writer(), store.open_writer()
    first.write(data)
    second.write(data)
    assert first.commit() == second.commit()
    assert put(store, data) == first.commit()
    assert list(store.iter_keys()).count(first.commit().sha256) == 1
    assert temp_files(backend) == []


def test_commit_is_idempotent_and_closes_the_writer(backend: Backend) -> None:
    writer = backend.store.open_writer()
    writer.write(b"once")
    stored = writer.commit()
    assert writer.commit() == stored
    writer.abort()  # a no-op after commit
    assert backend.store.stat(stored.sha256) == stored
    with pytest.raises(ValueError):
        writer.write(b"more")
    assert temp_files(backend) == []


def test_abort_leaves_nothing(backend: Backend) -> None:
    data = os.urandom(3 * MiB)
    writer = backend.store.open_writer()
    writer.write(data)
    assert len(temp_files(backend)) == 1
    writer.abort()
    writer.abort()
    assert backend.store.stat(hashlib.sha256(data).hexdigest()) is None
    assert temp_files(backend) == []
    with pytest.raises(ValueError):
        writer.write(b"x")
    with pytest.raises(ValueError):
        writer.commit()


def test_ranges(store: ObjectStore) -> None:
    data = os.urandom(2 * CHUNK_SIZE + CHUNK_SIZE // 2)
    sha, size = put(store, data).sha256, len(data)
    spans = [
        (0, None),
        (10, 20),
        (CHUNK_SIZE - 5, CHUNK_SIZE + 5),
        (CHUNK_SIZE, 2 * CHUNK_SIZE),
        (size - 1, None),
        (100, size + 1000),  # an end past the object is clamped
        (size, None),  # empty
        (7, 7),  # empty
    ]
    for start, end in spans:
        assert read_all(store, sha, start=start, end=end) == data[start:end], (start, end)
    with pytest.raises(RangeNotSatisfiable):
        store.read(sha, start=size + 1)
    with pytest.raises(InvalidRequest):
        store.read(sha, start=-1)
    with pytest.raises(InvalidRequest):
        store.read(sha, start=10, end=5)


def test_empty_object_reads_as_nothing(store: ObjectStore) -> None:
    sha = put(store, b"").sha256
    assert read_all(store, sha) == b""
    assert read_all(store, sha, start=0, end=10) == b""


def test_missing_objects(store: ObjectStore) -> None:
    sha = missing_key()
    assert store.stat(sha) is None
    with pytest.raises(NotFound):
        store.read(sha)  # raised by the call itself, before iteration
    with pytest.raises(NotFound):
        store.get_retention(sha)
    with pytest.raises(NotFound):
        store.set_retention(sha, Retention(mode=GOVERNANCE, until=wall_now() + timedelta(days=1)))
    with pytest.raises(NotFound):
        store.get_legal_hold(sha)
    with pytest.raises(NotFound):
        store.set_legal_hold(sha, True)
    with pytest.raises(NotFound):
        store.delete(sha, now=wall_now())


@pytest.mark.parametrize(
    "key", ["", "abc", "A" * 64, "g" * 64, "../" + "a" * 61, "a" * 63 + "/", "a" * 64 + "\n"]
)
def test_malformed_keys_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidRequest):
        store.stat(key)
    with pytest.raises(InvalidRequest):
        store.read(key)
    with pytest.raises(InvalidRequest):
        store.get_legal_hold(key)
    with pytest.raises(InvalidRequest):
        store.delete(key, now=wall_now())


def test_iter_keys_lists_each_object_once(store: ObjectStore) -> None:
    written = {put(store, os.urandom(100)).sha256 for _ in range(3)}
    keys = list(store.iter_keys())
    assert written <= set(keys)
    assert len(keys) == len(set(keys))


def test_retention_can_be_extended_or_strengthened_never_weakened(store: ObjectStore) -> None:
    sha = put(store, os.urandom(100)).sha256
    assert store.get_retention(sha) is None
    base = wall_now() + timedelta(minutes=2)  # has microseconds: stored rounded up
    store.set_retention(sha, Retention(mode=GOVERNANCE, until=base))
    assert store.get_retention(sha) == Retention(mode=GOVERNANCE, until=whole_second_up(base))

    later = base + timedelta(minutes=1)
    store.set_retention(sha, Retention(mode=GOVERNANCE, until=later))
    with pytest.raises(RetentionLocked):
        store.set_retention(sha, Retention(mode=GOVERNANCE, until=base))
    store.set_retention(sha, Retention(mode=GOVERNANCE, until=later))  # the same again: fine
    assert store.get_retention(sha) == Retention(mode=GOVERNANCE, until=whole_second_up(later))

    store.set_retention(sha, Retention(mode=COMPLIANCE, until=later))
    with pytest.raises(RetentionLocked):
        store.set_retention(sha, Retention(mode=GOVERNANCE, until=later + timedelta(minutes=5)))
    with pytest.raises(RetentionLocked):
        store.set_retention(sha, Retention(mode=COMPLIANCE, until=base))
    assert store.get_retention(sha) == Retention(mode=COMPLIANCE, until=whole_second_up(later))


def test_times_must_be_timezone_aware(store: ObjectStore) -> None:
    sha = put(store, os.urandom(100)).sha256
    naive = datetime.now() + timedelta(days=1)  # noqa: DTZ005 - the point of the test
    with pytest.raises(InvalidRequest):
        store.set_retention(sha, Retention(mode=GOVERNANCE, until=naive))
    with pytest.raises(InvalidRequest):
        store.delete(sha, now=naive)
    assert store.stat(sha) is not None


def test_delete_is_refused_while_retention_is_in_force(backend: Backend) -> None:
    store = backend.store
    sha = put(store, os.urandom(1000)).sha256
    store.set_retention(sha, Retention(mode=COMPLIANCE, until=wall_now() + timedelta(seconds=2)))
    until = store.get_retention(sha).until
    with pytest.raises(RetentionLocked):
        store.delete(sha, now=until - timedelta(seconds=1))
    assert store.stat(sha) is not None

    store.delete(sha, now=wait_until_past(backend, until))
    assert store.stat(sha) is None
    assert sha not in set(store.iter_keys())
    with pytest.raises(NotFound):
        store.read(sha)


def test_legal_hold_blocks_delete_until_lifted(store: ObjectStore) -> None:
    sha = put(store, os.urandom(1000)).sha256
    assert store.get_legal_hold(sha) is False
    store.set_legal_hold(sha, True)
    store.set_legal_hold(sha, True)
    assert store.get_legal_hold(sha) is True
    with pytest.raises(RetentionLocked):
        store.delete(sha, now=wall_now())
    assert store.stat(sha) is not None
    store.set_legal_hold(sha, False)
    assert store.get_legal_hold(sha) is False
    store.delete(sha, now=wall_now())
    assert store.stat(sha) is None


def test_delete_of_an_unlocked_object(backend: Backend) -> None:
    store = backend.store
    data = os.urandom(5000)
    stored = put(store, data)
    keep = put(store, os.urandom(10))
    store.delete(stored.sha256, now=wall_now())
    assert store.stat(stored.sha256) is None
    assert stored.sha256 not in set(store.iter_keys())
    assert keep.sha256 in set(store.iter_keys())
    with pytest.raises(NotFound):
        store.delete(stored.sha256, now=wall_now())
    assert put(store, data) == stored  # the same content may come back later
    assert read_all(store, stored.sha256) == data


def test_cleanup_temp_removes_what_a_dead_writer_left(backend: Backend) -> None:
    pid = os.fork()
    if pid == 0:  # the child starts a write and dies without commit or abort
        code = 1
        try:
            backend.store.open_writer().write(b"half an upload")
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    left = 0 if backend.unnamed_temp else 1  # an unnamed file dies with its process
    assert len(temp_files(backend)) == left
    assert backend.store.cleanup_temp() == left
    assert temp_files(backend) == []


def test_cleanup_temp_keeps_live_writers(backend: Backend) -> None:
    writer = backend.store.open_writer()
    writer.write(b"still uploading")
    assert backend.store.cleanup_temp() == 0
    writer.write(b", and done")
    stored = writer.commit()
    assert read_all(backend.store, stored.sha256) == b"still uploading, and done"


@pytest.mark.slow
def test_large_streaming_write_keeps_memory_flat(backend: Backend) -> None:
    store, total = backend.store, 64 * MiB
    expected = hashlib.sha256()
    writer = store.open_writer()
    tracemalloc.start()
    try:
        for _ in range(total // MiB):
            block = os.urandom(MiB)
            expected.update(block)
            writer.write(block)
        del block
        write_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        stored = writer.commit()
        commit_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        actual = hashlib.sha256()
        for chunk in store.read(stored.sha256):
            actual.update(chunk)
        read_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stored == StoredObject(sha256=expected.hexdigest(), size=total)
    assert actual.hexdigest() == stored.sha256
    assert write_peak < 8 * MiB
    assert read_peak < 8 * MiB
    # fs links (or renames) a file. S3 uploads 5 MiB parts (the least S3 allows) and minio holds
    # up to two of them at once: bounded, whatever the object's size.
    assert commit_peak < (8 * MiB if backend.name.startswith("fs") else 12 * MiB)
