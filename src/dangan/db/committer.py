"""Group commit: many small write jobs share one transaction and one durable commit.

Every acknowledged write must be committed with ``synchronous=FULL`` (SQLite) or a WAL
flush (PostgreSQL); doing that once per upload makes the disk flush, not the work, the
limit. One writer thread per process takes whatever jobs are waiting (up to a batch),
runs them in one transaction, commits once, and only then resolves the jobs' futures — so no caller hears "done" before its
rows are durable (DESIGN.md invariant 4). A single writer also keeps SQLite's writers
from queueing on its busy handler.

A failing job must not take the others down: when one raises, the transaction is rolled
back and the batch is run again with a SAVEPOINT around each job, so that only the failed
job's writes are undone. Jobs therefore must be safe to run twice (they only write to
the database, inside the transaction they are given).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from dangan.db.engine import write_transaction
from dangan.errors import BackendUnavailable

T = TypeVar("T")
_STOP = object()


class GroupCommitter:
    """Runs write jobs on one thread, committing them in batches."""

    def __init__(
        self,
        engine: Engine,
        *,
        seal: Callable[[Connection], Any] | None = None,
        sync: Callable[[], None] | None = None,
        max_batch: int = 64,
    ) -> None:
        """``seal`` runs once per batch after its jobs, in the same transaction (the ledger
        signs its checkpoint there); its value is handed to each job's ``complete``.

        ``sync``, for an engine whose commits are not durable by themselves (SQLite with
        ``deferred_sync``), makes every commit so far durable. A second thread calls it
        once for all batches committed meanwhile and only then resolves their futures,
        while the writer goes on with the next batch.
        """
        self.engine = engine
        """The engine the writes go through."""
        self._seal = seal
        self._sync = sync
        self._max_batch = max_batch
        self._synced: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._syncer = (
            threading.Thread(target=self._sync_loop, name="dangan-syncer", daemon=True)
            if sync is not None
            else None
        )
        if self._syncer is not None:
            self._syncer.start()
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="dangan-writer", daemon=True)
        self._thread.start()

    def submit(
        self,
        job: Callable[[Connection], Any],
        *,
        complete: Callable[[Connection, Any, Any], T] | None = None,
    ) -> Future[T]:
        """Queue ``job``; its future resolves after the transaction holding it commits.

        ``complete(conn, value, sealed)``, when given, turns the job's value into the
        result once the batch is sealed (still inside the transaction).
        """
        if self._closed:
            raise BackendUnavailable("the database writer is shut down")
        future: Future[T] = Future()
        self._jobs.put((job, complete, future))
        return future

    def run(
        self,
        job: Callable[[Connection], Any],
        *,
        complete: Callable[[Connection, Any, Any], T] | None = None,
    ) -> T:
        """Run ``job`` and wait for its durable result (or its exception)."""
        return self.submit(job, complete=complete).result()

    def close(self) -> None:
        """Finish the queued jobs, then stop the writer thread."""
        if not self._closed:
            self._closed = True
            self._jobs.put(_STOP)
            self._thread.join()
            if self._syncer is not None:
                self._synced.put(_STOP)
                self._syncer.join()

    def _loop(self) -> None:
        while True:
            first = self._jobs.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._run_batch(batch)
            if stop:
                return

    def _run_batch(self, batch: list[tuple[Any, Any, Future[Any]]]) -> None:
        try:
            outcomes = self._attempt(batch, isolate=False)
        except _JobFailed:
            # Rare: a job failed. Start over with a savepoint per job, so that only the
            # failed job's writes are rolled back and the others still commit.
            try:
                outcomes = self._attempt(batch, isolate=True)
            except BaseException as exc:
                self._fail(batch, exc)
                return
        except BaseException as exc:  # the batch or its commit failed: nothing is durable
            self._fail(batch, exc)
            return
        if self._syncer is not None:
            self._synced.put((batch, outcomes))
        else:
            self._resolve(batch, outcomes)

    @staticmethod
    def _resolve(batch: list[tuple[Any, Any, Future[Any]]], outcomes: list[tuple[bool, Any]]) -> None:
        for (_job, _complete, future), (ok, value) in zip(batch, outcomes):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _sync_loop(self) -> None:
        assert self._sync is not None
        while True:
            pending = [self._synced.get()]
            while True:
                try:
                    pending.append(self._synced.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in pending)
            done = [item for item in pending if item is not _STOP]
            if done:
                try:
                    self._sync()
                except BaseException as exc:  # not durable: nobody may hear "done"
                    for batch, _outcomes in done:
                        self._fail(batch, exc)
                else:
                    for batch, outcomes in done:
                        self._resolve(batch, outcomes)
            if stop:
                return

    def _attempt(self, batch: list[tuple[Any, Any, Future[Any]]], *, isolate: bool) -> list[tuple[bool, Any]]:
        """Run the batch in one transaction and commit; outcomes per job."""
        outcomes: list[tuple[bool, Any]] = []
        with write_transaction(self.engine) as conn:
            for job, _complete, _future in batch:
                if isolate:
                    outcomes.append(self._run_isolated(conn, job))
                    continue
                try:
                    outcomes.append((True, job(conn)))
                except Exception as exc:
                    raise _JobFailed() from exc
            if any(ok for ok, _ in outcomes):
                sealed = self._seal(conn) if self._seal is not None else None
                outcomes = [
                    (True, complete(conn, value, sealed)) if ok and complete else (ok, value)
                    for (_job, complete, _future), (ok, value) in zip(batch, outcomes)
                ]
        return outcomes

    @staticmethod
    def _fail(batch: list[tuple[Any, Any, Future[Any]]], exc: BaseException) -> None:
        for _job, _complete, future in batch:
            future.set_exception(exc)

    @staticmethod
    def _run_isolated(conn: Connection, job: Callable[[Connection], Any]) -> tuple[bool, Any]:
        savepoint = conn.begin_nested()
        try:
            value = job(conn)
        except Exception as exc:
            savepoint.rollback()
            return False, exc
        savepoint.commit()
        return True, value


class _JobFailed(Exception):
    """A job raised during an optimistic (savepoint-free) batch."""
