"""Type stub of the C extension ``legrep._fastcore`` (source: host/_fastcore.c).

Arrays are read through the buffer protocol: float64 or bool as stated, any strides.
Wrong dtypes, shapes or lengths raise ValueError naming the argument, what was expected
and what arrived.
"""

from typing import Any

import numpy as np
import numpy.typing as npt

_F = npt.NDArray[np.float64]
_B = npt.NDArray[np.bool_]

class AngleKernel:
    """The per-sample loop of ``HipAngleEstimator`` (state carried between ``run`` calls)."""

    n_gaps: int
    max_gap_s: float
    n_anchors: int
    anchor_total_deg: float
    n_gap_anchors: int
    n_bias_updates: int
    n_samples: int
    n_still: int
    @property
    def gyro_bias_dps(self) -> tuple[float, float, float]: ...
    def __init__(
        self,
        *,
        axis: Any,
        gyro_bias0_dps: Any,
        gyro_bias_dps: Any,
        gravity_ref: Any,
        still_n: int,
        anchor_n: int,
        bias_n: int,
        still_gyro_dps: float,
        still_mean_dps: float,
        rest_tilt_deg: float,
        bias_gain: float,
        bias_jump_dps: float,
        gap_s: float,
        max_gap_s: float,
        anchor_max_error_deg: float,
        soft_zone_deg: float,
        soft_gain: float,
        dt_nominal_s: float,
        t_prev_s: float,
        run: int,
        run_s: int,
    ) -> None: ...
    def run(self, time_s: _F, acc_g: _F, gyr_dps: _F, angle_out_deg: _F, rest_out: _B, /) -> None: ...

_RepTuple = tuple[float, float, float, float, float, float, float, float, float, int]

class RepMachine:
    """The rep state machine of ``RepSegmenter`` (specification: ``legrep.reps.reference``)."""

    pos: int
    mode: int
    n_rejected: int
    n_fidgets: int
    @property
    def level_deg(self) -> float | None: ...
    def __init__(
        self,
        *,
        enter_deg: float,
        undershoot_deg: float,
        undershoot_frac: float,
        chained_undershoot_frac: float,
        min_rom_deg: float,
        min_return_frac: float,
        max_rep_s: float,
        confirm_s: float,
        speed_frac: float,
        speed_half_n: int,
    ) -> None: ...
    def advance(self, time_s: _F, angle_deg: _F, arm: _B, base: int, /) -> list[_RepTuple]: ...
    def finish(self, time_s: _F, angle_deg: _F, base: int, /) -> list[_RepTuple]: ...
    def oldest_needed(self) -> int: ...

def arm_flags(still: _B, run: int, arm_n: int, arm_out: _B, /) -> int: ...
def measure(
    time_s: _F, angle_deg: _F, lo: int, s0: int, c: int, speed_half_n: int, speed_frac: float, /
) -> tuple[float, float, float, float, float, float, float, float, float, float]: ...
