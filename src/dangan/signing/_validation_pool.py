"""Private: worker processes that run the validation of untrusted PDFs.

A hostile PDF can make a parser loop, recurse or allocate without end. The parse and the
validation therefore run in a child process whose address space is capped
(``RLIMIT_AS``), under a CPU-time cap (``RLIMIT_CPU``, a backstop should this process
die) and a wall-clock deadline enforced from here: a worker that misses it is killed
(SIGKILL) and replaced, and the caller gets an outcome instead of a hang. Workers are
kept warm between documents; they start from the ``forkserver`` with the validation
modules preloaded, so a replacement costs a fork, not an import of pyHanko.

:meth:`WorkerPool.run_async` hands a job to an idle worker from the caller's event loop
and waits for the pipe to become readable there: no thread per validation. When it
would have to wait (no idle worker, or every slot busy), or the PDF is too large to
write into the pipe without stalling the loop, it falls back to the blocking
:meth:`WorkerPool.run` in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import os
import resource
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Literal

from dangan.signing._validation_check import ValidationJob, WorkerValidator
from dangan.signing._validation_report import DocumentReport
from dangan.signing._validation_speedups import install_speedups

#: Imported once in the forkserver, so that workers start with them loaded (the last two
#: are otherwise imported by the first validation in each worker).
_PRELOAD = [
    "dangan.signing._validation_check",
    "dangan.signing._validation_speedups",
    "pyhanko.pdf_utils.filters",
    "cryptography.hazmat.backends.openssl",
]
#: Largest PDF handed to a worker from the event loop's thread; larger ones are written
#: to the pipe from a thread, so that the loop never waits for a worker to read megabytes.
_LOOP_MAX_BYTES = 1024 * 1024
#: CPU seconds one job may use before the kernel ends the worker (SIGXCPU).
_CPU_BACKSTOP_S = 60
#: Why a worker gave no report.
Breakdown = Literal["timeout", "crashed"]


@dataclass(frozen=True)
class WorkerLimits:
    """Resource limits of each worker process."""

    memory_bytes: int
    """Address space a worker may add to what it uses when idle (RLIMIT_AS)."""


class WorkerPool:
    """Up to ``workers`` warm processes; each validates one PDF at a time."""

    def __init__(self, *, workers: int, limits: WorkerLimits) -> None:
        if workers < 1:
            raise ValueError("a worker pool needs at least one worker")
        self._limits = limits
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(_PRELOAD)
        self._slots = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._waiting = 0  # threads in run() waiting for a slot; they go first
        self._closed = False

    def run(self, job: ValidationJob, *, timeout_s: float) -> DocumentReport | Breakdown:
        """Validate ``job`` in a worker (blocking); a breakdown instead of a report on failure."""
        with self._lock:
            self._waiting += 1
        try:
            self._slots.acquire()
        finally:
            with self._lock:
                self._waiting -= 1
        try:
            worker = self._take()
            outcome = worker.exchange(job, timeout_s)
            self._settle(worker, outcome)
            return outcome
        finally:
            self._slots.release()

    async def run_async(
        self, job: ValidationJob, *, timeout_s: float
    ) -> DocumentReport | Breakdown:
        """:meth:`run` for an event loop; in the loop's thread when a worker is idle."""
        worker = self._take_idle() if len(job.pdf) <= _LOOP_MAX_BYTES else None
        if worker is None:
            return await asyncio.to_thread(self.run, job, timeout_s=timeout_s)
        try:
            outcome = await worker.exchange_async(job, timeout_s)
        except BaseException:  # cancelled mid-job: its reply must not reach the next job
            worker.kill()
            self._slots.release()
            raise
        self._settle(worker, outcome)
        self._slots.release()
        return outcome

    def close(self) -> None:
        """Stop every idle worker; busy ones stop when they finish."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()

    def _take_idle(self) -> _Worker | None:
        """An idle worker with its slot, or None (then no slot is kept): never ahead of a
        thread already waiting in :meth:`run`."""
        if self._waiting or not self._slots.acquire(blocking=False):
            return None
        with self._lock:
            if self._idle and not self._closed and not self._waiting:
                return self._idle.pop()
        self._slots.release()
        return None

    def _settle(self, worker: _Worker, outcome: DocumentReport | Breakdown) -> None:
        if isinstance(outcome, DocumentReport):
            self._give_back(worker)
        else:
            worker.kill()

    def _take(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the validation worker pool is closed")
            if self._idle:
                return self._idle.pop()
        return _Worker.start(self._context, self._limits)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        worker.kill()


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    connection: Connection

    @classmethod
    def start(cls, context, limits: WorkerLimits) -> _Worker:
        ours, theirs = context.Pipe(duplex=True)
        process = context.Process(
            target=_serve, args=(theirs, limits), name="dangan-pdf-validation", daemon=True
        )
        process.start()
        theirs.close()
        return cls(process, ours)

    def exchange(self, job: ValidationJob, timeout_s: float) -> DocumentReport | Breakdown:
        try:
            self.connection.send(job)
            if not self.connection.poll(timeout_s):
                return "timeout"
            return self._reply()
        except (EOFError, OSError):
            return "crashed"

    async def exchange_async(
        self, job: ValidationJob, timeout_s: float
    ) -> DocumentReport | Breakdown:
        loop = asyncio.get_running_loop()
        try:
            self.connection.send(job)
            if not await _readable(loop, self.connection.fileno(), timeout_s):
                return "timeout"
            return self._reply()
        except (EOFError, OSError):
            return "crashed"

    def _reply(self) -> DocumentReport | Breakdown:
        outcome = self.connection.recv()
        return outcome if isinstance(outcome, DocumentReport) else "crashed"

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()


async def _readable(loop: asyncio.AbstractEventLoop, fd: int, timeout_s: float) -> bool:
    """Whether ``fd`` became readable within ``timeout_s`` (the end of the pipe counts)."""
    ready: asyncio.Future[bool] = loop.create_future()

    def settle(value: bool) -> None:
        if not ready.done():
            ready.set_result(value)

    loop.add_reader(fd, settle, True)
    deadline = loop.call_later(timeout_s, settle, False)
    try:
        return await ready
    finally:
        deadline.cancel()
        loop.remove_reader(fd)


def _serve(connection: Connection, limits: WorkerLimits) -> None:
    """The worker's loop: one job in, one report out, until the pipe closes."""
    install_speedups()
    validator = WorkerValidator()
    _cap_memory(limits.memory_bytes)
    # pyHanko logs every failed check (with a traceback) at WARNING; the report already
    # says it, and without a handler logging's last resort would print it to the stderr
    # of the API server or of `dangan validate`.
    for name in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(name).addHandler(logging.NullHandler())
    while True:
        try:
            job: ValidationJob = connection.recv()
        except (EOFError, OSError):
            return
        # A CPU backstop per job: the default action of SIGXCPU ends the process.
        used = resource.getrusage(resource.RUSAGE_SELF)
        budget = math.ceil(used.ru_utime + used.ru_stime) + _CPU_BACKSTOP_S
        resource.setrlimit(resource.RLIMIT_CPU, (budget, resource.RLIM_INFINITY))
        report = validator.validate(job)
        resource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        connection.send(report)


def _cap_memory(extra_bytes: int) -> None:
    """RLIMIT_AS at what the worker maps now plus ``extra_bytes`` (Linux /proc)."""
    try:
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        mapped = 0
    limit = mapped + extra_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
