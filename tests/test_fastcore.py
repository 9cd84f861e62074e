"""The C kernels of ``legrep._fastcore`` in isolation.

* the segmenter's event scans, ``arm_flags`` and ``measure`` against straightforward numpy
  references written here from the definitions in host/reps (random arrays, many trials);
* ``TiltKernel`` on synthetic rotations with a known answer (up vector, gyro scale error
  removed by gravity, gyro and accelerometer bias learnt, lever arm, lost samples) and
  bit-identical output for any chunking; ``hip_angles`` against the geometry (the plain-Python
  reference of every step is compared in tests/test_fusion_reference.py);
* ``RepMachine`` (through ``RepSegmenter``) on a synthetic angle trace with known reps;
* wrong dtypes / shapes / indices give one clear ValueError.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from conftest import ROOT  # noqa: F401  (puts the repository on sys.path)

from legrep._fastcore import (
    RepMachine,
    TiltKernel,
    arm_flags,
    hip_angles,
    measure,
    scan_idle,
    scan_pend,
    scan_return,
    scan_up,
)
from legrep.fusion.orientation import kernel_params
from legrep.model import Leg
from legrep.reps.measure import measure_rep
from legrep.reps.segmenter import RepSegmenter
from legrep.settings import Settings

RATE_HZ = 100.0
DT_S = 1.0 / RATE_HZ


# ---------------------------------------------------------------------- numpy references
def _first(mask: np.ndarray, lo: int) -> int:
    hits = np.flatnonzero(mask)
    return lo + int(hits[0]) if len(hits) else -1


def ref_idle(a, arm, lo, hi, enter, under):
    before = np.concatenate(([-np.inf], a[:-1]))[lo:hi]
    x = a[lo:hi]
    return _first(((x > enter) & (before <= enter)) | (x < under) | arm[lo:hi], lo)


def ref_up(a, t, arm, lo, hi, level, peak, t_out):
    x = a[lo:hi]
    m = np.maximum(np.maximum.accumulate(x), peak) if len(x) else np.array([peak])
    k = _first((x <= level + 0.1 * (m - level)) | arm[lo:hi] | (t[lo:hi] > t_out), lo)
    return k, float(m[k - lo] if k >= 0 else m[-1])


def ref_pend(a, t, arm, lo, hi, under, rise, t_ok):
    x = a[lo:hi]
    return _first((x < under) | (x > rise) | arm[lo:hi] | (t[lo:hi] >= t_ok), lo)


def ref_measure(t, a, base, lo, pf, end):
    """The README definitions, written out independently (crossings interpolated, clipped)."""

    def cross(i, j, level):
        if a[j] == a[i]:
            return t[j]
        f = min(max((level - a[i]) / (a[j] - a[i]), 0.0), 1.0)
        return t[i] + f * (t[j] - t[i])

    p = pf + int(np.argmax(a[pf : end + 1]))
    rom = a[p] - base
    lo10, hi90 = base + 0.1 * rom, base + 0.9 * rom
    below = [i for i in range(lo, p) if a[i] < lo10]
    j = below[-1] if below else lo
    start = cross(j, j + 1, lo10) if below else t[lo]
    up = next(i for i in range(j, p + 1) if a[i] >= hi90)
    top_in = cross(up - 1, up, hi90) if up > j else t[up]
    m = max(i for i in range(p, end + 1) if a[i] >= hi90)
    top_out = cross(m, m + 1, hi90) if m < end else t[m]
    q = next((i for i in range(m, end + 1) if a[i] <= lo10), end)
    end_s = cross(q - 1, q, lo10) if q > m else t[q]
    return (start, t[p], end_s, base, a[p], rom, top_in - start, top_out - top_in, end_s - top_out)


# ---------------------------------------------------------------------- scans
def _random_walk(rng, n):
    a = np.cumsum(rng.normal(0.0, 2.0, n))
    t = np.cumsum(rng.uniform(0.005, 0.015, n))
    arm = rng.random(n) < 0.01
    return a, t, arm


def test_scans_match_numpy_references_on_random_arrays():
    rng = np.random.default_rng(1)
    for trial in range(300):
        n = int(rng.integers(1, 400))
        a, t, arm = _random_walk(rng, n)
        lo = int(rng.integers(0, n))
        hi = int(rng.integers(lo, n + 1))
        level = float(rng.choice(a))
        enter, under = level + rng.uniform(0, 15), level - rng.uniform(0, 15)
        assert scan_idle(a, arm, lo, hi, enter, under) == ref_idle(a, arm, lo, hi, enter, under), trial
        peak = float(level + rng.uniform(0, 30))
        t_out = float(rng.uniform(t[0], t[-1] + 1))
        k, m = scan_up(a, t, arm, lo, hi, level, peak, t_out)
        rk, rm = ref_up(a, t, arm, lo, hi, level, peak, t_out)
        assert (k, m) == (rk, rm), trial
        assert scan_pend(a, t, arm, lo, hi, under, enter, t_out) == ref_pend(a, t, arm, lo, hi, under, enter, t_out)
        if hi > lo:
            frm = int(rng.integers(lo, hi))
            i, m_i, m_all = scan_return(a, lo, frm, hi, level)
            run_max = np.maximum.accumulate(a[lo:hi])
            ok = np.flatnonzero(a[lo:hi] <= level + 0.1 * (run_max - level))
            ok = ok[ok >= frm - lo]
            assert i == (lo + int(ok[0]) if len(ok) else -1)
            assert m_all == run_max[-1]
            if i >= 0:
                assert m_i == run_max[i - lo]


def test_idle_scan_needs_a_rise_through_the_threshold():
    a = np.array([20.0, 20.0, 5.0, 15.0, 15.0])  # starts above: only the later rise counts
    arm = np.zeros(5, dtype=bool)
    assert scan_idle(a[1:], arm[1:], 0, 4, 10.0, -10.0) == 0  # a[-1] counts as -inf: index 0 rises
    assert scan_idle(a, arm, 1, 5, 10.0, -10.0) == 3
    assert scan_idle(a, arm, 1, 3, 10.0, -10.0) == -1


def test_arm_flags_mark_where_a_rest_reaches_its_length():
    rng = np.random.default_rng(2)
    still = rng.random(5000) < 0.8
    out = np.empty(len(still), dtype=bool)
    carry = 7
    end = arm_flags(still, carry, 15, out)
    runs = []
    r = carry
    for s in still:
        r = r + 1 if s else 0
        runs.append(r)
    np.testing.assert_array_equal(out, np.array(runs) == 15)
    assert end == runs[-1]


# ---------------------------------------------------------------------- measures
def test_measure_of_a_trapezoid_rep_has_the_analytic_crossings():
    # baseline 0, linear rise 0 -> 50 deg over 1..2 s, hold to 3 s, fall to 0 at 5 s, 100 Hz
    t = np.arange(0, 600) * DT_S
    a = np.interp(t, [0, 1, 2, 3, 5, 6], [0, 0, 50, 50, 0, 0])
    end = int(round(4.9 / DT_S))  # first sample at or below 10 % after the peak (5 deg at 4.8 s)
    m = measure_rep(t, a, 0.0, 0, 100, end)
    assert m.peak_deg == 50.0 and m.rom_deg == 50.0
    assert m.start_s == pytest.approx(1.1, abs=1e-9)  # 10 % = 5 deg on the way up
    assert m.up_s == pytest.approx(1.9 - 1.1, abs=1e-9)  # 90 % = 45 deg
    assert m.hold_s == pytest.approx(3.2 - 1.9, abs=1e-9)
    assert m.down_s == pytest.approx(4.8 - 3.2, abs=1e-9)
    assert m.end_s == pytest.approx(4.8, abs=1e-9)


def test_measure_matches_reference_on_random_reps():
    rng = np.random.default_rng(3)
    for trial in range(200):
        n = int(rng.integers(30, 300))
        t = np.cumsum(rng.uniform(0.005, 0.015, n))
        peak_at = int(rng.integers(5, n - 5))
        shape = np.interp(np.arange(n), [0, peak_at, n - 1], [0.0, rng.uniform(20, 90), 0.0])
        a = shape + rng.normal(0, 1.0, n)
        base = float(rng.normal(0, 1))
        lo = int(rng.integers(0, 3))
        pf = int(rng.integers(lo, peak_at))
        end = n - 1 - int(rng.integers(0, 3))
        got = measure(t, a, base, lo, pf, end)
        want = ref_measure(t, a, base, lo, pf, end)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, err_msg=f"trial {trial}")


# ---------------------------------------------------------------------- orientation kernel
def _tilt(settings: Settings | None = None, gravity0=(0.0, 0.0, 1.0), bias0=(0.0, 0.0, 0.0), dt=DT_S) -> TiltKernel:
    """A TiltKernel with the parameters the pipeline derives from ``settings``."""
    p = kernel_params(settings or Settings(), dt)
    kw = dataclasses.asdict(p)
    kw["gravity0"] = list(gravity0)
    kw["gyro_bias0_dps"] = list(bias0)
    kw["t_prev_s"] = math.nan
    return TiltKernel(**kw)


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
    """Gravity and gyro seen by a sensor turned by theta about its y axis (g units, dps)."""
    th = np.radians(theta_deg)
    acc = np.stack([-np.sin(th), np.zeros_like(th), np.cos(th)], axis=1)
    gyr = np.zeros((len(th), 3))
    gyr[:, 1] = rate_dps * gyro_scale
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
    # vector through the raise (the trapezoid's error is tiny) and gravity agrees with it
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
    # lose 1.4 s of the raise: a straight line between the rates around the gap is 23 deg short
    keep = ~((t > 2.2) & (t < 3.6))
    t, truth, acc, gyr = t[keep], truth[keep], acc[keep], gyr[keep]
    k = _tilt()
    up, *_ = _run(k, t, acc, gyr)
    err = _angle_err_deg(up, _true_up(truth))
    assert err[np.searchsorted(t, 3.7)] > 10.0  # off after the gap
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


def test_hip_angles_is_the_rotation_about_the_axis():
    rng = np.random.default_rng(6)
    f = np.array([0.0, 1.0, 0.0])
    u_ref = np.array([0.0, 0.0, 1.0])
    truth = rng.uniform(-170, 170, 500)
    up = _true_up(truth)  # the sensor turned by +d about y (see _imu)
    # add a component along f (the thigh leaving the plane): it must not change the angle
    up = up + rng.uniform(-0.3, 0.3, (500, 1)) * f
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    out = np.empty(500)
    hip_angles(up, np.broadcast_to(u_ref, up.shape), f.tolist(), 5.0, out)
    np.testing.assert_allclose(out, truth + 5.0, atol=1e-9)


# ---------------------------------------------------------------------- rep machine
def _rep_trace(reps=3):
    t, theta, rate = _raise_and_lower(top_deg=50.0, move_s=1.5, hold_s=1.0, rest_s=2.0, reps=reps)
    still = np.abs(rate) < 1.0
    return t, theta, still


def test_rep_segmenter_finds_known_reps_for_any_chunking():
    t, theta, still = _rep_trace()
    seg = RepSegmenter(Leg.LEFT, Settings(), DT_S)
    reps = seg.update(t, theta, still) + seg.finish()
    assert len(reps) == 3
    for k, r in enumerate(reps):
        t0 = 2.0 + k * 6.0
        assert r.peak_deg == pytest.approx(50.0, abs=1e-6) and r.baseline_deg == pytest.approx(0.0, abs=1e-9)
        # crossings of the (1 - cos) raise: 10 % at u = acos(0.8)/pi, 90 % at acos(-0.8)/pi of 1.5 s
        u10, u90 = math.acos(0.8) / math.pi * 1.5, math.acos(-0.8) / math.pi * 1.5
        assert r.start_s == pytest.approx(t0 + u10, abs=0.01)
        assert r.up_s == pytest.approx(u90 - u10, abs=0.01)
        assert r.hold_s == pytest.approx(1.0 + 2 * (1.5 - u90), abs=0.01)
        assert r.down_s == pytest.approx(u90 - u10, abs=0.01)
    rng = np.random.default_rng(5)
    for _ in range(5):
        seg2 = RepSegmenter(Leg.LEFT, Settings(), DT_S)
        got = []
        i = 0
        while i < len(t):
            k = int(rng.integers(1, 300))
            got += seg2.update(t[i : i + k], theta[i : i + k], still[i : i + k])
            i += k
        assert got + seg2.finish() == reps


def test_rep_machine_reports_confirmed_reps_as_sample_indices():
    t, theta, still = _rep_trace(reps=2)
    arm = np.empty(len(t), dtype=bool)
    arm_flags(still, 0, 15, arm)
    s = Settings()
    m = RepMachine(enter_deg=s.enter_deg, undershoot_deg=s.undershoot_deg, min_rom_deg=s.min_rom_deg,
                   max_rep_s=s.max_rep_s, confirm_s=s.confirm_s)
    found = m.advance(t, theta, arm, still, 0)
    assert len(found) == 2
    for baseline, enter, end, closed in found:
        assert baseline == 0.0
        assert theta[enter] > s.enter_deg >= theta[enter - 1]  # the rise through level + enter_deg
        assert theta[end] <= 5.0 < theta[end - 1]  # back at 10 % of the 50 deg range
        assert t[end] < t[closed] <= t[end] + s.confirm_s + DT_S  # confirmed by the rest or by confirm_s
    assert m.pos == len(t) and m.level_deg == 0.0 and m.oldest_enter() == -1


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
    with pytest.raises(TypeError, match=r"run expected 7 arrays"):
        k.run(t, acc, gyr, up, still, rest)
    with pytest.raises(ValueError, match=r"gravity0 must be 3 numbers, got list"):
        TiltKernel(**{**_tilt_kwargs(), "gravity0": [1.0, 0.0]})
    with pytest.raises(ValueError, match=r"non-zero gravity0"):
        TiltKernel(**{**_tilt_kwargs(), "gravity0": [0.0, 0.0, 0.0]})
    with pytest.raises(ValueError, match=r"measure expected 0 <= lo <= peak_from <= end < 10, got lo 0, peak_from 5, end 10"):
        measure(t, t, 0.0, 0, 5, 10)
    with pytest.raises(ValueError, match=r"arm must be a bool array"):
        scan_idle(t, t, 0, 10, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"u_ref must have 10 rows"):
        hip_angles(up, up[:5], [0.0, 1.0, 0.0], 0.0, np.empty(10))
    # nothing was written or changed by the refused calls
    out = _run(k, t, acc, gyr)
    np.testing.assert_array_equal(out[0], np.tile([0.0, 0.0, 1.0], (10, 1)))
    assert k.n_samples == 10


def _tilt_kwargs() -> dict:
    kw = dataclasses.asdict(kernel_params(Settings(), DT_S))
    kw.update(gravity0=[0.0, 0.0, 1.0], gyro_bias0_dps=[0.0] * 3, t_prev_s=math.nan)
    return kw
