"""The item stream every driver hands the session: a queue that can end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from .base import DriverItem


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
