"""Judging the pelvis sensor on simulated sessions (shared by tests/test_pelvis.py and
benchmarks/accuracy.py's pelvis section)."""

from __future__ import annotations

from legrep.model import ImuBlock, Leg
from legrep.offline import analyze_arrays
from legrep_sim.pelvis import PelvisScore, PelvisSession, score_pelvis, simulate_with_pelvis
from legrep_sim.scenarios import SessionSpec


def pelvis_block(ps: PelvisSession) -> ImuBlock:
    p = ps.pelvis
    return ImuBlock.from_arrays(p.time_s, p.acc_g, p.gyr_dps)


def thigh_blocks(ps: PelvisSession) -> dict[Leg, ImuBlock]:
    return {Leg(n): ImuBlock.from_arrays(s.time_s, s.acc_g, s.gyr_dps) for n, s in ps.session.signals.items()}


def judge_pelvis(spec: SessionSpec, seed: int, place: str) -> tuple[PelvisScore, PelvisScore]:
    """The analysis with the pelvis sensor, and without it (thighs only), scored against the
    truth: without it there is no tilt and ``peak_deg`` is the thigh's, so its hip-peak errors
    show what the pelvis sensor adds."""
    ps = simulate_with_pelvis(spec, seed, place=place)
    thighs = thigh_blocks(ps)
    out = []
    for pelvis in (pelvis_block(ps), None):
        result = analyze_arrays(thighs.get(Leg.LEFT), thighs.get(Leg.RIGHT), pelvis=pelvis)
        found = [(r.leg.value, r.start_s, r.peak_deg, r.pelvis_tilt_deg, "back_arch" in r.flags) for r in result.reps]
        out.append(score_pelvis(ps, found))
    return out[0], out[1]
