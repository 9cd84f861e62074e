"""The legrep sensor as a driver, over BLE (``ble:ADDR``) or a serial port (``serial:/dev/ttyACM0``).

Both links (:class:`legrep.transport.ble.SensorLink`, :class:`legrep.transport.serial.SerialLink`)
have one surface (:class:`LegrepLink`); this driver speaks the legrep protocol over it: TIME_SYNC
before START and every ``time_sync_every_s``, RESEND of the gaps the session's packet tracker
reports, START again when a sensor comes back having stopped by itself, STOP at the end. Every
request and reply becomes a TX/RX item, every IMU packet a DATA item, so the recording holds
what was said both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from ..errors import SensorError
from ..live_core import SensorInfo
from ..model import Leg
from ..packets import SensorStatus, resend_request, start_request, stop_request, time_sync_request
from ..records import Kind
from ..transport.common import Clock, LinkEvent, LinkEventKind, TimedReply, cancel_and_wait
from ._queue import ItemStream, OneSensorDriver
from .base import LinkChange, Received, SessionPort

logger = logging.getLogger(__name__)

TIME_SYNC_COUNT = 3
"""TIME_SYNC exchanges before START (the shortest round trip wins, docs/protocol.md section 6)."""


class LegrepLink(Protocol):
    """What the driver needs from a link to a legrep sensor (BLE or serial)."""

    name: str
    address: str
    connected: bool
    battery_pct: int | None
    status: SensorStatus | None
    status_raw: bytes
    queue: asyncio.Queue[tuple[float, bytes]]
    events: asyncio.Queue[LinkEvent]

    async def request(self, payload: bytes) -> TimedReply: ...

    async def close(self) -> None: ...


class LegrepDriver(OneSensorDriver):
    """A connected legrep sensor (BLE or serial) on ``leg``.

    Parameters
    ----------
    link : an open :class:`LegrepLink`.
    leg : the thigh it is on.
    spec : the spec string it was opened from.
    clock : the host clock the link stamps with.
    model : the SENSOR record's ``model`` (``legrep``, ``legrep serial sensor``).
    time_sync_every_s, poll_s : protocol housekeeping periods (clock seconds).
    stop_timeout_s : how long :meth:`stop` keeps trying while the link is down.
    """

    def __init__(
        self,
        link: LegrepLink,
        leg: Leg,
        *,
        spec: str,
        clock: Clock,
        model: str = "legrep",
        time_sync_every_s: float = 10.0,
        poll_s: float = 0.05,
        stop_timeout_s: float = 3.0,
    ) -> None:
        self.link = link
        self.leg = leg
        self.spec = spec
        self.name = link.name
        self.clock = clock
        self.model = model
        self.time_sync_every_s = time_sync_every_s
        self.poll_s = poll_s
        self.stop_timeout_s = stop_timeout_s
        self._stream = ItemStream()
        self._port: SessionPort | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._token = 0
        self._stopped = False

    @property
    def battery_pct(self) -> int | None:
        return self.link.battery_pct

    def __repr__(self) -> str:
        return f"LegrepDriver({self.spec!r}, {self.leg.value})"

    def sensors(self, first_index: int) -> Sequence[SensorInfo]:
        serial = self.link.name.rsplit("-", 1)[-1] if self.model == "legrep" else ""
        return [
            SensorInfo.make(first_index, self.leg, self.link.status_raw, address=self.link.address, name=self.link.name,
                            serial=serial, model=self.model)
        ]

    # --- requests as items ----------------------------------------------------------------------------

    async def _request(self, payload: bytes) -> TimedReply:
        timed = await self.link.request(payload)
        self._stream.put(Received(Kind.TX, self._s(timed.sent_s), payload))
        raw = timed.raw or bytes([0x80 | timed.reply.opcode, timed.reply.status]) + timed.reply.payload
        self._stream.put(Received(Kind.RX, self._s(timed.received_s), raw))
        return timed

    async def _time_sync(self) -> None:
        self._token = (self._token + 1) & 0xFFFFFFFF
        await self._request(time_sync_request(self._token))

    async def _start_streaming(self) -> None:
        timed = await self._request(start_request())
        if not timed.reply.ok:
            hint = " (BLE link MTU below 33: the adapter refused a larger MTU)" if timed.reply.status == 2 else ""
            raise SensorError(f"{self.name} refused START: {timed.reply.describe()}{hint}")

    # --- life cycle --------------------------------------------------------------------------------------

    async def start(self, port: SessionPort) -> None:
        """TIME_SYNC a few times, then START; the data flows from here."""
        self._port = port
        self._tasks.append(asyncio.create_task(self._consume(), name=f"{self.name} data"))
        for _ in range(TIME_SYNC_COUNT):
            await self._time_sync()
        await self._start_streaming()
        self._tasks.append(asyncio.create_task(self._housekeep(), name=f"{self.name} housekeeping"))

    async def _consume(self) -> None:
        while True:
            arrival_s, data = await self.link.queue.get()
            self._stream.put(Received(Kind.DATA, self._s(arrival_s), data))

    async def _housekeep(self) -> None:
        assert self._port is not None
        port = self._port
        next_sync_s = self.clock.now_s() + self.time_sync_every_s
        while True:
            while not self.link.events.empty():
                await self._on_link_event(self.link.events.get_nowait())
            if self.link.connected:
                for a, b in port.resend_ranges(0, port.session_s()):
                    with contextlib.suppress(SensorError):
                        await self._request(resend_request(a, b))
                if self.clock.now_s() >= next_sync_s and not port.stopping:
                    next_sync_s = self.clock.now_s() + self.time_sync_every_s
                    with contextlib.suppress(SensorError):
                        await self._time_sync()
            await self.clock.sleep(self.poll_s)

    async def _on_link_event(self, event: LinkEvent) -> None:
        assert self._port is not None
        t_s = self._s(event.time_s)
        if event.kind == LinkEventKind.DISCONNECTED:
            self._stream.put(LinkChange(True, t_s, detail=event.detail))
        elif event.kind == LinkEventKind.RECONNECTED:
            self._stream.put(LinkChange(False, t_s, detail=event.detail, status_raw=event.raw))
            if event.status is not None and not event.status.streaming and not self._port.stopping:
                with contextlib.suppress(SensorError):
                    await self._start_streaming()  # the sensor stopped by itself: a new stream
        elif event.kind == LinkEventKind.STATUS and event.raw:
            self._stream.put(Received(Kind.STATUS, t_s, event.raw))

    async def stop(self) -> None:
        """STOP, retried while the link is down (up to ``stop_timeout_s``)."""
        deadline = self.clock.now_s() + self.stop_timeout_s
        while self.clock.now_s() < deadline:
            if self.link.connected:
                try:
                    timed = await self._request(stop_request())
                except SensorError as exc:
                    logger.info("%s: STOP failed: %s", self.name, exc)
                else:
                    if timed.reply.ok:
                        self._stopped = True
                        return
            await self.clock.sleep(self.poll_s)

    def drained(self) -> bool:
        port = self._port
        return port is not None and not port.missing(0) and self.link.queue.empty()

    async def close(self) -> None:
        """End the stream (what is still queued was received: it is delivered first) and disconnect."""
        await cancel_and_wait(*self._tasks)
        self._tasks = []
        if self._port is not None:
            while not self.link.queue.empty():
                arrival_s, data = self.link.queue.get_nowait()
                self._stream.put(Received(Kind.DATA, self._s(arrival_s), data))
        self._stream.end()
        await self.link.close()
