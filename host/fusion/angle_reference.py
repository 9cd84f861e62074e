"""Numpy forms of the angle stage's C array work (the readable specification).

:class:`legrep.fusion.angle.HipAngleEstimator` decides in Python; the per-sample work of each
decision runs in C (``legrep._fastcore``: ``plane_angles``, ``movement_moved``, ``movement_sums``)
with the operations of these functions in the same order (built with ``-ffp-contract=off``), so
the numbers are identical: ``tests/test_fastcore_angle.py`` requires it bit for bit. These are
the forms the estimator used before the C functions existed; they are slow (one numpy pass per
decision over the rest of the chunk) and exist to be read and tested against.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .._fastcore import hip_angles, tilt_angles

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


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
    anchoring, counting sample ``e``? (``movement_moved``)."""
    turned = turned_reference(rate_dps, still, dt_s, turned_deg)
    events = np.flatnonzero(rest)
    out: BoolArray = turned[events + 1] - anchored_deg >= rotation_deg
    return out


def movement_sums_reference(
    rate_dps: FloatArray, still: BoolArray, n: int, dt_s: float, turned_deg: float, cov: FloatArray
) -> tuple[float, FloatArray]:
    """The rotation count and the movement covariance (``sum w w^T dt``) carried over samples
    ``[0, n)`` (``movement_sums``)."""
    wm = np.where(still[:n, None], 0.0, rate_dps[:n])
    c = np.cumsum(np.concatenate([cov[None], np.einsum("ni,nj->nij", wm, wm) * dt_s]), axis=0)
    turned = turned_reference(rate_dps[:n], still[:n], dt_s, turned_deg)
    return float(turned[n]), c[n]
