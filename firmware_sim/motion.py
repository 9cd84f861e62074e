"""Movement programmes of a thigh: hip angle, posture and whole-body motion, with exact truth.

Every motion quantity is a smooth (C2) scalar *channel* of time that returns its value and
its first and second derivatives analytically, vectorised over an array of times, so the
sensor model can sample it at any (drifting, jittered) instant.

Frames
------
World: Z up, X/Y horizontal. Thigh frame: ``x`` distal (hip -> knee), ``z`` anterior
(out of the front of the thigh), ``y = z x x`` (mediolateral). Orientation of the thigh in
the world::

    R = Rz(yaw) . Ry(pitch) . Rx(roll) . Ry(-flex) . Rz(abduction) . Rx(axial)

``yaw/pitch/roll`` place the thigh's rest frame (the posture); ``flex`` is the hip
flexion about the thigh's mediolateral axis (positive: knee moves anteriorly), made of
``direction * theta + posture_flex + swing``; then ab/adduction about the floating
anterior axis and axial rotation about the thigh's long axis. This is the Cardan order of
the ISB joint coordinate system for the hip (Wu et al. 2002, J. Biomech. 35(4):543-548:
flexion first, then ab/adduction, then internal/external rotation), so ``theta`` stays the
angle of the thigh's long axis *projected on the exercise plane* (the rest frame's x-z
plane) whatever the off-axis motion: off-axis motion never enters the truth.

The sensor rides on a strap that may turn on the thigh (strap slip): the chain continues
with ``Rx(strap_roll) . Ry(strap_tilt)`` (the strap turns about the thigh's long axis and
cocks about its mediolateral axis), then the fixed mounting. The sensor position turns with
the strap about the hip joint (for tilts under 5 deg it moves by under 2 cm). ``theta`` is the *hip angle* (degrees, from
the calibration neutral pose, positive in the direction of the exercise; ``direction`` is
+1 for flexion exercises and -1 for extension exercises). At ``yaw = pitch = roll = 0`` the
thigh lies horizontal along +X with its front up (supine).

Postures (thigh rest frame, at yaw 0): supine and sitting ``(pitch 0, roll 0)``; standing
and quadruped ``(pitch 90, roll 0)`` (thigh vertical, front facing +X); plank
``(pitch ~10, roll 180)`` (thigh pointing to the feet and a little down, front facing the
floor).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Triple = tuple[FloatArray, FloatArray, FloatArray]

_X = np.array([1.0, 0.0, 0.0])
_Y = np.array([0.0, 1.0, 0.0])
_Z = np.array([0.0, 0.0, 1.0])


# --------------------------------------------------------------------------- profiles
def minimum_jerk(tau: FloatArray) -> Triple:
    """Minimum-jerk profile s(tau) = 10 tau^3 - 15 tau^4 + 6 tau^5 on [0, 1].

    Flash & Hogan (1985), "The coordination of arm movements", J. Neurosci. 5(7).
    Zero velocity and acceleration at both ends, so chained moves are C2.

    Parameters
    ----------
    tau : (N,) normalised time; values outside [0, 1] are clipped.

    Returns
    -------
    (s, ds/dtau, d2s/dtau2), each (N,).
    """
    u = np.clip(tau, 0.0, 1.0)
    u2 = u * u
    s = u2 * u * (10.0 - 15.0 * u + 6.0 * u2)
    ds = 30.0 * u2 * (1.0 - 2.0 * u + u2)
    dds = 60.0 * u * (1.0 - 3.0 * u + 2.0 * u2)
    inside = (tau > 0.0) & (tau < 1.0)
    return s, np.where(inside, ds, 0.0), np.where(inside, dds, 0.0)


class Channel(Protocol):
    """A scalar function of time with analytic first and second derivatives."""

    def eval(self, t: FloatArray) -> Triple:
        """Return ``(value, d/dt, d2/dt2)``, each shaped like ``t``."""
        ...


def _as_times(t: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(t, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"times must have shape (N,), got {arr.shape}")
    return arr


def _segment_index(starts: FloatArray, t: FloatArray) -> npt.NDArray[np.intp]:
    """``searchsorted(starts, t, side="right") - 1`` (the last start at or before each time;
    -1 before the first), for sorted ``starts``.

    The simulator asks with sorted times (a sample clock, a truth grid): then each start's
    place among the times (K binary searches over N) gives the runs of equal index, ten times
    faster than N searches among the starts; other times take the plain search."""
    if t.size > 1 and starts.size > 1 and bool(np.all(t[1:] >= t[:-1])) and bool(np.all(starts[1:] >= starts[:-1])):
        edges = np.searchsorted(t, starts, side="left")
        runs = np.diff(np.concatenate(([0], edges, [t.size])))
        return np.repeat(np.arange(-1, starts.size, dtype=np.intp), runs)
    return np.searchsorted(starts, t, side="right") - 1


def _cross(a: FloatArray, b: FloatArray) -> FloatArray:
    """``np.cross`` of (N, 3) arrays, the same products and differences in the same order (so
    the same bits) without its axis handling, which cost a fifth of a kinematics evaluation."""
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    np.subtract(a1 * b2, a2 * b1, out=out[..., 0])
    np.subtract(a2 * b0, a0 * b2, out=out[..., 1])
    np.subtract(a0 * b1, a1 * b0, out=out[..., 2])
    return out


@dataclass(frozen=True, slots=True)
class ConstantChannel:
    """A channel that never moves."""

    value: float = 0.0

    def eval(self, t: FloatArray) -> Triple:
        t = _as_times(t)
        z = np.zeros_like(t)
        return z + self.value, z, z.copy()


@dataclass(frozen=True, slots=True)
class RateChannel:
    """``value0 + rate * (t - t0)``: a constant-rate channel (used to check centripetal terms)."""

    value0: float
    rate_per_s: float
    t0_s: float = 0.0

    def eval(self, t: FloatArray) -> Triple:
        t = _as_times(t)
        return self.value0 + self.rate_per_s * (t - self.t0_s), np.full_like(t, self.rate_per_s), np.zeros_like(t)


@dataclass(frozen=True, slots=True)
class PiecewiseChannel:
    """Piecewise minimum-jerk channel: still, then non-overlapping moves to new values.

    Attributes
    ----------
    initial : value before the first move.
    t0_s, dur_s, target : (K,) start, duration (0 = an instantaneous re-parametrisation,
        only used while everything is still) and end value of each move, sorted by start.
    """

    initial: float
    t0_s: FloatArray
    dur_s: FloatArray
    target: FloatArray

    def eval(self, t: FloatArray) -> Triple:
        t = _as_times(t)
        value = np.full_like(t, self.initial)
        d1 = np.zeros_like(t)
        d2 = np.zeros_like(t)
        if self.t0_s.size == 0:
            return value, d1, d2
        before = np.concatenate(([self.initial], self.target[:-1]))
        if t.size > 1 and bool(np.all(t[1:] >= t[:-1])) and bool(np.all(self.t0_s[1:] >= self.t0_s[:-1])):
            self._eval_runs(t, before, value, d1, d2)
            return value, d1, d2
        idx = _segment_index(self.t0_s, t)
        if idx.size and idx.min() >= 0:  # every time after the first start (no copies)
            active: slice | npt.NDArray[np.bool_] = slice(None)
            k, ta = idx, t
        else:
            active = idx >= 0
            k, ta = idx[active], t[active]
        dur = self.dur_s[k]
        moving = dur > 0.0
        safe = np.where(moving, dur, 1.0)
        tau = np.where(moving, (ta - self.t0_s[k]) / safe, 1.0)
        s, ds, dds = minimum_jerk(tau)
        delta = self.target[k] - before[k]
        value[active] = before[k] + delta * s
        d1[active] = np.where(moving, delta * ds / safe, 0.0)
        d2[active] = np.where(moving, delta * dds / (safe * safe), 0.0)
        return value, d1, d2

    def _eval_runs(self, t: FloatArray, before: FloatArray, value: FloatArray, d1: FloatArray, d2: FloatArray) -> None:
        """:meth:`eval` for sorted times, into ``value``/``d1``/``d2``: the times of one move are a
        slice (a run), so each run computes the formulas above with that move's numbers as scalars
        (the same operations on the same values: the same bits) instead of gathering them per time;
        and once a move has ended (``tau >= 1``: ``s = 1`` exactly, ``ds = dds = 0``) its times get
        those values without evaluating the profile (most of a session is still)."""
        edges = np.searchsorted(t, self.t0_s, side="left")  # move j covers the times edges[j]:edges[j+1]
        ends = np.append(edges[1:], t.size)
        for j in np.flatnonzero(ends > edges).tolist():
            a, b = int(edges[j]), int(ends[j])
            dur, prior = float(self.dur_s[j]), float(before[j])
            delta = float(self.target[j]) - prior
            if not dur > 0.0:  # tau = 1: s = 1, no derivatives
                value[a:b] = prior + delta * 1.0
                continue
            tau = (t[a:b] - float(self.t0_s[j])) / dur
            c = a + int(np.searchsorted(tau, 1.0, side="left"))  # (tau rises with t)
            if c > a:
                s, ds, dds = minimum_jerk(tau[: c - a])
                value[a:c] = prior + delta * s
                d1[a:c] = delta * ds / dur
                d2[a:c] = delta * dds / (dur * dur)
            if b > c:
                value[c:b] = prior + delta * 1.0
                d1[c:b] = delta * 0.0 / dur
                d2[c:b] = delta * 0.0 / (dur * dur)


@dataclass(slots=True)
class PiecewiseBuilder:
    """Accumulates moves of one :class:`PiecewiseChannel`, checking they do not overlap."""

    initial: float
    _t0: list[float] = field(default_factory=list)
    _dur: list[float] = field(default_factory=list)
    _target: list[float] = field(default_factory=list)

    @property
    def value(self) -> float:
        """Value after the last move."""
        return self._target[-1] if self._target else self.initial

    @property
    def free_s(self) -> float:
        """Time at which the last move ends."""
        return self._t0[-1] + self._dur[-1] if self._t0 else -np.inf

    def move(self, t0_s: float, dur_s: float, target: float) -> None:
        """Move from the current value to ``target`` over ``[t0_s, t0_s + dur_s]``."""
        if dur_s < 0.0:
            raise ValueError(f"move duration must be >= 0 s, got {dur_s}")
        if t0_s < self.free_s - 1e-9:
            raise ValueError(f"move at {t0_s:.3f} s overlaps the previous move ending at {self.free_s:.3f} s")
        if target == self.value:
            return
        self._t0.append(float(t0_s))
        self._dur.append(float(dur_s))
        self._target.append(float(target))

    def build(self) -> PiecewiseChannel:
        return PiecewiseChannel(
            self.initial,
            np.asarray(self._t0, dtype=np.float64),
            np.asarray(self._dur, dtype=np.float64),
            np.asarray(self._target, dtype=np.float64),
        )


@dataclass(frozen=True, slots=True)
class OscillationChannel:
    """Bouts of ``offset + amplitude * sin(2 pi f (t - t0) + phase)`` under a smooth envelope.

    The envelope rises and falls with minimum-jerk ramps of ``ramp_s`` at both ends of a
    bout, so the channel is zero (with zero derivatives) outside the bouts. Bouts are
    sorted and do not overlap.

    Attributes
    ----------
    t0_s, t1_s, freq_hz, offset, amplitude, phase_rad, ramp_s : (K,) per bout.
    """

    t0_s: FloatArray
    t1_s: FloatArray
    freq_hz: FloatArray
    offset: FloatArray
    amplitude: FloatArray
    phase_rad: FloatArray
    ramp_s: FloatArray

    def eval(self, t: FloatArray) -> Triple:
        t = _as_times(t)
        v = np.zeros_like(t)
        d1 = np.zeros_like(t)
        d2 = np.zeros_like(t)
        if self.t0_s.size == 0:
            return v, d1, d2
        idx = np.searchsorted(self.t0_s, t, side="right") - 1
        ok = idx >= 0
        ok[ok] &= t[ok] < self.t1_s[idx[ok]]
        k = idx[ok]
        tt = t[ok]
        ramp = self.ramp_s[k]
        e1, e1d, e1dd = minimum_jerk((tt - self.t0_s[k]) / ramp)
        e2, e2d, e2dd = minimum_jerk((self.t1_s[k] - tt) / ramp)
        env = e1 * e2
        env_d = (e1d * e2 - e1 * e2d) / ramp
        env_dd = (e1dd * e2 - 2.0 * e1d * e2d + e1 * e2dd) / (ramp * ramp)
        w = 2.0 * np.pi * self.freq_hz[k]
        arg = w * (tt - self.t0_s[k]) + self.phase_rad[k]
        g = self.offset[k] + self.amplitude[k] * np.sin(arg)
        gd = self.amplitude[k] * w * np.cos(arg)
        gdd = -self.amplitude[k] * w * w * np.sin(arg)
        v[ok] = env * g
        d1[ok] = env_d * g + env * gd
        d2[ok] = env_dd * g + 2.0 * env_d * gd + env * gdd
        return v, d1, d2


@dataclass(frozen=True, slots=True)
class PulseChannel:
    """Short heel-strike impulses: displacement ``-A sigma^2 exp(-u^2/2)``, ``u = (t - tk)/sigma``.

    Its second derivative is the acceleration pulse ``A (1 - u^2) exp(-u^2/2)``: a peak of
    ``A`` at the strike with no net change of velocity. Pulses must be > 8 sigma apart.

    Attributes
    ----------
    t_s, amplitude : (K,) strike times (sorted) and peak accelerations (channel unit / s^2).
    sigma_s : width of every pulse.
    """

    t_s: FloatArray
    amplitude: FloatArray
    sigma_s: float = 0.02

    def eval(self, t: FloatArray) -> Triple:
        t = _as_times(t)
        v = np.zeros_like(t)
        d1 = np.zeros_like(t)
        d2 = np.zeros_like(t)
        if self.t_s.size == 0:
            return v, d1, d2
        j = np.searchsorted(self.t_s, t)
        for k in (j - 1, j):
            ok = (k >= 0) & (k < self.t_s.size)
            kk = k[ok]
            u = (t[ok] - self.t_s[kk]) / self.sigma_s
            f = np.exp(-0.5 * u * u)
            a = self.amplitude[kk]
            v[ok] += -a * self.sigma_s**2 * f
            d1[ok] += a * self.sigma_s * u * f
            d2[ok] += a * (1.0 - u * u) * f
        return v, d1, d2


@dataclass(frozen=True, slots=True)
class SumChannel:
    """The sum of several channels."""

    parts: tuple[Channel, ...]

    def eval(self, t: FloatArray) -> Triple:
        t = _as_times(t)
        v = np.zeros_like(t)
        d1 = np.zeros_like(t)
        d2 = np.zeros_like(t)
        for part in self.parts:
            a, b, c = part.eval(t)
            v += a
            d1 += b
            d2 += c
        return v, d1, d2


# --------------------------------------------------------------------------- rotations
def _rotation(a: FloatArray, axis: int) -> FloatArray:
    """(N, 3, 3) rotations by ``a`` radians about axis 0, 1 or 2 (x, y, z), filled in place."""
    c, s = np.cos(a), np.sin(a)
    i, j = (axis + 1) % 3, (axis + 2) % 3
    out = np.zeros(np.shape(a) + (3, 3))
    out[..., axis, axis] = 1.0
    out[..., i, i] = c
    out[..., i, j] = -s
    out[..., j, i] = s
    out[..., j, j] = c
    return out


def rot_x(a: FloatArray) -> FloatArray:
    """(N, 3, 3) rotations by ``a`` radians about X."""
    return _rotation(a, 0)


def rot_y(a: FloatArray) -> FloatArray:
    """(N, 3, 3) rotations by ``a`` radians about Y."""
    return _rotation(a, 1)


def rot_z(a: FloatArray) -> FloatArray:
    """(N, 3, 3) rotations by ``a`` radians about Z."""
    return _rotation(a, 2)


# --------------------------------------------------------------------------- motions
@dataclass(frozen=True, slots=True)
class BodyMotion:
    """Whole-body motion shared by both thighs: posture angles and pelvis acceleration.

    Attributes
    ----------
    yaw_deg, pitch_deg, roll_deg : posture of the thigh rest frame (see module docstring).
    hip_z_m : height of the hip joint (only its second derivative matters).
    speed_mps : forward walking speed along the heading ``yaw``.
    brake_m : forward displacement pulses (heel-strike braking), along the heading.
    """

    yaw_deg: Channel = ConstantChannel()
    pitch_deg: Channel = ConstantChannel()
    roll_deg: Channel = ConstantChannel()
    hip_z_m: Channel = ConstantChannel()
    speed_mps: Channel = ConstantChannel()
    brake_m: Channel = ConstantChannel()

    def hip_vel_mps(self, t: FloatArray) -> FloatArray:
        """(N, 3) world velocity of the hip joint (m/s)."""
        t = _as_times(t)
        yaw = np.radians(self.yaw_deg.eval(t)[0])
        v = self.speed_mps.eval(t)[0] + self.brake_m.eval(t)[1]
        return np.stack([v * np.cos(yaw), v * np.sin(yaw), self.hip_z_m.eval(t)[1]], -1)

    def hip_acc_mps2(self, t: FloatArray) -> FloatArray:
        """(N, 3) world acceleration of the hip joint (m/s^2)."""
        t = _as_times(t)
        yaw, yaw_d, _ = self.yaw_deg.eval(t)
        yaw = np.radians(yaw)
        yaw_d = np.radians(yaw_d)
        v, v_d, _ = self.speed_mps.eval(t)
        _, brake_d, brake_dd = self.brake_m.eval(t)
        _, _, z_dd = self.hip_z_m.eval(t)
        heading = np.stack([np.cos(yaw), np.sin(yaw), np.zeros_like(yaw)], -1)
        left = np.stack([-np.sin(yaw), np.cos(yaw), np.zeros_like(yaw)], -1)
        # d/dt [(v + b') h(yaw)] = (v' + b'') h + (v + b') yaw' h_perp
        acc: FloatArray = (v_d + brake_dd)[:, None] * heading + ((v + brake_d) * yaw_d)[:, None] * left
        acc[:, 2] += z_dd
        return acc


@dataclass(frozen=True, slots=True)
class Kinematics:
    """Thigh kinematics at N instants (world frame, SI units).

    Attributes
    ----------
    rot : (N, 3, 3) world-from-thigh rotation (the thigh frame as carried by the strap: it
        differs from the anatomical thigh frame only after a strap slip).
    omega_rps : (N, 3) angular velocity (rad/s), world frame.
    alpha_rps2 : (N, 3) angular acceleration (rad/s^2), world frame.
    hip_acc_mps2 : (N, 3) acceleration of the hip joint (m/s^2), world frame.
    """

    rot: FloatArray
    omega_rps: FloatArray
    alpha_rps2: FloatArray
    hip_acc_mps2: FloatArray

    def point_acc_mps2(self, offset_thigh_m: FloatArray) -> FloatArray:
        """(N, 3) world acceleration of a point fixed on the thigh at ``offset_thigh_m`` (3,)
        from the hip joint: ``a_hip + alpha x r + omega x (omega x r)``."""
        r = self.rot @ np.asarray(offset_thigh_m, dtype=np.float64)
        w = self.omega_rps
        return self.hip_acc_mps2 + _cross(self.alpha_rps2, r) + _cross(w, _cross(w, r))


@dataclass(frozen=True, slots=True)
class LegMotion:
    """Everything one thigh does during a session.

    Attributes
    ----------
    leg : "left" or "right".
    body : shared posture and pelvis motion.
    theta_deg : the hip angle (truth), degrees from the neutral pose in the exercise direction.
    direction : +1 when a positive ``theta`` is hip flexion, -1 when it is extension.
    posture_flex_deg : extra flexion used by posture changes (getting up, kneeling).
    swing_deg : walking swing of the thigh (flexion positive).
    abduction_deg, axial_deg : off-axis motion during reps (ab/adduction about the floating
        anterior axis, rotation about the long axis); not part of the hip angle.
    strap_roll_deg, strap_tilt_deg : how far the strap has turned on the thigh (about its
        long and mediolateral axes) since the session began; not part of the hip angle.
    """

    leg: str
    body: BodyMotion
    theta_deg: Channel
    direction: int = 1
    posture_flex_deg: Channel = ConstantChannel()
    swing_deg: Channel = ConstantChannel()
    abduction_deg: Channel = ConstantChannel()
    axial_deg: Channel = ConstantChannel()
    strap_roll_deg: Channel = ConstantChannel()
    strap_tilt_deg: Channel = ConstantChannel()

    def hip_angle_deg(self, t: npt.ArrayLike) -> FloatArray:
        """(N,) true hip angle at times ``t`` (s)."""
        return self.theta_deg.eval(_as_times(t))[0]

    def exercise_axis_thigh(self) -> FloatArray:
        """(3,) unit axis in the thigh frame about which a positive ``theta`` rotates the thigh."""
        return -self.direction * _Y

    def kinematics(self, t: npt.ArrayLike) -> Kinematics:
        """Orientation, angular velocity/acceleration and hip acceleration at times ``t`` (s)."""
        t = _as_times(t)
        channels = []
        for ch, sign in ((self.body.yaw_deg, 1.0), (self.body.pitch_deg, 1.0), (self.body.roll_deg, 1.0)):
            a, b, c = ch.eval(t)
            channels.append((np.radians(a) * sign, np.radians(b) * sign, np.radians(c) * sign))
        th, th_d, th_dd = self.theta_deg.eval(t)
        pf, pf_d, pf_dd = self.posture_flex_deg.eval(t)
        sw, sw_d, sw_dd = self.swing_deg.eval(t)
        # Final factor Ry(-flex): the rotation angle about the thigh y axis is -flex.
        fl = -np.radians(self.direction * th + pf + sw)
        fl_d = -np.radians(self.direction * th_d + pf_d + sw_d)
        fl_dd = -np.radians(self.direction * th_dd + pf_dd + sw_dd)
        channels.append((fl, fl_d, fl_dd))
        makers: list[Callable[[FloatArray], FloatArray]] = [rot_z, rot_y, rot_x, rot_y]
        unit = [_Z, _Y, _X, _Y]
        make: Callable[[FloatArray], FloatArray]
        # Off-axis motion and strap slip are further joints of the chain; channels that never
        # move are left out, so sessions without them are computed exactly as before.
        for ch, make, e in ((self.abduction_deg, rot_z, _Z), (self.axial_deg, rot_x, _X),
                            (self.strap_roll_deg, rot_x, _X), (self.strap_tilt_deg, rot_y, _Y)):
            if isinstance(ch, ConstantChannel) and ch.value == 0.0:
                continue
            a, b, c = ch.eval(t)
            channels.append((np.radians(a), np.radians(b), np.radians(c)))
            makers.append(make)
            unit.append(e)
        n = t.shape[0]
        prefix = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
        omega = np.zeros((n, 3))
        alpha = np.zeros((n, 3))
        for (ang, ang_d, ang_dd), make, e in zip(channels, makers, unit):
            # This joint's axis in the world, ``prefix @ e``: for a unit axis the column of
            # ``prefix`` (+ 0.0: the product's sum of zeros starts at +0.0, so a -0.0 comes
            # out +0.0 as from the matmul, bit for bit, at a tenth of its cost).
            u = prefix[:, :, int(np.flatnonzero(e)[0])] + 0.0
            # d(u)/dt = omega_prefix x u (the axis turns with the joints before it).
            alpha += ang_dd[:, None] * u + ang_d[:, None] * _cross(omega, u)
            omega = omega + ang_d[:, None] * u
            prefix = prefix @ make(ang)  # type: ignore[operator]
        return Kinematics(prefix, omega, alpha, self.body.hip_acc_mps2(t))


# --------------------------------------------------------------------------- truth
@dataclass(frozen=True, slots=True)
class RepMeasure:
    """Measures of one rep from the hip angle (definitions in ``measure_rep``)."""

    start_s: float
    peak_s: float
    end_s: float
    baseline_deg: float
    peak_deg: float
    rom_deg: float
    up_s: float
    hold_s: float
    down_s: float


ONSET_FRACTION = 0.1
"""Movement onset and stop: the speed falls to 10 % of the phase's peak speed (issue 8's stopwatch)."""


def _crossing(t: FloatArray, y: FloatArray, i: int, level: float) -> float:
    """Time at which the segment ``(t[i], y[i]) -> (t[i+1], y[i+1])`` crosses ``level``."""
    y0, y1 = y[i], y[i + 1]
    if y1 == y0:
        return float(t[i])
    return float(t[i] + (level - y0) * (t[i + 1] - t[i]) / (y1 - y0))


def _onset(t: FloatArray, v: FloatArray, i_peak: int, level: float, forward: bool) -> float:
    """From the sample ``i_peak`` (where ``v`` peaks above ``level``), the first time going back
    (or forward) at which ``v <= level``, interpolated linearly; raises if it never happens."""
    if forward:
        below = np.flatnonzero(v[i_peak:] <= level)
        if below.size == 0:
            raise ValueError(f"the speed never falls to {level:.3g} deg/s after {t[i_peak]:.3f} s inside the window")
        k = i_peak + int(below[0])
        return _crossing(t, v, k - 1, level)
    below = np.flatnonzero(v[: i_peak + 1] <= level)
    if below.size == 0:
        raise ValueError(f"the speed never falls to {level:.3g} deg/s before {t[i_peak]:.3f} s inside the window")
    k = int(below[-1])
    return _crossing(t, v, k, level)


def measure_rep(time_s: FloatArray, angle_deg: FloatArray, speed_dps: FloatArray | None = None) -> RepMeasure:
    """Measure one rep on a finely sampled hip angle, with stopwatch definitions (issue 8 item 4).

    Definitions: ``v_up`` is the peak rising angular speed and ``v_dn`` the peak lowering speed
    in the window (the rise comes first). ``start_s`` = going back from the moment of ``v_up``,
    the first time the rising speed is <= 10 % of ``v_up`` (movement onset); top entry = going
    forward from that moment, the first time it is <= 10 % of ``v_up``; top exit and ``end_s``
    likewise around the moment of ``v_dn`` (back, then forward), on the lowering speed.
    ``up_s`` = top entry - start, ``hold_s`` = top exit - top entry, ``down_s`` = end - top exit;
    ``baseline_deg`` = the angle at ``start_s``; ``peak_deg`` = the highest angle between start
    and end, at ``peak_s``; ``rom_deg`` = peak - baseline. Crossings are interpolated linearly.
    A minimum-jerk raise of duration T reads ``(1 - 2 u) T`` with ``30 u^2 (1 - u)^2 = 0.1 * 1.875``,
    u = 0.0865: about 0.83 T.

    Parameters
    ----------
    time_s : (N,) increasing times covering the whole rep (speeds at both ends below 10 %).
    angle_deg : (N,) hip angle.
    speed_dps : (N,) its time derivative; default: ``np.gradient(angle_deg, time_s)``.

    Raises
    ------
    ValueError
        If the arrays do not match, or the window holds no complete rise and lowering.
    """
    t = np.asarray(time_s, dtype=np.float64)
    y = np.asarray(angle_deg, dtype=np.float64)
    if t.shape != y.shape or t.ndim != 1 or t.size < 3:
        raise ValueError(f"time_s and angle_deg must be equal (N,) arrays with N >= 3, got {t.shape} and {y.shape}")
    v = np.gradient(y, t) if speed_dps is None else np.asarray(speed_dps, dtype=np.float64)
    if v.shape != t.shape:
        raise ValueError(f"speed_dps must have shape {t.shape}, got {v.shape}")
    i_up = int(np.argmax(v))
    i_dn = int(np.argmin(v))
    v_up, v_dn = float(v[i_up]), float(-v[i_dn])
    if v_up <= 0.0 or v_dn <= 0.0 or i_dn <= i_up:
        raise ValueError(f"rep window needs a rise before a lowering, got peak speeds +{v_up:.2f} at {t[i_up]:.3f} s "
                         f"and -{v_dn:.2f} deg/s at {t[i_dn]:.3f} s")
    start = _onset(t, v, i_up, ONSET_FRACTION * v_up, forward=False)
    top_in = _onset(t, v, i_up, ONSET_FRACTION * v_up, forward=True)
    top_out = _onset(t, -v, i_dn, ONSET_FRACTION * v_dn, forward=False)
    end = _onset(t, -v, i_dn, ONSET_FRACTION * v_dn, forward=True)
    baseline = float(np.interp(start, t, y))
    inside = (t >= start) & (t <= end)
    i_peak = int(np.flatnonzero(inside)[np.argmax(y[inside])]) if inside.any() else i_up
    peak = float(y[i_peak])
    return RepMeasure(
        start_s=start,
        peak_s=float(t[i_peak]),
        end_s=end,
        baseline_deg=baseline,
        peak_deg=peak,
        rom_deg=peak - baseline,
        up_s=top_in - start,
        hold_s=top_out - top_in,
        down_s=end - top_out,
    )


# --------------------------------------------------------------------------- programmes
@dataclass(frozen=True, slots=True)
class Posture:
    """Thigh rest frame of a body posture (at yaw 0) and the hip height."""

    pitch_deg: float
    roll_deg: float
    hip_z_m: float


POSTURES: dict[str, Posture] = {
    "supine": Posture(0.0, 0.0, 0.10),
    "plank": Posture(10.0, 180.0, 0.35),  # thigh points to the feet, ~10 deg down, front to the floor
    "quadruped": Posture(90.0, 0.0, 0.55),  # thigh vertical under the hip
    "standing": Posture(90.0, 0.0, 0.90),
}


@dataclass(frozen=True, slots=True)
class Segment:
    """One piece of a programme, for inspection: ``kind`` is still, rep, fidget, shift,
    posture (a posture change, with ``detail`` like "supine->standing") or walk."""

    kind: str
    leg: str | None
    t0_s: float
    t1_s: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RepPlan:
    """A rep as programmed: the leg moves during ``[t0_s, t1_s]`` and rests just before."""

    leg: str
    t0_s: float
    t1_s: float
    partial: bool
    group: int
    """Index of the programmed set (0-based); truth sets are found from rests, not from this."""


@dataclass(frozen=True, slots=True)
class Programme:
    """A finished movement programme: one :class:`LegMotion` per leg plus its plan."""

    legs: dict[str, LegMotion]
    segments: tuple[Segment, ...]
    reps: tuple[RepPlan, ...]
    duration_s: float


@dataclass(slots=True)
class _Bout:
    t0_s: float
    t1_s: float
    freq_hz: float
    offset: float
    amplitude: float
    phase_rad: float
    ramp_s: float


def _oscillation(bouts: list[_Bout]) -> OscillationChannel:
    def col(name: str) -> FloatArray:
        return np.asarray([getattr(b, name) for b in bouts], dtype=np.float64)

    return OscillationChannel(col("t0_s"), col("t1_s"), col("freq_hz"), col("offset"), col("amplitude"), col("phase_rad"), col("ramp_s"))


class ProgrammeBuilder:
    """Builds a session's movement, segment after segment, on one timeline for both legs.

    Parameters
    ----------
    posture : the exercise posture (a key of :data:`POSTURES`); the session starts in it
        with ``theta = 0`` (the calibration neutral pose).
    direction : +1 if the exercise is hip flexion, -1 if extension.
    legs : names of the legs that carry a sensor.
    yaw_deg : initial heading.
    start_standing : the session starts standing (the body lies down with :meth:`lie_down`
        before the first rep) instead of in the exercise posture.
    """

    def __init__(self, posture: str, direction: int, legs: tuple[str, ...], yaw_deg: float = 0.0,
                 start_standing: bool = False) -> None:
        if posture not in POSTURES:
            raise ValueError(f"posture must be one of {sorted(POSTURES)}, got {posture!r}")
        if direction not in (1, -1):
            raise ValueError(f"direction must be +1 or -1, got {direction}")
        p = POSTURES["standing" if start_standing else posture]
        self.t = 0.0
        self.posture = "standing" if start_standing else posture
        self.exercise_posture = posture
        self.direction = direction
        self.legs = legs
        self.yaw = PiecewiseBuilder(yaw_deg)
        self.pitch = PiecewiseBuilder(p.pitch_deg)
        self.roll = PiecewiseBuilder(p.roll_deg)
        self.hip_z = PiecewiseBuilder(p.hip_z_m)
        self.speed = PiecewiseBuilder(0.0)
        self.theta = {leg: PiecewiseBuilder(0.0) for leg in legs}
        self.pflex = {leg: PiecewiseBuilder(0.0) for leg in legs}
        self.swing: dict[str, list[_Bout]] = {leg: [] for leg in legs}
        self.abduction = {leg: PiecewiseBuilder(0.0) for leg in legs}
        self.axial = {leg: PiecewiseBuilder(0.0) for leg in legs}
        self.strap_roll = {leg: PiecewiseBuilder(0.0) for leg in legs}
        self.strap_tilt = {leg: PiecewiseBuilder(0.0) for leg in legs}
        # Standing sway: two independent sinusoid bouts per body axis (pitch, roll).
        self.sway_bouts: dict[str, list[list[_Bout]]] = {"pitch": [[], []], "roll": [[], []]}
        self.bounce: list[_Bout] = []
        self.heel_t: list[float] = []
        self.heel_a: list[float] = []
        self.segments: list[Segment] = []
        self.reps: list[RepPlan] = []

    # -- simple segments
    def still(self, dur_s: float) -> None:
        """Everyone rests for ``dur_s``."""
        if dur_s > 0.0:
            self.segments.append(Segment("still", None, self.t, self.t + dur_s))
            self.t += dur_s

    def angle_of(self, leg: str) -> float:
        """Current hip angle of ``leg`` (after the moves programmed so far)."""
        return self.theta[leg].value

    def sway(self, dur_s: float, rng: np.random.Generator) -> None:
        """Stand for ``dur_s`` with postural sway: the body tilts by 0.4-1.0 deg at 0.2-0.9 Hz
        about both horizontal axes (two sinusoids each), angular rates of about 2-6 deg/s."""
        if self.posture != "standing":
            raise ValueError(f"sway needs the standing posture, the body is {self.posture}")
        if dur_s <= 0.0:
            return
        t0 = self.t
        ramp = min(1.0, dur_s / 3.0)
        for axis in ("pitch", "roll"):
            for bouts in self.sway_bouts[axis]:
                bouts.append(_Bout(t0, t0 + dur_s, float(rng.uniform(0.2, 0.9)), 0.0, float(rng.uniform(0.4, 1.0)),
                                   float(rng.uniform(0.0, 2.0 * np.pi)), ramp))
        self.t += dur_s
        self.segments.append(Segment("still", None, t0, self.t, "sway"))

    def slip(self, leg: str, roll_deg: float, tilt_deg: float, dur_s: float) -> None:
        """The strap of ``leg`` turns on the thigh by ``roll_deg`` about its long axis and cocks by
        ``tilt_deg`` about its mediolateral axis, over ``dur_s`` (the hip angle does not change)."""
        t0 = self.t
        self.strap_roll[leg].move(t0, dur_s, self.strap_roll[leg].value + roll_deg)
        self.strap_tilt[leg].move(t0, dur_s, self.strap_tilt[leg].value + tilt_deg)
        self.t = t0 + dur_s
        self.segments.append(Segment("slip", leg, t0, self.t, f"roll {roll_deg:+.1f} deg, tilt {tilt_deg:+.1f} deg"))

    def rep(self, leg: str, up_s: float, hold_s: float, down_s: float, peak_deg: float,
            sag_deg: float = 0.0, end_deg: float | None = None, partial: bool = False, group: int = 0,
            abduction_deg: float = 0.0, axial_deg: float = 0.0, pause_frac: float = 0.0, pause_s: float = 0.0) -> RepPlan:
        """One rep of ``leg``: rise to ``peak_deg`` over ``up_s``, hold (sagging by ``sag_deg``)
        for ``hold_s``, lower to ``end_deg`` (default: the starting angle) over ``down_s``.
        Off-axis motion (``abduction_deg``, ``axial_deg``) builds up with the rise and goes
        back with the lowering. ``pause_s`` > 0: the rise pauses that long at ``pause_frac`` of
        the way up (the two parts of the rise share ``up_s`` in that proportion)."""
        self._require_exercise_posture("rep")
        th = self.theta[leg]
        start = th.value
        if peak_deg <= start:
            raise ValueError(f"rep peak must exceed the starting angle {start:.1f} deg, got {peak_deg:.1f}")
        if pause_s > 0.0 and not 0.1 <= pause_frac <= 0.9:
            raise ValueError(f"a raise pauses between 0.1 and 0.9 of the way up, got {pause_frac}")
        t0 = self.t
        if pause_s > 0.0:
            up1 = up_s * pause_frac
            th.move(t0, up1, start + pause_frac * (peak_deg - start))
            th.move(t0 + up1 + pause_s, up_s - up1, peak_deg)  # (held in between)
            up_s += pause_s
        else:
            th.move(t0, up_s, peak_deg)
        th.move(t0 + up_s, hold_s, peak_deg - sag_deg)
        th.move(t0 + up_s + hold_s, down_s, start if end_deg is None else end_deg)
        for ch, value in ((self.abduction[leg], abduction_deg), (self.axial[leg], axial_deg)):
            if value != 0.0:
                ch.move(t0, up_s, ch.value + value)
                ch.move(t0 + up_s + hold_s, down_s, ch.value - value)
        self.t = t0 + up_s + hold_s + down_s
        plan = RepPlan(leg, t0, self.t, partial, group)
        self.reps.append(plan)
        self.segments.append(Segment("rep", leg, t0, self.t, "partial" if partial else ""))
        return plan

    def fidget(self, leg: str, amplitude_deg: float, dur_s: float, end_offset_deg: float = 0.0) -> None:
        """A small excursion (|amplitude| < 15 deg) that returns near its start."""
        if abs(amplitude_deg) >= 15.0:
            raise ValueError(f"a fidget stays under 15 deg, got {amplitude_deg:.1f}")
        th = self.theta[leg]
        start = th.value
        t0 = self.t
        th.move(t0, 0.45 * dur_s, start + amplitude_deg)
        th.move(t0 + 0.45 * dur_s, 0.55 * dur_s, start + end_offset_deg)
        self.t = t0 + dur_s
        self.segments.append(Segment("fidget", leg, t0, self.t))

    def shift(self, targets_deg: dict[str, float], dur_s: float) -> None:
        """Baseline shift: the legs move together to new resting angles (not a rep)."""
        t0 = self.t
        for leg, target in targets_deg.items():
            self.theta[leg].move(t0, dur_s, target)
        self.t = t0 + dur_s
        self.segments.append(Segment("shift", None, t0, self.t))

    # -- posture changes
    def _require_exercise_posture(self, what: str) -> None:
        if self.posture != self.exercise_posture:
            raise ValueError(f"{what} needs the {self.exercise_posture} posture, the body is {self.posture}")

    def _all_flex(self, t0: float, dur: float, target: float) -> None:
        for leg in self.legs:
            self.pflex[leg].move(t0, dur, target)

    def _posture_segment(self, t0: float, detail: str) -> None:
        self.segments.append(Segment("posture", None, t0, self.t, detail))

    def get_up(self) -> None:
        """From the exercise posture to standing (lie -> sit -> stand, or kneel -> stand)."""
        self._require_exercise_posture("get_up")
        for leg in self.legs:
            if self.theta[leg].value != 0.0:
                raise ValueError(f"{leg} leg must be back at 0 deg before getting up, it is at {self.theta[leg].value:.1f}")
        t0 = self.t
        stand = POSTURES["standing"]
        if self.posture == "supine":
            self._all_flex(self.t, 2.0, 40.0)  # sit up, knees bent
            self.t += 2.0
            self._posture_segment(t0, "supine->sitting")
            t1 = self.t
            self.pitch.move(self.t, 2.5, stand.pitch_deg)
            self._all_flex(self.t, 2.5, 0.0)
            self.hip_z.move(self.t, 2.5, stand.hip_z_m)
            self.t += 2.5
            self.posture = "standing"
            self._posture_segment(t1, "sitting->standing")
            return
        if self.posture == "plank":
            self._all_flex(self.t, 1.5, 80.0)  # knees to the floor: thighs vertical
            self.hip_z.move(self.t, 1.5, 0.5)
            self.t += 1.5
            self.still(0.3)
            # Same orientation, re-expressed as an upright thigh facing the other way.
            for ch, value in ((self.yaw, self.yaw.value + 180.0), (self.pitch, 90.0), (self.roll, 0.0)):
                ch.move(self.t, 0.0, value)
            self._all_flex(self.t, 0.0, 0.0)
        self._all_flex(self.t, 1.5, 70.0)  # one foot forward, push up
        self.hip_z.move(self.t, 1.5, 0.5 * (self.hip_z.value + stand.hip_z_m))
        self.t += 1.5
        self._all_flex(self.t, 1.5, 0.0)
        self.hip_z.move(self.t, 1.5, stand.hip_z_m)
        self.t += 1.5
        self._posture_segment(t0, f"{self.posture}->standing")
        self.posture = "standing"

    def lie_down(self, yaw_deg: float | None = None) -> None:
        """From standing back to the exercise posture, facing ``yaw_deg`` (default: as now)."""
        if self.posture != "standing":
            raise ValueError(f"lie_down needs the standing posture, the body is {self.posture}")
        target = self.exercise_posture
        p = POSTURES[target]
        t0 = self.t
        if yaw_deg is not None:
            self.yaw.move(self.t, 1.0, yaw_deg)
            self.t += 1.0
        if target == "supine":
            self.pitch.move(self.t, 2.5, p.pitch_deg)
            self._all_flex(self.t, 2.5, 40.0)
            self.hip_z.move(self.t, 2.5, p.hip_z_m)
            self.t += 2.5
            self._all_flex(self.t, 2.0, 0.0)
            self.t += 2.0
        else:
            low = 0.55 if target == "quadruped" else 0.5
            self._all_flex(self.t, 1.5, 70.0)
            self.hip_z.move(self.t, 1.5, 0.5 * (self.hip_z.value + low))
            self.t += 1.5
            self._all_flex(self.t, 1.5, 0.0)
            self.hip_z.move(self.t, 1.5, low)
            self.t += 1.5
            if target == "plank":
                self.still(0.3)
                for ch, value in ((self.yaw, self.yaw.value - 180.0), (self.pitch, p.pitch_deg), (self.roll, p.roll_deg)):
                    ch.move(self.t, 0.0, value)
                self._all_flex(self.t, 0.0, 80.0)
                self._all_flex(self.t, 1.5, 0.0)
                self.hip_z.move(self.t, 1.5, p.hip_z_m)
                self.t += 1.5
        self.posture = target
        self._posture_segment(t0, f"standing->{target}")

    def walk(self, dur_s: float, stride_hz: float = 0.95, speed_mps: float = 1.2,
             final_turn_deg: float = 0.0, heel_mps2: tuple[float, ...] = (8.0,)) -> None:
        """Walk for ``dur_s`` (>= 8 s): thighs swing +25/-15 deg in antiphase at ``stride_hz``,
        the hip bounces at twice that, heel strikes give short impulses; the walker turns
        180 deg half-way and ``final_turn_deg`` before stopping."""
        if self.posture != "standing":
            raise ValueError(f"walk needs the standing posture, the body is {self.posture}")
        if dur_s < 8.0:
            raise ValueError(f"a walk lasts at least 8 s, got {dur_s:.1f}")
        t0, t1 = self.t, self.t + dur_s
        self.speed.move(t0, 1.0, speed_mps)
        self.speed.move(t1 - 1.0, 1.0, 0.0)
        self.yaw.move(t0 + 0.5 * dur_s - 0.75, 1.5, self.yaw.value + 180.0)
        self.yaw.move(t1 - 2.5, 1.0, self.yaw.value + final_turn_deg)
        for i, leg in enumerate(self.legs):
            phase = 0.0 if leg == "left" else np.pi
            self.swing[leg].append(_Bout(t0, t1, stride_hz, 5.0, 20.0, phase, 1.0))
        self.bounce.append(_Bout(t0, t1, 2.0 * stride_hz, 0.0, 0.02, 0.0, 1.0))
        # A heel strikes when its thigh is most flexed: left at phase pi/2, right half a stride later.
        k = 0
        t_strike = t0 + 0.25 / stride_hz
        while t_strike < t1 - 1.2:
            if t_strike > t0 + 1.2:
                self.heel_t.append(t_strike)
                self.heel_a.append(heel_mps2[k % len(heel_mps2)])
                k += 1
            t_strike += 0.5 / stride_hz
        self.t = t1
        self.segments.append(Segment("walk", None, t0, t1))

    # -- result
    def build(self) -> Programme:
        """Freeze the programme into one :class:`LegMotion` per leg."""
        heel_t = np.asarray(self.heel_t, dtype=np.float64)
        heel_a = np.asarray(self.heel_a, dtype=np.float64)
        def with_sway(base: PiecewiseChannel, axis: str) -> Channel:
            bouts = self.sway_bouts[axis]
            if not bouts[0]:
                return base
            return SumChannel((base, _oscillation(bouts[0]), _oscillation(bouts[1])))

        def built(b: PiecewiseBuilder) -> Channel:
            return b.build() if b.free_s > -np.inf else ConstantChannel(b.initial)

        body = BodyMotion(
            yaw_deg=self.yaw.build(),
            pitch_deg=with_sway(self.pitch.build(), "pitch"),
            roll_deg=with_sway(self.roll.build(), "roll"),
            hip_z_m=SumChannel((self.hip_z.build(), _oscillation(self.bounce), PulseChannel(heel_t, heel_a))),
            speed_mps=self.speed.build(),
            brake_m=PulseChannel(heel_t, -0.35 * heel_a),
        )
        legs = {
            leg: LegMotion(
                leg=leg,
                body=body,
                theta_deg=self.theta[leg].build(),
                direction=self.direction,
                posture_flex_deg=self.pflex[leg].build(),
                swing_deg=_oscillation(self.swing[leg]),
                abduction_deg=built(self.abduction[leg]),
                axial_deg=built(self.axial[leg]),
                strap_roll_deg=built(self.strap_roll[leg]),
                strap_tilt_deg=built(self.strap_tilt[leg]),
            )
            for leg in self.legs
        }
        return Programme(legs, tuple(self.segments), tuple(self.reps), self.t)
