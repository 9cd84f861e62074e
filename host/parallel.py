"""How much work may run side by side here: the cores usable, the ``LEGREP_SERIAL`` switch, and
a bounded read-ahead iterator on a thread (host/offline.py reads blocks ahead with it; the
orientation stage runs ahead of the hip-angle stage with it, host/fusion/orientation.py)."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Generator, Iterable
from typing import Any, TypeVar

__all__ = ["prefetch", "serial_requested", "usable_cores"]


def usable_cores() -> int:
    """The cores this process may run on (its affinity; the machine's count where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def serial_requested() -> bool:
    """``LEGREP_SERIAL`` set (to anything but 0): everything on one thread, in one process."""
    return os.environ.get("LEGREP_SERIAL", "") not in ("", "0")


_DONE = object()


class _Failed:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_T = TypeVar("_T")


def prefetch(blocks: Iterable[_T], depth: int = 2, name: str = "legrep-prefetch") -> Generator[_T, None, None]:
    """Iterate ``blocks`` on a worker thread, at most ``depth`` blocks ahead of the consumer.

    An exception raised by ``blocks`` is raised here, in order (after the blocks before it).
    Closing the returned iterator early stops the worker.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for block in blocks:
                if not put(block):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            put(_Failed(exc))
            return
        put(_DONE)

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()
