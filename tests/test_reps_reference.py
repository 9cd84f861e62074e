"""The rep stages: C kernel against the plain-Python reference, and against known answers.

* differential: ``legrep._fastcore`` (``arm_flags``, ``measure``, ``RepMachine`` through
  ``RepSegmenter``) must give exactly the numbers of ``legrep.reps.reference`` on random
  arrays, random streams and simulated sessions, under any chunking;
* stopwatch tempo: a minimum-jerk raise of T reads sqrt(1 - sqrt(0.1)) T = 0.827 T at
  50-200 Hz, with and without angle noise;
* reps without rests: touch-and-go, hover, moving baselines, fidgets and walking on synthetic
  angle traces whose reps are known by construction.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import blocks_of
from stopwatch import minimum_jerk_rep, stopwatch

from legrep._fastcore import RepMachine, arm_flags, measure
from legrep.model import Leg
from legrep.pipeline import LegPipeline
from legrep.reps import reference
from legrep.reps.measure import measure_rep
from legrep.reps.segmenter import RepSegmenter
from legrep.settings import Settings
from legrep_sim.scenarios import SessionSpec, SetSpec, accuracy_grid, simulate

MJ_FRAC = math.sqrt(1.0 - math.sqrt(0.1))
"""Stopwatch reading of a minimum-jerk movement, as a fraction of its duration."""


# ---------------------------------------------------------------------- synthetic traces
def _mj(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return 10 * x**3 - 15 * x**4 + 6 * x**5


def trace(moves: list[tuple[float, float]], rate_hz: float = 100.0, start_deg: float = 0.0, noise_deg: float = 0.0,
          seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Angle of a chain of minimum-jerk moves ``(duration_s, target_deg)``; a move to the current
    angle is a rest. Returns ``(t, angle, still)``; ``still`` is True during rests (as the fusion
    would report them) except their first 0.2 s (its still window)."""
    total = sum(d for d, _ in moves)
    t = np.arange(0.0, total, 1.0 / rate_hz)
    a = np.full(len(t), start_deg)
    still = np.zeros(len(t), dtype=bool)
    t0, cur = 0.0, start_deg
    for dur, target in moves:
        a += (target - cur) * _mj((t - t0) / dur)
        if target == cur:
            still |= (t >= t0 + 0.2) & (t < t0 + dur)
        t0, cur = t0 + dur, target
    if noise_deg:
        a = a + np.random.default_rng(seed).normal(0.0, noise_deg, len(t))
    return t, a, still


def segment(t, a, still, settings=None, reference_impl=False, chunks=None):
    seg = RepSegmenter(Leg.LEFT, settings or Settings(), float(np.median(np.diff(t))), reference=reference_impl)
    out = []
    bounds = [0, *(chunks or []), len(t)]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        out += seg.update(t[lo:hi], a[lo:hi], still[lo:hi])
    return out + seg.finish()


def rep_moves(n, up_s=1.5, hold_s=1.0, down_s=2.0, bottom_s=1.0, low_deg=0.0, peak_deg=70.0):
    moves = []
    for _ in range(n):
        moves += [(up_s, peak_deg), (hold_s, peak_deg), (down_s, low_deg)]
        if bottom_s > 0:
            moves.append((bottom_s, low_deg))
    return moves


# ---------------------------------------------------------------------- differential
def test_arm_flags_match_the_reference():
    rng = np.random.default_rng(2)
    still = rng.random(5000) < 0.8
    out = np.empty(len(still), dtype=bool)
    end = arm_flags(still, 7, 15, out)
    want, want_end = reference.arm_flags(still.tolist(), 7, 15)
    assert out.tolist() == want and end == want_end


def test_measure_matches_the_reference_exactly_on_random_reps():
    rng = np.random.default_rng(3)
    for trial in range(300):
        n = int(rng.integers(8, 400))
        t = np.cumsum(rng.uniform(0.004, 0.03, n))
        peak_at = int(rng.integers(1, n - 1))
        a = np.interp(np.arange(n), [0, peak_at, n - 1], [0.0, rng.uniform(5, 90), rng.uniform(-10, 10)])
        a += rng.normal(0, rng.uniform(0, 3), n)
        lo = int(rng.integers(0, 4))
        s0 = int(rng.integers(lo, max(lo, min(peak_at, n - 2)) + 1))
        c = int(rng.integers(s0, n))
        k = int(rng.integers(1, 8))
        rest = rng.random(n) < rng.uniform(0, 0.5)
        got = measure(t, a, rest, lo, s0, c, k, 0.1)
        want = reference.measure_window(t.tolist(), a.tolist(), rest.tolist(), lo, s0, c, k, 0.1)
        assert got == want, trial  # bit-identical: same operations in the same order


def _random_stream(rng, n):
    """A random walk with rests, fast swings and steps: every branch of the machine is taken."""
    a = np.cumsum(rng.normal(0.0, 1.5, n) * (rng.random(n) < 0.7))
    a += 40 * np.sin(np.cumsum(rng.uniform(0.0, 0.08, n)))
    t = np.cumsum(rng.uniform(0.006, 0.014, n))
    still = np.repeat(rng.random(n // 20 + 1) < 0.4, 20)[:n]
    a = np.where(still, np.round(a / 15) * 15, a)
    return t, a, still


def test_kernel_equals_reference_on_random_streams_for_any_chunking():
    rng = np.random.default_rng(4)
    s = Settings(max_rep_s=8.0)
    for trial in range(12):
        t, a, still = _random_stream(rng, int(rng.integers(500, 4000)))
        want = segment(t, a, still, s, reference_impl=True)
        chunks = sorted(int(x) for x in rng.integers(1, len(t), int(rng.integers(0, 30))))
        assert segment(t, a, still, s, chunks=chunks) == want, trial
        assert segment(t, a, still, s, reference_impl=True, chunks=chunks) == want, trial
    assert want  # the streams do contain reps


@pytest.mark.parametrize(
    "spec",
    [
        SessionSpec(sets=(SetSpec(5, 4, "alternating"),), rate_hz=50.0, errors="harsh", lost_samples=0.01),
        SessionSpec(exercise="bent_knee_raise", sets=(SetSpec(4, 4, up_s=0.7, down_s=1.0, bottom_rest_s=0.1),)),
        SessionSpec(sets=(SetSpec(3, 3), SetSpec(3, 3)), walk_between_sets=True, rate_hz=200.0),
    ],
    ids=["harsh_50hz", "bent_knee_touch_and_go", "walk_200hz"],
)
def test_kernel_equals_reference_on_simulated_sessions(spec):
    _kernel_equals_reference(simulate(spec, seed=7))


_GRID = {name: (spec, seed) for name, spec, seed in accuracy_grid()}


@pytest.mark.parametrize(
    "name", ["real_hover_touch_and_go", "real_moving_baseline_bent_knee", "real_strap_slip_slr", "real_sway_walk_between_sets"]
)
def test_kernel_equals_reference_on_real_world_scenarios(name):
    spec, seed = _GRID[name]
    _kernel_equals_reference(simulate(spec, seed))


def _kernel_equals_reference(session):
    for leg, block in blocks_of(session).items():
        pipe = LegPipeline(leg)
        out = pipe.update(block)
        tail = pipe.finish()
        t = np.concatenate([out.time_s, tail.time_s])
        a = np.concatenate([out.angle_deg, tail.angle_deg])
        still = np.concatenate([out.still, tail.still])  # the still flags the pipeline's segmenter saw
        fast = segment(t, a, still, chunks=[len(t) // 3, len(t) // 2])
        assert fast == segment(t, a, still, reference_impl=True)
        assert len(fast) == sum(1 for r in session.reps if r.leg == leg.value)


# ---------------------------------------------------------------------- stopwatch tempo
@pytest.mark.parametrize("rate_hz", [50.0, 100.0, 200.0])
def test_minimum_jerk_raise_reads_0_83_of_its_duration(rate_hz):
    # Tolerance 0.02 s: the 0.1 s speed fit widens the reading by ~w^2/(12 T) of each phase
    # boundary (< 10 ms for T >= 0.5 s); sampling adds < 1/rate.
    for up_s, down_s in ((0.6, 0.8), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0)):
        t, a = minimum_jerk_rep(rate_hz, up_s, 1.0, down_s, 60.0)
        m = measure_rep(t, a, reference.speed_half_n(Settings(), 1 / rate_hz))
        assert m.up_s == pytest.approx(MJ_FRAC * up_s, abs=0.02), (up_s, rate_hz)
        assert m.down_s == pytest.approx(MJ_FRAC * down_s, abs=0.02), (down_s, rate_hz)
        tau = (1.0 - MJ_FRAC) / 2.0
        assert m.hold_s == pytest.approx(1.0 + tau * (up_s + down_s), abs=0.02)
        assert m.start_s == pytest.approx(1.0 + tau * up_s, abs=0.02)
        # the baseline is the angle at start_s: minimum jerk has risen 60 s(tau) there
        lift = 60.0 * float(_mj(np.array([tau]))[0])
        assert m.baseline_deg == pytest.approx(lift, abs=0.1) and m.rom_deg == pytest.approx(60.0 - lift, abs=0.1)


@pytest.mark.parametrize("rate_hz", [50.0, 100.0, 200.0])
def test_stopwatch_tempo_survives_angle_noise(rate_hz):
    # 0.2 deg rms white noise on the angle (worse than gyro integration gives): each rep's
    # tempo stays within 0.08 s of the minimum-jerk value, the mean within 0.03 s.
    moves = rep_moves(6, up_s=1.2, hold_s=0.8, down_s=2.0, bottom_s=1.0)
    t, a, still = trace([(1.0, 0.0), *moves], rate_hz, noise_deg=0.2, seed=int(rate_hz))
    reps = segment(t, a, still)
    assert len(reps) == 6
    ups = np.array([r.up_s for r in reps]) - MJ_FRAC * 1.2
    downs = np.array([r.down_s for r in reps]) - MJ_FRAC * 2.0
    assert np.abs(ups).max() <= 0.08 and np.abs(downs).max() <= 0.08, (ups, downs)
    assert abs(ups.mean()) <= 0.03 and abs(downs.mean()) <= 0.03


def test_segmenter_agrees_with_the_independent_stopwatch():
    t, a, still = trace([(1.0, 0.0), *rep_moves(3, up_s=1.0, hold_s=0.5, down_s=2.5)], 100.0)
    reps = segment(t, a, still)
    fine_t = np.arange(0.0, t[-1], 1e-4)
    fine = np.interp(fine_t, t, a)
    for r in reps:
        w = (fine_t > r.start_s - 0.5) & (fine_t < r.end_s + 0.5)
        want = stopwatch(fine_t[w], fine[w])
        for f in ("start_s", "end_s", "up_s", "hold_s", "down_s"):
            assert getattr(r, f) == pytest.approx(getattr(want, f), abs=0.02), f


def test_a_controlled_session_raises_no_fast_down_and_a_dropped_leg_does():
    controlled = trace([(1.0, 0.0), *rep_moves(5, up_s=1.5, hold_s=1.0, down_s=2.0 * 0.9)])
    dropped = trace([(1.0, 0.0), *rep_moves(5, up_s=1.5, hold_s=1.0, down_s=0.8)])
    assert not any("fast_down" in r.flags or "fast_up" in r.flags for r in segment(*controlled))
    assert all("fast_down" in r.flags for r in segment(*dropped))


# ---------------------------------------------------------------------- reps without rests
@pytest.mark.parametrize("bottom_s", [0.0, 0.05, 0.15])
def test_touch_and_go_reps_are_separate_and_measured_from_the_low_before(bottom_s):
    moves = [(1.0, 0.0)]
    lows = [0.0, 3.0, -2.0, 5.0, 0.0]
    for low in lows:
        moves += [(1.2, 70.0), (0.3, 70.0), (1.5, low)] + ([(bottom_s, low)] if bottom_s else [])
    moves.append((1.5, lows[-1]))
    t, a, still = trace(moves)
    reps = segment(t, a, still)
    assert len(reps) == len(lows)
    before = [0.0, *lows[:-1]]  # each rep rises from the low point just before it
    for r, low in zip(reps, before):
        assert r.baseline_deg == pytest.approx(low, abs=0.5)
        assert r.rom_deg == pytest.approx(70.0 - low, abs=0.5)
        assert r.up_s == pytest.approx(MJ_FRAC * 1.2, abs=0.03)


@pytest.mark.parametrize("hover_deg", [10.0, 15.0])
def test_hover_reps_count_from_the_first(hover_deg):
    # from the floor to the first peak, then up and down between hover_deg and the peak, never resting
    moves = [(1.0, 0.0), (1.2, 75.0), (1.5, hover_deg)]
    for _ in range(5):
        moves += [(1.2, 75.0), (0.5, 75.0), (1.5, hover_deg)]
    moves[-1] = (1.8, 0.0)
    moves.append((1.0, 0.0))
    reps = segment(*trace(moves))
    assert len(reps) == 6
    assert reps[0].baseline_deg == pytest.approx(0.0, abs=0.5)
    for r in reps[1:]:
        assert r.baseline_deg == pytest.approx(hover_deg, abs=0.5)
        assert r.peak_deg == pytest.approx(75.0, abs=0.1)


@pytest.mark.parametrize("rest_after_shift", [True, False])
def test_moving_baseline_bent_knee_to_straight(rest_after_shift):
    # lie straight, bend the knees (thigh 45), 3 reps, feet walk out (22), 3 reps, straight (0), 3 reps
    moves = [(1.0, 0.0), (1.5, 45.0), (1.0, 45.0)]
    for low, n in ((45.0, 3), (22.0, 3), (0.0, 3)):
        if low != 45.0:
            moves.append((1.5, low))
            if rest_after_shift:
                moves.append((1.0, low))
        moves += rep_moves(n, up_s=1.2, hold_s=0.5, down_s=1.6, bottom_s=0.0, low_deg=low, peak_deg=90.0)
    moves.append((1.0, 0.0))
    reps = segment(*trace(moves))
    assert [round(r.baseline_deg) for r in reps] == [45, 45, 45, 22, 22, 22, 0, 0, 0]
    assert all(r.peak_deg == pytest.approx(90.0, abs=0.1) for r in reps)


@pytest.mark.parametrize("rate_hz", [52.0, 100.0])
def test_touch_and_go_reps_lowered_onto_a_new_baseline_count(rate_hz):
    # bent-knee touch-and-go: the last rep at 45 lowers straight onto 22 (the feet walk out
    # during it), the next rises at once; likewise 22 -> 0. Each such rep ends far below the
    # rest it rose from, but not below the floor (the lowest rest so far: lying straight, 0).
    moves = [(1.0, 0.0), (1.5, 45.0), (1.0, 45.0)]
    for low, nxt in ((45.0, 22.0), (22.0, 0.0), (0.0, 0.0)):
        for k in range(3):
            moves += [(1.0, 90.0), (0.3, 90.0), (1.6, nxt if k == 2 else low)]
    moves.append((1.0, 0.0))
    reps = segment(*trace(moves, rate_hz=rate_hz, noise_deg=0.05))
    assert [r.baseline_deg for r in reps] == pytest.approx([45, 45, 45, 22, 22, 22, 0, 0, 0], abs=1.0)
    assert reps == segment(*trace(moves, rate_hz=rate_hz, noise_deg=0.05), reference_impl=True)


@pytest.mark.parametrize("gap_s", [0.2, 0.3, 0.5])
def test_a_burst_of_lost_samples_mid_rise_does_not_make_a_rest(gap_s):
    # samples lost during the rise straight after a rest: the fusion's still window counts
    # samples, so the first ones after the gap still look still (at 40 deg); the rep must still
    # rise from the rest at 0
    t, a, still = trace([(1.0, 0.0), *rep_moves(3, up_s=1.0)])
    lost = (t > 1.25) & (t < 1.25 + gap_s)
    still = still.copy()
    after = np.flatnonzero(~lost & (t > 1.25))[:2]
    still[after] = True  # what the fusion reports there
    t, a, still = t[~lost], a[~lost], still[~lost]
    for impl in (False, True):
        reps = segment(t, a, still, reference_impl=impl, chunks=[len(t) // 7, len(t) // 3])
        assert len(reps) == 3
        assert reps[0].baseline_deg == pytest.approx(0.0, abs=0.5)
        assert reps[0].start_s < 1.25


def test_a_limb_dropped_far_below_the_floor_starts_no_chain():
    # two reps, then between blocks the sensor swings 130 deg below where it ever rested, wobbles
    # 30 deg there without resting, comes back and rests; two more reps (real PTEX s2_e8)
    moves = [(1.0, 0.0), *rep_moves(2), (0.6, -130.0), (0.4, -100.0), (0.4, -130.0), (2.0, 0.0), (1.0, 0.0),
             *rep_moves(2)]
    for impl in (False, True):
        reps = segment(*trace(moves, noise_deg=0.05), reference_impl=impl)
        assert [round(r.baseline_deg) for r in reps] == [0, 0, 0, 0]


def test_fidgets_do_not_count_and_do_not_break_a_chain():
    moves = [(1.0, 0.0), (0.4, 12.0), (0.4, 0.0), (1.2, 70.0), (1.5, 2.0), (0.3, 14.0), (0.3, 1.0),
             (1.2, 70.0), (1.5, 0.0), (1.0, 0.0), (0.5, 15.0), (0.5, 0.0), (1.0, 0.0)]
    reps = segment(*trace(moves))
    assert len(reps) == 2
    assert reps[1].baseline_deg == pytest.approx(1.0, abs=0.5)


def test_standing_up_and_walking_is_not_reps():
    # a set, then: sit up and stand (thigh 40 then -90), stand still, walk (+-20 deg about -85,
    # 1 Hz strides, the first forward), stand, lie down again (up to 40, then 0), a set
    walk = [(0.5, -65.0), (0.5, -105.0)] * 8
    moves = [(1.0, 0.0), *rep_moves(2), (1.5, 40.0), (2.0, -90.0), (1.0, -90.0), *walk, (0.6, -90.0),
             (1.0, -90.0), (2.5, 40.0), (2.5, 0.0), (2.0, 0.0), *rep_moves(2)]
    for first in (-65.0, -105.0):  # forward or backward swing first
        if first == -105.0:
            moves = [m if m not in walk else m for m in moves]
            w = [(0.5, -105.0), (0.5, -65.0)] * 8
            i = moves.index(walk[0])
            moves = moves[:i] + w + moves[i + len(walk):]
        reps = segment(*trace(moves, noise_deg=0.05))
        assert len(reps) == 4, [(round(r.start_s, 1), round(r.baseline_deg), round(r.peak_deg)) for r in reps]
        assert all(r.baseline_deg == pytest.approx(0.0, abs=0.5) for r in reps)


def test_reps_without_a_still_start_are_counted():
    # the stream starts mid-movement at 30 deg going up
    t, a, still = trace([(1.0, 70.0), (2.0, 0.0), (1.0, 0.0), *rep_moves(3)], start_deg=30.0)
    reps = segment(t, a, still)
    assert len(reps) == 4
    assert reps[0].peak_deg == pytest.approx(70.0, abs=0.1)


# ---------------------------------------------------------------------- bad input
def _machine() -> RepMachine:
    p = reference.RepParams.from_settings(Settings(), 0.01)
    return RepMachine(**p.kwargs())


def test_wrong_arrays_give_one_clear_error():
    t = np.arange(10) * 0.01
    b = np.zeros(10, dtype=bool)
    m = _machine()
    with pytest.raises(ValueError, match=r"angle_deg must be a float64 array, got buffer format 'f'"):
        m.advance(t, t.astype(np.float32), b, b, 0)
    with pytest.raises(ValueError, match=r"still must have 10 rows \(like time_s\), got 9"):
        m.advance(t, t, b, b[:9], 0)
    with pytest.raises(ValueError, match=r"arm must be a bool array, got buffer format 'd'"):
        m.advance(t, t, t, b, 0)
    with pytest.raises(TypeError, match=r"advance expected 5 arguments"):
        m.advance(t, t, b, 0)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=r"measure expected 0 <= lo <= s0 <= c < 10 and speed_half_n >= 1, got lo 0, s0 5, c 10"):
        measure(t, t, b, 0, 5, 10, 5, 0.1)
    with pytest.raises(ValueError, match=r"speed_half_n must be >= 1, got 0"):
        p = reference.RepParams.from_settings(Settings(), 0.01)
        RepMachine(**{**p.kwargs(), "speed_half_n": 0})
    assert m.pos == 0  # nothing was consumed by the refused calls
    with pytest.raises(ValueError, match=r"t and angle must be \(N,\) arrays of one length N >= 2, got \(3,\) and \(2,\)"):
        measure_rep(np.zeros(3), np.zeros(2))


def test_advance_refuses_a_log_trimmed_past_what_it_needs():
    t, a, still = trace([(1.0, 0.0), (1.2, 70.0), (1.0, 70.0)])
    m = _machine()
    arm = np.zeros(len(t), dtype=bool)
    m.advance(t[:150], a[:150], arm[:150], still[:150], 0)
    need = m.oldest_needed()
    with pytest.raises(ValueError, match=rf"advance expected samples from {need}, got base {need + 1}"):
        m.advance(t[need + 1 :], a[need + 1 :], arm[need + 1 :], still[need + 1 :], need + 1)
