"""The orientation kernel of ``legrep._fastcore`` in isolation.

(The rep kernels, ``RepMachine``, ``measure`` and ``arm_flags``, are tested against their
plain-Python reference in tests/test_reps_reference.py.)

* ``TiltKernel`` on synthetic rotations with a known answer (up vector, gyro scale error
  removed by gravity, gyro and accelerometer bias learnt, lever arm, lost samples) and
  bit-identical output for any chunking; ``hip_angles`` against the geometry (the plain-Python
  reference of every step is compared in tests/test_fusion_reference.py);
* wrong dtypes / shapes / indices give one clear ValueError.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from conftest import ROOT  # noqa: F401  (puts the repository on sys.path)

from legrep._fastcore import TiltKernel, hip_angles
from legrep.fusion.orientation import kernel_params
from legrep.settings import Settings

RATE_HZ = 100.0
DT_S = 1.0 / RATE_HZ


# ---------------------------------------------------------------------- orientation kernel
def _tilt(settings: Settings | None = None, gravity0=(0.0, 0.0, 1.0), bias0=(0.0, 0.0, 0.0), dt=DT_S) -> TiltKernel:
    """A TiltKernel with the parameters the pipeline derives from ``settings``."""
    return TiltKernel(**{**_tilt_kwargs(settings, dt), "gravity0": list(gravity0), "gyro_bias0_dps": list(bias0)})


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


def _imu(theta_deg, rate_dps, gyro_scale=1.0, gyro_bias=(0.0, 0.0, 0.0), acc_bias=(0.0, 0.0, 0.0)):
    """Gravity and gyro seen by a sensor turned by theta about its y axis (g units, dps).

    The gyro reports its mean rate over the step before each sample (as a MEMS gyro's output,
    filtered over its output period; the first sample: the instantaneous rate)."""
    th = np.radians(theta_deg)
    acc = np.stack([-np.sin(th), np.zeros_like(th), np.cos(th)], axis=1)
    gyr = np.zeros((len(th), 3))
    mean_rate = np.concatenate([rate_dps[:1], np.diff(theta_deg) / DT_S])
    gyr[:, 1] = mean_rate * gyro_scale
    return acc + np.asarray(acc_bias), gyr + np.asarray(gyro_bias)


def _true_up(theta_deg):
    th = np.radians(theta_deg)
    return np.stack([-np.sin(th), np.zeros_like(th), np.cos(th)], axis=1)


def _run(kernel, t, acc, gyr, chunks=None):
    n = len(t)
    up, uref = np.empty((n, 3)), np.empty((n, 3))
    still, rest = np.empty(n, dtype=bool), np.empty(n, dtype=bool)
    bounds = [0, *(chunks or []), n]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        kernel.run(t[lo:hi], acc[lo:hi], gyr[lo:hi], up[lo:hi], uref[lo:hi], still[lo:hi], rest[lo:hi])
    return up, uref, still, rest


def _angle_err_deg(up, truth_up):
    return np.degrees(np.arccos(np.clip(np.einsum("ij,ij->i", up, truth_up), -1.0, 1.0)))


def test_up_vector_follows_a_known_rotation():
    t, truth, rate = _raise_and_lower(reps=2)
    acc, gyr = _imu(truth, rate)
    k = _tilt()
    up, uref, still, rest = _run(k, t, acc, gyr)
    # an exact gyro and accelerometer at the rotation centre: the strapdown carries the up
    # vector through the raise (exactly: one axis, the step's mean rate) and gravity agrees
    assert np.max(_angle_err_deg(up, _true_up(truth))) < 0.02
    np.testing.assert_allclose(np.linalg.norm(up, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(uref, np.tile([0.0, 0.0, 1.0], (len(t), 1)), atol=1e-4)  # no accelerometer bias seen
    assert still[:150].all() and still[-100:].all() and not still[int(3.0 * RATE_HZ)]
    assert rest.any() and k.n_gaps == 0


def test_gravity_removes_a_gyro_scale_error():
    t, truth, rate = _raise_and_lower(top_deg=60.0, hold_s=6.0)
    acc, gyr = _imu(truth, rate, gyro_scale=1.10)  # the gyro over-reads by 10 %: 6 deg at the top
    # with the accelerometer trusted (no bias fit: that fit trusts the gyro between rests)
    up, *_ = _run(_tilt(Settings(acc_bias_memory=0.0)), t, acc, gyr)
    err = _angle_err_deg(up, _true_up(truth))
    top_start, top_end = int(4.0 * RATE_HZ), int(10.0 * RATE_HZ) - 1
    assert err[top_start] > 1.5  # the gyro carried the error into the hold ...
    assert err[top_end] < 0.25 * err[top_start]  # ... gravity takes it out (tau_acc_s = 3 s)


def test_gyro_bias_is_learnt_at_rests():
    t, truth, rate = _raise_and_lower(top_deg=50.0, rest_s=3.0, hold_s=3.0, reps=3)
    bias = np.array([0.6, -0.4, 0.3])
    acc, gyr = _imu(truth, rate, gyro_bias=bias)
    k = _tilt()  # starts from a zero bias
    up, *_ = _run(k, t, acc, gyr)
    np.testing.assert_allclose(k.gyro_bias_dps, bias, atol=0.03)
    assert k.n_bias_updates > 10
    assert np.max(_angle_err_deg(up, _true_up(truth))[-200:]) < 0.3


def test_accelerometer_bias_is_learnt_from_rests_in_two_poses():
    t, truth, rate = _raise_and_lower(top_deg=70.0, rest_s=2.0, hold_s=2.0, reps=4)
    acc_bias = np.array([0.05, -0.04, 0.03])
    acc, gyr = _imu(truth, rate, acc_bias=acc_bias)
    k = _tilt(gravity0=acc[0])
    up, uref, *_ = _run(k, t, acc, gyr)
    est = np.array(k.acc_bias_g)
    # turns about y show the x and z components; y is unobservable and stays near 0
    np.testing.assert_allclose(est[[0, 2]], acc_bias[[0, 2]], atol=0.004)
    assert abs(est[1]) < 0.01
    assert k.n_acc_bias_updates >= 4
    # with the bias known, the reference rest's up vector and the late up vectors are right in
    # the plane of the turns (x, z: what a hip angle about y reads)
    def in_plane_deg(u):
        return np.degrees(np.arctan2(-u[..., 0], u[..., 2]))

    assert abs(in_plane_deg(uref[-1])) < 0.3
    late_top = (t > t[-1] - 6.0 - 1.0) & (t < t[-1] - 6.0)
    assert np.max(np.abs(in_plane_deg(up[late_top]) - truth[late_top])) < 0.3


def _turns(n_turns=5, extra_deg=10.0, rest_s=3.0, move_s=5.0):
    """True angle (deg) and rate (dps): a rest, ``n_turns`` whole turns plus ``extra_deg`` about y, a rest."""
    t = np.arange(0, int((2 * rest_s + move_s) * RATE_HZ)) * DT_S
    u = np.clip((t - rest_s) / move_s, 0.0, 1.0)
    theta = (360.0 * n_turns + extra_deg) * (u - np.sin(2 * np.pi * u) / (2 * np.pi))
    return t, theta, np.gradient(theta, DT_S)


def test_accelerometer_bias_is_not_fitted_across_many_turns():
    # a hand-held sensor turned 5 times (up to 720 dps) between two rests, by a gyro that
    # over-reads by 1 %: the gyro's two poses disagree with gravity by 18 deg, which is no
    # accelerometer bias (there is none): the pair is too far apart (acc_bias_turn_deg) to count
    t, truth, rate = _turns()
    acc, gyr = _imu(truth, rate, gyro_scale=1.01)
    k = _tilt(gravity0=acc[0])
    up, uref, *_ = _run(k, t, acc, gyr)
    assert k.n_bias_updates > 10
    assert np.linalg.norm(k.acc_bias_g) < 0.002  # (0.155 g before the pairs were weighted by the path)
    assert np.max(_angle_err_deg(uref, _true_up(truth[:1]))) < 0.01
    # the same with the weighting off: the fit reads a bias of 0.15 g into it (the test can fail)
    k_off = _tilt(Settings(acc_bias_turn_deg=1e6), gravity0=acc[0])
    _run(k_off, t, acc, gyr)
    assert np.linalg.norm(k_off.acc_bias_g) > 0.05


def test_lever_arm_is_learnt_and_its_acceleration_removed():
    # the sensor 0.25 m from the rotation centre along x: w x (w x r) + alpha x r adds to the reading
    t, truth, rate = _raise_and_lower(top_deg=80.0, move_s=1.0, hold_s=1.0, rest_s=1.0, reps=8)
    acc, gyr = _imu(truth, rate)
    r = np.array([0.25, 0.0, 0.0])
    w = np.radians(gyr)
    alpha = np.gradient(w, t, axis=0)
    lin = np.cross(w, np.cross(w, r)) + np.cross(alpha, r)
    acc = acc + lin / 9.80665
    k = _tilt(gravity0=acc[0])
    up, *_ = _run(k, t, acc, gyr)
    np.testing.assert_allclose(np.array(k.lever_m)[[0, 2]], r[[0, 2]], atol=0.02)
    assert np.max(_angle_err_deg(up, _true_up(truth))[-300:]) < 0.2


def test_lost_samples_restart_the_low_pass_at_the_next_still_window():
    t, truth, rate = _raise_and_lower(top_deg=60.0, hold_s=3.0)
    acc, gyr = _imu(truth, rate)
    # lose 1.4 s of the raise: the first rate after the gap, taken over all of it, misses the
    # rotation by several degrees
    keep = ~((t > 2.2) & (t < 3.6))
    t, truth, acc, gyr = t[keep], truth[keep], acc[keep], gyr[keep]
    j = int(np.searchsorted(t, 3.6))
    miss_deg = abs(truth[j] - truth[j - 1] - gyr[j, 1] * (t[j] - t[j - 1]))
    assert miss_deg > 10.0
    k = _tilt()
    up, *_ = _run(k, t, acc, gyr)
    err = _angle_err_deg(up, _true_up(truth))
    # the lost rates taken as linear across the gap and the fast low-pass after it (step 8) do
    # better than the rate after the gap taken over all of it, but the leg is still off then
    assert 0.5 < err[np.searchsorted(t, 3.7)] < 0.5 * miss_deg
    assert k.n_gap_snaps == 1
    hold = (t > 4.5) & (t < 7.0)
    assert np.max(err[hold]) < 0.1  # back on gravity as soon as the leg is still


def test_any_chunking_gives_bit_identical_outputs():
    rng = np.random.default_rng(4)
    t, truth, rate = _raise_and_lower(top_deg=50.0, reps=3, hold_s=1.5)
    acc, gyr = _imu(truth, rate, gyro_scale=1.05, gyro_bias=(0.2, 0.1, -0.2), acc_bias=(0.02, 0.01, -0.03))
    acc = acc + rng.normal(0, 0.01, acc.shape)
    gyr = gyr + rng.normal(0, 0.4, gyr.shape)
    keep = rng.random(len(t)) > 0.01  # 1 % lost samples
    t, acc, gyr = t[keep], acc[keep], gyr[keep]
    whole_k = _tilt(gravity0=acc[0])
    whole = _run(whole_k, t, acc, gyr)
    for trial in range(5):
        cuts = sorted(set(rng.integers(1, len(t), size=int(rng.integers(1, 400))).tolist()))
        if trial == 0:
            cuts = list(range(1, len(t)))  # one sample at a time
        k = _tilt(gravity0=acc[0])
        got = _run(k, t, acc, gyr, cuts)
        for x, y in zip(got, whole):
            np.testing.assert_array_equal(x, y)
        for name in ("n_gaps", "n_bias_updates", "n_acc_bias_updates", "n_gap_snaps", "n_still", "gyro_bias_dps", "acc_bias_g", "lever_m"):
            assert getattr(k, name) == getattr(whole_k, name), name


def test_strided_inputs_give_the_same_outputs():
    t, truth, rate = _raise_and_lower()
    acc, gyr = _imu(truth, rate)
    a = _run(_tilt(), t, acc, gyr)
    wide_t = np.repeat(t, 2)[::2]
    b = _run(_tilt(), wide_t, np.asfortranarray(acc), np.repeat(gyr, 2, axis=0)[::2])
    np.testing.assert_array_equal(a[0], b[0])


def _rot(axis: int, a_rad: np.ndarray) -> np.ndarray:
    c, s_ = np.cos(a_rad), np.sin(a_rad)
    m = np.zeros((len(a_rad), 3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m[:, axis, axis] = 1.0
    m[:, i, i], m[:, i, j], m[:, j, i], m[:, j, j] = c, -s_, s_, c
    return m


def test_hip_angles_is_the_flexion_whatever_the_abduction_and_axial_rotation():
    """Truth in the ISB hip order (Wu et al. 2002): world-from-thigh R = Ry(-flex) Rz(abd) Rx(axial)
    with the thigh lying level (x distal, y mediolateral, z up at rest); the sensor sits on the
    thigh in a random orientation. The old definition (the up vector's rotation about the
    flexion axis) reads atan2(sin th cos abd, cos th cos axial + ...) instead: degrees off."""
    rng = np.random.default_rng(6)
    n = 400
    flex = rng.uniform(-10.0, 95.0, n)
    abd, axial = rng.uniform(-20.0, 20.0, n), rng.uniform(-20.0, 20.0, n)
    q0 = rng.normal(size=4)
    q0 /= np.linalg.norm(q0)
    w, x, y, z = q0
    mount = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])  # thigh <- sensor
    r = _rot(1, -np.radians(flex)) @ _rot(2, np.radians(abd)) @ _rot(0, np.radians(axial)) @ mount  # world <- sensor
    # the I frame: the sensor frame at the reference rest (flex = abd = axial = 0)
    i_from_sensor = mount.T @ r
    from scipy.spatial.transform import Rotation

    quat = Rotation.from_matrix(i_from_sensor).as_quat()[:, [3, 0, 1, 2]]
    up = np.einsum("nji,j->ni", r, [0.0, 0.0, 1.0])
    g_ref = mount.T @ [0.0, 0.0, 1.0]
    f = mount.T @ [0.0, -1.0, 0.0]  # a raise (flex > 0) turns the thigh about -y
    a = mount.T @ [1.0, 0.0, 0.0]
    out = np.empty(n)
    hip_angles(up, np.broadcast_to(g_ref, up.shape), quat, a.tolist(), a.tolist(), f.tolist(), 5.0, out)
    np.testing.assert_allclose(out, flex + 5.0, atol=1e-9)


# ---------------------------------------------------------------------- bad input
def test_wrong_arrays_give_one_clear_error():
    k = _tilt()
    t = np.arange(10) * DT_S
    acc = np.tile([0.0, 0.0, 1.0], (10, 1))
    gyr = np.zeros((10, 3))
    up, uref = np.empty((10, 3)), np.empty((10, 3))
    still, rest = np.empty(10, dtype=bool), np.empty(10, dtype=bool)
    with pytest.raises(ValueError, match=r"time_s must be a float64 array, got buffer format 'f'"):
        k.run(t.astype(np.float32), acc, gyr, up, uref, still, rest)
    with pytest.raises(ValueError, match=r"acc_g must have shape \(N, 3\), got \(10, 2\)"):
        k.run(t, acc[:, :2], gyr, up, uref, still, rest)
    with pytest.raises(ValueError, match=r"gyr_dps must have 10 rows \(like time_s\), got 9"):
        k.run(t, acc, gyr[:9], up, uref, still, rest)
    with pytest.raises(ValueError, match=r"time_s must have shape \(N,\), got \(10, 3\)"):
        k.run(acc, acc, gyr, up, uref, still, rest)
    with pytest.raises(ValueError, match=r"rest_out must be a bool array, got buffer format 'd'"):
        k.run(t, acc, gyr, up, uref, still, t.copy())
    ro = np.empty((10, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"up_out must be a writable float64 array, got numpy.ndarray"):
        k.run(t, acc, gyr, ro, uref, still, rest)
    with pytest.raises(ValueError, match=r"time_s must be a float64 array, got list"):
        k.run(t.tolist(), acc, gyr, up, uref, still, rest)
    with pytest.raises(TypeError, match=r"run expected 7 to 9 arrays"):
        k.run(t, acc, gyr, up, still, rest)
    with pytest.raises(ValueError, match=r"gravity0 must be 3 numbers, got list"):
        TiltKernel(**{**_tilt_kwargs(), "gravity0": [1.0, 0.0]})
    with pytest.raises(ValueError, match=r"non-zero gravity0"):
        TiltKernel(**{**_tilt_kwargs(), "gravity0": [0.0, 0.0, 0.0]})
    with pytest.raises(ValueError, match=r"g_ref must have 10 rows"):
        hip_angles(up, up[:5], np.zeros((10, 4)), [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], 0.0, np.empty(10))
    with pytest.raises(ValueError, match=r"quat must have shape \(N, 4\), got \(10, 3\)"):
        hip_angles(up, up, up, [1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], 0.0, np.empty(10))
    # nothing was written or changed by the refused calls
    out = _run(k, t, acc, gyr)
    np.testing.assert_array_equal(out[0], np.tile([0.0, 0.0, 1.0], (10, 1)))
    assert k.n_samples == 10


def _tilt_kwargs(settings: Settings | None = None, dt: float = DT_S) -> dict:
    """TiltKernel's keywords for ``settings`` (a level sensor with no bias, a sure one)."""
    kw = dataclasses.asdict(kernel_params(settings or Settings(), dt))
    kw.update(gravity0=[0.0, 0.0, 1.0], gyro_bias0_dps=[0.0] * 3, t_prev_s=math.nan, bias_unsure=False)
    return kw
