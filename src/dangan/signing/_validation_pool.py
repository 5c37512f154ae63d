"""Private: worker processes that run the validation of untrusted PDFs.

A hostile PDF can make a parser loop, recurse or allocate without end. The parse and the
validation therefore run in a child process whose address space is capped
(``RLIMIT_AS``), under a CPU-time cap (``RLIMIT_CPU``, a backstop should this process
die) and a wall-clock deadline enforced from here: a worker that misses it is killed
(SIGKILL) and replaced, and the caller gets an outcome instead of a hang. Workers are
kept warm between documents; they start from the ``forkserver`` with the validation
modules preloaded, so a replacement costs a fork, not an import of pyHanko.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import resource
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Literal

from dangan.signing._validation_check import ValidationJob, validate_document
from dangan.signing._validation_report import DocumentReport

_PRELOAD = ["dangan.signing._validation_check"]
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
        self._closed = False

    def run(self, job: ValidationJob, *, timeout_s: float) -> DocumentReport | Breakdown:
        """Validate ``job`` in a worker (blocking); a breakdown instead of a report on failure."""
        with self._slots:
            worker = self._take()
            outcome = worker.exchange(job, timeout_s)
            if isinstance(outcome, DocumentReport):
                self._give_back(worker)
            else:
                worker.kill()
            return outcome

    def close(self) -> None:
        """Stop every idle worker; busy ones stop when they finish."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
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
            outcome = self.connection.recv()
        except (EOFError, OSError):
            return "crashed"
        return outcome if isinstance(outcome, DocumentReport) else "crashed"

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()


def _serve(connection: Connection, limits: WorkerLimits) -> None:
    """The worker's loop: one job in, one report out, until the pipe closes."""
    _cap_memory(limits.memory_bytes)
    while True:
        try:
            job: ValidationJob = connection.recv()
        except (EOFError, OSError):
            return
        # A CPU backstop per job: the default action of SIGXCPU ends the process.
        used = resource.getrusage(resource.RUSAGE_SELF)
        budget = math.ceil(used.ru_utime + used.ru_stime) + _CPU_BACKSTOP_S
        resource.setrlimit(resource.RLIMIT_CPU, (budget, resource.RLIM_INFINITY))
        report = validate_document(job)
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
