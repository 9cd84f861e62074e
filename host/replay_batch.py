"""Replay for files (``export``, ``batch``, ``replay``): the live path, with the analysis fed in
larger blocks.

Live capture hands the analysis one packet's samples at a time (18 at an MTU of 247), because a
person is waiting for each rep; replaying a file, nobody is, and the per-call cost of the analysis
was 40 % of a replay. :class:`CoalescingAnalyzer` holds each leg's blocks until ``min_samples`` are
waiting and feeds them as one block. Everything before the analysis (decoder, tracker, clock) runs
exactly as live, record by record; the analysis gives the same reps, sets, flags and traces for any
chunking of the same samples (tests/test_pipeline.py proves it for the stages; tests/test_export.py
compares this replay with :func:`legrep.replay.replay_core` on a recording with lost, corrupt and
duplicated packets). Only when events are reported changes: a rep is reported when its block is fed.

A long recording's thighs are analysed at once, in two processes (:func:`replay_file`): the second
thigh's process replays the whole recording itself (decoding costs a tenth of the analysis) and
analyses only its leg, so nothing per sample crosses between them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .live_core import SensorStream, SessionCore, concat_blocks
from .model import ImuBlock, Leg, Rep, SessionResult
from .pipeline import Event, SessionAnalyzer
from .pipeline import Event as AnalysisEvent
from .recording import RecordingReader
from .replay import EventCallback, replay_records
from .settings import Settings

if TYPE_CHECKING:
    from .diagnostics import SensorDiagnostics
    from .offline import LegProcess, LegSteps
    from .pipeline import LegStep

__all__ = ["CoalescingAnalyzer", "replay_file", "replay_records_batched"]

SampleSink = Callable[[Leg, ImuBlock], None]
"""``on_samples(leg, block)``: the samples fed to the analysis, in order (e.g. to write them out)."""
MIN_SAMPLES = 8192
"""Samples per leg fed to the analysis at once in a file replay (about 80 s at 100 Hz)."""


class CoalescingAnalyzer:
    """A :class:`SessionAnalyzer` whose ``update`` holds blocks until ``min_samples`` per leg wait.

    ``elsewhere``: legs analysed in another process that replays the same recording itself
    (:func:`replay_file` with ``processes``): their blocks are only counted here (not joined, not
    given to ``on_samples``); at each of their releases the wrapped analyzer is handed
    :data:`legrep.offline.FROM_CHILD` (it takes that process's step for the same samples: both
    processes release the same blocks in the same order).
    """

    def __init__(
        self, analyzer: SessionAnalyzer, min_samples: int | None = None, on_samples: SampleSink | None = None,
        elsewhere: Collection[Leg] = (),
    ) -> None:  # fmt: skip
        """``min_samples``: None is ``MIN_SAMPLES``."""
        self.inner = analyzer
        self.min_samples = MIN_SAMPLES if min_samples is None else min_samples
        self.on_samples = on_samples
        self.elsewhere = frozenset(elsewhere)
        self._held: dict[Leg, list[ImuBlock]] = {}
        self._count: dict[Leg, int] = {}

    def update(self, leg: Leg, block: ImuBlock) -> list[Event]:
        self._held.setdefault(leg, []).append(block)
        self._count[leg] = self._count.get(leg, 0) + len(block)
        if self._count[leg] < self.min_samples:
            return []
        return self._release(leg)

    def _release(self, leg: Leg) -> list[Event]:
        held = self._held.pop(leg, [])
        self._count[leg] = 0
        if not held:
            return []
        if leg in self.elsewhere:
            from .offline import FROM_CHILD

            return list(self.inner.update(leg, FROM_CHILD))
        block = concat_blocks(held)
        if self.on_samples is not None:
            self.on_samples(leg, block)
        return list(self.inner.update(leg, block))

    def flush(self) -> list[Event]:
        events: list[Event] = []
        for leg in list(self._held):
            events += self._release(leg)
        return events

    def link_event(self, leg: Leg, up: bool) -> list[Event]:
        """Every held block first (the analysis decides at a link event on the samples recorded
        before it, as live: host/reps/gait.py); a leg's replay process flushes at the same record."""
        return self.flush() + list(self.inner.link_event(leg, up))

    def angle_deg(self, leg: Leg) -> float | None:
        return self.inner.angle_deg(leg)

    def reps(self) -> tuple[Rep, ...]:
        return self.inner.reps()

    def finish(self) -> SessionResult:
        self.final_events = self.flush()
        return self.inner.finish()

    final_events: list[Event] = []
    """Events of the blocks still held when ``finish`` was called."""

    def __getattr__(self, name: str) -> Any:  # settings, legs, ... of the wrapped analyzer
        return getattr(self.inner, name)


PROCESSES_BY_DEFAULT = True
"""Whether a file replay analyses the thighs in two processes unless told (``processes=``; see
:func:`replay_file`)."""
PROCESSES_MIN_BYTES = 4 << 20
"""With ``PROCESSES_BY_DEFAULT``, a recording this large (about 25 minutes of two thighs) or more:
below it, forking costs more than it saves."""


def replay_file(
    path: str | os.PathLike[str] | RecordingReader,
    settings: Settings | None = None,
    keep_samples: bool = False,
    keep_traces: bool = True,
    on_events: EventCallback | None = None,
    on_samples: SampleSink | None = None,
    batched: bool = True,
    on_core: Callable[[SessionCore], None] | None = None,
    on_angle: Callable[[Leg, npt.NDArray[np.float64], npt.NDArray[np.float64]], None] | None = None,
    processes: bool | None = None,
    on_samples_end: Callable[[Sequence[Leg]], None] | None = None,
) -> tuple[SessionCore, SessionResult, RecordingReader]:
    """Replay a recording as :func:`legrep.replay.replay_core` does, the analysis fed in large blocks
    and (``batched``, the default) the packets decoded in batches (:func:`replay_records_batched`).

    ``keep_traces=False`` keeps no angle traces (memory flat in the length); ``on_samples`` sees
    every sample fed to the analysis (what ``keep_samples`` would keep, without keeping it);
    ``on_samples_end(legs)`` is called once those ``legs``' samples have all been given to it (a
    writer closes its files there); ``on_core`` sees the core before the first record (its sensors
    appear as records add them); ``on_angle`` every chunk of hip angle (``SessionAnalyzer.on_angle``).

    ``processes`` (None: as ``PROCESSES_BY_DEFAULT`` says, for a recording of two thighs of
    ``PROCESSES_MIN_BYTES`` or more, where :func:`legrep.offline.use_processes` allows): each
    thigh after the first is analysed in a forked process that replays the whole recording itself
    (the same decoding, the same blocks released in the same order) and analyses only its leg,
    sending back each block's step (:class:`legrep.offline.LegProcess`); here the recording is
    decoded as ever and the first thigh analysed, and each block of the other is given that
    process's step, where the serial replay would have analysed it. So the two thighs' stages
    run at once and nothing per sample crosses between the processes; the cross-leg steps are
    taken here in the serial order: the same result, the same events in the same order, the same
    errors raised at the same point. ``on_samples`` and ``on_samples_end`` then run in the process
    that analyses the leg (here: the first thigh and the pelvis; there: the other thigh; an
    export's CSVs are formatted beside each leg's analysis), and ``on_core`` in both, with each
    one's core.
    Not with ``keep_samples`` or ``batched=False`` (one process then).
    Returns ``(finished SessionCore, SessionResult, reader)``; the result equals replay_core's.
    """
    from .offline import LegProcess, PulledLeg, angle_shipping, use_processes

    reader = path if isinstance(path, RecordingReader) else RecordingReader(path)
    core = SessionCore.from_meta(reader.meta, settings, keep_samples=keep_samples)
    thighs = [leg for leg in core.legs if leg is not Leg.PELVIS]
    possible = batched and not keep_samples and len(thighs) >= 2
    if processes is None:
        processes = PROCESSES_BY_DEFAULT and len(reader.data) >= PROCESSES_MIN_BYTES and use_processes(len(thighs))
    remote: dict[Leg, LegProcess] = {}
    try:
        if processes and possible:
            angles = angle_shipping(keep_traces or on_angle is not None or Leg.PELVIS in core.legs, len(thighs))
            for leg in thighs[1:]:
                work = _LegReplay(reader, core.settings, leg, on_samples, on_samples_end, on_core)
                remote[leg] = LegProcess(leg, work, core.settings, False, angles)
        if not keep_traces or remote:
            stages = {leg: PulledLeg(process) for leg, process in remote.items()}
            core.analyzer = SessionAnalyzer(core.legs, core.settings, keep_traces=keep_traces, stages=stages)
        if on_angle is not None:
            core.analyzer.on_angle = on_angle
        core.analyzer = CoalescingAnalyzer(core.analyzer, on_samples=on_samples, elsewhere=remote)  # type: ignore[assignment]
        if on_core is not None:
            on_core(core)
        if batched:
            replay_records_batched(reader, core, on_events)
        else:
            replay_records(reader, core, on_events)
        result = core.finish()
        if on_samples_end is not None:
            on_samples_end([leg for leg in core.legs if leg not in remote])
    finally:
        for process in remote.values():
            process.close()
    last = core.analyzer.final_events  # type: ignore[attr-defined]
    core.events += last
    if last and on_events is not None:
        on_events(core.last_t_s, last)
    return core, result, reader


class _LegReplay:
    """What a leg's replay process runs (a :data:`legrep.offline.ChildWork`): the whole recording
    replayed as :func:`replay_file` replays it, every leg's blocks released as there, and only
    this leg's analysed (its steps sent to the parent); ``on_samples`` is given this leg's."""

    def __init__(self, reader: RecordingReader, settings: Settings, leg: Leg, on_samples: SampleSink | None,
                 on_samples_end: Callable[[Sequence[Leg]], None] | None,
                 on_core: Callable[[SessionCore], None] | None) -> None:  # fmt: skip
        self.reader, self.settings, self.leg = reader, settings, leg
        self.on_samples, self.on_samples_end, self.on_core = on_samples, on_samples_end, on_core

    def __call__(self, steps: LegSteps) -> None:
        import logging

        logging.disable(logging.CRITICAL)  # (the parent decodes the same records: it says what there is to say)
        core = SessionCore.from_meta(self.reader.meta, self.settings)
        own: Any = _OneLeg(steps, core.legs)  # (what SessionCore asks of its analyzer)
        others = [leg for leg in core.legs if leg is not self.leg]  # (their blocks not joined here)
        core.analyzer = CoalescingAnalyzer(own, on_samples=self.on_samples, elsewhere=others)  # type: ignore[assignment]
        if self.on_core is not None:
            self.on_core(core)
        replay_records_batched(self.reader, core)
        core.finish()
        if self.on_samples_end is not None:
            self.on_samples_end([self.leg])


class _OneLeg:
    """The analyzer of a leg's replay process: its leg's blocks go to its stages (``steps``), the
    other legs' are dropped; the cross-leg steps are the parent's."""

    def __init__(self, steps: LegSteps, legs: Sequence[Leg]) -> None:
        self.steps = steps
        self.legs = tuple(legs)

    def update(self, leg: Leg, block: ImuBlock) -> list[Event]:
        if leg is self.steps.leg:
            self.steps.update(block)
        return []

    def angle_deg(self, leg: Leg) -> float | None:
        return self.steps.last_angle_deg if leg is self.steps.leg else None

    def reps(self) -> tuple[Rep, ...]:
        return ()

    def link_event(self, leg: Leg, up: bool) -> list[Event]:  # (the cross-leg steps are the parent's)
        return []

    def finish(self) -> SessionResult:  # (the leg's last step is sent when the replay returns)
        return SessionResult((), (), tuple(leg for leg in self.legs if leg is not Leg.PELVIS), False)


# --- batched decoding -----------------------------------------------------------------------------
# A file replay takes the legrep DATA records of a recording in C (legrep._replaycore.replay_run):
# every packet that continues its stream in order (intact, the next seq, the next sample, nothing
# held or missing, not re-sent: almost all of them) is decoded, tracked, observed by the clock
# (window, refit), mapped onto the session clock and scaled there, with exactly the operations and
# state changes of SensorStream.data (decode_imu_packet, PacketTracker.feed, ClockMapper.observe_packet
# and map_ticks, SampleBatch.scaled), and its samples wait in a buffer per sensor. Every other
# record, and every record while some tracker holds packets, goes through SessionCore.process (the
# live path itself) after the buffered samples are fed. tests/test_replay_batch.py compares the two
# paths sample for sample on random and damaged recordings.

WINDOW_RECORDS = 1 << 15
"""Records taken at once by :func:`replay_records_batched` (about 1.5 minutes of two sensors)."""
PENDING_PACKETS = 512
"""Packets of a sensor buffered before their samples are fed to the analysis (memory bound)."""
_WCAP = 4096
"""Envelope points the C state holds per sensor (a clock whose live points do not fit stays in Python)."""
_SCAP = 1024
"""TIME_SYNC exchanges the C state holds per sensor (more: that sensor stays in Python)."""
_I = {name: k for k, name in enumerate(
    "next_seq max_seq next_sample has_next_sample tick_ref has_tick_ref open_index has_last w0 w1 s0 s1 "
    "windows_closed rate packets samples nout npkt".split())}  # fmt: skip
_F = {name: k for k, name in enumerate(
    "x0 origin window_s open_x open_r offset drift last_x last_t max_corr max_slew acc_lsb gyr_lsb "
    "fit_span min_span max_drift".split())}  # fmt: skip


class _FastState:
    """The C path's copy of the legrep sensors' tracker and clock state (one slot per sensor), and
    the samples it has made and not yet fed."""

    def __init__(self, legrep: dict[int, SensorStream]) -> None:
        from . import _replaycore

        assert _replaycore.I_COUNT == len(_I) and _replaycore.F_COUNT == len(_F)
        self.indices = sorted(legrep)
        self.streams = [legrep[i] for i in self.indices]
        n = len(self.streams)
        self.istate = np.zeros((n, len(_I)), np.int64)
        self.fstate = np.zeros((n, len(_F)), np.float64)
        self.win = np.zeros((n, 2, _WCAP))
        self.syncs = np.zeros((n, 3, _SCAP))
        cap = PENDING_PACKETS * 32
        self.out_t = np.zeros((n, cap))
        self.out_acc = np.zeros((n, cap, 3))
        self.out_gyr = np.zeros((n, cap, 3))
        self.slot_of = np.full(256, -1, np.int64)
        self.loaded = [False] * n

    def load(self) -> bool:
        """Copy every eligible sensor's state in; False when the C path cannot run now (a tracker
        holds packets: each record must poll it, as SessionCore.process does)."""
        self.slot_of[:] = -1
        if any(stream.tracker._held for stream in self.streams):
            return False
        any_slot = False
        for k, stream in enumerate(self.streams):
            tracker, clock = stream.tracker, stream.clock
            self.loaded[k] = False
            live = clock._w1 - clock._w0
            if (tracker._next_seq is None or tracker._max_seq is None or tracker._gaps or clock._x0 is None
                    or clock._open_index is None or clock._open_point is None or clock._offset is None
                    or live >= _WCAP or len(clock._syncs) > _SCAP):  # fmt: skip
                continue
            ist, fst = self.istate[k], self.fstate[k]
            ist[:] = (
                tracker._next_seq, tracker._max_seq, tracker._next_sample or 0, tracker._next_sample is not None,
                tracker._tick_ref or 0, tracker._tick_ref is not None, clock._open_index, clock._last is not None,
                0, live, 0, len(clock._syncs), clock._windows_closed, stream.status.rate_hz, 0, 0,
                ist[_I["nout"]], ist[_I["npkt"]],
            )  # fmt: skip
            lx, lt = clock._last if clock._last is not None else (0.0, 0.0)
            fst[:] = (
                clock._x0, clock.origin_host_s, clock.window_s, clock._open_point[0], clock._open_point[1],
                clock._offset, clock._drift, lx, lt, clock.max_correction_s, clock.max_slew,
                stream.status.acc_lsb_g, stream.status.gyr_lsb_dps, clock.fit_span_s, clock.min_span_s, clock.max_drift,
            )  # fmt: skip
            self.win[k, :, :live] = clock._win[:, clock._w0 : clock._w1]
            if clock._syncs:
                self.syncs[k, :, : len(clock._syncs)] = np.asarray(clock._syncs).T
            self.slot_of[self.indices[k]] = k
            self.loaded[k] = True
            any_slot = True
        return any_slot

    def store(self) -> None:
        """Copy the state of every loaded sensor back into its tracker, clock and counters."""
        for k, stream in enumerate(self.streams):
            if not self.loaded[k]:
                continue
            self.loaded[k] = False
            ist, fst = self.istate[k].tolist(), self.fstate[k].tolist()
            tracker, clock = stream.tracker, stream.clock
            packets, samples = ist[_I["packets"]], ist[_I["samples"]]
            tracker._next_seq = ist[_I["next_seq"]]
            tracker._max_seq = ist[_I["max_seq"]]
            tracker._next_sample = ist[_I["next_sample"]] if ist[_I["has_next_sample"]] else None
            tracker._tick_ref = ist[_I["tick_ref"]] if ist[_I["has_tick_ref"]] else None
            tracker.stats.received += packets
            tracker.stats.samples_out += samples
            stream.packets += packets
            stream.samples += samples
            clock._open_index = ist[_I["open_index"]]
            clock._open_point = (fst[_F["open_x"]], fst[_F["open_r"]])
            clock._offset = fst[_F["offset"]]
            clock._drift = fst[_F["drift"]]
            clock._last = (fst[_F["last_x"]], fst[_F["last_t"]]) if ist[_I["has_last"]] else None
            clock.max_correction_s = fst[_F["max_corr"]]
            clock._windows_closed = ist[_I["windows_closed"]]
            w0, w1 = ist[_I["w0"]], ist[_I["w1"]]
            if clock._win.shape[1] < w1 - w0:
                clock._win = np.empty((2, max(64, 2 * (w1 - w0))))
            clock._win[:, : w1 - w0] = self.win[k, :, w0:w1]
            clock._w0, clock._w1 = 0, w1 - w0
            del clock._syncs[: ist[_I["s0"]]]

    def take(self, k: int) -> ImuBlock | None:
        """The samples slot ``k`` has made since the last take (None if none)."""
        ist = self.istate[k]
        n = int(ist[_I["nout"]])
        ist[_I["nout"]] = ist[_I["npkt"]] = 0
        if not n:
            return None
        return ImuBlock(self.out_t[k, :n].copy(), self.out_acc[k, :n].copy(), self.out_gyr[k, :n].copy())


def replay_records_batched(
    reader: RecordingReader, core: SessionCore, on_events: EventCallback | None = None, window: int | None = None
) -> None:
    """Feed every record of ``reader`` to ``core`` as :func:`legrep.replay.replay_records` does, the
    in-order legrep packets decoded in C (the same samples, times, state and diagnostics), a
    ``window`` of records at a time (memory bounded in the session's length)."""
    from ._replaycore import replay_run

    window = window or WINDOW_RECORDS
    data = reader.data
    all_starts, all_ends, all_times = reader.index()
    events: list[AnalysisEvent] = []
    fast: _FastState | None = None
    known: set[int] = set()
    live = False  # the C state is the trackers' and clocks' (theirs is stale until fast.store())

    def flush_all() -> None:
        assert fast is not None
        for k, stream in enumerate(fast.streams):
            block = fast.take(k)
            if block is not None:
                events.extend(core._feed(stream.leg, block))

    def report(t_s: float) -> None:
        if events:
            core.events += events
            if on_events is not None:
                on_events(t_s, list(events))
            events.clear()

    for w0 in range(0, len(all_starts), window):
        reader.release(int(all_starts[w0]))  # (the windows before: memory flat in the length)
        starts = np.ascontiguousarray(all_starts[w0 : w0 + window])
        ends = np.ascontiguousarray(all_ends[w0 : w0 + window])
        times = np.ascontiguousarray(all_times[w0 : w0 + window])
        r, stop = 0, len(starts)
        while r < stop:
            if set(core.legrep) != known:  # (a SENSOR record came: new slots)
                assert not live
                if fast is not None:
                    flush_all()
                    report(core.last_t_s)
                known = set(core.legrep)
                fast = _FastState(core.legrep)
            if fast is not None and (live or fast.load()):
                r1, reason = replay_run(data, starts, ends, times, r, stop, fast.slot_of, fast.istate, fast.fstate,
                                        fast.win, fast.syncs, fast.out_t, fast.out_acc, fast.out_gyr, PENDING_PACKETS)  # fmt: skip
                # (the state stays in C while only the analysis is fed: back to the trackers and
                # clocks before a record takes the Python path, and at the end)
                live = reason != 1
                if not live:
                    fast.store()
                if r1 > r:
                    t_last = float(times[r:r1].max())
                    if t_last > core.last_t_s:
                        core.last_t_s = t_last
                    if reason == 2:  # a sensor's buffer is full: its samples go to the analysis
                        for k, stream in enumerate(fast.streams):
                            if fast.istate[k, _I["npkt"]] >= PENDING_PACKETS:
                                block = fast.take(k)
                                if block is not None:
                                    events.extend(core._feed(stream.leg, block))
                        report(float(times[r1 - 1]))
                r = r1
                if reason != 1:
                    continue
            if fast is not None:
                flush_all()  # (the buffered samples' events come before this record's own)
                report(float(times[r]))
            t_s = float(times[r])
            got = core.process(reader._record(int(starts[r]), int(ends[r]), t_s))
            if got and on_events is not None:
                on_events(t_s, got)
            r += 1
        if fast is not None:
            flush_all()  # (the window's samples are fed with it)
    if fast is not None and live:
        fast.store()
    report(core.last_t_s)
