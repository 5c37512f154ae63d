"""Group commit: many small write jobs share one transaction and one durable commit.

Every acknowledged write must be committed with ``synchronous=FULL`` (SQLite) or a WAL
flush (PostgreSQL); doing that once per upload makes the disk flush, not the work, the
limit. One writer thread per process takes whatever jobs are waiting (up to a batch),
runs them in one transaction, commits once, and only then resolves the jobs' futures —
so no caller hears "done" before its rows are durable (DESIGN.md invariant 4). A single
writer also keeps SQLite's writers from queueing on its busy handler. On SQLite the batch
is made up once the write lock (``flock``) is held: jobs that arrive while another process
commits join it. PostgreSQL has no such lock at the start of a transaction (rows are locked
as they are written), so there the batch is made up as the transaction begins.

Jobs of one kind can be handled together: a :class:`BatchHandler` gets all the waiting
items of its kind at once and writes them with one statement per table.

A failing job must not take the others down: when one raises, the transaction is rolled
back and the batch is run again with a SAVEPOINT around each item, so that only the
failed item's writes are undone. Jobs therefore must be safe to run twice (they only
write to the database, inside the transaction they are given).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine

from dangan.db.engine import write_transaction
from dangan.errors import BackendUnavailable

T = TypeVar("T")
_STOP = object()
Outcome = tuple[bool, Any]


class BatchHandler(Protocol):
    """Writes many items of one kind in one go."""

    def run_many(self, conn: Connection, items: Sequence[Any]) -> list[Any]:
        """Write ``items``; one value per item, in order."""
        ...

    def complete_many(self, conn: Connection, values: Sequence[Any], sealed: Any) -> list[Any]:
        """Turn the values into results once the batch is sealed (same transaction)."""
        ...


class _Single:
    """A plain job as a handler of one item."""

    def __init__(self, job: Callable[[Connection], Any], complete: Callable[..., Any] | None):
        self.job, self.complete = job, complete

    def run_many(self, conn: Connection, items: Sequence[Any]) -> list[Any]:
        return [self.job(conn) for _ in items]

    def complete_many(self, conn: Connection, values: Sequence[Any], sealed: Any) -> list[Any]:
        if self.complete is None:
            return list(values)
        return [self.complete(conn, value, sealed) for value in values]


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
        signs its checkpoint there); its value is handed to each job's completion.

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
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._synced: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._stopping = False
        self._syncer: threading.Thread | None = None
        if sync is not None:
            self._syncer = threading.Thread(target=self._sync_loop, name="dangan-syncer", daemon=True)
            self._syncer.start()
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
        return self.submit_item(_Single(job, complete), None)

    def submit_item(self, handler: BatchHandler, item: Any) -> Future[Any]:
        """Queue ``item`` for ``handler``, which gets every waiting item of its kind at once."""
        if self._closed:
            raise BackendUnavailable("the database writer is shut down")
        future: Future[Any] = Future()
        self._jobs.put((handler, item, future))
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
        """Finish the queued jobs, then stop the writer (and sync) threads."""
        if self._closed:
            return
        self._closed = True
        self._jobs.put(_STOP)
        self._thread.join()
        if self._syncer is not None:
            self._synced.put(_STOP)
            self._syncer.join()

    def _loop(self) -> None:
        while not self._stopping:
            first = self._jobs.get()
            if first is _STOP:
                return
            self._run_batch([first])

    def _take_waiting(self, batch: list[Any]) -> None:
        """Add the jobs queued meanwhile to ``batch`` (up to the batch limit).

        Called as the transaction begins, which on SQLite is once the write lock is held:
        jobs that arrive while the writer waits for the lock (another process is
        committing) join this batch instead of the next.
        """
        while len(batch) < self._max_batch:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is _STOP:
                self._stopping = True
                return
            batch.append(job)

    def _run_batch(self, batch: list[tuple[Any, Any, Future[Any]]]) -> None:
        try:
            try:
                outcomes = self._attempt(batch, isolate=False)
            except _JobFailed:
                # Rare: a job failed. Start over with a savepoint per item, so that only
                # the failed item's writes are rolled back and the others still commit.
                outcomes = self._attempt(batch, isolate=True)
        except BaseException as exc:  # the batch or its commit failed: nothing is durable
            _fail(batch, exc)
            return
        if self._syncer is not None:
            self._synced.put((batch, outcomes))
        else:
            _resolve(batch, outcomes)

    def _attempt(self, batch: list[tuple[Any, Any, Future[Any]]], *, isolate: bool) -> list[Outcome]:
        """Run the batch in one transaction and commit; one outcome per job.

        The first attempt first fills the batch with the jobs waiting by then.
        """
        with write_transaction(self.engine) as conn:
            if not isolate:
                self._take_waiting(batch)
            outcomes: list[Outcome] = []
            for handler, start, end in _groups(batch):
                items = [item for _h, item, _f in batch[start:end]]
                if isolate:
                    outcomes += [_run_isolated(conn, handler, item) for item in items]
                    continue
                try:
                    outcomes += [(True, value) for value in handler.run_many(conn, items)]
                except Exception as exc:
                    raise _JobFailed() from exc
            if any(ok for ok, _ in outcomes):
                sealed = self._seal(conn) if self._seal is not None else None
                outcomes = _complete(conn, batch, outcomes, sealed)
        return outcomes

    def _sync_loop(self) -> None:
        assert self._sync is not None
        while True:
            pending = _drain(self._synced)
            done = [item for item in pending if item is not _STOP]
            if done:
                try:
                    self._sync()
                except BaseException as exc:  # not durable: nobody may hear "done"
                    for batch, _outcomes in done:
                        _fail(batch, exc)
                else:
                    for batch, outcomes in done:
                        _resolve(batch, outcomes)
            if _STOP in pending:
                return


class _JobFailed(Exception):
    """A job raised during an optimistic (savepoint-free) batch."""


def _drain(source: queue.SimpleQueue[Any]) -> list[Any]:
    """Block for one item, then take whatever else is waiting (up to a stop)."""
    items = [source.get()]
    while items[-1] is not _STOP:
        try:
            items.append(source.get_nowait())
        except queue.Empty:
            break
    return items


def _groups(batch: list[tuple[Any, Any, Future[Any]]]) -> list[tuple[Any, int, int]]:
    """Runs of consecutive jobs with the same handler: (handler, start, end)."""
    runs: list[tuple[Any, int, int]] = []
    for i, (handler, _item, _future) in enumerate(batch):
        if runs and runs[-1][0] is handler and not isinstance(handler, _Single):
            runs[-1] = (handler, runs[-1][1], i + 1)
        else:
            runs.append((handler, i, i + 1))
    return runs


def _complete(conn: Connection, batch: list[Any], outcomes: list[Outcome], sealed: Any) -> list[Outcome]:
    final = list(outcomes)
    for handler, start, end in _groups(batch):
        ok = [i for i in range(start, end) if outcomes[i][0]]
        if ok:
            results = handler.complete_many(conn, [outcomes[i][1] for i in ok], sealed)
            for i, result in zip(ok, results):
                final[i] = (True, result)
    return final


def _run_isolated(conn: Connection, handler: BatchHandler, item: Any) -> Outcome:
    savepoint = conn.begin_nested()
    try:
        [value] = handler.run_many(conn, [item])
    except Exception as exc:
        savepoint.rollback()
        return False, exc
    savepoint.commit()
    return True, value


def _resolve(batch: list[tuple[Any, Any, Future[Any]]], outcomes: list[Outcome]) -> None:
    for (_handler, _item, future), (ok, value) in zip(batch, outcomes):
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _fail(batch: list[tuple[Any, Any, Future[Any]]], exc: BaseException) -> None:
    for _handler, _item, future in batch:
        future.set_exception(exc)
