"""Shutting tasks down survives a cancel that a library swallowed.

Python 3.11's ``asyncio.wait_for`` returns its inner result and drops a cancel that arrives in the
loop iteration the result does (CPython gh-86296); bleak and bumble await it inside our driver's
housekeeping. A loop that lost its cancel ran on, and ``legrep demo --speed 32`` hung at the end of
the session 1 run in 6 to 9 on a loaded machine (its driver's ``close`` awaited the task for ever).
"""

from __future__ import annotations

import asyncio

import pytest

from legrep.transport.common import cancel_and_wait
from legrep_sim import virtual_time


async def _swallows_first_cancel(log: list[str]) -> None:
    """A housekeeping loop whose first cancel is lost inside the library it awaits."""
    try:
        await asyncio.sleep(10.0)
    except asyncio.CancelledError:
        log.append("swallowed")  # (what wait_for does in the race: returns as if nothing happened)
    while True:
        await asyncio.sleep(0.01)


def test_a_task_that_swallowed_its_cancel_still_ends() -> None:
    async def main() -> tuple[list[str], bool, float]:
        log: list[str] = []
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(_swallows_first_cancel(log))
        await asyncio.sleep(0.1)
        t0 = loop.time()
        await asyncio.wait_for(cancel_and_wait(task, None), 10.0)  # (bounded: a regression fails, not hangs)
        return log, task.cancelled(), loop.time() - t0

    log, cancelled, took_s = virtual_time.run(main())
    assert log == ["swallowed"] and cancelled
    assert took_s < 1.0  # re-cancelled after CANCEL_RETRY_S, not after the first cancel's wait ran out


def test_results_and_errors_of_the_tasks_are_dropped() -> None:
    async def main() -> list[bool]:
        async def fails() -> None:
            raise RuntimeError("boom")

        async def returns() -> int:
            return 3

        tasks = [asyncio.create_task(fails()), asyncio.create_task(returns())]
        await asyncio.sleep(0)
        await cancel_and_wait(*tasks)
        return [t.done() for t in tasks]

    assert virtual_time.run(main()) == [True, True]


def test_a_plain_cancel_and_await_hangs_on_such_a_task() -> None:
    # the shape close() had: shows the test above can fail (bounded by a timeout here)
    async def main() -> None:
        task = asyncio.create_task(_swallows_first_cancel([]))
        await asyncio.sleep(0.1)
        task.cancel()
        try:
            await asyncio.wait_for(asyncio.shield(task), 5.0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    with pytest.raises(TimeoutError):
        virtual_time.run(main())
