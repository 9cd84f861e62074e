"""Offline analysis of files, streamed: blocks of samples from each leg's file through one
:class:`~legrep.pipeline.SessionAnalyzer`, so memory stays flat however long the session.

**One process per leg.** A thigh's samples pass through stages that need no other leg (its
:class:`~legrep.pipeline.LegStages`: calibration, hip angle, reps, each rep's posture); only then
do the legs meet (the live ``both_legs`` flag, sets, uneven legs, the pelvis). So where ``fork``
exists and more than one core is ours, each thigh's file is read and analysed in a child process of
its own (forked: it inherits the imported code and the unstarted block iterator), which sends back,
block by block, what its stages gave: the reps, their postures, the segmenter's horizon and, only
when the caller needs them (angle traces, the pelvis), the angles. The parent feeds those, in the
same turn-by-turn order as the serial path, to the same :class:`SessionAnalyzer` (the cross-leg
steps see the same calls with the same values: identical results, every byte), and reads the pelvis
itself. An error in a child (a bad line of its file, a leg that never calibrates) is sent back and
raised in the parent where the serial path raises it: the same exception, the same one line.

In one process (one leg, one core, no ``fork``, ``LEGREP_SERIAL=1``, or ``processes=False`` as
``legrep batch``'s workers ask) each leg's blocks are produced on a thread of its own (the CSV
scanner releases the GIL), a couple of blocks ahead of the analysis, and the legs are fed in turn.
The analysis is the same object live capture and replay drive; any chunking of the same samples
gives the same reps.
"""

from __future__ import annotations

import os
import pickle
import queue
import signal
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .errors import LegrepError
from .model import FloatArray, ImuBlock, Leg, SessionResult
from .settings import Settings

if TYPE_CHECKING:
    from .diagnostics import SensorDiagnostics
    from .pipeline import LegStep

__all__ = ["FROM_CHILD", "LegProcess", "analyze_blocks", "prefetch", "use_processes"]

_DONE = object()


class _Failed:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_T = TypeVar("_T")


def prefetch(blocks: Iterable[_T], depth: int = 2) -> Iterator[_T]:
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


def use_processes(legs: int) -> bool:
    """Whether ``legs`` streams are analysed in processes of their own (see module docstring):
    more than one, ``fork`` available, more than one core usable, and ``LEGREP_SERIAL`` unset."""
    if legs < 2 or not hasattr(os, "fork") or os.environ.get("LEGREP_SERIAL", "") not in ("", "0"):
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return cores > 1


def analyze_blocks(
    sources: Mapping[Leg, Iterable[ImuBlock]],
    settings: Settings | None = None,
    keep_traces: bool = False,
    threads: bool = True,
    pelvis: Iterable[ImuBlock] | None = None,
    on_angle: Callable[[Leg, FloatArray, FloatArray], None] | None = None,
    processes: bool | None = None,
) -> SessionResult:
    """Analyse a session given as block streams per leg (e.g. :func:`legrep.imu_csv.iter_imu_csv`).

    Parameters
    ----------
    sources : per leg, its samples in order, in blocks of any size.
    settings : analysis settings.
    keep_traces : keep the full angle trace of each leg in the result (memory grows with length).
    threads : read each leg on its own thread (:func:`prefetch`).
    processes : analyse each leg in a process of its own (module docstring); None: when
        :func:`use_processes` says so.
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
    settings = settings or Settings()
    if processes is None:
        processes = use_processes(len([leg for leg in legs if leg is not Leg.PELVIS]))
    remote: dict[Leg, LegProcess] = {}
    feeds: dict[Leg | None, Iterable[ImuBlock]] = dict(sources.items())
    if pelvis is not None:
        feeds[None] = pelvis
    iters: dict[Leg | None, Iterator[ImuBlock]] = {}
    try:
        if processes:
            angles = keep_traces or on_angle is not None or pelvis is not None or Leg.PELVIS in legs
            for thigh, src in sources.items():
                if thigh is not Leg.PELVIS:
                    remote[thigh] = LegProcess(thigh, src, settings, threads, angles)
        analyzer = SessionAnalyzer(legs, settings, keep_traces=keep_traces, pelvis=pelvis is not None, stages=remote)
        analyzer.on_angle = on_angle
        iters = {leg: prefetch(src) if threads else iter(src) for leg, src in feeds.items() if leg not in remote}
        active = list(feeds)
        while active:
            for leg in list(active):
                if leg in remote:
                    assert leg is not None
                    if remote[leg].advance():
                        analyzer.update(leg, FROM_CHILD)
                    else:
                        active.remove(leg)
                    continue
                block = next(iters[leg], None)
                if block is None:
                    active.remove(leg)
                elif leg is None:
                    analyzer.update_pelvis(block)
                else:
                    analyzer.update(leg, block)
        return check_coverage(analyzer.finish())
    finally:
        for it in iters.values():
            close = getattr(it, "close", None)
            if close is not None:
                close()
        for child in remote.values():
            child.close()


# --------------------------------------------------------------------------- a leg's own process
FROM_CHILD = ImuBlock(np.empty(0), np.empty((0, 3)), np.empty((0, 3)))
"""The block :meth:`SessionAnalyzer.update` is handed for a leg analysed in its own process (the
block itself was read and analysed there; :meth:`LegProcess.update` gives what came of it)."""
_NO_ANGLES = np.empty(0)
_BLOCK, _END, _ERROR = "block", "end", "error"


def _portable(exc: BaseException, leg: Leg) -> BaseException:
    """``exc`` as it can travel to the parent: itself when it pickles (a legrep error always does),
    else a RuntimeError naming it; an unexpected one carries the child's traceback as a note."""
    if not isinstance(exc, LegrepError | OSError):
        exc.add_note(f"(in the {leg.value} leg's analysis process)\n" + "".join(traceback.format_exception(exc)).rstrip())
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        plain = RuntimeError(f"{type(exc).__name__}: {exc}")
        for note in getattr(exc, "__notes__", ()):
            plain.add_note(note)
        return plain


def _child_main(conn: Connection, leg: Leg, source: Iterable[ImuBlock], settings: Settings, threads: bool,
                angles: bool) -> None:  # fmt: skip
    """A leg's process: its blocks through its :class:`LegStages`, each step sent to the parent."""
    from .pipeline import LegOutput, LegStages

    def compact(out: LegOutput) -> LegOutput:
        return LegOutput(out.time_s, out.angle_deg, out.reps) if angles else LegOutput(_NO_ANGLES, _NO_ANGLES, out.reps)

    work = LegStages(leg, settings)
    try:
        for block in prefetch(source) if threads else source:
            out, postures = work.update(block)
            conn.send((_BLOCK, (compact(out), postures), work.horizon_s(), work.last_angle_deg))
    except BaseException as exc:
        conn.send((_ERROR, _portable(exc, leg)))
        return
    try:
        out, postures = work.finish()
    except BaseException as exc:  # raised by the parent's finish, as the serial path's is
        conn.send((_END, _portable(exc, leg), None, work.last_angle_deg))
        return
    conn.send((_END, (compact(out), postures), work.diagnostics(), work.last_angle_deg))


def _inbox_blocks(conn: Connection) -> Iterator[ImuBlock]:
    """A child's blocks as the parent hands them over (:meth:`LegProcess.put`), until None."""
    while True:
        try:
            block = conn.recv()
        except EOFError:  # (the parent is gone)
            return
        if block is None:
            return
        yield block


class LegProcess:
    """A leg's :class:`~legrep.pipeline.LegStages` in a forked process of its own, as the
    :class:`~legrep.pipeline.LegWork` :class:`~legrep.pipeline.SessionAnalyzer` drives.

    :meth:`advance` takes the child's next step (False at the end of its stream; the child's error
    raised here), :meth:`update` hands it to the analyzer; :meth:`finish` gives the last one.
    """

    _open: list[Connection] = []
    """Every parent-side pipe end still open (a new child closes its copies)."""

    def __init__(self, leg: Leg, source: Iterable[ImuBlock] | None, settings: Settings, threads: bool, angles: bool) -> None:
        """``source``: the leg's blocks, iterated in the child; None: the parent hands them over one
        by one (:meth:`put`, then :meth:`end_input`)."""
        from multiprocessing import Pipe

        self.leg = leg
        self.failed = False
        """True once the child's error was raised here."""
        self._inbox: Connection | None = None
        inbox_end: Connection | None = None
        if source is None:
            inbox_end, self._inbox = Pipe(duplex=False)
            source = _inbox_blocks(inbox_end)
        self._reader, writer = Pipe(duplex=False)
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
                self._reader.close()
                if self._inbox is not None:
                    self._inbox.close()
                for other in LegProcess._open:
                    other.close()
                _child_main(writer, leg, source, settings, threads, angles)
                writer.close()
                code = 0
            finally:
                os._exit(code)  # (no atexit handlers, no flush of the parent's buffered output)
        writer.close()
        if inbox_end is not None:
            inbox_end.close()
        LegProcess._open.append(self._reader)
        if self._inbox is not None:
            LegProcess._open.append(self._inbox)
        self._messages: Iterator[Any] | None = None
        self._step: LegStep | None = None
        self._end: Any = None
        self._horizon_s = -np.inf
        self._last_angle_deg: float | None = None

    def _receive(self) -> Iterator[Any]:
        while True:
            try:
                message = self._reader.recv()
            except EOFError:
                raise RuntimeError(f"the {self.leg.value} leg's analysis process ended without a result") from None
            yield message
            if message[0] != _BLOCK:
                return

    @property
    def last_angle_deg(self) -> float | None:
        return self._last_angle_deg

    def put(self, block: ImuBlock) -> None:
        """Hand the child its next block (``source=None``)."""
        assert self._inbox is not None
        self._inbox.send(block)

    def end_input(self) -> None:
        """No more blocks (``source=None``): the child finishes its stages."""
        if self._inbox is not None:
            self._inbox.send(None)
            self._close_inbox()

    def _close_inbox(self) -> None:
        if self._inbox is not None:
            if self._inbox in LegProcess._open:
                LegProcess._open.remove(self._inbox)
            self._inbox.close()
            self._inbox = None

    def advance(self) -> bool:
        """Take the child's next step; False at the end of its stream. Raises the child's error."""
        if self._messages is None:
            self._messages = prefetch(self._receive(), depth=4)  # received on a thread beside the analysis
        message = next(self._messages)
        kind = message[0]
        if kind == _ERROR:
            self.failed = True
            raise message[1]
        self._last_angle_deg = message[3]
        if kind == _END:
            self._end = message
            return False
        self._step, self._horizon_s = message[1], message[2]
        return True

    def update(self, block: ImuBlock) -> LegStep:
        step, self._step = self._step, None
        assert step is not None, "advance() first"
        return step

    def finish(self) -> LegStep:
        end = self._end
        assert end is not None, "advance() to the end first"
        if isinstance(end[1], BaseException):
            self.failed = True
            raise end[1]
        return end[1]  # type: ignore[no-any-return]

    def horizon_s(self) -> float:
        return self._horizon_s

    def diagnostics(self) -> SensorDiagnostics:
        assert self._end is not None and self._end[2] is not None
        return self._end[2]  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop the child (if it still runs), reap it, close the pipes."""
        self._close_inbox()
        if self.pid:
            if self._end is None:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            os.waitpid(self.pid, 0)
            self.pid = 0
        if self._messages is not None:
            close = getattr(self._messages, "close", None)
            if close is not None:
                close()
        if self._reader in LegProcess._open:
            LegProcess._open.remove(self._reader)
        self._reader.close()
