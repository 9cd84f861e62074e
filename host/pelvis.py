"""The pelvis sensor: pelvic tilt per rep, the ``back_arch`` flag and true hip flexion.

An optional third IMU sits on the pelvis (the sacrum or a belt), in any orientation. This
stage follows its up vector, and for every thigh rep measures

* ``pelvis_tilt_deg``: the largest change of pelvic tilt from its level at the rep's start
  during the rep, signed, positive for an **anterior** tilt (lying on the back: the lower back
  arches off the mat); ``back_arch`` is flagged when ``|pelvis_tilt_deg|`` exceeds
  ``max_pelvic_tilt_deg``;
* the rep's ``peak_deg`` and ``rom_deg`` as **hip flexion**: the thigh's angle relative to the
  pelvis in the sagittal plane. An anterior tilt turns the pelvis the opposite way to a thigh's
  flexion, so ``hip = thigh angle + direction * tilt`` (``direction`` +1 for raises forward, -1
  for hip extensions: plank leg lifts, bird dogs), the tilt counted from its level at the rep's
  start: ``baseline_deg`` stays the thigh's (its zero is the thigh's neutral pose, with the pelvis
  at rest), ``peak_deg`` is the largest hip angle during the rep, ``rom_deg`` their difference.
  Counting from the rep's start keeps a posture change or a pelvis resting a little differently
  between sets out of it.

**The tilt axis.** The pelvis tilts about the line through both hip joints, the axis the
thighs flex about; in the pelvis sensor's frame it is unknown (any mounting). When the pelvis
turns by ``tau`` about an axis ``m`` (sensor frame), its up vector ``u`` turns by ``-tau``
about ``m``, so ``v = u x u0 = sin(tau) m`` (``u0`` the up vector at the rep's start): every
tilt says where ``m`` lies. The axis is the principal direction of the ``v`` of all reps so far
(their sum of outer products); a rep's tilt is ``atan2(v . m, u . u0)``.

**Which way is anterior** cannot come from gravity while lying (the pelvis's up vector is its
front; the head-to-feet direction is the one unknown) nor from the thighs (gravity is the
only direction their frames share, so the heading between the frames, whose half-turn is the
sign, is unobservable). It comes from the mechanics of the raise: the hip flexors that raise
the thigh pull the pelvis into anterior tilt unless the abdominals hold it (Neumann, "Kinesiology
of the hip: a focus on muscular actions", J Orthop Sports Phys Ther 40(2), 2010; the same
coupling is what Kendall's double-leg-lowering test of abdominal strength reads), and in hip
extension the lumbar spine extends with it: the pelvis tilts anteriorly *as the thigh rises*.
So the sign of ``m`` is the one for which the tilts of the reps so far, weighted by their size
(``sin^2``) and by how far the thigh had risen at each sample, sum positive. Large tilts decide
it (a flat pelvis wobbles either way by a degree, an arch is several); before any rep tilted
clearly the sign may be wrong, but then the tilts are small, and ``back_arch`` reads
``|tilt|`` and does not depend on it.

**Streams.** Reps wait here until the pelvis stream covers them and no rep of another leg
can still close before them (each leg's segmenter horizon), then they are measured in the
order of their start: the axis state depends only on the samples, never on chunking or on
how the streams interleave, so live capture, replay and offline analysis agree.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .buffers import TimedSamples
from .diagnostics import CalibrationDiagnostics, PelvisDiagnostics, SensorDiagnostics
from .diagnostics import vec3 as _vec3
from .errors import CalibrationError, InputError
from .exercise import RepPosture, classify_elevation
from .fusion.calibration import Calibration, Calibrator
from .fusion.orientation import OrientationFilter, run_backward
from .model import FloatArray, ImuBlock, Leg, Rep, SessionResult
from .settings import Settings

__all__ = ["BACK_ARCH", "PelvisStage", "PelvisTracker", "check_coverage"]

BACK_ARCH = "back_arch"
"""The flag; its live cue, "keep your back flat", is in :data:`legrep.exercise.CUES`."""
LEVEL_S = 0.25
"""The pelvis's resting level for a rep: its mean up vector over this long before ``start_s``."""
ELEVATIONS_KEPT = 9
"""A leg's raise direction is judged on the median of its last this many measured reps."""
_CALIB_SLICE = 256
_EMPTY3 = np.empty((0, 3))


class PelvisTracker:
    """The pelvis sensor's up vector per sample, after calibration at its first rest.

    Samples before that rest are analysed backward from it (as a thigh's are). ``horizon_s``
    is the time up to which up vectors are known (``inf`` after :meth:`finish`).
    """

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self._cal = Calibrator(settings, "pelvis sensor")
        self.calibration: Calibration | None = None
        self._filter: OrientationFilter | None = None
        self._t: list[FloatArray] = []
        self._up: list[FloatArray] = []
        self._uref: list[FloatArray] = []
        self._last_t = -math.inf
        self._first_t = math.nan
        self._n_in = 0
        self.horizon_s = -math.inf

    def update(self, block: ImuBlock) -> None:
        t, acc, gyr = block.time_s, block.acc_g, block.gyr_dps
        if not len(t):
            return
        self._validate(block)
        if not self._n_in:
            self._first_t = float(t[0])
        self._n_in += len(t)
        if self._filter is None:
            for i in range(0, len(t), _CALIB_SLICE):
                sl = slice(i, i + _CALIB_SLICE)
                cal = self._cal.update(t[sl], acc[sl], gyr[sl])
                if cal is not None:
                    self._start(cal)
                    j = i + _CALIB_SLICE
                    if j < len(t):
                        self._forward(t[j:], acc[j:], gyr[j:])
                    return
            return
        self._forward(t, acc, gyr)

    def finish(self) -> None:
        """End of stream.

        Raises
        ------
        CalibrationError
            No samples at all, or no rest long enough to calibrate (names the longest quiet stretch).
        """
        if self._filter is None:
            if self._n_in == 0:
                raise CalibrationError("pelvis sensor: expected samples to calibrate from, got none")
            self._start(self._cal.finish())
        self.horizon_s = math.inf

    def window(self, t0_s: float, t1_s: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Samples with ``t0_s <= t <= t1_s``: ``(t (N,), up (N, 3), u_ref (N, 3))``."""
        self._consolidate()
        if not self._t:
            return np.empty(0), _EMPTY3, _EMPTY3
        t = self._t[0]
        lo, hi = int(np.searchsorted(t, t0_s)), int(np.searchsorted(t, t1_s, side="right"))
        return t[lo:hi], self._up[0][lo:hi], self._uref[0][lo:hi]

    def trim(self, before_s: float) -> None:
        """Forget samples before ``before_s`` (no rep can need them any more)."""
        self._consolidate()
        if self._t:
            k = int(np.searchsorted(self._t[0], before_s))
            if k:
                self._t, self._up, self._uref = [self._t[0][k:]], [self._up[0][k:]], [self._uref[0][k:]]

    def diagnostics(self) -> SensorDiagnostics:
        """Samples, first and last sample times, calibration and tilt-filter diagnostics."""
        cal = self.calibration
        return SensorDiagnostics(
            samples=int(self._n_in),
            calibration=CalibrationDiagnostics(cal.still_s, cal.start_s) if cal is not None else None,
            orientation=self._filter.diagnostics() if self._filter is not None else None,
            pelvis=PelvisDiagnostics(first_s=self._first_t, last_s=self._last_t),
        )

    # ------------------------------------------------------------------
    def _start(self, cal: Calibration) -> None:
        self.calibration = cal
        t, acc, gyr = self._cal.buffered()
        s = cal.start_index
        self._filter = OrientationFilter(self.s, cal.gravity_ref, cal.gyro_bias_dps, cal.dt_nominal_s)
        if s > 0:
            up, uref, _, _, _, _ = run_backward(self.s, cal.gravity_ref, cal.gyro_bias_dps, cal.dt_nominal_s,
                                          t[:s], acc[:s], gyr[:s], cal.start_s)  # fmt: skip
            self._store(t[:s], up, uref)
        if s < len(t):
            self._forward(t[s:], acc[s:], gyr[s:])

    def _forward(self, t: FloatArray, acc: FloatArray, gyr: FloatArray) -> None:
        assert self._filter is not None
        up, uref, _, _ = self._filter.update(t, acc, gyr)
        self._store(t, up, uref)
        self.horizon_s = float(t[-1])

    def _store(self, t: FloatArray, up: FloatArray, uref: FloatArray) -> None:
        self._t.append(np.asarray(t, dtype=np.float64))
        self._up.append(up)
        self._uref.append(uref)

    def _consolidate(self) -> None:
        if len(self._t) > 1:
            self._t, self._up, self._uref = ([np.concatenate(x)] for x in (self._t, self._up, self._uref))

    def _validate(self, block: ImuBlock) -> None:
        t = block.time_s
        if not (np.isfinite(t).all() and np.isfinite(block.acc_g).all() and np.isfinite(block.gyr_dps).all()):
            raise InputError(f"pelvis sensor: expected finite numbers, got NaN/inf near sample {self._n_in}")
        steps = np.diff(t, prepend=self._last_t)
        if (steps <= 0).any():
            k = int(np.flatnonzero(steps <= 0)[0])
            prev = self._last_t if k == 0 else float(t[k - 1])
            raise InputError(f"pelvis sensor: expected increasing time, got {float(t[k])!r} s after {prev!r} s "
                             f"(sample {self._n_in + k})")  # fmt: skip
        self._last_t = float(t[-1])


@dataclass(frozen=True, slots=True)
class _Pending:
    rep: Rep
    direction: int


class PelvisStage:
    """Measures thigh reps against the pelvis (module docstring); holds them until it can.

    ``update(block)`` takes pelvis samples; ``angles(leg, t, angle)`` the thigh angles released;
    ``submit(reps, postures)`` reps closed by a thigh; ``release(horizons, finished)`` returns the
    reps that can be measured now, measured, in start order.
    """

    def __init__(self, settings: Settings, legs: Sequence[Leg]) -> None:
        self.s = settings
        self.tracker = PelvisTracker(settings)
        self._angles = {leg: TimedSamples() for leg in legs}
        self._pending: list[_Pending] = []
        self._direction = {leg: 1 for leg in legs}
        self._elevations: dict[Leg, list[float]] = {leg: [] for leg in legs}
        self._cov = np.zeros((3, 3))
        self._sense = np.zeros(3)
        self._axis: FloatArray | None = None
        self._kept: dict[tuple[Leg, float], tuple[FloatArray, FloatArray, FloatArray, int]] = {}
        """Per measured rep: the axis used, the thigh angles and the pelvis tilt at their times,
        the direction (to redo the rep if the session's sign turns out the other way)."""
        self._down_at_s: float | None = None
        """While the pelvis sensor's link is down: its samples' horizon when it went down (:meth:`link`)."""
        self.n_measured = 0
        self.n_unmeasured = 0
        self.unmeasured_span_s = (math.inf, -math.inf)

    def update(self, block: ImuBlock) -> None:
        self.tracker.update(block)

    def finish(self) -> None:
        self.tracker.finish()

    def angles(self, leg: Leg, time_s: FloatArray, angle_deg: FloatArray) -> None:
        self._angles[leg].append(time_s, angle_deg)

    def submit(self, reps: Sequence[Rep], postures: Mapping[tuple[str, float], RepPosture]) -> None:
        for r in reps:
            # raised forward (+1) or backward (-1, hip extension): the median baseline elevation
            # of the leg's last measured reps (host/exercise.py measures a few per set; one rep's
            # fit may stray, as the set's label also takes the median)
            posture = postures.get((r.leg.value, r.start_s))
            elev = posture.elevation_deg if posture is not None else None
            if elev is not None:
                seen = self._elevations[r.leg]
                seen.append(elev)
                del seen[:-ELEVATIONS_KEPT]
                extension = classify_elevation(float(np.median(seen)), self.s) == "hip_extension"
                self._direction[r.leg] = -1 if extension else 1
            self._pending.append(_Pending(r, self._direction[r.leg]))

    def pending_start_s(self) -> float:
        """Earliest start of a rep still waiting (``inf``: none)."""
        return min((p.rep.start_s for p in self._pending), default=math.inf)

    def link(self, up: bool) -> None:
        """The pelvis sensor's link went down (``up`` False) or came back. While it is down, a rep
        its samples (as far as they reached when it went down) do not cover is released at once,
        unmeasured (as host/reps/gait.py passes a rep a down thigh does not cover)."""
        if up:
            self._down_at_s = None
        elif self._down_at_s is None:
            self._down_at_s = self.tracker.horizon_s

    def release(self, horizons: Mapping[Leg, float], down: Collection[Leg] = ()) -> list[Rep]:
        """Measure the waiting reps that the pelvis covers and no earlier rep can precede.

        ``horizons`` per leg: no rep that leg closes later starts before it (``inf`` once the
        leg's stream ended); a thigh in ``down`` (its link is down) holds no rep back.
        """
        if not self._pending:
            return []
        self._pending.sort(key=lambda p: (p.rep.start_s, p.rep.leg.value))
        out: list[Rep] = []
        order = [h for leg, h in horizons.items() if leg not in down]
        while self._pending:
            p = self._pending[0]
            covered = self.tracker.horizon_s >= p.rep.end_s
            if not (covered or self._down_at_s is not None) or any(h < p.rep.start_s for h in order):
                break
            self._pending.pop(0)
            if self._down_at_s is not None and self._down_at_s < p.rep.end_s:
                out.append(self._unmeasured(p.rep))
            else:
                out.append(self._measure(p))
        self._trim(horizons)
        return out

    def finalize(self, reps: Sequence[Rep]) -> list[Rep]:
        """The reps again with the session's final sense of anterior tilt.

        A rep measured before the pelvis had tilted clearly may have used the other sense:
        its tilt and its hip angles are redone (the magnitude, hence ``back_arch``, is the same).
        """
        if self._axis is None:
            return list(reps)
        out = []
        for r in reps:
            kept = self._kept.get((r.leg, r.start_s))
            if kept is None or r.pelvis_tilt_deg is None or float(kept[0] @ self._axis) >= 0.0:
                out.append(r)
                continue
            _, th_t, th_a, direction = kept
            hip_t = th_a - direction * th_t  # th_t: the tilt at the thigh's sample times
            baseline, peak = float(hip_t[0]), float(hip_t.max())
            out.append(Rep(
                r.leg, r.start_s, r.peak_s, r.end_s, baseline, peak, peak - baseline,
                r.up_s, r.hold_s, r.down_s, r.closed_s, r.flags, r.set, r.rep, -r.pelvis_tilt_deg,
            ))  # fmt: skip
        return out

    def diagnostics(self) -> SensorDiagnostics:
        """The tracker's, with the reps measured and not, and the tilt axis once found."""
        d = self.tracker.diagnostics()
        first_s, last_s = (d.pelvis.first_s, d.pelvis.last_s) if d.pelvis is not None else (math.nan, -math.inf)
        span = self.unmeasured_span_s if self.n_unmeasured else (None, None)
        pelvis = PelvisDiagnostics(
            first_s=first_s,
            last_s=last_s,
            reps_measured=int(self.n_measured),
            reps_without_pelvis=int(self.n_unmeasured),
            first_rep_without_pelvis_s=span[0],
            last_rep_without_pelvis_s=span[1],
            tilt_axis=_vec3(self._axis) if self._axis is not None else None,
        )
        return dataclasses.replace(d, pelvis=pelvis)

    # ------------------------------------------------------------------
    def _trim(self, horizons: Mapping[Leg, float]) -> None:
        keep = min([self.pending_start_s(), *horizons.values()]) - LEVEL_S - 1.0
        if not math.isfinite(keep):
            return
        self.tracker.trim(keep)
        for samples in self._angles.values():
            samples.trim(keep)

    def _thigh(self, leg: Leg, t0_s: float, t1_s: float) -> tuple[FloatArray, FloatArray]:
        return self._angles[leg].window(t0_s, t1_s)

    def _unmeasured(self, r: Rep) -> Rep:
        self.n_unmeasured += 1
        self.unmeasured_span_s = (min(self.unmeasured_span_s[0], r.start_s), max(self.unmeasured_span_s[1], r.end_s))
        return r

    def _measure(self, p: _Pending) -> Rep:
        r = p.rep
        t, up, _ = self.tracker.window(r.start_s - LEVEL_S, r.end_s)
        inside = t >= r.start_s
        th_t, th_a = self._thigh(r.leg, r.start_s, r.end_s)
        if np.count_nonzero(inside) < 3 or len(th_t) < 2:
            return self._unmeasured(r)
        before = up[~inside]
        u0 = (before if len(before) else up[:1]).mean(axis=0)
        u0 = u0 / np.linalg.norm(u0)
        t_in, up_in = t[inside], up[inside]
        v = np.cross(up_in, u0)
        # how far the thigh had risen at each pelvis sample (0 at the start, 1 at the peak)
        rise = np.clip((np.interp(t_in, th_t, th_a) - th_a[0]) / max(r.rom_deg, 1.0), 0.0, 1.0)
        size = np.einsum("ij,ij->i", v, v)
        self._cov += v.T @ v
        self._sense += (v * (size * rise)[:, None]).sum(axis=0)
        axis = np.linalg.eigh(self._cov)[1][:, -1]
        if float(axis @ self._sense) < 0.0 or (float(axis @ self._sense) == 0.0 and self._axis is not None
                                                 and float(axis @ self._axis) < 0.0):  # fmt: skip
            axis = -axis
        self._axis = axis
        tau = np.degrees(np.arctan2(v @ axis, up_in @ u0))
        k = int(np.argmax(np.abs(tau)))
        tilt = float(tau[k])
        # hip flexion: the thigh's angle plus the pelvis's tilt since the rep's start, at start_s
        # and at the thigh's samples in the rep
        th_t = np.concatenate(([r.start_s], th_t))
        th_a = np.concatenate(([float(np.interp(r.start_s, th_t[1:], th_a))], th_a))
        tilt_at = np.interp(th_t, t_in, tau, left=0.0)
        hip = th_a + p.direction * tilt_at
        baseline = float(hip[0])
        peak = float(hip.max())
        self._kept[(r.leg, r.start_s)] = (axis, tilt_at, th_a, p.direction)
        flags = r.flags
        if abs(tilt) > self.s.max_pelvic_tilt_deg and BACK_ARCH not in flags:
            flags = (*flags, BACK_ARCH)
        self.n_measured += 1
        return Rep(
            r.leg, r.start_s, r.peak_s, r.end_s, baseline, peak, peak - baseline,
            r.up_s, r.hold_s, r.down_s, r.closed_s, flags, r.set, r.rep, tilt,
        )  # fmt: skip


def check_coverage(result: SessionResult) -> SessionResult:
    """``result``, or an InputError when the pelvis stream missed reps (offline input).

    A pelvis file must cover the thighs' session on the same clock; one that is shorter, from
    another session or on another clock leaves reps it cannot see: that is one line naming the
    spans, never a silently half-measured session. (Live, a rep the pelvis missed keeps the
    thigh's measures and no tilt.)
    """
    s = result.diagnostics.get(Leg.PELVIS)
    d = s.pelvis if s is not None else None
    if d is not None and d.reps_without_pelvis > 0:
        first = math.nan if d.first_rep_without_pelvis_s is None else d.first_rep_without_pelvis_s
        last = math.nan if d.last_rep_without_pelvis_s is None else d.last_rep_without_pelvis_s
        raise InputError(
            f"pelvis sensor: expected samples during every rep on the thighs' clock (reps without them: "
            f"{d.reps_without_pelvis}, {first:.1f}-{last:.1f} s), "
            f"got samples over {round(d.first_s, 1) + 0.0:.1f}-{d.last_s:.1f} s"
        )
    return result

