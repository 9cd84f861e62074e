"""Offline analysis of files, streamed: blocks of samples from each leg's file through one
:class:`~legrep.pipeline.SessionAnalyzer`, so memory stays flat however long the session.

Each leg's blocks are produced on a thread of its own (the CSV scanner releases the GIL), a couple
of blocks ahead of the analysis, and the legs are fed in turn. The analysis is the same object
live capture and replay drive; any chunking of the same samples gives the same reps.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .model import FloatArray, ImuBlock, Leg, SessionResult
from .settings import Settings

__all__ = ["analyze_blocks", "prefetch"]

_DONE = object()


class _Failed:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(blocks: Iterable[ImuBlock], depth: int = 2) -> Iterator[ImuBlock]:
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

    thread = threading.Thread(target=work, name="legrep-prefetch", daemon=True)
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


def analyze_blocks(
    sources: Mapping[Leg, Iterable[ImuBlock]],
    settings: Settings | None = None,
    keep_traces: bool = False,
    threads: bool = True,
    pelvis: Iterable[ImuBlock] | None = None,
    on_angle: Callable[[Leg, FloatArray, FloatArray], None] | None = None,
) -> SessionResult:
    """Analyse a session given as block streams per leg (e.g. :func:`legrep.imu_csv.iter_imu_csv`).

    Parameters
    ----------
    sources : per leg, its samples in order, in blocks of any size.
    settings : analysis settings.
    keep_traces : keep the full angle trace of each leg in the result (memory grows with length).
    threads : read each leg on its own thread (:func:`prefetch`).
    pelvis : the pelvis sensor's samples (optional; host/pelvis.py), read in turn with the legs.
    on_angle : called with ``(leg, time_s, angle_deg)`` for every chunk of hip angle (e.g. a
        report's streamed trace, :class:`legrep.report.TraceEnvelope`).

    Raises
    ------
    InputError, CalibrationError
        From a source (bad file) or the analysis.
    """
    from .pipeline import SessionAnalyzer

    from .pelvis import check_coverage

    legs = tuple(sources)
    analyzer = SessionAnalyzer(legs, settings, keep_traces=keep_traces, pelvis=pelvis is not None)
    analyzer.on_angle = on_angle
    feeds: dict[Leg | None, Iterable[ImuBlock]] = dict(sources.items())
    if pelvis is not None:
        feeds[None] = pelvis
    iters: dict[Leg | None, Iterator[ImuBlock]] = {
        leg: prefetch(src) if threads else iter(src) for leg, src in feeds.items()
    }
    try:
        active = list(feeds)
        while active:
            for leg in list(active):
                block = next(iters[leg], None)
                if block is None:
                    active.remove(leg)
                elif leg is None:
                    analyzer.update_pelvis(block)
                else:
                    analyzer.update(leg, block)
    finally:
        for it in iters.values():
            close = getattr(it, "close", None)
            if close is not None:
                close()
    return check_coverage(analyzer.finish())
