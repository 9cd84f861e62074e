"""Walking strides are no reps (host/reps/gait.py): the other thigh swinging the opposite way."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import blocks_of

from legrep.model import ImuBlock, Leg, Rep
from legrep.offline import analyze_arrays
from legrep.pipeline import SessionAnalyzer
from legrep.reps.gait import GaitFilter
from legrep.settings import Settings
from legrep_sim.scenarios import SessionSpec, SetSpec, simulate

RATE_HZ = 100.0


def _rep(leg: Leg, start_s: float, end_s: float) -> Rep:
    return Rep(leg, start_s, 0.5 * (start_s + end_s), end_s, 0.0, 40.0, 40.0, 0.5, 0.0, 0.5, end_s + 0.3, ())


def _judge(other_deg) -> tuple[list[Rep], GaitFilter]:
    """One left rep over 10.0-11.0 s (a 40 deg swing), the right thigh's angle ``other_deg(t)``."""
    t = np.arange(0.0, 20.0, 1.0 / RATE_HZ)
    left = 20.0 - 20.0 * np.cos(2.0 * np.pi * (t - 10.0))
    g = GaitFilter(Settings(), (Leg.LEFT, Leg.RIGHT))
    g.angles(Leg.LEFT, t, left)
    g.submit([_rep(Leg.LEFT, 10.0, 11.0)])
    g.angles(Leg.RIGHT, t, other_deg(t))
    return g.release({Leg.LEFT: 12.0, Leg.RIGHT: 12.0}), g


def test_a_rep_while_the_other_thigh_swings_the_opposite_way_is_a_stride() -> None:
    out, g = _judge(lambda t: 20.0 * np.cos(2.0 * np.pi * (t - 10.0)))
    assert out == [] and g.n_strides[Leg.LEFT] == 1


@pytest.mark.parametrize("other", [
    lambda t: 0.3 * np.sin(7.0 * t),  # resting (sensor noise)
    lambda t: 20.0 - 20.0 * np.cos(2.0 * np.pi * (t - 10.0)),  # a double-leg lift: both rise together
    lambda t: 5.0 * np.cos(2.0 * np.pi * (t - 10.0)),  # shifting weight a little the opposite way
])
def test_a_rep_with_the_other_thigh_resting_or_rising_with_it_counts(other) -> None:
    out, g = _judge(other)
    assert len(out) == 1 and g.n_strides[Leg.LEFT] == 0


def test_a_rep_waits_until_the_other_thigh_covers_its_end() -> None:
    g = GaitFilter(Settings(), (Leg.LEFT, Leg.RIGHT))
    t = np.arange(0.0, 12.0, 1.0 / RATE_HZ)
    g.angles(Leg.LEFT, t, np.zeros_like(t))
    g.submit([_rep(Leg.LEFT, 10.0, 11.0)])
    g.angles(Leg.RIGHT, t[:1050], np.zeros(1050))  # up to 10.49 s
    assert g.release({Leg.LEFT: 12.0, Leg.RIGHT: 10.0}) == []
    assert g.pending_start_s() == 10.0
    g.angles(Leg.RIGHT, t[1050:], np.zeros(len(t) - 1050))
    assert len(g.release({Leg.LEFT: 12.0, Leg.RIGHT: 12.0})) == 1
    # a leg whose stream ended covers every rep of the other
    g.submit([_rep(Leg.LEFT, 30.0, 31.0)])
    g.finish_leg(Leg.RIGHT)
    assert len(g.release({Leg.LEFT: 32.0, Leg.RIGHT: np.inf})) == 1


def test_walking_after_standing_up_from_bird_dogs_is_no_set_of_reps() -> None:
    # Two sets of bird dogs with a walk between: standing up from kneeling reads like a raise and
    # started a chain, and 12 walking strides of the left leg were counted as reps (24 for 12).
    s = SetSpec(6, 6, order="left_then_right", up_s=1.0, hold_s=0.3, down_s=1.6)
    spec = SessionSpec(exercise="bird_dog", sets=(s, s), rate_hz=200.0, errors="typical", rest_between_sets_s=45.0,
                       walk_between_sets=True, start="settling")
    sim = simulate(spec, 50034)
    blocks = blocks_of(sim)
    res = analyze_arrays(left=blocks[Leg.LEFT], right=blocks[Leg.RIGHT])
    for leg in (Leg.LEFT, Leg.RIGHT):
        assert len(res.reps_of(leg)) == len(sim.reps_of(leg.value)), leg
    # live: the legs interleaved in chunks of 1-80 samples give the same reps
    rng = np.random.default_rng(7)
    an = SessionAnalyzer((Leg.LEFT, Leg.RIGHT))
    pos = {leg: 0 for leg in blocks}
    while any(pos[leg] < len(b) for leg, b in blocks.items()):
        for leg, b in blocks.items():
            i, k = pos[leg], int(rng.integers(1, 80))
            if i < len(b):
                an.update(leg, ImuBlock(b.time_s[i : i + k], b.acc_g[i : i + k], b.gyr_dps[i : i + k]))
            pos[leg] = i + k
    assert an.finish().reps == res.reps


def test_thinning_keeps_the_same_samples_in_any_chunking() -> None:
    from legrep.reps.gait import GAIT_RATE_HZ, Thinning

    rng = np.random.default_rng(3)
    t = np.cumsum(rng.uniform(0.004, 0.012, 5000))  # ~125 Hz with jitter
    a = rng.normal(size=len(t))
    whole = Thinning()(t, a)
    thin, cuts = Thinning(), np.sort(rng.choice(np.arange(1, len(t)), 300, replace=False))
    parts = [thin(t[i:j], a[i:j]) for i, j in zip([0, *cuts], [*cuts, len(t)])]
    np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), whole[0])
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), whole[1])
    assert abs(len(whole[0]) / (t[-1] - t[0]) - GAIT_RATE_HZ) < 0.5  # one sample per bin
    again = Thinning()(*whole)  # thinned samples thinned again: all kept (a leg's process thins first)
    np.testing.assert_array_equal(again[0], whole[0])


def test_a_rep_the_down_thigh_does_not_cover_passes_unjudged_at_once() -> None:
    """While the other thigh's link is down (host/reps/gait.py, "A link that went down"), a rep its
    angles do not cover is released at once, unjudged; one they covered before the link went down
    is still judged against them; after the link is back, reps wait again."""
    swing = lambda t: 20.0 - 20.0 * np.cos(2.0 * np.pi * (t - 10.0))  # noqa: E731
    t = np.arange(0.0, 40.0, 1.0 / RATE_HZ)
    g = GaitFilter(Settings(), (Leg.LEFT, Leg.RIGHT))
    g.angles(Leg.LEFT, t, swing(t))
    early = t < 11.5
    g.angles(Leg.RIGHT, t[early], 40.0 - swing(t[early]))  # striding the opposite way, up to 11.49 s
    g.link(Leg.RIGHT, up=False)
    g.submit([_rep(Leg.LEFT, 10.0, 11.0), _rep(Leg.LEFT, 20.0, 21.0)])
    out = g.release({Leg.LEFT: 30.0, Leg.RIGHT: 11.5})
    assert [r.start_s for r in out] == [20.0]  # the first is still a stride: the right thigh's samples covered it
    assert g.n_strides[Leg.LEFT] == 1 and g.n_unjudged[Leg.LEFT] == 1
    # angles sent while down do not decide a rep (only those from before the link went down)
    g.angles(Leg.RIGHT, t[~early & (t < 36.0)], 40.0 - swing(t[~early & (t < 36.0)]))
    g.submit([_rep(Leg.LEFT, 30.0, 31.0)])
    assert [r.start_s for r in g.release({Leg.LEFT: 40.0, Leg.RIGHT: 36.0})] == [30.0]
    g.link(Leg.RIGHT, up=True)
    g.submit([_rep(Leg.LEFT, 37.0, 38.0)])
    assert g.release({Leg.LEFT: 40.0, Leg.RIGHT: 36.0}) == []  # it waits for the right thigh again
    g.finish_leg(Leg.RIGHT)
    assert len(g.release({Leg.LEFT: 40.0, Leg.RIGHT: np.inf})) == 1


def _stand_then_walk(peak_s: float, other_walks: bool) -> tuple[list[Rep], GaitFilter]:
    """A left "rep" 10-14 s: both thighs rise together to 80 deg by 12 s (standing up), then the
    left swings 60 +- 20 deg while the right swings the opposite way (walking) or holds still."""
    t = np.arange(0.0, 20.0, 1.0 / RATE_HZ)
    rise = np.clip((t - 10.0) / 2.0, 0.0, 1.0) * 80.0
    swing = np.where(t > 12.0, 20.0 * np.cos(2.0 * np.pi * (t - 12.0)) - 20.0, 0.0)
    left = np.where(t < 14.0, rise + swing, 0.0)
    right = np.where(t < 14.0, rise - (swing if other_walks else 0.0), 0.0)
    g = GaitFilter(Settings(), (Leg.LEFT, Leg.RIGHT))
    g.angles(Leg.LEFT, t, left)
    g.angles(Leg.RIGHT, t, right)
    r = Rep(Leg.LEFT, 10.0, peak_s, 13.98, 0.0, 80.0, 80.0, 2.0, 0.0, 2.0, 14.3, ())  # (before both drop at 14 s)
    g.submit([r])
    return g.release({Leg.LEFT: 15.0, Leg.RIGHT: 15.0}), g


def test_strides_after_the_peak_make_a_stride_though_both_thighs_rose_together() -> None:
    """Standing up between sets, with the strides after it drawn into one "rep": over the whole
    window the thighs correlate (both rose), over its part after the peak they swing apart."""
    out, g = _stand_then_walk(12.0, other_walks=True)
    assert out == [] and g.n_strides[Leg.LEFT] == 1
    # the other leg holding still after the peak (a double-leg lift's hold): a rep
    assert len(_stand_then_walk(12.0, other_walks=False)[0]) == 1
    # a part after the peak shorter than gait_tail_min_s is not judged on its own
    assert Settings().gait_tail_min_s > 1.0
    assert len(_stand_then_walk(13.2, other_walks=True)[0]) == 1
