"""Plain-Python reference of the per-sample rep stages (the C ``RepMachine`` and ``rep_speed``).

This module is the readable specification of what ``host/_fastcore.c`` computes for reps; the
kernel must give the same numbers (tests/test_reps_reference.py compares them bit for bit on
random and simulated streams). It is slow (a Python loop per sample) and used only by tests
and for reading. Every threshold comes from :class:`legrep.settings.Settings`.

Speed
-----
The angular speed at sample ``j`` is the slope of a least-squares line through the angle at
the samples ``j - K .. j + K`` (clipped to the rep's window and to the moving samples around
``j``; zero at rests), on their real time stamps::

    v[j] = sum((t_k - t_bar) (a_k - a_bar)) / sum((t_k - t_bar) ** 2)

``K = round(speed_window_s / 2 / dt)``. This is the first-derivative Savitzky-Golay filter
(Savitzky & Golay 1964, Anal. Chem. 36:1627) written for uneven sample times (jitter, lost
samples). Why this smoother: it is symmetric, so it adds no delay to the crossing times a
stopwatch reading depends on (a causal filter would shift start and end by its group delay);
it is exact for any quadratic, so a smooth raise is not distorted; it averages white angle
noise of ``sigma`` degrees down to about ``sigma / (dt K^1.5)`` deg/s instead of the
``sigma sqrt(2) / dt`` of a plain difference; and its latency is bounded (``K`` samples),
far less than the rest or next rise that closes a rep, so live and replay see the same
samples. The rep window is clipped (not padded), so the result never depends on chunking.

Stopwatch tempo (README "Rep measures")
---------------------------------------
With ``v_up`` the highest rising speed of the rep's rise and ``v_dn`` the highest lowering
speed of its descent, each sought in the middle half of the movement by angle (a raise is
fastest near its middle; a step of the angle near the top or the bottom, such as the
orientation stage's recovery after lost samples during a hold, is not the raise): ``start_s`` = going back from the moment of ``v_up``, the first time the
speed is <= ``tempo_speed_frac`` x ``v_up``; top entry = going forward from it, the first such
time; top exit and ``end_s`` likewise around ``v_dn`` (back, then forward). Crossings are
interpolated linearly in speed between samples. ``baseline_deg`` = the angle at ``start_s``,
``rom_deg`` = peak - baseline. A minimum-jerk movement of duration T (Flash & Hogan 1985,
J. Neurosci. 5:1688; speed 30 T^-1 tau^2 (1 - tau)^2) reads sqrt(1 - sqrt(0.1)) T = 0.827 T.

Segmentation (the state machine)
--------------------------------
The angle is followed through three modes:

* ``DOWN``: at rest or coming down; the running low is the candidate baseline. Each sample of
  a rest (still for ``arm_rest_s`` or longer) resets the low to the resting angle and anchors it. Rising
  ``enter_deg`` above the low opens a candidate rep whose rise starts at the low.
* ``UP``: rising or at the top. A rest on the way up (bent-knee: the thighs settle at 45°
  first) followed by a rise of ``min_rom_deg`` moves the rise's start to that rest; the start
  before it is kept: a rep that comes back down to within ``undershoot_deg`` of it, or that
  would be rejected for coming down far below the rest (below), is one rep from there (a raise
  that paused part-way up), if it rose ``min_rom_deg`` from it, is anchored and lasted no longer
  than ``max_rep_s``. Dropping
  ``enter_deg`` below the peak starts the descent. Open for over ``max_rep_s``, the candidate is
  dropped; a rest on its way up then anchors the next rise (the thighs rested at 45° that long).
* ``FALL``: coming down from the peak. Once the angle has come down by ``min_return_frac`` of
  the rise, the rep closes at a rest, at the next rise of ``enter_deg`` above the new low
  (touch-and-go and hover reps: the next rep starts at that low), or after ``confirm_s``
  without a new low. A rise before that point means the dip was part of the top: back to UP.

A closed candidate is measured (stopwatch tempo above) and judged by its ``rise`` = peak - low,
``low`` its stopwatch baseline, or, for a rise from a rest that rested again on its way up, the
angle where its rise started if that lies more than ``undershoot_deg`` below (the stopwatch
baseline of a raise that paused part-way up and rose fastest after the pause is the pause):

* a **fidget** if ``rise < min_rom_deg`` (not counted; it does not break a chain),
* **rejected** if its low was not anchored, if its descent ends more than
  ``max(undershoot_deg, chained_undershoot_frac x rise)`` below its low (sitting up to
  stand rises 40 deg and falls 130), if it lasted over ``max_rep_s``, or if its stopwatch
  baseline lies below ``min_baseline_deg`` (no exercise starts that far below the neutral pose,
  under the mat or behind a hanging thigh: the excursion was read through something no hip
  angle explains -- a strap being turned right after the calibration rest read a rep from
  -116 deg, standing up from a bird dog's kneeling pose one from -67 -- and, being rejected, it
  starts no chain: the walking strides after that stand-up were counted as chained reps);
* **held** if it rose from a rest and its descent ends more than ``max(undershoot_deg,
  undershoot_frac x rise)`` below that rest: a rest next confirms it (the new, lower baseline
  of a set whose feet walked out, or the floor after hover reps); so does a rise if the descent
  ended no more than ``floor_margin_deg`` below the floor, the lowest rest at the bottom so far
  (not at the top or part-way down): touch-and-go bent-knee reps whose feet walk out, 45 -> 22
  deg, rise again at once; so does a rise if the rep rose ``held_rise_min_rom_deg`` or more
  (the feet slide on out to straight legs, 22 -> 0 deg, while the leg comes down from 90: no
  walking stride rises that far); any other rise rejects it (the first swing of walking goes
  back past the standing pose, the lowest rest since the person stood up, and on into the next
  stride);
* else a **rep**.

A low is anchored when it lies within ``undershoot_deg`` below the last rest or pause (a still
sample: the leg paused for less than ``arm_rest_s``, as before a first rep), or follows a
counted rep (or an anchored fidget) with no rejected excursion since and lies below the floor by
no more than ``max(undershoot_deg, chained_undershoot_frac x`` the last rep's ``rom_deg)`` (a
limb dropped further below where it ever rested than a rep rises, as when a sensor turns over
between blocks of reps, starts no chain), or is the start of the stream. So reps need no rest
between them, yet walking (never at rest, each stride's low far below the standing rest) never
starts a chain.

The floor is never above the angle at the stream start: the stream starts at the calibration
rest (or, on a moving start, at the reference rest's reading), a pose the person held. Before
this, a settling person's brief rest 10 deg above where they had lain (the leg propped on the
way down) made the floor, and the first rep, rising straight from the mat without a pause,
was refused with every touch-and-go rep after it; so was a first rep after a rest read before
the flexion axis was fitted (the unsigned tilt: a leg resting 5 deg below the calibration pose
reads +5, then -3.5 once the axis is known). Walking from standing is unchanged (the stream
starts at the standing rest, the floor there). Only rests set a floor: without one there is
no limit, as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from ..settings import Settings

DOWN, UP, FALL = 0, 1, 2
"""Modes of :class:`RepMachineRef`."""

RepTuple = tuple[float, float, float, float, float, float, float, float, float, int]
"""``(start_s, peak_s, end_s, baseline_deg, peak_deg, rom_deg, up_s, hold_s, down_s, closed)``."""


@dataclass(frozen=True, slots=True)
class RepParams:
    """The machine's thresholds (from :class:`Settings`) and the speed half-window in samples."""

    enter_deg: float
    undershoot_deg: float
    undershoot_frac: float
    chained_undershoot_frac: float
    min_rom_deg: float
    min_return_frac: float
    max_rep_s: float
    confirm_s: float
    speed_frac: float
    speed_half_n: int
    floor_margin_deg: float
    held_rise_min_rom_deg: float
    min_baseline_deg: float

    def kwargs(self) -> dict[str, Any]:
        """The fields by name: the keyword arguments of ``legrep._fastcore.RepMachine``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_settings(cls, s: Settings, dt_nominal_s: float) -> "RepParams":
        return cls(
            enter_deg=s.enter_deg,
            undershoot_deg=s.undershoot_deg,
            undershoot_frac=s.undershoot_frac,
            chained_undershoot_frac=s.chained_undershoot_frac,
            min_rom_deg=s.min_rom_deg,
            min_return_frac=s.min_return_frac,
            max_rep_s=s.max_rep_s,
            confirm_s=s.confirm_s,
            speed_frac=s.tempo_speed_frac,
            speed_half_n=speed_half_n(s, dt_nominal_s),
            floor_margin_deg=s.floor_margin_deg,
            held_rise_min_rom_deg=s.held_rise_min_rom_deg,
            min_baseline_deg=s.min_baseline_deg,
        )


def speed_half_n(s: Settings, dt_nominal_s: float) -> int:
    """Samples each side of the speed fit: ``round(speed_window_s / 2 / dt)``, at least 1."""
    return max(1, round(s.speed_window_s / 2.0 / dt_nominal_s))


# --------------------------------------------------------------------------- rests
def arm_flags(still: list[bool], run: int, arm_n: int) -> tuple[list[bool], int]:
    """Where a rest has lasted ``arm_n`` samples: ``arm[i]`` = the run of still samples ending at
    ``i`` (continuing ``run`` from the previous chunk) is at least ``arm_n`` long. Returns
    ``(arm, run at the end)``."""
    arm = []
    for s in still:
        run = run + 1 if s else 0
        arm.append(run >= arm_n)
    return arm, run


# --------------------------------------------------------------------------- speed and measures
def speed_at(t: list[float], a: list[float], rest: list[bool] | None, j: int, lo: int, hi: int, k: int) -> float:
    """Least-squares slope (deg/s) of ``a`` against ``t`` over ``[j-k, j+k]`` clipped to ``[lo, hi]``
    and to the run of moving samples (``rest`` False) around ``j``: an angle step at a rest is
    not movement. Zero at a rest sample, or when only ``j`` is left. ``rest`` None: no rests
    (the slope over the whole clipped window)."""
    if rest is not None and rest[j]:
        return 0.0
    j0 = j
    while j0 > lo and j - j0 < k and (rest is None or not rest[j0 - 1]):
        j0 -= 1
    j1 = j
    while j1 < hi and j1 - j < k and (rest is None or not rest[j1 + 1]):
        j1 += 1
    n = j1 - j0 + 1
    tj = t[j]
    st = 0.0
    sa = 0.0
    for i in range(j0, j1 + 1):
        st += t[i] - tj
        sa += a[i]
    mt = st / n
    ma = sa / n
    num = 0.0
    den = 0.0
    for i in range(j0, j1 + 1):
        d = (t[i] - tj) - mt
        num += d * (a[i] - ma)
        den += d * d
    return num / den if den > 0.0 else 0.0


def _frac(vi: float, vj: float, level: float) -> float:
    """Where between two samples the speed goes from ``vi`` to ``vj`` through ``level`` (0..1)."""
    if vj == vi:
        return 1.0
    f = (level - vi) / (vj - vi)
    return 0.0 if f < 0.0 else (1.0 if f > 1.0 else f)


def _fastest(v: list[float], a: list[float], i0: int, i1: int, a_lo: float, a_hi: float, sign: float) -> int:
    """The sample of ``[i0, i1]`` moving fastest in direction ``sign`` (+1 rising, -1 lowering)
    among those whose angle lies in the middle half between ``a_lo`` and ``a_hi``; over the whole
    range if none does. The first of equals."""
    band_lo, band_hi = a_lo + 0.25 * (a_hi - a_lo), a_lo + 0.75 * (a_hi - a_lo)
    best = -1
    for i in range(i0, i1 + 1):
        if band_lo <= a[i] <= band_hi and (best < 0 or sign * v[i] > sign * v[best]):
            best = i
    if best < 0:
        best = i0
        for i in range(i0 + 1, i1 + 1):
            if sign * v[i] > sign * v[best]:
                best = i
    return best


def measure_window(
    t: list[float], a: list[float], rest: list[bool], lo: int, s0: int, c: int, k: int, frac: float
) -> tuple[float, float, float, float, float, float, float, float, float, float]:
    """Stopwatch measures of the rep whose rise starts at sample ``s0`` and which closed at ``c``.

    Speeds use the samples ``[lo, c]`` (``lo <= s0``: the speed window before the rise). The peak
    speeds ``v_up``, ``v_dn`` are sought with the speed zero where ``rest`` is True (the leg is
    still: a step of the angle there, such as a gravity re-anchoring during a hold, is not
    movement); the crossings use the speed as measured there too (``rest`` marks a trailing
    window of 0.2 s under 3 deg/s rms, and a slow raise approaching the top still moves: 10 %
    of a 45 deg raise over 3 s is 2.8 deg/s, so zero there would end the raise 0.1 s early).
    Returns ``(start_s, peak_s, end_s, baseline_deg, peak_deg, rom_deg, up_s, hold_s, down_s,
    end_deg)``; ``end_deg`` is the angle at ``end_s`` (for the undershoot test). A crossing
    between samples ``i`` and ``i + 1`` at fraction ``f`` has time ``t[i] + f (t[i+1] - t[i])``
    and angle ``a[i] + f (a[i+1] - a[i])``. Searches that find no crossing take the bound of
    their range (``s0`` for the start, ``c`` for the top entry and the end).
    """
    # peak: first maximum in [s0, c]
    p = s0
    for i in range(s0 + 1, c + 1):
        if a[i] > a[p]:
            p = i
    v = [0.0] * (c + 1)  # zero at rests: for the peak speeds
    w = [0.0] * (c + 1)  # as measured at rests too: for the crossings
    for i in range(lo, c + 1):
        v[i] = speed_at(t, a, rest, i, lo, c, k)
        w[i] = speed_at(t, a, None, i, lo, c, k) if rest[i] else v[i]
    # v_up: highest rising speed in [s0, p], v_dn: highest lowering speed (most negative) in
    # [p, c], each in the middle half of its movement by angle
    iu = _fastest(v, a, s0, p, a[s0], a[p], 1.0)
    idn = _fastest(v, a, p, c, a[c], a[p], -1.0)
    thr_up = frac * v[iu]
    thr_dn = frac * v[idn]
    # start: back from iu, the first sample at or under thr_up (not before s0)
    start = t[s0]
    base = a[s0]
    for i in range(iu - 1, s0 - 1, -1):
        if w[i] <= thr_up:
            f = _frac(w[i], w[i + 1], thr_up)
            start = t[i] + f * (t[i + 1] - t[i])
            base = a[i] + f * (a[i + 1] - a[i])
            break
    # top entry: forward from iu
    top_in = t[c]
    for i in range(iu + 1, c + 1):
        if w[i] <= thr_up:
            f = _frac(w[i - 1], w[i], thr_up)
            top_in = t[i - 1] + f * (t[i] - t[i - 1])
            break
    # top exit: back from idn, the first sample at or over thr_dn (not before iu)
    top_out = t[iu]
    for i in range(idn - 1, iu - 1, -1):
        if w[i] >= thr_dn:
            f = _frac(w[i], w[i + 1], thr_dn)
            top_out = t[i] + f * (t[i + 1] - t[i])
            break
    if top_out < top_in:
        top_out = top_in
    # end: forward from idn
    end = t[c]
    end_deg = a[c]
    for i in range(idn + 1, c + 1):
        if w[i] >= thr_dn:
            f = _frac(w[i - 1], w[i], thr_dn)
            end = t[i - 1] + f * (t[i] - t[i - 1])
            end_deg = a[i - 1] + f * (a[i] - a[i - 1])
            break
    peak = a[p]
    return (start, t[p], end, base, peak, peak - base, top_in - start, top_out - top_in, end - top_out, end_deg)


# --------------------------------------------------------------------------- the machine
class RepMachineRef:
    """Reference of ``legrep._fastcore.RepMachine``: same constructor fields, same ``advance``.

    ``advance(t, a, arm, still, base)`` runs the machine over the logged samples (global
    indices ``base .. base + N - 1``; the samples from :meth:`oldest_needed` on must be there)
    and returns the reps closed, as :data:`RepTuple` (``closed`` a global sample index).
    ``still`` is the fusion's per-sample rest flag (speeds are zero there), ``arm`` marks rests
    that have lasted ``arm_rest_s`` (:func:`arm_flags`).
    """

    def __init__(self, p: RepParams) -> None:
        self.p = p
        self.pos = 0
        self.mode = DOWN
        self.low = math.nan
        self.i_low = 0
        self.rest_deg = math.nan
        self.pause_deg = math.nan  # the last still sample in DOWN, a pause shorter than a rest too (NaN: none)
        self.floor_deg = math.nan  # the lowest rest at the bottom so far (NaN: none yet)
        self.start_deg = math.nan  # the angle at the stream start (NaN: not yet)
        self.last_rom = 0.0  # rom_deg of the last rep counted
        self.chain = True  # the stream start anchors
        self.s0 = 0
        self.base_deg = math.nan
        self.cand_anchored = False
        self.cand_from_rest = False
        self.held: tuple[float, float, float, float, float, float, float, float, float] | None = None
        self.held_end_deg = 0.0
        self.peak = 0.0
        self.i_peak = 0
        self.up_rest = -1
        self.up_rest_deg = 0.0
        # the candidate before its rise started again at a rest on the way up (-1: not rebased):
        # its rise start, the angle there, anchored
        self.orig_s0 = -1
        self.orig_deg = 0.0
        self.orig_anchored = False
        self.n_rejected = 0
        self.n_fidgets = 0

    # -- what the log must keep
    def oldest_needed(self) -> int:
        """Earliest global sample a future rep can use (its rise start minus the speed window)."""
        first = self.s0 if self.mode != DOWN else self.i_low
        if self.mode != DOWN and 0 <= self.orig_s0 < first:
            first = self.orig_s0
        return max(0, min(first, self.pos) - self.p.speed_half_n)

    @property
    def level_deg(self) -> float | None:
        """Angle reps are measured from now: the low (DOWN) or the rise's start; None at first."""
        if self.pos == 0:
            return None
        return self.low if self.mode == DOWN else self.base_deg

    # -- steps
    def _open(self, s0: int, s0_deg: float, i: int, x: float, anchored: bool, from_rest: bool, rebase: bool = False) -> None:
        """Open a candidate rising from ``s0``; ``rebase``: the open one's rise starts again there (a
        rest on the way up), and the start it had is kept (:meth:`_close`): the bent-knee set-up's
        rest at 45 when a rep from there pauses at 67 deg."""
        if not rebase:
            self.orig_s0 = -1
        else:
            self.orig_s0, self.orig_deg = self.s0, self.base_deg
            self.orig_anchored = self.cand_anchored
        self.mode = UP
        self.cand_from_rest = from_rest
        self.s0 = s0
        self.base_deg = s0_deg
        self.cand_anchored = anchored
        self.peak = x
        self.i_peak = i
        self.up_rest = -1

    def _close(self, t: list[float], a: list[float], still: list[bool], base: int, c: int, out: list[RepTuple]) -> None:
        """Measure the candidate closed at global sample ``c`` and judge it (module docstring)."""
        p = self.p
        lo = self.s0 - p.speed_half_n
        if lo < base:
            lo = base
        m = measure_window(t, a, still, lo - base, self.s0 - base, c - base, p.speed_half_n, p.speed_frac)
        start, _, end, baseline, peak_deg, rom, _, _, _, end_deg = m
        # judged from the stopwatch baseline, or, for a rise from a rest that rested again on the
        # way up, from the candidate's low if that lies over undershoot_deg below it: a raise that
        # paused part-way up and rose fastest after the pause has its stopwatch start there (a
        # bent-knee raise 48 -> 85 deg pausing at 70 read a rom of 15: a fidget, or sitting up).
        # Not from a turning point: on a real set a leg came down from a rep 10 deg past where it
        # then settled, and jerked 17 deg from there (a fidget)
        paused = self.cand_from_rest and self.up_rest >= 0 and baseline - self.base_deg > p.undershoot_deg
        low = self.base_deg if paused else baseline
        rise = peak_deg - low
        loose = p.undershoot_deg if p.undershoot_deg > p.chained_undershoot_frac * rise else p.chained_undershoot_frac * rise
        strict = p.undershoot_deg if p.undershoot_deg > p.undershoot_frac * rise else p.undershoot_frac * rise
        if self.orig_s0 >= 0 and rise >= p.min_rom_deg and (end_deg <= self.orig_deg + p.undershoot_deg
                                                             or end_deg < low - loose):
            # a rise that paused on the way up (a rest there: the rise started again from it) and
            # came back down to where it first started, or far below the pause (a set hovering
            # 10-15 deg above the mat after it): one rep from where it first started (a raise to 85
            # deg that paused at 45 was rejected as sitting up is, with 0.3 s of pause as with 4 s).
            # The bent-knee set-up's reps come back to the rest at 45, not to the mat: reps from
            # that rest
            m0 = measure_window(t, a, still, max(self.orig_s0 - p.speed_half_n, base) - base, self.orig_s0 - base,
                                c - base, p.speed_half_n, p.speed_frac)
            if (m0[4] - self.orig_deg >= p.min_rom_deg and self.orig_anchored and m0[2] - m0[0] <= p.max_rep_s
                    and m0[3] >= p.min_baseline_deg):
                self.chain = True
                self.last_rom = m0[5]
                out.append((*m0[:9], c))
                return
        if rise < p.min_rom_deg:
            self.n_fidgets += 1
            self.chain = self.cand_anchored
        elif (not self.cand_anchored or end_deg < low - loose or end - start > p.max_rep_s
              or baseline < p.min_baseline_deg):
            self.n_rejected += 1
            self.chain = False
        elif self.cand_from_rest and end_deg < low - strict:
            # rose from a rest and came down well below it: a new, lower baseline (the feet
            # walked out) if a rest follows, the first swing of walking if a rise does
            self.held = m[:9]
            self.held_end_deg = end_deg
            self.chain = False
        else:
            self.chain = True
            self.last_rom = rom
            out.append((*m[:9], c))

    def _rest_at(self, x: float) -> None:
        """A rest at the bottom (not at the top or part-way down): it may lower the floor, which is
        never above the stream start's angle (module docstring)."""
        if self.start_deg < x:
            x = self.start_deg
        if not x >= self.floor_deg:  # (NaN: the first rest)
            self.floor_deg = x

    def _chained(self) -> bool:
        """The low is anchored by the chain: it follows a rep and is not far below the floor."""
        p = self.p
        margin = p.undershoot_deg if p.undershoot_deg > p.chained_undershoot_frac * self.last_rom else p.chained_undershoot_frac * self.last_rom
        return self.chain and not self.low < self.floor_deg - margin  # (NaN floor: no limit)

    def _resolve(self, rest: bool, i: int, out: list[RepTuple]) -> None:
        """Decide a held rep at sample ``i``: a rest confirms it, and so does a rise when the
        descent ended no more than ``floor_margin_deg`` below the floor, or when the rep rose at
        least ``held_rise_min_rom_deg`` (else the rise rejects it)."""
        if self.held is None:
            return
        if (
            rest
            or self.held_end_deg >= self.floor_deg - self.p.floor_margin_deg  # False when no floor (NaN)
            or self.held[5] >= self.p.held_rise_min_rom_deg
        ):
            out.append((*self.held, i))
            self.last_rom = self.held[5]
            self.chain = True
        else:
            self.n_rejected += 1
        self.held = None

    def advance(
        self,
        t_arr: npt.NDArray[np.float64],
        a_arr: npt.NDArray[np.float64],
        arm_arr: npt.NDArray[np.bool_],
        still_arr: npt.NDArray[np.bool_],
        base: int,
    ) -> list[RepTuple]:
        t = [float(x) for x in t_arr]
        a = [float(x) for x in a_arr]
        arm = [bool(x) for x in arm_arr]
        still = [bool(x) for x in still_arr]
        if self.oldest_needed() < base:
            raise ValueError(f"advance expected samples from {self.oldest_needed()}, got base {base}")
        p = self.p
        out: list[RepTuple] = []
        # a rise of a rep's size from a rest on the way up starts the rise again (a step of the
        # angle, such as a gravity re-anchoring during the hold, is not one)
        rebase = p.enter_deg if p.enter_deg > p.min_rom_deg else p.min_rom_deg
        for j in range(self.pos - base, len(t)):
            i = j + base
            x = a[j]
            if i == 0:  # the stream start: a turning point that anchors (chain is True)
                self.low = x
                self.i_low = 0
                self.start_deg = x
            if self.mode == DOWN:
                if arm[j]:
                    self._rest_at(x)
                    self._resolve(True, i, out)
                    self.rest_deg = self.pause_deg = x
                    self.low = x
                    self.i_low = i
                elif x < self.low or t[j] - t[self.i_low - base] > p.max_rep_s:
                    self.low = x  # (a low older than max_rep_s cannot start a rep any more)
                    self.i_low = i
                if still[j]:
                    self.pause_deg = x
                if x > self.low + p.enter_deg:
                    self._resolve(False, i, out)
                    # near the last rest, or the last pause (a still sample, if shorter than
                    # arm_rest_s); False when NaN
                    near_rest = self.low >= self.rest_deg - p.undershoot_deg or self.low >= self.pause_deg - p.undershoot_deg
                    self._open(self.i_low, self.low, i, x, self._chained() or near_rest, near_rest)
            elif self.mode == UP:
                if x > self.peak:
                    self.peak = x
                    self.i_peak = i
                if arm[j]:
                    self.up_rest = i
                    self.up_rest_deg = x
                if self.up_rest >= 0 and x > self.up_rest_deg + rebase:
                    # the rise starts again from a rest on the way up (e.g. bent-knee setup)
                    self._open(self.up_rest, self.up_rest_deg, i, x, True, True, rebase=True)
                elif x < self.peak - p.enter_deg:
                    self.mode = FALL
                    self.low = x
                    self.i_low = i
                elif t[j] - t[self.s0 - base] > p.max_rep_s:
                    self._drop(i, x)
            else:  # FALL
                if x < self.low:
                    self.low = x
                    self.i_low = i
                returned = self.peak - self.low >= p.min_return_frac * (self.peak - self.base_deg)
                if arm[j]:
                    if returned:
                        self._rest_at(x)
                        self._close(t, a, still, base, i, out)
                        self._resolve(True, i, out)
                        self.mode = DOWN
                        self.rest_deg = self.pause_deg = x
                        self.low = x
                        self.i_low = i
                    else:  # a rest part-way down: a rise from it starts a new rise
                        self.up_rest = i
                        self.up_rest_deg = x
                elif x > self.low + p.enter_deg:
                    if returned:
                        self._close(t, a, still, base, i, out)
                        self._resolve(False, i, out)
                        self._open(self.i_low, self.low, i, x, self._chained(), False)
                    else:  # the dip was part of the top
                        self.mode = UP
                        if self.up_rest >= 0 and x > self.up_rest_deg + rebase:
                            self._open(self.up_rest, self.up_rest_deg, i, x, True, True, rebase=True)
                elif returned and t[j] - t[self.i_low - base] >= p.confirm_s:
                    self._close(t, a, still, base, i, out)
                    self.mode = DOWN
                    self.rest_deg = self.pause_deg = math.nan
                elif t[j] - t[self.s0 - base] > p.max_rep_s:
                    self._drop(i, x)
        self.pos = base + len(t)
        return out

    def _drop(self, i: int, x: float) -> None:
        """A candidate open for over ``max_rep_s`` (sat up, walked off): not a rep, no anchor but a
        rest on its way up."""
        self.n_rejected += 1
        self.chain = False
        self.mode = DOWN
        if self.up_rest >= 0:
            # resting on the way up (a bent-knee set's 45 deg, a rest longer than max_rep_s): that
            # rest anchors what follows, as a rest at the bottom would (the next rise is a rep)
            self.low = self.rest_deg = self.pause_deg = self.up_rest_deg
            self.i_low = self.up_rest
        else:
            self.low = x
            self.i_low = i
            self.rest_deg = self.pause_deg = math.nan

    def finish(
        self, t_arr: npt.NDArray[np.float64], a_arr: npt.NDArray[np.float64], still_arr: npt.NDArray[np.bool_], base: int
    ) -> list[RepTuple]:
        """End of stream: a candidate that has come down far enough closes at the last sample."""
        out: list[RepTuple] = []
        n = len(t_arr)
        if self.mode == FALL and n > 0:
            t = [float(x) for x in t_arr]
            a = [float(x) for x in a_arr]
            still = [bool(x) for x in still_arr]
            if self.peak - self.low >= self.p.min_return_frac * (self.peak - self.base_deg):
                self._close(t, a, still, base, base + n - 1, out)
                self.mode = DOWN
        if n > 0:
            self._resolve(True, base + n - 1, out)  # the stream ended after the descent: a stop
        return out
