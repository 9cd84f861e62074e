"""The neutral pose and the first flexion axis when a session does not start with a clean rest.

A person settling on the mat gives the calibration a rest with the leg still a few degrees up,
and a cheap part (13 mg, 0.5 deg/s) at 52 Hz with fast reps (0.3 s at the bottom) gives the
orientation stage no bias rest between reps. The neutral pose must still come down to where the
leg rests between reps, and the first axis must be fitted to the first rep even when no still
sample separates it from the settling. Truth from the simulator; tolerances stated per test.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import blocks_of, match_reps
from test_fusion_angle import _in_random_chunks as in_random_chunks  # (one chunker for the fusion tests)

from legrep.model import Leg, SessionResult
from legrep.offline import analyze_arrays
from legrep.pipeline import LegPipeline
from legrep.settings import Settings
from legrep_sim.scenarios import CHEAP, FAST, SMOOTH, SessionSpec, SetSpec, accuracy_grid, simulate

SETTLING_CHEAP = SessionSpec(sets=(SetSpec(8, 8, **FAST),), start="settling", rate_hz=52.0, **CHEAP)
HOVER_AFTER_SETTLING = SessionSpec(sets=(SetSpec(8, 8, hover_deg=(10.0, 15.0)),), start="settling", **CHEAP)
OFF_AXIS_PERFECT = SessionSpec(sets=(SetSpec(8, 8, off_axis_deg=(5.0, 20.0)),), errors="none")


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_neutral_pose_comes_down_to_short_rests_between_reps(seed: int) -> None:
    # the right leg rests through the left leg's set, then does its own: the calibration rest (in
    # the settling) is above where it rests; its reps' bottoms (0.3 s, no bias rest) must move the
    # neutral pose down, so every rep after the second reads its true peak within 2.5 deg: the
    # rest after the second rep proves the raise direction, and the neutral pose comes down at its
    # first still sample (before: 4.7-12 deg low on these seeds, and the third rep 4.8-12.2 low
    # until the sign check's own rest could lower it)
    sim = simulate(SETTLING_CHEAP, seed)
    b = blocks_of(sim)
    res = analyze_arrays(left=b[Leg.LEFT], right=b[Leg.RIGHT])
    pairs = match_reps(res.reps_of(Leg.RIGHT), sim.reps, Leg.RIGHT)
    assert len(pairs) == len(sim.reps_of("right")) == 8
    errors = [abs(r.peak_deg - tr.peak_deg) for r, tr in pairs[2:]]
    assert max(errors) < 2.5, errors


# the orientation stage as configured before two 1 s low-passes and the motion bias estimate
# became the defaults: it reads this settling differently
_ONE_3S_STAGE = {"tau_acc_s": 3.0, "tau_acc2_s": 0.0, "bias_motion_tau_s": 0.0}


@pytest.mark.parametrize("seed, orientation", [(1, {}), (8, {}), (10, {}), (10, _ONE_3S_STAGE)])
def test_first_axis_is_fitted_to_the_first_rep_without_a_still_sample_before_it(seed: int, orientation: dict[str, float]) -> None:
    # on these seeds the left leg starts its set straight from the settling, with no still sample
    # between (nor between its reps): the axis must come from the first rep, so during the set
    # the angle follows the truth up to an offset (the neutral pose, which comes down at the
    # rest after the second rep): from the third rep on, the 5-95 % spread of its error under
    # 6 deg (before: 30-48 deg, the axis fitted to a lowering, or none at all). Seed 10 with the
    # default two 1 s low-passes: a settling rest 10 deg above the calibration rest (true 10.8 vs
    # 0.0) must not refuse the first rep, which rises from 0.9 with no pause (before: rejected,
    # and its touch-and-go set with it); and with the former single 3 s stage too
    sim = simulate(SETTLING_CHEAP, seed)
    pipe = LegPipeline(Leg.LEFT, replace(Settings(), **orientation))
    a, b = pipe.update(blocks_of(sim)[Leg.LEFT]), pipe.finish()
    t, angle = np.concatenate([a.time_s, b.time_s]), np.concatenate([a.angle_deg, b.angle_deg])
    sig = sim.signals["left"]
    reps = sim.reps_of("left")
    assert len(a.reps) + len(b.reps) == len(reps)
    # (from the third rep: the neutral pose comes down at the rest after the second)
    in_set = (t >= reps[2].start_s) & (t <= reps[-1].end_s)
    err = angle[in_set] - np.interp(t[in_set], sig.time_s, sig.true_angle_deg)
    assert np.percentile(err, 95) - np.percentile(err, 5) < 6.0


@pytest.mark.parametrize(("spec", "seed"), [(SETTLING_CHEAP, 1), (SETTLING_CHEAP, 10), (SETTLING_CHEAP, 3),
                                           (HOVER_AFTER_SETTLING, 0), (OFF_AXIS_PERFECT, 0)],
                         ids=["settling-1", "settling-10", "unsure-bias", "hover-floor", "plane-at-proof"])
def test_chunking_is_invariant_through_a_settling_start_without_still_samples(spec: SessionSpec, seed: int) -> None:
    # the lower neutral pose is decided at the first still sample of each still run (the still
    # flag carried across chunks) and the axis search goes on after a movement that is no turn;
    # the floor the first rep rises from, an unsure calibration bias (orientation step 3b) and
    # the plane anchored when the first sign check proves the direction are decided on samples
    # that any chunking holds alike: live-style chunks of 1-30 samples give the same angles and
    # reps as the whole stream
    sim = simulate(spec, seed)
    blocks = blocks_of(sim)
    whole = analyze_arrays(left=blocks[Leg.LEFT], right=blocks[Leg.RIGHT])
    res = in_random_chunks(blocks, np.random.default_rng(seed), 31)
    assert res.reps == whole.reps
    for leg in blocks:
        np.testing.assert_array_equal(res.traces[leg][0], whole.traces[leg][0])
        np.testing.assert_array_equal(res.traces[leg][1], whole.traces[leg][1])


# a set that starts the instant recording starts, touch-and-go (no rest at the bottom) with a
# 0.3 s hold at the top: the first hold long enough to calibrate on is the top of a later rep
INSTANT_TOUCH_AND_GO = SessionSpec(sets=(SetSpec(10, 10, touch_and_go=True, **SMOOTH),), start="rep", rate_hz=52.0)


@pytest.mark.parametrize("seed", [1081, 9272])
def test_calibration_on_the_top_of_a_later_rep_keeps_the_raise_positive(seed: int) -> None:
    # on these seeds the calibration rest is the hold at the top of the left leg's 4th (1081) or
    # 2nd (9272) rep: the reps before it swing between where the stream began and that rest, so
    # the rest is their top and the next movement (a lowering) no raise. Every rep counts, each
    # found rep holds a true rep's peak, and their peaks read within 12 deg, 6 deg on average
    # (the bias from a 0.5 s hold at the top leaves the set's neutral pose drifting by up to 8
    # deg; before: the angle upside down, peaks at the true bottoms, the last rep never closed)
    sim = simulate(INSTANT_TOUCH_AND_GO, seed)
    b = blocks_of(sim)
    res = analyze_arrays(left=b[Leg.LEFT], right=b[Leg.RIGHT])
    assert res.diagnostics["left"].calibration.start_s > sim.reps_of("left")[1].start_s
    for leg in (Leg.LEFT, Leg.RIGHT):
        pairs = match_reps(res.reps_of(leg), sim.reps, leg)
        assert len(pairs) == len(res.reps_of(leg)) == len(sim.reps_of(leg.value)) == 10
        errors = [abs(r.peak_deg - tr.peak_deg) for r, tr in pairs]
        assert max(errors) < 12.0 and np.mean(errors) < 6.0, (leg, errors)
    chunked = in_random_chunks(b, np.random.default_rng(seed), 31)
    assert chunked.reps == res.reps


def _grid_spec(base: int, name: str) -> SessionSpec:
    """The accuracy grid's session ``name`` for base seed ``base``."""
    return {n: s for n, s, _ in accuracy_grid(base)}[name]


STRAP_START = SessionSpec(sets=(SetSpec(8, 8),), start="strap")


@pytest.mark.parametrize("seed", [55599, 31381])
def test_calibration_on_the_top_of_the_first_rep_after_a_strap_adjusted(seed: int) -> None:
    # the left leg's first rep follows the strap being adjusted (55599: with no still sample
    # between, 31381: after a pause) and its hold at the top is the first rest long enough to
    # calibrate on: the turn into it raised the sensor relative to the hip (lever arm) and the
    # next movement turns back, so the rest is that rep's top. Every rep counts, each found
    # rep holds a true rep's peak and reads it within 6 deg (before: the angle upside down,
    # 7 of 8 "reps" peaking at the true bottoms)
    sim = simulate(STRAP_START, seed)
    b = blocks_of(sim)
    res = analyze_arrays(left=b[Leg.LEFT], right=b[Leg.RIGHT])
    first = sim.reps_of("left")[0]
    assert first.start_s + 0.5 * first.up_s < res.diagnostics["left"].calibration.start_s < first.end_s
    pairs = match_reps(res.reps_of(Leg.LEFT), sim.reps, Leg.LEFT)
    assert len(pairs) == len(res.reps_of(Leg.LEFT)) == len(sim.reps_of("left")) == 8
    errors = [abs(r.peak_deg - tr.peak_deg) for r, tr in pairs]
    assert max(errors) < 6.0, errors
    assert in_random_chunks(b, np.random.default_rng(seed), 31).reps == res.reps


def test_knees_bent_before_the_calibration_rest_read_from_where_the_leg_lay() -> None:
    # the real-world grid's bent-knee session with everything at once, on the seed where the
    # right leg's calibration rest is its 45 deg set-up pose, reached by one turn from lying
    # straight (after a strap was adjusted) and followed by a raise that goes on up: the rest is
    # that far above where the leg lay, so the first set's rests read about 45 deg, not 0. Its
    # reps' baselines within 10 deg of the truth (before: 42-49 deg low)
    spec = _grid_spec(5242, "real_everything_bent_knee")
    sim = simulate(spec, 5315)
    b = blocks_of(sim)
    res = analyze_arrays(left=b[Leg.LEFT], right=b[Leg.RIGHT])
    pairs = match_reps(res.reps_of(Leg.RIGHT), sim.reps, Leg.RIGHT)
    assert len(pairs) == len(sim.reps_of("right")) == 9
    errors = [r.baseline_deg - tr.baseline_deg for r, tr in pairs]
    assert max(abs(e) for e in errors) < 10.0, errors


@pytest.mark.parametrize("name, base, seed", [("edge_instant_start", 55555, 55635), ("edge_instant_start_touch_and_go", 6242, 6323)])
def test_a_lead_in_from_a_still_start_reads_the_rest_by_gravity(name: str, base: int, seed: int) -> None:
    # a set that starts the instant recording starts: the calibration rest is the hold at the
    # top of the first rep, reached by one turn from the still start. The rest's angle comes
    # from the accelerometer at the start against the rest's (the gyro over the turn carries a
    # bias from a 0.5 s hold: 5 deg over the raise on 6323). Every left rep counts and its
    # peak reads within 2.5 deg (55635; before: 3.4) / 11 deg (6323; before: 14.6)
    spec = _grid_spec(base, name)
    sim = simulate(spec, seed)
    b = blocks_of(sim)
    res = analyze_arrays(left=b[Leg.LEFT], right=b[Leg.RIGHT])
    assert res.diagnostics["left"].calibration.start_s < sim.reps_of("left")[0].end_s
    pairs = match_reps(res.reps_of(Leg.LEFT), sim.reps, Leg.LEFT)
    assert len(pairs) == len(res.reps_of(Leg.LEFT)) == len(sim.reps_of("left"))
    errors = [abs(r.peak_deg - tr.peak_deg) for r, tr in pairs]
    assert max(errors) < (2.5 if seed == 55635 else 11.0), errors



@pytest.mark.parametrize("spec", [HOVER_AFTER_SETTLING, replace(HOVER_AFTER_SETTLING, errors="typical")], ids=["cheap", "typical"])
def test_a_hover_set_after_settling_reads_from_where_the_leg_lay(spec: SessionSpec) -> None:
    # the calibration rest comes while the person settles (a leg a few degrees up), and the set
    # hovers 10-15 deg above the mat: no rest between reps lies below the calibration pose, only
    # the rest the first rep rises from. That rest is the neutral pose (the first movement went
    # up; the sign check after it proves it): every rep's peak within 4 deg of the truth on
    # these seeds, 2 deg on average (before: 5-16 deg low on 11 of the 12 legs, 9 on average)
    errors = []
    for seed in range(3):
        sim = simulate(spec, seed)
        b = blocks_of(sim)
        res = analyze_arrays(left=b[Leg.LEFT], right=b[Leg.RIGHT])
        for leg in (Leg.LEFT, Leg.RIGHT):
            pairs = match_reps(res.reps_of(leg), sim.reps, leg)
            assert len(pairs) == len(res.reps_of(leg)) == len(sim.reps_of(leg.value)) == 8
            errors += [abs(r.peak_deg - tr.peak_deg) for r, tr in pairs]
    assert max(errors) < 4.0 and float(np.mean(errors)) < 2.0, errors


def test_the_sign_check_measures_a_movement_from_where_it_starts() -> None:
    # the left leg goes straight from the settling into fast reps (0.3 s at the bottom) with its
    # calibration pose 20 deg above the mat: the sign check's rest lies 14 deg below that pose,
    # and the next raise reaches the fitted axis's 25 deg of rotation below it. It went up by 25
    # from where it started, which proves the raise direction (the neutral pose then comes
    # down): every left rep's peak within 4.5 deg (before: 21-22 deg low, all of them)
    name, base, seed = "real_settling_cheap_52hz", 31337, 31379
    sim = simulate(_grid_spec(base, name), seed)
    b = blocks_of(sim)
    res = analyze_arrays(left=b[Leg.LEFT], right=b[Leg.RIGHT])
    pairs = match_reps(res.reps_of(Leg.LEFT), sim.reps, Leg.LEFT)
    assert len(pairs) == len(res.reps_of(Leg.LEFT)) == len(sim.reps_of("left")) == 8
    errors = [abs(r.peak_deg - tr.peak_deg) for r, tr in pairs]
    assert max(errors) < 4.5, errors


@pytest.mark.parametrize("fast_tau_s", [2.0, 0.0])
def test_an_unsure_calibration_bias_is_corrected_while_moving(fast_tau_s: float) -> None:
    # seed 3: the calibration rest is 0.4 s of the body still shifting, its mean rate 7.9 deg/s
    # off the gyro's bias (standard error 1.9 deg/s, over calib_bias_se_dps); the left leg goes
    # into fast reps with no rest of bias_window_s. Raised, the leg shows the error as gravity
    # turning, and after such a calibration the motion bias estimator starts fast
    # (bias_motion_fast_tau_s): the peaks read within 6.5 deg, the last three within 3.5
    # (with it off, as before: 9-13 deg high from the third rep on, 11 on average)
    sim = simulate(SETTLING_CHEAP, 3)
    pipe = LegPipeline(Leg.LEFT, Settings(bias_motion_fast_tau_s=fast_tau_s))
    a, b = pipe.update(blocks_of(sim)[Leg.LEFT]), pipe.finish()
    pairs = match_reps(a.reps + b.reps, sim.reps, Leg.LEFT)
    assert len(pairs) == len(sim.reps_of("left")) == 8
    errors = [abs(r.peak_deg - tr.peak_deg) for r, tr in pairs]
    if fast_tau_s:
        assert max(errors) < 6.5 and max(errors[-3:]) < 3.5, errors
    else:
        assert float(np.mean(errors[2:])) > 8.0, errors  # (what the fast start corrects)


def _every_rep_within(spec: SessionSpec, seed: int, tol_deg: float) -> SessionResult:
    """Analyse both legs of a simulated session; every rep counted (no more, no fewer) and every
    peak within ``tol_deg`` of the truth. Returns the result (for its diagnostics)."""
    sim = simulate(spec, seed)
    b = blocks_of(sim)
    res = analyze_arrays(left=b[Leg.LEFT], right=b[Leg.RIGHT])
    for leg in (Leg.LEFT, Leg.RIGHT):
        pairs = match_reps(res.reps_of(leg), sim.reps, leg)
        assert len(pairs) == len(res.reps_of(leg)) == len(sim.reps_of(leg.value)), leg
        errors = [abs(r.peak_deg - tr.peak_deg) for r, tr in pairs]
        assert max(errors) < tol_deg, (leg, [round(e, 1) for e in errors])
    return res


@pytest.mark.parametrize("base", [4242, 9191])
def test_a_bent_knee_raise_that_pauses_high_is_no_new_posture(base: int) -> None:
    # a bent-knee raise (from the set-up rest at 45 deg) that pauses at 65-74 deg, more than
    # posture_change_deg above the lying neutral pose, then goes on up: that rest was taken for a
    # new posture (lying down after standing), neutral there, and every later rep read ~73 deg
    # low (a set of reps "from -30"). It is a pause when the leg came back down before the next
    # fitted movement (4242: the going on up too short to fit an axis to), or comes back down
    # below the rest when the movement fitted there ends (9191); a person lying down after
    # standing, or getting into a plank, stops at or above that rest (the next test)
    (spec, seed), = [(sp, sd) for name, sp, sd in accuracy_grid(base) if name == "edge_paused_raises_bent_knee"]
    res = _every_rep_within(spec, seed, 8.0)
    assert res.diagnostics[Leg.LEFT].mounting.posture_changes == 0 == res.diagnostics[Leg.RIGHT].mounting.posture_changes


def test_a_plank_lift_that_pauses_part_way_up_flips_no_sign() -> None:
    # plank leg lifts rise 30-40 deg; one that pauses at ~18 deg before going on up leaves a rest
    # near the neutral pose in the sign check, and the next fitted movement is the descent from
    # the pause: measured from where it started it went down, so the raise direction was flipped
    # and every later rep read negative (2 reps lost a leg on 3 of 4 seeds). A flip needs the leg
    # below the checked rest as well
    res = _every_rep_within(SessionSpec(exercise="plank_leg_lift", sets=(SetSpec(8, 8, paused_raises=6),)), 501, 3.0)
    assert res.diagnostics[Leg.LEFT].mounting.sign_flips == 0 == res.diagnostics[Leg.RIGHT].mounting.sign_flips


def test_standing_then_a_plank_is_a_new_posture() -> None:
    # a swaying standing calibration, then down into a plank (the thigh turns ~81 deg, the same way
    # as the leg lifts go on): a new posture; taken for a raise that paused, every lift would read
    # ~80 high (a first version of the paused-raise rule did that)
    _every_rep_within(SessionSpec(exercise="plank_leg_lift", sets=(SetSpec(7, 7),), start="standing", rate_hz=104.0,
                                  sway=True), 1, 4.0)


@pytest.mark.parametrize(("name", "base"), [("edge_paused_raises_plank", 1000), ("edge_paused_raises_bent_knee", 9191)])
def test_paused_raises_give_the_same_reps_in_any_chunks(name: str, base: int) -> None:
    # the sign check's flip compares with the checked rest's pose as the check began (the held
    # samples' first one moves with the chunking: live chunks of 1-30 samples flipped the plank's
    # raise direction three times where the whole stream flipped it none), and a far rest's
    # decision waits for the end of the movement in whatever chunk it comes
    (spec, seed), = [(sp, sd) for n, sp, sd in accuracy_grid(base) if n == name]
    blocks = blocks_of(simulate(spec, seed))
    whole = analyze_arrays(left=blocks[Leg.LEFT], right=blocks[Leg.RIGHT])
    live = in_random_chunks(blocks, np.random.default_rng(3), 31)
    assert [repr(r) for r in live.reps] == [repr(r) for r in whole.reps]
