"""How much work may run side by side here: the cores usable, the ``LEGREP_SERIAL`` switch, and
a bounded read-ahead iterator on a thread (host/offline.py reads blocks ahead with it; the
orientation stage runs ahead of the hip-angle stage with it, host/fusion/orientation.py)."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Generator, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = ["prefetch", "serial_requested", "share_cores", "sharing_cores", "usable_cores"]

_sharers = 1
"""Processes of one analysis that run at once on this process's cores (:func:`share_cores`)."""


def usable_cores() -> int:
    """The cores this process may run on (its affinity; the machine's count where that is unknown),
    divided among the processes sharing them (:func:`share_cores`; at least one)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores // _sharers)


def share_cores(processes: int) -> None:
    """From now on this process shares its cores with ``processes - 1`` others of the same analysis
    (a leg's forked process, host/offline.py): :func:`usable_cores` counts its share only.

    Why: a leg's analysis runs its orientation stage on a second thread where a second core is free
    (host/fusion/orientation.py ``poses_ahead``). With a process per leg on two cores that core is
    the other leg's: measured on the 1 h session, a leg's process took 10 % more CPU with the thread
    (the GIL and the cores handed back and forth) for no earlier end (each process had one core)."""
    global _sharers
    _sharers = max(1, int(processes))


@contextmanager
def sharing_cores(processes: int) -> Iterator[None]:
    """:func:`share_cores` for the duration of a ``with`` block (the parent that analyses a leg
    while a forked process analyses another), then as before."""
    global _sharers
    before = _sharers
    share_cores(processes)
    try:
        yield
    finally:
        _sharers = before


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
