"""Analysis settings: one frozen dataclass, units in every name, documented defaults and ranges.

The settings used are stored with every recording and summary so a result can be reproduced.

Every field declares its valid range next to it, in its annotation::

    still_min_s: Annotated[float, Range(0.0, 60.0, lo_open=True)] = 0.2

(:class:`Range` for numbers, :class:`Choice` for a fixed set of words). One piece of code
(:func:`check_setting`) validates a value however it arrives: constructing ``Settings(...)``,
``--set NAME=VALUE`` on the command line (:func:`parse_overrides`) and the settings a recording's
META or a summary stores (:meth:`Settings.from_dict`). Numbers must be finite and inside the
range; time constants and divisors are ``> 0``; the upper bounds keep every setting meaningful
(and every count of samples derived from it small enough for the C kernel).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from .errors import InputError

__all__ = ["Choice", "Range", "Settings", "check_setting", "parse_overrides", "setting_rules"]


@dataclass(frozen=True, slots=True)
class Range:
    """A number's valid range: ``lo <= x <= hi`` (``lo < x`` with ``lo_open``), always finite."""

    lo: float
    hi: float
    lo_open: bool = False

    def check(self, name: str, value: object, kind: type) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"setting {name}: a number expected, got {value!r}")
        if kind is int and not float(value).is_integer():
            raise InputError(f"setting {name}: an integer expected, got {value!r}")
        if not math.isfinite(value):
            raise InputError(f"setting {name}: a finite number ({self.describe()}) expected, got {value!r}")
        if value < self.lo or value > self.hi or (self.lo_open and value == self.lo):
            raise InputError(f"setting {name}: {self.describe()} expected, got {value!r}")
        return int(value) if kind is int else float(value)

    def parse(self, name: str, text: str, kind: type) -> float | int:
        try:
            value = int(text) if kind is int else float(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise InputError(f"setting {name}: {what} expected, got {text.strip()!r}") from None
        return self.check(name, value, kind)

    def describe(self) -> str:
        return f"{_num(self.lo)} {'<' if self.lo_open else '<='} value <= {_num(self.hi)}"


@dataclass(frozen=True, slots=True)
class Choice:
    """A word from a fixed set (for settings that pick a method)."""

    values: tuple[str, ...]

    def check(self, name: str, value: object, kind: type) -> str:
        if not isinstance(value, str) or value not in self.values:
            raise InputError(f"setting {name}: one of {', '.join(self.values)} expected, got {value!r}")
        return value

    def parse(self, name: str, text: str, kind: type) -> str:
        return self.check(name, text.strip(), kind)

    def describe(self) -> str:
        return "one of " + ", ".join(self.values)


Rule = Range | Choice


def _num(x: float) -> str:
    return f"{x:g}"


# Shorthands for the common kinds of range (others are written out).
def _positive(hi: float) -> Range:
    """``0 < value <= hi``: a time constant, a window length, a divisor."""
    return Range(0.0, hi, lo_open=True)


def _nonneg(hi: float) -> Range:
    """``0 <= value <= hi`` (0 often disables a check)."""
    return Range(0.0, hi)


RETIRED_SETTINGS = frozenset(
    {"calib_gyro_tol_dps", "calib_acc_tol_g", "still_mean_dps", "anchor_rest_s", "anchor_max_error_deg"}
)
"""Settings older recordings may store that the analysis no longer has (ignored when read)."""


@dataclass(frozen=True, slots=True)
class Settings:
    # --- calibration: the first rest anywhere in the stream (host/fusion/calibration.py) ---
    calib_min_still_s: Annotated[float, _positive(30.0)] = 0.5
    """Shortest rest used for calibration (gyro bias, gravity, neutral pose); it may come anywhere."""
    calib_max_s: Annotated[float, _positive(60.0)] = 2.0
    """Calibration stops averaging after this much rest (longer rests gain little, cost latency)."""
    calib_window_s: Annotated[float, Range(0.05, 5.0)] = 0.25
    """Window of the stillness statistics: long enough to average noise, short enough to end a rest promptly."""
    calib_gyro_dps: Annotated[float, _positive(100.0)] = 8.0
    """Quiet window: rms deviation of the rate from its window mean (deg/s); above a standing
    person's sway (2-6 deg/s) and gyro noise (0.5 deg/s rms), below any deliberate movement."""
    calib_acc_g: Annotated[float, _positive(1.0)] = 0.06
    """Quiet window: rms deviation of the accelerometer from its mean, in g per g of the mean;
    15 mg rms noise per axis gives 26 mg over three axes."""
    calib_tilt_deg: Annotated[float, Range(0.1, 90.0)] = 3.0
    """Quiet window: gravity's direction turns less than this between its first and last quarter
    (a slow, steady movement has a small variance but turns gravity)."""
    calib_max_rate_dps: Annotated[float, _positive(1000.0)] = 20.0
    """Quiet window: its median rate is below this (deg/s): above the zero-rate offset of an
    uncalibrated MEMS gyro (a few deg/s; up to 20 for old parts), below a person turning round."""
    axis_rotation_deg: Annotated[float, _positive(90.0)] = 25.0
    """Rotation since the reference rest before the flexion axis is fitted to the movement."""
    anchor_level_deg: Annotated[float, Range(0.0, 30.0)] = 3.0
    """The exercise plane's heading is re-taken from the gyro at every rest near the reference
    pose, and at rests elsewhere whose gravity lies within this of the plane (a thigh neither
    abducted nor rotated there: standing between sets, not the top of an abducted raise)."""
    fit_level_deg: Annotated[float, Range(0.0, 90.0)] = 20.0
    """A fitted flexion axis within this of level is a raise's (the pelvis's mediolateral axis is
    level lying, kneeling, in a plank and standing; 20 deg of abduction over a raise of 80 tilts a
    fit by up to 15): the movement it was fitted to counts as ``axis_rotation_deg`` of rotation
    toward the next anchoring, so the rest that ends it may anchor the exercise plane. Farther out
    of level (a strap turned about an upright thigh: 84 deg) it counts from the fit on."""
    axis_refit_deg: Annotated[float, _positive(3600.0)] = 60.0
    """Rotation (up and down) since the flexion axis was last fitted after which it is fitted
    again, at the next rest near the reference pose, to every movement seen with the mounting:
    about one rep (a first raise's abduction and rotation tilt its axis by up to 15 deg; over
    several reps they average out)."""

    # --- fusion: orientation, gyro bias, stillness, mounting (host/fusion/orientation.py, angle.py) ---
    tau_acc_s: Annotated[float, Range(0.05, 600.0)] = 1.0
    """Low-pass time constant of the accelerometer in the almost-inertial frame (VQF's default
    tauAcc is 3 s, Laidig & Seel 2023): rejects the thigh's accelerations, follows gravity. Two
    stages of 1 s (``tau_acc2_s``) reject a rep's accelerations more sharply than one of 3 s
    and follow gravity sooner after a calibration with a poor gyro bias (a bias off by b deg/s
    tilts one stage by about b x tau deg): lower peak error on every accuracy-grid seed and
    on BROAD (README "Accuracy")."""
    tau_acc2_s: Annotated[float, _nonneg(600.0)] = 1.0
    """Time constant of a second low-pass stage after the first (0: a single stage)."""
    onset_tau_acc_s: Annotated[float, _nonneg(600.0)] = 6.0
    """Low-pass time constant at the onset of a movement that follows a rest of ``onset_rest_s``
    (both stages scaled alike; relaxing to ``tau_acc_s`` over ``onset_decay_s``; not above
    ``tau_acc_s``: off). Such a rest has just measured the gyro bias and settled the low-pass on
    gravity, so for the first seconds the gyro alone is the better judge, while a limb or hand
    that starts to move accelerates before it turns. On BROAD's trials with breaks the 1 s + 1 s
    low-pass took in twice VQF's error at each pick-up; with this (6 s, 3 s, 5 s) legrep's
    inclination RMSE is under VQF's on every trial, and the accuracy grid's peak error fell on
    every seed column (benchmarks/orientation.py, benchmarks/accuracy.py)."""
    onset_decay_s: Annotated[float, _positive(600.0)] = 3.0
    """Time constant of the return from ``onset_tau_acc_s`` to ``tau_acc_s`` after the last still sample, s."""
    onset_rest_s: Annotated[float, _nonneg(3600.0)] = 5.0
    """Shortest still run after which a movement starts with ``onset_tau_acc_s``, s: several
    low-pass time constants, so that the low-pass has settled (a rep's bottom, 0.3-2 s, or the
    rest after a setup movement, has not: there the accelerometer must still correct the gyro;
    with 2 s a paused bent-knee raise after a 3 s start was lost on one grid seed)."""
    bias_motion_tau_s: Annotated[float, _nonneg(3600.0)] = 100.0
    """Time constant of the gyro bias estimate while moving (0 disables it): slow, because
    anything else that turns the filtered gravity (the thigh's accelerations, a recovery after
    lost samples) moves the bias too. Rests do most of the work; this corrects a calibration
    bias off by a few deg/s during a set whose bottoms are too short for a bias rest."""
    still_gyro_dps: Annotated[float, _positive(100.0)] = 3.0
    """Still (for the rep segmenter): rms rate about the bias over ``still_min_s`` below this."""
    still_min_s: Annotated[float, _positive(60.0)] = 0.2
    """Length of the still window."""
    still_bias_dps: Annotated[float, _nonneg(100.0)] = 8.0
    """Still also when the rate is steady (its rms deviation over ``still_min_s`` under half
    ``still_gyro_dps``) and its mean within this of the bias estimate: a calibration rest taken
    while the person settles (the leg still drifting down) leaves the bias 2-7 deg/s off until
    the first rest of ``bias_window_s``, and reps with 0.3 s at the bottom have none; without
    this, no sample between them is still and the neutral pose never comes down. 0: off."""
    bias_window_s: Annotated[float, Range(0.1, 60.0)] = 0.8
    """Length of a rest window used to update the gyro bias."""
    bias_trim_s: Annotated[float, _nonneg(60.0)] = 0.2
    """A rest window's gyro-bias estimate leaves out its last this long (at most half the window):
    the last window before a movement holds its first touch, under the rest thresholds but no
    bias (on BROAD's trials it moved the bias by up to 0.13 deg/s for the whole next movement)."""
    rest_gyro_dps: Annotated[float, _positive(100.0)] = 1.5
    """Bias rest: rms deviation of the rate from its window mean below this (gyro noise 0.5 deg/s
    rms per axis gives 0.9 deg/s)."""
    rest_acc_g: Annotated[float, _positive(1.0)] = 0.04
    """Bias rest: rms deviation of the accelerometer from its window mean below this, g."""
    rest_tilt_deg: Annotated[float, Range(0.01, 90.0)] = 0.5
    """Bias rest: gravity's direction turns less than this over the window (a slow turn is not a rest)."""
    bias_jump_dps: Annotated[float, _positive(100.0)] = 2.0
    """Bias rest: its mean rate, along gravity, is within this of the current bias (a turn about
    gravity does not move gravity, so only this tells it from a bias; normal to gravity the tilt
    test verifies the rest, and a calibration taken while the body still shifted is corrected)."""
    bias_tau_s: Annotated[float, _positive(3600.0)] = 2.0
    """Time constant (of rest time) of the rest bias update."""
    acc_bias_memory: Annotated[float, _nonneg(10000.0)] = 20.0
    """Accelerometer bias from pairs of rests in different poses (the gyro relates them): how
    many pairs the estimate remembers (0 disables it). Cheap MEMS accelerometers are off by tens
    of mg, up to 0.1 g, which tilts gravity by up to 6 degrees."""
    acc_bias_ridge: Annotated[float, _nonneg(100.0)] = 0.05
    """Ridge of the accelerometer-bias fit: turns between rests much under ~13 degrees
    (2 asin(sqrt(ridge) / 2)) barely move it; the component along every turn's axis stays 0."""
    acc_bias_max_g: Annotated[float, _nonneg(2.0)] = 0.2
    """The accelerometer-bias estimate is limited to this norm, g (twice the worst part we know)."""
    acc_bias_turn_deg: Annotated[float, _positive(1e6)] = 720.0
    """A rest pair of the accelerometer-bias fit counts with weight (1 - (turn / this)^2)^2, none
    from ``turn = this`` on (Tukey's biweight), ``turn`` the gyro's path between the two rests
    (per step, the sum of the rotation's absolute components): the gyro relates two poses only
    to a fraction of a percent of the path it turned between them (scale and misalignment
    errors). On BROAD's trials with breaks (1500-3000 deg of hand-held turning between rests)
    the gyro's two poses disagreed with gravity by 1-6 deg, which the fit took for a 0.2 g
    bias (inclination RMSE 4.4 deg against 1.6 without the fit); the pairs a leg exercise
    informs it with (a rest at the bottom, a hold at the top) are under 200 deg apart."""
    acc_bias_step_deg: Annotated[float, Range(0.01, 180.0)] = 0.5
    """At one rest (any pose), a new accelerometer-bias estimate may turn the up vector's angle
    to the reference by at most this; the rest of the change waits for later rests (near the
    reference pose all of it goes at once; at the top of a rep a big jump would end the rep)."""
    gap_tau_acc_s: Annotated[float, Range(0.05, 600.0)] = 0.1
    """After lost samples (a step over 2.5 nominal steps) the accelerometer low-pass runs with this
    time constant for ``gap_recover_s``: the gyro bridged the gap by guessing the lost rates, and
    a gap in a fast rep can hide most of the raise."""
    gap_recover_s: Annotated[float, _nonneg(60.0)] = 0.5
    """How long the shorter low-pass of ``gap_tau_acc_s`` runs after lost samples (0: never)."""
    lever_arm_tau_s: Annotated[float, _nonneg(3600.0)] = 60.0
    """Memory of the lever-arm fit (0 disables it): the sensor sits 0.15-0.3 m from the hip, so the
    thigh's rotation adds up to 0.3 g (centripetal and tangential) that would tilt gravity."""
    lever_arm_min_dps: Annotated[float, _positive(1000.0)] = 30.0
    """Samples turning faster than this feed the lever-arm fit (slower ones carry no signal)."""
    lever_arm_ridge: Annotated[float, _positive(1e6)] = 1.0
    """Ridge of the lever-arm fit, (rad/s^2)^2: about one sample at 1 rad/s; keeps it near 0 until
    the thigh has turned fast enough to show it."""
    lever_arm_max_m: Annotated[float, _positive(5.0)] = 0.6
    """The lever arm is limited to this length, m (a thigh is about 0.45 m)."""
    slip_deg: Annotated[float, Range(1.0, 90.0)] = 8.0
    """A rest whose gravity lies more than this out of the current mounting's exercise plane
    means the strap moved: the mounting is re-fitted at the next movement."""
    max_gap_s: Annotated[float, _positive(3600.0)] = 0.5
    """A sample gap longer than this is counted in the diagnostics (the gyro bridges it)."""

    # --- reps (the rules are in host/reps/reference.py) ---
    min_rom_deg: Annotated[float, _nonneg(180.0)] = 20.0
    """Excursions with a smaller range are fidgets, not reps (shifting on the mat, adjusting a
    strap move the thigh 4-12 deg; the gentlest therapeutic raises still cover 30 deg or more)."""
    min_baseline_deg: Annotated[float, Range(-180.0, 0.0)] = -45.0
    """No rep rises from further below the neutral pose than this, deg: lying, the mat is the
    floor; kneeling or standing, the thigh hangs; a lower rest within ``posture_change_deg``
    becomes the neutral pose first. Such an excursion is something no hip raise explains (a
    strap turned right after a short calibration rest read a rep from -116 deg; standing up
    from a bird dog's kneeling pose one from -67): rejected. (-30 and -45 gave the same counts
    on the grid, the mixtures and the real sets; -70 let the stand-up through.)"""
    enter_deg: Annotated[float, _positive(180.0)] = 10.0
    """Rise above the low point that opens a candidate rep; also the drop below the peak that
    starts its descent (well above a hold's sag and the angle's noise, well below a rep)."""
    arm_rest_s: Annotated[float, _positive(60.0)] = 0.15
    """Stillness that makes a rest: it anchors the low point and a rep can rise from it."""
    undershoot_deg: Annotated[float, _nonneg(180.0)] = 8.0
    """A descent ending this far (or ``undershoot_frac`` of the range) below the rep's baseline
    rejects it: the first swing of walking goes back past the standing pose. Also how far below
    the last rest a low point may lie and still be anchored by it."""
    undershoot_frac: Annotated[float, _nonneg(10.0)] = 0.2
    """...the undershoot as a fraction of the range (whichever of the two is larger), for a rep that
    rose from a rest (walking's first swing: 25 deg up, 15 below the standing rest)."""
    chained_undershoot_frac: Annotated[float, _nonneg(10.0)] = 1.0
    """...and for a rep that rose from the turning point after another rep: the last of a set of
    hover or touch-and-go reps may end on the floor, well below its baseline, but never further
    below it than it rose above it (sitting up to stand rises 40 deg and falls 130)."""
    min_return_frac: Annotated[float, _positive(1.0)] = 0.5
    """A rep has come down once it has fallen by this fraction of its rise (hover reps come back
    to 10-15 deg above the floor, so "back to the baseline" would lose them; getting up from the
    floor rises 40 deg and falls 130: not a return)."""
    confirm_s: Annotated[float, _nonneg(60.0)] = 0.25
    """Once come down, a rep also closes after this long without a new low (no rest, no rise)."""
    gait_swing_min_deg: Annotated[float, _nonneg(180.0)] = 15.0
    """A rep of one thigh during which the other thigh's angle moved at least this much, deg, the
    opposite way (``gait_corr_max``), is a walking stride, not a rep (host/reps/gait.py). A
    resting other leg moves under 1 deg; in walking each thigh swings 30-40."""
    gait_corr_max: Annotated[float, Range(-1.0, 1.0)] = -0.7
    """...the opposite way: the correlation of the two thighs' angles over the rep at most this
    (walking strides -0.88 to -1.0; a double-leg lift is near +1)."""
    gait_tail_min_s: Annotated[float, _positive(3600.0)] = 1.5
    """...or over its part after the peak, when that lasts at least this, s: standing up between
    sets read as a raise whose lowering the strides that followed drew out (peak to end 1.7 s of
    strides; over the whole "rep" the stand-up, both thighs rising, hid them). A true rep's hold
    and lowering, with the other leg at rest or rising with it, is judged alike."""
    max_rep_s: Annotated[float, _positive(3600.0)] = 60.0
    """A candidate rep open for longer than this is dropped (sat up, walked off)."""
    floor_margin_deg: Annotated[float, _nonneg(180.0)] = 4.0
    """A rep that rose from a rest and came down well below it (see ``undershoot_frac``) counts
    even when the next rise follows at once, if it ended no more than this below the floor (the
    lowest rest at the bottom so far): touch-and-go bent-knee reps whose feet walk out (45 -> 22
    deg). Walking's first swing goes 10-15 deg below the standing rest; rests read within ~1 deg
    of each other."""
    held_rise_min_rom_deg: Annotated[float, _nonneg(180.0)] = 45.0
    """Such a rep also counts when the next rise follows at once, wherever its descent ended (not
    below its baseline by more than its own range: ``chained_undershoot_frac``), if it rose at
    least this much: bent-knee touch-and-go reps whose feet slide out to straight legs (22 -> 0
    deg) while the leg comes down from 90. A walking stride rises 25-35 deg from the standing
    rest (hip flexion in gait: 30-35 deg, e.g. Perry & Burnfield, Gait Analysis, 2010)."""
    tempo_speed_frac: Annotated[float, _positive(0.9)] = 0.1
    """Stopwatch tempo: a phase starts and ends where the speed is this fraction of the rep's
    peak rising / lowering speed (README "Rep measures"; minimum-jerk raise of T reads 0.83 T)."""
    speed_window_s: Annotated[float, _positive(2.0)] = 0.1
    """Width of the least-squares speed fit (centred; latency half of it). 0.1 s: at 100 Hz it
    cuts angle noise in the speed about 10x, and widens a 0.5 s raise's reading by < 10 ms."""

    # --- sets and flags ---
    set_rest_s: Annotated[float, _positive(3600.0)] = 15.0
    """A rest at least this long between reps starts a new set."""
    partial_frac: Annotated[float, _nonneg(1.0)] = 0.7
    """``partial``: range below this fraction of the set's median range (same leg); 0.7 leaves
    room for the +-10 % rep-to-rep variation of a steady set and still catches half-way reps."""
    min_down_s: Annotated[float, _nonneg(60.0)] = 1.2
    """``fast_down``: lowering (down_s) quicker than this. The exercises ask to lower over 2 s or
    more; a smooth lowering of T seconds reads 0.83 T on the stopwatch (1.66 s for 2 s), and
    reps vary by about 10 %: 1.2 s flags a lowering clearly faster than asked (< 1.45 s of
    movement), never a controlled one."""
    min_up_s: Annotated[float, _nonneg(60.0)] = 0.4
    """``fast_up``: raising (up_s) quicker than this: a raise under 0.5 s of movement is a swing
    (momentum, not the hip flexors; a controlled raise takes 1-2 s)."""
    min_hold_s: Annotated[float, _nonneg(600.0)] = 0.0
    """``short_hold``: hold at the top shorter than this (0 disables: holds are prescribed per
    person, e.g. 1-5 s; a prescribed hold H between smooth moves of T_up and T_down reads
    H + 0.087 (T_up + T_down) on the stopwatch)."""
    target_rom_deg: Annotated[float, _nonneg(180.0)] = 0.0
    """``below_target``: range below this absolute target (0 disables; set per person)."""

    # --- which exercise, one leg at a time (host/exercise.py; README "Which exercise") ---
    exercise_bent_knee_deg: Annotated[float, Range(0.0, 90.0)] = 38.0
    """Baseline elevation (deg, 0-90) at or above which a lying raise is a bent-knee raise: the
    thigh rests at 40-60 deg with the feet on the floor, a straight leg near 0 (+ up to ~25 for
    the sensor's lean, see exercise.py) and a hovering one at 10-15."""
    exercise_prone_deg: Annotated[float, Range(0.0, 45.0)] = 4.0
    """Baseline more than this below horizontal (deg, 0-45), raised upward: face down (plank
    leg lift, hip extension); a plank thigh slopes ~10 deg down."""
    exercise_upright_deg: Annotated[float, Range(45.0, 89.0)] = 50.0
    """Baseline more than this below horizontal (deg, 45-89): the thigh hangs (standing, or
    kneeling on all fours); forward of vertical is a hip flexion, behind it a bird dog."""
    exercise_max_deg: Annotated[float, Range(90.0, 180.0)] = 110.0
    """Baseline above this (deg): no exercise we know starts there -> unknown."""
    exercise_min_margin_deg: Annotated[float, Range(0.0, 90.0)] = 30.0
    """Baselines within this of -180 deg (the thigh would be raised downward) -> unknown."""
    exercise_double_frac: Annotated[float, Range(0.0, 1.0, lo_open=True)] = 0.5
    """A set is a double-leg raise when at least this share (0-1) of its reps are ``both_legs``."""
    both_legs_overlap_frac: Annotated[float, Range(0.0, 1.0, lo_open=True)] = 0.5
    """``both_legs``: a rep's [start_s, end_s] overlaps one of the other leg by at least this
    share (0-1) of the shorter of the two (alternating legs overlap 0; a double lift ~1)."""
    max_pelvic_tilt_deg: Annotated[float, Range(0.5, 45.0)] = 5.0
    """``back_arch`` (pelvis sensor): the pelvis tilted more than this (deg) from its resting level
    during a rep. 5 deg is the smallest change of lumbo-pelvic angle that wearable IMUs tell from
    test-to-test variation (MDC90 5-15 deg for most ranges: Laird, Kent & Keating 2016, BMC
    Musculoskelet Disord 17:403, doi:10.1186/s12891-016-1250-1); a pelvis held flat moves 1-2 deg."""

    # --- fusion, added later (fields are appended: stored settings keep their order) ---
    posture_change_deg: Annotated[float, Range(30.0, 180.0)] = 70.0
    """A rest further than this above the neutral pose (hip angle 0) that the next movement leaves
    in the raise direction is a new posture (lying down after a standing start): it
    becomes the neutral pose and the rep segmenter restarts there. Above the bent-knee resting
    angle (40-60 deg, a pose of the same posture), below a change of posture (80-90 deg: thigh
    vertical <-> flat); the top of a held rep is as far, but the next movement lowers the leg."""
    neutral_drop_deg: Annotated[float, Range(0.5, 30.0)] = 3.0
    """A rest more than this *below* the neutral pose (but less than ``posture_change_deg``)
    becomes the neutral pose: a person lies at least as low between reps as where they settled,
    so a neutral taken while still settling or half-way up a first rep is re-anchored at the
    first lower rest (the angle from there on reads 0 at it). Above the spread of a resting
    leg's angle (about 1 deg), below the smallest settling fidget worth correcting."""
    standing_sway_dps: Annotated[float, Range(0.1, 50.0)] = 1.5
    """A calibration rest whose rate varies more than this (rms about its mean) is a standing
    rest (sway 2-6 deg/s; a leg lying or kneeling still shows only the gyro's noise, under
    0.5 deg/s rms per axis on a cheap part, 0.9 over three): its first movement may be a posture change (kneeling down
    before bird dogs), so it is held until the next movement shows the raise direction."""
    slip_zone_deg: Annotated[float, Range(1.0, 45.0)] = 15.0
    """Strap slips are looked for at rests within this of the reference rest's angle (at the top
    of a rep the thigh may be abducted or rotated, gravity out of the plane without any slip);
    the same zone decides which rests re-anchor the exercise plane's heading and which rests the
    raise-direction check holds at."""
    slip_far_deg: Annotated[float, Range(10.0, 90.0)] = 40.0
    """... and at any rest where gravity is more than this out of the exercise plane (more than a
    thigh's abduction or rotation during a rep: 5-20 deg)."""
    refit_far_deg: Annotated[float, Range(1.0, 90.0)] = 30.0
    """Away from the reference pose the flexion axis is re-fitted only if the movements' principal
    axis is this far from it (the first fit was no raise, e.g. a strap adjusted); near it, always."""
    roll_axis_deg: Annotated[float, Range(0.0, 60.0)] = 20.0
    """A flexion axis within this of the lever arm (hip -> sensor, as the orientation stage
    estimates it, between ``roll_lever_min_m`` and ``roll_lever_max_m``) is no flexion axis: the
    hip's mediolateral axis is normal to the thigh, and a sensor on the thigh's side sits at most
    ~10 cm off the femur over a lever of ~20 cm, so the true axis is over 60 deg from the lever.
    Such an axis was fitted to the sensor turning about the thigh (a strap being adjusted): until
    a movement from the neutral pose has gone up about it, it is dropped there (the rep segmenter
    restarts) and re-fitted at the next movement."""
    posture_axis_deg: Annotated[float, Range(0.0, 90.0)] = 45.0
    """After a new posture (``posture_change_deg``) the flexion axis read so far is kept if the
    first movement of the new posture turns within this of it: the axis is the thigh's, fixed
    on the sensor in any posture, and the one read so far includes the posture change (a large,
    clean turn about it), while a first plank lift (30 deg with 5-20 deg of abduction and
    rotation) was fitted 30 deg off. Farther: the strap moved too, the new fit is taken."""
    roll_max_turn_deg: Annotated[float, Range(0.0, 180.0)] = 45.0
    """... and only while the angle read about that axis stays within this of the reference rest:
    a strap is turned by 5-30 deg at a time; a raise of 80 deg read about its own axis is a rep,
    even when the lever arm still carries the strap adjusted before it (a sensor turning about
    the thigh makes the fit point across the thigh, along the flexion axis: the first rep was
    dropped)."""
    roll_lever_min_m: Annotated[float, Range(0.0, 1.0)] = 0.1
    """Shortest lever arm estimate that can tell a strap roll (``roll_axis_deg``); shorter is not
    settled."""
    roll_lever_max_m: Annotated[float, Range(0.05, 2.0)] = 0.4
    """Longest lever arm estimate that can tell a strap roll: longer is no sensor on a thigh
    (femur ~0.25 of body height), so the estimate is not settled."""
    fit_net_frac: Annotated[float, Range(0.0, 1.0)] = 0.8
    """A movement fits the flexion axis only if it is a turn about it: its rate integrated along
    the fitted axis (from the last still sample to where ``axis_rotation_deg`` of rotation is
    reached) is at least this fraction of that rotation. A raise is (off-axis motion during a rep
    is a small part); a person settling on the mat (the body rolling, the legs fidgeting back and
    forth) is not, and an axis fitted to it would make every angle after it wrong: such movements
    are skipped (their samples go out as the rest around them)."""
    fit_max_tilt_deg: Annotated[float, Range(0.0, 90.0)] = 45.0
    """A first movement whose axis lies farther than this out of level is no hip raise, deg: the
    search for the flexion axis goes on past it. The hip's flexion axis is level lying, kneeling,
    in a plank and standing (abduction during a raise tilts a fit by up to 15 deg); a strap turned
    about an upright thigh turns the sensor about the vertical (a strap start before bird dogs
    was fitted 31 deg from vertical: the hip angle then came from the gyro's heading, reading the
    kneeling rest as 40 deg and the set upside down)."""
    lead_in_top_rise_deg: Annotated[float, Range(0.0, 90.0)] = 15.0
    """A turn into the calibration rest after other movement (a strap adjusted, then the first
    rep) makes the rest the top of a rep when the next movement turns back and the turn raised
    the sensor relative to the hip (the lever arm's elevation) by at least this much: a
    straight-leg raise to 70 deg raises it by over 40. Lowering a leg onto the mat lowers it;
    lying down from standing raises it too, but the first rep after it turns the same way.
    A bent-knee top (the thigh past vertical) is not told from its bottom this way. Lower than
    ``lead_in_rise_deg``: after a strap was adjusted the lever arm can be 30-45 deg off the
    thigh, and a bird dog raise from a hanging thigh to level then raised it by only 17-23 deg
    (the raise read upside down until the leg's set ended)."""
    lead_in_rise_deg: Annotated[float, Range(0.0, 90.0)] = 30.0
    """When the next movement after such a turn into the calibration rest goes on up, a turn
    that raised the lever arm's elevation by at least this much, shorter than ``posture_change_deg`` from a thigh at most
    45 deg below level makes the rest a pose that far above where the leg lay (the knees bent
    to 45 deg before bent-knee raises; lying down after standing turns 90 deg from a hanging
    thigh)."""
    probe_max_s: Annotated[float, Range(1.0, 3600.0)] = 120.0
    """After a standing calibration rest (``standing_sway_dps``, or an upright thigh:
    ``probe_upright_deg``) the first movement is held until the raise direction is checked at
    the next movement from the neutral pose, for at most this long (then it is released as it is)."""
    probe_axis_deg: Annotated[float, Range(0.0, 90.0)] = 60.0
    """A first movement on probation whose axis lies more than this from the next movement's
    (which the raise-direction check fits) was no raise: a strap turned on the thigh or the body
    settling turns about another axis than the hip's flexion (a strap turn 72 deg from the set-up
    of bent-knee raises read as a 22 deg rep). It is re-read about the new axis; a raise's
    abduction and rotation tilt a fit by at most ~35 deg."""
    probe_upright_deg: Annotated[float, Range(0.0, 90.0)] = 60.0
    """The first movement is also held (``probe_max_s``) when the lever arm at its fit puts the
    thigh within this of upright at the calibration rest (someone standing without sway, or
    kneeling): from a hanging thigh the knee rises whichever way it swings, so gravity cannot
    tell a kneel-down before planks and bird dogs (a 70 deg flexion and back) from a first rep.
    Loose on purpose: a lying thigh read as upright only delays its first rep until the next
    movement; the lever arm leans 7-28 deg off the long axis and is rough after one movement
    (a kneel-down also moves the hip: 0.63-0.93 of upright seen, a lying thigh 0.05-0.44)."""
    plane_correction_max_deg: Annotated[float, Range(0.0, 45.0)] = 6.0
    """Once anchored, the hip angle (the long axis's flexion in the exercise plane) differs from the
    heading-free tilt about the flexion axis by at most this: that difference is of second order in
    the thigh's abduction and axial rotation (under 6 deg for 20 deg of each at a raise of 80), so
    more means the heading from the gyro went wrong (a bias error about gravity, which no rest
    corrects). 0 keeps the tilt alone."""
    lever_min_m: Annotated[float, Range(0.0, 0.5)] = 0.05
    """A lever arm (hip -> sensor, as the orientation stage estimates it) shorter than this, normal
    to the flexion axis, does not choose between a level and an upright long axis at a re-fit (the
    thigh is then taken as level): a sensor on the thigh sits 15-25 cm from the hip, and an estimate
    under 5 cm is not settled yet."""
    sign_proofs: Annotated[int, Range(0, 10)] = 2
    """Movements from the neutral pose that must go up (by half ``axis_rotation_deg``) before the
    raise direction is trusted; until then each rest there holds the samples until the next
    movement shows its direction, and a movement down flips it. Two: the first movement after
    the calibration rest may be a posture change (kneeling down before bird dogs), so the first
    rep from the new neutral pose proves the direction, and one more guards against a first
    rep read against a wrong pose; each proof costs only the holding of one rest's samples."""
    reanchor_proofs: Annotated[int, Range(0, 10)] = 1
    """Movements from the neutral pose that went up before a lower rest may move the neutral pose
    down to it: before that, a rest below may mean the raise direction is wrong (the rest is then
    above), which the sign check decides. One rep up is enough to tell."""
    bias_motion_fast_tau_s: Annotated[float, _nonneg(3600.0)] = 2.0
    """After a calibration whose gyro bias is unsure (``calib_bias_se_dps``), until the first bias
    rest, the motion bias estimator's time constant starts at this and grows by the time since
    the stream began, up to ``bias_motion_tau_s``: a raised leg shows the bias error as gravity
    turning, and a set of fast reps with no rest of ``bias_window_s`` (0.3 s at the bottom) would
    otherwise read up to 13 deg off for its whole length. The first bias rest is then judged
    without ``bias_jump_dps`` and moves the bias all the way (a quiet rest measures it better).
    0: off (both)."""
    calib_bias_se_dps: Annotated[float, _positive(100.0)] = 1.0
    """The calibration's gyro bias is unsure when its standard error (the fit correcting it for
    gravity's turn over the rest) exceeds this (deg/s): about 2 for 0.4 s of a body still shifting
    on the mat, 0.1-0.3 for a rest of 1.5 s even at the end of a lowering."""

    def __post_init__(self) -> None:
        for name, (rule, kind) in setting_rules().items():
            value = rule.check(name, getattr(self, name), kind)
            if value is not getattr(self, name):  # normalise 1 -> 1.0 for float fields
                object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Settings":
        """Settings from stored values (a recording's META, a summary, the history).

        Missing names take their defaults (files written before a setting existed).

        Raises
        ------
        InputError
            Not a mapping, an unknown name, or a value of the wrong type or out of its range.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"settings: an object of NAME: value expected, got {type(data).__name__} {data!r:.60}")
        rules = setting_rules()
        # names an older legrep stored that no longer mean anything (fusion redesign, issue 8)
        data = {k: v for k, v in data.items() if k not in RETIRED_SETTINGS}
        unknown = sorted(str(k) for k in data if k not in rules)
        if unknown:
            raise InputError(f"unknown settings {unknown}; known: {sorted(rules)}")
        return cls(**{str(k): v for k, v in data.items()})

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


@functools.cache
def setting_rules() -> dict[str, tuple[Rule, type]]:
    """``name -> (rule, value type)`` of every :class:`Settings` field, from its annotation.

    Raises
    ------
    TypeError
        A field without a :class:`Range` or :class:`Choice` (a programming error: declare one).
    """
    hints = typing.get_type_hints(Settings, include_extras=True)
    rules: dict[str, tuple[Rule, type]] = {}
    for f in dataclasses.fields(Settings):
        hint = hints[f.name]
        found = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, (Range, Choice))]
        if len(found) != 1:
            raise TypeError(f"Settings.{f.name} must be annotated Annotated[type, Range(...) or Choice(...)], got {hint!r}")
        rules[f.name] = (found[0], typing.get_args(hint)[0])
    return rules


def check_setting(name: str, value: object) -> Any:
    """The validated value of setting ``name`` (InputError when unknown, mistyped or out of range)."""
    rules = setting_rules()
    if name not in rules:
        raise InputError(f"setting name expected (one of {', '.join(rules)}), got {name!r}")
    rule, kind = rules[name]
    return rule.check(name, value, kind)


def parse_overrides(items: Sequence[str], base: Settings | None = None, option: str = "--set") -> Settings:
    """Apply ``NAME=VALUE`` overrides (``--set min_rom_deg=25``) to ``base`` (default :class:`Settings`).

    Raises
    ------
    InputError
        A malformed item, an unknown name (the known names are listed), or a value that is not
        of the setting's type or outside its range (the range is given).
    """
    base = base if base is not None else Settings()
    rules = setting_rules()
    changes: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(f"{option}: NAME=VALUE expected, got {item!r}")
        if name not in rules:
            raise InputError(f"{option}: a setting name expected (one of {', '.join(rules)}), got {name!r}")
        rule, kind = rules[name]
        try:
            changes[name] = rule.parse(name, text, kind)
        except InputError as exc:  # "setting NAME: ..." -> "--set NAME: ..."
            raise InputError(f"{option} {str(exc).removeprefix('setting ')}") from None
    return dataclasses.replace(base, **changes) if changes else base
