"""Blocking work chained to a future it starts: one wait, and cancellation releases."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from dangan.api._offload import run_chained
from dangan.errors import BackendUnavailable


def resolved(value: object) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def test_the_result_and_errors_of_both_steps_come_through() -> None:
    def fails(_: int) -> Future:
        raise ValueError("first step")

    def inner_fails(_: int) -> Future:
        future: Future = Future()
        future.set_exception(KeyError("second step"))
        return future

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            assert await run_chained(pool, lambda x: resolved(x * 2), print, 21) == 42
            with pytest.raises(ValueError):
                await run_chained(pool, fails, print, 1)
            with pytest.raises(KeyError):
                await run_chained(pool, inner_fails, print, 1)

    asyncio.run(main())


def test_a_wait_cancelled_before_the_work_starts_hands_it_to_on_cancel() -> None:
    release, started, released = threading.Event(), [], []

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(release.wait, 10)  # the only worker is busy
            waiting = asyncio.ensure_future(
                run_chained(pool, lambda x: started.append(x) or resolved(x), released.append, 7)
            )
            await asyncio.sleep(0.05)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            release.set()

    asyncio.run(main())
    assert (started, released) == ([], [7])


def test_after_shutdown_nothing_starts_and_the_caller_hears_503() -> None:
    released: list[int] = []
    pool = ThreadPoolExecutor(1)
    pool.shutdown()
    with pytest.raises(BackendUnavailable):
        asyncio.run(run_chained(pool, resolved, released.append, 3))
    assert released == [3]


def test_a_cancelled_inner_future_is_a_503_not_a_cancellation_of_the_caller() -> None:
    def cancelled_inner(_: int) -> Future:
        future: Future = Future()
        future.cancel()
        return future

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            with pytest.raises(BackendUnavailable):
                await run_chained(pool, cancelled_inner, lambda _x: None, 1)

    asyncio.run(main())


def test_a_wait_cancelled_after_the_work_started_lets_it_finish() -> None:
    began, release, finished, released = threading.Event(), threading.Event(), [], []

    def start(x: int) -> Future:
        began.set()
        release.wait(10)
        finished.append(x)
        return resolved(x)

    async def main() -> None:
        with ThreadPoolExecutor(1) as pool:
            waiting = asyncio.ensure_future(run_chained(pool, start, released.append, 5))
            await asyncio.to_thread(began.wait, 10)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            release.set()

    asyncio.run(main())
    assert (finished, released) == ([5], [])
