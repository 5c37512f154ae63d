"""The embedded object store: content-addressed files under the data directory.

Layout under ``root``::

    sha256/ab/<hex>        committed objects, read-only (0o444)
    locks/ab/<hex>.json    retention and legal hold of an object, when it has any
    locks/.mutex           serialises lock changes and deletions across processes
    tmp/<name>.part        lock files being replaced, and writes in progress where the
                           system has no unnamed files

A write goes to an unnamed file on ``tmp/``'s filesystem (Linux ``O_TMPFILE``; a named
``tmp/`` file elsewhere) while it is hashed, is fsynced, and only then linked into place
and its directory fsynced, so an acknowledged object survives a crash and a crash never
leaves a half-written object under its key (DESIGN.md invariant 4).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dangan.errors import BackendUnavailable, IntegrityError, NotFound

from . import _retention
from ._keys import KEY_PREFIX, check_sha256, fan_out, is_sha256, object_range
from ._spool import (
    SpooledWriter,
    SpoolFile,
    ensure_dir,
    fsync_dir,
    fsync_dir_fd,
    open_dir,
    remove_stale,
    unnamed_files_work,
)
from .base import CHUNK_SIZE, Retention, RetentionMode, StoredObject

if TYPE_CHECKING:
    from dangan.config import Settings

_LOCKS = "locks"
_TMP = "tmp"


def _make_fan_out(parent: Path) -> None:
    """Create the 256 fan-out directories ``00`` … ``ff`` that are missing, then sync
    ``parent`` once. Made before any object, they are durable before any object in them
    is reported: a writer that finds a directory never depends on another's sync of it."""
    made = False
    for i in range(256):
        try:
            (parent / f"{i:02x}").mkdir()
        except FileExistsError:
            continue
        made = True
    if made:
        fsync_dir(parent)


@contextmanager
def _os_errors(action: str) -> Iterator[None]:
    """Turn unexpected filesystem errors into :class:`BackendUnavailable`."""
    try:
        yield
    except OSError as exc:
        raise BackendUnavailable(f"The object store could not {action}: {exc}") from exc


class FsObjectStore:
    """Objects as files under ``root``; see the module docstring for the layout."""

    def __init__(self, *, root: Path) -> None:
        self.root = root.absolute()
        """The store's directory."""
        with _os_errors("create its directories"):
            for name in (KEY_PREFIX, _LOCKS, _TMP):
                ensure_dir(self.root / name)
            _make_fan_out(self.root / KEY_PREFIX)
            self._unnamed = unnamed_files_work(self.root / _TMP)

    @classmethod
    def from_settings(cls, settings: Settings) -> FsObjectStore:
        """The store at ``<data_dir>/objects``."""
        return cls(root=settings.data_dir / "objects")

    # -- objects -----------------------------------------------------------------------

    def open_writer(self) -> SpooledWriter:
        """Start a streaming write of a new object into ``tmp/``."""
        with _os_errors("start a write"):
            spool = self._new_spool()
        return SpooledWriter(spool=spool, install=self._install)

    def stat(self, sha256: str) -> StoredObject | None:
        """The object's size, or ``None`` when it is absent."""
        path = self._object_path(check_sha256(sha256))
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BackendUnavailable(f"The object store could not stat {sha256}: {exc}") from exc
        return StoredObject(sha256=sha256, size=size)

    def read(self, sha256: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``[start, end)`` in chunks of at most ``CHUNK_SIZE``."""
        first, stop = object_range(self, sha256, start, end)
        return self._chunks(sha256, first, stop)

    def iter_keys(self) -> Iterator[str]:
        """Every stored object's SHA-256, walking the fan-out directories."""
        top = self.root / KEY_PREFIX
        with _os_errors("list objects"):
            fans = sorted(entry.name for entry in os.scandir(top) if entry.is_dir())
        for fan in fans:
            with _os_errors("list objects"):
                names = [entry.name for entry in os.scandir(top / fan) if entry.is_file()]
            yield from (name for name in names if is_sha256(name) and name[:2] == fan)

    def delete(self, sha256: str, *, now: datetime) -> None:
        """Remove the object unless a retention lock is in force at ``now`` or a hold is set."""
        path = self._object_path(check_sha256(sha256))
        with self._mutex():
            if not path.exists():
                raise NotFound(f"No object {sha256}.")
            retention, hold = self._read_locks(sha256)
            _retention.ensure_deletable(retention, hold, now=now)
            with _os_errors("delete an object"):
                path.unlink()
                fsync_dir(path.parent)
                self._write_locks(sha256, None, False)

    # -- retention and legal hold ------------------------------------------------------

    def set_retention(self, sha256: str, retention: Retention) -> None:
        """Lock the object until ``retention.until``; extend or strengthen only."""
        new = _retention.normalise(retention)
        with self._mutex():
            current, hold = self._read_locks(self._existing(sha256))
            if _retention.needs_change(current, new):
                self._write_locks(sha256, new, hold)

    def get_retention(self, sha256: str) -> Retention | None:
        """The object's retention lock, if any."""
        return self._read_locks(self._existing(sha256))[0]

    def set_legal_hold(self, sha256: str, on: bool) -> None:
        """Place or lift a legal hold."""
        with self._mutex():
            retention, hold = self._read_locks(self._existing(sha256))
            if hold != on:
                self._write_locks(sha256, retention, on)

    def get_legal_hold(self, sha256: str) -> bool:
        """Whether a legal hold is in place."""
        return self._read_locks(self._existing(sha256))[1]

    # -- housekeeping ------------------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`BackendUnavailable` unless a durable write to ``tmp/`` works."""
        try:
            for name in (KEY_PREFIX, _LOCKS):
                if not (self.root / name).is_dir():
                    raise FileNotFoundError(f"missing directory {self.root / name}")
            probe = self._new_spool()
            try:
                probe.write(b"ok")
                probe.sync()
            finally:
                probe.discard()
        except OSError as exc:
            raise BackendUnavailable(f"The object store at {self.root} is unusable: {exc}") from exc

    def cleanup_temp(self) -> int:
        """Remove temporary files of writers that died; returns how many."""
        with _os_errors("clean up temporary files"):
            return remove_stale(self.root / _TMP)

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own files."""

    # -- internals ---------------------------------------------------------------------

    def _object_path(self, sha256: str) -> Path:
        return self.root.joinpath(*fan_out(sha256))

    def _chunks(self, sha256: str, start: int, stop: int) -> Iterator[bytes]:
        """Read ``[start, stop)`` with unbuffered reads of at most ``CHUNK_SIZE``."""
        if start >= stop:
            return
        try:
            file = open(self._object_path(sha256), "rb", buffering=0)  # noqa: SIM115
        except FileNotFoundError as exc:
            raise NotFound(f"No object {sha256}.") from exc
        with file, _os_errors("read an object"):
            file.seek(start)
            remaining = stop - start
            while remaining:
                chunk = file.read(min(CHUNK_SIZE, remaining))
                if not chunk:
                    raise IntegrityError(f"Object {sha256} is shorter than its recorded size.")
                remaining -= len(chunk)
                yield chunk

    def _lock_path(self, sha256: str) -> Path:
        _, fan, name = fan_out(sha256)
        return self.root / _LOCKS / fan / f"{name}.json"

    def _existing(self, sha256: str) -> str:
        if self.stat(sha256) is None:
            raise NotFound(f"No object {sha256}.")
        return sha256

    def _install(self, spool: SpoolFile, stored: StoredObject) -> None:
        """fsync, make read-only, link (or rename) under the key and fsync the directory.

        If the object exists already its content is identical (same SHA-256), so it is
        left as it is and the temporary file is simply dropped by the writer. A named
        temporary file stays locked until it is in place, so ``cleanup_temp`` cannot
        take it.
        """
        final = self._object_path(stored.sha256)
        with _os_errors("commit an object"):
            os.fchmod(spool.fd, 0o444)
            spool.sync()  # data and inode, including the mode (POSIX fsync)
            try:
                dir_fd = open_dir(final.parent)
            except FileNotFoundError:  # made at start; removed since by hand
                ensure_dir(final.parent)
                dir_fd = open_dir(final.parent)
            try:
                spool.place(dir_fd, final.name)
                fsync_dir_fd(dir_fd)  # the new name is durable before the object is reported
            finally:
                os.close(dir_fd)

    def _new_spool(self) -> SpoolFile:
        if self._unnamed:
            return SpoolFile.create_unnamed(self.root / _TMP)
        return SpoolFile.create(self.root / _TMP)

    @contextmanager
    def _mutex(self) -> Iterator[None]:
        """Serialise lock changes and deletions, across threads and processes (flock)."""
        with _os_errors("take the lock mutex"):
            fd = os.open(self.root / _LOCKS / ".mutex", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read_locks(self, sha256: str) -> tuple[Retention | None, bool]:
        try:
            raw = self._lock_path(sha256).read_bytes()
        except FileNotFoundError:
            return None, False
        except OSError as exc:
            raise BackendUnavailable(f"The lock file of {sha256} is unreadable: {exc}") from exc
        try:
            data = json.loads(raw)
            retention = None
            if data.get("mode") is not None:
                until = datetime.fromisoformat(data["until"])
                retention = Retention(mode=RetentionMode(data["mode"]), until=until)
            return retention, bool(data["legal_hold"])
        except (ValueError, KeyError, TypeError) as exc:
            raise IntegrityError(f"The lock file of {sha256} is corrupt.") from exc

    def _write_locks(self, sha256: str, retention: Retention | None, hold: bool) -> None:
        """Replace the lock file atomically (temp file, fsync, rename, fsync directory)."""
        path = self._lock_path(sha256)
        with _os_errors("write a lock file"):
            if retention is None and not hold:
                if path.exists():
                    path.unlink()
                    fsync_dir(path.parent)
                return
            body = {
                "mode": retention.mode.value if retention else None,
                "until": retention.until.isoformat() if retention else None,
                "legal_hold": hold,
            }
            ensure_dir(path.parent)
            spool = SpoolFile.create(self.root / _TMP)
            try:
                spool.write(json.dumps(body, sort_keys=True).encode())
                spool.sync()
                os.replace(spool.path, path)
            except BaseException:
                spool.discard()
                raise
            spool.close()
            fsync_dir(path.parent)
