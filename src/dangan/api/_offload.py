"""Blocking work handed to a thread pool, whose result is itself a future.

An upload is stored (written, fsynced, linked into place: blocking) and then queued for the
database writer, which answers through a ``concurrent.futures.Future``. Chaining the two
in the worker thread lets the event loop wait once, for the final answer, instead of
waking up in between (and pays no anyio thread-call machinery on the loop).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

from dangan.errors import BackendUnavailable

P = ParamSpec("P")
T = TypeVar("T")


async def run_chained(
    executor: Executor,
    start: Callable[P, Future[T]],
    on_cancel: Callable[P, None],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """``await start(*args, **kwargs)``'s future, calling ``start`` in ``executor``.

    If the waiting task is cancelled before ``start`` runs, ``on_cancel(*args, **kwargs)``
    runs instead (in the worker thread), so that whatever ``start`` would have taken over
    is released by the thread that owns it; once ``start`` has begun, it runs to the end
    and only the wait is abandoned.
    """
    answer: Future[T] = Future()

    def step() -> None:
        if not answer.set_running_or_notify_cancel():
            on_cancel(*args, **kwargs)
            return
        try:
            inner = start(*args, **kwargs)
        except BaseException as exc:
            answer.set_exception(exc)
            return
        inner.add_done_callback(lambda done: _transfer(done, answer))

    try:
        executor.submit(step)
    except RuntimeError as exc:  # the executor is shut down: nothing was handed over
        on_cancel(*args, **kwargs)
        raise BackendUnavailable("the service is shutting down") from exc
    return await asyncio.wrap_future(answer)


def _transfer(source: Future[Any], target: Future[Any]) -> None:
    if source.cancelled():
        # Not CancelledError: the waiting task was not cancelled, and asyncio would take
        # that for its own cancellation instead of an error to answer.
        target.set_exception(BackendUnavailable("the write was cancelled before it was done"))
        return
    exc = source.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())
