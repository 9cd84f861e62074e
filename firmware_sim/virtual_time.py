"""Virtual time for a simulated session: an asyncio event loop whose clock jumps instead of waiting.

The simulated sensors (bumble peripherals on an in-memory ``LocalLink``, the pty serial sensor) and
the host (bleak over the bumble backend, :class:`legrep.live.LiveSession`) all read time from the
event loop (``loop.time()``, ``asyncio.sleep``, timeouts). On a :class:`VirtualTimeLoop` that clock
is virtual: whenever every task is waiting and the next thing to happen is a timer, the loop moves
its clock to that timer at once instead of sleeping. A 60 s session runs as fast as the CPU does,
every component sees consistent seconds, and no test sleeps in wall time (bumble's ``LocalLink``
tests run the same way: no radio, no pacing).

Real file descriptors (a pty) still work: before jumping, the loop polls them, and before a long
jump (``LONG_JUMP_S``) with any descriptor other than its own wake-up pipe registered it waits up
to ``io_grace_s`` wall seconds for them, longer for a longer jump (``JUMP_GRACE_FRAC``: the
kernel's pty buffer hands bytes over asynchronously, and on a loaded machine not within 1 ms),
so bytes already on their way are read first. Short jumps count together: once the clock has
jumped ``LONG_JUMP_S`` in short steps (a simulated sensor ticking every 5 ms) without a descriptor
becoming ready, the next jump waits as a long one does, so a reply timeout of 2 s is never run
through in a few wall milliseconds while the kernel still holds the reply.

Use :func:`run` like :func:`asyncio.run`. :class:`legrep_sim.peripheral.SimClock` on this loop
with ``speed=1`` is then exactly the loop's clock.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

IO_GRACE_S = 0.001
"""Wall seconds the loop waits for bytes on a real descriptor before a long jump of its clock."""
LONG_JUMP_S = 0.02
"""A jump at least this long (virtual seconds) first waits ``io_grace_s`` for real descriptors;
shorter ones only poll them (the pty hands bytes over within microseconds, and a simulated sensor
ticks every few milliseconds anyway, so a late byte costs at most a tick of virtual latency)."""


JUMP_GRACE_FRAC = 0.025
"""Before a jump of J virtual seconds with real descriptors open, wait up to this share of J wall
seconds for them (at least ``io_grace_s``, at most ``JUMP_GRACE_MAX_S``)."""
JUMP_GRACE_MAX_S = 0.05


class _JumpingSelector(selectors.BaseSelector):
    """A selector that advances its loop's virtual clock instead of blocking on a timeout."""

    def __init__(self, loop: "VirtualTimeLoop", io_grace_s: float) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop
        self._io_grace_s = io_grace_s
        self._quiet_s = 0.0  # virtual seconds jumped in short steps since a descriptor was last ready

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Any:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def _has_other_io(self) -> bool:
        own = self._loop._wakeup_fd()
        return any(key.fd != own for key in self._real.get_map().values())

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready:
            self._quiet_s = 0.0
            return ready
        if timeout == 0:
            return ready
        if self._has_other_io():
            jump_s = None if timeout is None else timeout + self._quiet_s
            if jump_s is None or jump_s >= LONG_JUMP_S:
                # the longer the jump, the longer it is worth waiting for bytes in flight: a reply
                # timeout of 2 s is jumped over only after 50 ms without bytes (on a loaded machine
                # the kernel's pty hand-over can take more than a millisecond); short jumps since
                # the last ready descriptor count as one
                grace = self._io_grace_s if jump_s is None else max(self._io_grace_s, min(JUMP_GRACE_MAX_S, JUMP_GRACE_FRAC * jump_s))
                self._quiet_s = 0.0
                ready = self._real.select(grace)
                if ready:
                    return ready
            else:
                self._quiet_s = jump_s
            if timeout is None:
                return []
        elif timeout is None:
            return self._real.select(None)  # nothing scheduled: only another thread can wake us
        self._loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual seconds (see module docstring); ``time()`` starts at 0."""

    def __init__(self, io_grace_s: float = IO_GRACE_S) -> None:
        super().__init__(_JumpingSelector(self, io_grace_s))
        self._virtual_s = 0.0

    def time(self) -> float:
        return self._virtual_s

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (>= 0)."""
        if seconds > 0:
            self._virtual_s += seconds

    def _wakeup_fd(self) -> int:
        ssock = getattr(self, "_ssock", None)
        return ssock.fileno() if ssock is not None else -1


def run(main: Coroutine[Any, Any, T], *, io_grace_s: float = IO_GRACE_S) -> T:
    """Run ``main`` to completion on a fresh :class:`VirtualTimeLoop` (like :func:`asyncio.run`)."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(io_grace_s)) as runner:
        return runner.run(main)
