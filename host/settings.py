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

    # --- reps ---
    min_rom_deg: float = 20.0
    """Excursions with a smaller range are fidgets, not reps."""
    enter_deg: float = 10.0
    """Rise above the resting level that opens a candidate rep."""
    arm_rest_s: float = 0.15
    """Stillness that establishes a resting level a rep can start from."""
    undershoot_deg: float = 8.0
    """Going this far below the resting level (or 20 % of range) rejects the rep."""
    confirm_s: float = 0.25
    """After the angle returns, wait this long for an undershoot before counting."""
    max_rep_s: float = 60.0
    """A candidate rep open for longer than this is dropped."""

    # --- sets and flags ---
    set_rest_s: float = 15.0
    """A rest at least this long between reps starts a new set."""
    partial_frac: float = 0.7
    """``partial``: range below this fraction of the set's median range (same leg)."""
    min_down_s: float = 1.0
    """``fast_down``: lowering (down_s) quicker than this."""
    min_up_s: float = 0.4
    """``fast_up``: raising (up_s) quicker than this (swinging the leg up)."""
    min_hold_s: float = 0.0
    """``short_hold``: hold at the top shorter than this (0 disables)."""
    target_rom_deg: float = 0.0
    """``below_target``: range below this absolute target (0 disables)."""

    # --- which exercise, one leg at a time (host/exercise.py; README "Which exercise") ---
    exercise_bent_knee_deg: float = 38.0
    """Baseline elevation (deg, 0-90) at or above which a lying raise is a bent-knee raise: the
    thigh rests at 40-60 deg with the feet on the floor, a straight leg near 0 (+ up to ~25 for
    the sensor's lean, see exercise.py) and a hovering one at 10-15."""
    exercise_prone_deg: float = 4.0
    """Baseline more than this below horizontal (deg, 0-45), raised upward: face down (plank
    leg lift, hip extension); a plank thigh slopes ~10 deg down."""
    exercise_upright_deg: float = 50.0
    """Baseline more than this below horizontal (deg, 45-89): the thigh hangs (standing, or
    kneeling on all fours); forward of vertical is a hip flexion, behind it a bird dog."""
    exercise_max_deg: float = 110.0
    """Baseline above this (deg): no exercise we know starts there -> unknown."""
    exercise_min_margin_deg: float = 30.0
    """Baselines within this of -180 deg (the thigh would be raised downward) -> unknown."""
    exercise_double_frac: float = 0.5
    """A set is a double-leg raise when at least this share (0-1) of its reps are ``both_legs``."""
    both_legs_overlap_frac: float = 0.5
    """``both_legs``: a rep's [start_s, end_s] overlaps one of the other leg by at least this
    share (0-1) of the shorter of the two (alternating legs overlap 0; a double lift ~1)."""

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
