"""The orientation stage: where "up" is in a thigh sensor's frame, sample by sample.

A 6-D (gyro + accelerometer) filter after VQF (Laidig & Seel, "VQF: Highly accurate IMU
orientation estimation with bias estimation and magnetic disturbance rejection",
Information Fusion 91, 2023): the gyro carries the attitude from sample to sample; the
accelerometer, rotated into the frame the gyro alone moves and low-passed there, says where
gravity is whenever the thigh is not accelerating for long, continuously, not only at
rests; the gyro bias is estimated at rests and, slowly, while moving (fast at first when the
calibration's bias is unsure: ``bias_unsure``, step 3b of the reference). Only the inclination
is estimated (gravity cannot see heading, and the hip angle does not need it).

The per-sample loop runs in C (``legrep._fastcore.TiltKernel``); ``host/fusion/reference.py``
is its plain-Python specification, step by step, and the tests compare the two.

``track_gravity`` is the stage as a function of whole arrays, for benchmarks against other
filters (``benchmarks/orientation.py``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Generator, Iterator, Sequence

import numpy as np
import numpy.typing as npt

from .._fastcore import TiltKernel
from ..diagnostics import OrientationDiagnostics
from ..diagnostics import vec3 as _vec3
from ..errors import CalibrationError, InputError
from ..model import FloatArray
from ..parallel import prefetch, serial_requested, usable_cores
from ..settings import Settings
from .reference import TiltParams

BoolArray = npt.NDArray[np.bool_]

__all__ = ["OrientationFilter", "kernel_params", "poses_ahead", "track_gravity"]

Pose = tuple[FloatArray, FloatArray, FloatArray, BoolArray, BoolArray, FloatArray]
"""What :meth:`OrientationFilter.update_pose` gives: ``(up, u_ref, quat, still, rest, lever)``."""

AHEAD_MIN_PIECES = 4
"""Pieces of a chunk from which :func:`poses_ahead` runs the orientation stage on a thread of its own."""
AHEAD_BATCH = 8
"""Pieces the thread of :func:`poses_ahead` runs in one call (the GIL released for all of them)."""
AHEAD_DEPTH = 2
"""Batches of :func:`poses_ahead` done and not yet taken, at most (then its thread waits)."""

GAP_STEPS = 2.5
"""A step longer than this many nominal steps means lost samples (jitter stays far below)."""


def kernel_params(settings: Settings, dt_nominal_s: float) -> TiltParams:
    """The orientation stage's parameters for a stream of nominal step ``dt_nominal_s``."""
    s = settings
    bias_n = max(8, round(s.bias_window_s / dt_nominal_s))
    return TiltParams(
        tau_acc_s=s.tau_acc_s,
        bias_motion_tau_s=s.bias_motion_tau_s,
        still_n=max(1, round(s.still_min_s / dt_nominal_s)),
        still_gyro_dps=s.still_gyro_dps,
        bias_n=bias_n,
        rest_gyro_dps=s.rest_gyro_dps,
        rest_acc_g=s.rest_acc_g,
        rest_tilt_deg=s.rest_tilt_deg,
        bias_jump_dps=s.bias_jump_dps,
        # one rest window moves the bias by 1 - exp(-T / bias_tau_s) of the difference
        bias_gain=1.0 - math.exp(-bias_n * dt_nominal_s / s.bias_tau_s),
        max_gap_s=s.max_gap_s,
        dt_nominal_s=dt_nominal_s,
        acc_bias_memory=s.acc_bias_memory,
        acc_bias_ridge=s.acc_bias_ridge,
        acc_bias_max_g=s.acc_bias_max_g,
        gap_s=GAP_STEPS * dt_nominal_s,
        lever_tau_s=s.lever_arm_tau_s,
        lever_min_dps=s.lever_arm_min_dps,
        lever_ridge=s.lever_arm_ridge,
        lever_max_m=s.lever_arm_max_m,
        acc_bias_step_deg=s.acc_bias_step_deg,
        gap_tau_acc_s=s.gap_tau_acc_s,
        gap_recover_s=s.gap_recover_s,
        tau_acc2_s=s.tau_acc2_s,
        acc_bias_turn_deg=s.acc_bias_turn_deg,
        still_bias_dps=s.still_bias_dps,
        bias_motion_fast_tau_s=s.bias_motion_fast_tau_s,
        onset_tau_acc_s=s.onset_tau_acc_s,
        onset_decay_s=s.onset_decay_s,
        onset_rest_s=s.onset_rest_s,
        # (at most half the window: its first half is always the estimate's)
        bias_trim_n=min(bias_n // 2, round(s.bias_trim_s / dt_nominal_s)),
    )


class OrientationFilter:
    """Streaming orientation stage of one sensor (state carried between ``update`` calls).

    Parameters
    ----------
    settings : analysis settings (``tau_acc_s``, ``bias_motion_tau_s``, still and rest fields).
    gravity0 : (3,) accelerometer mean at the calibration rest (any scale).
    gyro_bias0_dps : (3,) gyro bias there, deg/s.
    dt_nominal_s : nominal sample step, s.
    t_prev_s : time of the sample before the first one fed (NaN: none).
    bias_unsure : the calibration's bias is unsure (its standard error over
        ``calib_bias_se_dps``): steps 3b and 6 of the reference (``bias_motion_fast_tau_s``).
    """

    def __init__(
        self,
        settings: Settings,
        gravity0: npt.ArrayLike,
        gyro_bias0_dps: npt.ArrayLike,
        dt_nominal_s: float,
        t_prev_s: float = math.nan,
        bias_unsure: bool = False,
    ) -> None:
        p = kernel_params(settings, dt_nominal_s)
        self.params = p
        # the kernel's keywords are TiltParams' fields (the reference takes the same object)
        self._k = TiltKernel(
            **dataclasses.asdict(p),
            gravity0=np.asarray(gravity0, dtype=np.float64).tolist(),
            gyro_bias0_dps=np.asarray(gyro_bias0_dps, dtype=np.float64).tolist(),
            t_prev_s=t_prev_s,
            bias_unsure=bias_unsure,
        )

    def update(
        self,
        t: FloatArray,
        acc: FloatArray,
        gyr: FloatArray,
    ) -> tuple[FloatArray, FloatArray, BoolArray, BoolArray]:
        """Take a chunk: ``t`` (N,) s, ``acc`` (N, 3) g, ``gyr`` (N, 3) deg/s.

        Returns ``(up (N, 3), u_ref (N, 3), still (N,) bool, rest (N,) bool)``: the direction
        the accelerometer reads at rest (opposite to gravity), unit, in the sensor frame; the
        calibration rest's up vector by the current accelerometer-bias estimate; the still flag
        for the segmenter; and the samples where a rest window updated the biases.
        """
        n = len(t)
        out = (np.empty((n, 3)), np.empty((n, 3)), np.empty(n, dtype=bool), np.empty(n, dtype=bool))
        self._k.run(t, acc, gyr, *out)
        return out

    def update_pose(
        self,
        t: FloatArray,
        acc: FloatArray,
        gyr: FloatArray,
    ) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray, BoolArray, FloatArray]:
        """Like :meth:`update`, with the attitude too: ``(up, u_ref, quat (N, 4), still, rest, lever (N, 3))``.

        ``quat`` (w, x, y, z) turns the sensor frame into the stage's I frame (the sensor frame
        at the calibration rest, moved only by the gyro): heading from the gyro, which gravity
        cannot give. ``up`` is ``quat^-1 (lp / |lp|) quat``, so ``quat up`` is gravity's
        direction in the I frame (it drifts only as slowly as the gyro bias error turns it).
        ``lever`` is the lever-arm estimate (hip -> sensor, sensor frame, m) after each sample.
        """
        n = len(t)
        up, uref, quat, lever = np.empty((n, 3)), np.empty((n, 3)), np.empty((n, 4)), np.empty((n, 3))
        still, rest = np.empty(n, dtype=bool), np.empty(n, dtype=bool)
        self._k.run(t, acc, gyr, up, uref, still, rest, quat, lever)
        return up, uref, quat, still, rest, lever

    @property
    def gyro_bias_dps(self) -> tuple[float, float, float]:
        return self._k.gyro_bias_dps

    @property
    def acc_bias_g(self) -> tuple[float, float, float]:
        return self._k.acc_bias_g

    @property
    def lever_m(self) -> tuple[float, float, float]:
        """Estimated lever arm hip -> sensor, sensor frame, m."""
        return self._k.lever_m

    def diagnostics(self) -> OrientationDiagnostics:
        k = self._k
        return OrientationDiagnostics(
            gyro_bias_dps=_vec3(k.gyro_bias_dps),
            gaps=int(k.n_gaps),
            max_gap_s=float(k.max_gap_s),
            bias_updates=int(k.n_bias_updates),
            acc_bias_g=_vec3(k.acc_bias_g),
            acc_bias_updates=int(k.n_acc_bias_updates),
            gap_restarts=int(k.n_gap_snaps),
            lever_m=_vec3(k.lever_m),
            still_fraction=k.n_still / k.n_samples if k.n_samples else 0.0,
        )


_cores = usable_cores


def poses_ahead(filt: OrientationFilter, t: FloatArray, acc: FloatArray, gyr: FloatArray,
                pieces: Sequence[tuple[int, int]]) -> Generator[Pose, None, None]:
    """``filt.update_pose`` of each piece ``[a, b)`` of a chunk, in order (consecutive pieces from 0).

    The orientation stage needs nothing from the stages after it, so with :data:`AHEAD_MIN_PIECES`
    pieces or more and a second core (``LEGREP_SERIAL`` unset) it runs ahead on a thread of its own,
    :data:`AHEAD_BATCH` pieces a call (the kernel releases the GIL), while the caller analyses the
    pieces it already has: the same calls in the same order on the same samples, so the same numbers
    (the kernel gives the same for any chunking). Nothing else may use ``filt`` until the iterator is
    exhausted or closed (closing waits for the thread)."""
    if len(pieces) < AHEAD_MIN_PIECES or serial_requested() or _cores() < 2:
        for a, b in pieces:
            yield filt.update_pose(t[a:b], acc[a:b], gyr[a:b])
        return
    batches = [pieces[i : i + AHEAD_BATCH] for i in range(0, len(pieces), AHEAD_BATCH)]

    def run() -> Iterator[Pose]:
        for batch in batches:
            lo, hi = batch[0][0], batch[-1][1]
            yield filt.update_pose(t[lo:hi], acc[lo:hi], gyr[lo:hi])

    # (at most AHEAD_DEPTH batches wait: the outputs of a long recording are not all kept at once;
    # closing waits for the thread, and a kernel error is raised here at its batch)
    ahead = prefetch(run(), AHEAD_DEPTH, name="legrep-orientation")
    try:
        for batch, got in zip(batches, ahead):
            lo = batch[0][0]
            for a, b in batch:
                yield tuple(x[a - lo : b - lo] for x in got)  # type: ignore[misc]
    finally:
        ahead.close()


def run_backward(
    settings: Settings,
    gravity0: npt.ArrayLike,
    gyro_bias0_dps: npt.ArrayLike,
    dt_nominal_s: float,
    t: FloatArray,
    acc: FloatArray,
    gyr: FloatArray,
    t_next_s: float,
) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray, BoolArray, FloatArray]:
    """The orientation stage run back in time over samples that precede the calibration rest.

    The stage starts at the rest (time ``t_next_s``) and goes backward: time reversed and
    negated, the rate negated (the same rotations, undone; the attitude stays sensor -> the
    sensor frame at the rest, as forward). Returns the outputs of
    :meth:`OrientationFilter.update_pose` in the samples' own (forward) order.
    """
    back = OrientationFilter(settings, gravity0, gyro_bias0_dps, dt_nominal_s, t_prev_s=-t_next_s)
    out = back.update_pose(np.ascontiguousarray(-t[::-1]), np.ascontiguousarray(acc[::-1]), np.ascontiguousarray(-gyr[::-1]))
    return tuple(x[::-1].copy() for x in out)  # type: ignore[return-value]


def track_gravity(
    gyro_dps: npt.ArrayLike, accel_g: npt.ArrayLike, rate_hz: float, settings: Settings | None = None
) -> FloatArray:
    """The up direction in the sensor frame per sample, by the pipeline's orientation stage.

    "Up" is the unit vector the accelerometer reads at rest (the specific force of standing
    still, opposite to gravity), normalised, in the sensor's own frame. The stage starts
    from the first rest found anywhere (the pipeline's calibration: gyro bias and gravity
    from it) and samples before that rest are estimated backward from it, exactly as the
    pipeline does; without any rest it starts from the first samples with zero bias.

    Parameters
    ----------
    gyro_dps : (N, 3) angular rate, deg/s.
    accel_g : (N, 3) specific force (g; any constant scale).
    rate_hz : sample rate, Hz (samples are taken as evenly spaced).
    settings : analysis settings (defaults if None).

    Returns
    -------
    (N, 3) float64 unit vectors.

    Raises
    ------
    InputError
        Arrays of the wrong shape, non-finite values or a non-positive rate.
    """
    from .calibration import Calibrator

    g = np.ascontiguousarray(gyro_dps, dtype=np.float64)
    a = np.ascontiguousarray(accel_g, dtype=np.float64)
    if g.ndim != 2 or g.shape[1] != 3 or a.shape != g.shape:
        raise InputError(f"gyro_dps and accel_g must both have shape (N, 3), got {g.shape} and {a.shape}")
    if not (math.isfinite(rate_hz) and rate_hz > 0):
        raise InputError(f"rate_hz must be a positive number, got {rate_hz!r}")
    if not (np.isfinite(g).all() and np.isfinite(a).all()):
        raise InputError("gyro_dps and accel_g must be finite, got NaN/inf")
    s = settings or Settings()
    n = len(g)
    if n == 0:
        return np.empty((0, 3))
    t = np.arange(n) / float(rate_hz)
    dt = 1.0 / float(rate_hz)
    cal_tool = Calibrator(s, "track_gravity")
    try:
        cal = None
        for i in range(0, n, 512):  # slices: the first rest is usually early
            cal = cal_tool.update(t[i : i + 512], a[i : i + 512], g[i : i + 512])
            if cal is not None:
                break
        cal = cal or cal_tool.finish()
        start, grav, bias = cal.start_index, cal.gravity_ref, cal.gyro_bias_dps
    except CalibrationError:
        m = max(1, min(n, round(s.calib_min_still_s / dt)))
        start, grav, bias = 0, a[:m].mean(axis=0), np.zeros(3)
    if not np.linalg.norm(grav) > 0:
        raise InputError("accel_g reads zero at the start; expected gravity (about 1 g)")
    fwd = OrientationFilter(s, grav, bias, dt)
    up = np.empty((n, 3))
    up[start:] = fwd.update(t[start:], a[start:], g[start:])[0]
    if start:
        up[:start] = run_backward(s, grav, bias, dt, t[:start], a[:start], g[:start], float(t[start]))[0]
    return up
