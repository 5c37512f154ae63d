"""Engine factory for the two supported databases and the write-transaction helper.

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` so that a
committed transaction survives power loss, with foreign keys enforced. Write transactions
start with ``BEGIN IMMEDIATE`` so that two writers never both read the ledger head and then
fail to upgrade their locks; since SQLite runs one writer at a time anyway, a process's
writers queue on one lock and take turns on one connection kept for them. PostgreSQL is
reached through psycopg 3.
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

_WRITE = "dangan_write"


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` URLs and pin the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_db_engine(url: str, *, deferred_sync: bool = False, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with dangan's durability settings.

    ``deferred_sync`` (SQLite only) commits without flushing the WAL to disk: the caller
    promises to make each commit durable with :func:`sync_wal` before reporting it done.
    The group committer uses it to flush many commits at once, off its critical path.
    """
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, synchronous="NORMAL" if deferred_sync else "FULL", **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(url, **kwargs)


def _sqlite_engine(url: str, *, synchronous: str, **kwargs: Any) -> Engine:
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("check_same_thread", False)
    connect_args.setdefault("timeout", 60)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module (see "begin" below).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        # Straight to the driver: this runs for every transaction.
        conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")

    path = engine.url.database
    if path and path != ":memory:":
        writer = _Writer(engine, path)
        # The engine owns its writer (through this listener); _WRITERS only finds it, so
        # that an engine nobody uses any more is collected with its writer's connection.
        event.listen(engine, "engine_disposed", writer.release)
        _WRITERS[engine] = weakref.ref(writer)
    return engine


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: committed on success, rolled back on any error."""
    found = _WRITERS.get(engine)
    writer = found() if found is not None else None
    if writer is None:
        with engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn
        return
    lock = writer.lock
    with lock.threads:  # flock does not exclude threads sharing one open file
        fcntl.flock(lock.fd, fcntl.LOCK_EX)
        try:
            conn = writer.connection()
            try:
                with conn.begin():
                    yield conn
            finally:
                writer.check(conn)
        finally:
            fcntl.flock(lock.fd, fcntl.LOCK_UN)


class _WriterLock:
    """Queues the writers of one SQLite database: a kernel lock (``flock``) for processes,
    a mutex for the threads of this one. Opened once per process.

    SQLite's own busy handler polls with sleeps of up to 100 ms, so writers from several
    worker processes would wait far longer than the lock is held; ``flock`` wakes the
    next writer as soon as the previous one is done.
    """

    def __init__(self, path: str) -> None:
        self.fd = os.open(f"{path}.writer-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.threads = threading.Lock()


# Lock files by database path: like the flock itself, this is per process by nature.
_LOCKS: dict[str, _WriterLock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(path: str) -> _WriterLock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(path)
        if lock is None:
            lock = _LOCKS[path] = _WriterLock(path)
        return lock


class _Writer:
    """The connection one SQLite engine's write transactions take turns on, under its lock.

    Checking a connection out of the pool, and SQLAlchemy's set-up of a new ``Connection``,
    cost more than a small durable write itself; writers are serialised by the lock, so
    one connection, kept out of the pool (detached: the pool neither counts nor resets
    it), serves them all. It is closed when the engine is disposed, and replaced if an
    error left it invalid or closed.
    """

    def __init__(self, engine: Engine, path: str) -> None:
        self._engine = weakref.ref(engine)
        self._path = path
        self._lock: _WriterLock | None = None
        self._conn: Connection | None = None

    @property
    def lock(self) -> _WriterLock:
        """The database's writer lock, opened on the first write (readers need no file)."""
        if self._lock is None:
            self._lock = _lock_for(self._path)
        return self._lock

    def connection(self) -> Connection:
        """The kept connection (made on first use); call with the lock held."""
        if self._conn is None:
            engine = self._engine()
            assert engine is not None, "the engine was collected"
            conn = engine.connect()
            conn.detach()
            self._conn = conn.execution_options(**{_WRITE: True})
        return self._conn

    def check(self, conn: Connection) -> None:
        """After a transaction on ``conn``: give it up if it was released meanwhile or the
        transaction left it unusable."""
        if conn is not self._conn or conn.closed or conn.invalidated:
            if conn is self._conn:
                self._conn = None
            conn.close()

    def release(self, _engine: Engine | None = None) -> None:
        """Give up the kept connection (on ``Engine.dispose``); like the pool, leave one
        that is in a transaction to its writer, who closes it when done."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.in_transaction():
            conn.close()


_WRITERS: weakref.WeakKeyDictionary[Engine, weakref.ref[_Writer]] = weakref.WeakKeyDictionary()


def sync_wal(engine: Engine) -> None:
    """Flush everything committed so far on a ``deferred_sync`` SQLite engine to disk.

    In WAL mode a commit is durable once its frames are on stable storage; with
    ``synchronous=NORMAL`` SQLite leaves that sync out, so this supplies it, as SQLite
    would: ``fdatasync`` of the WAL (its data and the size it needs to be read back, not
    its timestamps). If the WAL is gone (checkpointed and removed), SQLite synced the
    database file when it checkpointed; the database file is synced again anyway.
    """
    path = engine.url.database
    assert engine.dialect.name == "sqlite" and path
    for target, sync in ((f"{path}-wal", _fdatasync), (path, os.fsync)):
        try:
            fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            sync(fd)
        finally:
            os.close(fd)
        return


_fdatasync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync


def stored_time(moment: datetime) -> datetime:
    """A timestamp read back from the database, as an aware UTC datetime.

    Values are always written timezone-aware in UTC; SQLite hands them back naive.
    """
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def is_sqlite(engine: Engine) -> bool:
    """Whether ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"
