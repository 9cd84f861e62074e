"""A first rep that starts from a short pause below where the leg last rested.

A person settling on the mat rests a moment with the leg still a little up, lets it down and
pauses there for less than ``arm_rest_s`` before the first raise. That pause anchors the rep's
low (as a rest does); a low that never paused so far below the last rest does not (walking's
strides never pause). Both the C kernel and the plain-Python reference machine are checked.
"""

from __future__ import annotations

import numpy as np
import pytest

from legrep.model import Leg
from legrep.reps import RepSegmenter
from legrep.settings import Settings

DT = 0.01


def _ramp(a0: float, a1: float, dur_s: float) -> np.ndarray:
    """A minimum-jerk move from a0 to a1 (samples after the start, none at it)."""
    x = np.arange(1, round(dur_s / DT) + 1) / round(dur_s / DT)
    return a0 + (a1 - a0) * (10 * x**3 - 15 * x**4 + 6 * x**5)


def _joined(parts: list[tuple[np.ndarray, bool]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(time_s, angle_deg, still)`` of pieces ``(angles, still)`` one after another at ``DT``."""
    angle = np.concatenate([p for p, _ in parts])
    still = np.concatenate([np.full(len(p), st) for p, st in parts])
    return np.arange(len(angle)) * DT, angle, still


def _stream(pause_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rest 1 s at 12 deg, down to 0, a pause of ``pause_s``, a raise to 70 and back, rest 2 s."""
    parts = [
        (np.full(100, 12.0), True),
        (_ramp(12.0, 0.0, 0.5), False),
        (np.zeros(round(pause_s / DT)), True),
        (_ramp(0.0, 70.0, 1.0), False),
        (np.full(50, 70.0), True),
        (_ramp(70.0, 0.0, 2.0), False),
        (np.zeros(200), True),
    ]
    return _joined(parts)


@pytest.mark.parametrize("reference", [False, True])
def test_a_pause_shorter_than_a_rest_anchors_the_first_rep(reference: bool) -> None:
    s = Settings()
    assert 0.1 < s.arm_rest_s and 12.0 > s.undershoot_deg  # the premise: a short pause, far below the rest
    t, angle, still = _stream(0.1)
    seg = RepSegmenter(Leg.LEFT, s, DT, reference=reference)
    reps = seg.update(t, angle, still) + seg.finish()
    assert len(reps) == 1
    assert abs(reps[0].peak_deg - 70.0) < 0.5 and abs(reps[0].baseline_deg) < 1.0


@pytest.mark.parametrize("reference", [False, True])
def test_a_low_that_never_paused_far_below_the_last_rest_anchors_nothing(reference: bool) -> None:
    t, angle, still = _stream(0.0)
    seg = RepSegmenter(Leg.LEFT, Settings(), DT, reference=reference)
    assert seg.update(t, angle, still) + seg.finish() == []


@pytest.mark.parametrize("reference", [False, True])
def test_a_rest_on_the_way_up_longer_than_max_rep_s_still_anchors_the_next_rep(reference: bool) -> None:
    # bent-knee: the thigh goes from 0 to the 45 deg baseline and rests there while the other leg
    # does its set; the candidate opened by that shift expires (max_rep_s) just as the first
    # raise from 45 begins: the rest at 45 anchors it (before: dropped, the raise unanchored)
    s = Settings()
    shift = np.concatenate([np.zeros(100), _ramp(0.0, 45.0, 1.5)])
    rest_n = round((s.max_rep_s - 0.3) / DT) - len(shift) + 100  # the raise begins 0.3 s before expiry
    parts = [(shift, False), (np.full(rest_n, 45.0), True), (_ramp(45.0, 90.0, 1.0), False),
             (np.full(50, 90.0), True), (_ramp(90.0, 45.0, 2.0), False), (np.full(200, 45.0), True)]
    t, angle, still = _joined(parts)
    still[:100] = True
    seg = RepSegmenter(Leg.LEFT, s, DT, reference=reference)
    reps = seg.update(t, angle, still) + seg.finish()
    assert len(reps) == 1
    assert abs(reps[0].peak_deg - 90.0) < 0.5 and abs(reps[0].baseline_deg - 45.0) < 1.0


@pytest.mark.parametrize("reference", [False, True])
def test_a_settling_rest_above_the_calibration_rest_does_not_refuse_the_first_rep(reference: bool) -> None:
    # the stream starts at the calibration rest on the mat (0 deg; the still flag's window begins
    # with the stream, so that rest is not armed); settling, the person lifts the leg 19 deg (a
    # fidget), lets it down to 8 and rests there a moment, lets it down to -1 and raises at once,
    # with no pause at the bottom: the calibration rest is a rest at the bottom, so the floor is
    # 0, not the settling rest's 8, and the raise is a rep (before: 9 deg below the floor,
    # refused). The walking case above (the stream starts at the higher rest) counts nothing.
    s = Settings()
    assert 19.0 < s.min_rom_deg and 8.0 - -1.0 > s.undershoot_deg > 1.0 and 0.3 > s.arm_rest_s  # the premise
    parts = [(np.zeros(100), False), (_ramp(0.0, 19.0, 0.6), False), (_ramp(19.0, 8.0, 0.5), False),
             (np.full(30, 8.0), True), (_ramp(8.0, -1.0, 0.5), False), (_ramp(-1.0, 70.0, 1.0), False),
             (np.full(50, 70.0), True), (_ramp(70.0, -1.0, 2.0), False), (np.full(200, -1.0), True)]
    t, angle, still = _joined(parts)
    seg = RepSegmenter(Leg.LEFT, s, DT, reference=reference)
    reps = seg.update(t, angle, still) + seg.finish()
    assert len(reps) == 1
    assert abs(reps[0].peak_deg - 70.0) < 0.5 and abs(reps[0].baseline_deg + 1.0) < 1.0


@pytest.mark.parametrize("reference", [False, True])
def test_a_rest_read_before_the_axis_is_fitted_does_not_refuse_a_touch_and_go_set(reference: bool) -> None:
    # a moving start: the stream begins at the reference pose (0 deg) as the leg comes down and
    # rests 5 deg below it; without a flexion axis yet that rest reads the unsigned tilt, +5, and
    # once the first raise fits the axis it reads -3.5 (a step within a sample). Three
    # touch-and-go reps to 70 follow: all count (before: the rest at +5 was the floor, the first
    # low 8.5 below it was refused and the chain with it: no rep)
    s = Settings()
    assert 5.0 - -3.5 > s.undershoot_deg > 3.5  # the premise: far below the unsigned rest, near the start
    down = np.concatenate([_ramp(-3.5, 70.0, 1.0), np.full(30, 70.0), _ramp(70.0, -3.5, 1.5)])
    parts = [(_ramp(0.0, 5.0, 0.5), False), (np.full(40, 5.0), True)] + [(down, False)] * 3 + [(np.full(200, -3.5), True)]
    angle = np.concatenate([np.zeros(1)] + [p for p, _ in parts])
    still = np.concatenate([np.zeros(1, dtype=bool)] + [np.full(len(p), st) for p, st in parts])
    t = np.arange(len(angle)) * DT
    seg = RepSegmenter(Leg.LEFT, s, DT, reference=reference)
    reps = seg.update(t, angle, still) + seg.finish()
    assert len(reps) == 3
    for r in reps:
        assert abs(r.peak_deg - 70.0) < 0.5 and abs(r.baseline_deg + 3.5) < 1.0


def _moving_baseline() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bent-knee touch-and-go reps to 90 deg whose baseline moves 45 -> 22 -> 0 as the feet slide
    out, each move during a rep's descent; 0.2 s still at the bottoms at 45 and 22 (a rest:
    ``arm_rest_s``), touch-and-go at 0 (0.05 s, moving); rests at the start and the end."""
    parts: list[tuple[np.ndarray, bool]] = [(np.full(100, 45.0), True)]
    lows = [45.0, 45.0, 45.0, 22.0, 22.0, 0.0, 0.0, 0.0]
    prev = 45.0
    for low in lows:
        parts += [(_ramp(prev, 90.0, 1.0), False), (np.full(30, 90.0), False), (_ramp(90.0, low, 1.5), False),
                  (np.full(20, low), True) if low else (np.full(5, low), False)]
        prev = low
    parts.append((np.zeros(200), True))
    return _joined(parts)


@pytest.mark.parametrize("reference", [False, True])
def test_a_baseline_that_slides_down_mid_set_loses_no_rep(reference: bool) -> None:
    # the rep rising from the rest at 22 and coming down to 0 ends 22 deg below the floor (the
    # lowest rest so far) and the next rise follows at once: it rose 68 deg, more than any
    # walking stride, so it counts and anchors the reps from 0 (before: rejected, and with it
    # the next rep, whose low it left unanchored)
    s = Settings()
    assert s.held_rise_min_rom_deg <= 68.0 < 90.0 - 22.0 + 1.0
    t, angle, still = _moving_baseline()
    seg = RepSegmenter(Leg.LEFT, s, DT, reference=reference)
    reps = seg.update(t, angle, still) + seg.finish()
    assert len(reps) == 8
    assert all(abs(r.peak_deg - 90.0) < 0.5 for r in reps)
    assert [round(r.baseline_deg) for r in reps] == [45, 45, 45, 45, 22, 22, 0, 0]


@pytest.mark.parametrize("reference", [False, True])
def test_a_step_of_the_angle_during_the_hold_is_not_the_raise(reference: bool) -> None:
    # the orientation stage's recovery after lost samples can move the angle by a few degrees
    # within a few samples while the leg holds at the top (not yet still): faster than the raise
    # itself, so the raise's peak speed must come from the middle half of the rise, or the
    # stopwatch start lands in the hold and the rep reads as a 6 deg fidget (before: no rep)
    parts = [
        (np.zeros(200), True),
        (_ramp(0.0, 79.0, 2.5), False),
        (np.full(20, 79.0), False),
        (_ramp(79.0, 85.0, 0.03), False),  # the step: 6 deg in 3 samples (200 deg/s)
        (np.full(300, 85.0), True),
        (_ramp(85.0, 0.0, 3.0), False),
        (np.zeros(200), True),
    ]
    t, angle, still = _joined(parts)
    seg = RepSegmenter(Leg.LEFT, Settings(), DT, reference=reference)
    reps = seg.update(t, angle, still) + seg.finish()
    assert len(reps) == 1
    rep = reps[0]
    assert abs(rep.baseline_deg) < 1.0 and abs(rep.peak_deg - 85.0) < 0.5
    # a minimum-jerk raise of T reads about 0.83 T (README "Rep measures"): 2.5 s -> ~2.07 s
    assert abs(rep.start_s - (2.0 + 0.0865 * 2.5)) < 0.05


def _paused_raise(pause_deg: float, pause_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three reps from the mat to 85 deg; the second pauses ``pause_s`` at ``pause_deg`` on the way up."""
    rep = [(_ramp(0.0, 85.0, 1.5), False), (np.full(50, 85.0), True), (_ramp(85.0, 0.0, 2.5), False), (np.zeros(100), True)]
    paused = [(_ramp(0.0, pause_deg, 0.8), False), (np.full(round(pause_s / DT), pause_deg), True),
              (_ramp(pause_deg, 85.0, 0.8), False), (np.full(50, 85.0), True), (_ramp(85.0, 0.0, 2.5), False),
              (np.zeros(100), True)]
    return _joined([(np.zeros(200), True)] + rep + paused + rep)


@pytest.mark.parametrize("reference", [False, True])
@pytest.mark.parametrize(("pause_deg", "pause_s"), [(45.0, 0.3), (45.0, 2.0), (60.0, 4.0), (25.0, 2.0)])
def test_a_raise_that_pauses_on_the_way_up_is_one_rep(reference: bool, pause_deg: float, pause_s: float) -> None:
    # The rise starts again at a rest on the way up (the bent-knee set-up's 45 deg), so a raise that
    # paused at 45 or 60 and came back down to the mat fell far below that new start and was
    # rejected as sitting up is: the rep was lost, after 0.3 s of pause as after 4 s. Now it is one
    # rep from where the rise first started (a pause at 25 deg was counted from the pause before)
    t, angle, still = _paused_raise(pause_deg, pause_s)
    seg = RepSegmenter(Leg.LEFT, Settings(), DT, reference=reference)
    reps = seg.update(t, angle, still) + seg.finish()
    assert len(reps) == 3, [(round(r.start_s, 2), round(r.peak_deg, 1)) for r in reps]
    assert all(abs(r.peak_deg - 85.0) < 0.5 for r in reps)
    if pause_deg > 30.0:  # from the mat: the whole range
        assert abs(reps[1].baseline_deg) < 1.0 and abs(reps[1].rom_deg - 85.0) < 1.0
    # and in chunks of any size, the same reps (the rise's first start is kept in the log)
    for size in (7, 64):
        seg = RepSegmenter(Leg.LEFT, Settings(), DT, reference=reference)
        chunked = []
        for i in range(0, len(t), size):
            chunked += seg.update(t[i : i + size], angle[i : i + size], still[i : i + size])
        chunked += seg.finish()
        assert chunked == reps


@pytest.mark.parametrize("reference", [False, True])
def test_a_bent_knee_set_up_still_measures_the_first_rep_from_45(reference: bool) -> None:
    # the rise from a rest on the way up is what the bent-knee set-up needs: lying flat, the
    # thighs come up to 45 and rest, and the reps rise from there and come back to 45
    parts = [(np.zeros(200), True), (_ramp(0.0, 45.0, 1.0), False), (np.full(200, 45.0), True)]
    for _ in range(3):
        parts += [(_ramp(45.0, 90.0, 1.2), False), (np.full(40, 90.0), True), (_ramp(90.0, 45.0, 2.0), False),
                  (np.full(100, 45.0), True)]
    t, angle, still = _joined(parts)
    seg = RepSegmenter(Leg.LEFT, Settings(), DT, reference=reference)
    reps = seg.update(t, angle, still) + seg.finish()
    assert len(reps) == 3
    assert all(abs(r.baseline_deg - 45.0) < 1.0 and abs(r.rom_deg - 45.0) < 1.0 for r in reps)


@pytest.mark.parametrize("reference", [False, True])
def test_a_bent_knee_rep_that_pauses_on_the_way_up_is_one_rep_from_the_set_up_rest(reference: bool) -> None:
    # lying flat, the set-up to 45 (a rest), then a rep that pauses at 67 and goes on to 88 before
    # coming back to 45: the rise started again at each rest on the way up, and came back far below
    # the last (67) but to the one before it (45), where the rep counts from. It was rejected; and
    # with the pause where the rise was slower than after it, the stopwatch start (at the pause)
    # made a rep of 37 deg read as a 15 deg fidget
    parts = [(np.zeros(200), True), (_ramp(0.0, 45.0, 1.0), False), (np.full(200, 45.0), True),
             (_ramp(45.0, 67.0, 0.9), False), (np.full(60, 67.0), True), (_ramp(67.0, 88.0, 0.3), False),
             (np.full(30, 88.0), True), (_ramp(88.0, 45.0, 1.5), False), (np.full(100, 45.0), True),
             (_ramp(45.0, 88.0, 1.2), False), (np.full(30, 88.0), True), (_ramp(88.0, 45.0, 1.5), False),
             (np.full(100, 45.0), True)]
    t, angle, still = _joined(parts)
    seg = RepSegmenter(Leg.LEFT, Settings(), DT, reference=reference)
    reps = seg.update(t, angle, still) + seg.finish()
    assert len(reps) == 2, [(round(r.start_s, 2), round(r.peak_deg, 1), round(r.baseline_deg, 1)) for r in reps]
    assert all(abs(r.peak_deg - 88.0) < 0.5 for r in reps)


@pytest.mark.parametrize("reference", [False, True])
def test_a_first_rep_that_pauses_then_hovers_is_one_rep(reference: bool) -> None:
    # the set's first rep pauses at 46 deg on its way to 73 and comes down to a hover at 10 above
    # the mat (the set's reps return there): far below the pause, not back to the mat. It was
    # rejected (the rise started again at the pause); it is one rep from the mat
    parts = [(np.zeros(200), True), (_ramp(0.0, 46.0, 0.7), False), (np.full(40, 46.0), True),
             (_ramp(46.0, 73.0, 0.7), False), (np.full(60, 73.0), True), (_ramp(73.0, 10.0, 2.0), False),
             (np.full(60, 10.0), True)]
    for _ in range(2):
        parts += [(_ramp(10.0, 72.0, 1.4), False), (np.full(60, 72.0), True), (_ramp(72.0, 10.0, 2.0), False),
                  (np.full(60, 10.0), True)]
    parts += [(_ramp(10.0, 0.0, 0.5), False), (np.zeros(200), True)]
    t, angle, still = _joined(parts)
    seg = RepSegmenter(Leg.LEFT, Settings(), DT, reference=reference)
    reps = seg.update(t, angle, still) + seg.finish()
    assert len(reps) == 3, [(round(r.start_s, 2), round(r.peak_deg, 1)) for r in reps]
    assert abs(reps[0].peak_deg - 73.0) < 0.5


@pytest.mark.parametrize("reference", [False, True])
@pytest.mark.parametrize("low_deg, reps_expected", [(-110.0, 0), (-60.0, 0), (-40.0, 1)])
def test_no_rep_rises_from_far_below_the_neutral_pose(reference: bool, low_deg: float, reps_expected: int) -> None:
    # A strap turned right after the calibration rest read a rise from -116 deg, standing up
    # from a bird dog's kneeling pose one from -67 (hip angles no exercise starts from: under
    # the mat, behind a hanging thigh): no rep. One from 40 deg below (min_baseline_deg -45)
    # still counts.
    s = Settings()
    assert s.min_baseline_deg < -40.0 and -60.0 < s.min_baseline_deg  # the premise
    parts = [
        (np.full(200, low_deg), True),
        (_ramp(low_deg, low_deg + 70.0, 1.0), False),
        (np.full(50, low_deg + 70.0), True),
        (_ramp(low_deg + 70.0, low_deg, 1.5), False),
        (np.full(200, low_deg), True),
    ]
    t, angle, still = _joined(parts)
    seg = RepSegmenter(Leg.LEFT, s, DT, reference=reference)
    reps = seg.update(t, angle, still) + seg.finish()
    assert len(reps) == reps_expected
    assert seg.n_rejected == 1 - reps_expected
