"""Temporary files that are hashed as they fill, and locked while their writer lives.

Each named temporary file carries an exclusive ``flock`` for as long as its writer holds
it open. The kernel drops the lock when the process dies, so :func:`remove_stale` can tell
the leftovers of a crash from the files of live writers in any process.

Where the filesystem allows it (Linux ``O_TMPFILE``), a temporary file can also have no
name at all until it is linked into place (:meth:`SpoolFile.create_unnamed`): a crash
leaves nothing behind, and there is no name to lock, check or remove.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from dangan.errors import BackendUnavailable
from dangan.ids import UniqueNames

from .base import StoredObject

_SUFFIX = ".part"


#: Temporary file names; O_EXCL catches the unlikely collision.
_names = UniqueNames()


def _unnamed_flags() -> int:
    """``open`` flags for an unnamed file, or 0 where the system cannot link one in."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not os.path.isdir("/proc/self/fd"):
        return 0
    return flag | os.O_WRONLY | os.O_CLOEXEC


_UNNAMED_FLAGS = _unnamed_flags()


class SpoolFile:
    """A temporary file written with raw ``os.write`` calls and hashed with SHA-256."""

    def __init__(self, *, path: Path | None, fd: int) -> None:
        self.path = path
        """Where the file lives while it is being written; ``None`` for an unnamed file."""
        self._fd: int | None = fd
        self._hash = hashlib.sha256()
        self._size = 0
        self._broken = False
        self._placed = False

    @classmethod
    def create_unnamed(cls, directory: Path) -> SpoolFile:
        """A new, empty file on ``directory``'s filesystem that has no name until
        :meth:`place` gives it one (``O_TMPFILE``). :class:`OSError` where the system or
        the filesystem has no such files: :func:`unnamed_files_work` tells beforehand."""
        if not _UNNAMED_FLAGS:
            raise OSError(errno.EOPNOTSUPP, "no unnamed files that can be linked here", str(directory))
        return cls(path=None, fd=os.open(directory, _UNNAMED_FLAGS, 0o600))

    @classmethod
    def create(cls, directory: Path) -> SpoolFile:
        """Create and lock a new, empty temporary file in ``directory``."""
        while True:
            path = directory / f"{_names.next()}{_SUFFIX}"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            try:
                fd = os.open(path, flags, 0o600)
            except FileExistsError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # A concurrent remove_stale may have locked and unlinked the file between
                # our open and our flock; then start again with a new name.
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    return cls(path=path, fd=fd)
            except (BlockingIOError, FileNotFoundError):
                pass
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    @property
    def fd(self) -> int:
        """The open file descriptor (the file must not be closed yet)."""
        if self._fd is None:
            raise ValueError("The temporary file is closed.")
        return self._fd

    def write(self, chunk: bytes) -> None:
        """Append ``chunk``, hashing it; loops over short writes."""
        fd = self.fd
        if self._broken:
            raise ValueError("An earlier write failed; the temporary file is unusable.")
        view = memoryview(chunk).cast("B")
        length = view.nbytes
        try:
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except BaseException:
            # Part of the chunk may be on disk but not in the hash: never commit this file.
            self._broken = True
            raise
        self._hash.update(chunk)
        self._size += length

    def hexdigest(self) -> str:
        """Lowercase hex SHA-256 of everything written."""
        if self._broken:
            raise ValueError("An earlier write failed; the temporary file is unusable.")
        return self._hash.hexdigest()

    def sync(self) -> None:
        """Flush the file's data and metadata to stable storage (POSIX ``fsync``)."""
        os.fsync(self.fd)

    def close(self) -> None:
        """Close the descriptor, which releases the lock; idempotent."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def place(self, dir_fd: int, name: str) -> bool:
        """Give the file the name ``name`` in the open directory ``dir_fd``: an unnamed
        file by a hard link, a named one by renaming it. ``False`` when ``name`` exists
        already, which is then left as it is (the file is dropped by :meth:`discard`)."""
        if self.path is None:
            # An unnamed file is linked through its /proc descriptor (open(2), O_TMPFILE).
            try:
                os.link(f"/proc/self/fd/{self.fd}", name, dst_dir_fd=dir_fd, follow_symlinks=True)
            except FileExistsError:
                return False
            return True
        try:
            os.stat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            os.replace(self.path, name, dst_dir_fd=dir_fd)
            self._placed = True
            return True
        return False

    def discard(self) -> None:
        """Remove the temporary name (if any) and close the file; idempotent."""
        if self._fd is not None and self.path is not None and not self._placed:
            self.path.unlink(missing_ok=True)
        self.close()


def unnamed_files_work(directory: Path) -> bool:
    """Whether an unnamed file can be created in ``directory`` and linked into it (the
    filesystem takes ``O_TMPFILE``, ``/proc`` is there and hard links are allowed)."""
    try:
        probe = SpoolFile.create_unnamed(directory)
    except OSError:
        return False
    name = f"{_names.next()}.probe"
    try:
        dir_fd = open_dir(directory)
        try:
            probe.place(dir_fd, name)
            os.unlink(name, dir_fd=dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        return False
    finally:
        probe.discard()
    return True


class SpooledWriter:
    """An :class:`~dangan.storage.base.ObjectWriter` that fills a :class:`SpoolFile`.

    On commit, ``install`` makes the finished file a stored object (link or rename it into
    place, or upload it); the temporary file is removed afterwards in either case.
    """

    def __init__(
        self, *, spool: SpoolFile, install: Callable[[SpoolFile, StoredObject], None]
    ) -> None:
        self._spool: SpoolFile | None = spool
        self._install = install
        self._result: StoredObject | None = None

    @property
    def size(self) -> int:
        """Bytes written so far."""
        if self._result is not None:
            return self._result.size
        return self._spool.size if self._spool is not None else 0

    def write(self, chunk: bytes) -> None:
        """Append ``chunk`` to the object."""
        spool = self._open_spool()
        try:
            spool.write(chunk)
        except OSError as exc:
            raise BackendUnavailable(f"Writing a temporary file failed: {exc}") from exc

    def commit(self) -> StoredObject:
        """Install the object under its SHA-256; repeated calls return the same result."""
        if self._result is not None:
            return self._result
        spool = self._open_spool()
        result = StoredObject(sha256=spool.hexdigest(), size=spool.size)
        self._install(spool, result)
        self._result = result
        self.abort()
        return result

    def abort(self) -> None:
        """Remove the temporary file; safe to repeat, and a no-op after commit."""
        if self._spool is not None:
            spool, self._spool = self._spool, None
            try:
                spool.discard()
            except OSError as exc:
                raise BackendUnavailable(f"Removing a temporary file failed: {exc}") from exc

    def _open_spool(self) -> SpoolFile:
        if self._spool is None:
            state = "committed" if self._result is not None else "aborted"
            raise ValueError(f"The writer was already {state}.")
        return self._spool


def remove_stale(directory: Path) -> int:
    """Remove temporary files in ``directory`` that no live writer holds; return the count."""
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not entry.name.endswith(_SUFFIX) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            os.unlink(entry.path)
            removed += 1
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)
    return removed


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (new, renamed or removed files) durable.

    POSIX leaves it open whether ``rename`` and ``unlink`` are durable before the
    directory itself is synced; on Linux they are not.
    """
    fd = open_dir(directory)
    try:
        fsync_dir_fd(fd)
    finally:
        os.close(fd)


def open_dir(directory: Path) -> int:
    """A descriptor of ``directory`` itself (for ``fsync``, or ``*at`` calls in it)."""
    return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def fsync_dir_fd(fd: int) -> None:
    """:func:`fsync_dir` of a directory already open as ``fd``."""
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems cannot fsync a directory
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise


def ensure_dir(directory: Path) -> None:
    """Create ``directory`` (and missing parents), syncing each parent that gained an entry.

    When another thread or process created it meanwhile, the parent is synced all the
    same: that creator may not have synced it yet.
    """
    if directory.is_dir():
        return
    ensure_dir(directory.parent)
    try:
        directory.mkdir()
    except FileExistsError:
        pass
    fsync_dir(directory.parent)
