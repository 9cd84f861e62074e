"""What the transport edges share: the host clock, link events, timed control replies.

The live side reads time only from a :class:`Clock`: the event loop's monotonic clock on real
hardware (:class:`MonotonicClock`), the simulation's clock in the demo, and in tests a virtual
clock (``legrep_sim.virtual_time``) on which nothing waits in wall time.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ..errors import PacketError, SensorError
from ..packets import ControlReply, SensorStatus, decode_control_reply

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Clock(Protocol):
    """Where the host reads time: seconds on one monotonic clock; ``speed`` = clock s per loop s."""

    speed: float

    def now_s(self) -> float: ...

    async def sleep(self, duration_s: float) -> None: ...


class MonotonicClock:
    """The event loop's monotonic clock (real hardware, or a virtual-time loop in tests)."""

    speed = 1.0

    def now_s(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, duration_s: float) -> None:
        await asyncio.sleep(max(0.0, duration_s))


class LinkEventKind(str, enum.Enum):
    """What happened to a link."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RECONNECTED = "reconnected"
    STATUS = "status"
    BATTERY = "battery"


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """Something happened to a link at clock second ``time_s``."""

    kind: LinkEventKind
    time_s: float
    status: SensorStatus | None = None
    raw: bytes = b""
    """The status record as received (``status`` decoded)."""
    battery_pct: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TimedReply:
    """A control reply with the clock times the request was sent and the reply arrived."""

    reply: ControlReply
    sent_s: float
    received_s: float
    raw: bytes = b""
    """The reply exactly as received (``reply`` decoded)."""


CANCEL_RETRY_S = 0.05
"""Loop seconds :func:`cancel_and_wait` gives a cancelled task before cancelling it again."""


async def cancel_and_wait(*tasks: "asyncio.Future[Any] | None") -> None:
    """Cancel ``tasks`` (None entries skipped) and wait until every one has ended; their results
    and errors are dropped (the caller is shutting them down).

    A task still running ``CANCEL_RETRY_S`` after its cancel is cancelled again, until it ends: a
    library awaited inside it may swallow one cancel (Python 3.11's ``asyncio.wait_for`` does when
    its inner future completes in the same loop iteration, CPython gh-86296; bleak and bumble use
    it), and a housekeeping loop that lost its cancel runs for ever, so a single ``cancel`` plus
    ``await`` hung ``legrep demo`` now and then at the end of the session.
    """
    pending = {t for t in tasks if t is not None}
    for task in pending:
        task.cancel()
    while pending:
        done, pending = await asyncio.wait(pending, timeout=CANCEL_RETRY_S)
        for task in done:
            if not task.cancelled():
                task.exception()  # (retrieved: no "exception was never retrieved" at exit)
        for task in pending:
            task.cancel()


async def retry_with_backoff(
    attempt: Callable[[], Awaitable[T]],
    *,
    clock: Clock,
    backoff_s: tuple[float, float],
    closing: Callable[[], bool],
    name: str,
    cleanup: Callable[[], Awaitable[None]] | None = None,
) -> tuple[T, int] | None:
    """Call ``attempt`` until it succeeds: ``(its result, attempts)``, or None once ``closing()``.

    A :class:`~legrep.errors.SensorError` is one failed attempt (logged; ``cleanup`` runs); the wait
    between attempts starts at ``backoff_s[0]`` clock seconds and doubles up to ``backoff_s[1]``.
    Every link (BLE, serial, vendor) reconnects through this one loop.
    """
    delay_s, max_delay_s = backoff_s
    attempts = 0
    while not closing():
        attempts += 1
        try:
            return await attempt(), attempts
        except SensorError as exc:
            logger.info("%s: reconnection attempt %d failed: %s", name, attempts, exc)
            if cleanup is not None:
                await cleanup()
            await clock.sleep(delay_s)
            delay_s = min(2 * delay_s, max_delay_s)
    return None


async def control_request(
    payload: bytes,
    *,
    lock: asyncio.Lock,
    replies: "asyncio.Queue[tuple[float, bytes]]",
    connected: Callable[[], bool],
    send: Callable[[bytes], Awaitable[None]],
    clock: Clock,
    reply_timeout_s: float,
    name: str,
    no_reply: str,
) -> TimedReply:
    """One control request and its reply, one at a time per link: what the BLE and serial links
    share. ``send`` writes ``payload`` (raising :class:`~legrep.errors.SensorError` when the write
    fails); replies to earlier, timed-out requests are dropped first.

    Raises
    ------
    SensorError
        Not connected, the write failed, or no reply within ``reply_timeout_s`` clock seconds
        (the message is ``no_reply`` formatted with ``opcode`` and ``timeout_s``).
    """
    async with lock:
        drop_stale(replies)
        if not connected():
            raise SensorError(f"{name} is not connected")
        sent_s = clock.now_s()
        await send(payload)
        try:
            received_s, raw, reply = await await_reply(replies, payload[0], reply_timeout_s / clock.speed, name)
        except TimeoutError:
            raise SensorError(no_reply.format(opcode=payload[0], timeout_s=reply_timeout_s)) from None
        return TimedReply(reply, sent_s, received_s, raw)


def drop_stale(replies: "asyncio.Queue[tuple[float, bytes]]") -> None:
    """Forget replies whose request timed out (before a new request goes out)."""
    while not replies.empty():
        replies.get_nowait()


async def await_reply(
    replies: "asyncio.Queue[tuple[float, bytes]]", opcode: int, timeout_s: float, name: str
) -> tuple[float, bytes, ControlReply]:
    """The next reply to ``opcode`` from ``replies`` (``(arrival_s, raw)`` as queued by a link):
    ``(received_s, raw, reply)``. Replies to other opcodes and undecodable ones are skipped.

    Raises
    ------
    TimeoutError
        None within ``timeout_s`` loop seconds.
    """
    async with asyncio.timeout(timeout_s):
        while True:
            received_s, raw = await replies.get()
            try:
                reply = decode_control_reply(raw)
            except PacketError as exc:
                logger.debug("%s: skipping an unreadable reply: %s", name, exc)
                continue
            if reply.opcode == opcode:
                return received_s, raw, reply
            logger.debug("%s: skipping reply to 0x%02x", name, reply.opcode)
