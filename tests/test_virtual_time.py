"""The virtual-time loop waits for real descriptors before it runs through a timeout.

Bytes written to a pty reach the other side through the kernel, asynchronously: on a loaded
machine that takes milliseconds of wall time. A simulated sensor ticking every 5 ms makes the loop
jump its clock in short steps, each of which only polls the descriptors; without counting those
steps together, the loop ran through a 2 s reply timeout in a few wall milliseconds while the
reply was still in the kernel (tests/test_serial.py failed that way at load 9).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

from legrep_sim import virtual_time


def _late_bytes_arrive_within(delay_wall_s: float, timeout_s: float, tick_s: float) -> tuple[bytes | None, float]:
    """Bytes written by another thread ``delay_wall_s`` wall seconds after the loop starts waiting
    for them (with a ``timeout_s`` virtual timeout) while a task ticks every ``tick_s`` virtual s.
    Returns (what was read or None, virtual seconds waited)."""
    r, w = os.pipe()

    async def main() -> tuple[bytes | None, float]:
        loop = asyncio.get_running_loop()
        got: asyncio.Future[bytes] = loop.create_future()
        loop.add_reader(r, lambda: got.done() or got.set_result(os.read(r, 64)))

        async def ticker() -> None:
            while True:
                await asyncio.sleep(tick_s)

        tick = asyncio.create_task(ticker())
        writer = threading.Timer(delay_wall_s, os.write, (w, b"reply"))
        t0 = loop.time()
        writer.start()
        try:
            data: bytes | None = await asyncio.wait_for(got, timeout_s)
        except TimeoutError:
            data = None
        finally:
            writer.join()
            tick.cancel()
            loop.remove_reader(r)
        return data, loop.time() - t0

    try:
        return virtual_time.run(main())
    finally:
        os.close(r)
        os.close(w)


def test_short_jumps_wait_for_bytes_in_flight() -> None:
    # 50 ms of wall time in flight, a 10 s virtual timeout, 5 ms ticks: the loop must wait at least
    # ~1 ms of wall time per 20 ms of virtual time jumped without a ready descriptor (a budget of
    # >= 0.5 s wall before the timeout, 10x the delay), so the bytes arrive well before it
    data, waited_s = _late_bytes_arrive_within(0.05, 10.0, 0.005)
    assert data == b"reply", f"timed out after {waited_s:.2f} virtual s"
    assert waited_s < 10.0


def test_virtual_time_still_runs_ahead_of_wall_time() -> None:
    # with no descriptor but the loop's own, a 60 s virtual wait costs no wall time (no grace)
    async def main() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for _ in range(600):
            await asyncio.sleep(0.1)
        return loop.time() - t0

    t_wall = time.perf_counter()
    virtual_s = virtual_time.run(main())
    wall_s = time.perf_counter() - t_wall
    assert abs(virtual_s - 60.0) < 1e-6
    assert wall_s < virtual_s / 10  # (a generous bound: it runs in milliseconds)
