"""Lost samples (BLE packets) in fast reps: the orientation stage across a gap (issue 8).

A real BLE link drops about 2 % of packets, in bursts: a gap of several samples can fall at the
start of a fast raise, while the thigh turns at 250 deg/s. These sessions once read one rep 20 deg
low (the low-pass was restarted from a still window holding samples from before the gap, and the
gyro turned the whole gap at the rate of the sample after it) and lost another one (a 0.4 s gap
hid most of a raise and the low-pass took seconds to find gravity again).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import blocks_of, match_reps

from legrep.model import ImuBlock, Leg
from legrep.offline import analyze_arrays
from legrep.pipeline import LegPipeline
from legrep_sim.scenarios import SessionSpec, SetSpec, simulate

FAST_LOST = SessionSpec(
    sets=(SetSpec(10, 10, up_s=0.7, hold_s=0.0, down_s=1.0, bottom_rest_s=0.3),), rate_hz=50.0, lost_samples=0.02
)
PEAK_TOL_DEG = 6.0
"""Any one rep's peak: a gap can hide most of a raise, and the peak just after it then rests on
the accelerometer alone (a fast raise's own accelerations are up to 0.3 g)."""
PEAK_MAE_TOL_DEG = 1.5


@pytest.mark.parametrize("seed", [1020, 4262, 8797])
def test_fast_reps_across_lost_samples_read_their_true_peaks(seed: int) -> None:
    sim = simulate(FAST_LOST, seed)
    lost = {leg: int(sig.sample_index[-1] + 1 - len(sig.sample_index)) for leg, sig in sim.signals.items()}
    assert all(n > 0 for n in lost.values()), lost  # the session really has gaps
    res = analyze_arrays(**{leg.value: block for leg, block in blocks_of(sim).items()})
    errors = []
    for leg in res.legs:
        n_true = sum(1 for r in sim.reps if r.leg == leg.value)
        assert len(res.reps_of(leg)) == n_true, (leg, len(res.reps_of(leg)), n_true)
        pairs = match_reps(res.reps, sim.reps, leg)
        assert len(pairs) == n_true
        errors += [(round(tr.start_s, 2), r.peak_deg - tr.peak_deg) for r, tr in pairs]
    worst = max(errors, key=lambda e: abs(e[1]))
    assert abs(worst[1]) <= PEAK_TOL_DEG, f"rep at {worst[0]} s: peak off by {worst[1]:.2f} deg"
    mae = float(np.mean([abs(e) for _, e in errors]))
    assert mae <= PEAK_MAE_TOL_DEG, mae


def test_the_angle_is_the_same_whatever_the_chunks_around_the_gaps() -> None:
    sim = simulate(FAST_LOST, 8797)
    block = blocks_of(sim)[Leg.LEFT]
    whole = LegPipeline(Leg.LEFT)
    a = [whole.update(block), whole.finish()]
    # chunk edges right at, just before and just after each gap, plus odd sizes between
    idx = sim.signals["left"].sample_index
    gaps = np.flatnonzero(np.diff(idx) > 1) + 1
    cuts = sorted({int(c) for g in gaps for c in (g - 1, g, g + 1)} | set(range(0, len(idx), 37)))
    cuts = [c for c in cuts if 0 < c < len(idx)] + [len(idx)]
    chunked = LegPipeline(Leg.LEFT)
    b = []
    lo = 0
    for hi in cuts:
        sl = slice(lo, hi)
        b.append(chunked.update(ImuBlock.from_arrays(block.time_s[sl], block.acc_g[sl], block.gyr_dps[sl])))
        lo = hi
    b.append(chunked.finish())
    ta, tb = np.concatenate([o.time_s for o in a]), np.concatenate([o.time_s for o in b])
    aa, ab = np.concatenate([o.angle_deg for o in a]), np.concatenate([o.angle_deg for o in b])
    assert len(gaps) > 0 and np.array_equal(ta, tb)
    np.testing.assert_array_equal(aa, ab)
    assert [r.peak_deg for o in a for r in o.reps] == [r.peak_deg for o in b for r in o.reps]
    d = chunked.diagnostics().orientation
    assert d is not None and d.gap_restarts > 0
