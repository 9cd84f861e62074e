"""The item stream every driver hands the session (a queue that can end), and what the drivers of
one sensor on one leg share around it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ..model import Leg
from .base import DriverItem, SessionPort


class ItemStream:
    """Items put by a driver's callbacks and tasks, read by the session in order; :meth:`end` ends it."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[DriverItem | None] = asyncio.Queue()
        self.ended = False

    def put(self, item: DriverItem) -> None:
        if not self.ended:
            self._queue.put_nowait(item)

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[DriverItem]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            yield item


class OneSensorDriver:
    """The part of :class:`~legrep.drivers.base.SensorDriver` that every driver of one sensor on
    one leg has alike (legrep over BLE or serial, each vendor model): its leg, its item stream and
    session time. The driver sets ``leg``, ``_stream`` and, in ``start``, ``_port``."""

    leg: Leg
    _stream: ItemStream
    _port: SessionPort | None

    def legs(self) -> tuple[Leg, ...]:
        return (self.leg,)

    def items(self) -> AsyncIterator[DriverItem]:
        return self._stream.__aiter__()

    def _s(self, clock_s: float) -> float:
        """Session seconds of a host clock reading (once the session has started the driver)."""
        assert self._port is not None
        return self._port.session_s(clock_s)
