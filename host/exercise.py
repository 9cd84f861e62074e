"""Which exercise a set was, and whether both thighs rose together (README "Which exercise").

A thigh sensor in an unknown orientation sees the flexion axis (the gyro during a raise) and
gravity, but not which way the thigh points: gravity alone cannot tell a thigh lying flat with
its front up (supine) from one sloping down with its front to the floor (plank). The raise
itself says where the hip is: the thigh swings about the hip joint, so the sensor feels a
centripetal acceleration ``omega x (omega x r)`` and a tangential one ``alpha x r``, where
``r`` runs from the hip joint to the sensor. Fitting ``r`` to the accelerometer over one rep
(gravity rotated with the gyro, the rest is the swing; the joint-position fit of Seel,
Schauer & Raisch, "Joint axis and position estimation from inertial measurement data by
exploiting kinematic constraints", IEEE CCA 2012, reduced to one hinge) gives the direction
from the hip to the sensor. Its inclination at the rep's baseline, measured toward the way the
raise moves it, is the rep's **baseline elevation** ``elevation_deg``:

* ~0°: thigh flat, lifted up (supine straight-leg raise);
* 40-60°: thigh resting raised (supine, feet on the floor: bent-knee raise);
* ~-90° + a bit: thigh hanging, lifted forward (standing hip flexion);
* ~-90° - a bit, or -10..-40°: thigh hanging or sloping down, lifted backward (bird dog, plank
  leg lift: hip extension).

"A bit" is the sensor's offset in front of the femur (it sits on the skin, 3-8 cm in front of
the bone 15-25 cm from the hip): the hip-to-sensor line leans toward the thigh's front, i.e.
ahead of the femur in a flexion and behind it in an extension; that lean is what separates a
hanging thigh raised forward from one raised backward. Everything here is I/O-free; the
thresholds are :class:`legrep.settings.Settings` fields ``exercise_*`` and ``both_legs_*``.
"""

from __future__ import annotations

import bisect

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ._fastcore import posture_rows
from .errors import InputError
from .fusion.angle import cross3, norm3
from .model import FloatArray, ImuBlock, Leg, Rep, SessionResult, SetSummary
from .settings import Settings

EXERCISES = (
    "straight_leg_raise",
    "bent_knee_raise",
    "double_leg_raise",
    "hip_extension",
    "standing_hip_flexion",
    "unknown",
)
"""Every exercise name a set can carry (``sets[*].exercise``)."""

CUES = {"both_legs": "one leg at a time", "back_arch": "keep your back flat"}
"""Live cue text per rep flag (the view and the voice map flags through this); ``back_arch`` is
the pelvis sensor's (host/pelvis.py)."""

MIN_HIP_SENSOR_M = 0.04
MAX_HIP_SENSOR_M = 0.7
"""A fitted hip-to-sensor distance outside this range (a thigh is ~0.4 m) means the fit failed."""
PRE_S = 1.0
"""The rep's anchor (the stillest sample, where gravity is read) lies at most this before start_s."""
ANCHOR_S = 0.06
"""Gravity at the anchor: mean accelerometer over this long."""
BIAS_LOOKBACK_S = 4.0
BIAS_WINDOW_S = 0.6
BIAS_MAX_DEV_DPS = 2.0
"""Gyro bias: the stillest BIAS_WINDOW_S window in the BIAS_LOOKBACK_S before the rep, used if
no sample in it deviates more than BIAS_MAX_DEV_DPS from its mean (else no correction)."""
FIT_RATE_HZ = 50.0
"""The fit uses at most this many samples per second (the swing is below 2 Hz)."""
MAX_MEASURED_PER_BOUT = 3
"""Reps measured per leg per bout (reps without a set rest between): enough for a median."""

_G_MPS2 = 9.80665  # standard gravity (CGPM 1901), converts the fitted g*s^2 to metres


@dataclass(frozen=True, slots=True)
class RepPosture:
    """What one rep says about the pose: see the module docstring.

    Attributes
    ----------
    elevation_deg : baseline elevation of the hip-to-sensor line toward the raise, degrees
        (-180, 180]; None when the fit failed.
    hip_sensor_m : fitted distance from the hip joint to the sensor, metres (None: failed).
    """

    elevation_deg: float | None
    hip_sensor_m: float | None


_FAILED = RepPosture(None, None)


def estimate_gyro_bias(t: FloatArray, gyr: FloatArray, before_s: float) -> FloatArray | None:
    """Mean rate (°/s, (3,)) of the stillest window before ``before_s``; None if none is still."""
    lo = int(np.searchsorted(t, before_s - BIAS_LOOKBACK_S))
    hi = int(np.searchsorted(t, before_s))
    if hi - lo < 4:
        return None
    dt = float(t[hi - 1] - t[lo]) / (hi - 1 - lo)
    n = max(3, int(round(BIAS_WINDOW_S / dt))) if dt > 0 else 3
    k = (hi - lo) // n
    if k < 1:
        return None
    win = gyr[hi - k * n : hi].reshape(k, n, 3)
    mean = np.add.reduce(win, axis=1) / n  # (win.mean(axis=1): the same sum and division, without its wrapper)
    dev = np.maximum.reduce(np.abs(win - mean[:, None, :]), axis=(1, 2))
    best = int(dev.argmin())
    return mean[best] if dev[best] <= BIAS_MAX_DEV_DPS else None


def _block_means(x: FloatArray, nd: int, step: int) -> FloatArray:
    """Means of ``nd`` consecutive blocks of ``step`` rows of ``x`` (``x.reshape(nd, step, ...).mean(axis=1)``).

    One or two rows per block (50-150 Hz) without the reduction machinery: numpy's sum starts
    from 0.0 (so a sum of -0.0 is 0.0), the sum of two numbers is the same in either order, and
    ``mean`` divides the sum by the count, so the results are the same numbers.
    """
    if step == 1:
        return (0.0 + x) / 1.0
    if step == 2:
        out: FloatArray = ((0.0 + x[0::2]) + x[1::2]) / 2.0
        return out
    means: FloatArray = x.reshape(nd, step, *x.shape[1:]).mean(axis=1)
    return means


def measure_posture(
    time_s: FloatArray, acc_g: FloatArray, gyr_dps: FloatArray, rep: Rep, gyro_bias_dps: FloatArray | None = None
) -> RepPosture:
    """Baseline elevation of one rep from the raw samples around it.

    Parameters
    ----------
    time_s : (N,) s, increasing; must cover ``[rep.start_s - 1 s, rep.end_s]``.
    acc_g : (N, 3) specific force, g (any constant scale).
    gyr_dps : (N, 3) angular rate, °/s.
    rep : the rep (its ``start_s``, ``peak_s``, ``end_s`` choose the samples).
    gyro_bias_dps : (3,) gyro bias to remove; None: :func:`estimate_gyro_bias` before the rep
        (zero if there is no still window).

    Returns
    -------
    RepPosture; both fields None when the samples do not cover the rep or the fit fails.
    """
    t = time_s
    lo = int(np.searchsorted(t, rep.start_s - PRE_S))
    st = int(np.searchsorted(t, rep.start_s, side="right"))
    hi = int(np.searchsorted(t, rep.end_s, side="right"))
    if st - lo < 2 or hi - st < 8 or t[lo] > rep.start_s - 0.5 * PRE_S:
        return _FAILED
    if gyro_bias_dps is None:
        gyro_bias_dps = estimate_gyro_bias(t, gyr_dps, rep.start_s)
    bias = np.zeros(3) if gyro_bias_dps is None else gyro_bias_dps
    # (np.linalg.norm(.., axis=1) of a float array is sqrt(add.reduce(x * x, axis=1)): the same numbers, without
    # its argument handling; likewise the means and sums below are add.reduce and a division, as numpy's)
    d_pre = gyr_dps[lo:st] - bias
    w_pre = np.sqrt(np.add.reduce(d_pre * d_pre, axis=1))
    k0 = lo + int(w_pre.argmin())
    tt = t[k0:hi]
    aa = acc_g[k0:hi]
    w = np.radians(gyr_dps[k0:hi] - bias)
    n_anchor = max(1, int(np.searchsorted(tt, tt[0] + ANCHOR_S)))
    f_b = np.add.reduce(aa[:n_anchor], axis=0) / n_anchor
    dt = tt[1:] - tt[:-1]  # (np.diff)
    inc = 0.5 * (w[1:] + w[:-1]) * dt[:, None]
    i_peak = int(np.searchsorted(tt, rep.peak_s, side="right")) - 1
    turn = np.add.reduce(inc[: max(1, i_peak)], axis=0)
    turn_norm = norm3(turn)
    g_norm = norm3(f_b)
    if not (turn_norm > math.radians(5.0) and g_norm > 0.0):
        return _FAILED
    n = turn / turn_norm
    theta = np.concatenate(([0.0], np.cumsum(inc @ n)))
    # decimate to <= FIT_RATE_HZ by block means (the swing is slow; means also average noise)
    dt_mean = float(tt[-1] - tt[0]) / (len(tt) - 1)
    step = max(1, int(round(1.0 / (FIT_RATE_HZ * dt_mean))))
    nd = len(tt) // step
    if nd < 6:
        return _FAILED
    cut = nd * step
    td = _block_means(tt[:cut], nd, step)
    wd = _block_means(w[:cut], nd, step)
    ad = _block_means(aa[:cut], nd, step)
    thd = _block_means(theta[:cut], nd, step)
    alpha = np.empty_like(wd)  # central differences, one-sided at the ends
    alpha[1:-1] = (wd[2:] - wd[:-2]) / (td[2:] - td[:-2])[:, None]
    alpha[0] = (wd[1] - wd[0]) / (td[1] - td[0])
    alpha[-1] = (wd[-1] - wd[-2]) / (td[-1] - td[-2])
    # gravity (as the accelerometer read it at the anchor) seen from the turning thigh:
    # R_k^T f_b, a rotation about n by -theta_k
    c, sn = np.cos(thd), np.sin(thd)
    nf = float(n @ f_b)
    nxf = cross3(n, f_b)
    w2 = np.einsum("ni,ni->n", wd, wd)
    # the fit's rows (posture_rows_reference is their numpy form; in C: ~40 numpy calls on short arrays)
    design = np.empty(18 * nd)
    resid = np.empty(3 * nd)  # swing acceleration (and bias leftovers) in units of g
    posture_rows(wd, w2, alpha, c, sn, ad, n, f_b, nxf, nf, g_norm, design, resid)
    a_mat = design.reshape(-1, 6)
    # normal equations with a whisker of ridge: the components along n are unobservable (a
    # hinge never swings a point on its axis) and the ridge sets them to 0; they are projected
    # out below anyway
    ata = a_mat.T @ a_mat
    ata += np.eye(6) * (1e-9 * float(np.trace(ata)) + 1e-30)
    try:
        sol = np.linalg.solve(ata, a_mat.T @ resid)
    except np.linalg.LinAlgError:
        return _FAILED
    r = sol[:3]
    rho = r - float(r @ n) * n
    dist_m = norm3(rho) * _G_MPS2
    if not (MIN_HIP_SENSOR_M <= dist_m <= MAX_HIP_SENSOR_M):
        return RepPosture(None, dist_m if math.isfinite(dist_m) else None)
    rho = rho / norm3(rho)
    up = f_b / g_norm
    elevation = math.degrees(math.atan2(float(up @ rho), float(up @ cross3(n, rho))))
    return RepPosture(round(elevation, 3), round(dist_m, 4))


def posture_rows_reference(
    wd: FloatArray, w2: FloatArray, alpha: FloatArray, c: FloatArray, sn: FloatArray, ad: FloatArray,
    n: FloatArray, f_b: FloatArray, nxf: FloatArray, nf: float, g_norm: float,
) -> tuple[FloatArray, FloatArray]:
    """The numpy form of C ``posture_rows`` (tests require identical numbers): the design matrix
    (3 M, 6) and residual (3 M,) of :func:`measure_posture`'s fit."""
    nd = len(wd)
    grav = f_b * c[:, None] - nxf * sn[:, None] + np.outer(1.0 - c, n * nf)
    resid = (ad - grav) / g_norm
    # swing: omega x (omega x r) + alpha x r = (w w^T - |w|^2 I + [alpha]x) r
    design = np.zeros((nd, 3, 6))
    design[:, :, :3] = wd[:, :, None] * wd[:, None, :]
    for i in range(3):
        design[:, i, i] -= w2
    design[:, 0, 1] -= alpha[:, 2]
    design[:, 0, 2] += alpha[:, 1]
    design[:, 1, 0] += alpha[:, 2]
    design[:, 1, 2] -= alpha[:, 0]
    design[:, 2, 0] -= alpha[:, 1]
    design[:, 2, 1] += alpha[:, 0]
    # an accelerometer bias b turns with the thigh while the gravity reference does not:
    # it adds (I - R_k^T) b, fitted alongside r
    nn = np.outer(n, n)
    kn = np.array([[0.0, -n[2], n[1]], [n[2], 0.0, -n[0]], [-n[1], n[0], 0.0]])
    one_c = (1.0 - c)[:, None, None]
    design[:, :, 3:] = np.eye(3) * one_c + kn * sn[:, None, None] - nn * one_c
    return design.reshape(-1, 6), resid.reshape(-1)


class PostureTracker:
    """Keeps one leg's recent raw samples and measures the posture of its closed reps.

    ``update(block)`` stores the samples; ``measure(rep)`` returns the rep's
    :class:`RepPosture` (only the first ``MAX_MEASURED_PER_BOUT`` reps of each bout are
    measured: the set's median needs no more); ``trim(before_s)`` drops samples no rep can
    need any more. The result depends only on the samples' times, never on the chunking.
    """

    LOOKBACK_S = PRE_S + BIAS_LOOKBACK_S
    """Samples this long before a rep's start are read (gravity anchor and gyro bias)."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self._t: list[FloatArray] = []
        self._a: list[FloatArray] = []
        self._g: list[FloatArray] = []
        self._last_end_s = -math.inf
        self._in_bout = 0
        self._bias: FloatArray | None = None
        """The last gyro bias found still before a rep (fast sets have no still moment)."""

    def update(self, block: ImuBlock) -> None:
        if len(block):
            self._t.append(block.time_s)
            self._a.append(block.acc_g)
            self._g.append(block.gyr_dps)

    def trim(self, before_s: float) -> None:
        """Forget chunks that end before ``before_s`` (no-op for -inf)."""
        while len(self._t) > 1 and self._t[0][-1] < before_s:
            del self._t[0], self._a[0], self._g[0]

    def measure(self, rep: Rep) -> RepPosture:
        if rep.start_s - self._last_end_s >= self.s.set_rest_s:
            self._in_bout = 0
        self._last_end_s = max(self._last_end_s, rep.end_s)
        self._in_bout += 1
        if self._in_bout > MAX_MEASURED_PER_BOUT or not self._t:
            return _FAILED
        lo_s = rep.start_s - self.LOOKBACK_S
        parts = [i for i, t in enumerate(self._t) if t[-1] >= lo_s and t[0] <= rep.end_s]
        if not parts:
            return _FAILED
        if len(parts) == 1:
            i = parts[0]
            t, a, g = self._t[i], self._a[i], self._g[i]
        else:
            t = np.concatenate([self._t[i] for i in parts])
            a = np.concatenate([self._a[i] for i in parts])
            g = np.concatenate([self._g[i] for i in parts])
        lo = int(np.searchsorted(t, lo_s))
        hi = int(np.searchsorted(t, rep.end_s, side="right")) + 1
        t, a, g = t[lo:hi], a[lo:hi], g[lo:hi]
        bias = estimate_gyro_bias(t, g, rep.start_s)
        if bias is not None:
            self._bias = bias
        return measure_posture(t, a, g, rep, self._bias)


# --------------------------------------------------------------------------- both legs
def _overlap_s(a: Rep, b: Rep) -> float:
    return min(a.end_s, b.end_s) - max(a.start_s, b.start_s)


def _overlaps(a: Rep, b: Rep, s: Settings) -> bool:
    """Both thighs rose together: the reps' [start_s, end_s] overlap by at least
    ``both_legs_overlap_frac`` of the shorter rep (both are reps, so both ranges reached
    ``min_rom_deg``)."""
    shorter = min(a.end_s - a.start_s, b.end_s - b.start_s)
    return shorter > 0 and _overlap_s(a, b) >= s.both_legs_overlap_frac * shorter


def _with_flag(r: Rep, flag: str) -> Rep:
    if flag in r.flags:
        return r
    return Rep(
        r.leg, r.start_s, r.peak_s, r.end_s, r.baseline_deg, r.peak_deg, r.rom_deg,
        r.up_s, r.hold_s, r.down_s, r.closed_s, (*r.flags, flag), r.set, r.rep, r.pelvis_tilt_deg,
    )  # fmt: skip


def flag_both_legs(reps: Sequence[Rep], s: Settings) -> tuple[Rep, ...]:
    """Add ``both_legs`` to every rep that overlaps a rep of the other leg (see :func:`_overlaps`).

    Parameters
    ----------
    reps : reps of both legs, any order; the order is kept.

    One leg's reps never overlap each other, so sorted by start they are sorted by end too: the
    candidates for a rep are found by bisection, and the work is O(n log n), not O(n^2).
    """
    by_leg = {leg: sorted((r for r in reps if r.leg is leg), key=lambda r: r.start_s) for leg in Leg}
    starts = {leg: [r.start_s for r in by_leg[leg]] for leg in Leg}
    out = []
    for r in reps:
        other = Leg.RIGHT if r.leg is Leg.LEFT else Leg.LEFT
        others = by_leg[other]
        i = bisect.bisect_left(starts[other], r.end_s)  # others[:i] start before r ends
        hit = False
        while i > 0 and others[i - 1].end_s > r.start_s:
            i -= 1
            if _overlaps(r, others[i], s):
                hit = True
                break
        out.append(_with_flag(r, "both_legs") if hit else r)
    return tuple(out)


def live_both_legs(rep: Rep, closed: Sequence[Rep], s: Settings) -> Rep:
    """The rep just closed, flagged ``both_legs`` if it overlaps an already closed rep of the
    other leg (live cue; the set close flags both reps of the pair).

    ``closed`` is in closing order. Within one leg ``closed_s`` never decreases and a rep ends
    before it closes, so the search walks back over the other leg's reps only until one closed
    before this rep started: every earlier one ended before it too (bounded work per rep).
    """
    for o in reversed(closed):
        if o.leg is rep.leg:
            continue
        if o.closed_s < rep.start_s:
            break
        if _overlaps(rep, o, s):
            return _with_flag(rep, "both_legs")
    return rep


class OpenReps:
    """The reps of the open set per leg, in closing order, for :func:`live_both_legs`.

    A whole recording analysed at once closes every rep of one leg before the first of the
    other, so walking back over all closed reps for each new one is quadratic (420 reps: 21 000
    comparisons). Within one leg reps close in start order, so the other leg's reps that start
    before a rep ends are a prefix, found by bisection; the walk back over that prefix meets
    the same reps, in the same order, as the walk over all of them (the others cannot overlap).
    """

    __slots__ = ("all", "_by_leg", "_starts", "_ordered")

    def __init__(self) -> None:
        self.all: list[Rep] = []
        """Every open rep in closing order."""
        self._by_leg: dict[Leg, list[Rep]] = {}
        self._starts: dict[Leg, list[float]] = {}
        self._ordered = True

    def extend(self, reps: Sequence[Rep]) -> None:
        for r in reps:
            starts = self._starts.setdefault(r.leg, [])
            if starts and r.start_s < starts[-1]:
                self._ordered = False  # (never seen) fall back to the full walk
            starts.append(r.start_s)
            self._by_leg.setdefault(r.leg, []).append(r)
        self.all.extend(reps)

    def clear(self) -> None:
        self.all, self._by_leg, self._starts, self._ordered = [], {}, {}, True

    def __bool__(self) -> bool:
        return bool(self.all)

    def flag(self, rep: Rep, s: Settings) -> Rep:
        """:func:`live_both_legs` of ``rep`` against the open reps."""
        others = [leg for leg in self._by_leg if leg is not rep.leg]
        if not self._ordered or len(others) > 1:
            return live_both_legs(rep, self.all, s)
        if not others:
            return rep
        i = bisect.bisect_left(self._starts[others[0]], rep.end_s)
        return live_both_legs(rep, self._by_leg[others[0]][:i], s)


# --------------------------------------------------------------------------- which exercise
def classify_elevation(elevation_deg: float, s: Settings) -> str:
    """The exercise a baseline elevation (degrees, see module docstring) points to."""
    e = elevation_deg
    if e > s.exercise_max_deg or e < -180.0 + s.exercise_min_margin_deg:
        return "unknown"
    if e < -90.0:
        return "hip_extension"  # hanging thigh lifted backward: bird dog
    if e < -s.exercise_upright_deg:
        return "standing_hip_flexion"
    if e < -s.exercise_prone_deg:
        return "hip_extension"  # thigh sloping down, lifted backward: plank leg lift
    if e < s.exercise_bent_knee_deg:
        return "straight_leg_raise"
    return "bent_knee_raise"


def classify_set(reps: Sequence[Rep], postures: Sequence[RepPosture], s: Settings) -> str:
    """The exercise of one set from its reps (``both_legs`` flags) and their postures.

    ``double_leg_raise`` when at least ``exercise_double_frac`` of the reps rose together
    with the other leg; otherwise the class of the median baseline elevation of the reps
    measured, or ``unknown`` when none was.
    """
    if not reps:
        return "unknown"
    both = sum("both_legs" in r.flags for r in reps)
    if both >= s.exercise_double_frac * len(reps) and both >= 2:
        return "double_leg_raise"
    elev = [p.elevation_deg for p in postures if p.elevation_deg is not None]
    if not elev:
        return "unknown"
    return classify_elevation(float(np.median(elev)), s)


def _key(r: Rep) -> tuple[str, float]:
    return (r.leg.value, r.start_s)


def label_sets(
    reps: Sequence[Rep],
    sets: Sequence[SetSummary],
    postures: Mapping[tuple[str, float], RepPosture],
    s: Settings,
    exercise: str | None = None,
) -> tuple[tuple[Rep, ...], tuple[SetSummary, ...]]:
    """Flag ``both_legs`` and name each set's exercise (``exercise`` overrides every set).

    Parameters
    ----------
    reps, sets : as :func:`legrep.reps.sets.group_sets` numbered them.
    postures : per rep ``(leg name, start_s)``: its measured posture (missing: not measured).
    """
    if exercise is not None:
        check_exercise(exercise)
    flagged = flag_both_legs(reps, s)
    by_set: dict[int, list[Rep]] = {}  # (one pass: a scan of every rep for each set was quadratic)
    for r in flagged:
        by_set.setdefault(r.set, []).append(r)
    out_sets = []
    for summary in sets:
        members = by_set.get(summary.set, [])
        name = exercise or classify_set(members, [postures.get(_key(r), _FAILED) for r in members], s)
        out_sets.append(with_exercise(summary, name))
    return flagged, tuple(out_sets)


def with_exercise(summary: SetSummary, exercise: str) -> SetSummary:
    return SetSummary(summary.set, summary.start_s, summary.end_s, summary.left_reps, summary.right_reps,
                      summary.uneven, exercise)  # fmt: skip


def check_exercise(name: str) -> str:
    """``name`` if it is one of :data:`EXERCISES`, else an InputError naming them."""
    if name not in EXERCISES:
        raise InputError(f"exercise must be one of {', '.join(EXERCISES)}, got {name!r}")
    return name


ALIASES = {
    "straight_leg_raise": "straight_leg_raise",
    "straight_leg_raises": "straight_leg_raise",
    "slr": "straight_leg_raise",
    "bent_knee_raise": "bent_knee_raise",
    "bent_knee_raises": "bent_knee_raise",
    "double_leg_raise": "double_leg_raise",
    "double_leg_raises": "double_leg_raise",
    "hip_extension": "hip_extension",
    "plank_leg_lift": "hip_extension",
    "plank_leg_lifts": "hip_extension",
    "plank": "hip_extension",
    "bird_dog": "hip_extension",
    "bird_dogs": "hip_extension",
    "standing_hip_flexion": "standing_hip_flexion",
    "unknown": "unknown",
}
"""Words (lower case, spaces and hyphens as ``_``) that name an exercise for ``--exercise``."""


def exercise_from_text(text: str | None) -> str | None:
    """The exercise an ``--exercise`` text names, or None when it names none of them.

    The text is the session's free-text name ("bent knee raise", "Bird dogs (slow)"); it
    names an exercise when it starts with one of :data:`ALIASES`, so "leg lift" or
    "Tuesday routine" leave the recognised exercise alone.
    """
    if not text:
        return None
    words = "".join(c if c.isalnum() else "_" for c in text.strip().lower())
    for alias in sorted(ALIASES, key=len, reverse=True):
        if words == alias or words.startswith(alias + "_"):
            return ALIASES[alias]
    return None


def override_exercise(result: SessionResult, text: str | None) -> SessionResult:
    """``result`` with every set named after ``text`` when it names an exercise (else unchanged)."""
    name = exercise_from_text(text)
    if name is None:
        return result
    return dataclasses.replace(result, sets=tuple(with_exercise(s, name) for s in result.sets))
