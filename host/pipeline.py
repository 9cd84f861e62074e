"""The analysis pipeline: wires the stages for one leg and for a whole session.

    ImuBlock -> Calibrator -> HipAngleEstimator (OrientationFilter -> angle) -> RepSegmenter -> reps  (per leg)
    reps of both legs -> group_sets -> sets, flags, uneven                  (session)

Live capture, replay and offline analysis all feed :class:`SessionAnalyzer`; every stage
carries its state between chunks, so any chunking of the same samples gives the same reps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .diagnostics import CalibrationDiagnostics, Diagnostics, RepDiagnostics, SensorDiagnostics
from .errors import CalibrationError, InputError
from .exercise import OpenReps, PostureTracker, RepPosture, label_sets
from .fusion.angle import HipAngleEstimator
from .fusion.calibration import Calibration, Calibrator
from .model import FloatArray, ImuBlock, Leg, Rep, SessionResult, SetSummary
from .pelvis import PelvisStage
from .reps.gait import GaitFilter
from .reps.segmenter import RepSegmenter
from .reps.sets import group_sets
from .settings import Settings


@dataclass(frozen=True, slots=True)
class LegOutput:
    """What one ``LegPipeline.update`` produced: angles released (with the still flag the
    segmenter saw) and reps closed."""

    time_s: FloatArray
    angle_deg: FloatArray
    reps: list[Rep]
    still: npt.NDArray[np.bool_] = field(default_factory=lambda: np.empty(0, dtype=bool))


@dataclass(frozen=True, slots=True)
class RepClosed:
    rep: Rep


@dataclass(frozen=True, slots=True)
class SetClosed:
    summary: SetSummary
    reps: tuple[Rep, ...]


Event = RepClosed | SetClosed
_NONE = np.empty(0)
_CALIB_SLICE = 256


def _join(a: LegOutput, b: LegOutput) -> LegOutput:
    if not len(a.time_s):
        return b
    if not len(b.time_s):
        return LegOutput(a.time_s, a.angle_deg, a.reps + b.reps, a.still)
    return LegOutput(
        np.concatenate([a.time_s, b.time_s]),
        np.concatenate([a.angle_deg, b.angle_deg]),
        a.reps + b.reps,
        np.concatenate([a.still, b.still]),
    )


class LegPipeline:
    """Calibration, hip angle and rep segmentation for one thigh sensor.

    Until the first rest (calibration) every sample is kept; then the orientation stage
    analyses them (back in time before the rest, forward from it) and the pipeline catches
    up, so live capture, replay and offline analysis give identical results.
    """

    def __init__(self, leg: Leg, settings: Settings | None = None) -> None:
        self.leg = leg
        self.settings = settings or Settings()
        self._cal = Calibrator(self.settings, f"{leg.value} sensor")
        self.calibration: Calibration | None = None
        self._angle: HipAngleEstimator | None = None
        self._seg: RepSegmenter | None = None
        self._seg_counts = (0, 0)  # rejected excursions and fidgets of segmenters before a posture change
        self._last_t = -np.inf
        self._n_in = 0
        self.last_angle_deg: float | None = None

    def update(self, block: ImuBlock) -> LegOutput:
        t, acc, gyr = block.time_s, block.acc_g, block.gyr_dps
        if len(t) == 0:
            return LegOutput(_NONE, _NONE, [])
        self._validate(block)
        self._n_in += len(t)
        if self._angle is None:
            # short slices: calibration usually needs only the first seconds of a long chunk
            for i in range(0, len(t), _CALIB_SLICE):
                sl = slice(i, i + _CALIB_SLICE)
                cal = self._cal.update(t[sl], acc[sl], gyr[sl])
                if cal is not None:
                    j = i + _CALIB_SLICE
                    if self._n_in == len(t) and j < len(t):
                        # every sample the calibrator holds is this block's: the estimator takes the
                        # block from the rest on in one call (the same angles: any chunking gives them),
                        # not the calibrator's copy and then the rest, joined (a copy of the whole block)
                        return self._start(cal, (t, acc, gyr))
                    first = self._start(cal)
                    if j >= len(t):
                        return first
                    rest = self._emit(*self._run_angle(t[j:], acc[j:], gyr[j:]))
                    return _join(first, rest)
            return LegOutput(_NONE, _NONE, [])
        return self._emit(*self._run_angle(t, acc, gyr))

    def finish(self) -> LegOutput:
        """End of stream: release held-back samples and confirm a pending rep.

        Raises
        ------
        CalibrationError
            If the stream never rested long enough to calibrate (names the longest quiet stretch).
        """
        if self._angle is None:
            if self._n_in == 0:
                raise CalibrationError(f"{self.leg.value} sensor: expected samples to calibrate from, got none")
            out = self._start(self._cal.finish())
            assert self._angle is not None
            out = _join(out, self._emit(*self._angle.finish()))
        else:
            out = self._emit(*self._angle.finish())
        assert self._seg is not None
        return LegOutput(out.time_s, out.angle_deg, out.reps + self._seg.finish(), out.still)

    def horizon_s(self) -> float:
        return self._seg.horizon_s() if self._seg is not None else -np.inf

    def diagnostics(self) -> SensorDiagnostics:
        cal = self.calibration
        return SensorDiagnostics(
            samples=int(self._n_in),
            calibration=(
                CalibrationDiagnostics(cal.still_s, cal.start_s, cal.dt_nominal_s) if cal is not None else None
            ),
            orientation=self._angle.orientation_diagnostics() if self._angle is not None else None,
            mounting=self._angle.diagnostics() if self._angle is not None else None,
            reps=(
                RepDiagnostics(
                    rejected_excursions=int(self._seg.n_rejected + self._seg_counts[0]),
                    fidgets=int(self._seg.n_fidgets + self._seg_counts[1]),
                )
                if self._seg is not None
                else None
            ),
        )

    # ------------------------------------------------------------------
    def _start(self, cal: Calibration, block: tuple[FloatArray, FloatArray, FloatArray] | None = None) -> LegOutput:
        """Calibration found: analyse every sample kept so far (before the rest and after); or
        ``block`` (t, acc, gyr) from its first sample on, when the calibrator holds only samples of it."""
        self.calibration = cal
        t, acc, gyr = self._cal.buffered() if block is None else block
        s = cal.start_index
        self._angle = HipAngleEstimator(cal, self.settings, pre=(t[:s], acc[:s], gyr[:s]))
        self._seg = RepSegmenter(self.leg, self.settings, cal.dt_nominal_s)
        if s >= len(t):
            return LegOutput(_NONE, _NONE, [])
        return self._emit(*self._run_angle(t[s:], acc[s:], gyr[s:]))

    def _run_angle(self, t: FloatArray, acc: FloatArray, gyr: FloatArray) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        assert self._angle is not None
        return self._angle.update(t, acc, gyr)

    def _emit(self, t: FloatArray, angle: FloatArray, still: npt.NDArray[np.bool_]) -> LegOutput:
        assert self._seg is not None and self._angle is not None and self.calibration is not None
        if len(t) == 0:
            return LegOutput(_NONE, _NONE, [])
        self.last_angle_deg = float(angle[-1])
        if not self._angle.restarts:
            return LegOutput(t, angle, self._seg.update(t, angle, still), still)
        # a new posture (host/fusion/angle.py): the segmenter restarts at its neutral pose, so
        # the posture change (and any candidate rep open across it) is no rep
        reps: list[Rep] = []
        lo = 0
        for t_new in self._angle.restarts:
            k = int(np.searchsorted(t, t_new))
            reps += self._seg.update(t[lo:k], angle[lo:k], still[lo:k])
            self._seg_counts = (self._seg_counts[0] + self._seg.n_rejected, self._seg_counts[1] + self._seg.n_fidgets)
            self._seg = RepSegmenter(self.leg, self.settings, self.calibration.dt_nominal_s)
            lo = k
        self._angle.restarts.clear()
        reps += self._seg.update(t[lo:], angle[lo:], still[lo:])
        return LegOutput(t, angle, reps, still)

    def _validate(self, block: ImuBlock) -> None:
        t = block.time_s
        # one pass each: a sum is NaN/inf if some element is, or if huge finite ones overflow it
        with np.errstate(over="ignore", invalid="ignore"):  # (then the exact check below says which)
            sums_finite = math.isfinite(float(t.sum())) and math.isfinite(float(block.acc_g.sum() + block.gyr_dps.sum()))
        if not sums_finite:
            finite = np.isfinite(t) & np.isfinite(block.acc_g).all(1) & np.isfinite(block.gyr_dps).all(1)
            if not finite.all():
                bad = int(np.flatnonzero(~finite)[0])
                raise InputError(f"{self.leg.value} sensor: expected finite numbers, got NaN/inf at sample {self._n_in + bad}")
            values = np.column_stack([t, block.acc_g, block.gyr_dps])
            k = int(np.flatnonzero((np.abs(values) > 1e150).any(1))[0]) if (np.abs(values) > 1e150).any() else 0
            raise InputError(
                f"{self.leg.value} sensor: expected physically possible values, got {values[k].tolist()!r:.120} at sample {self._n_in + k}"
            )
        if not (t[0] > self._last_t and (len(t) == 1 or bool((t[1:] > t[:-1]).all()))):
            steps = np.diff(t, prepend=self._last_t)
            k = int(np.flatnonzero(steps <= 0)[0])
            prev = self._last_t if k == 0 else t[k - 1]
            raise InputError(
                f"{self.leg.value} sensor: expected increasing time, got {t[k]!r} s after {prev!r} s "
                f"(sample {self._n_in + k})"
            )
        self._last_t = float(t[-1])


LegStep = tuple[LegOutput, list[RepPosture]]
"""What one leg's stages give for a block: the pipeline's output and the posture of each rep it closed."""


class LegWork(Protocol):
    """One leg's independent stages as :class:`SessionAnalyzer` drives them: :class:`LegStages`
    here, or their twin in a process of the leg's own (host/offline.py)."""

    @property
    def last_angle_deg(self) -> float | None: ...

    def update(self, block: ImuBlock) -> LegStep: ...

    def finish(self) -> LegStep: ...

    def horizon_s(self) -> float: ...

    def diagnostics(self) -> SensorDiagnostics: ...


class LegStages:
    """Everything of one leg that needs no other leg: its :class:`LegPipeline` and the
    :class:`~legrep.exercise.PostureTracker` that measures the posture of each rep it closes.

    The cross-leg steps (the live ``both_legs`` flag, sets, uneven, the pelvis) are
    :class:`SessionAnalyzer`'s; so the legs of a whole file can run in processes of their own.
    """

    def __init__(self, leg: Leg, settings: Settings) -> None:
        self.settings = settings
        self.pipe = LegPipeline(leg, settings)
        self.tracker = PostureTracker(settings)

    @property
    def last_angle_deg(self) -> float | None:
        return self.pipe.last_angle_deg

    def update(self, block: ImuBlock) -> LegStep:
        out = self.pipe.update(block)
        self.tracker.update(block)
        self.tracker.trim(self.pipe.horizon_s() - self.settings.max_rep_s - self.tracker.LOOKBACK_S)
        return out, [self.tracker.measure(r) for r in out.reps]

    def finish(self) -> LegStep:
        out = self.pipe.finish()
        return out, [self.tracker.measure(r) for r in out.reps]

    def horizon_s(self) -> float:
        return self.pipe.horizon_s()

    def diagnostics(self) -> SensorDiagnostics:
        return self.pipe.diagnostics()


class SessionAnalyzer:
    """Both legs, sets and flags; the object live capture, replay and ``analyze`` all drive."""

    def __init__(
        self,
        legs: Sequence[Leg] = (Leg.LEFT, Leg.RIGHT),
        settings: Settings | None = None,
        keep_traces: bool = True,
        exercise: str | None = None,
        pelvis: bool = False,
        stages: Mapping[Leg, LegWork] | None = None,
    ) -> None:
        """``stages``: a leg's stages run elsewhere (host/offline.py: in a process of the leg's
        own); the other legs get :class:`LegStages` here."""
        pelvis = pelvis or Leg.PELVIS in legs  # the pelvis sensor may come as one of the "legs"
        legs = tuple(leg for leg in legs if leg is not Leg.PELVIS)
        if not legs:
            raise InputError("expected at least one leg, got none")
        self.settings = settings or Settings()
        self.legs = tuple(legs)
        given = stages or {}
        self._legs: dict[Leg, LegWork] = {leg: given.get(leg) or LegStages(leg, self.settings) for leg in self.legs}
        self._keep = keep_traces
        self._traces: dict[Leg, list[tuple[FloatArray, FloatArray]]] = {leg: [] for leg in self.legs}
        self._reps: list[Rep] = []
        self._open = OpenReps()  # the open set's reps
        self._open_end_s = -np.inf
        self._closed_sets: list[SetSummary] = []
        self._finished: set[Leg] = set()
        self.on_angle: Callable[[Leg, FloatArray, FloatArray], None] | None = None
        """Called with ``(leg, time_s, angle_deg)`` for every chunk of hip angle released (live sinks)."""
        # which exercise / both legs (host/exercise.py): each rep's posture, measured by its leg's stages
        self._exercise = exercise
        self._postures: dict[tuple[str, float], RepPosture] = {}
        # the optional pelvis sensor (host/pelvis.py): reps wait for it, then are measured
        self._pelvis = PelvisStage(self.settings, self.legs) if pelvis else None
        self._pelvis_done = False
        # walking strides taken for reps: judged against the other thigh (host/reps/gait.py)
        self._gait = GaitFilter(self.settings, self.legs) if len(self.legs) > 1 else None
        self._down: set[Leg] = set()  # thighs whose sensor link is down (link_event)

    def update_pelvis(self, block: ImuBlock) -> list[Event]:
        """Samples of the pelvis sensor (``pelvis=True``): reps it now covers are released."""
        if self._pelvis is None:
            raise InputError("expected samples for the thighs only (no pelvis sensor in this session), got pelvis samples")
        self._pelvis.update(block)
        return self._accept(self._pelvis.release(self._horizons(), self._down))

    def update(self, leg: Leg, block: ImuBlock) -> list[Event]:
        if leg is Leg.PELVIS and self._pelvis is not None:
            return self.update_pelvis(block)
        if leg not in self._legs:
            raise InputError(f"expected samples for {[lg.value for lg in self.legs]}, got {leg.value}")
        return self._take(leg, *self._legs[leg].update(block))

    def link_event(self, leg: Leg, up: bool) -> list[Event]:
        """A thigh's sensor link went down (``up`` False: a DISCONNECT record) or came back (a
        RECONNECT). While it is down, the other thigh's reps are not held for its angles (the
        walking check, host/reps/gait.py; the pelvis's measure, host/pelvis.py), and the open set
        closes without waiting for it. The pelvis sensor's (``Leg.PELVIS``): while it is down, a
        rep it does not cover is released unmeasured. Once every sample is in, the result is what
        it would be without the event but for such reps: one the down thigh's re-sent samples
        would have shown to be a walking stride, one the pelvis's would have measured."""
        if leg is Leg.PELVIS and self._pelvis is not None:
            self._pelvis.link(up)  # (a rep it does not cover is released unmeasured)
            return self._accept(self._pelvis.release(self._horizons(), self._down))
        if leg not in self._legs:
            return []  # (a leg this session does not analyse)
        if up:
            self._down.discard(leg)
        else:
            self._down.add(leg)
        if self._gait is None:
            return []
        self._gait.link(leg, up)
        return self._judged(self._gait.release(self._horizons()))

    def angle_deg(self, leg: Leg) -> float | None:
        work = self._legs.get(leg)
        return work.last_angle_deg if work is not None else None

    def reps(self) -> tuple[Rep, ...]:
        return tuple(self._reps)

    def finish(self) -> SessionResult:
        for leg in self.legs:
            if leg not in self._finished:
                step = self._legs[leg].finish()
                if self._gait is not None:
                    self._gait.finish_leg(leg)
                self._take(leg, *step)
                self._finished.add(leg)
        if self._pelvis is not None and not self._pelvis_done:
            self._pelvis.finish()
            self._pelvis_done = True
            self._accept(self._pelvis.release(self._horizons(), self._down))
        final = self._reps if self._pelvis is None else self._pelvis.finalize(self._reps)
        reps, sets, uneven = group_sets(final, self.legs, self.settings)
        reps, sets = label_sets(reps, sets, self._postures, self.settings, self._exercise)
        traces = {}
        if self._keep:
            for leg, parts in self._traces.items():
                if len(parts) == 1:
                    traces[leg] = parts[0]
                else:
                    traces[leg] = (
                        np.concatenate([p[0] for p in parts]) if parts else _NONE,
                        np.concatenate([p[1] for p in parts]) if parts else _NONE,
                    )
        return SessionResult(
            reps=reps,
            sets=sets,
            legs=self.legs,
            uneven=uneven,
            diagnostics=Diagnostics(
                {leg.value: self._legs[leg].diagnostics() for leg in self.legs}
                | ({Leg.PELVIS.value: self._pelvis.diagnostics()} if self._pelvis is not None else {})
            ),
            traces=traces,
        )

    # ------------------------------------------------------------------
    def _take(self, leg: Leg, out: LegOutput, postures: Sequence[RepPosture]) -> list[Event]:
        if self._keep and len(out.time_s):
            self._traces[leg].append((out.time_s, out.angle_deg))
        if self.on_angle is not None and len(out.time_s):
            self.on_angle(leg, out.time_s, out.angle_deg)
        out = self._note_postures(out, postures)
        reps = out.reps
        if self._gait is not None:
            self._gait.angles(leg, out.time_s, out.angle_deg)
            self._gait.submit(reps)
            reps = self._gait.release(self._horizons())
        if self._pelvis is not None:
            self._pelvis.angles(leg, out.time_s, out.angle_deg)
        return self._judged(reps)

    def _judged(self, reps: list[Rep]) -> list[Event]:
        """Reps past the walking check: measured against the pelvis (if any), then accepted."""
        if self._pelvis is None:
            return self._accept(reps)
        self._pelvis.submit(reps, self._postures)
        return self._accept(self._pelvis.release(self._horizons(), self._down))

    def _horizons(self) -> dict[Leg, float]:
        return {leg: np.inf if leg in self._finished else self._legs[leg].horizon_s() for leg in self.legs}

    def _accept(self, reps: list[Rep]) -> list[Event]:
        # the live ``both_legs`` flag against the reps accepted so far (a rep waiting for the
        # other thigh, host/reps/gait.py, is flagged once it is accepted)
        flagged = []
        for r in reps:
            r = self._open.flag(r, self.settings)
            self._open.extend((r,))
            flagged.append(r)
        reps = flagged
        events: list[Event] = [RepClosed(r) for r in reps]
        if reps:
            self._reps.extend(reps)
            self._open_end_s = max(self._open_end_s, max(r.end_s for r in reps))
        if self._open:
            events.extend(self._close_sets())
        return events

    def _close_sets(self) -> list[Event]:
        """Close the open set once every leg is past its last rep + ``set_rest_s``."""
        if not self._open:
            return []
        # (not for a thigh whose link is down: a dead sensor would hold every set open until the end;
        # with every link down, no set closes)
        horizon = min([h for leg, h in self._horizons().items() if leg not in self._down] or [-np.inf])
        if self._pelvis is not None:  # a rep waiting for the pelvis may still join the set
            horizon = min(horizon, self._pelvis.pending_start_s())
        if self._gait is not None:  # and one waiting for the other thigh
            horizon = min(horizon, self._gait.pending_start_s())
        if horizon < self._open_end_s + self.settings.set_rest_s:
            return []
        reps, sets, _ = group_sets(self._open.all, self.legs, self.settings)
        reps, sets = label_sets(reps, sets, self._postures, self.settings, self._exercise)
        events: list[Event] = []
        by_set: dict[int, list[Rep]] = {}
        for r in reps:
            by_set.setdefault(r.set, []).append(r)
        for summary in sets:
            number = len(self._closed_sets) + 1
            summary = SetSummary(number, summary.start_s, summary.end_s, summary.left_reps, summary.right_reps,
                                 summary.uneven, summary.exercise)  # fmt: skip
            self._closed_sets.append(summary)
            events.append(SetClosed(summary, tuple(by_set.get(summary.set, ()))))
        self._open.clear()
        self._open_end_s = -np.inf
        return events


    def _note_postures(self, out: LegOutput, postures: Sequence[RepPosture]) -> LegOutput:
        """Keep each closed rep's posture (host/exercise.py)."""
        if not out.reps:
            return out
        for r, posture in zip(out.reps, postures, strict=True):
            self._postures[(r.leg.value, r.start_s)] = posture
        return out
