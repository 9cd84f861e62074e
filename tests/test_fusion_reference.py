"""The C orientation kernel against its plain-Python specification (host/fusion/reference.py).

Differential tests: the same samples through ``legrep._fastcore.TiltKernel`` and through
``ReferenceTilt`` (a readable per-sample loop), on random streams (random rotations, noise,
jitter, lost samples, biases) and on simulated sessions; and ``hip_angles`` against
``reference_hip_angle``. Both perform the same floating-point operations in the same order
(the kernel is built with -ffp-contract=off), so they agree to rounding: the stated
tolerance, 1e-9 (unit vectors) and 1e-7 deg, leaves room for the libm of another platform.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from conftest import ROOT  # noqa: F401  (puts the repository on sys.path)

from legrep._fastcore import TiltKernel, hip_angles
from legrep.fusion.orientation import kernel_params
from legrep.fusion.reference import ReferenceTilt, reference_hip_angle, reference_pose
from legrep.settings import Settings
from legrep_sim.scenarios import SessionSpec, SetSpec, simulate

UNIT_TOL = 1e-9
DEG_TOL = 1e-7


def _both(settings: Settings, dt: float, gravity0, bias0, unsure: bool = False):
    p = kernel_params(settings, dt)
    kw = dataclasses.asdict(p)
    kernel = TiltKernel(**kw, gravity0=list(gravity0), gyro_bias0_dps=list(bias0), t_prev_s=math.nan, bias_unsure=unsure)
    return kernel, ReferenceTilt(p, gravity0, bias0, bias_unsure=unsure)


def _run_kernel(k: TiltKernel, t, acc, gyr, chunk: int = 97):
    n = len(t)
    up, uref = np.empty((n, 3)), np.empty((n, 3))
    still, rest = np.empty(n, dtype=bool), np.empty(n, dtype=bool)
    for i in range(0, n, chunk):
        s = slice(i, i + chunk)
        k.run(t[s], acc[s], gyr[s], up[s], uref[s], still[s], rest[s])
    return up, uref, still, rest


def _compare(settings: Settings, t, acc, gyr, dt: float, bias_off=(0.0, 0.0, 0.0), unsure: bool = False) -> tuple[TiltKernel, ReferenceTilt]:
    k, ref = _both(settings, dt, acc[:20].mean(axis=0), gyr[:20].mean(axis=0) + np.asarray(bias_off), unsure)
    got = _run_kernel(k, t, acc, gyr)
    want = ref.run(t, acc, gyr)
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=UNIT_TOL)
    np.testing.assert_allclose(got[1], want[1], rtol=0, atol=UNIT_TOL)
    np.testing.assert_array_equal(got[2], want[2])
    np.testing.assert_array_equal(got[3], want[3])
    np.testing.assert_allclose(k.gyro_bias_dps, ref.bias, rtol=0, atol=1e-9)
    np.testing.assert_allclose(k.acc_bias_g, ref.acc_bias, rtol=0, atol=1e-12)
    np.testing.assert_allclose(k.lever_m, ref.lever, rtol=0, atol=1e-12)
    assert (k.n_gaps, k.n_bias_updates, k.n_acc_bias_updates, k.n_gap_snaps, k.n_still) == (
        ref.n_gaps, ref.n_bias_updates, ref.n_acc_bias_updates, ref.n_gap_snaps, ref.n_still
    )
    return k, ref


def _random_stream(rng: np.random.Generator, n: int, rate_hz: float):
    """Rests and random smooth rotations about random axes, with noise, jitter, losses, biases."""
    dt = 1.0 / rate_hz
    t = np.arange(n) * dt + rng.normal(0, 0.02 * dt, n)
    w = np.zeros((n, 3))
    i = int(rng.integers(50, 200))
    while i < n:
        dur = int(rng.integers(20, 300))
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        amp = rng.uniform(20, 300)
        u = np.linspace(0, np.pi, min(dur, n - i))
        w[i : i + len(u)] = np.outer(amp * np.sin(u) ** 2, axis)
        i += dur + int(rng.integers(0, 250))
    # integrate the true attitude to make a consistent accelerometer
    up = np.empty((n, 3))
    v = np.array([0.1, -0.2, 1.0])
    v /= np.linalg.norm(v)
    for j in range(n):
        up[j] = v
        ang = np.radians(w[j]) * dt
        v = v - np.cross(ang, v)
        v /= np.linalg.norm(v)
    acc = up * 1.03 + np.array([0.02, -0.03, 0.01]) + rng.normal(0, 0.012, (n, 3))
    acc += rng.normal(0, 0.05, (n, 3)) * (np.abs(w).sum(axis=1, keepdims=True) > 30)  # the thigh accelerates
    gyr = w + np.array([0.8, -0.5, 0.3]) + rng.normal(0, 0.4, (n, 3))
    keep = rng.random(n) > 0.01
    keep[:30] = True
    return t[keep], acc[keep], gyr[keep]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kernel_equals_reference_on_random_streams(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rate = float(rng.choice([50.0, 100.0, 200.0]))
    t, acc, gyr = _random_stream(rng, 3000, rate)
    k, _ = _compare(Settings(), t, acc, gyr, 1.0 / rate)
    assert k.n_bias_updates > 0 and k.n_still > 0


def test_kernel_equals_reference_with_every_option_exercised() -> None:
    rng = np.random.default_rng(9)
    t, acc, gyr = _random_stream(rng, 4000, 100.0)
    # a short lever memory and fast motion bias: every branch runs
    s = Settings(bias_motion_tau_s=5.0, lever_arm_tau_s=5.0, acc_bias_memory=3.0, bias_window_s=0.3, acc_bias_step_deg=0.2)
    k, ref = _compare(s, t, acc, gyr, 0.01)
    assert k.n_acc_bias_updates > 0 and k.n_gap_snaps > 0 and any(abs(x) > 0 for x in k.lever_m)


@pytest.mark.parametrize("rest_s", [0.8, 60.0])
def test_kernel_equals_reference_after_an_unsure_calibration_bias(rest_s: float) -> None:
    # a calibration rest that swayed: its bias 6 deg/s off, the motion bias estimator fast at
    # first (step 3b) until the first bias rest (rest windows of 0.8 s), or for the whole stream
    # (no window of 60 s fits: the time constant grows to bias_motion_tau_s)
    rng = np.random.default_rng(13)
    t, acc, gyr = _random_stream(rng, 4000, 100.0)
    s = Settings(bias_window_s=rest_s, bias_motion_tau_s=20.0, bias_motion_fast_tau_s=2.0)
    k, _ = _compare(s, t, acc, gyr, 0.01, bias_off=(0.0, 4.0, -4.5), unsure=True)
    sure, _ = _compare(s, t, acc, gyr, 0.01, bias_off=(0.0, 4.0, -4.5), unsure=False)
    assert (k.n_bias_updates > 0) == (rest_s < 1.0)
    if rest_s > 1.0:
        # without a rest only the motion estimate corrects the bias: faster while unsure
        true_bias = np.array([0.8, -0.5, 0.3])
        assert np.linalg.norm(np.subtract(k.gyro_bias_dps, true_bias)) < np.linalg.norm(np.subtract(sure.gyro_bias_dps, true_bias))


def test_kernel_equals_reference_with_two_low_pass_stages_and_path_weighted_rest_pairs() -> None:
    rng = np.random.default_rng(11)
    t, acc, gyr = _random_stream(rng, 4000, 100.0)
    # a second low-pass stage, and rest pairs whose path weights fall between 0 and 1
    s = Settings(tau_acc_s=1.0, tau_acc2_s=1.0, acc_bias_memory=3.0, bias_window_s=0.3, acc_bias_turn_deg=150.0,
                 bias_motion_tau_s=5.0, lever_arm_tau_s=5.0)
    k, ref = _compare(s, t, acc, gyr, 0.01)
    assert k.n_acc_bias_updates > 0 and k.n_gap_snaps > 0
    assert ref.lp != ref.lp1  # the second stage ran


def test_kernel_equals_reference_on_a_simulated_session() -> None:
    spec = SessionSpec(sets=(SetSpec(3, 0, up_s=0.8, hold_s=0.5, down_s=1.0),), legs=("left",), errors="harsh", lost_samples=0.01)
    sig = simulate(spec, seed=3).signals["left"]
    _compare(Settings(), sig.time_s, sig.acc_g, sig.gyr_dps, 1.0 / sig.rate_hz)


def test_hip_angles_equal_the_reference() -> None:
    rng = np.random.default_rng(5)
    up = rng.normal(size=(2000, 3))
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    ref = rng.normal(size=(2000, 3))
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    quat = rng.normal(size=(2000, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    a, al, f = (v / np.linalg.norm(v) for v in rng.normal(size=(3, 3)))
    out = np.empty(2000)
    hip_angles(up, ref, quat, a.tolist(), al.tolist(), f.tolist(), 12.5, out)
    np.testing.assert_allclose(out, reference_hip_angle(up, ref, quat, a, al, f, 12.5), rtol=0, atol=DEG_TOL)
    one = np.empty(2000)
    hip_angles(up, np.broadcast_to(ref[0], up.shape), quat, a.tolist(), al.tolist(), f.tolist(), 0.0, one)  # stride 0
    np.testing.assert_allclose(one, reference_hip_angle(up, ref[0], quat, a, al, f), rtol=0, atol=DEG_TOL)


def test_attitude_and_lever_outputs_equal_the_reference() -> None:
    """TiltKernel.run's optional quat_out / lever_out (in chunks) against reference_pose."""
    rng = np.random.default_rng(11)
    n, dt = 3000, 0.01
    t = np.arange(n) * dt + rng.normal(0.0, 0.001, n)
    t.sort()
    acc = np.tile([0.0, 0.0, 1.0], (n, 1)) + rng.normal(0.0, 0.02, (n, 3))
    gyr = np.cumsum(rng.normal(0.0, 3.0, (n, 3)), axis=0) % 200.0 - 100.0
    k, ref = _both(Settings(), dt, [0.0, 0.0, 1.0], [0.0, 0.0, 0.0])
    quat, lever = np.empty((n, 4)), np.empty((n, 3))
    for lo in range(0, n, 97):
        s = slice(lo, min(n, lo + 97))
        m = s.stop - s.start
        k.run(t[s], acc[s], gyr[s], np.empty((m, 3)), np.empty((m, 3)), np.empty(m, dtype=bool),
              np.empty(m, dtype=bool), quat[s], lever[s])
    q_ref, l_ref = reference_pose(ref, t, acc, gyr)
    np.testing.assert_allclose(quat, q_ref, rtol=0, atol=UNIT_TOL)
    np.testing.assert_allclose(lever, l_ref, rtol=0, atol=UNIT_TOL)
    assert np.allclose(np.linalg.norm(quat, axis=1), 1.0) and np.abs(lever).max() > 0.0


def test_kernel_equals_reference_with_the_onset_low_pass_and_the_trimmed_rest_window() -> None:
    # rests of up to 2.5 s: with onset_rest_s 0.5 most movements start with the slower low-pass
    # (step 2b), lost samples cancel it (the random stream loses 1 %), and every rest window's
    # bias leaves out its last 0.1 s (step 6)
    rng = np.random.default_rng(17)
    t, acc, gyr = _random_stream(rng, 4000, 100.0)
    s = Settings(onset_tau_acc_s=4.0, onset_decay_s=1.0, onset_rest_s=0.5, bias_trim_s=0.1, bias_window_s=0.4)
    k, ref = _compare(s, t, acc, gyr, 0.01)
    assert kernel_params(s, 0.01).bias_trim_n == 10 and k.n_bias_updates > 0 and k.n_gap_snaps > 0
    # each option changes the output (its branch ran)
    def up_with(settings: Settings) -> np.ndarray:
        kk, _ = _both(settings, 0.01, acc[:20].mean(axis=0), gyr[:20].mean(axis=0))
        return _run_kernel(kk, t, acc, gyr)[0]

    base = up_with(s)
    for off in ({"onset_tau_acc_s": 0.0}, {"bias_trim_s": 0.0}):
        assert np.abs(up_with(dataclasses.replace(s, **off)) - base).max() > 1e-6, off
