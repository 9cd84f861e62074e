"""Where a rep is closed: the streaming rep segmenter for one leg.

A rep is a rise from a low point (a rest, or the turning point after the previous rep) to a
peak and a descent back down; no rest is needed between reps. The per-sample state machine
and the stopwatch measures are specified in plain Python in :mod:`legrep.reps.reference`
(read it for every rule and its reason) and run in C (``legrep._fastcore.RepMachine``); tests
require both to give identical reps. This class keeps the sample log the machine reads,
marks where rests have lasted ``arm_rest_s``, turns what the machine closes into flagged
:class:`~legrep.model.Rep` values and answers the live view's questions. Decisions at a sample
depend only on samples up to it: any chunking gives the same reps.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .._fastcore import RepMachine, arm_flags
from ..buffers import ColumnLog, even_cuts, steps_after
from ..model import FloatArray, Leg, Rep
from ..settings import Settings
from .measure import RepMeasures
from .reference import RepMachineRef, RepParams, RepTuple
from .sets import rep_flags

_SLICE = 8192
"""Chunks are handled in pieces of ``_SLICE`` to ``2 _SLICE`` samples (see RepSegmenter.update)."""


class RepSegmenter:
    """Streaming rep segmenter for one leg's hip angle.

    ``update(t, angle_deg, still)`` takes a chunk and returns the reps closed in it.

    Parameters
    ----------
    leg : the leg the reps are of.
    settings : rep thresholds (``enter_deg``, ``min_rom_deg``, ``tempo_speed_frac``...).
    dt_nominal_s : nominal sample interval (sets the rest and speed windows in samples).
    reference : run the plain-Python reference machine instead of the C kernel (tests).
    """

    def __init__(self, leg: Leg, settings: Settings, dt_nominal_s: float, reference: bool = False) -> None:
        self.leg = leg
        self.s = settings
        self._arm_n = max(1, round(settings.arm_rest_s / dt_nominal_s))
        self._log = ColumnLog({"t": (np.float64, ()), "a": (np.float64, ()), "arm": (np.bool_, ()), "still": (np.bool_, ())})
        self._run = 0  # length of the rest run at the last sample
        self._last_t = -np.inf  # time of the last sample seen
        self._gap_t = -np.inf  # time of the last sample that followed a gap longer than arm_rest_s
        p = RepParams.from_settings(settings, dt_nominal_s)
        self._machine: RepMachine | RepMachineRef
        if reference:
            self._machine = RepMachineRef(p)
        else:
            self._machine = RepMachine(**p.kwargs())

    @property
    def n_rejected(self) -> int:
        """Excursions rejected (not anchored, undershoot, too long, from below ``min_baseline_deg``): diagnostics."""
        return int(self._machine.n_rejected)

    @property
    def n_fidgets(self) -> int:
        """Excursions smaller than ``min_rom_deg`` (diagnostics)."""
        return int(self._machine.n_fidgets)

    # ------------------------------------------------------------------ public
    def update(self, t: FloatArray, angle: FloatArray, still: npt.NDArray[np.bool_]) -> list[Rep]:
        """Take a chunk: ``t`` (N,) s, ``angle`` (N,) deg, ``still`` (N,) bool at rest; return reps closed.

        Long chunks are fed in slices of ``_SLICE`` to ``2 _SLICE`` samples (the result does not depend on
        the chunking): the log then stays small and in cache instead of growing to the chunk.
        """
        n = len(t)
        if n == 0:
            return []
        if n >= 2 * _SLICE:
            # pieces of _SLICE to 2 _SLICE samples, as equal as they come (no tiny last piece)
            cuts = even_cuts(n, _SLICE)
            out: list[Rep] = []
            for a, b in zip(cuts[:-1], cuts[1:]):
                out += self.update(t[a:b], angle[a:b], still[a:b])
            return out
        still = self._gapless(t, still)
        arm = np.empty(n, dtype=bool)  # where a rest has lasted arm_rest_s
        self._run = arm_flags(still, self._run, self._arm_n, arm)
        log = self._log
        log.append(t=t, a=angle, arm=arm, still=still)
        found = self._machine.advance(log.view("t"), log.view("a"), log.view("arm"), log.view("still"), log.base)
        reps = [self._rep(f) for f in found]
        log.trim(self._machine.oldest_needed())
        return reps

    def _gapless(self, t: FloatArray, still: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """``still`` where the samples of the last ``still_min_s`` came without a gap.

        A gap longer than ``arm_rest_s`` (lost samples) hides whether the leg kept still: the
        fusion's still window counts samples, so the first samples after a lost burst mid-rise
        still look like the rest before it, and the rep would seem to rise from a rest at the
        angle after the gap. Samples within ``still_min_s`` after such a gap are not still.
        """
        steps = steps_after(t, self._last_t)  # (np.diff(t, prepend=...) without its concatenation)
        gaps = steps > self.s.arm_rest_s
        if not np.isfinite(self._last_t):
            gaps[0] = False  # the first sample follows no gap
        self._last_t = float(t[-1])
        if not gaps.any() and t[0] - self._gap_t >= self.s.still_min_s:
            return still
        since = np.maximum.accumulate(np.where(gaps, t, self._gap_t))
        self._gap_t = float(since[-1])
        return still & (t - since >= self.s.still_min_s)

    def finish(self) -> list[Rep]:
        """End of stream: a candidate that has come down far enough is closed."""
        log = self._log
        if log.end == 0:
            return []
        return [self._rep(f) for f in self._machine.finish(log.view("t"), log.view("a"), log.view("still"), log.base)]

    def horizon_s(self) -> float:
        """No rep closed later can start before this time (for closing sets live)."""
        log = self._log
        if log.end == 0:
            return -np.inf
        i = min(max(self._machine.oldest_needed(), log.base), log.end - 1)
        return float(log.view("t", i, i + 1)[0])

    def current_level_deg(self) -> float | None:
        """Angle the next rep would be measured from (None before the first sample)."""
        level: float | None = self._machine.level_deg
        return level

    # ------------------------------------------------------------------ machinery
    def _rep(self, f: RepTuple) -> Rep:
        """Flag a rep the machine closed (``f[9]`` is the global sample index it closed at)."""
        m = RepMeasures(*f[:9])
        closed = f[9]
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
            closed_s=float(self._log.view("t", closed, closed + 1)[0]),
            flags=rep_flags(m, self.s),
        )
