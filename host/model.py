"""Values that flow between legrep's stages: legs, sample blocks, reps, sets.

All are frozen dataclasses; arrays carry their unit in the field name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .diagnostics import Diagnostics
from .errors import InputError

FloatArray = npt.NDArray[np.float64]


class Leg(str, enum.Enum):
    """Where a sensor is strapped: a thigh, or the pelvis (the optional third sensor,
    host/pelvis.py; reps are always a thigh's)."""

    LEFT = "left"
    RIGHT = "right"
    PELVIS = "pelvis"

    @classmethod
    def parse(cls, text: str) -> "Leg":
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise InputError(f"leg must be 'left' or 'right', got {text!r}") from None


@dataclass(frozen=True, slots=True)
class ImuBlock:
    """A chunk of consecutive samples from one thigh sensor.

    Attributes
    ----------
    time_s : (N,) float64, seconds, strictly increasing (gaps allowed).
    acc_g : (N, 3) float64, specific force in g (any scale; direction is what counts).
    gyr_dps : (N, 3) float64, angular rate in degrees per second.
    """

    time_s: FloatArray
    acc_g: FloatArray
    gyr_dps: FloatArray

    def __post_init__(self) -> None:
        n = self.time_s.shape[0] if self.time_s.ndim == 1 else -1
        if n < 0:
            raise InputError(f"time_s must have shape (N,), got {self.time_s.shape}")
        for name, arr in (("acc_g", self.acc_g), ("gyr_dps", self.gyr_dps)):
            if arr.shape != (n, 3):
                raise InputError(f"{name} must have shape ({n}, 3), got {arr.shape}")

    def __len__(self) -> int:
        return int(self.time_s.shape[0])

    @classmethod
    def from_arrays(cls, time_s: npt.ArrayLike, acc_g: npt.ArrayLike, gyr_dps: npt.ArrayLike) -> "ImuBlock":
        """Build a block from array-likes, converting to contiguous float64."""
        arrays = []
        for name, value in (("time_s", time_s), ("acc_g", acc_g), ("gyr_dps", gyr_dps)):
            try:
                arrays.append(np.ascontiguousarray(value, dtype=np.float64))
            except (TypeError, ValueError) as exc:
                raise InputError(f"{name} must be numeric, got {type(value).__name__}: {exc}") from None
        return cls(*arrays)


@dataclass(frozen=True, slots=True)
class Rep:
    """One closed repetition of one leg. Definitions are in README "Rep measures".

    ``set`` and ``rep`` are 0 until the set closes; ``flags`` are final once
    the set closes (``partial`` needs the whole set's typical range).
    """

    leg: Leg
    start_s: float
    peak_s: float
    end_s: float
    baseline_deg: float
    peak_deg: float
    rom_deg: float
    up_s: float
    hold_s: float
    down_s: float
    closed_s: float
    """Sample time at which the segmenter confirmed the rep (>= end_s)."""
    flags: tuple[str, ...] = ()
    set: int = 0
    rep: int = 0
    pelvis_tilt_deg: float | None = None
    """With a pelvis sensor: the largest change of pelvic tilt from its resting level during the
    rep, degrees, positive = anterior (the lower back arches); None without one (host/pelvis.py)."""


@dataclass(frozen=True, slots=True)
class SetSummary:
    """A bout of reps bounded by rests of at least ``set_rest_s``."""

    set: int
    start_s: float
    end_s: float
    left_reps: int
    right_reps: int
    uneven: bool
    exercise: str = "unknown"
    """Which exercise the set was (:data:`legrep.exercise.EXERCISES`; README "Which exercise")."""


@dataclass(frozen=True, slots=True)
class SessionResult:
    """Everything ``analyze`` finds in a session."""

    reps: tuple[Rep, ...]
    sets: tuple[SetSummary, ...]
    legs: tuple[Leg, ...]
    uneven: bool
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    """Per sensor place (``"left"``, ``"right"``, ``"pelvis"``): what each stage reported
    (calibration, fusion, mounting, reps, link, clock, vendor decoder: :mod:`legrep.diagnostics`)."""
    traces: dict[Leg, tuple[FloatArray, FloatArray]] = field(default_factory=dict)
    """Per leg: ``(time_s, hip_angle_deg)`` as the pipeline produced it (for plots)."""

    def reps_of(self, leg: Leg) -> tuple[Rep, ...]:
        return tuple(r for r in self.reps if r.leg is leg)
