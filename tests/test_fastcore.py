"""The C kernels of ``legrep._fastcore`` in isolation.

(The rep kernels, ``RepMachine``, ``measure`` and ``arm_flags``, are tested against their
plain-Python reference in tests/test_reps_reference.py.)

* ``AngleKernel`` on synthetic rotations with a known answer (angle, re-anchoring to gravity,
  gyro-bias tracking, lost samples) and bit-identical output for any chunking;
* wrong dtypes / shapes / indices give one clear ValueError.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import ROOT  # noqa: F401  (puts the repository on sys.path)

from legrep._fastcore import AngleKernel
from legrep.settings import Settings

RATE_HZ = 100.0
DT_S = 1.0 / RATE_HZ


# ---------------------------------------------------------------------- angle kernel
def _kernel(axis=(0.0, 1.0, 0.0), bias0=(0.0, 0.0, 0.0), settings: Settings | None = None) -> AngleKernel:
    """An AngleKernel with the parameters HipAngleEstimator derives from ``settings`` at 100 Hz."""
    s = settings or Settings()
    still_n = max(1, round(s.still_min_s / DT_S))
    bias_n = max(4, round(1.5 / DT_S))
    return AngleKernel(
        axis=list(axis),
        gyro_bias0_dps=list(bias0),
        gyro_bias_dps=list(bias0),
        gravity_ref=[0.0, 0.0, 1.0],
        still_n=still_n,
        anchor_n=max(still_n + 1, round(s.anchor_rest_s / DT_S)),
        bias_n=bias_n,
        still_gyro_dps=s.still_gyro_dps,
        still_mean_dps=s.still_mean_dps,
        rest_tilt_deg=0.2,
        bias_gain=1.0 - math.exp(-bias_n * DT_S / s.bias_tau_s),
        bias_jump_dps=1.0,
        gap_s=2.5 * DT_S,
        max_gap_s=s.max_gap_s,
        anchor_max_error_deg=s.anchor_max_error_deg,
        soft_zone_deg=30.0,
        soft_gain=0.5,
        dt_nominal_s=DT_S,
        t_prev_s=math.nan,
        run=100,
        run_s=still_n,
    )


def _raise_and_lower(top_deg=60.0, rest_s=2.0, move_s=2.0, hold_s=2.0, reps=1):
    """True angle (deg) and its rate (dps) of smooth raises about the sensor's y axis."""
    t = np.arange(0, int((rest_s + reps * (2 * move_s + hold_s + rest_s)) * RATE_HZ)) * DT_S
    theta = np.zeros(len(t))
    rate = np.zeros(len(t))
    t0 = rest_s
    for _ in range(reps):
        for start, sign in ((t0, 1.0), (t0 + move_s + hold_s, -1.0)):
            u = (t - start) / move_s
            inside = (u >= 0) & (u <= 1)
            theta += np.where(u > 1, sign * top_deg, np.where(inside, sign * top_deg * (1 - np.cos(np.pi * u)) / 2, 0.0))
            rate += np.where(inside, sign * top_deg * np.pi / (2 * move_s) * np.sin(np.pi * u), 0.0)
        t0 += 2 * move_s + hold_s + rest_s
    return t, theta, rate


def _imu(theta_deg, rate_dps, gyro_scale=1.0, gyro_bias=(0.0, 0.0, 0.0)):
    """Gravity and gyro seen by a sensor turned by theta about its y axis (g units, dps)."""
    th = np.radians(theta_deg)
    acc = np.stack([-np.sin(th), np.zeros_like(th), np.cos(th)], axis=1)
    gyr = np.zeros((len(th), 3))
    gyr[:, 1] = rate_dps * gyro_scale
    return acc, gyr + np.asarray(gyro_bias)


def _run(kernel, t, acc, gyr, chunks=None):
    theta = np.empty(len(t))
    rest = np.empty(len(t), dtype=bool)
    bounds = [0, *(chunks or []), len(t)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        kernel.run(t[lo:hi], acc[lo:hi], gyr[lo:hi], theta[lo:hi], rest[lo:hi])
    return theta, rest


def test_angle_follows_a_known_rotation():
    t, truth, rate = _raise_and_lower()
    acc, gyr = _imu(truth, rate)
    k = _kernel()
    theta, rest = _run(k, t, acc, gyr)
    # trapezoid integration of a smooth 60 deg raise: within 0.05 deg everywhere; the zero-rate
    # update holds the first slow samples of the raise back (a few hundredths of a degree) and
    # credits them at the onset, so once moving the angle is exact to a few thousandths
    err = np.abs(theta - truth)
    assert np.max(err) < 0.05
    assert np.max(err[(t > 2.3) & (t < 3.9)]) < 0.005
    assert np.max(theta) == pytest.approx(60.0, abs=0.05)
    # at rest at the start, the top and the end; moving in between
    assert rest[:150].all() and rest[-100:].all()
    assert not rest[int(3.0 * RATE_HZ)]
    assert k.n_anchors == 0 and k.n_gaps == 0  # gyro and gravity agree: no re-anchor


def test_gyro_scale_error_is_reanchored_to_gravity_at_rests():
    t, truth, rate = _raise_and_lower(top_deg=60.0, hold_s=2.0)
    acc, gyr = _imu(truth, rate, gyro_scale=1.25)  # the gyro over-reads by 25 %: 75 deg at the top
    k = _kernel()
    theta, _ = _run(k, t, acc, gyr)
    top_end = int((2.0 + 2.0 + 2.0) * RATE_HZ) - 1  # last sample of the hold
    assert theta[top_end - int(1.2 * RATE_HZ)] == pytest.approx(75.0, abs=0.2)  # before anchor_rest_s of rest
    assert theta[top_end] == pytest.approx(60.0, abs=0.05)  # after it: on gravity (15 deg > 10 deg)
    assert theta[-1] == pytest.approx(0.0, abs=0.05)  # the 15 deg over-read on the way down is removed too
    assert k.n_anchors == 2
    assert k.anchor_total_deg == pytest.approx(30.0, abs=0.3)


def test_small_differences_near_the_pose_are_halved_at_each_rest():
    t, truth, rate = _raise_and_lower(top_deg=20.0, hold_s=2.0)
    acc, gyr = _imu(truth, rate, gyro_scale=1.1)  # 22 deg by gyro at the top, 20 by gravity
    k = _kernel()
    theta, _ = _run(k, t, acc, gyr)
    top_end = int(6.0 * RATE_HZ) - 1
    # under anchor_max_error_deg and within 30 deg of the pose: half the 2 deg is corrected
    assert theta[top_end] == pytest.approx(21.0, abs=0.05)
    # back down the gyro removes its 22 deg: -1 deg, then halved again at the final rest
    assert theta[-1] == pytest.approx(-0.5, abs=0.05)
    assert k.n_anchors == 0


def test_bias_windows_come_every_window_of_a_long_quiet_run():
    n = int(20 * RATE_HZ)
    t = np.arange(n) * DT_S
    acc, gyr = _imu(np.zeros(n), np.zeros(n), gyro_bias=(0.1, 0.0, 0.0))
    k = _kernel()  # starts with a quiet run of 100 samples (calibration ended still)
    updates = np.empty(n, dtype=np.int64)
    for i in range(n):  # one sample at a time, to see where each update happens
        _run(k, t[i : i + 1], acc[i : i + 1], gyr[i : i + 1])
        updates[i] = k.n_bias_updates
    bias_n = 150
    run = 100 + np.arange(1, n + 1)
    have_history = np.arange(1, n + 1) >= bias_n + bias_n // 2  # the window ends half a window back
    due = (run >= 2 * bias_n) & ((run - 2 * bias_n) % bias_n == 0) & have_history
    np.testing.assert_array_equal(np.flatnonzero(np.diff(updates, prepend=0)), np.flatnonzero(due))
    assert due.sum() > 10


def test_gyro_bias_drift_is_tracked_at_rests():
    t = np.arange(0, int(40 * RATE_HZ)) * DT_S
    truth = np.zeros(len(t))
    acc, gyr = _imu(truth, np.zeros(len(t)), gyro_bias=(0.4, -0.3, 0.5))  # not in the calibration bias
    k = _kernel()
    theta, _ = _run(k, t, acc, gyr)
    assert k.n_bias_updates > 5
    np.testing.assert_allclose(k.gyro_bias_dps, (0.4, -0.3, 0.5), atol=0.02)
    # untracked, -0.3 dps about the axis drifts 12 deg in 40 s; tracked, the drift stops
    # within a few windows (one rest: gravity is compared once, at its anchor_rest_s)
    assert abs(theta[-1]) < 2.0
    assert np.ptp(theta[-2000:]) < 1e-9  # the zero-rate update holds once the residual is small


def test_lost_samples_force_a_gravity_check_at_the_next_still_window():
    # near the calibration pose (under 30 deg) the check after a gap trusts gravity fully
    t, truth, rate = _raise_and_lower(top_deg=25.0, hold_s=3.0)
    acc, gyr = _imu(truth, rate)
    keep = (t < 2.8) | (t >= 3.25)  # lose 0.45 s in the middle of the raise
    t, acc, gyr, truth = t[keep], acc[keep], gyr[keep], truth[keep]
    k = _kernel()
    theta, _ = _run(k, t, acc, gyr)
    assert k.n_gap_anchors == 1 and k.n_gaps == 0  # 0.46 s is under max_gap_s: not a long gap
    # bridging the gap linearly misses about 0.1 deg of the raise ...
    late_raise = (t > 3.3) & (t < 3.9)
    assert np.min(np.abs(theta[late_raise] - truth[late_raise])) > 0.05
    # ... until the first still window at the top re-anchors onto gravity. Its window (and the
    # later anchor_rest_s one) still holds the last, slow samples of the raise: gravity's tilt
    # reads up to ~0.013 deg low; without the forced check the hold would read ~0.1 deg low.
    top = (t > 4.5) & (t < 7.0)
    np.testing.assert_allclose(theta[top], 25.0, atol=0.02)


def test_any_chunking_gives_bit_identical_angles():
    rng = np.random.default_rng(4)
    t, truth, rate = _raise_and_lower(top_deg=50.0, reps=3, hold_s=1.5)
    acc, gyr = _imu(truth, rate, gyro_scale=1.15, gyro_bias=(0.2, 0.1, -0.2))
    acc = acc + rng.normal(0, 0.003, acc.shape)
    gyr = gyr + rng.normal(0, 0.4, gyr.shape)
    keep = rng.random(len(t)) > 0.01  # 1 % lost samples
    t, acc, gyr = t[keep], acc[keep], gyr[keep]
    whole_k = _kernel()
    whole = _run(whole_k, t, acc, gyr)
    for trial in range(5):
        cuts = sorted(set(rng.integers(1, len(t), size=int(rng.integers(1, 400))).tolist()))
        if trial == 0:
            cuts = list(range(1, len(t)))  # one sample at a time
        k = _kernel()
        got = _run(k, t, acc, gyr, cuts)
        np.testing.assert_array_equal(got[0], whole[0])
        np.testing.assert_array_equal(got[1], whole[1])
        for name in ("n_gaps", "n_anchors", "n_gap_anchors", "n_bias_updates", "n_still", "anchor_total_deg"):
            assert getattr(k, name) == getattr(whole_k, name), name
        assert k.gyro_bias_dps == whole_k.gyro_bias_dps


def test_strided_inputs_give_the_same_angles():
    t, truth, rate = _raise_and_lower()
    acc, gyr = _imu(truth, rate)
    a = _run(_kernel(), t, acc, gyr)
    # Fortran-ordered and every-other-row views are read through their strides
    wide_t = np.repeat(t, 2)[::2]
    b = _run(_kernel(), wide_t, np.asfortranarray(acc), np.repeat(gyr, 2, axis=0)[::2])
    np.testing.assert_array_equal(a[0], b[0])


# ---------------------------------------------------------------------- bad input
def test_wrong_arrays_give_one_clear_error():
    k = _kernel()
    t = np.arange(10) * DT_S
    acc = np.tile([0.0, 0.0, 1.0], (10, 1))
    gyr = np.zeros((10, 3))
    out = np.empty(10)
    rest = np.empty(10, dtype=bool)
    with pytest.raises(ValueError, match=r"time_s must be a float64 array, got buffer format 'f'"):
        k.run(t.astype(np.float32), acc, gyr, out, rest)
    with pytest.raises(ValueError, match=r"acc_g must have shape \(N, 3\), got \(10, 2\)"):
        k.run(t, acc[:, :2], gyr, out, rest)
    with pytest.raises(ValueError, match=r"gyr_dps must have 10 rows \(like time_s\), got 9"):
        k.run(t, acc, gyr[:9], out, rest)
    with pytest.raises(ValueError, match=r"time_s must have shape \(N,\), got \(10, 3\)"):
        k.run(acc, acc, gyr, out, rest)
    with pytest.raises(ValueError, match=r"rest_out must be a bool array, got buffer format 'd'"):
        k.run(t, acc, gyr, out, out)
    ro = np.empty(10)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"angle_out_deg must be a writable float64 array, got numpy.ndarray"):
        k.run(t, acc, gyr, ro, rest)
    with pytest.raises(ValueError, match=r"time_s must be a float64 array, got list"):
        k.run(t.tolist(), acc, gyr, out, rest)
    with pytest.raises(ValueError, match=r"axis must be 3 numbers, got list"):
        AngleKernel(**{**_kernel_kwargs(), "axis": [1.0, 0.0]})
    # nothing was written or changed by the refused calls
    theta, _ = _run(k, t, acc, gyr)
    np.testing.assert_array_equal(theta, np.zeros(10))
    assert k.n_samples == 10


def _kernel_kwargs() -> dict:
    s = Settings()
    return dict(axis=[0.0, 1.0, 0.0], gyro_bias0_dps=[0.0] * 3, gyro_bias_dps=[0.0] * 3, gravity_ref=[0.0, 0.0, 1.0],
                still_n=20, anchor_n=100, bias_n=150, still_gyro_dps=s.still_gyro_dps, still_mean_dps=s.still_mean_dps,
                rest_tilt_deg=0.2, bias_gain=0.5, bias_jump_dps=1.0, gap_s=0.025, max_gap_s=s.max_gap_s,
                anchor_max_error_deg=s.anchor_max_error_deg, soft_zone_deg=30.0, soft_gain=0.5, dt_nominal_s=DT_S,
                t_prev_s=math.nan, run=100, run_s=20)
