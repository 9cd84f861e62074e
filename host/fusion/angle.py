"""Hip angle from a calibrated thigh IMU: the thigh's rotation in the exercise plane, from gravity.

The orientation stage (:mod:`.orientation`) says where "up" is in the sensor frame at every
sample, drift-free (gravity is used continuously; the gyro carries it through movements).
The hip angle is read from that up vector alone:

* the **mounting** is the thigh's flexion (mediolateral) axis ``f`` in the sensor frame and a
  reference rest's up vector ``u_ref``: ``f`` is fitted to the first movement of
  ``axis_rotation_deg`` after the reference rest, as the principal direction of the
  bias-corrected rate (PCA, as functional joint-axis methods do, e.g. Seel et al.,
  "IMU-based joint angle measurement for gait analysis", Sensors 14(4), 2014); that first
  movement defines the positive direction (a raise: flexion for lying and standing raises,
  extension for plank leg lifts and bird dogs, so the angle is always a positive-going raise);
* the **hip angle** is the flexion of the thigh's long axis ``a`` in the exercise plane (the
  plane normal to ``f`` at the reference rest), from the reference pose, plus the angle of the
  reference rest: the hip flexion of the ISB joint coordinate system (Wu et al. 2002,
  J. Biomech. 35(4):543-548; Grood & Suntay 1983, J. Biomech. Eng. 105(2):136-144), so
  abduction and rotation about the long axis during a rep do not enter it. It needs the
  attitude, heading included: the orientation stage's gyro attitude with its tilt drift undone
  by gravity (``hip_angles``), its heading re-taken at every rest near the reference pose (and
  at level rests elsewhere), so only the gyro over one rep carries it. ``a`` is normal to
  ``f``: level at the reference rest (lying, plank), or upright (kneeling, standing) when the
  lever arm (hip -> sensor, fitted by the orientation stage) says so. The first fit of ``f``
  carries that movement's abduction and rotation; at the first rest near the reference pose
  after ``axis_refit_deg`` of movement it is re-fitted to every movement since, and made level
  (the pelvis's mediolateral axis). Until the first re-anchoring (a rest near the reference
  pose, or a level one, after a movement; a level fit's own movement counts, so the rest that
  ends the bent-knee set-up anchors it) the angle is the heading-free tilt
  ``atan2(up . l0, up . k0) + offset`` (``k0`` the part of ``u_ref`` normal to ``f``,
  ``l0 = k0 x f``: the up vector's rotation about ``f``, exact in the plane, abduction and
  rotation entering to second order: a first movement may be a strap being adjusted or a
  posture change), and after it the plane's angle differs from that tilt by at most 6 deg
  (more means a heading gone wrong);
* a **strap that moved**: at rests the orientation stage reports (bias rests) near the
  reference pose, the up vector's component along ``f`` must be what it was at the reference
  rest; if it differs by more than ``slip_deg`` the gravity direction fits no hip angle of this
  mounting, so that rest becomes the new reference (its angle by the old mounting carries on)
  and ``f`` is re-fitted at the next movement. Away from the reference (at the top of a rep the
  thigh may be abducted) only a difference over 40 degrees counts.
* a **new posture**: a rest more than ``posture_change_deg`` above the neutral pose (angle 0)
  is either the top of a held rep or a new posture (the person lay down after standing: the
  first movement of a standing start is lying down, so lying reads positive). Far *below* the
  neutral pose (getting up to walk after lying) nothing is re-anchored: no exercise starts there
  and the person comes back down to the neutral pose. The next movement tells: the samples from that rest on are held until it has turned
  ``axis_rotation_deg``; if it lowers the leg (against the current raise direction) nothing
  changes; if it continues the raise, that rest becomes the neutral pose (angle 0, a new
  mounting fitted to the movement) and :attr:`HipAngleEstimator.restarts` says where, so the
  rep segmenter restarts there (the posture change itself is no rep). The flexion axis read so
  far is kept when the new fit lies within ``posture_axis_deg`` of it: it is the thigh's, fixed
  on the sensor in any posture, and the posture change was a large clean turn about it.
* a **strap roll**: a fitted axis along the lever arm (``roll_axis_deg``) was the sensor turning
  about the thigh; it is dropped (the segmenter restarts) and the first rest after it becomes
  the reference rest. Not a level axis that turned ``roll_max_turn_deg`` before the lever first
  lay along it (a raise, with the lever arm still carrying a strap adjusted before it).
* a **lower neutral pose**: a person lies at least as low between reps as where they settled,
  so a rest more than ``neutral_drop_deg`` below the neutral pose (and less than
  ``posture_change_deg``) becomes the neutral pose: the calibration rest may have come while
  the person was still settling, with the leg a little up. A rest here is an orientation-stage
  rest event or the first sample of a still run (the rate low over ``still_min_s``: fast reps
  leave 0.3 s at the bottom, too short for a rest event), its angle read from the
  accelerometer's mean over ``still_min_s`` against the reference rest's (gravity alone: the
  up vector may still lag after a fast movement, or after a settling with a poor gyro bias). The angle reads 0 there from that sample on (samples held at the
  sign check's rest are re-expressed; released ones stay).
  Only once a movement from the neutral pose went up (``reanchor_proofs``): before that, a
  rest below may mean the raise direction is wrong, which the sign check decides.
  The rest the first movement of a session rose from counts too (at the first fit: the movement
  went up by definition, and a flip at the sign check after it undoes the lowering): a set that
  hovers above the mat after a calibration taken while settling has no lower rest after it.
* the **sign check**: until ``sign_proofs`` movements from the neutral pose went up, each rest
  there holds its samples until the next movement shows its direction, judged by how far it
  went from where it started (its rest may lie below the neutral pose while that is still too
  high); a movement down, from where it started and below the checked rest (it may start at a
  pause part-way up a rep), flips the raise direction. The first check that proves it also
  anchors the exercise plane at its rest (the reps before it were read by the tilt). After a
  standing calibration rest, or when the lever arm puts the thigh upright at the first fit
  (``probe_upright_deg``), the first movement is held (on probation) until that check: a flip
  re-expresses it, so kneeling down before bird dogs or planks is no rep.

Samples whose angle needs an axis not yet known are held back and released once it is
found, so the first rep is never lost. The reference rest of the first mounting is the
calibration rest; samples before it (analysed backward by the orientation stage) are held
with the rest. Decisions depend only on samples up to the current one, and all per-sample
arithmetic runs in C (``TiltKernel``, ``plane_angles``, ``tilt_angles``), so any chunking of a
stream gives bit-identical angles.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from .._fastcore import (
    anchor_frame,
    first_lower_rest,
    level_axis as _level_axis_c,
    long_axis_flat as _long_axis_flat_c,
    long_axis_from_lever as _long_axis_from_lever_c,
    first_movement,
    level_tests,
    movement_sums,
    plane_angles,
    rest_angles,
    row_offset,
    rows_minus,
    tilt_angles,
    window_means,
)
from ..buffers import even_cuts, steps_after
from ..diagnostics import MountingDiagnostics, OrientationDiagnostics
from ..diagnostics import vec3 as _vec3
from ..model import FloatArray
from ..settings import Settings
from .calibration import Calibration
from .orientation import OrientationFilter, Pose, poses_ahead, run_backward
from .reference import G_MPS2

BoolArray = npt.NDArray[np.bool_]
_DEFAULTS = Settings()
"""Defaults for a :class:`Mounting` made without settings (tests, tools)."""
_SLICE = 8192
"""A chunk is handled in pieces of ``_SLICE`` to ``2 _SLICE`` samples (the orientation stage's outputs
stay in cache)."""
_ANGLES_AT_ONCE = 256
"""Pieces up to this long get their angles in one call (few samples: the call's overhead counts
more than angles of samples a split gives the next mounting)."""


_EIGH_LO: Any = None
try:  # the gufunc np.linalg.eigh calls for a float64 matrix (its wrapper costs as much as the 3x3 solve)
    from numpy.linalg import _umath_linalg as _linalg_gufuncs

    _EIGH_LO = _linalg_gufuncs.eigh_lo
except (ImportError, AttributeError):  # pragma: no cover (another numpy layout: the public call)
    pass


def eigh_vectors(a: FloatArray) -> FloatArray:
    """``np.linalg.eigh(a)[1]`` of a float64 (3, 3) matrix: the same LAPACK call, without the wrapper's
    checks (a non-finite matrix takes the public call, which raises as it always did)."""
    if _EIGH_LO is None or not math.isfinite(float(a.sum())):
        return np.linalg.eigh(a)[1]
    vecs: FloatArray = _EIGH_LO(a, signature="d->dd")[1]
    return vecs



def fit_axis(
    t: FloatArray, rate_dps: FloatArray, still: BoolArray, min_rotation_deg: float, t_prev_s: float
) -> tuple[int, FloatArray] | None:
    """Flexion axis from the first movement of ``min_rotation_deg`` since a still sample.

    ``rate_dps`` (N, 3) is the bias-corrected rate, ``still`` (N,) the still flags; the
    rotation of a movement is the integral of ``|rate|`` since the last still sample.
    Returns ``(k, axis)`` with ``k`` the sample where the movement reached the rotation and
    ``axis`` (3,) the unit principal direction of the movement's rate, signed so that the
    movement is a positive rotation; None if no movement is large enough.

    The search runs in C (``first_movement``: it stops at the movement, usually within the
    first second of thousands of held samples); :func:`fit_axis_reference` is its numpy form,
    and tests require both to give the same result bit for bit.
    """
    if len(t) == 0:
        return None
    found = first_movement(t, rate_dps, still, min_rotation_deg, t_prev_s)
    if found is None:
        return None
    k, lo = found
    return k, _principal_axis(t, rate_dps, k, lo, t_prev_s)


def fit_axis_reference(
    t: FloatArray, rate_dps: FloatArray, still: BoolArray, min_rotation_deg: float, t_prev_s: float
) -> tuple[int, FloatArray] | None:
    """:func:`fit_axis` in numpy over whole arrays (the specification of its search)."""
    n = len(t)
    if n == 0:
        return None
    dt = np.diff(t, prepend=t_prev_s if math.isfinite(t_prev_s) else t[0])
    rot = np.where(still, 0.0, np.linalg.norm(rate_dps, axis=1) * dt)
    idx = np.arange(n)
    last_still = np.maximum.accumulate(np.where(still, idx, -1))
    cs = np.cumsum(rot)
    base = np.where(last_still >= 0, cs[np.maximum(last_still, 0)], 0.0)
    hit = np.flatnonzero(cs - base >= min_rotation_deg)
    if not len(hit):
        return None
    k = int(hit[0])
    return k, _principal_axis(t, rate_dps, k, int(last_still[k]) + 1, t_prev_s)


def _principal_axis(t: FloatArray, rate_dps: FloatArray, k: int, lo: int, t_prev_s: float) -> FloatArray:
    """Unit principal direction of the rate over samples ``lo..k``, signed as the movement turns."""
    # the steps of samples lo..k only (the same differences as over the whole stretch)
    prev = float(t[lo - 1]) if lo > 0 else (t_prev_s if math.isfinite(t_prev_s) else float(t[0]))
    dt = steps_after(t[lo : k + 1], prev)
    seg = rate_dps[lo : k + 1] * np.sqrt(dt)[:, None]
    axis = eigh_vectors(seg.T @ seg)[:, -1]
    if float((rate_dps[lo : k + 1] @ axis) @ dt) < 0:
        axis = -axis
    out: FloatArray = axis / norm3(axis)
    return out


class Mounting:
    """The sensor's flexion axis, long axis and reference rest: what turns an attitude into a hip angle.

    ``axis`` is the flexion axis ``f`` (sensor frame, signed so the raise is positive). ``u_ref``
    is None for the calibration rest, whose up vector the orientation stage reports per sample
    (it improves with the accelerometer-bias estimate) and where the stage's I frame is the
    sensor frame, or a fixed (3,) vector (the rest after a strap slip or a new posture).

    Until :meth:`anchored` (``plane`` False) the angle is the heading-free tilt about ``f``.
    Anchored, it is the flexion of the long axis ``long`` (sensor frame, normal to ``f``) in the
    exercise plane: ``frame_i`` holds the long and flexion axes at the reference pose and
    ``g_ref_i`` gravity's direction, in the I frame (None: the calibration rest's up vector per
    sample). ``cov`` (3, 3) sums ``w w^T dt`` of the movements seen with this mounting,
    ``turned_deg`` their rotation since the axes were last fitted, ``anchored_deg`` its value at
    the last re-anchoring.
    """

    def __init__(
        self,
        axis: FloatArray,
        u_ref: FloatArray | None,
        offset_deg: float,
        along_ref: float,
        long: FloatArray | None = None,
        cov: FloatArray | None = None,
        turned_deg: float = 0.0,
        anchored_deg: float = 0.0,
        frame_i: tuple[FloatArray, FloatArray] | None = None,
        g_ref_i: FloatArray | None = None,
        u_neutral: FloatArray | None = None,
        max_correction_deg: float | None = None,
    ) -> None:
        if u_neutral is not None and u_ref is None and frame_i is None:
            # fitted on the calibration rest (the I frame's origin): in the plane at once, with the
            # axis level there and the long axis level too (a lying thigh; the lever arm may say
            # upright at the first re-fit)
            axis = level_axis(axis, u_neutral)
            along_ref = float(u_neutral @ axis)
            long = long_axis_flat(axis, u_neutral)
            frame_i = (long, axis)
        self.axis = axis
        self.u_ref = u_ref
        self.offset_deg = offset_deg
        self.along_ref = along_ref  # up . f at the reference rest
        self.long = long
        self.cov = np.zeros((3, 3)) if cov is None else cov
        self.turned_deg = turned_deg
        self.anchored_deg = anchored_deg
        self.frame_i = frame_i
        self.g_ref_i = g_ref_i
        self.plane = frame_i is not None and long is not None
        # the plane's correction limit (``Settings.plane_correction_max_deg``; None: its default)
        self.max_correction_deg = _DEFAULTS.plane_correction_max_deg if max_correction_deg is None else max_correction_deg
        self._axis = axis.tolist()
        self._plane_args: tuple[list[float], list[float], list[float]] | None = None  # (C arguments, made once)
        self._last: tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None = None
        self._wide: dict[int, FloatArray] = {}  # zero-stride rows of u_ref / g_ref_i (_rows)

    def with_offset(self, offset_deg: float) -> "Mounting":
        """The same mounting with another angle at the reference rest (a neutral pose moved)."""
        return Mounting(self.axis, self.u_ref, offset_deg, self.along_ref, self.long, self.cov, self.turned_deg,
                        self.anchored_deg, self.frame_i, self.g_ref_i, max_correction_deg=self.max_correction_deg)

    def _rows(self, v: FloatArray, n: int) -> FloatArray:
        """``np.broadcast_to(v, (n, 3))`` for ``v`` one of this mounting's fixed vectors (``u_ref``,
        ``g_ref_i``): a slice of a zero-stride view made once (the C functions read rows through
        their strides; a slice costs a tenth of a ``broadcast_to``)."""
        wide = self._wide.get(id(v))
        if wide is None or len(wide) < n:
            wide = np.broadcast_to(v, (max(n, _SLICE), 3))
            self._wide[id(v)] = wide
        return wide[:n]

    def tilt_angles(self, up: FloatArray, uref: FloatArray, out: FloatArray | None = None) -> FloatArray:
        """The heading-free angle (N,) deg: the up vector's rotation about the flexion axis from the
        reference up vector, plus the offset (``reference_tilt_angle``; exact in the plane,
        abduction and rotation about the long axis entering it to second order)."""
        ref = uref if self.u_ref is None else self._rows(self.u_ref, len(up))
        out = np.empty(len(up)) if out is None else out
        tilt_angles(up, ref, self._axis, self.offset_deg, out)
        return out

    def angles(self, up: FloatArray, uref: FloatArray, quat: FloatArray, out: FloatArray | None = None) -> FloatArray:
        """Hip angles (N,) deg of samples with up vectors ``up`` (N, 3), calibration-rest up
        vectors ``uref`` (N, 3) and attitudes ``quat`` (N, 4); written into ``out`` (N,) if given
        (unless they are recalled: the result is the array to use).

        Anchored: the long axis's flexion in the exercise plane (``reference_hip_angle``), whose
        difference from the heading-free tilt is limited to ``max_correction_deg`` (``Settings.plane_correction_max_deg``): that
        correction is of second order in the abduction and rotation (under 6 deg for 20 of
        each at a raise of 80), so a larger one means the heading from the gyro went wrong (a
        gyro bias mis-estimated along gravity, which no rest corrects). Elementwise: any chunking
        gives the same angles. Before: the tilt (a first fit may be a strap being adjusted, and
        the long axis is not known yet).
        """
        rows = self._recall(up, uref, quat)
        if rows is not None:
            return rows
        if self.plane:
            # (in C: ``plane_angles_reference`` in .angle_reference is its numpy form)
            assert self.frame_i is not None and self.long is not None
            res = np.empty(len(up)) if out is None else out
            ref = uref if self.u_ref is None else self._rows(self.u_ref, len(up))
            g_ref = uref if self.g_ref_i is None else self._rows(self.g_ref_i, len(up))
            if self._plane_args is None:
                long_i, axis_i = self.frame_i
                self._plane_args = (self.long.tolist(), long_i.tolist(), axis_i.tolist())
            long_l, long_i_l, axis_i_l = self._plane_args
            plane_angles(up, ref, g_ref, quat, self._axis, self.offset_deg, long_l, long_i_l, axis_i_l,
                         self.max_correction_deg, res)
        else:
            res = self.tilt_angles(up, uref, out)
        if len(up) >= _RECALL_MIN and (self._last is None or 4 * len(up) >= len(self._last[0])):
            self._last = (up, uref, quat, res)  # (a short run in between does not displace a long one)
        return res

    def anchored(
        self, axis: FloatArray, long: FloatArray, up_j: FloatArray, uref_j: FloatArray, quat_j: FloatArray,
        angle_j: float, refit: bool,
    ) -> "Mounting":
        """The mounting re-anchored at a rest (sample ``j``: up vector, calibration-rest up vector,
        attitude, angle there), with axes ``axis``, ``long`` (sensor frame; ``refit``: re-fitted,
        the rotation count restarts).

        The reference rest and its angle stay; the exercise plane's heading is taken from the
        attitude at ``j``: the flexion axis there (tilt drift undone, level), and the long axis
        there turned back about it by ``angle_j - offset`` to the reference pose. So the heading
        comes from the gyro over one rep, not since the reference rest (its drift, or the person
        turning round between sets, never reaches the angle). A fixed reference's gravity is
        gravity at ``j`` (fixed in the I frame but for the gyro's drift).
        """
        # in C (``anchor_frame``; anchor_frame_reference in .angle_reference is its numpy form):
        # g_ref = uref_j, or quat_j applied to up_j; f_i = _level(_tilted_back(.., axis), g_ref);
        # a_now = _level(_tilted_back(.., long), f_i); long_i = a_now turned by -d about f_i
        long_i, f_i, g_ref = anchor_frame(quat_j.tolist(), up_j.tolist(), uref_j.tolist() if self.u_ref is None else None,
                                          axis.tolist(), long.tolist(), angle_j - self.offset_deg)
        turned = 0.0 if refit else self.turned_deg
        along = float(uref_j @ axis) if self.u_ref is None else float(self.u_ref @ axis)
        return Mounting(axis, self.u_ref, self.offset_deg, along, long, self.cov, turned, turned,
                        (np.array(long_i), np.array(f_i)), None if self.u_ref is None else np.array(g_ref),
                        max_correction_deg=self.max_correction_deg)

    def _recall(self, up: FloatArray, uref: FloatArray, quat: FloatArray) -> FloatArray | None:
        """The angles of ``up`` if it is a run of rows of the last long ``up`` this mounting
        turned into angles (with the same rows of its ``uref`` and ``quat``), else None.

        Samples held after a rest are often released with the mounting they already had, as
        views of the same arrays: this gives them the angles computed before, not a second
        pass of ``hip_angles`` (the same inputs: the same numbers). Arrays are never written
        after the orientation stage returns them.
        """
        if self._last is None or len(up) == 0:
            return None
        last_up, last_ref, last_quat, last_out = self._last
        k = _row_offset(up, last_up)
        if k is None or _row_offset(quat, last_quat) != k:
            return None
        if self.u_ref is None and _row_offset(uref, last_ref) != k:
            return None
        return last_out[k : k + len(up)]


_RECALL_MIN = 64
"""Shortest run of angles a mounting remembers (see Mounting._recall)."""


_row_offset = row_offset
"""``k`` if ``part`` is the rows ``whole[k : k + len(part)]`` (the same memory), else None: in C
(one call instead of a dozen attribute reads; ``row_offset_reference`` in .angle_reference is its
Python form)."""


def _joined(parts: list[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """``np.concatenate(parts)`` of 1-D arrays; when they are consecutive runs of one array (a chunk's
    times, still flags, or angles written into one :class:`_OutRows` buffer) the same numbers as a view
    of it, with no copy (arrays are never written once released)."""
    first = parts[0]
    owner = first if first.base is None else first.base
    if isinstance(owner, np.ndarray) and owner.ndim == 1:
        k0 = _row_offset(first, owner)
        end = -1 if k0 is None else k0 + len(first)
        for p in parts[1:]:
            if end < 0:
                break
            end = end + len(p) if len(p) == 0 or _row_offset(p, owner) == end else -1
        if end >= 0:
            out: npt.NDArray[Any] = owner[k0:end]
            return out
    return np.concatenate(parts)


class _OutRows:
    """Fresh float64 rows handed out in order from one buffer: the angles of consecutive decision
    levels land next to each other, so joining them (:func:`_joined`) copies nothing. A row is
    handed out once and never written again after its angle is."""

    __slots__ = ("_buf", "_pos")

    def __init__(self) -> None:
        self._buf = np.empty(0)
        self._pos = 0

    def reserve(self, n: int) -> None:
        """Make the next ``n`` rows come from one buffer."""
        if len(self._buf) - self._pos < n:
            self._buf, self._pos = np.empty(max(n, 4 * _SLICE)), 0

    def take(self, n: int) -> FloatArray:
        self.reserve(n)
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out


def _angle_at(m: Mounting, up: FloatArray, uref: FloatArray, quat: FloatArray) -> float:
    """The hip angle by ``m`` of one sample: its up vector, calibration-rest up vector and attitude (3,), (3,), (4,)."""
    return float(m.angles(up[None], uref[None], quat[None])[0])


def norm3(v: FloatArray) -> float:
    """``float(np.linalg.norm(v))`` of one vector, as it computes it (``sqrt`` of the dot product of
    ``v.ravel(order="K")`` with itself; math's and numpy's square roots are both correctly rounded),
    without its argument handling (the anchoring asks for a few each rep)."""
    x = v.ravel(order="K")
    return math.sqrt(float(x.dot(x)))


def cross3(a: FloatArray, b: FloatArray) -> FloatArray:
    """``np.cross`` of two (3,) vectors with the same IEEE operations (``a1 b2 - a2 b1`` ...),
    without its axis handling (a tenth of the cost: the anchoring calls it thousands of times
    an hour; :mod:`legrep.exercise` uses it too)."""
    a0, a1, a2 = float(a[0]), float(a[1]), float(a[2])
    b0, b1, b2 = float(b[0]), float(b[1]), float(b[2])
    return np.array((a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0))


def level_axis(axis: FloatArray, up_ref: FloatArray) -> FloatArray:
    """The fitted flexion axis made level at the reference rest (normal to gravity there).

    The hip's flexion axis is the pelvis's mediolateral axis, level whenever the pelvis is
    (lying, kneeling, in a plank, standing), at every hip angle of a pure flexion. A fitted
    axis also carries the abduction and rotation of the movements it was fitted to (5-20 deg
    over a raise of 80 deg tilts it by up to 15 deg); the part of that tilt toward gravity is
    removed here. An axis more than 60 deg out of level is kept as it is (not a hip raise).

    In C (``x = axis - (axis . up_ref) up_ref``, ``x / |x|``, the numpy operations; a dozen numpy
    calls on 3-vectors cost more than the anchoring around them; tests compare the numpy form).
    """
    return np.array(_level_axis_c(axis, up_ref))


def long_axis_flat(axis: FloatArray, up_ref: FloatArray) -> FloatArray:
    """The long axis of a thigh lying level at the reference rest: normal to the flexion axis
    and to gravity there (any normal to the axis if they are parallel): ``axis x up_ref`` made unit,
    or ``axis x e_k`` with ``k`` where ``|axis|`` is least. In C, as :func:`level_axis`."""
    return np.array(_long_axis_flat_c(axis, up_ref))


def long_axis_from_lever(axis: FloatArray, up_ref: FloatArray, lever_m: FloatArray, lever_min_m: float) -> FloatArray:
    """Level or upright thigh at the reference rest, whichever the lever arm (hip -> sensor) is
    nearer: the sensor sits on the thigh, so that arm runs close to the long axis (it leans
    toward the thigh's front by atan(3-8 cm / 15-25 cm), 7-28 deg: too much to use it as the
    axis itself, enough to tell a lying thigh from a hanging one). Level if the arm is shorter
    than ``lever_min_m`` normal to the axis (``Settings.lever_min_m``).

    With ``lev`` and ``upright`` the lever arm's and ``up_ref``'s parts normal to the axis: the flat
    axis unless ``|lev| > lever_min_m``, ``|upright| > 1e-6`` and ``|lev . flat| < |lev . upright|``
    (``upright`` made unit). In C, as :func:`level_axis`."""
    return np.array(_long_axis_from_lever_c(axis, up_ref, lever_m, lever_min_m))


_TURN_TOP, _TURN_SETUP = 1, 2
"""What the first movement after the calibration rest makes of the turn into it
(:meth:`HipAngleEstimator._turn_kind`)."""


def _elevation_deg(up: FloatArray, direction: FloatArray) -> float:
    """Elevation above level (deg) of the unit ``direction`` (sensor frame) when "up" there is the
    unit ``up``."""
    return math.degrees(math.asin(max(-1.0, min(1.0, float(up @ direction)))))


def _skew(v: FloatArray) -> FloatArray:
    """(N, 3, 3) cross-product matrices of the rows of ``v`` (N, 3): ``_skew(v)[i] @ x = cross(v[i], x)``."""
    z = np.zeros(len(v))
    return np.stack([np.stack([z, -v[:, 2], v[:, 1]], -1), np.stack([v[:, 2], z, -v[:, 0]], -1),
                     np.stack([-v[:, 1], v[:, 0], z], -1)], 1)


def _turn_lever(t: FloatArray, up: FloatArray, w_dps: FloatArray, acc_g: FloatArray, g_norm: float, axis: FloatArray,
                min_dps: float, max_m: float) -> FloatArray | None:
    """The lever arm (hip -> sensor, sensor frame, m; its part normal to the turn's ``axis``)
    fitted to one turn alone: samples ``t`` (N,) s, up vectors ``up`` (N, 3), rates ``w_dps``
    (bias removed) and accelerometer ``acc_g`` (N, 3). With the hip still, the sensor's
    acceleration (the accelerometer less gravity, ``acc - g_norm up``) is
    ``dw/dt x r + w x (w x r)``: least squares for ``r`` and a constant accelerometer offset
    over the samples turning faster than ``min_dps`` (``dw/dt`` by central differences over
    +-2 samples). The part of ``r`` along the axis is not seen by a turn about it. None if too
    few samples turn fast enough or the fit is longer than ``max_m``."""
    h = 2
    n = len(t)
    if n < 2 * h + 10:
        return None
    idx = np.arange(h, n - h)
    w = np.radians(w_dps)
    fast = (np.einsum("ij,ij->i", w[idx], w[idx]) > math.radians(min_dps) ** 2).nonzero()[0]
    if len(fast) < 10:
        return None
    idx = idx[fast]
    dw = (w[idx + h] - w[idx - h]) / (t[idx + h] - t[idx - h])[:, None]
    sw = _skew(w[idx])
    k = _skew(dw) + sw @ sw
    y = (acc_g[idx] - g_norm * up[idx]) * G_MPS2
    m = np.concatenate([k, np.broadcast_to(np.eye(3), k.shape)], 2).reshape(-1, 6)
    sol = np.linalg.lstsq(m, y.reshape(-1), rcond=None)[0]
    r: FloatArray = sol[:3] - float(sol[:3] @ axis) * axis
    return r if norm3(r) <= max_m else None


def _reps_into_rest(tilt_deg: FloatArray, min_rom_deg: float) -> int | None:
    """Whether the tilt about one axis from the calibration rest of the samples before it
    (``tilt_deg`` (M,), the rest at 0) is reps from where the stream began up to the rest, and
    if so the sample at the bottom of the last one (None: not).

    Reps: over a range of at least ``min_rom_deg``, the stream starts in the lowest quarter of
    it and the rest sits in the highest, and before the last rise into the rest the tilt came
    up into the highest quarter and went back down into the lowest at least once. A person
    settling, or a strap being adjusted, wanders; it does not swing between two poses and end
    at the top of a swing."""
    if len(tilt_deg) < 3:
        return None
    lo, hi = float(tilt_deg.min()), float(tilt_deg.max())
    span = max(hi, 0.0) - lo
    if span < min_rom_deg or -lo < 0.75 * span or float(tilt_deg[0]) > lo + 0.25 * span:
        return None
    top, bottom = hi - 0.25 * span, lo + 0.25 * span
    high = np.flatnonzero(tilt_deg >= top)
    if not len(high):
        return None
    low = np.flatnonzero(tilt_deg[int(high[0]) :] <= bottom)
    if not len(low):
        return None
    last_top = int(np.flatnonzero(tilt_deg[: int(high[0]) + int(low[-1])] >= top)[-1])
    return last_top + int(np.argmin(tilt_deg[last_top:]))


Held = tuple[FloatArray, FloatArray, FloatArray, BoolArray, BoolArray, FloatArray, FloatArray, FloatArray, FloatArray]
"""Samples whose angle waits for an axis: time, up, reference up, still, rest events, rate about
the bias, at rest events the accelerometer's mean over the last ``still_min_s`` (else 0), the
attitude (N, 4) and the lever arm (N, 3) (:meth:`OrientationFilter.update_pose`)."""
AngleFn = Callable[[Held], FloatArray]
"""Hip angles of held samples (a mounting's, the pending sign check's with its re-anchoring, or
the unsigned tilt)."""


class HipAngleEstimator:
    """Streaming hip-angle estimator for one thigh, from its calibration rest on.

    Parameters
    ----------
    calib : the calibration (its rest is the first reference rest: angle 0).
    settings : analysis settings.
    pre : samples before the calibration rest ``(t (M,), acc (M, 3), gyr (M, 3))``; they are
        analysed backward from the rest and released with the first angles.

    ``update(t, acc, gyr)`` takes later samples (from ``calib.start_index`` on) and returns
    ``(time_s, angle_deg, still)`` for the samples released by this call.
    """

    def __init__(
        self,
        calib: Calibration,
        settings: Settings,
        pre: tuple[FloatArray, FloatArray, FloatArray] | None = None,
    ) -> None:
        self.calib = calib
        self.s = settings
        self._bias0 = np.asarray(calib.gyro_bias_dps, dtype=np.float64)
        # (a calibration whose bias has a large standard error: bias_motion_fast_tau_s)
        unsure = calib.bias_se_dps > settings.calib_bias_se_dps
        self._tilt = OrientationFilter(settings, calib.gravity_ref, self._bias0, calib.dt_nominal_s, bias_unsure=unsure)
        self._u_ref: FloatArray | None = None  # None: the calibration rest (reported per sample)
        self._offset = 0.0
        self.mounting: Mounting | None = None
        self.n_refits = 0

        self._slip_sin = math.sin(math.radians(settings.slip_deg))
        self._anchor_sin = math.sin(math.radians(settings.anchor_level_deg))
        self._fit_level_sin = math.sin(math.radians(settings.fit_level_deg))
        self._fit_tilt_sin = math.sin(math.radians(settings.fit_max_tilt_deg))
        self._probe_axis_cos = math.cos(math.radians(settings.probe_axis_deg))
        self._upright_cos = math.cos(math.radians(settings.probe_upright_deg))
        self._posture_axis_cos = math.cos(math.radians(settings.posture_axis_deg))
        self._refit_far_cos = math.cos(math.radians(self.s.refit_far_deg))
        self._roll_cos = math.cos(math.radians(self.s.roll_axis_deg))
        self._slip_far_sin = math.sin(math.radians(self.s.slip_far_deg))
        self.n_roll_refits = 0  # axes fitted to the sensor turning about the thigh, dropped
        self._roll_sign = False  # the next fit is signed by the angle it reads (the old axis says nothing)
        self.n_axis_refits = 0
        self._held: list[Held] = []
        self._out_rows = _OutRows()  # where the released angles are written (joined without copies)
        self._held_t_prev = math.nan  # time of the sample before the held ones (for their first step)
        self._pre: Held | None = None
        self._prev_axis: FloatArray | None = None
        self._posture_deg = settings.posture_change_deg
        # the reference rest's accelerometer direction (raw, as the rest accelerometer means are)
        self._raw_ref: FloatArray = calib.gravity_ref / np.linalg.norm(calib.gravity_ref)
        self._acc_n = max(1, round(settings.still_min_s / calib.dt_nominal_s))
        self._acc_tail = np.empty((0, 3))  # the last _acc_n - 1 accelerometer samples
        self._still_prev = False  # the still flag of the sample before the next chunk
        # a rest far from the neutral pose, waiting for the next movement: (mounting, u_ref, offset, raw_ref) before it
        self._pending: tuple[Mounting, FloatArray | None, float, FloatArray] | None = None
        self._pending_sign = False  # the pending rest is one near the neutral pose (a sign check)
        self._pending_far_deg = math.nan  # a far pending rest's angle by the mounting before it
        # the sign check's rest: its first still sample's (up, uref, quat) (None: none)
        self._pending_rest_pose: tuple[FloatArray, FloatArray, FloatArray] | None = None
        self._proven = 0  # movements from the neutral pose that went up since the sign was set
        # the first movement after a lying (not swaying) calibration rest, which set the sign: it
        # went up by definition, so it proves nothing to the sign check, but a rest below the
        # calibration pose after it is where the leg lies (reanchor_proofs)
        self._first_up = False
        self.n_posture_changes = 0
        self.n_sign_flips = 0
        self.n_probe_refits = 0  # movements on probation found to turn about another axis than the next one
        self.n_reanchors = 0  # neutral pose moved down to a lower rest
        self.n_lead_ins = 0  # the stream started with a turn into the calibration rest
        # a turn into the calibration rest after other movement: (its axis, its rotation deg, the
        # up vector where it began); the first movement after the rest tells (_turn_kind)
        # (and the lever arm fitted to that turn alone: _turn_lever; None if it could not be)
        self._lead_turn: tuple[FloatArray, float, FloatArray, FloatArray | None] | None = None
        # after a standing calibration rest the first movement is held (probation) until the sign
        # check after it: if that flips the raise direction, the first movement was a posture
        # change (kneeling down before bird dogs), re-expressed with the flipped mounting: no rep
        self._probing = False
        # the fitted axis turned a raise's worth before the lever arm first lay along it: no strap roll
        self._roll_off = False
        # after a strap roll: the angle its first rest is to have as the new reference rest (NaN: none)
        self._roll_rebase_deg = math.nan
        self._probe_t0 = math.inf  # first sample of the first movement
        self._probe_buf: list[tuple[FloatArray, FloatArray, BoolArray]] = []
        # the flipped mounting, end of the movement's samples
        self._probe_flip: tuple[Mounting, float] | None = None
        # the angle (deg) of the rest the first movement rose from, by the first mounting, when it
        # became the neutral pose (it lay below the calibration pose); undone if the sign check
        # flips the raise direction, kept once it proves it (0: none)
        self._floor_deg = 0.0
        # (up, uref, quat, lever) of the sample before the held ones (where a movement they begin with started)
        self._held_prev_pose: tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None = None
        self._standing = calib.sway_dps > settings.standing_sway_dps  # a standing (swaying) calibration rest
        # log (t, up, uref, quat) until the first movement's probation is decided (_upright_fit) and ends
        self._raw_on = True
        self._raw: list[tuple[FloatArray, FloatArray, FloatArray, FloatArray]] = []
        self._pending_t0 = math.nan  # first held sample of the sign check's rest
        self.restarts: list[float] = []
        """Times of the first sample of each new posture (the caller restarts rep segmentation there
        and clears the list); always among the samples released by the same ``update`` call."""
        if pre is not None and len(pre[0]):
            t_pre, a_pre, g_pre = (np.asarray(x, dtype=np.float64) for x in pre)
            up, uref, quat, still, rest, lever = run_backward(
                settings, calib.gravity_ref, self._bias0, calib.dt_nominal_s, t_pre, a_pre, g_pre, calib.start_s
            )
            self._pre = (t_pre, up, uref, still, rest, g_pre - self._bias0, np.zeros_like(a_pre), quat, lever)
            if self._raw_on:
                self._raw.append((t_pre, up, uref, quat))
            self._lead_in(a_pre)

    def _lead_in(self, acc_pre: FloatArray) -> None:
        """A stream that starts with one turn into the calibration rest (the person already
        moving: the rest is the top of the first rep) has its mounting from that turn.

        The samples before the calibration rest must be one turn about one axis
        (``fit_net_frac`` of all their rotation) of at least ``min_rom_deg``: then the rest is
        that far above where the stream began, and the next movement (the lowering) is no
        raise. A strap being adjusted (back and forth) or a person settling is not one turn.
        Nor are touch-and-go reps before the first hold long enough to calibrate on
        (:func:`_reps_into_rest`): they are taken as the same lead-in when they swing between
        where the stream began and the rest, the rest their top.
        """
        assert self._pre is not None
        t, up, uref, _, _, w, _, _, _ = self._pre
        if len(t) < 2:
            return
        dt = np.diff(t, append=self.calib.start_s)
        if not self._whole_lead_in(t, up, uref, w, dt, acc_pre):
            turn = self._turn_into_rest(up, w, dt)
            if turn is not None:
                axis, net, j0 = turn
                lever = _turn_lever(t[j0:], up[j0:], w[j0:], acc_pre[j0:], norm3(self.calib.gravity_ref), axis,
                                    self.s.lever_arm_min_dps, self.s.lever_arm_max_m)
                self._lead_turn = (axis, net, up[j0], lever)

    def _whole_lead_in(
        self, t: FloatArray, up: FloatArray, uref: FloatArray, w: FloatArray, dt: FloatArray, acc: FloatArray
    ) -> bool:
        """:meth:`_lead_in` when all the samples before the rest are the lead-in (True: taken).

        The rest's angle is how far the turn rose: by gravity when the stream starts still (at
        least 3 samples within ``still_gyro_dps`` of the first one's rate, at most
        ``still_min_s``: the accelerometer's mean there against the calibration rest's, about
        the turn's axis), else by the gyro over the turn (a bias from a 0.5 s hold at the top can
        be off by several deg/s: 5 deg over a 1 s raise)."""
        seg = w * np.sqrt(dt)[:, None]
        _, vecs = np.linalg.eigh(seg.T @ seg)
        axis = vecs[:, -1]
        net = float((w @ axis) @ dt)
        if net < 0:
            axis, net = -axis, -net
        total = float(np.linalg.norm(w, axis=1) @ dt)
        if net < self.s.min_rom_deg:
            return False
        axis = axis / np.linalg.norm(axis)
        if net < self.s.fit_net_frac * total:
            # reps into the rest? Judged and measured on the gravity-held tilt (the gyro's drift
            # over several reps, with a bias from a short hold, reaches tens of degrees)
            tilt = Mounting(axis, None, 0.0, 0.0).tilt_angles(up, uref)
            bottom = _reps_into_rest(tilt, self.s.min_rom_deg)
            if bottom is None:
                return False
            offset = -float(tilt[bottom])
        else:
            offset = net  # (the gyro over the turn: the backward orientation's start is its least settled end)
            # (steady about the first sample's rate: the bias from a short hold may be off by more
            # than still_gyro_dps, as step 5b of the orientation stage allows)
            dw = w - w[0]
            moving = (np.einsum("ij,ij->i", dw, dw) >= self.s.still_gyro_dps**2).nonzero()[0]
            n0 = min(int(moving[0]) if len(moving) else len(t), self._acc_n)
            if n0 >= 3:
                a0 = acc[:n0].mean(axis=0)
                offset = -self._tilt_at(axis, a0 / norm3(a0), self._raw_ref)
        self.n_lead_ins += 1
        self._offset = offset
        self._prev_axis = axis
        self._proven = 1
        self.mounting = Mounting(axis, None, offset, float(uref[-1] @ axis), max_correction_deg=self.s.plane_correction_max_deg)
        return True

    def _turn_into_rest(self, up: FloatArray, w: FloatArray, dt: FloatArray) -> tuple[FloatArray, float, int] | None:
        """The last movement before the calibration rest if it is one turn of at least
        ``min_rom_deg`` (``fit_net_frac`` of its rotation) about one axis: ``(axis, rotation deg,
        the sample where it began)``, else None. The axis is the principal direction of the
        last ``axis_rotation_deg`` before the rest; the turn began after the last sample that
        turned the other way about it (a strap adjusted, a pause: the rate's sign wanders)."""
        speed = np.linalg.norm(w, axis=1)
        back = np.cumsum((speed * dt)[::-1])
        m = len(w) - 1 - int(np.searchsorted(back, self.s.axis_rotation_deg))
        if m < 0:
            return None
        seg = w[m:] * np.sqrt(dt[m:])[:, None]
        axis = eigh_vectors(seg.T @ seg)[:, -1]
        rate = w @ axis
        if float(rate[m:] @ dt[m:]) < 0:
            axis, rate = -axis, -rate
        against = np.flatnonzero(rate[:m] <= 0.0)
        j0 = int(against[-1]) + 1 if len(against) else 0
        net = float(rate[j0:] @ dt[j0:])
        if net < self.s.min_rom_deg or net < self.s.fit_net_frac * float(speed[j0:] @ dt[j0:]):
            return None
        return axis / np.linalg.norm(axis), net, j0

    def _turn_kind(self, turn: tuple[FloatArray, float, FloatArray, FloatArray | None], axis: FloatArray, lever_m: FloatArray) -> int:
        """What the first movement after the calibration rest (fitted ``axis``, the lever arm
        estimate ``lever_m`` at its fit) makes of the turn into the rest (``turn``,
        :meth:`_turn_into_rest`), if that turn raised the sensor relative to the hip by
        ``lead_in_top_rise_deg``: ``_TURN_TOP`` if it turns back (the rest is that rep's top);
        by ``lead_in_rise_deg``: ``_TURN_SETUP`` if it goes on up from a turn shorter than ``posture_change_deg`` that
        began with the thigh no steeper than 45 deg below level (the knees bent to 45 deg before
        bent-knee raises: the rest is that far above where the leg lay; lying down after
        standing turns 90 deg from a hanging thigh), else 0."""
        turn_axis, turned_deg, up0, turn_lever = turn
        if float(axis @ turn_axis) < 0.0:
            # by the running estimate, or by the lever arm fitted to the turn itself: the running
            # one may still carry a strap adjusted before the turn (the sensor turning about the
            # thigh), the turn's own may lean past upright at a top near it (a raise to 85 deg
            # read a rise of 11): the larger rise (a lowering into the rest lowers both)
            rises = []
            for x in (lever_m, turn_lever):
                n_x = 0.0 if x is None else norm3(x)
                if x is not None and n_x > self.s.lever_min_m:
                    rises.append(_elevation_deg(self._raw_ref, x / n_x) - _elevation_deg(up0, x / n_x))
            return _TURN_TOP if rises and max(rises) >= self.s.lead_in_top_rise_deg else 0
        n = norm3(lever_m)
        if not n > self.s.lever_min_m:
            return 0
        lev = lever_m / n
        e0 = _elevation_deg(up0, lev)
        if _elevation_deg(self._raw_ref, lev) - e0 >= self.s.lead_in_rise_deg and turned_deg < self._posture_deg and e0 >= -45.0:
            return _TURN_SETUP
        return 0

    # ------------------------------------------------------------------ public
    def update(self, t: FloatArray, acc: FloatArray, gyr: FloatArray) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Take a chunk: ``t`` (N,) s, ``acc`` (N, 3) g, ``gyr`` (N, 3) deg/s (any chunking)."""
        out = self._update(t, acc, gyr)
        return self._probe_pass(out, float(t[-1]) if len(t) else -math.inf)

    def _probe_pass(self, out: tuple[FloatArray, FloatArray, BoolArray], t_last: float) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Hold what is released while the first movement is on probation; at its end release
        it all, re-expressed with the flipped mounting if the raise direction was flipped."""
        if self._probing and t_last > self._probe_t0 + self.s.probe_max_s:
            self._probing = False
        if not self._probing and not self._probe_buf and self._probe_flip is None:
            if self._raw_on and (self.mounting is not None or self._pending is not None):
                self._raw_on, self._raw = False, []  # probation never started (a refit, a posture)
            return out
        self._probe_buf.append(out)
        if self._probing:
            return _EMPTY
        parts = [p for p in self._probe_buf if len(p[0])]
        self._probe_buf, self._raw_on = [], False
        if not parts:
            self._raw = []
            return _EMPTY
        tt, aa, ss = (np.concatenate(x) for x in zip(*parts))
        if self._probe_flip is not None:
            m, t_end = self._probe_flip
            self._probe_flip = None
            sel = np.flatnonzero((tt >= self._probe_t0) & (tt < t_end))
            if len(sel):
                rt, rup, ruref, rquat = (np.concatenate(x) for x in zip(*self._raw))
                idx = np.searchsorted(rt, tt[sel])
                aa = aa.copy()
                aa[sel] = m.angles(rup[idx], ruref[idx], rquat[idx])
        self._raw = []
        return tt, aa, ss

    def _update(
        self, t: FloatArray, acc: FloatArray, gyr: FloatArray, pose: Pose | None = None
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        """``pose``: the orientation stage's outputs for these samples, if computed already."""
        n = len(t)
        if n == 0:
            return _EMPTY
        t, acc, gyr = (np.asarray(x, dtype=np.float64) for x in (t, acc, gyr))
        if n >= 2 * _SLICE:
            # pieces of _SLICE to 2 _SLICE samples, as equal as they come (a replay's blocks of a little
            # over _SLICE made a second, tiny piece each, with a piece's whole cost)
            cuts = even_cuts(n, _SLICE)
            # the chunk's angles in one buffer (and the held samples'; a level that reads all its samples' angles
            # and releases only some leaves the rest unused)
            self._out_rows.reserve(n + n // 4 + sum(len(p[0]) for p in self._held))
            pieces = list(zip(cuts[:-1], cuts[1:]))
            # (the orientation stage may run ahead on a thread of its own: poses_ahead)
            poses = poses_ahead(self._tilt, t, acc, gyr, pieces)
            try:
                parts = [self._update(t[a:b], acc[a:b], gyr[a:b], pose) for (a, b), pose in zip(pieces, poses)]
            finally:
                poses.close()  # (waits for the orientation stage's thread, after an error too)
            parts = [p for p in parts if len(p[0])]
            if not parts:
                return _EMPTY
            return tuple(_joined(list(x)) for x in zip(*parts))  # type: ignore[return-value]
        up, uref, quat, still, rest, lever = self._tilt.update_pose(t, acc, gyr) if pose is None else pose
        if self._raw_on:
            if self.mounting is None and self._pending is None and self._raw and still.any():
                # before the first fit the first movement can only begin after the last still
                # sample: what came before is not kept (a long rest would pile up otherwise); on
                # probation, the held movement began at _probe_t0 and is re-read from these samples
                # if its raise direction flips (a whole recording in one call pruned them: the
                # probation's angles were read from the wrong samples, one constant 85 deg "rep")
                probation = self._probing or self._probe_flip is not None or bool(self._probe_buf)
                t_still = min(float(t[int(still.nonzero()[0][-1])]), self._probe_t0 if probation else math.inf)
                self._raw = [p for p in self._raw if p[0][-1] >= t_still]
            self._raw.append((t, up, uref, quat))
        held: Held = (t, up, uref, still, rest, _minus_row(gyr, self._bias0), self._rest_acc(acc, rest | self._settles(still)), quat, lever)
        if self.mounting is not None and self._pre is not None:
            # the mounting came from the turn into the calibration rest (_lead_in)
            p, self._pre = self._pre, None
            return _cat((p[0], self.mounting.angles(p[1], p[2], p[7]), p[3]), self._angles(held))
        if self.mounting is None:
            self._held.append(held)
            out = self._try_fit()
            if self.mounting is None:
                # the rest itself is not held (sets close live; a resting leg's angle reaches the
                # view): while the raise direction is checked its samples keep the current
                # mounting (their angle is about 0 either way); without an axis yet (before the
                # first movement, or after a strap slip) they are the unsigned tilt from the
                # reference rest, about the signed angle there
                if self._pending_sign:
                    assert self._pending is not None
                    return _cat(out, self._release_still(self._pending_angles))
                if self._pending is None and self._pre is None:
                    return _cat(out, self._release_still(self._unsigned_rest))
            return out
        return self._angles(held)

    def finish(self) -> tuple[FloatArray, FloatArray, BoolArray]:
        """End of stream: release held samples (a first movement on probation as it is)."""
        out = self._finish()
        self._probing = False
        return self._probe_pass(out, math.inf)

    def _finish(self) -> tuple[FloatArray, FloatArray, BoolArray]:
        """End of stream: release held samples.

        Without a movement after the reference rest the axis comes from the movement before
        the calibration rest (backward in time, the last movement into the rest is the first
        away from it); without any, the angle is the unsigned tilt from the reference rest.
        """
        if self._pending is not None:
            # the stream ended at a held rest: it stays a pose of the current posture
            sign = self._pending_sign
            h = self._merged_held()
            t, up, uref, still, quat = self._take_held()
            angle = self._pending_angles(h) if sign and h is not None else self._pending[0].angles(up, uref, quat)
            self.mounting, self._u_ref, self._offset, self._raw_ref = self._pending
            self._pending, self._pending_sign = None, False
            return t, angle, still
        if self.mounting is not None or (not self._held and self._pre is None):
            return _EMPTY
        if self._pre is not None:
            t_pre, _, uref_pre, still_pre, _, w_pre, _, _, _ = self._pre
            found = fit_axis(-t_pre[::-1], -w_pre[::-1], still_pre[::-1], self.s.axis_rotation_deg, -self.calib.start_s)
            if found is not None:
                k = len(t_pre) - 1 - found[0]
                # (the tilt: no rest re-anchors the heading over samples analysed backward)
                self.mounting = Mounting(found[1], None, 0.0, float(uref_pre[k] @ found[1]), max_correction_deg=self.s.plane_correction_max_deg)
                t, up, uref, still, quat = self._take_held()
                return t, self.mounting.angles(up, uref, quat), still
        t, up, uref, still, _ = self._take_held()
        return t, self._unsigned(up, uref), still

    def _rest_acc(self, acc: FloatArray, rest: BoolArray) -> FloatArray:
        """(N, 3): at each rest event the accelerometer's mean over the last ``still_min_s``
        (with the samples carried from earlier chunks), else 0."""
        out = np.zeros(acc.shape)  # (float64 zeros, as zeros_like gave: acc is float64 here)
        k = self._acc_n
        n = len(acc)
        # at each event j: both[max(0, off + j - k + 1) : off + j + 1].mean(axis=0) with
        # both = tail + acc, off = len(tail) (window_means adds the rows in numpy's order: the same
        # numbers); only the first k - 1 events' windows reach into the tail, so only those rows are
        # joined to it (not the whole chunk)
        h = min(n, k - 1)
        if h:
            window_means(np.concatenate([self._acc_tail, acc[:h]]), rest[:h], k, out[:h])
        if n > h:
            window_means(acc, rest[h:], k, out[h:])
        if k > 1:  # (a copy: the caller's array is not kept)
            self._acc_tail = acc[-(k - 1) :].copy() if n >= k - 1 else np.concatenate([self._acc_tail, acc])[-(k - 1) :]
        return out

    def _settles(self, still: BoolArray) -> BoolArray:
        """(N,) the first still sample of each still run (the still flag carried across chunks)."""
        prev = np.concatenate([[self._still_prev], still[:-1]])
        self._still_prev = bool(still[-1])
        out: BoolArray = still & ~prev
        return out

    def _unsigned_rest(self, h: Held) -> FloatArray:
        """:meth:`_unsigned` as an :data:`AngleFn` (no re-anchoring without an axis)."""
        return self._unsigned(h[1], h[2])

    def _pending_angles(self, h: Held) -> FloatArray:
        """Angles of held samples at the sign check's rest, by the pending mounting, moved to a
        lower neutral pose at each rest event below it (as :meth:`_angles` does)."""
        assert self._pending is not None
        _, up, uref, _, rest, _, racc, quat, _ = h
        m = self._pending[0]
        angle = m.angles(up, uref, quat)
        for j in np.flatnonzero(_settled(racc)).tolist():
            a_j = float(self._rest_angles(m, racc[j : j + 1])[0])
            if self._is_below(a_j):
                m = self._lowered(m, a_j)
                angle[j:] = m.angles(up[j:], uref[j:], quat[j:])
        self._pending = (m, self._pending[1], m.offset_deg, self._pending[3])
        self._offset = m.offset_deg
        return angle

    def _rest_angles(self, m: Mounting, acc_means: FloatArray) -> FloatArray:
        """Hip angles of rests by ``m``, from the accelerometer's mean at each (``acc_means``
        (M, 3)) against the reference rest's: gravity alone, so the orientation stage's lag
        after a fast movement (it corrects its up vector over ``tau_acc_s``) does not enter;
        near the neutral pose the two directions share the accelerometer's bias and scale
        errors, which cancel. A zero mean reads 0.

        All rests in one C call (``rest_angles``; rest_angles_reference in .angle_reference is its
        numpy form): each norm as ``np.linalg.norm`` of one vector computes it (``sqrt(v.dot(v))``),
        so each angle is what a call per rest gives.
        """
        out = np.empty(len(acc_means))
        rest_angles(acc_means, self._raw_ref.tolist(), m._axis, m.offset_deg, out)
        return out

    def _is_below(self, angle_deg: float) -> bool:
        """A rest this far below the neutral pose becomes the neutral pose (``neutral_drop_deg``)."""
        return self._may_lower() and self._in_drop_zone(angle_deg)

    def _in_drop_zone(self, angle_deg: float) -> bool:
        """More than ``neutral_drop_deg`` below the neutral pose, less than ``posture_change_deg``."""
        return -self._posture_deg < angle_deg < -self.s.neutral_drop_deg

    def _may_lower(self) -> bool:
        """Enough movements went up from the neutral pose that a rest below it may lower it."""
        return self._proven + int(self._first_up) >= self.s.reanchor_proofs

    def _lowered(self, m: Mounting, angle_deg: float) -> Mounting:
        """``m`` with its neutral pose moved to a rest that reads ``angle_deg``."""
        self.n_reanchors += 1
        return m.with_offset(m.offset_deg - angle_deg)

    def _unsigned(self, up: FloatArray, uref: FloatArray) -> FloatArray:
        """Angle without a flexion axis: the unsigned tilt from the reference rest, plus its offset."""
        ref = uref if self._u_ref is None else np.broadcast_to(self._u_ref, up.shape)
        cos = np.clip(np.einsum("ij,ij->i", up, ref), -1.0, 1.0)
        out: FloatArray = np.degrees(np.arccos(cos)) + self._offset
        return out

    def diagnostics(self) -> MountingDiagnostics:
        """Whether the flexion axis was found (and which), mounting re-fits, posture changes, sign flips, neutral re-anchors."""
        return MountingDiagnostics(
            axis_found=self.mounting is not None,
            mount_refits=int(self.n_refits),
            posture_changes=int(self.n_posture_changes),
            sign_flips=int(self.n_sign_flips),
            neutral_reanchors=int(self.n_reanchors),
            axis=_vec3(self.mounting.axis) if self.mounting is not None else None,
        )

    def orientation_diagnostics(self) -> OrientationDiagnostics:
        """The tilt stage's: gyro and accelerometer bias, gaps, bias updates, lever arm, still fraction."""
        return self._tilt.diagnostics()

    # ------------------------------------------------------------------ machinery
    def _take_held(self) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray, FloatArray]:
        """All held samples (those before the calibration rest first), in time order; clears them:
        time, up, reference up, still, attitude."""
        parts = ([self._pre] if self._pre is not None else []) + self._held
        self._held, self._pre = [], None
        if not parts:
            return np.empty(0), np.empty((0, 3)), np.empty((0, 3)), np.empty(0, dtype=bool), np.empty((0, 4))
        if len(parts) == 1:  # (the arrays themselves: held arrays are never written)
            p = parts[0]
            return p[0], p[1], p[2], p[3], p[7]
        return tuple(np.concatenate([p[j] for p in parts]) for j in (0, 1, 2, 3, 7))  # type: ignore[return-value]

    def _hold_from(self, h: Held, angle: FloatArray, j: int) -> tuple[tuple[FloatArray, FloatArray, BoolArray], Held | None]:
        """Release ``h`` up to sample ``j`` (with ``angle``); hold the rest until an axis is fitted.
        Returns what is released and, if an axis was fitted, the samples left for the next
        decision level (:meth:`_fit_held`)."""
        t, still = h[0], h[3]
        self.mounting = None
        self._held_t_prev = float(t[j])
        self._held_prev_pose = (h[1][j], h[2][j], h[7][j], h[8][j])
        head = (t[: j + 1], angle[: j + 1], still[: j + 1])
        if j + 1 == len(t):
            return head, None
        self._held = [tuple(x[j + 1 :] for x in h)]  # type: ignore[list-item]
        fitted, rest = self._fit_held()
        return _cat(head, fitted), rest

    def _merged_held(self) -> Held | None:
        """The held samples as one piece (None if there are none)."""
        if not self._held:
            return None
        if len(self._held) > 1:
            self._held = [tuple(np.concatenate(x) for x in zip(*self._held))]  # type: ignore[list-item]
        return self._held[0]

    def _release_still(self, angles: AngleFn) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Release the held samples up to the last still one, with ``angles``; the axis fit needs
        only the samples since then (its rotation restarts at every still sample)."""
        h = self._merged_held()
        if h is None:
            return _EMPTY
        t, up, uref, still = h[0], h[1], h[2], h[3]
        idx = np.flatnonzero(still)
        if not len(idx):
            return _EMPTY
        j = int(idx[-1])
        self._held_t_prev = float(t[j])
        self._held_prev_pose = (up[j], uref[j], h[7][j], h[8][j])
        self._held = [tuple(x[j + 1 :] for x in h)] if j + 1 < len(t) else []  # type: ignore[list-item]
        return t[: j + 1], angles(tuple(x[: j + 1] for x in h)), still[: j + 1]  # type: ignore[arg-type]

    def _release_to_movement(self, h: Held, k: int, before: AngleFn) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Release ``h`` up to sample ``k`` of a movement just fitted: the samples up to the last
        still one before it with ``before`` (the angles ``_release_still`` would have given them
        chunk by chunk: chunk invariance), the movement itself with the new mounting."""
        assert self.mounting is not None
        t, up, uref, still, quat = h[0], h[1], h[2], h[3], h[7]
        lo = _after_last_still(still, k)
        self._held = []
        head = (t[:lo], before(tuple(x[:lo] for x in h)), still[:lo])  # type: ignore[arg-type]
        return _cat(
            head,
            (t[lo : k + 1], self.mounting.angles(up[lo : k + 1], uref[lo : k + 1], quat[lo : k + 1], self._out_rows.take(k + 1 - lo)),
             still[lo : k + 1]),
        )

    def _fit_turn(
        self, t: FloatArray, w: FloatArray, still: BoolArray, up: FloatArray, uref: FloatArray
    ) -> tuple[int, FloatArray] | None:
        """The first movement of the held samples that is a turn about one axis (``fit_net_frac``):
        ``(k, axis)`` as :func:`fit_axis` gives it, or None.

        After a movement that is no turn (a strap adjusted, the body settling) the search goes on
        from the next still sample, and also from the sample after it with twice
        ``axis_rotation_deg`` (the first rep may follow the settling with no still sample
        between). A turn found in the middle of a movement must be a longer one (a raise is, a
        strap turned back and forth is not) that ends at least half ``axis_rotation_deg`` above
        the reference rest by its own axis (a lowering is a turn too, but it ends below: the
        leg comes down toward the rest). The one that completes first counts (so any chunking
        finds the same).
        """
        rot = self.s.axis_rotation_deg
        starts = [(0, self._held_t_prev, rot)]  # (first sample, time before it, rotation needed)
        while True:
            best: tuple[int, FloatArray, int, float, float] | None = None
            for base, t_prev, need in starts:
                found = fit_axis(t[base:], w[base:], still[base:], need, t_prev)
                if found is not None and (best is None or found[0] + base < best[0]):
                    best = (found[0] + base, found[1], base, t_prev, need)
            if best is None:
                return None
            k, axis, base, t_prev, need = best
            lo = _after_last_still(still, k, base)
            prev = float(t[lo - 1]) if lo > 0 else (t_prev if math.isfinite(t_prev) else float(t[0]))
            dt = steps_after(t[lo : k + 1], prev)
            if (float((w[lo : k + 1] @ axis) @ dt) >= self.s.fit_net_frac * need
                    and (need == rot or self._ends_up(axis, up[k], uref[k])) and self._hip_like(axis, uref[k])):
                return k, axis
            starts = []
            nxt = np.flatnonzero(still[k + 1 :])
            if len(nxt):
                b = k + 1 + int(nxt[0])
                starts.append((b, float(t[b - 1]), rot))
            if k + 1 < len(t):
                starts.append((k + 1, float(t[k]), 2.0 * rot))

    def _hip_like(self, axis: FloatArray, uref_k: FloatArray) -> bool:
        """Whether ``axis`` lies within ``fit_max_tilt_deg`` of level at the reference rest (up
        vector there: ``uref_k`` before a reference rest of its own): the hip's flexion axis is
        level lying, kneeling, in a plank and standing."""
        ref = uref_k if self._u_ref is None else self._u_ref
        return abs(float(ref @ axis)) <= self._fit_tilt_sin * norm3(ref)

    def _ends_up(self, axis: FloatArray, up_k: FloatArray, uref_k: FloatArray) -> bool:
        """Whether the tilt about ``axis`` from the reference rest reads at least half
        ``axis_rotation_deg`` at a sample with up vector ``up_k`` (calibration-rest up ``uref_k``)."""
        return self._tilt_at(axis, up_k, uref_k) >= 0.5 * self.s.axis_rotation_deg

    def _tilt_at(self, axis: FloatArray, up_k: FloatArray, uref_k: FloatArray) -> float:
        """The tilt about ``axis`` from the reference rest (no offset) at one sample: up vector
        ``up_k``, calibration-rest up ``uref_k``."""
        ref = uref_k if self._u_ref is None else self._u_ref
        return float(Mounting(axis, self._u_ref, 0.0, 0.0).tilt_angles(up_k[None], ref[None])[0])

    def _new_mounting(self, axis: FloatArray, uref_k: FloatArray) -> Mounting:
        """A mounting just fitted with ``axis``, on the current reference rest and offset (in the
        tilt until it is anchored); ``uref_k`` is the calibration rest's up vector at the fit."""
        self._roll_off = False  # (the strap-roll check of ``roll_axis_deg`` looks at this axis afresh)
        ref = uref_k if self._u_ref is None else self._u_ref
        along = float(ref @ axis)
        # a level axis (a raise: ``fit_level_deg``) was fitted to a movement that has turned
        # axis_rotation_deg already, so the rest that ends it may anchor the plane: the bent-knee
        # set-up's rest (42 deg up) would otherwise leave the first rep to the tilt, up to 6.6 deg
        # off with abduction and rotation on a perfect sensor. Not an axis out of level (a strap
        # turned about an upright thigh): the plane would be built on it
        level = abs(along) <= self._fit_level_sin * norm3(ref)
        return Mounting(axis, self._u_ref, self._offset, along, turned_deg=self.s.axis_rotation_deg if level else 0.0,
                        max_correction_deg=self.s.plane_correction_max_deg)

    def _try_fit(self) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Axis unknown: fit it to the held samples' first large movement.

        When found at held sample ``k``, the held samples up to ``k`` (and any from before the
        calibration rest) are released with the new mounting, and the rest of the held
        samples go through the normal path, slip checks included, as if they came later.
        """
        head, rest = self._fit_held()
        return head if rest is None else _cat(head, self._angles(rest))

    def _fit_held(self) -> tuple[tuple[FloatArray, FloatArray, BoolArray], Held | None]:
        """:meth:`_try_fit` up to the normal path: what it releases, and the held samples after
        the movement (None: none) that go on through :meth:`_angles` (the caller's loop)."""
        plain = self._pending is None and self._pre is None  # still samples went out unsigned (update)
        h = self._merged_held()
        assert h is not None
        t, up, uref, still, rest, w, racc, quat, lever = h
        found = self._fit_turn(t, w, still, up, uref)
        if not math.isnan(self._roll_rebase_deg):
            # after a strap roll: the first still sample before the next movement (if any) becomes
            # the reference rest (the first sample of a still run holds its accelerometer mean)
            still_before = still[: _after_last_still(still, found[0]) if found is not None else len(t)].nonzero()[0]
            if len(still_before) and norm3(racc[int(still_before[0])]) > 0.0:
                i0 = int(still_before[0])
                self._u_ref = up[i0].copy()
                self._raw_ref = racc[i0] / norm3(racc[i0])
                self._offset = self._roll_rebase_deg
                self._roll_rebase_deg = math.nan
            elif found is not None:
                self._roll_rebase_deg = math.nan
        if found is None:
            return _EMPTY, None
        k, axis = found
        # (only the first movement after the calibration rest can make it the top of a turn)
        turn, self._lead_turn = self._lead_turn, None
        kind = self._turn_kind(turn, axis, lever[k]) if turn is not None else 0
        carry_cov: FloatArray | None = None  # (a new posture's mounting keeps the movements read before it)
        if self._pending is not None and self._pending_sign:
            lo = _after_last_still(still, k)
            # how far the movement went from where it started (the rest may lie a little below
            # the neutral pose, as far as the reps' bottoms do while it is still too high)
            a_at_k = _angle_at(self._pending[0], up[k], uref[k], quat[k])
            a_k = a_at_k - (self._start_angle(self._pending[0], h, lo) or 0.0)
            half = 0.5 * self.s.axis_rotation_deg
            # a flip needs the leg below the checked rest too: the movement may start at a pause
            # part-way up a rep (a plank leg lift pausing at 18 deg) and come down to that rest
            # (the rest's pose as the check began: the held samples' first one depends on the chunking)
            rp = self._pending_rest_pose
            a_rest = None if rp is None else _angle_at(self._pending[0], *rp)
            below_rest = a_rest is None or a_at_k - a_rest < -half
            before = self._pending_angles(tuple(x[:lo] for x in h))  # type: ignore[arg-type]  # (re-anchors the pending mounting)
            old = self._pending
            self._pending, self._pending_sign = None, False
            self.mounting = old[0]
            other_axis = self._probing and abs(float(axis @ old[0].axis)) < self._probe_axis_cos
            if other_axis:
                # the movement on probation turned about another axis than this one, which rises
                # from the neutral pose: it was no raise (a strap turned on the thigh, the body
                # settling), and this is the first movement about the flexion axis. The probation
                # is re-read with it (a strap turn read as a 22 deg rep about its own axis)
                self.n_probe_refits += 1
                self._proven = 0
                self.mounting = self._new_mounting(axis, uref[k])
                self._prev_axis = axis
                if t[k] <= self._probe_t0 + self.s.probe_max_s:
                    # (its rest too, up to this movement: by the new axis it is no longer ~0)
                    self._probe_flip = (self.mounting, float(t[lo]))
            elif a_k < -half and below_rest:
                # the leg left the neutral pose downward: the raise goes the other way (the first
                # movement was a posture change, e.g. kneeling down before bird dogs)
                self.n_sign_flips += 1
                self._proven = 0
                self._first_up = False
                self._offset = -(old[2] + self._floor_deg)  # (the first movement rose from no floor)
                # (the tilt until anchored: the first movement was a posture change)
                self.mounting = self._new_mounting(axis, uref[k])
                self._prev_axis = axis
                if self._probing and t[k] <= self._probe_t0 + self.s.probe_max_s:
                    self._probe_flip = (self.mounting, self._pending_t0)
            elif a_k > half:
                self._proven += 1
                pose = self._start_pose(h, lo)
                if pose is not None and not self.mounting.plane:
                    # the raise direction is proven: the rest enters the exercise plane as a rest
                    # near the reference pose does once the sign is known (the tilt about one
                    # axis reads a rep with abduction and axial rotation up to 9 deg off)
                    self.mounting = self._anchor(self.mounting, *pose)
            if other_axis or (a_k < -half and below_rest) or a_k > half:  # (decided: re-fitted, proven or flipped)
                self._floor_deg = 0.0
            self._probing = False
            # the rest before the movement keeps the mounting it had
            head = self._release_to_movement(h, k, lambda _: before)
            if k + 1 == len(t):
                return head, None
            return head, tuple(x[k + 1 :] for x in h)  # type: ignore[return-value]
        if self._pending is not None:
            old = self._pending
            # where the movement began, by the mounting before the far rest: well below that rest,
            # the leg came back down in between (a raise that paused part-way up, 73 deg above a
            # lying neutral pose, then went on up and back down to 45 unfitted: its net turn is
            # too small), so this movement tells nothing of the far rest
            a_lo = self._start_angle(old[0], h, _after_last_still(still, k))
            back_down = a_lo is not None and a_lo < self._pending_far_deg - self.s.slip_zone_deg
            goes_on = float(axis @ old[0].axis) >= 0 and not back_down
            if goes_on:
                # it goes on up from the far rest: a new posture (lying down after standing, down
                # into a plank) if the leg then stops at or above that rest, a pause part-way up
                # if it comes back down below it (the set's rest). Held until the movement ends
                # (or no longer than a rep lasts, ``max_rep_s``: then it goes on)
                ends = (still[k + 1 :] & ~still[k:-1]).nonzero()[0] if k + 1 < len(t) else _NO_ROWS
                if len(ends):
                    e = k + 1 + int(ends[0])
                    a_end = _angle_at(old[0], up[e], uref[e], quat[e])
                    goes_on = a_end >= self._pending_far_deg - self.s.slip_zone_deg
                elif t[-1] - t[k] <= self.s.max_rep_s:
                    return _EMPTY, None  # (the next chunk fits the same movement and looks again)
            self._pending = None
            self._probing = False
            self._pending_far_deg = math.nan
            if not goes_on:
                # the movement lowers the leg, or the leg came back down first or after: the far rest
                # was the top of a rep or a pause on the way up (or a pose of this posture); the held
                # samples go on with the mounting they had
                self.mounting, self._u_ref, self._offset, self._raw_ref = old
                self._held = [tuple(x[: k + 1] for x in h)]  # type: ignore[list-item]
                t_h, up_h, uref_h, still_h, quat_h = self._take_held()
                head = (t_h, self.mounting.angles(up_h, uref_h, quat_h, self._out_rows.take(len(t_h))), still_h)
                if k + 1 == len(t):
                    return head, None
                return head, tuple(x[k + 1 :] for x in h)  # type: ignore[return-value]
            # it continues the raise: a new posture, neutral at that rest
            self.n_posture_changes += 1
            self._proven = 0
            self._first_up = False
            self.restarts.append(float(t[0]))
            # the thigh's flexion axis is fixed on the sensor, whatever the posture: the one the
            # movements before were read with (the posture change among them, a large turn about
            # it) is truer than this first lift's, which carries its abduction and rotation (a
            # plank lift of 30 deg with 15 of each: 30 deg off), unless the strap moved too
            kept = old[0].axis if float(old[0].axis @ axis) >= 0 else -old[0].axis
            if float(kept @ axis) >= self._posture_axis_cos:
                axis = kept
                carry_cov = old[0].cov.copy()  # (and the movements it was read from, for its re-fits)
        elif kind == _TURN_TOP:
            # the first movement turns back from the rest the turn into it rose to: the rest is
            # that rep's top, its raise positive, that far above where the turn began
            assert turn is not None
            axis = -axis
            self._offset = turn[1]
            self._proven = 1
            self.n_lead_ins += 1
        elif kind == _TURN_SETUP:
            # it goes on up: the rest is a pose that far above where the leg lay (the set-up of
            # bent-knee raises), so the angle reads from the pose the turn began at
            assert turn is not None
            self._offset = turn[1]
            self.n_lead_ins += 1
        elif self._prev_axis is not None and float(axis @ self._prev_axis) < 0:
            axis = -axis  # a strap turns by less than 90 degrees: keep the raise positive
        elif self._roll_sign:
            # the axis before was the thigh's long axis (``roll_axis_deg``): the leg is above the
            # reference rest's pose, so the angle the new axis reads here is positive
            if self._tilt_at(axis, up[k], uref[k]) < 0.0:
                axis = -axis
        self._roll_sign = False
        first = self._proven == 0 and self.n_refits == 0 and self.n_posture_changes == 0
        very_first = first and self._prev_axis is None and kind == 0
        if very_first and self._lowers_to_reference(h, k, axis):
            axis = -axis
        if very_first and not self._standing:
            self._first_up = True
        self._prev_axis = axis
        self.mounting = self._new_mounting(axis, uref[k])
        if carry_cov is not None:
            self.mounting.cov = carry_cov
        floor = self._floor_before(h, k) if very_first else None
        if first and self._raw_on and (self._standing or self._upright_fit(axis, uref[k], lever[k])):
            # the first movement after a standing calibration rest (or from an upright thigh): on
            # probation until the sign check
            self._probing = True
            lo = _after_last_still(still, k)
            self._probe_t0 = float(t[lo])
        if floor is not None:
            # the first movement went up (by definition; the sign check proves or undoes it)
            self.mounting = self._lowered(self.mounting, floor)
            self._floor_deg = floor
        if plain:
            head = self._release_to_movement(h, k, self._unsigned_rest)  # (reference and offset unchanged)
            if floor is not None:
                # the rest went out unsigned, so about its angle by the mounting before it was
                # lowered there: the movement starts a fresh rep segmentation at its first sample
                # (else a step down of that angle precedes it, and the first rep rises from no rest)
                self.restarts.append(float(t[_after_last_still(still, k)]))
        else:
            self._held = [tuple(x[: k + 1] for x in h)]  # type: ignore[list-item]
            t_h, up_h, uref_h, still_h, quat_h = self._take_held()
            head = (t_h, self.mounting.angles(up_h, uref_h, quat_h, self._out_rows.take(len(t_h))), still_h)
        self._offset = self.mounting.offset_deg
        if k + 1 == len(t):
            return head, None
        return head, tuple(x[k + 1 :] for x in h)  # type: ignore[return-value]

    def _lowers_to_reference(self, h: Held, k: int, axis: FloatArray) -> bool:
        """Whether the session's first fitted movement (reaching held sample ``k``, about ``axis``)
        is a lowering back toward the reference rest's pose: its tilt there came nearer that
        pose by half ``axis_rotation_deg`` from where it began, and the lever arm's elevation
        fell. A raise that paused part-way up with each part under ``axis_rotation_deg`` leaves
        its lowering to be the first movement fitted; taken as a raise it read the set upside
        down (the rests as reps)."""
        lo = _after_last_still(h[3], k)
        pose = self._start_pose(h, lo)
        if pose is None:
            return False
        tilt = Mounting(axis, self._u_ref, 0.0, 0.0)
        a_lo = float(tilt.tilt_angles(pose[0][None], pose[1][None])[0])
        a_k = float(tilt.tilt_angles(h[1][k][None], h[2][k][None])[0])
        if not abs(a_k) < abs(a_lo) - 0.5 * self.s.axis_rotation_deg:
            return False
        lever = h[8][k]
        n = norm3(lever)
        if not n > self.s.lever_min_m:
            return False
        return _elevation_deg(h[1][k], lever / n) < _elevation_deg(pose[0], lever / n)

    def _upright_fit(self, axis: FloatArray, up_ref: FloatArray, lever_m: FloatArray) -> bool:
        """Whether the lever arm (hip -> sensor) at the first fit puts the thigh within
        ``probe_upright_deg`` of upright at the reference rest (whose up vector is ``up_ref``),
        in the plane normal to the flexion ``axis`` (as :func:`long_axis_from_lever` compares)."""
        lev = lever_m - float(lever_m @ axis) * axis
        upright = up_ref - float(up_ref @ axis) * axis
        n_lev, n_up = norm3(lev), norm3(upright)
        if not (n_lev > self.s.lever_min_m and n_up > 1e-6):
            return False
        return abs(float(lev @ upright)) >= self._upright_cos * n_lev * n_up

    def _floor_before(self, h: Held, k: int) -> float | None:
        """The angle (deg, by the mounting just fitted) of the rest the first movement (reaching
        held sample ``k``) rose from, if it lies below the calibration pose by more than
        ``neutral_drop_deg`` (and less than ``posture_change_deg``), else None: its last still
        sample, held or already released. A calibration taken while the person settles (a leg
        still half raised) or at the hover of a set is then re-anchored where the leg lay before
        the first rep, as :meth:`_is_below` does for rests after it."""
        assert self.mounting is not None
        a = self._start_angle(self.mounting, h, _after_last_still(h[3], k))
        return a if a is not None and self._in_drop_zone(a) else None

    def _start_pose(self, h: Held, lo: int) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None:
        """(up, uref, quat, lever) where a movement beginning at held sample ``lo`` started: the
        sample before it (held, or the one before the held samples; None if there is none)."""
        if lo > 0:
            return h[1][lo - 1], h[2][lo - 1], h[7][lo - 1], h[8][lo - 1]
        return self._held_prev_pose

    def _start_angle(self, m: Mounting, h: Held, lo: int) -> float | None:
        """The angle by ``m`` where a movement beginning at held sample ``lo`` started (:meth:`_start_pose`)."""
        pose = self._start_pose(h, lo)
        if pose is None:
            return None
        return _angle_at(m, *pose[:3])

    def _angles(self, h: Held) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Angles with the current mounting, up to the first rest that shows a strap slip; at a
        rest near the reference pose (or a level one) after a movement the mounting is
        re-anchored (:meth:`_anchor`).

        One decision level at a time (:meth:`_level`); the pieces released level by level are
        joined once at the end (joining at each level copied the rest of the chunk every time).
        """
        parts: list[tuple[FloatArray, FloatArray, BoolArray]] = []
        rest_h: Held | None = h
        while rest_h is not None:
            piece, rest_h = self._level(rest_h)
            parts.append(piece)
        if len(parts) == 1:
            return parts[0]
        parts = [p for p in parts if len(p[0])]
        if len(parts) <= 1:
            return parts[0] if parts else _EMPTY
        return tuple(_joined(list(x)) for x in zip(*parts))  # type: ignore[return-value]

    def _level(self, h: Held) -> tuple[tuple[FloatArray, FloatArray, BoolArray], Held | None]:
        """One decision level of :meth:`_angles`: the samples released with the current mounting
        (up to where it is re-anchored, lowered, held or ends), and the samples left for the next
        level with the mounting that follows (None: none left, or held)."""
        t, up, uref, still, rest, w, racc, quat, lever = h
        m = self.mounting
        assert m is not None
        events = rest.nonzero()[0]  # (np.flatnonzero without its wrappers)
        # angles only where a decision needs them (the rests) and for the samples released with
        # m: after a split the tail gets the next mounting's (elementwise, so the same numbers).
        # All at once while the raise direction is checked (every still sample is looked at) and
        # for a short piece with rests (a live chunk: one call costs less than two)
        at_once = self._proven < self.s.sign_proofs or (len(t) <= _ANGLES_AT_ONCE and len(events) > 0)
        full = m.angles(up, uref, quat, self._out_rows.take(len(t))) if at_once else None

        def angle_upto(j: int) -> FloatArray:  # the angles of samples [0, j)
            return full[:j] if full is not None else m.angles(up[:j], uref[:j], quat[:j], self._out_rows.take(j))

        # movement statistics since the mounting was made, sample by sample (sequential sums:
        # identical for any chunking; nominal steps, so a gap weighs like one sample). In C
        # (``movement_sums``, ``level_tests``; numpy forms in .angle_reference)
        dt = self.calib.dt_nominal_s

        def upto(j: int) -> None:  # the statistics of the samples released with m (before j)
            # the running sums only as far as j (the tail is summed on with the next mounting)
            cov = np.empty((3, 3))
            m.turned_deg = movement_sums(w, still, j, dt, m.turned_deg, m.cov, cov)
            m.cov = cov

        # until sign_proofs movements from the neutral pose went up, each is checked: from the
        # first still sample there, samples are held until the next movement shows its way
        j_chk = len(t)
        if self._proven < self.s.sign_proofs:
            assert full is not None
            cand = (still & (np.abs(full) <= self.s.slip_zone_deg)).nonzero()[0]
            j_chk = int(cand[0]) if len(cand) else len(t)
        s0 = -1  # (the first rest event that shows a slip or a far rest: none)
        e_anchor = -1  # (the rest event that re-anchors: none)
        tilt_anchor = math.nan  # (its heading-free tilt)
        if len(events):
            up_ev, uref_ev = up[events], uref[events]  # (taken once: each use below reads them)
            angle_ev = full[events] if full is not None else m.angles(up_ev, uref_ev, quat[events])
            along = up_ev @ m.axis
            ref_along = uref_ev @ m.axis if m.u_ref is None else m.along_ref
            # the tests at the events, in C (``level_tests``; level_tests_reference in .angle_reference is
            # its numpy form). A slip: only rests near the reference pose count (at the top of a rep the
            # thigh may be abducted or rotated: gravity out of the plane without any slip; at the bottom it
            # is not), or a far one, or a rest far from the neutral pose. Re-anchoring: heading-free (after
            # the person turned round the heading from the gyro is wrong until then), near the reference
            # pose or where gravity lies in the plane; the first of those after a movement of
            # axis_rotation_deg since the last anchoring (movement_anchor's count, only as far as that
            # rest: the next level counts on from there). Whichever of the two comes first ends the level:
            # the events after it are not read (the decisions below depend only on which comes first)
            ref = uref if m.u_ref is None else m._rows(m.u_ref, len(t))
            s0, e_anchor, tilt_anchor = level_tests(
                up, ref, angle_ev, along, ref_along, m._axis, m.offset_deg, self.s.slip_zone_deg, self._posture_deg,
                self._slip_sin, self._slip_far_sin, self._anchor_sin, w, still, rest, dt, m.turned_deg, m.anchored_deg,
                self.s.axis_rotation_deg)
        slip_j = int(events[s0]) if s0 >= 0 else len(t)
        lim = min(j_chk, slip_j)
        j_anchor = int(events[e_anchor]) if e_anchor >= 0 else len(t)
        # rests before the sign check and the first slip: a lower neutral pose (the sign check's own rest
        # too: its first still sample is released before the check). The first, as _is_below finds it,
        # in C (``first_lower_rest``: the rows holding an accelerometer mean, their rest angles); only as
        # far as the re-anchoring rest (a lower one after it is the next level's)
        lower: list[tuple[int, float]] = []
        if self._may_lower():  # (else no rest is below: _is_below)
            found = first_lower_rest(racc, min(j_chk + 1, slip_j, j_anchor + 1), self._raw_ref, m._axis, m.offset_deg,
                                     -self._posture_deg, -self.s.neutral_drop_deg)
            lower = [] if found is None else [found]
        if not m.plane and self._proven == 0:
            # an axis along the lever arm was fitted to the sensor turning about the thigh
            # (``roll_axis_deg``); not once a movement from the neutral pose went up about it (a raise
            # was seen: the lever arm's estimate is what is wrong then)
            ln2 = np.einsum("ni,ni->n", lever, lever)
            along = lever @ m.axis
            roll = np.flatnonzero((ln2 > self.s.roll_lever_min_m**2) & (ln2 < self.s.roll_lever_max_m**2)
                                  & (along * along > self._roll_cos**2 * ln2))
            # (and not a level axis that had turned farther than a strap is turned at the first
            # such sample since the fit: the lever arm's estimate is what is wrong then too, still
            # carrying the strap adjusted before the raise; about an upright thigh's long axis the
            # angle read may be anything). Decided once per fit, at that sample: any chunking
            # meets it alike
            j_stop = min(lim, j_anchor, lower[0][0] if lower else len(t))
            if len(roll) and not self._roll_off and int(roll[0]) < j_stop and abs(m.along_ref) <= self._fit_level_sin:
                a_roll = float(angle_upto(int(roll[0]) + 1)[-1])
                self._roll_off = abs(a_roll - m.offset_deg) >= self.s.roll_max_turn_deg
            if len(roll) and not self._roll_off and int(roll[0]) < j_stop:
                j = int(roll[0])
                upto(j + 1)
                self._probing = False
                self.n_roll_refits += 1
                self._prev_axis = None
                self._roll_sign = True
                # the rep segmenter restarts here: an excursion read about the long axis (the strap
                # being turned) is no rep
                self.restarts.append(float(t[j]))
                # the strap turned, the leg did not: the first rest after it is the new reference
                # rest, at the reference rest's angle (a strap is turned with the leg at rest, and
                # where this turn began may lie in an earlier chunk); else that rest reads the turn
                self._roll_rebase_deg = m.offset_deg
                return self._hold_from(h, angle_upto(j + 1), j)
        if lower and lower[0][0] <= j_anchor:
            j, a_j = lower[0]
            upto(j)
            self.mounting = self._lowered(m, a_j)
            self._offset = self.mounting.offset_deg
            return (t[:j], angle_upto(j), still[:j]), tuple(x[j:] for x in h)  # type: ignore[return-value]
        if j_anchor < lim:
            j = j_anchor
            upto(j + 1)
            self.mounting = self._anchor(m, up[j], uref[j], quat[j], lever[j], tilt_anchor)
            head = (t[: j + 1], angle_upto(j + 1), still[: j + 1])
            if j + 1 == len(t):
                return head, None
            return head, tuple(x[j + 1 :] for x in h)  # type: ignore[return-value]
        if j_chk < len(t) and (s0 < 0 or j_chk <= slip_j):
            upto(j_chk + 1)
            self._pending, self._pending_sign = (m, self._u_ref, self._offset, self._raw_ref), True
            self._pending_t0 = float(t[j_chk])
            self._pending_rest_pose = (up[j_chk].copy(), uref[j_chk].copy(), quat[j_chk].copy())
            return self._hold_from(h, angle_upto(j_chk + 1), j_chk)
        if s0 >= 0:
            self._probing = False  # (a slip or a far rest: the first movement goes out as it is)
            j = slip_j
            upto(j + 1)
            a_slip = float(angle_ev[s0])
            if a_slip > self._posture_deg:
                # far from the neutral pose: a new posture or the top of a rep; the next movement tells
                self._pending = (m, self._u_ref, self._offset, self._raw_ref)
                self._pending_far_deg = a_slip
                self._u_ref = up[j].copy()
                self._raw_ref = racc[j] / norm3(racc[j])
                self._offset = 0.0
            else:
                # the strap moved: this rest is the new reference; re-fit at the next movement
                self.n_refits += 1
                self._u_ref = up[j].copy()
                self._raw_ref = racc[j] / norm3(racc[j])
                self._offset = a_slip
            return self._hold_from(h, angle_upto(j + 1), j)
        upto(len(t))
        return (t, angle_upto(len(t)), still), None

    def _anchor(self, m: Mounting, up_j: FloatArray, uref_j: FloatArray, quat_j: FloatArray, lever_j: FloatArray,
                tilt_j: float = math.nan) -> Mounting:
        """``m`` re-anchored at a rest (``Mounting.anchored``, with the rest's tilt by ``m`` as its
        angle): once the thigh turned ``axis_refit_deg`` since the axes were fitted, the flexion
        axis is re-fitted to every movement seen with ``m`` (the principal direction of the rate,
        signed as before, made level) and the long axis chosen by the lever arm; away from the
        reference pose only if
        the first fit was no raise (a strap adjusted, turning the sensor about the long axis:
        the principal axis is then over ``refit_far_deg`` from it), since a clean first movement
        (a shift to a raised baseline) is usually truer than reps with abduction and rotation.
        A mounting on a fixed reference rest (after a slip or a new posture) enters the plane at
        its first anchoring (its attitude there is not kept)."""
        axis, long = m.axis, m.long
        # (the tilt there: ``tilt_j`` if the caller has it already, as ``level_tests`` gives it)
        angle_j = float(m.tilt_angles(up_j[None], uref_j[None])[0]) if math.isnan(tilt_j) else tilt_j
        refit = m.turned_deg >= self.s.axis_refit_deg
        if refit:
            top = eigh_vectors(m.cov)[:, -1]
            fitted = top if float(top @ m.axis) >= 0 else -top
            low = abs(angle_j - m.offset_deg) <= self.s.slip_zone_deg
            refit = low or float(fitted @ m.axis) < self._refit_far_cos
            if refit:
                ref = uref_j if m.u_ref is None else m.u_ref  # the reference rest's up vector
                axis = level_axis(fitted / norm3(fitted), ref)
                long = long_axis_from_lever(axis, ref, lever_j, self.s.lever_min_m)
                self.n_axis_refits += 1
        if long is None:  # a fixed reference rest, not yet in the plane: it enters it here
            ref = uref_j if m.u_ref is None else m.u_ref
            axis = level_axis(axis, ref)
            long = long_axis_flat(axis, ref)
        return m.anchored(axis, long, up_j, uref_j, quat_j, angle_j, refit)


def _after_last_still(still: BoolArray, k: int, lo: int = 0) -> int:
    """The first sample after the last still one in ``still[lo : k + 1]`` (``lo`` if none): where
    the movement that reached sample ``k`` began."""
    idx = np.flatnonzero(still[lo : k + 1])
    return lo + int(idx[-1]) + 1 if len(idx) else lo


def _minus_row(x: FloatArray, v: FloatArray) -> FloatArray:
    """``x - v`` for ``x`` (N, 3) and ``v`` (3,): the same subtractions, in one C pass over the rows
    (``rows_minus``; numpy's broadcast over rows of 3 runs its inner loop once per row, three times
    slower, and three column passes still cost three strided sweeps)."""
    out = np.empty(x.shape)
    rows_minus(x, v, out)
    return out


def _settled(racc: BoolArray | FloatArray) -> BoolArray:
    """(N,) the rows of the held accelerometer means (``racc``) that hold one: rest events and the
    first sample of each still run (an accelerometer mean is never exactly zero)."""
    out: BoolArray = (racc[:, 0] != 0.0) | (racc[:, 1] != 0.0) | (racc[:, 2] != 0.0)  # (any(axis=1), cheaper)
    return out


def _cat(
    a: tuple[FloatArray, FloatArray, BoolArray], b: tuple[FloatArray, FloatArray, BoolArray]
) -> tuple[FloatArray, FloatArray, BoolArray]:
    if not len(b[0]):
        return a
    if not len(a[0]):
        return b
    return tuple(_joined([x, y]) for x, y in zip(a, b))  # type: ignore[return-value]


_EMPTY: tuple[FloatArray, FloatArray, BoolArray] = (np.empty(0), np.empty(0), np.empty(0, dtype=bool))
_NO_ROWS: npt.NDArray[np.intp] = np.empty(0, dtype=np.intp)
