"""Analysis settings: one frozen dataclass, units in every name, documented defaults.

The settings used are stored with every recording and summary so a result can
be reproduced.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .errors import InputError


@dataclass(frozen=True, slots=True)
class Settings:
    # --- calibration (neutral pose at the start) ---
    calib_min_still_s: float = 0.5
    """Shortest still neutral pose accepted at the start of a stream."""
    calib_max_s: float = 2.0
    """Calibration stops averaging after this much stillness."""
    calib_gyro_tol_dps: float = 3.0
    """A calibration sample deviates less than this from the running gyro mean."""
    calib_acc_tol_g: float = 0.05
    """...and less than this (fraction of the mean accelerometer norm) from its mean."""
    axis_rotation_deg: float = 25.0
    """Rotation needed after calibration before the flexion axis is fixed."""

    # --- fusion: stillness, gyro bias tracking, accelerometer re-anchoring ---
    still_gyro_dps: float = 3.0
    """Every sample of a still window has a bias-corrected rate below this."""
    still_mean_dps: float = 0.2
    """...and the window's mean rate about the flexion axis is below this (a slow sag is motion)."""
    still_min_s: float = 0.2
    """Length of the still window; zero-rate updates apply after it."""
    bias_tau_s: float = 2.0
    """Time constant (of still time) of the gyro bias tracker."""
    anchor_rest_s: float = 1.0
    """Rest long enough to compare the angle with gravity."""
    anchor_max_error_deg: float = 10.0
    """At a long rest, re-anchor to gravity when the angles differ by more."""
    max_gap_s: float = 0.5
    """A sample gap longer than this is counted in the diagnostics (bridged linearly)."""

    # --- reps (the rules are in host/reps/reference.py) ---
    min_rom_deg: float = 20.0
    """Excursions with a smaller range are fidgets, not reps (shifting on the mat, adjusting a
    strap move the thigh 4-12 deg; the gentlest therapeutic raises still cover 30 deg or more)."""
    enter_deg: float = 10.0
    """Rise above the low point that opens a candidate rep; also the drop below the peak that
    starts its descent (well above a hold's sag and the angle's noise, well below a rep)."""
    arm_rest_s: float = 0.15
    """Stillness that makes a rest: it anchors the low point and a rep can rise from it."""
    undershoot_deg: float = 8.0
    """A descent ending this far (or ``undershoot_frac`` of the range) below the rep's baseline
    rejects it: the first swing of walking goes back past the standing pose. Also how far below
    the last rest a low point may lie and still be anchored by it."""
    undershoot_frac: float = 0.2
    """...the undershoot as a fraction of the range (whichever of the two is larger), for a rep that
    rose from a rest (walking's first swing: 25 deg up, 15 below the standing rest)."""
    chained_undershoot_frac: float = 1.0
    """...and for a rep that rose from the turning point after another rep: the last of a set of
    hover or touch-and-go reps may end on the floor, well below its baseline, but never further
    below it than it rose above it (sitting up to stand rises 40 deg and falls 130)."""
    min_return_frac: float = 0.5
    """A rep has come down once it has fallen by this fraction of its rise (hover reps come back
    to 10-15 deg above the floor, so "back to the baseline" would lose them; getting up from the
    floor rises 40 deg and falls 130: not a return)."""
    confirm_s: float = 0.25
    """Once come down, a rep also closes after this long without a new low (no rest, no rise)."""
    max_rep_s: float = 60.0
    """A candidate rep open for longer than this is dropped (sat up, walked off)."""
    tempo_speed_frac: float = 0.1
    """Stopwatch tempo: a phase starts and ends where the speed is this fraction of the rep's
    peak rising / lowering speed (README "Rep measures"; minimum-jerk raise of T reads 0.83 T)."""
    speed_window_s: float = 0.1
    """Width of the least-squares speed fit (centred; latency half of it). 0.1 s: at 100 Hz it
    cuts angle noise in the speed about 10x, and widens a 0.5 s raise's reading by < 10 ms."""

    # --- sets and flags ---
    set_rest_s: float = 15.0
    """A rest at least this long between reps starts a new set."""
    partial_frac: float = 0.7
    """``partial``: range below this fraction of the set's median range (same leg); 0.7 leaves
    room for the +-10 % rep-to-rep variation of a steady set and still catches half-way reps."""
    min_down_s: float = 1.2
    """``fast_down``: lowering (down_s) quicker than this. The exercises ask to lower over 2 s or
    more; a smooth lowering of T seconds reads 0.83 T on the stopwatch (1.66 s for 2 s), and
    reps vary by about 10 %: 1.2 s flags a lowering clearly faster than asked (< 1.45 s of
    movement), never a controlled one."""
    min_up_s: float = 0.4
    """``fast_up``: raising (up_s) quicker than this: a raise under 0.5 s of movement is a swing
    (momentum, not the hip flexors; a controlled raise takes 1-2 s)."""
    min_hold_s: float = 0.0
    """``short_hold``: hold at the top shorter than this (0 disables: holds are prescribed per
    person, e.g. 1-5 s; the stopwatch hold of a prescribed hold H reads about H + 0.1 T)."""
    target_rom_deg: float = 0.0
    """``below_target``: range below this absolute target (0 disables; set per person)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or value != value or value < 0:
                raise InputError(f"setting {f.name} must be a number >= 0, got {value!r}")
        if self.calib_min_still_s <= 0:
            raise InputError(f"calib_min_still_s must be > 0, got {self.calib_min_still_s}")

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Settings":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown settings {unknown}; known: {sorted(known)}")
        return cls(**{k: float(v) for k, v in data.items()})

    def replace(self, **changes: float) -> "Settings":
        return dataclasses.replace(self, **changes)
