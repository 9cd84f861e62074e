"""Independent checks of the physical simulator (firmware_sim), the ground truth of every accuracy test.

Nothing here uses host code: the physics is checked against numerical differentiation,
closed forms (omega^2 r, minimum-jerk crossings) and the simulator's own hidden truth.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from legrep_sim.imu_model import (
    G_MPS2,
    DeviceClock,
    Mounting,
    SensorErrors,
    device_clock,
    ideal_imu,
    quantise,
    render,
)
from legrep_sim.motion import (
    BodyMotion,
    LegMotion,
    PiecewiseBuilder,
    RateChannel,
    measure_rep,
    minimum_jerk,
)
from legrep_sim.scenarios import (
    FAST,
    SLOW,
    SessionSpec,
    SetSpec,
    accuracy_grid,
    combination_grid,
    simulate,
)


def _skew_to_vec(m: np.ndarray) -> np.ndarray:
    return np.stack([m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]], -1) / 2.0


# --------------------------------------------------------------------------- physics
def _strapdown_gravity_error_deg(sig) -> tuple[np.ndarray, np.ndarray]:
    """Integrate the full 3-D gyro (Rodrigues' formula, independent of the simulator's rotation
    code) from the first second's gravity; return the rest mask and, at rests, the angle between
    the predicted and the measured gravity direction."""
    t, w = sig.time_s, np.radians(sig.gyr_dps)
    up = sig.acc_g[:100].mean(axis=0)
    up /= np.linalg.norm(up)
    ups = np.empty_like(sig.acc_g)
    steps = 0.5 * (w[1:] + w[:-1]) * np.diff(t)[:, None]  # body-frame rotation vectors
    for i in range(t.size):
        ups[i] = up
        if i + 1 < t.size:
            # The sensor turns by steps[i]; a world-fixed vector turns by -steps[i] in its frame.
            v = -steps[i]
            angle = np.linalg.norm(v)
            if angle > 0.0:
                k = v / angle
                up = up * np.cos(angle) + np.cross(k, up) * np.sin(angle) + k * (k @ up) * (1.0 - np.cos(angle))
    rest = np.convolve(np.linalg.norm(sig.gyr_dps, axis=1) < 0.2, np.ones(41), "same") == 41
    acc = sig.acc_g[rest] / np.linalg.norm(sig.acc_g[rest], axis=1)[:, None]
    return rest, np.degrees(np.arccos(np.clip(np.sum(acc * ups[rest], axis=1), -1.0, 1.0)))


def _check_against_numerical_derivatives(motion: LegMotion, mount: Mounting, t: np.ndarray, atol: float) -> np.ndarray:
    """Analytic gyro/accelerometer of ``ideal_imu`` vs central differences of orientation and
    position (plus the hip's own velocity); returns the ideal specific force (g)."""
    ideal = ideal_imu(motion, mount, t)
    h = 1e-4
    rot = lambda tt: motion.kinematics(tt).rot @ mount.rot  # noqa: E731
    r0, rp, rm = rot(t), rot(t + h), rot(t - h)
    omega_w = _skew_to_vec((rp - rm) / (2 * h) @ np.transpose(r0, (0, 2, 1)))
    np.testing.assert_allclose(ideal.gyr_dps, np.degrees(np.einsum("nji,nj->ni", r0, omega_w)), atol=atol)
    hd = 1e-3
    rel = lambda tt: motion.kinematics(tt).rot @ mount.offset_thigh_m  # noqa: E731
    acc_rel = (rel(t + hd) - 2 * rel(t) + rel(t - hd)) / hd**2
    acc_hip = (motion.body.hip_vel_mps(t + h) - motion.body.hip_vel_mps(t - h)) / (2 * h)
    spec_s = np.einsum("nji,nj->ni", r0, acc_rel + acc_hip + np.array([0.0, 0.0, G_MPS2])) / G_MPS2
    np.testing.assert_allclose(ideal.acc_g, spec_s, atol=atol)
    return ideal.acc_g


@pytest.mark.parametrize(
    "exercise,rate_hz,tempo",
    [("straight_leg_raise", 100.0, FAST), ("bent_knee_raise", 50.0, SLOW), ("plank_leg_lift", 200.0, FAST), ("bird_dog", 100.0, {})],
)
def test_gyro_integral_about_exercise_axis_reproduces_angle(exercise: str, rate_hz: float, tempo: dict) -> None:
    spec = SessionSpec(exercise=exercise, sets=(SetSpec(4, 3, fidgets=2, **tempo),), rate_hz=rate_hz, errors="none",
                       jitter_frac=0.0)
    sim = simulate(spec, seed=7)
    for sig in sim.signals.values():
        rate = sig.gyr_dps @ sig.exercise_axis_sensor
        dt = np.diff(sig.time_s)
        angle = np.concatenate(([0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * dt)))
        err = np.abs(angle - sig.true_angle_deg)
        assert sig.true_angle_deg.max() > 25.0  # the reps are really there
        assert err.max() < 0.5, f"{exercise} {sig.leg}: gyro integral off by {err.max():.3f} deg"


@pytest.mark.parametrize("exercise", ["straight_leg_raise", "plank_leg_lift"])
def test_strapdown_gyro_predicts_gravity_at_every_rest(exercise: str) -> None:
    """Integrating the full 3-D gyro (quaternions, independent of the simulator's rotation code)
    from the calibration pose predicts where the accelerometer sees gravity at later rests,
    through reps, getting up, walking with turns and lying down again."""
    spec = SessionSpec(exercise=exercise, sets=(SetSpec(3, 3), SetSpec(2, 2, **FAST)), walk_between_sets=True,
                       errors="none", jitter_frac=0.0, rate_hz=100.0, rest_between_sets_s=20.0)
    sim = simulate(spec, seed=17)
    for sig in sim.signals.values():
        t = sig.time_s
        rest, err_deg = _strapdown_gravity_error_deg(sig)
        assert rest[(t > sim.duration_s - 2.0) & (t < sim.duration_s - 0.5)].all() and rest.sum() > 0.3 * t.size
        assert err_deg.max() < 0.3, f"{exercise} {sig.leg}: gravity predicted from the gyro is off by {err_deg.max():.3f} deg"


def test_rest_specific_force_is_one_g_opposite_gravity() -> None:
    sim = simulate(SessionSpec(sets=(SetSpec(2, 2),), errors="none"), seed=3)
    for leg, sig in sim.signals.items():
        calib = sig.true_time_s < 1.9
        acc = sig.acc_g[calib]
        np.testing.assert_allclose(np.linalg.norm(acc, axis=1), 1.0, atol=1e-3)
        kin = sim.programme.legs[leg].kinematics(sig.true_time_s[calib])
        world = np.einsum("nij,nj->ni", kin.rot @ sig.mounting.rot, acc)
        np.testing.assert_allclose(world, np.tile([0.0, 0.0, 1.0], (world.shape[0], 1)), atol=1.5e-3)
        assert np.abs(sig.gyr_dps[calib]).max() < sig.gyr_lsb_dps  # still: nothing but quantisation


@pytest.mark.parametrize(
    "exercise,walk",
    [("straight_leg_raise", False), ("straight_leg_raise", True), ("plank_leg_lift", True), ("bird_dog", True)],
)
def test_ideal_imu_matches_numerical_derivatives(exercise: str, walk: bool) -> None:
    """Analytic gyro/accelerometer vs central differences of orientation and position."""
    spec = SessionSpec(exercise=exercise, sets=(SetSpec(3, 3, **FAST), SetSpec(2, 2, **FAST)), walk_between_sets=walk,
                       errors="none", rest_between_sets_s=20.0)
    sim = simulate(spec, seed=11)
    rng = np.random.default_rng(0)
    motion = sim.programme.legs["left"]
    mount = Mounting.random(rng)
    walk_segs = [s for s in sim.programme.segments if s.kind in ("walk", "posture")]
    if walk:
        assert walk_segs, "walking session has no walk"
        t = np.concatenate([rng.uniform(s.t0_s + 0.01, s.t1_s - 0.01, 400) for s in walk_segs])
    else:
        t = rng.uniform(0.0, sim.duration_s, 2000)
    acc_g = _check_against_numerical_derivatives(motion, mount, t, atol=2e-3)
    if walk:
        # Walking really shakes the sensor: heel strikes and swing show in the specific force.
        assert np.abs(np.linalg.norm(acc_g, axis=1) - 1.0).max() > 0.3


@pytest.mark.parametrize("exercise", ["straight_leg_raise", "bent_knee_raise", "plank_leg_lift", "bird_dog"])
def test_postures_and_transitions(exercise: str) -> None:
    """The neutral pose is the exercise posture; getting up reaches standing; orientation never jumps."""
    sim = simulate(SessionSpec(exercise=exercise, sets=(SetSpec(1, 1, **FAST), SetSpec(1, 1, **FAST)),
                               walk_between_sets=True, errors="none", rest_between_sets_s=20.0), seed=2)
    motion = sim.programme.legs["left"]
    thigh_x = lambda tt: motion.kinematics(np.atleast_1d(tt)).rot[:, :, 0]  # noqa: E731
    front = lambda tt: motion.kinematics(np.atleast_1d(tt)).rot[:, :, 2]  # noqa: E731
    # Neutral pose: supine -> thigh horizontal, front up; plank -> ~10 deg down, front to the floor;
    # quadruped -> thigh vertical pointing down.
    down_deg = float(np.degrees(np.arcsin(-thigh_x(0.5)[0, 2])))
    expected = {"straight_leg_raise": 0.0, "bent_knee_raise": 0.0, "plank_leg_lift": 10.0, "bird_dog": 90.0}[exercise]
    assert down_deg == pytest.approx(expected, abs=1e-6)
    if exercise == "plank_leg_lift":
        assert front(0.5)[0, 2] < -0.9
    elif exercise != "bird_dog":
        assert front(0.5)[0, 2] > 0.99
    # At the top of a rep the knee has moved the right way.
    top = sim.reps[0].peak_s
    if exercise in ("straight_leg_raise", "bent_knee_raise"):
        assert thigh_x(top)[0, 2] > 0.9  # knee up towards the ceiling (~80-95 deg)
    elif exercise == "plank_leg_lift":
        assert thigh_x(top)[0, 2] > 0.3  # knee lifted behind, above the hip
    else:
        assert abs(thigh_x(top)[0, 2]) < 0.2  # thigh lifted back to about horizontal
    walk = next(s for s in sim.programme.segments if s.kind == "walk")
    assert thigh_x(walk.t0_s)[0, 2] == pytest.approx(-1.0, abs=1e-9)  # standing, thigh vertical
    # Continuity, including instantaneous re-parametrisations (plank <-> kneeling).
    t = np.arange(0.0, sim.duration_s, 1e-3)
    rot = motion.kinematics(t).rot
    step = np.linalg.norm(np.diff(rot, axis=0), axis=(1, 2))
    assert step.max() < 1e-2  # < ~0.6 deg per ms everywhere


def test_centripetal_term_is_omega_squared_r() -> None:
    rate_dps = 180.0
    motion = LegMotion("left", BodyMotion(), RateChannel(0.0, rate_dps), direction=1)
    mount = Mounting(np.eye(3), np.array([0.22, 0.01, 0.05]))
    t = np.linspace(0.0, 2.0, 50)
    ideal = ideal_imu(motion, mount, t)
    kin = motion.kinematics(t)
    acc_w = ideal.acc_g * G_MPS2
    acc_w = np.einsum("nij,nj->ni", kin.rot, acc_w) - np.array([0.0, 0.0, G_MPS2])  # remove gravity
    acc_thigh = np.einsum("nji,nj->ni", kin.rot, acc_w)
    w = np.radians(rate_dps)
    # Rotation about the thigh y axis: centripetal acceleration -w^2 r_perp, no tangential term.
    expected = -w * w * np.array([0.22, 0.0, 0.05])
    np.testing.assert_allclose(acc_thigh, np.tile(expected, (t.size, 1)), atol=1e-9)
    np.testing.assert_allclose(np.abs(ideal.gyr_dps[:, 1]), rate_dps, rtol=1e-12)


# --------------------------------------------------------------------------- truth
def _mj_onset() -> float:
    """u at which a minimum-jerk move's speed is 10 % of its peak (closed form, independent of measure_rep)."""
    from scipy.optimize import brentq  # (here, not at the top: importing it cost every test process 0.7 s)

    return brentq(lambda u: 30.0 * u * u * (1 - u) ** 2 - 0.1 * 30.0 / 16.0, 1e-9, 0.5)


def test_symmetric_rep_truth_matches_minimum_jerk_closed_form() -> None:
    th = PiecewiseBuilder(0.0)
    th.move(1.0, 1.5, 80.0)
    th.move(3.5, 1.5, 0.0)  # 1 s hold at the top, no sag
    ch = th.build()
    t = np.arange(0.0, 6.0, 1e-3)
    m = measure_rep(t, ch.eval(t)[0], ch.eval(t)[1])
    u = _mj_onset()
    assert u == pytest.approx(0.0865, abs=1e-4)
    assert m.up_s == pytest.approx(m.down_s, abs=1e-4)
    assert m.up_s == pytest.approx(1.5 * (1 - 2 * u), abs=1e-4)
    assert m.up_s / 1.5 == pytest.approx(0.83, abs=0.005)  # a minimum-jerk raise of T reads ~0.83 T
    assert m.hold_s == pytest.approx(1.0 + 2 * 1.5 * u, abs=1e-4)
    assert m.start_s == pytest.approx(1.0 + 1.5 * u, abs=1e-4)
    assert m.end_s == pytest.approx(5.0 - 1.5 * u, abs=1e-4)
    s_u = 10 * u**3 - 15 * u**4 + 6 * u**5
    assert m.baseline_deg == pytest.approx(80.0 * s_u, abs=1e-3)
    assert m.peak_deg == pytest.approx(80.0) and m.rom_deg == pytest.approx(80.0 * (1 - s_u), abs=1e-3)
    # Without analytic speeds (np.gradient of the angle) the same to within a millisecond.
    g = measure_rep(t, ch.eval(t)[0])
    assert abs(g.up_s - m.up_s) < 2e-3 and abs(g.start_s - m.start_s) < 2e-3


@pytest.mark.parametrize("up_s,down_s", [(0.7, 1.0), (1.0, 2.0), (3.0, 4.0)])
def test_stopwatch_truth_of_touch_and_go_reps_is_per_rep(up_s: float, down_s: float) -> None:
    """Back-to-back reps without a pause: each rep's start/end are its own onsets, not a shared rest."""
    th = PiecewiseBuilder(0.0)
    t0 = 0.5
    for _ in range(3):
        th.move(t0, up_s, 70.0)
        th.move(t0 + up_s, down_s, 0.0)
        t0 += up_s + down_s
    ch = th.build()
    u = _mj_onset()
    for k in range(3):
        a = 0.5 + k * (up_s + down_s)
        t = np.linspace(a, a + up_s + down_s, 20001)
        v, d, _ = ch.eval(t)
        m = measure_rep(t, v, d)
        assert m.start_s == pytest.approx(a + u * up_s, abs=1e-4)
        assert m.up_s == pytest.approx((1 - 2 * u) * up_s, abs=1e-4)
        assert m.down_s == pytest.approx((1 - 2 * u) * down_s, abs=1e-4)
        assert m.hold_s == pytest.approx(u * (up_s + down_s), abs=1e-4)


def test_measure_rep_says_what_is_wrong() -> None:
    t = np.linspace(0.0, 1.0, 100)
    with pytest.raises(ValueError, match="rise before a lowering"):
        measure_rep(t, t * 10.0)
    with pytest.raises(ValueError, match="equal"):
        measure_rep(t, t[:-1])


def test_session_truth_is_consistent_with_true_angle() -> None:
    spec = SessionSpec(sets=(SetSpec(6, 5, partial=(("left", 2),), fidgets=3, **FAST), SetSpec(4, 4, order="alternating")),
                       rest_between_sets_s=20.0)
    sim = simulate(spec, seed=5)
    assert [(s.left_reps, s.right_reps, s.uneven) for s in sim.sets] == [(6, 5, True), (4, 4, False)]
    assert sim.uneven
    assert [r.rep for r in sim.reps_of("left") if r.set == 1] == [1, 2, 3, 4, 5, 6]
    partial = [r for r in sim.reps if r.partial]
    assert len(partial) == 1 and partial[0].leg == "left" and partial[0].rep == 3
    full = [r.rom_deg for r in sim.reps_of("left") if r.set == 1 and not r.partial]
    assert 0.4 < partial[0].rom_deg / np.median(full) < 0.6
    for r in sim.reps:
        sig = sim.signals[r.leg]
        inside = (sig.true_time_s >= r.start_s) & (sig.true_time_s <= r.end_s)
        assert sig.true_angle_deg[inside].max() <= r.peak_deg + 1e-9
        assert sig.true_angle_deg[inside].max() > r.peak_deg - 0.5
        assert r.start_s < r.peak_s < r.end_s
        assert r.up_s + r.hold_s + r.down_s == pytest.approx(r.end_s - r.start_s)
        assert r.rom_deg > 20.0
    # Sets are separated by >= 15 s rests and reps within a set by less.
    assert sim.sets[1].start_s - sim.sets[0].end_s >= 15.0
    # Fidgets stay under 15 deg and are not reps.
    fidgets = [s for s in sim.programme.segments if s.kind == "fidget"]
    assert len(fidgets) == 3
    for seg in fidgets:
        a = sim.programme.legs[seg.leg].hip_angle_deg(np.linspace(seg.t0_s, seg.t1_s, 200))
        assert a.max() - a[0] < 15.0
        assert not any(r.start_s < seg.t1_s and r.end_s > seg.t0_s for r in sim.reps if r.leg == seg.leg)


# --------------------------------------------------------------------------- what real sessions do
REAL_SPEC = SessionSpec(
    exercise="bent_knee_raise",
    sets=(SetSpec(6, 6, off_axis_deg=(5.0, 20.0), strap_slips=1, touch_and_go=True, up_s=1.0, hold_s=0.3, down_s=1.6),
          SetSpec(5, 5, hover_deg=(10.0, 15.0), baselines_deg=(45.0, 22.0))),
    walk_between_sets=True, sway=True, errors="none", jitter_frac=0.0, rest_between_sets_s=20.0,
)


def test_off_axis_slip_and_sway_physics_matches_numerical_derivatives() -> None:
    sim = simulate(REAL_SPEC, seed=31)
    rng = np.random.default_rng(1)
    motion = sim.programme.legs["left"]
    mount = Mounting.random(rng)
    busy = [s for s in sim.programme.segments if s.kind in ("rep", "slip", "walk", "posture") or s.detail == "sway"]
    assert {s.kind for s in busy} >= {"rep", "slip", "walk"} and any(s.detail == "sway" for s in busy)
    t = np.concatenate([rng.uniform(s.t0_s + 0.01, s.t1_s - 0.01, 60) for s in busy])
    _check_against_numerical_derivatives(motion, mount, t, atol=3e-3)


def test_strapdown_gyro_follows_off_axis_reps_and_strap_slips() -> None:
    """Integrating the 3-D gyro from the first rest predicts gravity at every later rest, through
    off-axis reps and strap slips (independent of the simulator's rotation chain)."""
    sim = simulate(REAL_SPEC, seed=32)
    for sig in sim.signals.values():
        rest, err_deg = _strapdown_gravity_error_deg(sig)
        assert rest.sum() > 0.2 * rest.size
        assert err_deg.max() < 0.5, f"{sig.leg}: gravity predicted from the gyro is off by {err_deg.max():.3f} deg"


def test_off_axis_motion_does_not_enter_the_true_hip_angle() -> None:
    """The truth is the long axis projected on the exercise plane (ISB order: flexion first)."""
    sim = simulate(SessionSpec(sets=(SetSpec(4, 4, off_axis_deg=(10.0, 20.0)),), errors="none"), seed=6)
    for leg, motion in sim.programme.legs.items():
        t = np.linspace(3.0, sim.duration_s - 3.0, 4000)
        long_axis = motion.kinematics(t).rot[:, :, 0]  # supine, yaw 0: neutral long axis +X, up +Z
        projected = np.degrees(np.arctan2(long_axis[:, 2], long_axis[:, 0]))
        np.testing.assert_allclose(projected, motion.hip_angle_deg(t), atol=1e-9)
        for r in sim.reps_of(leg):
            k = motion.kinematics(np.array([r.peak_s])).rot[0]
            out_of_plane = np.degrees(np.arcsin(abs(k[1, 0])))
            assert out_of_plane > 10.0 * np.cos(np.radians(r.peak_deg)) - 1e-6  # really off the plane
            # Axial rotation turns the front of the thigh away from the exercise plane's normal.
            assert abs(k[:, 1] @ np.array([0.0, 1.0, 0.0])) < np.cos(np.radians(9.0))


def test_strap_slip_turns_the_sensor_but_not_the_hip_angle() -> None:
    sim = simulate(SessionSpec(sets=(SetSpec(6, 6, strap_slips=2),), errors="none", jitter_frac=0.0), seed=8)
    slips = [s for s in sim.programme.segments if s.kind == "slip"]
    assert len(slips) == 2 and len(sim.reps) == 12
    assert sim.truth_dict()["events"][0]["kind"] == "slip"
    for seg in slips:
        sig = sim.signals[seg.leg]
        before = sig.acc_g[(sig.true_time_s > seg.t0_s - 0.4) & (sig.true_time_s < seg.t0_s - 0.05)].mean(axis=0)
        after = sig.acc_g[(sig.true_time_s > seg.t1_s + 0.05) & (sig.true_time_s < seg.t1_s + 0.8)].mean(axis=0)
        turned = np.degrees(np.arccos(before @ after / np.linalg.norm(before) / np.linalg.norm(after)))
        roll, tilt = (float(x.split()[1]) for x in seg.detail.split(", "))
        expected = np.degrees(np.arccos(np.cos(np.radians(roll)) * np.cos(np.radians(tilt))))
        assert 9.5 < expected and turned == pytest.approx(expected, abs=1.5)
        a = sim.programme.legs[seg.leg].hip_angle_deg(np.array([seg.t0_s, seg.t1_s]))
        assert a[0] == a[1]  # the thigh did not move


@pytest.mark.parametrize("start", ["settling", "strap", "moving", "standing"])
def test_sessions_without_a_still_start(start: str) -> None:
    spec = SessionSpec(sets=(SetSpec(4, 4),), start=start, sway=True, errors="none", jitter_frac=0.0)
    sim = simulate(spec, seed=12)
    assert len(sim.reps) == 8 and sim.truth_dict()["spec"]["start"] == start
    moving_first = [np.linalg.norm(sig.gyr_dps[sig.true_time_s < 0.5], axis=1).max() for sig in sim.signals.values()]
    assert max(moving_first) > 1.0, f"{start}: the first 0.5 s are still"  # a strap may be adjusted on one leg only
    for leg, sig in sim.signals.items():
        gyro = np.linalg.norm(sig.gyr_dps, axis=1)
        quiet = np.convolve(gyro < 0.1, np.ones(int(0.5 * sig.rate_hz)), "valid") == int(0.5 * sig.rate_hz)
        assert quiet.any(), f"{start}: no rest of 0.5 s anywhere"
    motion = sim.programme.legs["left"]
    if start == "moving":
        assert abs(motion.theta_deg.eval(np.array([0.0]))[1][0]) > 3.0  # moving at t = 0
    if start == "standing":
        assert motion.kinematics(np.array([0.0])).rot[0, 2, 0] == pytest.approx(-1.0, abs=0.05)  # thigh vertical
        sway = np.linalg.norm(sim.signals["left"].gyr_dps[sim.signals["left"].true_time_s < 2.5], axis=1)
        assert 1.0 < sway.max() < 8.0  # standing sway of a few deg/s
    assert sim.reps[0].start_s < 12.0


def test_touch_and_go_hover_and_moving_baselines_truth() -> None:
    spec = SessionSpec(exercise="bent_knee_raise", errors="none",
                       sets=(SetSpec(9, 0, baselines_deg=(45.0, 22.0, 0.0), touch_and_go=True), SetSpec(0, 6, hover_deg=(10.0, 15.0))),
                       rest_between_sets_s=20.0)
    sim = simulate(spec, seed=14)
    left, right = sim.reps_of("left"), sim.reps_of("right")
    assert len(left) == 9 and len(right) == 6
    bases = [r.baseline_deg for r in left]
    for chunk, level in zip((bases[0:3], bases[3:6], bases[6:9]), (45.0, 22.0, 0.0)):
        assert all(abs(b - level) < 3.0 for b in chunk[1:]), (bases, level)
    gaps = [b.start_s - a.end_s for a, b in zip(left, left[1:])]
    assert sum(g < 0.5 for g in gaps) >= 5  # back to back (a baseline shift may separate some)
    motion = sim.programme.legs["right"]
    rest = sim.sets[1]
    for a, b in zip(right, right[1:]):
        low = motion.hip_angle_deg(np.linspace(a.end_s, b.start_s, 200)).min()
        assert rest_level(sim, "right") + 9.0 < low < rest_level(sim, "right") + 16.5  # hovering
        assert b.rom_deg > 20.0
    assert rest.right_reps == 6


def rest_level(sim, leg: str) -> float:
    """The resting angle before the leg's first rep of the last set."""
    r = [x for x in sim.reps_of(leg) if x.set == sim.sets[-1].set][0]
    return float(sim.programme.legs[leg].hip_angle_deg(np.array([r.start_s - 0.5]))[0])


@pytest.mark.parametrize("rate_hz", [52.0, 200.0])
def test_cheap_mems_noise_is_what_was_asked(rate_hz: float) -> None:
    spec = SessionSpec(sets=(SetSpec(1, 1),), errors="none", rate_hz=rate_hz, acc_noise_g_rms=0.013,
                       gyr_noise_dps_rms=0.5, gyr_bias_walk_dps_rt_s=0.0)
    sim = simulate(spec, seed=3)
    for sig in sim.signals.values():
        still = sig.true_time_s < 1.9
        assert np.std(sig.acc_g[still], axis=0) == pytest.approx([0.013] * 3, rel=0.2)
        assert np.std(sig.gyr_dps[still], axis=0) == pytest.approx([0.5] * 3, rel=0.2)


# --------------------------------------------------------------------------- sensor errors
def test_quantisation_and_saturation() -> None:
    errors = SensorErrors(acc_range_g=2.0, gyr_range_dps=500.0)
    assert SensorErrors().acc_lsb_g == 1.0 / 2048.0
    assert SensorErrors().gyr_lsb_dps == pytest.approx(0.06104, abs=1e-5)
    raw = quantise(np.array([0.0, 1.0, -1.0, 1e9, -1e9, 0.4999]), 1.0)
    assert raw.dtype == np.int16 and raw.tolist() == [0, 1, -1, 32767, -32768, 0]
    # A thigh spinning at 720 deg/s with the sensor 0.3 m out: > 500 dps and > 2 g both saturate.
    motion = LegMotion("left", BodyMotion(), RateChannel(0.0, 720.0))
    mount = Mounting(np.eye(3), np.array([0.3, 0.0, 0.0]))
    clock = device_clock(1.0, 100.0, errors, np.random.default_rng(0))
    out = render(motion, mount, errors, clock, 100.0, np.random.default_rng(0))
    # Flexion turns the thigh about its -y axis: the y gyro reads -720 dps, pinned at the int16 floor.
    assert np.all(out.gyr_raw[:, 1] == -32768)
    # Centripetal 0.3 m * (4 pi rad/s)^2 = 4.8 g along -x: pinned too, never wrapped around.
    assert np.all(out.acc_raw[:, 0] == -32768)
    # Unsaturated: the raw value is the nearest LSB.
    ideal = ideal_imu(motion, Mounting(np.eye(3), np.array([0.05, 0.0, 0.0])), clock.true_time_s)
    out16 = render(LegMotion("left", BodyMotion(), RateChannel(0.0, 720.0)), Mounting(np.eye(3), np.array([0.05, 0.0, 0.0])),
                   SensorErrors(), clock, 100.0, np.random.default_rng(0))
    assert np.abs(out16.gyr_raw * out16.gyr_lsb_dps - ideal.gyr_dps).max() <= out16.gyr_lsb_dps / 2 + 1e-9
    assert np.abs(out16.acc_raw * out16.acc_lsb_g - ideal.acc_g).max() <= out16.acc_lsb_g / 2 + 1e-9


def test_error_levels_stay_within_their_limits() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        e = SensorErrors.random(rng, "harsh")
        assert max(map(abs, e.gyr_bias_dps)) <= 5.0 and max(map(abs, e.gyr_scale)) <= 0.02
        assert abs(e.acc_scale_common) <= 0.3 and max(map(abs, e.acc_scale_axis)) <= 0.02
        assert max(map(abs, e.acc_bias_g)) <= 0.1
    assert SensorErrors.random(rng, "none") == SensorErrors()
    with pytest.raises(ValueError, match="error level must be one of"):
        SensorErrors.random(rng, "extreme")


def test_gyro_bias_and_accel_scale_show_in_the_calibration_pose() -> None:
    sim = simulate(SessionSpec(sets=(SetSpec(2, 2),), errors="harsh"), seed=21)
    for sig in sim.signals.values():
        calib = sig.true_time_s < 1.9
        np.testing.assert_allclose(sig.gyr_dps[calib].mean(axis=0), sig.errors.gyr_bias_dps, atol=0.1)
        e = sig.errors
        expected_norm = np.linalg.norm(sig.acc_g[calib].mean(axis=0))
        assert abs(expected_norm - (1 + e.acc_scale_common)) < 0.03 + np.linalg.norm(e.acc_bias_g)


def test_lost_samples_leave_gaps_in_sample_index() -> None:
    sim = simulate(SessionSpec(sets=(SetSpec(4, 4, **FAST),), lost_samples=0.02, rate_hz=100.0), seed=9)
    for sig in sim.signals.values():
        idx = sig.sample_index
        total = int(idx[-1]) + 1
        lost = total - idx.size
        assert 0.018 * total <= lost <= 0.022 * total
        steps = np.diff(idx)
        assert steps.min() >= 1 and (steps > 1).sum() >= 3  # bursts leave gaps
        assert (steps > 2).any()  # some bursts are longer than one sample
        assert np.all(np.diff(sig.time_s) > 0)
        assert np.array_equal(idx[: int(2.0 * sig.rate_hz)], np.arange(int(2.0 * sig.rate_hz)))  # calibration intact
        np.testing.assert_allclose(sig.time_s, idx / sig.rate_hz, atol=0.05 * 3 / sig.rate_hz)


def test_clock_drift_and_jitter() -> None:
    errors = SensorErrors(clock_drift_ppm=500.0, clock_offset_s=0.02, jitter_frac=0.05)
    clock: DeviceClock = device_clock(100.0, 100.0, errors, np.random.default_rng(2))
    slope = np.polyfit(clock.true_time_s, clock.time_s, 1)[0]
    assert slope == pytest.approx(1.0 + 500e-6, abs=2e-6)
    assert clock.true_time_s[0] == pytest.approx(0.02)
    jitter = clock.time_s - clock.sample_index / 100.0
    assert np.std(jitter) == pytest.approx(0.05 / 100.0, rel=0.1)
    # Without drift both legs share the session clock.
    sim = simulate(SessionSpec(sets=(SetSpec(1, 1),), jitter_frac=0.02), seed=4)
    for sig in sim.signals.values():
        assert np.abs(sig.time_s - sig.true_time_s).max() < 0.02 * 4.5 / sig.rate_hz


# --------------------------------------------------------------------------- API
def test_same_seed_same_arrays_and_different_seed_differs() -> None:
    spec = SessionSpec(sets=(SetSpec(3, 2, fidgets=1),), lost_samples=0.01, errors="harsh")
    a, b, c = simulate(spec, 12), simulate(spec, 12), simulate(spec, 13)
    for leg in ("left", "right"):
        for name in ("time_s", "sample_index", "acc_raw", "gyr_raw", "acc_g", "gyr_dps", "true_angle_deg"):
            assert np.array_equal(getattr(a.signals[leg], name), getattr(b.signals[leg], name)), name
        assert not np.array_equal(a.signals[leg].gyr_raw[:100], c.signals[leg].gyr_raw[:100])
    assert a.reps == b.reps and a.sets == b.sets


def test_signal_shapes_and_types() -> None:
    sim = simulate(SessionSpec(sets=(SetSpec(2, 0),), legs=("left",), rate_hz=50.0), seed=1)
    assert list(sim.signals) == ["left"]
    sig = sim.signals["left"]
    n = sig.time_s.size
    assert sig.sample_index.dtype == np.int64 and sig.sample_index.shape == (n,)
    assert sig.acc_raw.dtype == np.int16 and sig.acc_raw.shape == (n, 3) and sig.gyr_raw.dtype == np.int16
    assert sig.acc_g.dtype == np.float64 and np.array_equal(sig.acc_g, sig.acc_raw * sig.acc_lsb_g)
    assert np.array_equal(sig.gyr_dps, sig.gyr_raw * sig.gyr_lsb_dps)
    assert sig.true_time_s.shape == sig.true_angle_deg.shape == (n,)
    assert n == pytest.approx(sim.duration_s * 50.0, abs=2)


@pytest.mark.parametrize(
    "spec,message",
    [
        (SessionSpec(exercise="squat"), "exercise must be one of"),
        (SessionSpec(sets=(SetSpec(3, 3),), legs=("left",)), "right reps must be"),
        (SessionSpec(sets=(SetSpec(3, 3, order="random"),)), "order must be one of"),
        (SessionSpec(sets=(SetSpec(3, 3, partial=(("left", 3),)),)), "partial rep"),
        (SessionSpec(errors="bad"), "errors must be one of"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: SessionSpec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulate(spec, 0)


def test_write_csv_round_trip(tmp_path) -> None:
    sim = simulate(SessionSpec(sets=(SetSpec(3, 2),), lost_samples=0.01), seed=8)
    paths = sim.write_csv(tmp_path)
    assert sorted(p.name for p in paths) == ["left.csv", "right.csv", "truth.json"]
    for leg, sig in sim.signals.items():
        text = (tmp_path / f"{leg}.csv").read_text()
        assert text.splitlines()[0] == "time_s,acc_x_g,acc_y_g,acc_z_g,gyr_x_dps,gyr_y_dps,gyr_z_dps"
        table = np.loadtxt(tmp_path / f"{leg}.csv", delimiter=",", skiprows=1)
        assert table.shape == (sig.time_s.size, 7)
        np.testing.assert_allclose(table[:, 0], sig.time_s, atol=5e-7)
        # Written values round back to the exact raw counts.
        assert np.array_equal(np.rint(table[:, 1:4] / sig.acc_lsb_g).astype(np.int16), sig.acc_raw)
        assert np.array_equal(np.rint(table[:, 4:7] / sig.gyr_lsb_dps).astype(np.int16), sig.gyr_raw)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["synthetic"] is True and truth["seed"] == 8
    assert len(truth["reps"]) == 5 and truth["sets"][0]["left_reps"] == 3 and truth["uneven"] is True
    assert truth["reps"][0]["peak_deg"] == pytest.approx(sim.reps[0].peak_deg)
    assert truth["spec"]["sets"][0]["reps_left"] == 3


# --------------------------------------------------------------------------- grid
def test_accuracy_grid_covers_the_space_and_every_session_simulates() -> None:
    grid = accuracy_grid()
    assert len({name for name, _, _ in grid}) == len(grid)
    specs = [spec for _, spec, _ in grid]
    assert {s.rate_hz for s in specs} >= {50.0, 100.0, 200.0}
    assert {s.errors for s in specs} == {"none", "typical", "harsh"}
    assert {s.exercise for s in specs} == {"straight_leg_raise", "bent_knee_raise", "plank_leg_lift", "bird_dog"}
    assert {s.mounting for s in specs} == {"random", "aligned", "upside_down"}
    assert any(len(s.legs) == 1 for s in specs) and any(s.walk_between_sets for s in specs)
    assert any(s.lost_samples >= 0.02 for s in specs)
    sets = [st for s in specs for st in s.sets]
    assert {st.order for st in sets} == {"left_then_right", "right_then_left", "alternating"}
    assert any(st.partial for st in sets) and any(st.fidgets for st in sets)
    assert any(st.reps_left != st.reps_right and st.reps_left and st.reps_right for st in sets)
    assert {(st.up_s, st.hold_s, st.down_s) for st in sets} >= {(0.7, 0.0, 1.0), (1.5, 1.0, 2.0), (3.0, 3.0, 4.0)}
    # What real sessions do (issue 8).
    assert len(grid) >= 60 and {s.start for s in specs} == {"still", "settling", "strap", "moving", "standing", "rep"}
    # What hidden sessions may hold: no rest at all, very slow / very fast reps, varying depth,
    # long pauses at the top, a leg that stops short.
    assert any(st.touch_and_go and st.hold_s == 0.0 for st in sets)
    assert any(st.up_s + st.down_s >= 6.0 and st.hold_s <= 1.0 for st in sets)
    assert any(st.up_s + st.down_s <= 1.0 for st in sets)
    assert any(st.rom_spread >= 0.3 for st in sets) and any(st.hold_s >= 5.0 for st in sets)
    assert any(st.leg_peaks_deg for st in sets)
    assert {s.rate_hz for s in specs} >= {50.0, 52.0, 60.0, 104.0, 120.0, 200.0} and max(s.rate_hz for s in specs) <= 200.0
    assert any(st.touch_and_go for st in sets) and any(st.hover_deg for st in sets) and any(st.strap_slips for st in sets)
    assert any(st.baselines_deg == (45.0, 22.0, 0.0) for st in sets) and any(st.off_axis_deg[1] >= 20.0 for st in sets)
    assert any((s.gyr_bias_walk_dps_rt_s or 0.0) >= 0.02 for s in specs) and any(s.sway for s in specs)
    assert {s.acc_noise_g_rms for s in specs} >= {0.013, 0.015} and any(s.gyr_noise_dps_rms == 0.5 for s in specs)
    assert {s.exercise for s in specs if any(st.paused_raises for st in s.sets)} >= {"straight_leg_raise", "bent_knee_raise",
                                                                                   "plank_leg_lift"}
    fresh = accuracy_grid(777)
    assert [n for n, _, _ in fresh] == [n for n, _, _ in grid] and fresh[0][2] == 777 and grid[0][2] == 1000
    # (how fast the grid simulates is benchmarks/accuracy.py's business, not an assertion here)
    for name, spec, seed in grid:
        sim = simulate(spec, seed)
        assert sim.duration_s <= 4.2 * 60, name
        want = sum(st.reps_left + st.reps_right for st in spec.sets)
        assert len(sim.reps) == want, name


def test_instant_start_short_leg_varying_depth_and_upside_down_mounting() -> None:
    spec = SessionSpec(sets=(SetSpec(6, 6, rom_spread=0.35, leg_peaks_deg=(("right", 45.0),)),), start="rep",
                       mounting="upside_down", errors="none")
    sim = simulate(spec, seed=5)
    assert sim.reps[0].start_s < 0.3  # the first rep starts as the recording does
    right = [r.peak_deg for r in sim.reps if r.leg == "right"]
    left = [r.rom_deg for r in sim.reps if r.leg == "left"]
    assert max(right) < 48.0 and min(left) < 0.8 * max(left)  # short leg; depth varies
    sig = sim.signals["left"]
    assert np.allclose(sig.mounting.rot, np.diag([-1.0, -1.0, 1.0]))
    assert abs(sig.acc_g[-10:].mean(axis=0)[2]) > 0.9  # z still out of the thigh's front (up when lying)
    with pytest.raises(ValueError, match="rom_spread"):
        simulate(SessionSpec(sets=(SetSpec(2, 2, rom_spread=0.9),)), 0)


def test_long_session_has_many_sets() -> None:
    from legrep_sim.scenarios import long_session

    sim = long_session(0.1, 50.0, seed=3)
    assert 0.07 * 3600 < sim.duration_s < 0.13 * 3600
    assert len(sim.sets) >= 2 and all(s.left_reps == s.right_reps == 10 for s in sim.sets)


def test_bundled_recordings_regenerate_identically(tmp_path) -> None:
    from pathlib import Path

    from legrep_sim.make_recordings import RECORDINGS, make_recordings

    bundled = Path(__file__).resolve().parent.parent / "recordings"
    make_recordings(tmp_path)
    for name in RECORDINGS:
        for file in ("left.csv", "right.csv", "truth.json", "README.md"):
            fresh = (tmp_path / name / file).read_bytes()
            assert fresh == (bundled / name / file).read_bytes(), f"recordings/{name}/{file} is stale: run python -m legrep_sim.make_recordings"
        assert "synthetic" in (bundled / name / "README.md").read_text().lower()
        assert sum(p.stat().st_size for p in (bundled / name).iterdir()) < 3e6
    truth = json.loads((bundled / "straight_leg_raise" / "truth.json").read_text())
    assert [(s["left_reps"], s["right_reps"], s["uneven"]) for s in truth["sets"]] == [(10, 10, False), (10, 9, True)]
    walk = json.loads((bundled / "bent_knee_raise" / "truth.json").read_text())
    assert walk["spec"]["walk_between_sets"] is True and len(walk["sets"]) == 2


def test_a_paused_raise_holds_part_way_up_and_the_combinations_are_reproducible() -> None:
    # SetSpec.paused_raises: that many reps of the set pause 0.3-2 s at 35-65 % of the rise
    sim = simulate(SessionSpec(sets=(SetSpec(3, 0, paused_raises=3),), legs=("left",), errors="none"), 4)
    sig = sim.signals["left"]
    for rep in sim.reps:  # (its stopwatch start may be the pause: the rise was fastest after it)
        inside = (sig.true_time_s >= rep.peak_s - 5.0) & (sig.true_time_s <= rep.peak_s)
        a = sig.true_angle_deg[inside]
        rate = np.abs(np.diff(a)) * sig.rate_hz
        flat = a[1:][rate < 1.0]  # the pause: still, part-way up from the mat (not at the bottom or the top)
        part = flat[(flat > 0.25 * rep.peak_deg) & (flat < 0.75 * rep.peak_deg)]
        assert len(part) >= 0.25 * sig.rate_hz, (rep.peak_s, len(part))
    with pytest.raises(ValueError, match="paused_raises"):
        simulate(SessionSpec(sets=(SetSpec(2, 2, paused_raises=5),)), 1)
    grid = combination_grid(300, 4)
    assert grid == combination_grid(300, 4) and [seed for _, _, seed in grid] == [300, 301, 302, 303]
    name, spec, seed = grid[0]
    assert len(simulate(spec, seed).reps) == sum(st.reps_left + st.reps_right for st in spec.sets), name


def test_combinations_with_more_sets_keep_the_first_and_rest_or_walk_between() -> None:
    one, two = combination_grid(400, 12), combination_grid(400, 12, sets=2)
    assert [(n, spec.sets[0], seed) for n, spec, seed in one] == [(n, spec.sets[0], seed) for n, spec, seed in two]
    for (_, spec1, _), (name, spec2, seed) in zip(one, two):
        first, second = spec2.sets
        assert (second.reps_left, second.reps_right) == (first.reps_right, first.reps_left), name
        assert 20.0 <= spec2.rest_between_sets_s <= 60.0 and spec1.rest_between_sets_s == 30.0, name
    assert any(spec.walk_between_sets for _, spec, _ in two) and not all(spec.walk_between_sets for _, spec, _ in two)
    name, spec, seed = two[0]
    sim = simulate(spec, seed)
    assert len(sim.sets) >= 2 and len(sim.reps) == sum(st.reps_left + st.reps_right for st in spec.sets), name
    with pytest.raises(ValueError, match="sets"):
        combination_grid(400, 1, sets=0)
