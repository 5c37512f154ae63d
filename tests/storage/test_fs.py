"""What only the fs store does: its layout on disk, lock files, and the ``now`` it is given."""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dangan.config import Settings
from dangan.errors import BackendUnavailable, IntegrityError, RetentionLocked
from dangan.storage import Retention, RetentionMode
from dangan.storage.fs import FsObjectStore

UNTIL = datetime(2031, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def fs(tmp_path: Path) -> FsObjectStore:
    return FsObjectStore(root=tmp_path / "objects")


def put(store: FsObjectStore, data: bytes) -> str:
    writer = store.open_writer()
    writer.write(data)
    return writer.commit().sha256


def test_objects_are_read_only_files_in_a_fan_out(fs: FsObjectStore) -> None:
    sha = put(fs, b"layout")
    assert sha == hashlib.sha256(b"layout").hexdigest()
    path = fs.root / "sha256" / sha[:2] / sha
    assert path.read_bytes() == b"layout"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert list((fs.root / "tmp").iterdir()) == []


def test_from_settings_uses_the_data_dir(tmp_path: Path) -> None:
    store = FsObjectStore.from_settings(Settings(data_dir=tmp_path / "data"))
    assert store.root == (tmp_path / "data" / "objects").absolute()
    assert (store.root / "sha256").is_dir()


def test_delete_obeys_the_given_now(fs: FsObjectStore) -> None:
    sha = put(fs, b"retained")
    fs.set_retention(sha, Retention(mode=RetentionMode.GOVERNANCE, until=UNTIL))
    with pytest.raises(RetentionLocked):
        fs.delete(sha, now=UNTIL - timedelta(microseconds=1))
    fs.delete(sha, now=UNTIL)  # the lock holds while now < until
    assert fs.stat(sha) is None


def test_locks_are_sidecar_files_that_outlive_the_store_object(tmp_path: Path) -> None:
    first = FsObjectStore(root=tmp_path / "objects")
    sha = put(first, b"locked")
    first.set_retention(sha, Retention(mode=RetentionMode.COMPLIANCE, until=UNTIL))
    first.set_legal_hold(sha, True)
    sidecar = first.root / "locks" / sha[:2] / f"{sha}.json"
    assert json.loads(sidecar.read_text()) == {
        "legal_hold": True,
        "mode": "COMPLIANCE",
        "until": UNTIL.isoformat(),
    }

    again = FsObjectStore(root=tmp_path / "objects")
    assert again.get_retention(sha) == Retention(mode=RetentionMode.COMPLIANCE, until=UNTIL)
    with pytest.raises(RetentionLocked):
        again.delete(sha, now=UNTIL + timedelta(days=1))  # the legal hold still holds
    again.set_legal_hold(sha, False)
    again.delete(sha, now=UNTIL + timedelta(days=1))
    assert not sidecar.exists()
    assert list((again.root / "tmp").iterdir()) == []


def test_a_corrupt_lock_file_is_an_integrity_error(fs: FsObjectStore) -> None:
    sha = put(fs, b"corrupt lock")
    fs.set_legal_hold(sha, True)
    (fs.root / "locks" / sha[:2] / f"{sha}.json").write_text("{not json")
    with pytest.raises(IntegrityError):
        fs.delete(sha, now=UNTIL)
    assert fs.stat(sha) is not None


def test_iter_keys_ignores_foreign_files(fs: FsObjectStore) -> None:
    sha = put(fs, b"mine")
    (fs.root / "sha256" / sha[:2] / "notes.txt").write_text("not an object")
    misplaced = "ff" + sha[2:] if sha[:2] != "ff" else "00" + sha[2:]
    (fs.root / "sha256" / sha[:2] / misplaced).write_text("wrong fan")
    assert list(fs.iter_keys()) == [sha]


def test_check_fails_when_the_directory_is_gone(fs: FsObjectStore) -> None:
    fs.check()
    shutil.rmtree(fs.root)
    with pytest.raises(BackendUnavailable):
        fs.check()


def test_fan_out_directories_exist_before_any_object(tmp_path: Path) -> None:
    store = FsObjectStore(root=tmp_path / "objects")
    fans = sorted(p.name for p in (store.root / "sha256").iterdir())
    assert fans == [f"{i:02x}" for i in range(256)]
    FsObjectStore(root=tmp_path / "objects")  # a second start finds them all


def test_unnamed_files_that_cannot_be_linked_fall_back_to_named_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    real_link = os.link

    def no_proc_links(src: str, dst: str, **kwargs: object) -> None:
        if str(src).startswith("/proc/"):
            raise PermissionError(1, "Operation not permitted", src)
        real_link(src, dst, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "link", no_proc_links)
    store = FsObjectStore(root=tmp_path / "objects")
    assert not store._unnamed
    store.check()
    writer = store.open_writer()
    writer.write(b"named after all")
    assert [p.suffix for p in (store.root / "tmp").iterdir()] == [".part"]
    stored = writer.commit()
    assert b"".join(store.read(stored.sha256)) == b"named after all"
    assert list((store.root / "tmp").iterdir()) == []
