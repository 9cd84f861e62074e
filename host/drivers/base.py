"""The driver contract: what :class:`legrep.live.LiveSession` needs from any source of sensor bytes.

A :class:`SensorDriver` is one source (a legrep sensor over BLE or serial, a vendor sensor, a
recording being replayed). It says what its sensors are (:meth:`SensorDriver.sensors`, the SENSOR
records), starts and stops streaming, reconnects by itself after a drop, and delivers an async
stream of :data:`DriverItem`: bytes the sensor sent or the host sent it (:class:`Received`, which
becomes a :class:`~legrep.records.Record`), link changes (:class:`LinkChange`) and notes
(:class:`Noted`). Items carry *session* seconds: a driver converts its clock readings with
:meth:`SessionPort.session_s`, and a replay keeps the recorded times exactly.

The session gives each driver a :class:`SessionPort` when it starts: session time, the gaps the
core's packet tracker wants re-sent, and whether the session is stopping. That is the only way
back from the core to a driver, so a driver never sees the analysis.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import InputError
from ..live_core import SensorInfo
from ..model import Leg
from ..records import EventType, Kind
from ..sensors import MODELS
from ..transport.common import Clock

KINDS: tuple[str, ...] = ("ble", "serial", *MODELS, "replay", "sim")
"""The spec kinds :func:`legrep.drivers.open_drivers` takes."""


class LinkState(str, enum.Enum):
    """A sensor link as the view shows it."""

    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"
    ENDED = "ended"
    """The source has nothing more (a replay reached its end)."""


@dataclass(frozen=True, slots=True)
class Received:
    """Bytes of one record: ``kind`` DATA, TX, RX or STATUS, at session second ``t_s``.

    ``sensor`` is the driver's own index (into :meth:`SensorDriver.sensors`).
    """

    kind: Kind
    t_s: float
    payload: bytes
    sensor: int = 0


@dataclass(frozen=True, slots=True)
class LinkChange:
    """The link was lost (``lost``) or is back (``lost=False``), at session second ``t_s``.

    ``status_raw`` is the status read on reconnection (its ``next_seq`` says what was missed);
    ``detail`` says how (``after 2 attempt(s)``).
    """

    lost: bool
    t_s: float
    detail: str = ""
    status_raw: bytes = b""
    sensor: int = 0


@dataclass(frozen=True, slots=True)
class Noted:
    """An EVENT record the driver wants in the recording (start, stop, a note)."""

    type: EventType | str
    t_s: float
    fields: dict[str, Any] = field(default_factory=dict)
    sensor: int = 0


DriverItem = Received | LinkChange | Noted


class SessionPort(Protocol):
    """What a running session offers a driver (one port per driver)."""

    @property
    def stopping(self) -> bool:
        """True once the session asked every driver to stop."""
        ...

    def session_s(self, clock_s: float | None = None) -> float:
        """Session seconds for a clock reading (now by default)."""
        ...

    def resend_ranges(self, sensor: int, t_s: float) -> list[tuple[int, int]]:
        """Packet ranges ``(first, last)`` of ``sensor`` to ask the sensor to re-send now."""
        ...

    def missing(self, sensor: int) -> bool:
        """True while ``sensor`` has gaps the tracker still waits for."""
        ...


class SensorDriver(Protocol):
    """One source of sensor records (see module docstring)."""

    spec: str
    """The spec string it was opened from (``ble:ADDR``, ``witmotion:ADDR``, ``replay:FILE``...)."""
    name: str
    """Display name (``legrep-1A2B``, ``WT901BLE67``, the recording's file name)."""

    @property
    def battery_pct(self) -> int | None:
        """The last battery level the sensor reported (None: unknown)."""
        ...

    def sensors(self, first_index: int) -> Sequence[SensorInfo]:
        """What the sensors are: the SENSOR record of each, numbered from ``first_index``."""
        ...

    def legs(self) -> tuple[Leg, ...]:
        """The leg of each sensor, in :meth:`sensors` order."""
        ...

    async def start(self, port: SessionPort) -> None:
        """Begin streaming (after this the items flow); SensorError if the sensor refuses."""
        ...

    async def stop(self) -> None:
        """Stop streaming (the link stays up so what is missing can still be fetched)."""
        ...

    def drained(self) -> bool:
        """True once nothing more is expected after :meth:`stop` (all gaps filled, queue empty)."""
        ...

    def items(self) -> AsyncIterator[DriverItem]:
        """The stream of items, in the order they happened; ends when the source ends."""
        ...

    async def close(self) -> None:
        """Disconnect for good (idempotent)."""
        ...


@dataclass(frozen=True, slots=True)
class DriverSpec:
    """A parsed spec string: ``[LEG=]KIND:TARGET[,KEY=VALUE...]``."""

    kind: str
    target: str = ""
    leg: Leg | None = None
    options: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        leg = f"{self.leg.value}=" if self.leg is not None else ""
        opts = "".join(f",{k}={v}" for k, v in self.options.items())
        return f"{leg}{self.kind}:{self.target}{opts}"


def parse_spec(text: str) -> DriverSpec:
    """``left=ble:F1:E6:...`` -> ``DriverSpec("ble", "F1:E6:...", Leg.LEFT)`` (InputError if unknown).

    A bare address means ``ble:ADDRESS``, a bare path (``/dev/...``) ``serial:PATH``, a bare
    ``*.lgr`` file ``replay:FILE``.
    """
    rest = text.strip()
    leg: Leg | None = None
    head, sep, tail = rest.partition("=")
    if sep and head.strip().lower() in ("left", "right", "pelvis"):
        leg, rest = Leg.parse(head), tail.strip()
    kind, sep, target = rest.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS:
        if rest.startswith("/dev/"):
            kind, target = "serial", rest
        elif rest.endswith(".lgr"):
            kind, target = "replay", rest
        elif rest.count(":") == 5:
            kind, target = "ble", rest
        else:
            raise InputError(f"a sensor spec KIND:TARGET expected with KIND one of {list(KINDS)}, got {text!r}")
    options: dict[str, str] = {}
    if "," in target and kind != "serial":
        target, *opts = target.split(",")
        for opt in opts:
            key, eq, value = opt.partition("=")
            if not eq or not key:
                raise InputError(f"spec option KEY=VALUE expected after ',' in {text!r}, got {opt!r}")
            options[key.strip()] = value.strip()
    return DriverSpec(kind, target.strip(), leg, options)


@dataclass(slots=True)
class DriverSet:
    """Opened drivers, the clock they share, and what to release when the session is over."""

    drivers: list[SensorDriver]
    clock: Clock
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Lines for the view (how legs were assigned, what was found)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """What an opener wants its caller to see (the simulation behind ``sim:``)."""

    async def close(self) -> None:
        """Close every driver, then the resources (radio, simulation), in reverse order."""
        for driver in self.drivers:
            with contextlib.suppress(Exception):
                await driver.close()
        for closer in reversed(self.closers):
            with contextlib.suppress(Exception):
                await closer()

    async def __aenter__(self) -> "DriverSet":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
