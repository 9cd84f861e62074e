"""Numpy forms of the angle stage's C array work (the readable specification).

:class:`legrep.fusion.angle.HipAngleEstimator` decides in Python; the per-sample work of each
decision runs in C (``legrep._fastcore``: ``plane_angles``, ``level_tests``, ``movement_anchor``,
``movement_sums``, ``rest_angles``, ``first_lower_rest``, ``anchor_frame``, ``row_offset``)
with the operations of these functions in the same order (built with ``-ffp-contract=off``), so
the numbers are identical: ``tests/test_fastcore_angle.py`` requires it bit for bit. These are
the forms the estimator used before the C functions existed; they are slow (one numpy pass per
decision over the rest of the chunk) and exist to be read and tested against.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from .._fastcore import hip_angles, tilt_angles
from .angle import cross3

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _fma(a: float, b: float, c: float) -> float:
    """``a * b + c`` rounded once (exact rationals, then Python's correctly rounded division)."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def dot3(a: FloatArray, b: FloatArray) -> float:
    """The dot product of two 3-vectors as numpy computed it in the estimator (``0.0 +`` OpenBLAS
    ``ddot``, whose kernel fuses the multiply-adds), portably."""
    x, y = [float(v) for v in a], [float(v) for v in b]
    return 0.0 + _fma(x[2], y[2], _fma(x[1], y[1], _fma(x[0], y[0], 0.0)))


def plane_angles_reference(
    up: FloatArray, u_ref: FloatArray, g_ref: FloatArray, quat: FloatArray, axis: FloatArray, offset_deg: float,
    long_axis: FloatArray, long_ref: FloatArray, axis_ref: FloatArray, max_correction_deg: float,
) -> FloatArray:
    """An anchored mounting's angles (N,) deg: the heading-free tilt about ``axis`` plus the
    exercise plane's correction, limited to ``max_correction_deg`` (``Mounting.angles``)."""
    n = len(up)
    tilt = np.empty(n)
    tilt_angles(up, u_ref, axis.tolist(), offset_deg, tilt)
    hip = np.empty(n)
    hip_angles(up, g_ref, quat, long_axis.tolist(), long_ref.tolist(), axis_ref.tolist(), offset_deg, hip)
    d = np.remainder(hip - tilt + 180.0, 360.0) - 180.0
    out: FloatArray = tilt + np.clip(d, -max_correction_deg, max_correction_deg)
    return out


def turned_reference(rate_dps: FloatArray, still: BoolArray, dt_s: float, turned_deg: float) -> FloatArray:
    """The rotation count (N + 1,) deg: ``turned_deg``, then after each sample the running sum of
    ``|rate| dt_s`` (0 at still samples; ``|rate|^2`` as einsum summed it: ``(x^2 + z^2) + y^2``)."""
    wm = np.where(still[:, None], 0.0, rate_dps)
    sq = (wm[:, 0] * wm[:, 0] + wm[:, 2] * wm[:, 2]) + wm[:, 1] * wm[:, 1]
    out: FloatArray = np.cumsum(np.concatenate([[turned_deg], np.sqrt(sq) * dt_s]))
    return out


def movement_moved_reference(
    rate_dps: FloatArray, still: BoolArray, rest: BoolArray, dt_s: float, turned_deg: float, anchored_deg: float,
    rotation_deg: float,
) -> BoolArray:
    """At each rest event ``e`` (in order): has the thigh turned ``rotation_deg`` since the last
    anchoring, counting sample ``e``? (the test ``movement_anchor`` applies at each rest it reads)."""
    turned = turned_reference(rate_dps, still, dt_s, turned_deg)
    events = np.flatnonzero(rest)
    out: BoolArray = turned[events + 1] - anchored_deg >= rotation_deg
    return out



def movement_anchor_reference(
    rate_dps: FloatArray, still: BoolArray, rest: BoolArray, ok: BoolArray, dt_s: float, turned_deg: float,
    anchored_deg: float, rotation_deg: float,
) -> int:
    """The first rest event ``e`` with ``ok[e]`` that :func:`movement_moved_reference` says moved, or -1
    (``movement_anchor``)."""
    hit = np.flatnonzero(ok & movement_moved_reference(rate_dps, still, rest, dt_s, turned_deg, anchored_deg, rotation_deg))
    return int(hit[0]) if len(hit) else -1

def level_tests_reference(
    up: FloatArray, u_ref: FloatArray, angle_ev: FloatArray, along: FloatArray, ref_along: FloatArray | float,
    axis: FloatArray, offset_deg: float, zone_deg: float, posture_deg: float, slip_sin: float, slip_far_sin: float,
    anchor_sin: float, rate_dps: FloatArray, still: BoolArray, rest: BoolArray, dt_s: float, turned_deg: float,
    anchored_deg: float, rotation_deg: float,
) -> tuple[int, int, float]:
    """The rest-event tests of one decision level (``level_tests``), whichever comes first: the first
    event that shows a strap slip or a far rest, or the rest event that re-anchors (with its tilt);
    ``(slip, -1, nan)``, ``(-1, anchor, tilt)`` or ``(-1, -1, nan)``, as
    ``HipAngleEstimator._level`` computed them in numpy. ``angle_ev`` and ``along`` are the events'
    angles and ``up . axis``, ``ref_along`` the reference rest's ``up . axis`` (per event, or one
    number for a fixed reference rest)."""
    events = np.flatnonzero(rest)
    # only rests near the reference pose: at the top of a rep the thigh may be abducted or rotated
    low = np.abs(angle_ev - offset_deg) <= zone_deg
    off = np.abs(along - ref_along)
    far = angle_ev > posture_deg
    bad = ((off > slip_sin) & low) | (off > slip_far_sin) | far
    slip = np.flatnonzero(bad)
    # re-anchoring: near the reference pose by the heading-free tilt, or gravity in the plane
    tilt = np.empty(len(events))
    tilt_angles(up[events], u_ref[events], axis.tolist(), offset_deg, tilt)
    near = (np.abs(tilt - offset_deg) <= zone_deg) | (off <= anchor_sin)
    anchor = movement_anchor_reference(rate_dps, still, rest, near & ~bad, dt_s, turned_deg, anchored_deg, rotation_deg)
    # the level ends at whichever comes first (what follows it is the next level's)
    first_slip = int(slip[0]) if len(slip) else -1
    if first_slip >= 0 and (anchor < 0 or first_slip < anchor):
        return first_slip, -1, math.nan
    return -1, anchor, (float(tilt[anchor]) if anchor >= 0 else math.nan)


def movement_sums_reference(
    rate_dps: FloatArray, still: BoolArray, n: int, dt_s: float, turned_deg: float, cov: FloatArray
) -> tuple[float, FloatArray]:
    """The rotation count and the movement covariance (``sum w w^T dt``) carried over samples
    ``[0, n)`` (``movement_sums``)."""
    wm = np.where(still[:n, None], 0.0, rate_dps[:n])
    c = np.cumsum(np.concatenate([cov[None], np.einsum("ni,nj->nij", wm, wm) * dt_s]), axis=0)
    turned = turned_reference(rate_dps[:n], still[:n], dt_s, turned_deg)
    return float(turned[n]), c[n]


def rest_angles_reference(acc_means: FloatArray, raw_ref: FloatArray, axis: FloatArray, offset_deg: float) -> FloatArray:
    """Rest angles (M,) deg from accelerometer means (M, 3) against the reference rest's direction
    ``raw_ref`` (``HipAngleEstimator._rest_angles``; a zero mean reads 0)."""
    n = len(acc_means)
    norms = np.array([math.sqrt(dot3(v, v)) for v in acc_means]) if n else np.empty(0)
    ok = norms > 0
    unit = np.zeros((n, 3))
    unit[ok] = acc_means[ok] / norms[ok][:, None]
    out = np.empty(n)
    tilt_angles(unit, np.broadcast_to(raw_ref, (n, 3)), axis.tolist(), offset_deg, out)
    out[~ok] = 0.0
    return out


def first_lower_rest_reference(
    acc_means: FloatArray, n: int, raw_ref: FloatArray, axis: FloatArray, offset_deg: float, lo_deg: float, hi_deg: float
) -> tuple[int, float] | None:
    """The first row before ``n`` holding an accelerometer mean (a row not all zero: a rest event or the
    first sample of a still run) whose rest angle lies strictly between ``lo_deg`` and ``hi_deg``, with
    that angle (``first_lower_rest``; the lower neutral pose of ``HipAngleEstimator._level``)."""
    rows = np.flatnonzero((acc_means[:n] != 0.0).any(axis=1))
    angles = rest_angles_reference(acc_means[rows], raw_ref, axis, offset_deg)
    hit = np.flatnonzero((lo_deg < angles) & (angles < hi_deg))
    return (int(rows[hit[0]]), float(angles[hit[0]])) if len(hit) else None


def _rotate(q: FloatArray, v: FloatArray) -> FloatArray:
    """v (3,) rotated by the unit quaternion q (4,) (w, x, y, z)."""
    w, u = float(q[0]), q[1:]
    t = 2.0 * cross3(u, v)
    out: FloatArray = v + w * t + cross3(u, t)
    return out


def _tilted_back(quat: FloatArray, up: FloatArray, g_ref: FloatArray, v: FloatArray) -> FloatArray:
    """The sensor-frame vector ``v`` in the I frame at attitude ``quat``, the I frame's tilt drift
    undone: the smallest rotation taking gravity's direction ``quat up`` to ``g_ref``
    (as ``hip_angles`` does per sample)."""
    g = _rotate(quat, up)
    w = _rotate(quat, v)
    k = cross3(g, g_ref)
    c = dot3(g, g_ref)
    out: FloatArray = c * w + cross3(k, w) + k * (dot3(k, w) / (1.0 + c))
    return out


def _level(v: FloatArray, g: FloatArray) -> FloatArray:
    """The unit part of ``v`` normal to the unit ``g``."""
    x = v - dot3(v, g) * g
    out: FloatArray = x / math.sqrt(dot3(x, x))
    return out


def anchor_frame_reference(
    quat: FloatArray, up: FloatArray, g_ref: FloatArray | None, axis: FloatArray, long: FloatArray, turn_deg: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The exercise plane at a rest (``Mounting.anchored``): the long axis and the flexion axis
    in the I frame, and gravity's direction there (``g_ref``, or ``quat`` applied to ``up``)."""
    g = _rotate(quat, up) if g_ref is None else g_ref
    f_i = _level(_tilted_back(quat, up, g, axis), g)
    a_now = _level(_tilted_back(quat, up, g, long), f_i)
    d = math.radians(turn_deg)
    long_i = math.cos(d) * a_now - math.sin(d) * cross3(f_i, a_now)  # turned by -d about f_i
    return long_i, f_i, g


def row_offset_reference(part: FloatArray, whole: FloatArray) -> int | None:
    """``legrep._fastcore.row_offset``: ``k`` if ``part`` is the rows ``whole[k : k + len(part)]`` (the same memory), else None."""
    # (views share the array that owns the memory: a cheap test that rejects most candidates)
    if (part if part.base is None else part.base) is not (whole if whole.base is None else whole.base):
        return None
    if part.dtype != whole.dtype or part.ndim != whole.ndim or part.strides != whole.strides or part.shape[1:] != whole.shape[1:]:
        return None
    step = whole.strides[0]
    if step <= 0:
        return None
    d = part.__array_interface__["data"][0] - whole.__array_interface__["data"][0]
    k, r = divmod(d, step)
    if r or k < 0 or k + len(part) > len(whole):
        return None
    return int(k)
