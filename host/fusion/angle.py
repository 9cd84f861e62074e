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
  (the pelvis's mediolateral axis). Until that re-fit the angle is the heading-free tilt
  ``atan2(up . l0, up . k0) + offset`` (``k0`` the part of ``u_ref`` normal to ``f``,
  ``l0 = k0 x f``: the up vector's rotation about ``f``, exact in the plane, abduction and
  rotation entering to second order), and after it the plane's angle differs from that tilt
  by at most 6 deg (more means a heading gone wrong);
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
  rep segmenter restarts there (the posture change itself is no rep).

Samples whose angle needs an axis not yet known are held back and released once it is
found, so the first rep is never lost. The reference rest of the first mounting is the
calibration rest; samples before it (analysed backward by the orientation stage) are held
with the rest. Decisions depend only on samples up to the current one, and all per-sample
arithmetic runs in C (``TiltKernel``, ``hip_angles``, ``tilt_from``), so any chunking of a
stream gives bit-identical angles.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from .._fastcore import hip_angles, tilt_angles
from ..model import FloatArray
from ..settings import Settings
from .calibration import Calibration
from .orientation import OrientationFilter, run_backward

BoolArray = npt.NDArray[np.bool_]
SLIP_ZONE_DEG = 15.0
"""Strap slips are looked for at rests within this of the reference rest's angle ..."""
SLIP_FAR_SIN = math.sin(math.radians(40.0))
"""... or anywhere when gravity is more than 40 degrees out of the plane (more than a thigh's
abduction or rotation during a rep)."""
LEVER_MIN_M = 0.05
"""A lever arm shorter than this (normal to the flexion axis) does not choose the long axis."""
PLANE_CORRECTION_MAX_DEG = 6.0
"""The exercise plane's angle differs from the tilt about the flexion axis by at most this (see
``Mounting.angles``)."""
REFIT_FAR_DEG = 30.0
"""Away from the reference pose the flexion axis is re-fitted only if the movements' principal
axis is this far from it (the first fit was no raise); near it, always."""
SIGN_PROOFS = 2
"""Movements from the neutral pose that must go up (by half ``axis_rotation_deg``) before the
raise direction is trusted; until then each rest there holds the samples until the next
movement shows its direction, and a movement down flips it."""
_SLICE = 8192
"""Longest piece of a chunk the orientation stage handles at once (its outputs stay in cache)."""


def fit_axis(
    t: FloatArray, rate_dps: FloatArray, still: BoolArray, min_rotation_deg: float, t_prev_s: float
) -> tuple[int, FloatArray] | None:
    """Flexion axis from the first movement of ``min_rotation_deg`` since a still sample.

    ``rate_dps`` (N, 3) is the bias-corrected rate, ``still`` (N,) the still flags; the
    rotation of a movement is the integral of ``|rate|`` since the last still sample.
    Returns ``(k, axis)`` with ``k`` the sample where the movement reached the rotation and
    ``axis`` (3,) the unit principal direction of the movement's rate, signed so that the
    movement is a positive rotation; None if no movement is large enough.
    """
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
    lo = int(last_still[k]) + 1
    seg = rate_dps[lo : k + 1] * np.sqrt(dt[lo : k + 1])[:, None]
    _, vecs = np.linalg.eigh(seg.T @ seg)
    axis = vecs[:, -1]
    if float((rate_dps[lo : k + 1] @ axis) @ dt[lo : k + 1]) < 0:
        axis = -axis
    return k, axis / np.linalg.norm(axis)


class Mounting:
    """The sensor's flexion axis, long axis and reference rest: what turns an attitude into a hip angle.

    ``axis`` is the flexion axis ``f`` (sensor frame, signed so the raise is positive), ``long``
    the thigh's long axis ``a`` (sensor frame, normal to ``f``). ``u_ref`` is None for the
    calibration rest, whose up vector the orientation stage reports per sample (it improves
    with the accelerometer-bias estimate) and where the stage's I frame is the sensor frame, or
    a fixed (3,) vector with ``q_ref`` (4,), the attitude there (the rest after a strap slip or
    a new posture). ``cov`` (3, 3) sums ``w w^T dt`` of the movements seen with this mounting and
    ``turned_deg`` their rotation since the axis was last fitted (the refit of :meth:`refined`).
    """

    def __init__(
        self,
        axis: FloatArray,
        u_ref: FloatArray | None,
        offset_deg: float,
        along_ref: float,
        q_ref: FloatArray | None = None,
        long: FloatArray | None = None,
        u_neutral: FloatArray | None = None,
        cov: FloatArray | None = None,
        turned_deg: float = 0.0,
        anchored_deg: float = 0.0,
        frame_i: tuple[FloatArray, FloatArray] | None = None,
        plane: bool = True,
    ) -> None:
        ref = u_neutral if u_neutral is not None else u_ref
        if plane and ref is not None:
            axis = level_axis(axis, ref)
            along_ref = float(ref @ axis)
        self.plane = plane
        self.max_correction_deg = PLANE_CORRECTION_MAX_DEG
        if long is not None:
            long = long - float(long @ axis) * axis
            long = long / np.linalg.norm(long)
        self.axis = axis
        self.u_ref = u_ref
        self.q_ref = q_ref
        self.offset_deg = offset_deg
        self.along_ref = along_ref  # up . f at the reference rest
        self.long = long if long is not None else long_axis_flat(axis, ref)
        self.cov = np.zeros((3, 3)) if cov is None else cov
        self.turned_deg = turned_deg
        self.anchored_deg = anchored_deg  # turned_deg at the last re-anchoring
        qr = np.asarray(q_ref if q_ref is not None else _Q_ONE, dtype=np.float64)
        self._g_ref = None if u_ref is None else _rotate(qr, u_ref)[None, :]
        # the long and flexion axes at the reference pose, I frame (frame_i: re-anchored at a rest)
        self.long_i, self.axis_i = frame_i if frame_i is not None else (_rotate(qr, self.long), _rotate(qr, axis))
        self._long_ref, self._axis_ref = self.long_i.tolist(), self.axis_i.tolist()
        self._long = self.long.tolist()
        self._axis_list = axis.tolist()

    def angles(self, up: FloatArray, uref: FloatArray, quat: FloatArray) -> FloatArray:
        """Hip angles (N,) deg of samples with up vectors ``up`` (N, 3), calibration-rest up
        vectors ``uref`` (N, 3) and attitudes ``quat`` (N, 4): the long axis's flexion in the
        exercise plane (``reference_hip_angle``) once the axes were re-fitted at a rest after a
        movement (``plane``), the heading-free tilt about the first fitted axis until then (a
        first fit may be a strap being adjusted, and the long axis is not known yet)."""
        tilt = self.tilt_angles(up, uref)
        if not self.plane:
            return tilt
        out = np.empty(len(up))
        g_ref = uref if self._g_ref is None else np.broadcast_to(self._g_ref, up.shape)
        hip_angles(up, g_ref, quat, self._long, self._long_ref, self._axis_ref, self.offset_deg, out)
        # the plane's correction of the tilt is of second order in the abduction and rotation
        # (under 6 deg for 20 of each at a raise of 80): a larger one means the heading from the
        # gyro went wrong (a gyro bias mis-estimated along gravity, which no rest corrects), so
        # it is limited to plane_correction_max_deg (elementwise: any chunking, the same angles)
        d = np.remainder(out - tilt + 180.0, 360.0) - 180.0
        res: FloatArray = tilt + np.clip(d, -self.max_correction_deg, self.max_correction_deg)
        return res

    def anchored(
        self, axis: FloatArray, long: FloatArray, up_j: FloatArray, uref_j: FloatArray, quat_j: FloatArray, angle_j: float, refit: bool
    ) -> "Mounting":
        """The mounting re-anchored at a rest near the reference pose, sample ``j`` (up vector,
        calibration-rest up vector, attitude, angle there), with axes ``axis``, ``long`` (sensor
        frame; ``refit``: re-fitted, the rotation count restarts).

        The reference rest and its gravity stay; the exercise plane's heading is taken from the
        attitude at ``j``: the flexion axis there (tilt drift undone, level), and the long axis
        there turned back about it by ``angle_j - offset`` to the reference pose. So the heading
        comes from the gyro over one rep, not since the reference rest (its drift, or the person
        turning round between sets, never reaches the angle).
        """
        g_ref = uref_j if self._g_ref is None else self._g_ref[0]
        f_i = _level(_tilted_back(quat_j, up_j, g_ref, axis), g_ref)
        a_now = _tilted_back(quat_j, up_j, g_ref, long)
        a_now = a_now - float(a_now @ f_i) * f_i
        a_now = a_now / np.linalg.norm(a_now)
        d = math.radians(angle_j - self.offset_deg)
        long_i = math.cos(d) * a_now - math.sin(d) * np.cross(f_i, a_now)  # turned by -d about f_i
        turned = 0.0 if refit else self.turned_deg
        along = float(uref_j @ axis) if self.u_ref is None else float(self.u_ref @ axis)
        return Mounting(axis, self.u_ref, self.offset_deg, along, self.q_ref, long, None, self.cov, turned, turned, (long_i, f_i), True)

    def tilt_angles(self, up: FloatArray, uref: FloatArray) -> FloatArray:
        """The heading-free angle (N,) deg: the up vector's rotation about the flexion axis from
        the reference up vector, plus the offset (exact for a movement in the exercise plane)."""
        ref = uref if self.u_ref is None else np.broadcast_to(self.u_ref, up.shape)
        out = np.empty(len(up))
        tilt_angles(up, ref, self._axis_list, self.offset_deg, out)
        return out


_Q_ONE = np.array([1.0, 0.0, 0.0, 0.0])


def _rotate(q: FloatArray, v: FloatArray) -> FloatArray:
    """v (3,) rotated by the unit quaternion q (4,) (w, x, y, z)."""
    w, u = float(q[0]), q[1:]
    t = 2.0 * np.cross(u, v)
    out: FloatArray = v + w * t + np.cross(u, t)
    return out


def _tilted_back(quat: FloatArray, up: FloatArray, g_ref: FloatArray, v: FloatArray) -> FloatArray:
    """The sensor-frame vector ``v`` in the I frame at attitude ``quat``, the I frame's tilt drift
    undone: the smallest rotation taking gravity's direction ``quat up`` to ``g_ref``
    (as ``hip_angles`` does per sample)."""
    g = _rotate(quat, up)
    w = _rotate(quat, v)
    k = np.cross(g, g_ref)
    c = float(g @ g_ref)
    out: FloatArray = c * w + np.cross(k, w) + k * (float(k @ w) / (1.0 + c))
    return out


def _level(v: FloatArray, g: FloatArray) -> FloatArray:
    x = v - float(v @ g) * g
    out: FloatArray = x / np.linalg.norm(x)
    return out


def level_axis(axis: FloatArray, up_ref: FloatArray) -> FloatArray:
    """The fitted flexion axis made level at the reference rest (normal to gravity there).

    The hip's flexion axis is the pelvis's mediolateral axis, level whenever the pelvis is
    (lying, kneeling, in a plank, standing), at every hip angle of a pure flexion. A fitted
    axis also carries the abduction and rotation of the movements it was fitted to (5-20 deg
    over a raise of 80 deg tilts it by up to 15 deg); the part of that tilt toward gravity is
    removed here. An axis more than 60 deg out of level is kept as it is (not a hip raise).
    """
    x = axis - float(axis @ up_ref) * up_ref
    n = float(np.linalg.norm(x))
    if not n > 0.5:
        return axis
    out: FloatArray = x / n
    return out


def long_axis_flat(axis: FloatArray, up_ref: FloatArray | None) -> FloatArray:
    """The long axis of a thigh lying level at the reference rest: normal to the flexion axis
    and to gravity there (any normal to the axis if there is no reference up vector)."""
    f = np.asarray(axis, dtype=np.float64)
    if up_ref is not None:
        x = np.cross(f, up_ref)
        n = float(np.linalg.norm(x))
        if n > 1e-6:
            out: FloatArray = x / n
            return out
    k = int(np.argmin(np.abs(f)))
    x = np.cross(f, np.eye(3)[k])
    return x / np.linalg.norm(x)


def long_axis_from_lever(axis: FloatArray, up_ref: FloatArray, lever_m: FloatArray, long: FloatArray) -> FloatArray:
    """Level or upright thigh at the reference rest, whichever the lever arm (hip -> sensor) is
    nearer: the sensor sits on the thigh, so that arm runs close to the long axis (it leans
    toward the thigh's front by atan(3-8 cm / 15-25 cm), 7-28 deg, too much to use it as the
    axis itself, enough to tell a lying thigh from a hanging one). ``long`` if the arm is too
    short to say."""
    f = axis
    lev = lever_m - float(lever_m @ f) * f
    n = float(np.linalg.norm(lev))
    if not n > LEVER_MIN_M:
        return long
    flat = long_axis_flat(f, up_ref)
    upright = up_ref - float(up_ref @ f) * f
    nu = float(np.linalg.norm(upright))
    if not nu > 1e-6:
        return flat
    upright = upright / nu
    return flat if abs(float(lev @ flat)) >= abs(float(lev @ upright)) else upright


Held = tuple[FloatArray, FloatArray, FloatArray, BoolArray, BoolArray, FloatArray, FloatArray, FloatArray]
"""Samples whose angle waits for an axis: time, up, reference up, still, rest events, rate about
the bias, attitude (N, 4), lever arm (N, 3)."""
AngleFn = Callable[[FloatArray, FloatArray, FloatArray], FloatArray]
"""Hip angles from up vectors, their reference up vectors and attitudes (a mounting's, or the unsigned tilt)."""


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
        self._tilt = OrientationFilter(settings, calib.gravity_ref, self._bias0, calib.dt_nominal_s)
        self._u_ref: FloatArray | None = None  # None: the calibration rest (reported per sample)
        self._q_ref: FloatArray | None = None  # the attitude at a fixed reference rest
        self._offset = 0.0
        self.mounting: Mounting | None = None
        self.n_refits = 0
        self.n_axis_refits = 0

        self._slip_sin = math.sin(math.radians(settings.slip_deg))
        self._anchor_sin = math.sin(math.radians(settings.anchor_level_deg))
        self._refit_far_cos = math.cos(math.radians(REFIT_FAR_DEG))
        self._held: list[Held] = []
        self._held_t_prev = math.nan  # time of the sample before the held ones (for their first step)
        self._pre: Held | None = None
        self._prev_axis: FloatArray | None = None
        self._posture_deg = settings.posture_change_deg
        # a rest far from the neutral pose, waiting for the next movement: (mounting, u_ref, offset) before it
        self._pending: tuple[Mounting, FloatArray | None, float, FloatArray | None] | None = None
        self._pending_sign = False  # the pending rest is one near the neutral pose (a sign check)
        self._proven = 0  # movements from the neutral pose that went up since the sign was set
        self.n_posture_changes = 0
        self.n_sign_flips = 0
        self.restarts: list[float] = []
        """Times of the first sample of each new posture (the caller restarts rep segmentation there
        and clears the list); always among the samples released by the same ``update`` call."""
        if pre is not None and len(pre[0]):
            t_pre, a_pre, g_pre = (np.asarray(x, dtype=np.float64) for x in pre)
            up, uref, quat, still, rest, lever = run_backward(
                settings, calib.gravity_ref, self._bias0, calib.dt_nominal_s, t_pre, a_pre, g_pre, calib.start_s
            )
            self._pre = (t_pre, up, uref, still, rest, g_pre - self._bias0, quat, lever)

    # ------------------------------------------------------------------ public
    def update(self, t: FloatArray, acc: FloatArray, gyr: FloatArray) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Take a chunk: ``t`` (N,) s, ``acc`` (N, 3) g, ``gyr`` (N, 3) deg/s (any chunking)."""
        n = len(t)
        if n == 0:
            return _EMPTY
        t, acc, gyr = (np.asarray(x, dtype=np.float64) for x in (t, acc, gyr))
        if n > _SLICE:
            parts = [self.update(t[i : i + _SLICE], acc[i : i + _SLICE], gyr[i : i + _SLICE]) for i in range(0, n, _SLICE)]
            parts = [p for p in parts if len(p[0])]
            if not parts:
                return _EMPTY
            return tuple(np.concatenate(x) for x in zip(*parts))  # type: ignore[return-value]
        up, uref, quat, still, rest, lever = self._tilt.update_pose(t, acc, gyr)
        held: Held = (t, up, uref, still, rest, gyr - self._bias0, quat, lever)
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
                    return _cat(out, self._release_still(self._pending[0].angles))
                if self._pending is None and self._pre is None:
                    return _cat(out, self._release_still(self._unsigned))
            return out
        return self._angles(held)

    def finish(self) -> tuple[FloatArray, FloatArray, BoolArray]:
        """End of stream: release held samples.

        Without a movement after the reference rest the axis comes from the movement before
        the calibration rest (backward in time, the last movement into the rest is the first
        away from it); without any, the angle is the unsigned tilt from the reference rest.
        """
        if self._pending is not None:
            # the stream ended at a held rest: it stays a pose of the current posture
            self.mounting, self._u_ref, self._offset, self._q_ref = self._pending
            self._pending, self._pending_sign = None, False
            t, up, uref, still, quat = self._take_held()
            return t, self.mounting.angles(up, uref, quat), still
        if self.mounting is not None or (not self._held and self._pre is None):
            return _EMPTY
        if self._pre is not None:
            t_pre, _, uref_pre, still_pre, _, w_pre, _, _ = self._pre
            found = fit_axis(-t_pre[::-1], -w_pre[::-1], still_pre[::-1], self.s.axis_rotation_deg, -self.calib.start_s)
            if found is not None:
                k = len(t_pre) - 1 - found[0]
                self.mounting = Mounting(found[1], None, 0.0, float(uref_pre[k] @ found[1]), u_neutral=uref_pre[k])
                t, up, uref, still, quat = self._take_held()
                return t, self.mounting.angles(up, uref, quat), still
        t, up, uref, still, quat = self._take_held()
        return t, self._unsigned(up, uref, quat), still

    def _unsigned(self, up: FloatArray, uref: FloatArray, quat: FloatArray | None = None) -> FloatArray:
        """Angle without a flexion axis: the unsigned tilt from the reference rest, plus its offset."""
        ref = uref if self._u_ref is None else np.broadcast_to(self._u_ref, up.shape)
        cos = np.clip(np.einsum("ij,ij->i", up, ref), -1.0, 1.0)
        out: FloatArray = np.degrees(np.arccos(cos)) + self._offset
        return out

    def diagnostics(self) -> dict[str, float]:
        """Gyro and accelerometer bias, gaps, bias updates, still fraction, mounting re-fits, the axis."""
        d = self._tilt.diagnostics()
        d["axis_found"] = float(self.mounting is not None)
        d["mount_refits"] = float(self.n_refits)
        d["posture_changes"] = float(self.n_posture_changes)
        d["sign_flips"] = float(self.n_sign_flips)
        if self.mounting is not None:
            d.update({f"axis_{c}": float(v) for c, v in zip("xyz", self.mounting.axis)})
        return d

    # ------------------------------------------------------------------ machinery
    def _take_held(self) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray, FloatArray]:
        """All held samples (those before the calibration rest first), in time order; clears them:
        time, up, reference up, still, attitude."""
        parts = ([self._pre] if self._pre is not None else []) + self._held
        self._held, self._pre = [], None
        if not parts:
            return np.empty(0), np.empty((0, 3)), np.empty((0, 3)), np.empty(0, dtype=bool), np.empty((0, 4))
        return tuple(np.concatenate([p[j] for p in parts]) for j in (0, 1, 2, 3, 6))  # type: ignore[return-value]

    def _hold_from(self, h: Held, angle: FloatArray, j: int) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Release ``h`` up to sample ``j`` (with ``angle``); hold the rest until an axis is fitted."""
        t, still = h[0], h[3]
        self.mounting = None
        self._held_t_prev = float(t[j])
        head = (t[: j + 1], angle[: j + 1], still[: j + 1])
        if j + 1 == len(t):
            return head
        self._held = [tuple(x[j + 1 :] for x in h)]  # type: ignore[list-item]
        return _cat(head, self._try_fit())

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
        t, up, uref, still, quat = h[0], h[1], h[2], h[3], h[6]
        idx = np.flatnonzero(still)
        if not len(idx):
            return _EMPTY
        j = int(idx[-1])
        self._held_t_prev = float(t[j])
        self._held = [tuple(x[j + 1 :] for x in h)] if j + 1 < len(t) else []  # type: ignore[list-item]
        return t[: j + 1], angles(up[: j + 1], uref[: j + 1], quat[: j + 1]), still[: j + 1]

    def _release_to_movement(self, h: Held, k: int, before: AngleFn) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Release ``h`` up to sample ``k`` of a movement just fitted: the samples up to the last
        still one before it with ``before`` (the angles ``_release_still`` would have given them
        chunk by chunk: chunk invariance), the movement itself with the new mounting."""
        assert self.mounting is not None
        t, up, uref, still, quat = h[0], h[1], h[2], h[3], h[6]
        lo = int(np.flatnonzero(still[: k + 1])[-1]) + 1 if still[: k + 1].any() else 0
        self._held = []
        return _cat(
            (t[:lo], before(up[:lo], uref[:lo], quat[:lo]), still[:lo]),
            (t[lo : k + 1], self.mounting.angles(up[lo : k + 1], uref[lo : k + 1], quat[lo : k + 1]), still[lo : k + 1]),
        )

    def _try_fit(self) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Axis unknown: fit it to the held samples' first large movement.

        When found at held sample ``k``, the held samples up to ``k`` (and any from before the
        calibration rest) are released with the new mounting, and the rest of the held
        samples go through the normal path, slip checks included, as if they came later.
        """
        plain = self._pending is None and self._pre is None  # still samples went out unsigned (update)
        h = self._merged_held()
        assert h is not None
        t, up, uref, still, rest, w, quat, _ = h
        found = fit_axis(t, w, still, self.s.axis_rotation_deg, self._held_t_prev)
        if found is None:
            return _EMPTY
        k, axis = found
        if self._pending is not None and self._pending_sign:
            old = self._pending
            self._pending, self._pending_sign = None, False
            self.mounting = old[0]
            a_k = float(old[0].angles(up[k : k + 1], uref[k : k + 1], quat[k : k + 1])[0])
            half = 0.5 * self.s.axis_rotation_deg
            if a_k < -half:
                # the leg left the neutral pose downward: the raise goes the other way (the first
                # movement was a posture change, e.g. kneeling down before bird dogs)
                self.n_sign_flips += 1
                self._proven = 0
                self._offset = -old[2]
                ref_k = uref[k] if self._u_ref is None else self._u_ref
                self.mounting = self._new_mounting(axis, uref[k])
                self._prev_axis = axis
            elif a_k > half:
                self._proven += 1
            # the rest before the movement keeps the mounting it had
            head = self._release_to_movement(h, k, old[0].angles)
            if k + 1 == len(t):
                return head
            return _cat(head, self._angles(tuple(x[k + 1 :] for x in h)))  # type: ignore[arg-type]
        if self._pending is not None:
            old = self._pending
            self._pending = None
            if float(axis @ old[0].axis) < 0:
                # the movement lowers the leg: the far rest was the top of a rep (or a pose of
                # this posture); the held samples go on with the mounting they had
                self.mounting, self._u_ref, self._offset, self._q_ref = old
                self._held = [tuple(x[: k + 1] for x in h)]  # type: ignore[list-item]
                t_h, up_h, uref_h, still_h, quat_h = self._take_held()
                head = (t_h, self.mounting.angles(up_h, uref_h, quat_h), still_h)
                if k + 1 == len(t):
                    return head
                return _cat(head, self._angles(tuple(x[k + 1 :] for x in h)))  # type: ignore[arg-type]
            # it continues the raise: a new posture, neutral at that rest
            self.n_posture_changes += 1
            self._proven = 0
            self.restarts.append(float(t[0]))
        elif self._prev_axis is not None and float(axis @ self._prev_axis) < 0:
            axis = -axis  # a strap turns by less than 90 degrees: keep the raise positive
        self._prev_axis = axis
        self.mounting = self._new_mounting(axis, uref[k])
        if plain:
            head = self._release_to_movement(h, k, self._unsigned)  # (_unsigned: reference and offset unchanged)
        else:
            self._held = [tuple(x[: k + 1] for x in h)]  # type: ignore[list-item]
            t_h, up_h, uref_h, still_h, quat_h = self._take_held()
            head = (t_h, self.mounting.angles(up_h, uref_h, quat_h), still_h)
        if k + 1 == len(t):
            return head
        tail = self._angles(tuple(x[k + 1 :] for x in h))  # type: ignore[arg-type]
        return _cat(head, tail)

    def _new_mounting(self, axis: FloatArray, uref_k: FloatArray) -> Mounting:
        """A mounting of ``axis`` on the current reference rest (``uref_k``: the calibration
        rest's up vector at the fit, used when that rest is the reference)."""
        ref_k = uref_k if self._u_ref is None else self._u_ref
        return Mounting(axis, self._u_ref, self._offset, float(ref_k @ axis), self._q_ref, u_neutral=ref_k)

    def _angles(self, h: Held) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Angles with the current mounting, up to the first rest that shows a strap slip; the
        axes are re-fitted at rests near the reference pose once the thigh has turned
        ``axis_refit_deg`` since the last fit (the first movement's axis carries that
        movement's abduction and rotation; over several reps they average out)."""
        t, up, uref, still, rest, w, quat, lever = h
        m = self.mounting
        assert m is not None
        angle = m.angles(up, uref, quat)
        events = np.flatnonzero(rest)
        # movement statistics since the mounting was made, sample by sample (sequential sums:
        # identical for any chunking; nominal steps, so a gap weighs like one sample)
        moving = ~still
        dt = self.calib.dt_nominal_s
        wm = np.where(moving[:, None], w, 0.0)
        cov = np.cumsum(np.concatenate([m.cov[None], np.einsum("ni,nj->nij", wm, wm) * dt]), axis=0)[1:]
        turned = np.cumsum(np.concatenate([[m.turned_deg], np.sqrt(np.einsum("ni,ni->n", wm, wm)) * dt]))[1:]
        # until SIGN_PROOFS movements from the neutral pose went up, each is checked: from the
        # first still sample there, samples are held until the next movement shows its way
        j_chk = len(t)
        if self._proven < SIGN_PROOFS:
            cand = np.flatnonzero(still & (np.abs(angle) <= SLIP_ZONE_DEG))
            j_chk = int(cand[0]) if len(cand) else len(t)
        slip = np.empty(0, dtype=np.intp)
        far = np.empty(0, dtype=bool)
        j_fit = len(t)
        if len(events):
            along = up[events] @ m.axis
            ref_along = uref[events] @ m.axis if m.u_ref is None else m.along_ref
            # heading-free: at a rest the thigh lies in the exercise plane, but the heading from
            # the gyro may have turned (the person turned round, lying down again)
            tilt = m.tilt_angles(up[events], uref[events])
            # only rests near the reference pose: at the top of a rep the thigh may be abducted
            # or rotated (gravity out of the plane without any slip); at the bottom it is not
            low = np.abs(tilt - m.offset_deg) <= SLIP_ZONE_DEG
            off = np.abs(along - ref_along)
            far = tilt > self._posture_deg
            bad = ((off > self._slip_sin) & low) | (off > SLIP_FAR_SIN) | far
            slip = np.flatnonzero(bad)
            # a rest near the reference after a movement: it becomes the reference (its heading
            # from the gyro, its angle from gravity), and the axes are re-fitted once the thigh
            # has turned axis_refit_deg since they were
            moved = turned[events] - m.anchored_deg >= self.s.axis_rotation_deg
            # away from the reference pose only where gravity lies in the plane (flexion axis
            # level: no abduction or rotation at that rest, e.g. standing between sets)
            level = off <= self._anchor_sin
            anchor = np.flatnonzero((low | level) & ~bad & moved)
            j_fit = int(events[int(anchor[0])]) if len(anchor) else len(t)
        j_slip = int(events[int(slip[0])]) if len(slip) else len(t)
        if j_fit < j_chk and j_fit < j_slip:
            j = j_fit
            m.cov, m.turned_deg = cov[j], float(turned[j])
            tilt_j = float(m.tilt_angles(up[j : j + 1], uref[j : j + 1])[0])
            self.mounting = self._anchor(m, up[j], uref[j], quat[j], lever[j], tilt_j)
            head = (t[: j + 1], angle[: j + 1], still[: j + 1])
            if j + 1 == len(t):
                return head
            return _cat(head, self._angles(tuple(x[j + 1 :] for x in h)))  # type: ignore[arg-type]
        if j_chk < len(t) and (not len(slip) or j_chk <= j_slip):
            m.cov, m.turned_deg = cov[j_chk], float(turned[j_chk])
            self._pending, self._pending_sign = (m, self._u_ref, self._offset, self._q_ref), True
            return self._hold_from(h, angle, j_chk)
        if len(slip):
            j = j_slip
            m.cov, m.turned_deg = cov[j], float(turned[j])
            if far[int(slip[0])]:
                # far from the neutral pose: a new posture or the top of a rep; the next movement tells
                self._pending = (m, self._u_ref, self._offset, self._q_ref)
                self._u_ref, self._q_ref = up[j].copy(), quat[j].copy()
                self._offset = 0.0
            else:
                # the strap moved: this rest is the new reference; re-fit at the next movement
                self.n_refits += 1
                self._u_ref, self._q_ref = up[j].copy(), quat[j].copy()
                self._offset = float(angle[j])
            return self._hold_from(h, angle, j)
        m.cov, m.turned_deg = cov[-1], float(turned[-1])
        return t, angle, still

    def _anchor(self, m: Mounting, up_j: FloatArray, uref_j: FloatArray, quat_j: FloatArray, lever_j: FloatArray, angle_j: float) -> Mounting:
        """``m`` re-anchored at the rest sample ``j`` (up vector, attitude, angle); its flexion axis
        re-fitted to every movement seen with it (the principal direction of the rate, signed as
        before, level) and its long axis chosen by the lever arm once it turned ``axis_refit_deg``."""
        axis, long, refit = m.axis, m.long, m.turned_deg >= self.s.axis_refit_deg
        if refit:
            _, vecs = np.linalg.eigh(m.cov)
            axis = vecs[:, -1]
            if float(axis @ m.axis) < 0:
                axis = -axis
            # away from the reference pose only a first fit that was no raise is replaced (a strap
            # adjusted, turning the sensor about the long axis): there a clean first movement (a
            # shift to a raised baseline) is usually truer than reps with abduction and rotation
            low = abs(angle_j - m.offset_deg) <= SLIP_ZONE_DEG
            refit = low or float(axis @ m.axis) < self._refit_far_cos
            if not refit:
                axis = m.axis
        if refit:
            ref = uref_j if m.u_ref is None else m.u_ref  # the reference rest's up vector
            axis = level_axis(axis / np.linalg.norm(axis), ref)
            long = long_axis_from_lever(axis, ref, lever_j, long_axis_flat(axis, ref))
            self.n_axis_refits += 1
        elif not m.plane:
            m.anchored_deg = m.turned_deg  # the heading-free tilt needs no heading
            return m
        return m.anchored(axis, long, up_j, uref_j, quat_j, angle_j, refit)


def _cat(
    a: tuple[FloatArray, FloatArray, BoolArray], b: tuple[FloatArray, FloatArray, BoolArray]
) -> tuple[FloatArray, FloatArray, BoolArray]:
    if not len(b[0]):
        return a
    return tuple(np.concatenate([x, y]) for x, y in zip(a, b))  # type: ignore[return-value]


_EMPTY: tuple[FloatArray, FloatArray, BoolArray] = (np.empty(0), np.empty(0), np.empty(0, dtype=bool))
