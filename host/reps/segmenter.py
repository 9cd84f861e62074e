"""Where a rep is closed: the streaming rep segmenter for one leg.

A rep is an excursion from a resting level and back. The segmenter keeps a stack of
resting levels (a rest above the current level may be a hold at the top, or a new
baseline — e.g. bent-knee raises start with the thigh at ~45°; we keep both readings
until the movement decides):

* a **level** is set by a rest (``arm_rest_s`` of stillness) and moves with later rests
  near it; a rep can only start from a level, so walking (never still) is not reps;
* rising ``enter_deg`` above the top level opens a **candidate**; it becomes **pending**
  when the angle comes back to level + 10 % of its range (the rep's ``end_s`` crossing) with a
  range of at least ``min_rom_deg`` (smaller excursions are fidgets);
* a pending rep is **confirmed** (closed) by a rest, the next rise, or ``confirm_s`` passing;
  it is **rejected** if the angle first drops ``undershoot_deg`` (or 20 % of range) below the
  level — the first swing of walking, or a pause on the way up;
* a confirmed rep discards the candidates of the levels below it (they contained reps:
  the bent-knee setup is not itself a rep).

The state machine runs in C (``legrep._fastcore.RepMachine``) over a log of the recent
samples; it jumps from event to event (threshold crossings and rests) with sequential scans,
so the per-sample cost is a compare or two. This class keeps the log, measures and flags the
reps the machine confirms, and answers the live view's questions. Decisions at a sample
depend only on samples up to it: any chunking gives the same reps.
"""

from __future__ import annotations

import numpy as np

from .._fastcore import RepMachine, arm_flags
from ..buffers import ColumnLog
from ..model import FloatArray, Leg, Rep
from .measure import measure_rep
from .sets import rep_flags
from ..settings import Settings

LOOKBACK_S = 5.0
"""History kept before a candidate for its start crossing."""
_SLICE = 8192
"""Longest piece of a chunk handled at once (see RepSegmenter.update)."""


class RepSegmenter:
    """Streaming rep segmenter for one leg's hip angle.

    ``update(t, angle_deg, still)`` takes a chunk and returns the reps confirmed in it.
    """

    def __init__(self, leg: Leg, settings: Settings, dt_nominal_s: float) -> None:
        self.leg = leg
        self.s = settings
        self._dt = dt_nominal_s
        self._arm_n = max(1, round(settings.arm_rest_s / dt_nominal_s))
        self._look_n = max(1, round(LOOKBACK_S / dt_nominal_s))
        self._log = ColumnLog(
            {"t": (np.float64, ()), "a": (np.float64, ()), "arm": (np.bool_, ()), "rest": (np.bool_, ())}
        )
        self._run = 0  # length of the rest run at the last sample
        self._machine = RepMachine(
            enter_deg=settings.enter_deg,
            undershoot_deg=settings.undershoot_deg,
            min_rom_deg=settings.min_rom_deg,
            max_rep_s=settings.max_rep_s,
            confirm_s=settings.confirm_s,
        )

    @property
    def n_rejected(self) -> int:
        """Pending reps rejected by an undershoot (diagnostics)."""
        return int(self._machine.n_rejected)

    @property
    def n_fidgets(self) -> int:
        """Excursions smaller than ``min_rom_deg`` (diagnostics)."""
        return int(self._machine.n_fidgets)

    # ------------------------------------------------------------------ public
    def update(self, t: FloatArray, angle: FloatArray, still: np.ndarray) -> list[Rep]:
        """Take a chunk: ``t`` (N,) s, ``angle`` (N,) deg, ``still`` (N,) bool at rest; return reps closed.

        Long chunks are fed in slices of ``_SLICE`` samples (the result does not depend on
        the chunking): the log then stays small and in cache instead of growing to the chunk.
        """
        n = len(t)
        if n == 0:
            return []
        if n > _SLICE:
            out: list[Rep] = []
            for i in range(0, n, _SLICE):
                out += self.update(t[i : i + _SLICE], angle[i : i + _SLICE], still[i : i + _SLICE])
            return out
        arm = np.empty(n, dtype=bool)  # where a rest has lasted arm_rest_s: a level may be set
        self._run = arm_flags(still, self._run, self._arm_n, arm)
        log = self._log
        log.append(t=t, a=angle, arm=arm, rest=still)
        found = self._machine.advance(log.view("t"), log.view("a"), log.view("arm"), log.view("rest"), log.base)
        reps = [self._rep(*f) for f in found]
        self._trim()
        return reps

    def finish(self) -> list[Rep]:
        """End of stream: a pending rep that was not rejected is confirmed."""
        if self._log.end == 0:
            return []
        return [self._rep(*f) for f in self._machine.finish(self._log.end - 1)]

    def horizon_s(self) -> float:
        """No rep confirmed later can start before this time (for closing sets live)."""
        log = self._log
        if log.end == 0:
            return -np.inf
        oldest = self._machine.oldest_enter()
        if oldest < 0:
            return float(log.view("t", log.end - 1, log.end)[0])
        i = max(oldest - self._look_n, log.base)
        return float(log.view("t", i, i + 1)[0])

    def current_level_deg(self) -> float | None:
        """Angle of the resting level reps are measured from (None before the first rest)."""
        level: float | None = self._machine.level_deg
        return level

    # ------------------------------------------------------------------ machinery
    def _rep(self, baseline_deg: float, enter: int, end: int, closed: int) -> Rep:
        """Measure and flag a rep the machine confirmed (global sample indices).

        The start crossing is searched up to ``LOOKBACK_S`` before the candidate opened.
        """
        log = self._log
        lo = max(log.base, enter - self._look_n)
        t = log.view("t", lo, end + 1)
        m = measure_rep(t, log.view("a", lo, end + 1), baseline_deg, 0, enter - lo, end - lo)
        return Rep(
            leg=self.leg,
            start_s=m.start_s,
            peak_s=m.peak_s,
            end_s=m.end_s,
            baseline_deg=m.baseline_deg,
            peak_deg=m.peak_deg,
            rom_deg=m.rom_deg,
            up_s=m.up_s,
            hold_s=m.hold_s,
            down_s=m.down_s,
            closed_s=float(log.view("t", closed, closed + 1)[0]),
            flags=rep_flags(m, self.s),
        )

    def _trim(self) -> None:
        """Forget samples the machine and the rep measures can no longer need."""
        keep = self._machine.pos - self._look_n
        oldest = self._machine.oldest_enter()
        if oldest >= 0:
            keep = min(keep, oldest - self._look_n)
        self._log.trim(keep)
