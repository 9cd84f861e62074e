"""The hip angle against the simulator's truth where real sessions differ from a perfect one.

Off-axis motion during reps (abduction and axial rotation of the thigh), a strap that turns on
the thigh during a rest, a gyro bias that wanders, and a session at 50-200 Hz; any chunking of
the stream gives the same angles. Tolerances are stated per test (means over the reps of a
session; the benchmark grid, benchmarks/accuracy.py, reports the figures over many sessions).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import blocks_of, match_reps

from legrep.model import ImuBlock, Leg
from legrep.offline import analyze_arrays
from legrep.pipeline import LegPipeline, SessionAnalyzer
from legrep_sim.scenarios import SessionSpec, SetSpec, accuracy_grid, simulate


def _peak_errors(sim, res, leg: Leg) -> list[float]:
    return [abs(r.peak_deg - tr.peak_deg) for r, tr in match_reps(res.reps_of(leg), sim.reps, leg)]


def _in_random_chunks(blocks: dict[Leg, ImuBlock], rng: np.random.Generator, max_chunk: int):
    """The session analysed live-style: the legs interleaved, each in chunks of 1..max_chunk-1 samples."""
    an = SessionAnalyzer(tuple(blocks))
    pos = {leg: 0 for leg in blocks}
    while any(pos[leg] < len(b) for leg, b in blocks.items()):
        for leg, b in blocks.items():
            i, k = pos[leg], int(rng.integers(1, max_chunk))
            if i < len(b):
                an.update(leg, ImuBlock(b.time_s[i : i + k], b.acc_g[i : i + k], b.gyr_dps[i : i + k]))
            pos[leg] = i + k
    return an.finish()


def _analyse(sim):
    b = blocks_of(sim)
    return analyze_arrays(left=b.get(Leg.LEFT), right=b.get(Leg.RIGHT))


def _reanchors(pipe: LegPipeline) -> int:
    mounting = pipe.diagnostics().mounting
    assert mounting is not None and mounting.neutral_reanchors is not None
    return mounting.neutral_reanchors


@pytest.mark.parametrize("exercise", ["straight_leg_raise", "plank_leg_lift"])
def test_abduction_and_rotation_during_reps_barely_enter_the_angle(exercise: str) -> None:
    # 5-15 deg of abduction and of axial rotation build up with every rise (either sign)
    spec = SessionSpec(exercise=exercise, sets=(SetSpec(6, 6, off_axis_deg=(5.0, 15.0)),), errors="typical")
    sim = simulate(spec, seed=3)
    res = _analyse(sim)
    for leg in (Leg.LEFT, Leg.RIGHT):
        assert len(res.reps_of(leg)) == len(sim.reps_of(leg.value))
        assert np.mean(_peak_errors(sim, res, leg)) < 3.5, leg


def test_strap_that_turns_during_a_rest_is_refitted() -> None:
    spec = SessionSpec(sets=(SetSpec(6, 6, strap_slips=1),), errors="typical")
    sim = simulate(spec, seed=8)
    res = _analyse(sim)
    for leg in (Leg.LEFT, Leg.RIGHT):
        assert len(res.reps_of(leg)) == len(sim.reps_of(leg.value))
        assert np.mean(_peak_errors(sim, res, leg)) < 3.0, leg  # the reps after the slip: within ~3 deg


@pytest.mark.parametrize("exercise", ["straight_leg_raise", "bird_dog"])
def test_a_standing_start_is_not_the_neutral_pose_of_the_exercise(exercise: str) -> None:
    # calibration while standing; then the person lies down (a new posture: the neutral pose
    # moves there) or kneels (the first movement is a flexion, the bird dog raise an extension)
    spec = SessionSpec(exercise=exercise, sets=(SetSpec(5, 5),), start="standing", sway=True)
    sim = simulate(spec, seed=21)
    res = _analyse(sim)
    for leg in (Leg.LEFT, Leg.RIGHT):
        errors = _peak_errors(sim, res, leg)
        assert len(errors) == len(sim.reps_of(leg.value)), leg
        assert np.mean(errors) < 2.0, (leg, errors)


@pytest.mark.parametrize("rate_hz, start", [(50.0, "still"), (200.0, "still"), (100.0, "standing")])
def test_any_chunking_gives_identical_angles_and_reps(rate_hz: float, start: str) -> None:
    spec = SessionSpec(sets=(SetSpec(4, 4, off_axis_deg=(5.0, 15.0)),), rate_hz=rate_hz, errors="harsh", lost_samples=0.01,
                       start=start, exercise="bird_dog" if start == "standing" else "straight_leg_raise")
    sim = simulate(spec, seed=6)
    blocks = blocks_of(sim)
    whole = analyze_arrays(left=blocks[Leg.LEFT], right=blocks[Leg.RIGHT])
    res = _in_random_chunks(blocks, np.random.default_rng(int(rate_hz)), 400)
    assert res.reps == whole.reps
    for leg in blocks:
        np.testing.assert_array_equal(res.traces[leg][1], whole.traces[leg][1])


@pytest.mark.parametrize("errors", ["typical", "harsh"])
def test_a_resting_leg_is_released_as_it_comes(errors: str) -> None:
    # live, the right leg lies still while the left does its set: its angle must reach the view
    # chunk by chunk (issue 12: <= 100 ms behind the sensor), not wait for its first movement
    sim = simulate(SessionSpec(sets=(SetSpec(5, 5),), errors=errors), seed=11)
    b = blocks_of(sim)[Leg.RIGHT]
    first_move_s = min(r.start_s for r in sim.reps_of("right"))
    pipe = LegPipeline(Leg.RIGHT)
    lags: list[float] = []
    resting: list[np.ndarray] = []
    for i in range(0, len(b), 10):
        t_in = b.time_s[i : i + 10]
        out = pipe.update(ImuBlock(t_in, b.acc_g[i : i + 10], b.gyr_dps[i : i + 10]))
        if pipe.calibration is not None and t_in[-1] < first_move_s - 0.5:
            lags.append(float(t_in[-1] - out.time_s[-1]) if len(out.time_s) else np.inf)
            resting.append(out.angle_deg)
    assert len(lags) > 100  # the left set gives the right leg a long rest
    assert max(lags) <= 0.1, max(lags)
    # and what reached the view is the neutral pose (the leg lies on the mat): within 3 degrees of 0
    assert np.abs(np.concatenate(resting)).max() < 3.0


def test_chunking_is_invariant_through_a_strap_slip_and_an_unsettled_start() -> None:
    spec = SessionSpec(sets=(SetSpec(4, 4, strap_slips=1), SetSpec(4, 4, strap_slips=1)), errors="harsh", start="settling")
    sim = simulate(spec, seed=9)
    blocks = blocks_of(sim)
    whole = analyze_arrays(left=blocks[Leg.LEFT], right=blocks[Leg.RIGHT])
    res = _in_random_chunks(blocks, np.random.default_rng(9), 60)
    assert res.reps == whole.reps
    for leg in blocks:
        np.testing.assert_array_equal(res.traces[leg][0], whole.traces[leg][0])
        np.testing.assert_array_equal(res.traces[leg][1], whole.traces[leg][1])


@pytest.mark.parametrize("seed", [7, 8])
def test_a_neutral_pose_taken_while_settling_moves_down_to_the_lower_rest(seed: int) -> None:
    # A settling start (the body shifting, the legs fidgeting 3-12 deg): with these seeds both
    # legs calibrate during a pause with the leg 6-11 deg up (checked below against the truth).
    # The first rest lower than that becomes the neutral pose, so every rep from the third on
    # peaks within 2 deg of the truth (before: all 6-11 deg low). Reps 1-2 come before the
    # raise direction is proven and keep the error (released live, as they happened).
    sim = simulate(SessionSpec(sets=(SetSpec(6, 6),), start="settling", errors="typical"), seed=seed)
    blocks = blocks_of(sim)
    res = _analyse(sim)
    for leg in (Leg.LEFT, Leg.RIGHT):
        pipe = LegPipeline(leg)
        pipe.update(blocks[leg])
        pipe.finish()
        sig = sim.signals[leg.value]
        assert pipe.calibration is not None
        assert np.interp(pipe.calibration.start_s, sig.time_s, sig.true_angle_deg) > 5.0, leg  # the premise
        assert _reanchors(pipe) >= 1, leg
        assert len(res.reps_of(leg)) == len(sim.reps_of(leg.value)), leg
        errors = _peak_errors(sim, res, leg)
        assert np.mean(errors[2:]) < 2.0, (leg, errors)
    # live-style chunking gives the same reps (the re-anchoring decides at single samples)
    chunked = _in_random_chunks(blocks, np.random.default_rng(seed), 40)
    assert [(r.leg, r.start_s, r.peak_deg) for r in chunked.reps] == [(r.leg, r.start_s, r.peak_deg) for r in res.reps]


@pytest.mark.parametrize("seed", [4, 8])
def test_an_axis_is_not_fitted_to_a_strap_being_adjusted(seed: int) -> None:
    # A strap start: 2-4 s of turning the sensor on the thigh by 5-25 deg back and forth, the
    # leg shifting a few degrees. With these seeds the fiddling reached axis_rotation_deg
    # before the first rep; an axis fitted to it read a leg at rest 17-28 deg up, or an extra
    # rep (mean peak errors 18 and 22 deg before). Only a turn about one axis fits it now.
    sim = simulate(SessionSpec(sets=(SetSpec(6, 6),), start="strap", errors="typical"), seed=seed)
    res = _analyse(sim)
    for leg in (Leg.LEFT, Leg.RIGHT):
        assert len(res.reps_of(leg)) == len(sim.reps_of(leg.value)), leg
        assert np.mean(_peak_errors(sim, res, leg)) < 4.0, leg  # what is left: the strap's final turn


def _counts_exact_in_any_chunks(sim, seed: int, peak_tol_deg: float = 5.0, traces: bool = False) -> None:
    """Every leg counted exactly, its mean peak error under ``peak_tol_deg`` (the default: 5-20 deg
    of abduction and rotation, the first reps read by the tilt, up to 10 deg off), and live
    chunks of 1-59 samples giving the same reps (``traces``: and the same angles)."""
    blocks = blocks_of(sim)
    res = _analyse(sim)
    for leg in (Leg.LEFT, Leg.RIGHT):
        assert len(res.reps_of(leg)) == len(sim.reps_of(leg.value)), (leg, [round(r.peak_deg) for r in res.reps_of(leg)])
        assert np.mean(_peak_errors(sim, res, leg)) < peak_tol_deg, (leg, _peak_errors(sim, res, leg))
    chunked = _in_random_chunks(blocks, np.random.default_rng(seed), 60)
    assert chunked.reps == res.reps
    if traces:
        for leg in blocks:
            np.testing.assert_array_equal(chunked.traces[leg][1], res.traces[leg][1])


@pytest.mark.parametrize("seed", [1050, 4292])
def test_kneeling_down_from_standing_is_no_bird_dog_rep(seed: int) -> None:
    # Calibration while standing (swaying); kneeling down flexes each thigh by ~70 deg and
    # back, the bird dog raise is an extension. The first movement after a standing rest is
    # held until the next one shows the raise direction; the flip re-expresses it (negative),
    # so it is no rep (before: one extra rep per leg, counted as the posture change).
    sim = simulate(SessionSpec(exercise="bird_dog", sets=(SetSpec(6, 6),), start="standing", sway=True), seed=seed)
    _counts_exact_in_any_chunks(sim, seed, peak_tol_deg=2.0, traces=True)


@pytest.mark.parametrize("exercise, seed", [("bird_dog", 1), ("plank_leg_lift", 2)])
def test_kneeling_down_after_standing_without_sway_is_no_rep(exercise: str, seed: int) -> None:
    # The same kneel-down after a standing rest with no sway (leaning on something; the
    # simulator's still standing start): the calibration rest shows only the gyro's noise, so it
    # is not known for a standing one, but the lever arm at the first movement puts the thigh
    # upright, so that movement is on probation too (before: a ~70 deg rep per leg at 5-8 s).
    sim = simulate(SessionSpec(exercise=exercise, sets=(SetSpec(6, 6),), start="standing", rate_hz=104.0), seed=seed)
    _counts_exact_in_any_chunks(sim, seed, peak_tol_deg=2.0, traces=True)


def test_a_lying_first_rep_is_not_held_for_probation() -> None:
    # A lying thigh (supine straight-leg raise from a still start): the lever arm puts it level,
    # so its first rep is released as it rises (the view shows it), not held to the next movement.
    sim = simulate(SessionSpec(sets=(SetSpec(3, 3),)), seed=5)
    b = blocks_of(sim)[Leg.LEFT]
    first = min(sim.reps_of("left"), key=lambda r: r.start_s)
    pipe = LegPipeline(Leg.LEFT)
    released_s = -np.inf
    for i in range(0, len(b), 10):  # live chunks of 10 samples, up to the first rep's top
        if b.time_s[i] > first.start_s + 0.8 * (first.peak_s - first.start_s):
            break
        out = pipe.update(ImuBlock(b.time_s[i : i + 10], b.acc_g[i : i + 10], b.gyr_dps[i : i + 10]))
        if len(out.time_s):
            released_s = float(out.time_s[-1])
    assert released_s > first.start_s + 0.5 * (first.peak_s - first.start_s)


@pytest.mark.parametrize("seed, tempo, rate_hz, errors, off_axis_deg", [
    (30002, (1.5, 1.0, 2.0), 52.0, "typical", (0.0, 0.0)), (30014, (1.0, 0.3, 1.6), 104.0, "none", (5.0, 20.0))])
def test_a_strap_start_into_a_bird_dog_top_is_not_read_upside_down(seed, tempo, rate_hz, errors, off_axis_deg) -> None:
    # A strap adjusted, then the first leg's first bird dog at once: the first rest long enough
    # to calibrate on is that rep's top. The running lever-arm estimate still carried the strap
    # (the sensor turning about the thigh) and put the turn's rise at -2 to 23 deg: the top was
    # taken for the neutral pose and the leg's whole set read upside down (its rests as 86 deg
    # reps, one rep short). The lever arm fitted to the turn alone says it rose (34-48 deg).
    up_s, hold_s, down_s = tempo
    spec = SessionSpec(exercise="bird_dog", start="strap", rate_hz=rate_hz, errors=errors,
                       sets=(SetSpec(6 if seed == 30014 else 5, 5, order="left_then_right", up_s=up_s, hold_s=hold_s,
                                     down_s=down_s, off_axis_deg=off_axis_deg),))
    _counts_exact_in_any_chunks(simulate(spec, seed), seed)


def test_a_first_rise_from_a_rest_lowered_at_its_fit_is_a_rep() -> None:
    # Alternating slow bird dogs after a strap start: the right leg's rest read 9.5 deg (released
    # unsigned before its first movement), and the fit of that movement made it the neutral pose
    # (0). The rise then began 9 deg below the rest before it: from no rest, the first rep was
    # rejected. The segmentation restarts at the movement instead.
    spec = SessionSpec(exercise="bird_dog", start="strap", rate_hz=52.0, errors="typical",
                       sets=(SetSpec(6, 5, order="alternating", up_s=3.0, hold_s=3.0, down_s=4.0, off_axis_deg=(5.0, 20.0),
                                     paused_raises=4),))
    _counts_exact_in_any_chunks(simulate(spec, 30007), 30007)


def test_a_raise_after_a_strap_start_is_no_strap_roll() -> None:
    # Straight-leg raises right after a strap was adjusted: the lever arm still carried the
    # strap turning (it points across the thigh, along the flexion axis), so the first rep's axis
    # was taken for a strap roll at its top (80 deg up) and the rep dropped.
    spec = SessionSpec(start="strap", rate_hz=52.0, errors="harsh",
                       sets=(SetSpec(9, 9, order="alternating", touch_and_go=True, off_axis_deg=(5.0, 20.0)),))
    _counts_exact_in_any_chunks(simulate(spec, 30066), 30066)


def test_the_rest_after_a_strap_roll_is_the_new_reference() -> None:
    # Fast plank lifts; the right strap turns 29 deg on the thigh before that leg's first lift.
    # The turn was fitted as the first movement and then dropped as a strap roll, but the rest
    # after it still read 28 deg (the strap's turn against the calibration rest) until the
    # first lift's fit re-read it from 15: a lift from no rest, rejected. That rest is now the
    # reference rest, at the angle the turn began at.
    spec = SessionSpec(exercise="plank_leg_lift", start="settling", rate_hz=52.0, errors="typical",
                       sets=(SetSpec(6, 6, order="alternating", up_s=0.7, hold_s=0.0, down_s=1.0, bottom_rest_s=0.3,
                                     strap_slips=1, paused_raises=3),))
    _counts_exact_in_any_chunks(simulate(spec, 30079), 30079)


def test_a_new_posture_keeps_the_thighs_flexion_axis() -> None:
    # Standing, down into a plank, then lifts with 5-20 deg of abduction and rotation. The
    # axis read until the plank (the kneel-down and the turn into the plank, large clean turns
    # about the thigh's flexion axis) was replaced by one fitted to the first 30 deg lift, 30 deg
    # off: the lifts read 19-41 deg for 29-32 (two taken for fidgets). The axis is the thigh's,
    # fixed on the sensor in any posture: it is kept, with the movements it was read from.
    spec = SessionSpec(exercise="plank_leg_lift", start="standing", rate_hz=50.0, errors="none",
                       sets=(SetSpec(9, 9, order="alternating", up_s=1.0, hold_s=0.3, down_s=1.6, touch_and_go=True,
                                     off_axis_deg=(5.0, 20.0), paused_raises=3),))
    _counts_exact_in_any_chunks(simulate(spec, 30059), 30059)


def test_a_strap_turn_on_probation_is_re_read_about_the_next_movements_axis() -> None:
    # Bent-knee raises with everything at once after a strap start (the grid's tuned
    # real_everything_bent_knee). The right leg's first fitted movement, right after a short
    # calibration rest that swayed with the strap, was the strap turning on the thigh: on
    # probation, but the check at the next movement (the set-up, about an axis 72 deg from it)
    # decided nothing and released it as a 22 deg rep. A movement on probation about another
    # axis than the next one is no raise: it is re-read about the new axis (probe_axis_deg).
    spec = SessionSpec(exercise="bent_knee_raise", start="strap", rate_hz=52.0, errors="typical",
                       acc_noise_g_rms=0.013, gyr_noise_dps_rms=0.5, gyr_bias_walk_dps_rt_s=0.02,
                       sets=(SetSpec(9, 9, order="left_then_right", up_s=1.0, hold_s=0.3, down_s=1.6, touch_and_go=True,
                                     baselines_deg=(45.0, 22.0, 0.0), off_axis_deg=(5.0, 20.0), strap_slips=1),))
    _counts_exact_in_any_chunks(simulate(spec, 1073), 1073, peak_tol_deg=6.0)


@pytest.mark.parametrize("seed", [1080, 4322])
def test_a_session_that_starts_mid_rep_is_not_read_upside_down(seed: int) -> None:
    # The first rep starts at t = 0: the first rest (calibration) is the top of rep 1. Before,
    # that top became the neutral pose and the lowering the raise direction: every angle read
    # upside down and rep 1 was lost. The samples before the rest are one turn into it, so the
    # rest is that far up and the mounting comes from that turn.
    sim = simulate(SessionSpec(sets=(SetSpec(8, 8),), start="rep"), seed=seed)
    blocks = blocks_of(sim)
    res = _analyse(sim)
    for leg in (Leg.LEFT, Leg.RIGHT):
        assert len(res.reps_of(leg)) == len(sim.reps_of(leg.value)), leg
        assert np.mean(_peak_errors(sim, res, leg)) < 3.0, (leg, _peak_errors(sim, res, leg))
    chunked = _in_random_chunks(blocks, np.random.default_rng(seed), 60)
    assert chunked.reps == res.reps


@pytest.mark.parametrize("seed", [36])
def test_an_axis_along_the_lever_arm_is_dropped_after_a_strap_start_before_a_bent_knee_set(seed: int) -> None:
    # real_everything_bent_knee's spec on a seed outside the accuracy grid: a strap adjusted at the
    # start (cheap MEMS parts, 52 Hz), then a touch-and-go bent-knee set whose rests never come
    # near the neutral pose. The calibration rest came while the strap was still being turned, so
    # the first axis was fitted to the sensor turning about the thigh (along the lever arm); no
    # rest re-anchored it and the left leg read 8 reps, peaks 51 deg off on average, before.
    spec = next(s for name, s, _ in accuracy_grid() if name == "real_everything_bent_knee")
    sim = simulate(spec, seed=seed)
    res = _analyse(sim)
    for leg in (Leg.LEFT, Leg.RIGHT):
        assert len(res.reps_of(leg)) == len(sim.reps_of(leg.value)), leg
        # what is left (~9 deg): the axis is fitted to the shift to the raised baseline, with its
        # abduction, and no rest levels it (the gyro bias from a rest taken mid-strap is off)
        assert np.mean(_peak_errors(sim, res, leg)) < 12.0, leg
    chunked = _in_random_chunks(blocks_of(sim), np.random.default_rng(seed), 40)
    assert [(r.leg, r.start_s, r.peak_deg) for r in chunked.reps] == [(r.leg, r.start_s, r.peak_deg) for r in res.reps]


@pytest.mark.parametrize("seed", [50037, 51016])
def test_a_strap_turned_about_a_kneeling_thigh_is_no_flexion_axis(seed: int) -> None:
    # Bird dogs after a strap start, one leg waiting while the other does its set: turning a
    # strap on a thigh that hangs upright turns the sensor about the vertical, and that turn was
    # fitted as the first movement (31 deg from vertical). About a near-vertical axis the angle
    # comes from the gyro's heading: the waiting leg's kneeling rest read 40 deg, drifting, and its
    # set was read upside down (a rep too many or too few). The hip's flexion axis is level in
    # every exercise posture: such a fit is passed over (``fit_max_tilt_deg``).
    spec = SessionSpec(exercise="bird_dog", start="strap", rate_hz=104.0, errors="none",
                       sets=(SetSpec(5, 4, order="left_then_right", up_s=1.5, hold_s=1.0, down_s=2.0, paused_raises=4,
                                     fidgets=1),))
    _counts_exact_in_any_chunks(simulate(spec, seed), seed)


def test_a_whole_recording_gives_the_live_reps_after_a_standing_start_before_planks() -> None:
    # Two sets of alternating plank lifts with a strap slip each, after standing: the recording
    # goes to the hip-angle stage from the calibration rest on in one call, and the kneel-down
    # (on probation: the raise direction flipped) was re-read from the samples kept for it, which
    # later pieces of the same call had pruned: 3 s read as one constant 85 deg, a rep more than the
    # same samples in live chunks give (17 against 16 for the right leg).
    s = SetSpec(8, 8, order="alternating", up_s=1.0, hold_s=0.3, down_s=1.6, off_axis_deg=(5.0, 20.0), strap_slips=1)
    spec = SessionSpec(exercise="plank_leg_lift", sets=(s, s), rate_hz=200.0, errors="typical", start="standing",
                       rest_between_sets_s=20.157585449487204)
    _counts_exact_in_any_chunks(simulate(spec, 50007), 50007, peak_tol_deg=6.0)
