"""A recording as a driver (``replay:FILE``): its records again, paced by the session clock.

Every sensor of the recording is one sensor of this driver (one driver, so the records keep their
file order across sensors, and the session core sees exactly the sequence it saw live). Each
record is delivered when the session clock reaches its recorded time (``realtime``; otherwise at
once), with its recorded time, so ``legrep replay --realtime`` shows the live view of a recording
and gives the same reps as the live session did.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from ..live_core import SensorInfo
from ..model import Leg
from ..recording import RecordingReader
from ..records import EventType, Kind
from ..transport.common import Clock
from ._queue import ItemStream
from .base import DriverItem, LinkChange, Noted, Received, SessionPort


class ReplayDriver:
    """Replay ``path`` (see module docstring).

    Parameters
    ----------
    path : a legrep recording, or an open reader.
    clock : the session clock (pacing).
    realtime : wait for each record's time (True), or deliver as fast as the session takes them.
    """

    def __init__(self, path: str | os.PathLike[str] | RecordingReader, *, clock: Clock, realtime: bool = True) -> None:
        self.reader = path if isinstance(path, RecordingReader) else RecordingReader(path)
        self.spec = f"replay:{self.reader.path}"
        self.name = Path(self.reader.path).name
        self.clock = clock
        self.realtime = realtime
        self.battery_pct: int | None = None
        self.meta = self.reader.meta
        self._infos = [SensorInfo.from_json(v) for v in self.reader.sensors()]
        self._local = {info.index: k for k, info in enumerate(self._infos)}
        self._stream = ItemStream()
        self._task: asyncio.Task[None] | None = None
        self._port: SessionPort | None = None

    def __repr__(self) -> str:
        return f"ReplayDriver({self.spec!r})"

    def sensors(self, first_index: int) -> Sequence[SensorInfo]:
        return [
            SensorInfo(first_index + k, i.leg, i.address, i.name, i.model, i.serial, i.firmware, i.status, i._status_hex,
                       i.config)
            for k, i in enumerate(self._infos)
        ]

    def legs(self) -> tuple[Leg, ...]:
        return tuple(i.leg for i in self._infos)

    def items(self) -> AsyncIterator[DriverItem]:
        return self._stream.__aiter__()

    async def start(self, port: SessionPort) -> None:
        self._port = port
        self._task = asyncio.create_task(self._play(port), name=f"replay {self.name}")

    async def _play(self, port: SessionPort) -> None:
        for rec in self.reader:
            if rec.sensor is None or rec.sensor not in self._local:
                continue  # META, END, session-wide events: the session writes its own
            local = self._local[rec.sensor]
            if self.realtime:
                wait_s = rec.t_s - port.session_s()
                if wait_s > 0:
                    await self.clock.sleep(wait_s)
            if rec.kind in (Kind.DATA, Kind.TX, Kind.RX, Kind.STATUS):
                self._stream.put(Received(Kind(rec.kind), rec.t_s, rec.payload, local))
            elif rec.kind == Kind.EVENT:
                value = rec.json()
                kind = str(value.pop("type", ""))
                if kind == EventType.DISCONNECT.value:
                    self._stream.put(LinkChange(True, rec.t_s, str(value.get("detail", "")), sensor=local))
                elif kind == EventType.RECONNECT.value:
                    self._stream.put(LinkChange(False, rec.t_s, str(value.get("detail", "")), sensor=local))
                elif kind != EventType.CONNECT.value:
                    self._stream.put(Noted(kind, rec.t_s, value, local))
        self._stream.end()

    async def stop(self) -> None:
        return None

    def drained(self) -> bool:
        return self._task is None or self._task.done()

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._stream.end()
