"""The hip angle in the exercise plane: abduction and rotation during reps against the simulator's truth.

The simulator's truth is the hip flexion of the ISB joint coordinate system (Wu et al. 2002:
flexion, then ab/adduction, then axial rotation; ``legrep_sim.motion``), the angle of the
thigh's long axis projected on the exercise plane. With 5-20 deg of abduction and of axial
rotation in every rep (either sign), the up vector's rotation about the flexion axis (the
angle before the plane) was 2.5 deg off on average (straight-leg and bent-knee raises, these
seeds); the stated tolerances below sit between that and what the plane gives (1.75, 0.9: the
first straight-leg rep of each leg is still the tilt, the plane starts at the first rest after a
movement; the bent-knee set-up's rest anchors it before the first rep).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import blocks_of, match_reps

from legrep.model import ImuBlock, Leg
from legrep.offline import analyze_arrays
from legrep.pipeline import LegPipeline
from legrep_sim.scenarios import SessionSpec, SetSpec, simulate

OFF_AXIS_DEG = (5.0, 20.0)
SEEDS = (21, 22, 23)


@pytest.mark.parametrize(("exercise", "mae_tol_deg"), [("straight_leg_raise", 2.1), ("bent_knee_raise", 1.5)])
def test_peak_is_the_flexion_whatever_the_abduction_and_rotation(exercise: str, mae_tol_deg: float) -> None:
    errors = []
    for seed in SEEDS:
        sim = simulate(SessionSpec(exercise=exercise, sets=(SetSpec(8, 8, off_axis_deg=OFF_AXIS_DEG),), errors="typical"), seed)
        b = blocks_of(sim)
        res = analyze_arrays(left=b[Leg.LEFT], right=b[Leg.RIGHT])
        for leg in (Leg.LEFT, Leg.RIGHT):
            assert len(res.reps_of(leg)) == len(sim.reps_of(leg.value)), (seed, leg)
            errors += [r.peak_deg - t.peak_deg for r, t in match_reps(res.reps, sim.reps, leg)]
    mae = float(np.mean(np.abs(errors)))
    assert mae <= mae_tol_deg, f"peak_deg MAE {mae:.2f} deg over {len(errors)} reps, expected <= {mae_tol_deg}"


def test_plane_angles_are_identical_for_any_chunking() -> None:
    """Re-fits and re-anchoring at rests, decided sample by sample: random chunks give the
    same angles, bit for bit (a strap slip and off-axis reps included)."""
    spec = SessionSpec(sets=(SetSpec(6, 0, off_axis_deg=OFF_AXIS_DEG, strap_slips=1),), legs=("left",), errors="harsh")
    sim = simulate(spec, 5)
    block = blocks_of(sim)[Leg.LEFT]

    def run(chunks: list[int]) -> tuple[np.ndarray, np.ndarray]:
        p = LegPipeline(Leg.LEFT)
        outs = []
        i = 0
        for k in chunks:
            outs.append(p.update(ImuBlock(block.time_s[i : i + k], block.acc_g[i : i + k], block.gyr_dps[i : i + k])))
            i += k
        outs.append(p.finish())
        assert p._angle is not None and p._angle.n_axis_refits > 0  # the re-fit ran
        return np.concatenate([o.time_s for o in outs]), np.concatenate([o.angle_deg for o in outs])

    t_all, a_all = run([len(block)])
    rng = np.random.default_rng(9)
    sizes = list(rng.integers(1, 700, size=len(block)))
    chunks, n = [], 0
    for k in sizes:
        if n >= len(block):
            break
        chunks.append(int(min(k, len(block) - n)))
        n += chunks[-1]
    t_ch, a_ch = run(chunks)
    np.testing.assert_array_equal(t_ch, t_all)
    np.testing.assert_array_equal(a_ch, a_all)


def test_the_reps_before_the_first_anchor_are_read_in_the_plane() -> None:
    # the raise direction is checked at the rests after the first two reps (sign_proofs), and no
    # rest there anchored the plane: those reps were read by the tilt about the first fit's axis,
    # up to 9.3 deg off with 5-20 deg of abduction and rotation on a perfect sensor. Once the
    # first check proves the direction its rest enters the plane: reps 2 and 3 within 5 deg, 2
    # on average (before: 4.4 on average on these seeds and legs)
    errors = []
    for seed in (0, 1):
        sim = simulate(SessionSpec(sets=(SetSpec(8, 8, off_axis_deg=OFF_AXIS_DEG),), errors="none"), seed)
        b = blocks_of(sim)
        res = analyze_arrays(left=b[Leg.LEFT], right=b[Leg.RIGHT])
        for leg in (Leg.LEFT, Leg.RIGHT):
            pairs = match_reps(res.reps_of(leg), sim.reps, leg)
            assert len(pairs) == len(res.reps_of(leg)) == 8
            errors += [abs(r.peak_deg - tr.peak_deg) for r, tr in pairs[1:3]]
    assert max(errors) < 5.0 and float(np.mean(errors)) < 2.0, errors


def test_the_first_bent_knee_rep_is_read_in_the_plane() -> None:
    # bent-knee raises start with the set-up (feet drawn up: the thigh 0 -> ~42 deg), a pure
    # flexion the axis is fitted to after axis_rotation_deg. The rest that ends it lay only ~17 deg
    # of rotation after the fit, so it did not anchor the plane and each leg's first rep was read
    # by the tilt: 6.6, 5.1, 3.0 and 2.7 deg off on these seeds with 5-20 deg of abduction and
    # rotation on a perfect sensor (the other reps within 0.6). Now the fit's own rotation counts
    # toward the anchoring, for a level axis (``fit_level_deg``)
    first = []
    for seed in (0, 1, 2, 3):
        spec = SessionSpec(exercise="bent_knee_raise", sets=(SetSpec(8, 8, off_axis_deg=OFF_AXIS_DEG),), errors="none")
        sim = simulate(spec, seed)
        b = blocks_of(sim)
        res = analyze_arrays(left=b[Leg.LEFT], right=b[Leg.RIGHT])
        for leg in (Leg.LEFT, Leg.RIGHT):
            pairs = match_reps(res.reps_of(leg), sim.reps, leg)
            assert len(pairs) == len(res.reps_of(leg)) == 8, (seed, leg)
            first.append(abs(pairs[0][0].peak_deg - pairs[0][1].peak_deg))
    assert max(first) < 2.0, [round(e, 2) for e in first]


def test_a_strap_turned_about_an_upright_thigh_does_not_anchor_the_plane() -> None:
    # bird dog: the resting thigh hangs upright, and a strap turned before the first rep turns the
    # sensor about a vertical axis (84 deg out of level). The first rep's axis is then fitted to
    # that turn; were its rest to anchor the plane (as a level fit's may, above), the first rep
    # would be read in a plane built on it: 38 deg high. Out of level, the rest does not anchor
    from legrep_sim.scenarios import accuracy_grid

    (spec, seed), = [(sp, sd) for name, sp, sd in accuracy_grid(7472429) if name == "real_strap_slip_bird_dog"]
    sim = simulate(spec, seed)
    b = blocks_of(sim)
    res = analyze_arrays(right=b[Leg.RIGHT])
    pairs = match_reps(res.reps_of(Leg.RIGHT), sim.reps, Leg.RIGHT)
    assert len(pairs) == len(sim.reps_of("right")) == len(res.reps_of(Leg.RIGHT))
    err = abs(pairs[0][0].peak_deg - pairs[0][1].peak_deg)
    assert err < 5.0, f"first rep {err:.1f} deg off"
