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

The state machine runs on events (threshold crossings and rests) found with vectorised
scans, so the per-sample cost is a few numpy passes. Decisions at a sample depend only on
samples up to it: any chunking gives the same reps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from host.buffers import ColumnLog
from host.fusion.angle import _run_lengths
from host.model import FloatArray, Leg, Rep
from host.reps.measure import measure_rep
from host.reps.sets import rep_flags
from host.settings import Settings

LOOKBACK_S = 5.0
"""History kept before a candidate for its start crossing."""


@dataclass(slots=True)
class _Candidate:
    enter: int  # first sample above level + enter_deg
    peak: float  # running maximum over scanned samples
    end: int = -1  # >= 0 once pending: first sample at or below level + 10 % of range


@dataclass(slots=True)
class _Level:
    angle: float
    idx: int
    cand: _Candidate | None = None


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
        self._run = 0
        self._pos = 0
        self._levels: list[_Level] = []
        self.n_rejected = 0
        self.n_fidgets = 0

    # ------------------------------------------------------------------ public
    def update(self, t: FloatArray, angle: FloatArray, still: np.ndarray) -> list[Rep]:
        if len(t) == 0:
            return []
        run = _run_lengths(still, self._run)
        self._run = int(run[-1])
        self._log.append(t=t, a=angle, arm=run == self._arm_n, rest=still)
        out: list[Rep] = []
        self._advance(out)
        self._trim()
        return out

    def finish(self) -> list[Rep]:
        """End of stream: a pending rep that was not rejected is confirmed."""
        out: list[Rep] = []
        if self._levels and self._levels[-1].cand is not None and self._levels[-1].cand.end >= 0:
            self._confirm(self._levels[-1], self._log.end - 1, out)
        return out

    def horizon_s(self) -> float:
        """No rep confirmed later can start before this time (for closing sets live)."""
        log = self._log
        if log.end == 0:
            return -np.inf
        starts = [lv.cand.enter for lv in self._levels if lv.cand is not None]
        if not starts:
            return float(log.view("t", log.end - 1, log.end)[0])
        i = max(min(starts) - self._look_n, log.base)
        return float(log.view("t", i, i + 1)[0])

    def current_level_deg(self) -> float | None:
        return self._levels[-1].angle if self._levels else None

    # ------------------------------------------------------------------ machinery
    @staticmethod
    def _scan(pos: int, end: int, cond: Callable[[int, int], np.ndarray]) -> int | None:
        """First index in [pos, end) where ``cond(lo, hi)`` (a mask over [lo, hi)) holds."""
        w = 256
        lo = pos
        while lo < end:
            hi = min(end, lo + w)
            m = cond(lo, hi)
            k = int(m.argmax())
            if m[k]:
                return lo + k
            lo = hi
            w = min(w * 4, 1 << 16)
        return None

    def _advance(self, out: list[Rep]) -> None:
        s = self.s
        log = self._log
        b = log.base
        # local views over everything kept (no appends happen while advancing); index i <-> global b + i
        T = log.view("t")
        A = log.view("a")
        ARM = log.view("arm")
        REST = log.view("rest")
        pos = self._pos - b
        end = len(T)
        scan = self._scan
        while pos < end:
            if not self._levels:
                n = scan(pos, end, lambda lo, hi: ARM[lo:hi])
                if n is None:
                    pos = end
                    break
                self._levels.append(_Level(float(A[n]), n + b))
                pos = n + 1
                continue
            lv = self._levels[-1]
            c = lv.cand
            L = lv.angle
            if c is None:  # idle at a level
                hi_t, lo_t = L + s.enter_deg, L - s.undershoot_deg

                def idle_cond(lo: int, hi: int) -> np.ndarray:
                    # a candidate opens when the angle *rises* through level + enter
                    # (after a drop from a higher level it may still be above it)
                    a = A[lo:hi]
                    before = A[lo - 1 : hi - 1] if lo > 0 else np.concatenate(([-np.inf], A[: hi - 1]))
                    return ((a > hi_t) & (before <= hi_t)) | (a < lo_t) | ARM[lo:hi]

                n = scan(pos, end, idle_cond)
                if n is None:
                    pos = end
                    break
                a = float(A[n])
                if a > hi_t:
                    lv.cand = _Candidate(enter=n + b, peak=a)
                    pos = n + 1
                elif a < lo_t and not REST[n]:
                    self._pop(n + b)
                    pos = n
                else:  # a rest near the level (or the angle re-anchored at rest): the level follows it
                    lv.angle, lv.idx = a, n + b
                    pos = n + 1
            elif c.end < 0:  # rising / at the top
                t_out = float(T[c.enter - b]) + s.max_rep_s
                peak = [c.peak]

                def up_cond(lo: int, hi: int) -> np.ndarray:
                    a = A[lo:hi]
                    m = np.maximum.accumulate(a)
                    np.maximum(m, peak[0], out=m)
                    peak[0] = float(m[-1])
                    return (a <= L + 0.1 * (m - L)) | ARM[lo:hi] | (T[lo:hi] > t_out)

                n = scan(pos, end, up_cond)
                if n is None:
                    c.peak = peak[0]
                    pos = end
                    break
                c.peak = float(A[c.enter - b : n + 1].max())
                a = float(A[n])
                rom = c.peak - L
                if T[n] > t_out:
                    lv.cand = None  # too long to be a rep (sat up, walked off...)
                    pos = n + 1
                elif a <= L + 0.1 * rom:
                    if rom >= s.min_rom_deg:
                        c.end = n + b
                        pos = n
                    else:
                        lv.cand = None
                        self.n_fidgets += 1
                        pos = n + 1
                elif a > L + s.enter_deg:  # a rest above the level: hold, or a new baseline
                    self._levels.append(_Level(a, n + b))
                    pos = n + 1
                else:  # came back and rests between level + 10 % and level + enter
                    if rom >= s.min_rom_deg:
                        c.end = n + b
                        self._confirm(lv, n + b, out)
                    else:
                        lv.cand = None
                        self.n_fidgets += 1
                    lv.angle, lv.idx = a, n + b
                    pos = n + 1
            else:  # pending: confirm or reject
                rom = c.peak - L
                under = L - max(s.undershoot_deg, 0.2 * rom)
                rise = L + s.enter_deg
                t_ok = float(T[c.end - b]) + s.confirm_s

                def pend_cond(lo: int, hi: int) -> np.ndarray:
                    a = A[lo:hi]
                    return (a < under) | (a > rise) | ARM[lo:hi] | (T[lo:hi] >= t_ok)

                n = scan(pos, end, pend_cond)
                if n is None:
                    pos = end
                    break
                if float(A[n]) < under:
                    lv.cand = None
                    self.n_rejected += 1
                    self._pop(n + b)
                else:
                    self._confirm(lv, n + b, out)
                pos = n
        self._pos = pos + b

    def _pop(self, n: int) -> None:
        """Drop the top level (the angle went below it) and catch up the level below."""
        gone = self._levels.pop()
        if not self._levels:
            return
        lv = self._levels[-1]
        c = lv.cand
        if c is None or c.end >= 0:
            return
        a = self._log.view("a", c.enter, n + 1)
        m = np.maximum.accumulate(a)
        closed = np.flatnonzero(a <= lv.angle + 0.1 * (m - lv.angle))
        closed = closed[closed >= gone.idx - c.enter]
        if len(closed) and m[closed[0]] - lv.angle >= self.s.min_rom_deg:
            c.end = c.enter + int(closed[0])
            c.peak = float(m[closed[0]])
        else:
            c.peak = float(m[-1])

    def _confirm(self, lv: _Level, n: int, out: list[Rep]) -> None:
        c = lv.cand
        assert c is not None and c.end >= 0
        log = self._log
        lo = max(log.base, c.enter - self._look_n)
        t = log.view("t", lo, c.end + 1)
        a = log.view("a", lo, c.end + 1)
        m = measure_rep(t, a, lv.angle, 0, c.enter - lo, c.end - lo)
        closed_s = float(log.view("t", n, n + 1)[0])
        out.append(
            Rep(
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
                closed_s=closed_s,
                flags=rep_flags(m, self.s),
            )
        )
        lv.cand = None
        for lower in self._levels:
            lower.cand = None  # an excursion that contains a rep is not itself one

    def _trim(self) -> None:
        keep = self._pos - self._look_n
        for lv in self._levels:
            if lv.cand is not None:
                keep = min(keep, lv.cand.enter - self._look_n)
        self._log.trim(keep)
