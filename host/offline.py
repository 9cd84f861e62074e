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

import dataclasses
import os
import pickle
import signal
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import nullcontext
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from .errors import InputError, LegrepError
from .model import FloatArray, ImuBlock, Leg, SessionResult
from .parallel import prefetch, serial_requested, share_cores, sharing_cores, usable_cores
from .settings import Settings

if TYPE_CHECKING:
    from .diagnostics import SensorDiagnostics
    from .pipeline import LegOutput, LegStep

__all__ = ["FROM_CHILD", "ChildWork", "LegProcess", "LegSteps", "PulledLeg", "analyze_arrays", "analyze_blocks", "prefetch", "use_processes"]


def use_processes(legs: int) -> bool:
    """Whether ``legs`` streams are analysed in processes of their own (see module docstring):
    more than one, ``fork`` available, more than one core usable, and ``LEGREP_SERIAL`` unset."""
    if legs < 2 or not hasattr(os, "fork") or serial_requested():
        return False
    return usable_cores() > 1


def analyze_blocks(
    sources: Mapping[Leg, Iterable[ImuBlock]],
    settings: Settings | None = None,
    keep_traces: bool = False,
    threads: bool = True,
    pelvis: Iterable[ImuBlock] | None = None,
    on_angle: Callable[[Leg, FloatArray, FloatArray], None] | None = None,
    processes: bool | None = None,
    trace_points: int | None = None,
    beside: Callable[[], object] | None = None,
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
    trace_points : the result's traces: each leg's angle trace reduced as it streams to at most
        this many points (:class:`legrep.report.TraceEnvelope`, in the leg's process), in the order
        of ``sources`` (``keep_traces`` is then not needed).
    beside : called once the legs' processes have started (work that overlaps theirs, e.g. imports
        for what follows); in one process, before the first block.
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
    envelopes = _Envelopes(trace_points) if trace_points is not None else None
    try:
        if processes:
            thighs = [leg for leg in legs if leg is not Leg.PELVIS]
            full = keep_traces or on_angle is not None or pelvis is not None or Leg.PELVIS in legs
            angles = angle_shipping(full, len(thighs))
            for thigh, src in sources.items():
                if thigh is not Leg.PELVIS:
                    remote[thigh] = LegProcess(thigh, src, settings, threads, angles, trace_points, len(thighs))
        analyzer = SessionAnalyzer(legs, settings, keep_traces=keep_traces, pelvis=pelvis is not None, stages=remote)
        analyzer.on_angle = on_angle
        if envelopes is not None and len(remote) < len(legs):  # (the legs analysed here)
            analyzer.on_angle = envelopes if on_angle is None else _both(on_angle, envelopes)
        if beside is not None:
            beside()
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
        result = check_coverage(analyzer.finish())
        if envelopes is None:
            return result
        local = envelopes.traces()
        traces = {leg: remote[leg].trace if leg in remote else local.get(leg) for leg in result.legs}
        return dataclasses.replace(result, traces={leg: tr for leg, tr in traces.items() if tr is not None})
    finally:
        for it in iters.values():
            close = getattr(it, "close", None)
            if close is not None:
                close()
        for child in remote.values():
            child.close()


def _both(first: Callable[[Leg, FloatArray, FloatArray], None],
          second: Callable[[Leg, FloatArray, FloatArray], None]) -> Callable[[Leg, FloatArray, FloatArray], None]:  # fmt: skip
    def each(leg: Leg, time_s: FloatArray, angle_deg: FloatArray) -> None:
        first(leg, time_s, angle_deg)
        second(leg, time_s, angle_deg)

    return each


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


AngleShipping = Literal["all", "gait", "none"]
"""Which of its hip angles a leg's process sends the parent (:class:`LegProcess`)."""


def angle_shipping(full: bool, thighs: int) -> AngleShipping:
    """All the angles when the parent uses them all (``full``: traces, live sinks, the pelvis); with
    two thighs or more the samples its check of each rep against the other thigh reads
    (host/reps/gait.py); else none."""
    return "all" if full else ("gait" if thighs > 1 else "none")


class LegSteps:
    """A leg's :class:`~legrep.pipeline.LegStages` in the leg's own process: :meth:`update` runs a
    block through them and sends the step to the parent (:class:`LegProcess` takes it there);
    :meth:`finish` sends the last one. What a :data:`ChildWork` is given."""

    def __init__(self, conn: Connection, leg: Leg, settings: Settings, angles: AngleShipping, trace_points: int | None) -> None:
        from .pipeline import LegStages
        from .reps.gait import Thinning

        self.leg = leg
        self._conn = conn
        self._angles = angles
        self._thin = Thinning()
        self._envelope = _Envelopes(trace_points) if trace_points is not None else None
        self._work = LegStages(leg, settings)

    @property
    def last_angle_deg(self) -> float | None:
        return self._work.last_angle_deg

    def _compact(self, out: LegOutput) -> LegOutput:
        from .pipeline import LegOutput

        if self._envelope is not None:
            self._envelope(self.leg, out.time_s, out.angle_deg)
        if self._angles == "all":
            return LegOutput(out.time_s, out.angle_deg, out.reps)
        if self._angles == "gait":
            return LegOutput(*self._thin(out.time_s, out.angle_deg), out.reps)
        return LegOutput(_NO_ANGLES, _NO_ANGLES, out.reps)

    def update(self, block: ImuBlock) -> None:
        out, postures = self._work.update(block)
        self._conn.send((_BLOCK, (self._compact(out), postures), self._work.horizon_s(), self._work.last_angle_deg))

    def finish(self) -> None:
        work = self._work
        try:
            out, postures = work.finish()
        except BaseException as exc:  # raised by the parent's finish, as the serial path's is
            self._conn.send((_END, _portable(exc, self.leg), None, work.last_angle_deg))
            return
        trace = self._envelope.traces().get(self.leg) if self._envelope else None
        self._conn.send((_END, (self._compact(out), postures), work.diagnostics(), work.last_angle_deg, trace))


ChildWork = Callable[[LegSteps], None]
"""What a :class:`LegProcess` may run instead of iterating a source: it calls ``steps.update(block)``
for each of its leg's blocks, in order (e.g. a recording's replay in the child,
host/replay_batch.py); the last step is sent when it returns."""


def _child_main(conn: Connection, leg: Leg, source: Iterable[ImuBlock] | ChildWork, settings: Settings, threads: bool,
                angles: AngleShipping, trace_points: int | None) -> None:  # fmt: skip
    """A leg's process: its blocks through its :class:`LegStages`, each step sent to the parent
    (with the reduced angle trace at the end, for ``trace_points``)."""
    steps = LegSteps(conn, leg, settings, angles, trace_points)
    try:
        if callable(source):
            source(steps)
        else:
            for block in prefetch(source) if threads else source:
                steps.update(block)
    except BaseException as exc:
        conn.send((_ERROR, _portable(exc, leg)))
        return
    steps.finish()


class _Envelopes:
    """Each leg's angle trace reduced as it streams (:class:`legrep.report.TraceEnvelope`), the
    ``on_angle`` of ``analyze_blocks(trace_points=)``."""

    def __init__(self, points: int) -> None:
        self.points = points
        self.by_leg: dict[Leg, Any] = {}

    def __call__(self, leg: Leg, time_s: FloatArray, angle_deg: FloatArray) -> None:
        if len(time_s):
            if leg not in self.by_leg:
                from .report import TraceEnvelope

                self.by_leg[leg] = TraceEnvelope(self.points)
            self.by_leg[leg].update(time_s, angle_deg)

    def traces(self) -> dict[Leg, tuple[FloatArray, FloatArray]]:
        return {leg: env.trace() for leg, env in self.by_leg.items()}


class LegProcess:
    """A leg's :class:`~legrep.pipeline.LegStages` in a forked process of its own, as the
    :class:`~legrep.pipeline.LegWork` :class:`~legrep.pipeline.SessionAnalyzer` drives.

    :meth:`advance` takes the child's next step (False at the end of its stream; the child's error
    raised here), :meth:`update` hands it to the analyzer; :meth:`finish` gives the last one.
    """

    _open: list[Connection] = []
    """Every parent-side pipe end still open (a new child closes its copies)."""

    def __init__(self, leg: Leg, source: Iterable[ImuBlock] | ChildWork, settings: Settings, threads: bool, angles: AngleShipping,
                 trace_points: int | None = None, sharers: int = 1) -> None:  # fmt: skip
        """``source``: the leg's blocks, iterated in the child, or a :data:`ChildWork` run there
        (it makes the blocks itself). ``angles``: the steps carry the angles (``"all"``), the
        samples the parent's check against the other thigh reads (``"gait"``: host/reps/gait.py)
        or none; ``trace_points``: the child reduces them (:attr:`trace` at the end).
        ``sharers``: the processes of this analysis that run at once (this child among them): the
        child counts its share of the cores only (:func:`legrep.parallel.share_cores`)."""
        from multiprocessing import Pipe

        # numpy's median imports numpy.ma on its first call (each leg's calibration makes one, the
        # parent's set labels too): imported once here, before the fork, not once in every child
        import numpy.ma  # noqa: F401

        self.leg = leg
        self.failed = False
        """True once the child's error was raised here."""
        self._reader, writer = Pipe(duplex=False)
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
                self._reader.close()
                for other in LegProcess._open:
                    other.close()
                share_cores(sharers)
                _child_main(writer, leg, source, settings, threads, angles, trace_points)
                writer.close()
                code = 0
            finally:
                os._exit(code)  # (no atexit handlers, no flush of the parent's buffered output)
        writer.close()
        LegProcess._open.append(self._reader)
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

    @property
    def trace(self) -> tuple[FloatArray, FloatArray] | None:
        """The leg's reduced angle trace (``trace_points``; None before the end or without angles)."""
        return self._end[4] if self._end is not None and len(self._end) > 4 else None

    def diagnostics(self) -> SensorDiagnostics:
        assert self._end is not None and self._end[2] is not None
        return self._end[2]  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop the child (if it still runs), reap it, close the pipe."""
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


class PulledLeg:
    """A :class:`LegProcess` as the stages of its leg in the parent's :class:`SessionAnalyzer`, the
    child making the leg's blocks itself (a recording replayed there, host/replay_batch.py; the
    arrays it inherited, :func:`analyze_arrays`): each ``update`` takes the child's
    next step (its k-th block is the leg's k-th block here), ``finish`` its last."""

    def __init__(self, process: LegProcess) -> None:
        self.process = process

    @property
    def last_angle_deg(self) -> float | None:
        return self.process.last_angle_deg

    def update(self, block: ImuBlock) -> LegStep:
        if not self.process.advance():
            raise RuntimeError(f"the {self.process.leg.value} leg's process ended before its last block")
        return self.process.update(block)

    def finish(self) -> LegStep:
        if self.process.advance():
            raise RuntimeError(f"the {self.process.leg.value} leg's process sent a step for no block")
        return self.process.finish()

    def horizon_s(self) -> float:
        return self.process.horizon_s()

    def diagnostics(self) -> SensorDiagnostics:
        return self.process.diagnostics()


# --------------------------------------------------------------------------- arrays in memory
PROCESS_MIN_SAMPLES = 20_000
"""Samples per leg (about 3.3 minutes at 100 Hz) from which :func:`analyze_arrays` analyses the second leg
in a forked process of its own while this one analyses the first (where
:func:`use_processes` allows: ``fork``, more than one core, ``LEGREP_SERIAL`` unset).

Below it the fork and the child's start cost what they save. Measured on this project's 2-core
machine (median of 7, forked / one leg after the other with the orientation thread): 12 142 samples
a leg 1.00, 29 598 0.92, 47 076 0.73, 1 h (359 959) 0.72."""


def _forks(blocks: Mapping[Leg, ImuBlock]) -> bool:
    """Whether :func:`analyze_arrays` forks a process for the legs after the first."""
    if len(blocks) < 2 or min(len(b) for b in blocks.values()) < PROCESS_MIN_SAMPLES:
        return False
    return use_processes(len(blocks))


def _as_block(data: ImuBlock | tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike], name: str) -> ImuBlock:
    if isinstance(data, ImuBlock):
        return data
    if not isinstance(data, tuple) or len(data) != 3:
        raise InputError(f"{name}: expected an ImuBlock or a (time_s, acc_g, gyr_dps) tuple, got {type(data).__name__}")
    return ImuBlock.from_arrays(*data)


def analyze_arrays(
    left: ImuBlock | tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike] | None = None,
    right: ImuBlock | tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike] | None = None,
    settings: Settings | None = None,
    exercise: str | None = None,
    pelvis: ImuBlock | tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike] | None = None,
) -> SessionResult:
    """Analyse whole recordings given as arrays (the notebook API).

    Two long legs (:data:`PROCESS_MIN_SAMPLES` each or more, more than one core, ``fork``, and
    ``LEGREP_SERIAL`` unset) are analysed at once: the right leg in a forked process of its own (it
    inherits the arrays: nothing is copied there; its steps and angles come back through a pipe,
    :class:`LegProcess`), the left one here. The cross-leg steps see the same calls
    with the same values as one leg after the other, so the result is the same, every byte (traces
    and diagnostics too), and so is an error. Otherwise one leg after the other, each leg's
    orientation stage on a thread of its own ahead of the rest for a long recording (``poses_ahead``;
    not with ``LEGREP_SERIAL=1``).

    Parameters
    ----------
    left, right : ImuBlock or ``(time_s (N,), acc_g (N, 3), gyr_dps (N, 3))``; either may be None.
    settings : analysis settings (defaults documented in :class:`legrep.settings.Settings`).
    exercise : name every set's exercise (one of :data:`legrep.exercise.EXERCISES`) instead of
        recognising it.
    pelvis : the pelvis sensor's samples, same clock (optional, host/pelvis.py): hip flexion,
        ``pelvis_tilt_deg`` and ``back_arch``.

    Raises
    ------
    InputError, CalibrationError
        On malformed arrays or a stream with no rest long enough to calibrate.
    """
    from .pelvis import check_coverage
    from .pipeline import SessionAnalyzer

    blocks = {leg: _as_block(d, leg.value) for leg, d in ((Leg.LEFT, left), (Leg.RIGHT, right)) if d is not None}
    if not blocks:
        raise InputError("expected samples for at least one leg (left or right), got none")
    settings = settings or Settings()
    remote: dict[Leg, LegProcess] = {}
    try:
        if _forks(blocks):
            # the legs after the first in a process each; the first here (this process would only
            # wait otherwise, and its output needs no pipe). Every angle comes back: the traces.
            for leg in list(blocks)[1:]:
                remote[leg] = LegProcess(leg, [blocks[leg]], settings, False, "all", sharers=len(blocks))
        stages = {leg: PulledLeg(child) for leg, child in remote.items()}
        with sharing_cores(len(blocks)) if remote else nullcontext():  # (no orientation thread here then)
            analyzer = SessionAnalyzer(tuple(blocks), settings, exercise=exercise, pelvis=pelvis is not None, stages=stages)
            for leg, block in blocks.items():
                analyzer.update(leg, block)
            if pelvis is not None:
                analyzer.update_pelvis(_as_block(pelvis, "pelvis"))
                return check_coverage(analyzer.finish())
            return analyzer.finish()
    finally:
        for child in remote.values():  # (after an error too: no process left running)
            child.close()
