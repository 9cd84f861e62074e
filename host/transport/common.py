"""What the transport edges share: the host clock, link events, timed control replies.

The live side reads time only from a :class:`Clock`: the event loop's monotonic clock on real
hardware (:class:`MonotonicClock`), the simulation's clock in the demo, and in tests a virtual
clock (``legrep_sim.virtual_time``) on which nothing waits in wall time.
"""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Protocol

from ..packets import ControlReply, SensorStatus


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
