"""A vendor sensor as a driver (``witmotion:ADDR``, ``movella-dot:ADDR``, ``metamotion:ADDR``,
``polar-verity:ADDR``).

Thin over :class:`legrep.sensors.link.VendorLink`: each notification becomes a DATA item holding
``encode_notification(channel, data)`` (the SENSOR record names the model and configuration, so a
replay builds the same decoder). Start and stop are the model's own writes. After a link loss the
driver reconnects with backoff, configures, subscribes and starts the sensor again (a vendor
sensor keeps nothing for the host while the link is down: what it measured meanwhile is lost, and
the session records the outage).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from ..errors import SensorError
from ..live_core import SensorInfo
from ..model import Leg
from ..records import EventType, Kind
from ..sensors import SensorConfig, SensorModel, encode_notification
from ..sensors.link import VendorLink
from ..transport.common import Clock, cancel_and_wait, retry_with_backoff
from ._queue import ItemStream, OneSensorDriver
from .base import LinkChange, Noted, Received, SessionPort

logger = logging.getLogger(__name__)

SETTLE_S = 0.25
"""After the stop writes, wait this long for the sensor's last notifications and replies (a BLE
notification takes a connection interval or two, 7.5-50 ms each)."""


class VendorDriver(OneSensorDriver):
    """One vendor sensor on ``leg`` (see module docstring).

    Parameters
    ----------
    device : bleak ``BLEDevice`` or address.
    model : the sensor model.
    leg : the thigh it is on.
    spec : the spec string it was opened from.
    clock : host clock.
    client_backend : bleak client backend class (None: the platform's).
    backoff_s : first and largest wait between reconnection attempts, clock seconds.
    """

    def __init__(
        self,
        device: Any,
        model: SensorModel,
        leg: Leg,
        *,
        spec: str,
        clock: Clock,
        config: SensorConfig | None = None,
        client_backend: Any = None,
        name: str | None = None,
        connect_timeout_s: float = 10.0,
        backoff_s: tuple[float, float] = (0.5, 5.0),
    ) -> None:
        self.link = VendorLink(
            device, model, config, clock=clock, client_backend=client_backend, connect_timeout_s=connect_timeout_s,
            name=name, on_lost=self._on_lost,
        )
        self.model = model
        self.leg = leg
        self.spec = spec
        self.name = self.link.name
        self.clock = clock
        self.backoff_s = backoff_s
        self.battery_pct: int | None = None
        self.reconnects = 0
        self._stream = ItemStream()
        self._port: SessionPort | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._streaming = False
        self._closing = False
        self._stopped_s: float | None = None

    def __repr__(self) -> str:
        return f"VendorDriver({self.spec!r}, {self.leg.value})"

    async def open(self) -> None:
        """Connect, configure and subscribe (not yet streaming); SensorError on failure."""
        await self.link.connect()

    def sensors(self, first_index: int) -> Sequence[SensorInfo]:
        return [
            SensorInfo.make_vendor(first_index, self.leg, self.model.name, self.link.config.to_dict(),
                                   address=self.link.address, name=self.link.name)
        ]

    async def start(self, port: SessionPort) -> None:
        self._port = port
        self._consumer = asyncio.create_task(self._consume(), name=f"{self.name} data")
        await self.link.start()
        self._streaming = True
        self._stream.put(Noted(EventType.START, port.session_s()))

    async def _consume(self) -> None:
        while True:
            channel, data, arrival_s = await self.link.queue.get()
            self._stream.put(Received(Kind.DATA, self._s(arrival_s), encode_notification(channel, data)))

    # --- reconnection ----------------------------------------------------------------------------------

    def _on_lost(self, clock_s: float) -> None:
        if self._closing:
            return
        if self._port is not None:
            self._stream.put(LinkChange(True, self._s(clock_s), detail=f"{self.model.title} link lost"))
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _connect_and_resume(self) -> None:
        await self.link.connect()
        if self._streaming:
            await self.link.start()

    async def _reconnect(self) -> None:
        done = await retry_with_backoff(
            self._connect_and_resume, clock=self.clock, backoff_s=self.backoff_s, closing=lambda: self._closing,
            name=self.name, cleanup=self.link.disconnect,
        )
        if done is None:
            return
        self.reconnects += 1
        if self._port is not None:
            self._stream.put(LinkChange(False, self._s(self.clock.now_s()), detail=f"after {done[1]} attempt(s)"))

    # --- the end -----------------------------------------------------------------------------------------

    async def stop(self) -> None:
        """The model's stop writes (the link stays up)."""
        self._streaming = False
        self._stopped_s = self.clock.now_s()
        if not self.link.connected:
            return
        try:
            await self.link.stop()
        except SensorError as exc:
            logger.info("%s: stop failed: %s", self.name, exc)
            return
        if self._port is not None:
            self._stream.put(Noted(EventType.STOP, self._port.session_s()))

    def drained(self) -> bool:
        """Nothing queued, and ``SETTLE_S`` passed since the stop writes (their replies come after)."""
        settled = self._stopped_s is None or self.clock.now_s() - self._stopped_s >= SETTLE_S
        return settled and self.link.queue.empty()

    async def close(self) -> None:
        self._closing = True
        await cancel_and_wait(self._reconnect_task, self._consumer)
        self._reconnect_task = self._consumer = None
        if self._port is not None:
            while not self.link.queue.empty():
                channel, data, arrival_s = self.link.queue.get_nowait()
                self._stream.put(Received(Kind.DATA, self._s(arrival_s), encode_notification(channel, data)))
        self._stream.end()
        await self.link.close()
