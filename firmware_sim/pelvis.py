"""A pelvis for the simulated person: pelvic tilt over time, a third IMU on it, and the truth.

The pelvis is a rigid body turning about the line through both hip joints (the mediolateral
axis the thighs flex about). Its frame is the thigh rest frame of the exercise posture
(:mod:`legrep_sim.motion`: ``x`` caudal, along the resting thigh; ``z`` anterior; ``y``
mediolateral), except on all fours, where the hip is flexed 90 degrees and the pelvis lies
level while the thigh hangs. Its orientation in the world is::

    R = Rz(yaw) . Ry(pitch) . Rx(roll) . Ry(posture) . Ry(tilt)

``tilt`` (degrees) is the **anterior pelvic tilt**: positive turns the top of the pelvis
toward its front (lying on the back: the lower back lifts off the mat, it arches; on all
fours and in a plank: the belly sags). It turns the pelvis the opposite way to a hip
flexion of the thigh, so with the thigh still an anterior tilt *adds* to hip flexion::

    true hip angle (exercise direction) = theta + direction * tilt

(``theta`` the thigh's angle in the world, ``direction`` +1 for flexion exercises, -1 for
extension ones). The thighs' own motion does not change: the pelvis turning about the hip
joints moves neither joint. This is :class:`legrep_sim.motion.LegMotion` with
``direction = -1`` (its positive angle turns about +y) and the posture as ``posture_flex``.

Per rep the pelvis either stays flat (a small wobble of at most ``flat_max_deg`` either way,
as a pelvis pressed into the mat still moves) or arches by ``arch_range_deg`` (the hip
flexors pull it into anterior tilt as the thigh rises; it returns as the thigh comes down).
The sensor sits on the sacrum or a belt, in any orientation, with the same error models as
the thighs (:meth:`legrep_sim.imu_model.SensorErrors.random`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from .imu_model import Mounting, SensorErrors, device_clock, render
from .motion import ConstantChannel, LegMotion, PiecewiseBuilder, PiecewiseChannel, Programme
from .scenarios import TRUTH_RATE_HZ, SessionSpec, SimSession, SimSignal, TruthRep, simulate

__all__ = ["PelvisSession", "PelvisTruth", "pelvis_motion", "pelvis_session", "simulate_with_pelvis"]

POSTURE_DEG = {"supine": 0.0, "plank": 0.0, "standing": 0.0, "quadruped": -90.0}
"""Pelvis frame relative to the thigh rest frame per exercise posture (on all fours the hip is
flexed 90 degrees: the thigh hangs, the pelvis lies level, its front to the floor)."""
PLACES = ("sacrum", "belt")
ARCH_TRUTH_DEG = 5.0
"""A rep's truth is ``back_arch`` when its tilt exceeds this (legrep's default threshold)."""


@dataclass(frozen=True, slots=True)
class PelvisTruth:
    """The pelvis's truth for one thigh rep (same order as ``SimSession.reps``).

    Attributes
    ----------
    pelvis_tilt_deg : the largest change of anterior tilt from its level at the rep's start,
        during ``[start_s, end_s]`` (signed: positive = anterior, the back arches).
    back_arch : ``|pelvis_tilt_deg| > 5`` (legrep's default ``max_pelvic_tilt_deg``; arching
        reps tilt 6-12 deg, flat ones at most 1.5).
    hip_peak_deg, hip_baseline_deg : the thigh's angle relative to the pelvis (exercise
        direction, zero at the session start where the pelvis is at tilt 0): maximum during the
        rep and value at ``start_s``.
    """

    pelvis_tilt_deg: float
    back_arch: bool
    hip_peak_deg: float
    hip_baseline_deg: float


@dataclass(frozen=True, slots=True)
class PelvisSession:
    """A simulated session with a pelvis sensor: the thighs' session, the pelvis stream, truth."""

    session: SimSession
    pelvis: SimSignal
    """The pelvis sensor's stream; ``true_angle_deg`` is the anterior tilt, ``leg`` is "pelvis"."""
    truth: tuple[PelvisTruth, ...]
    tilt: PiecewiseChannel
    place: str


def pelvis_motion(programme: Programme, exercise_posture: str, tilt: PiecewiseChannel) -> LegMotion:
    """The pelvis as a rigid body sharing the thighs' body motion (see the module docstring)."""
    body = next(iter(programme.legs.values())).body
    return LegMotion("pelvis", body, tilt, direction=-1, posture_flex_deg=ConstantChannel(POSTURE_DEG[exercise_posture]))


def _tilt_programme(programme: Programme, rng: np.random.Generator, arch_frac: float,
                    arch_range_deg: tuple[float, float], flat_max_deg: float) -> tuple[PiecewiseChannel, set[int]]:
    """The tilt channel: per programmed rep a rise and a return inside the leg's movement."""
    b = PiecewiseBuilder(0.0)
    arched: set[int] = set()
    for i, plan in enumerate(programme.reps):
        d = plan.t1_s - plan.t0_s
        t_up, t_down = plan.t0_s + 0.12 * d, plan.t0_s + 0.6 * d
        up_s, down_s = 0.3 * d, 0.28 * d
        if t_up < b.free_s + 0.05:  # overlapping reps (double lifts): one tilt for both
            continue
        if rng.random() < arch_frac:
            amp = float(rng.uniform(*arch_range_deg))
            arched.add(i)
        else:
            amp = float(rng.uniform(-flat_max_deg, flat_max_deg))
        b.move(t_up, up_s, amp)
        b.move(t_down, down_s, 0.0)
    return b.build(), arched


def _pelvis_mounting(rng: np.random.Generator, place: str) -> Mounting:
    """Any orientation; on the sacrum (behind and above the hip joints) or a belt at the front/side."""
    rot = Mounting.random(rng).rot
    if place == "sacrum":
        offset = np.array([-rng.uniform(0.04, 0.10), rng.uniform(-0.02, 0.02), -rng.uniform(0.08, 0.12)])
    else:
        offset = np.array([-rng.uniform(0.06, 0.12), rng.choice((-1.0, 1.0)) * rng.uniform(0.0, 0.16), rng.uniform(-0.02, 0.06)])
    return Mounting(rot, offset)


def pelvis_session(session: SimSession, seed: int, arch_frac: float = 0.3,
                   arch_range_deg: tuple[float, float] = (6.0, 12.0), flat_max_deg: float = 1.5,
                   place: str = "sacrum") -> PelvisSession:
    """Give a simulated session's person a pelvis and a pelvis sensor (deterministic in ``seed``).

    Parameters
    ----------
    session : from :func:`legrep_sim.scenarios.simulate` (or any with a programme).
    arch_frac : share of the programmed reps on which the back arches.
    arch_range_deg : anterior tilt of an arching rep, drawn per rep.
    flat_max_deg : the pelvis of a flat rep still moves by up to this, either way.
    place : "sacrum" or "belt".

    Raises
    ------
    ValueError
        An unknown place or an arch range that is not positive.
    """
    if place not in PLACES:
        raise ValueError(f"place must be one of {PLACES}, got {place!r}")
    if not 0.0 < arch_range_deg[0] <= arch_range_deg[1]:
        raise ValueError(f"arch_range_deg must be 0 < low <= high, got {arch_range_deg}")
    spec = session.spec
    from .scenarios import EXERCISES

    ex = EXERCISES[spec.exercise]
    setup_rng, noise_rng, tilt_rng = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, 0x9E1]).spawn(3))
    tilt, _ = _tilt_programme(session.programme, tilt_rng, arch_frac, arch_range_deg, flat_max_deg)
    motion = pelvis_motion(session.programme, ex.posture, tilt)
    errors = _errors(spec, setup_rng)
    mounting = _pelvis_mounting(setup_rng, place)
    clock = device_clock(session.duration_s, spec.rate_hz, errors, noise_rng)
    protect_s = errors.clock_offset_s + (spec.calib_still_s if spec.start == "still" else 0.0)
    out = render(motion, mounting, errors, clock, spec.rate_hz, noise_rng, protect_s=protect_s)
    signal = SimSignal(
        "pelvis", spec.rate_hz, out.time_s, out.sample_index,
        out.acc_raw.astype(np.float64) * out.acc_lsb_g, out.gyr_raw.astype(np.float64) * out.gyr_lsb_dps,
        out.acc_raw, out.gyr_raw, out.acc_lsb_g, out.gyr_lsb_dps, out.true_time_s,
        tilt.eval(out.true_time_s)[0], mounting, errors, mounting.rot.T @ motion.exercise_axis_thigh(),
    )  # fmt: skip
    truth = tuple(_rep_truth(session, r, tilt, ex.direction) for r in session.reps)
    return PelvisSession(session, signal, truth, tilt, place)


def simulate_with_pelvis(spec: SessionSpec, seed: int, **pelvis: object) -> PelvisSession:
    """:func:`legrep_sim.scenarios.simulate` plus :func:`pelvis_session` (keyword options)."""
    return pelvis_session(simulate(spec, seed), seed, **pelvis)  # type: ignore[arg-type]


def _errors(spec: SessionSpec, rng: np.random.Generator) -> SensorErrors:
    """The pelvis sensor's errors, drawn as the thighs' are for this spec."""
    errors = SensorErrors.random(rng, spec.errors)
    drift = float(rng.uniform(-1.0, 1.0)) * spec.clock_drift_ppm
    offset = float(rng.uniform(0.0, 0.05)) if spec.clock_drift_ppm else 0.0
    errors = errors.with_timing(jitter_frac=spec.jitter_frac, lost_fraction=spec.lost_samples,
                                clock_drift_ppm=drift, clock_offset_s=offset)
    half = np.sqrt(spec.rate_hz / 2.0)  # per-sample rms -> density (std = density * sqrt(rate / 2))
    changes: dict[str, Any] = {}
    if spec.acc_noise_g_rms is not None:
        changes["acc_noise_g_rt_hz"] = spec.acc_noise_g_rms / half
    if spec.gyr_noise_dps_rms is not None:
        changes["gyr_noise_dps_rt_hz"] = spec.gyr_noise_dps_rms / half
    if spec.gyr_bias_walk_dps_rt_s is not None:
        changes["gyr_bias_walk_dps_rt_s"] = spec.gyr_bias_walk_dps_rt_s
    return dataclasses.replace(errors, **changes) if changes else errors


def _rep_truth(session: SimSession, rep: TruthRep, tilt: PiecewiseChannel, direction: int) -> PelvisTruth:
    n = int(np.ceil((rep.end_s - rep.start_s) * TRUTH_RATE_HZ)) + 1
    t = np.linspace(rep.start_s, rep.end_s, n)
    tau = tilt.eval(t)[0]
    change = tau - tau[0]
    k = int(np.argmax(np.abs(change)))
    hip = session.programme.legs[rep.leg].theta_deg.eval(t)[0] + direction * tau
    return PelvisTruth(float(change[k]), abs(float(change[k])) > ARCH_TRUTH_DEG, float(hip.max()), float(hip[0]))


# --------------------------------------------------------------------------- grid and scores
def pelvis_grid(base_seed: int = 7000) -> list[tuple[str, SessionSpec, int, str]]:
    """``(name, spec, seed, place)`` of the sessions the pelvis is judged on: supine raises
    (straight and bent-knee), plank leg lifts, bird dogs, standing hip flexion, the three error
    levels, 52-200 Hz, both places, fast and slow tempos, alternating legs."""
    from .scenarios import FAST, NORMAL, SLOW, SetSpec

    rows: list[tuple[str, SessionSpec, int, str]] = []
    cases = [
        ("slr_typical_sacrum", "straight_leg_raise", "typical", 100.0, NORMAL, "left_then_right", "sacrum"),
        ("slr_harsh_belt", "straight_leg_raise", "harsh", 100.0, NORMAL, "left_then_right", "belt"),
        ("slr_none_200hz", "straight_leg_raise", "none", 200.0, SLOW, "alternating", "sacrum"),
        ("bent_knee_typical_52hz", "bent_knee_raise", "typical", 52.0, NORMAL, "right_then_left", "belt"),
        ("slr_fast_typical", "straight_leg_raise", "typical", 100.0, FAST, "alternating", "sacrum"),
        ("plank_typical", "plank_leg_lift", "typical", 100.0, NORMAL, "left_then_right", "belt"),
        ("bird_dog_harsh", "bird_dog", "harsh", 100.0, NORMAL, "left_then_right", "sacrum"),
        ("standing_flexion_typical_60hz", "standing_hip_flexion", "typical", 60.0, NORMAL, "alternating", "belt"),
    ]
    for i, (name, exercise, errors, rate, tempo, order, place) in enumerate(cases):
        sets = (SetSpec(8, 8, order=order, **tempo), SetSpec(6, 6, order=order, **tempo))  # type: ignore[arg-type]
        rows.append((name, SessionSpec(exercise=exercise, sets=sets, rate_hz=rate, errors=errors), base_seed + i, place))
    return rows


@dataclass(frozen=True, slots=True)
class PelvisScore:
    """How an analysis did on one pelvis session (counts and absolute errors, for pooling)."""

    tp: int
    fp: int
    fn: int
    tilt_err_deg: tuple[float, ...]
    hip_peak_err_deg: tuple[float, ...]
    missed: int


def score_pelvis(ps: PelvisSession, found: list[tuple[str, float, float, float | None, bool]]) -> PelvisScore:
    """Score ``found`` = one ``(leg, start_s, peak_deg, pelvis_tilt_deg, back_arch)`` per rep an
    analysis reported, each matched to the truth rep of its leg starting nearest (within 1 s)."""
    tp = fp = fn = missed = 0
    tilt_err: list[float] = []
    peak_err: list[float] = []
    for rep, truth in zip(ps.session.reps, ps.truth):
        near = min((f for f in found if f[0] == rep.leg), key=lambda f: abs(f[1] - rep.start_s), default=None)
        if near is None or abs(near[1] - rep.start_s) >= 1.0:
            missed += 1
            fn += truth.back_arch
            continue
        _, _, peak, tilt, flagged = near
        tp += flagged and truth.back_arch
        fp += flagged and not truth.back_arch
        fn += truth.back_arch and not flagged
        tilt_err.append(abs((tilt if tilt is not None else float("nan")) - truth.pelvis_tilt_deg))
        peak_err.append(abs(peak - truth.hip_peak_deg))
    return PelvisScore(tp, fp, fn, tuple(tilt_err), tuple(peak_err), missed)

