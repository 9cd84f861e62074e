"""The accelerometer bias of a cheap sensor, estimated from rests in different poses, corrects
the peaks of sets whose rests are far from the reference pose.

The simulator's 'harsh' sensor has a per-axis accelerometer bias up to 0.1 g (and scale
errors up to 30 %), which tilts gravity by up to ~6 degrees. In a bent-knee set the rests
between reps are far from the reference pose; an estimate applied only near the reference
pose left the bias in every rep (peak MAE 1.99 degrees on these seeds, against 1.15 now).
"""

from __future__ import annotations

import numpy as np
from conftest import blocks_of, match_reps

from legrep.model import Leg
from legrep.offline import analyze_arrays
from legrep_sim.scenarios import accuracy_grid, simulate

PEAK_MAE_TOL_DEG = 1.5  # the analysis' target is 1.0 over all sessions; harsh sensors get 1.5


def test_harsh_bent_knee_peaks_follow_the_truth() -> None:
    spec = dict((n, s) for n, s, _ in accuracy_grid())["bent_knee_fast_harsh"]
    errs: list[float] = []
    for seed in (100, 101, 102):
        sim = simulate(spec, seed)
        res = analyze_arrays(**{leg.value: b for leg, b in blocks_of(sim).items()})
        for leg in (Leg.LEFT, Leg.RIGHT):
            assert len(res.reps_of(leg)) == sum(1 for r in sim.reps if r.leg == leg.value), (seed, leg)
            errs += [r.peak_deg - tr.peak_deg for r, tr in match_reps(res.reps, sim.reps, leg)]
    assert len(errs) == 60
    mae = float(np.mean(np.abs(errs)))
    assert mae <= PEAK_MAE_TOL_DEG, f"peak MAE {mae:.2f} deg over {len(errs)} reps"

