"""Simulated sessions with the truth legrep's exercise recognition is judged on.

Composes the simulator's public pieces (:class:`legrep_sim.motion.ProgrammeBuilder`, the
sensor model of :mod:`legrep_sim.imu_model`, :func:`legrep_sim.scenarios.simulate`) into
sessions whose every set has a known exercise (the names of ``legrep.exercise.EXERCISES``)
and whose every rep knows whether both thighs rose together:

* :func:`exercise_session` -- one set per exercise kind of :data:`KINDS` (supine straight-leg
  raise, bent-knee raise, plank leg lift, bird dog, standing hip flexion);
* :func:`double_leg_session` -- sets of double-leg raises (both thighs together, the second
  leg 0-0.2 s behind) mixed with sets of single-leg raises, alternating or one leg after the
  other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .imu_model import Mounting, SensorErrors, device_clock, render
from .motion import Programme, ProgrammeBuilder, RepPlan
from .scenarios import FAST, NORMAL, SLOW, SessionSpec, SetSpec, SimSession, SimSignal, Tempo, TruthRep, measure_truth, simulate

KINDS: dict[str, str] = {
    "straight_leg_raise": "straight_leg_raise",
    "bent_knee_raise": "bent_knee_raise",
    "plank_leg_lift": "hip_extension",
    "bird_dog": "hip_extension",
    "standing_hip_flexion": "standing_hip_flexion",
}
"""Simulator exercise -> the exercise legrep should name (plank leg lifts and bird dogs are
both hip extensions)."""

TEMPOS: dict[str, Tempo] = {"fast": FAST, "normal": NORMAL, "slow": SLOW}


@dataclass(frozen=True, slots=True)
class ExerciseTruth:
    """A simulated session and what legrep should find in it.

    Attributes
    ----------
    session : the streams and the simulator's rep/set truth.
    exercise_per_set : per truth set (in order), the exercise name legrep should give it.
    both_legs : ``(leg, start_s)`` of every truth rep that rose together with the other leg.
    """

    session: SimSession
    exercise_per_set: tuple[str, ...]
    both_legs: frozenset[tuple[str, float]]


def exercise_session(kind: str, seed: int, errors: str = "typical", tempo: str = "normal",
                     rate_hz: float = 100.0, reps: int = 6, order: str = "left_then_right") -> ExerciseTruth:
    """One set of ``kind`` (a key of :data:`KINDS`), ``reps`` per leg, random mountings."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    spec = SessionSpec(exercise=kind, sets=(SetSpec(reps, reps, order=order, **TEMPOS[tempo]),),
                       rate_hz=rate_hz, errors=errors)  # fmt: skip
    sess = simulate(spec, seed)
    return ExerciseTruth(sess, tuple(KINDS[kind] for _ in sess.sets), frozenset())


def double_leg_session(seed: int, pattern: tuple[str, ...] = ("double", "alternating", "double", "one_then_other"),
                       reps: int = 6, errors: str = "typical", rate_hz: float = 100.0) -> ExerciseTruth:
    """Supine sets: ``double`` (both straight legs rise together, the second 0-0.2 s later),
    ``alternating`` (L, R, L...) or ``one_then_other`` (all left, then all right), 20 s apart."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    legs = ("left", "right")
    b = ProgrammeBuilder("supine", 1, legs)
    b.still(2.0)
    b.still(1.0)
    kinds = []
    for group, kind in enumerate(pattern):
        if group:
            b.still(20.0)
        kinds.append("double_leg_raise" if kind == "double" else "straight_leg_raise")
        seq: Sequence[tuple[str, ...]]
        if kind == "double":
            seq = [legs] * reps
        elif kind == "alternating":
            seq = [(leg,) for _ in range(reps) for leg in legs]
        elif kind == "one_then_other":
            seq = [("left",)] * reps + [("right",)] * reps
        else:
            raise ValueError(f"set kind must be double, alternating or one_then_other, got {kind!r}")
        for movers in seq:
            up, hold, down = (float(rng.uniform(0.85, 1.15)) * x for x in (1.5, 0.8, 2.0))
            t0 = b.t
            lags = [0.0] + [float(rng.uniform(0.0, 0.2)) for _ in movers[1:]]
            for leg, lag in zip(movers, lags):
                th = b.theta[leg]
                peak = float(rng.uniform(70.0, 85.0))
                th.move(t0 + lag, up, peak)
                th.move(t0 + lag + up, hold, peak - float(rng.uniform(0.0, 1.5)))
                th.move(t0 + lag + up + hold, down, max(0.0, float(rng.normal(0.0, 0.3))))
            b.t = t0 + max(lags) + up + hold + down
            for leg, lag in zip(movers, lags):
                b.reps.append(RepPlan(leg, t0 + lag, t0 + lag + up + hold + down, False, group))
            b.still(float(rng.uniform(0.8, 1.4)))
        for leg in legs:  # settle exactly at 0 before the rest
            if b.angle_of(leg) != 0.0:
                b.theta[leg].move(b.t, 0.5, 0.0)
        b.still(0.5)
    b.still(3.0)
    programme = b.build()
    spec = SessionSpec(sets=tuple(SetSpec(reps, reps) for _ in pattern), rate_hz=rate_hz, errors=errors)
    truth_reps, truth_sets, uneven = measure_truth(programme, legs)
    signals = _render_signals(spec, programme, seed)
    sess = SimSession(spec, seed, signals, truth_reps, truth_sets, uneven, programme.duration_s, programme)
    together = frozenset(
        (r.leg, r.start_s) for r in truth_reps if kinds[_group_of(programme, r)] == "double_leg_raise"
    )
    return ExerciseTruth(sess, tuple(kinds[i] for i in range(len(truth_sets))), together)


def _group_of(programme: Programme, rep: TruthRep) -> int:
    """The programmed set of a truth rep (its plan starts just before the measured start)."""
    best = min(programme.reps, key=lambda p: abs(p.t0_s - rep.start_s) + (p.leg != rep.leg) * 1e9)
    return int(best.group)


def _render_signals(spec: SessionSpec, programme: Programme, seed: int) -> dict[str, SimSignal]:
    """Sensor streams for a hand-built programme, drawn as :func:`scenarios.simulate` draws them."""
    seeds = np.random.SeedSequence(seed).spawn(1 + 2 * len(spec.legs))
    signals = {}
    for i, leg in enumerate(spec.legs):
        setup_rng = np.random.default_rng(seeds[1 + 2 * i])
        noise_rng = np.random.default_rng(seeds[2 + 2 * i])
        errors = SensorErrors.random(setup_rng, spec.errors).with_timing(jitter_frac=spec.jitter_frac)
        mounting = Mounting.random(setup_rng)
        clock = device_clock(programme.duration_s, spec.rate_hz, errors, noise_rng)
        motion = programme.legs[leg]
        out = render(motion, mounting, errors, clock, spec.rate_hz, noise_rng, protect_s=spec.calib_still_s)
        signals[leg] = SimSignal(
            leg, spec.rate_hz, out.time_s, out.sample_index,
            out.acc_raw.astype(np.float64) * out.acc_lsb_g, out.gyr_raw.astype(np.float64) * out.gyr_lsb_dps,
            out.acc_raw, out.gyr_raw, out.acc_lsb_g, out.gyr_lsb_dps, out.true_time_s,
            motion.hip_angle_deg(out.true_time_s), mounting, errors, mounting.rot.T @ motion.exercise_axis_thigh(),
        )  # fmt: skip
    return signals


def score_both_legs(truth: ExerciseTruth, found: list[tuple[str, float, bool]]) -> tuple[int, int, int]:
    """``(true positives, false positives, false negatives)`` of a both-legs flag.

    ``found`` holds one ``(leg, start_s, flagged)`` per rep an analysis found; each is matched to
    the truth rep of its leg that starts nearest (within 1 s). Truth reps of double lifts that
    were not found at all count as false negatives.
    """
    tp = fp = fn = 0
    by_leg = {leg: [r for r in truth.session.reps if r.leg == leg] for leg in ("left", "right")}
    matched = 0
    for leg, start_s, flagged in found:
        near = min(by_leg[leg], key=lambda t: abs(t.start_s - start_s), default=None)
        together = near is not None and abs(near.start_s - start_s) < 1.0 and (near.leg, near.start_s) in truth.both_legs
        tp += flagged and together
        fp += flagged and not together
        fn += together and not flagged
        matched += together
    return tp, fp, fn + max(0, len(truth.both_legs) - matched)
