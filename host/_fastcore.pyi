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

class TiltKernel:
    """The orientation stage of one sensor (host/fusion/reference.py is its specification)."""

    n_gaps: int
    max_gap_s: float
    n_bias_updates: int
    n_acc_bias_updates: int
    n_gap_snaps: int
    n_samples: int
    n_still: int
    @property
    def gyro_bias_dps(self) -> tuple[float, float, float]: ...
    @property
    def acc_bias_g(self) -> tuple[float, float, float]: ...
    @property
    def lever_m(self) -> tuple[float, float, float]: ...
    def __init__(
        self,
        *,
        gravity0: Any,
        gyro_bias0_dps: Any,
        tau_acc_s: float,
        bias_motion_tau_s: float,
        still_n: int,
        still_gyro_dps: float,
        bias_n: int,
        rest_gyro_dps: float,
        rest_acc_g: float,
        rest_tilt_deg: float,
        bias_jump_dps: float,
        bias_gain: float,
        max_gap_s: float,
        dt_nominal_s: float,
        t_prev_s: float,
        acc_bias_memory: float,
        acc_bias_ridge: float,
        acc_bias_max_g: float,
        gap_s: float,
        lever_tau_s: float,
        lever_min_dps: float,
        lever_ridge: float,
        lever_max_m: float,
        acc_bias_step_deg: float,
        gap_tau_acc_s: float,
        gap_recover_s: float,
        tau_acc2_s: float,
        acc_bias_turn_deg: float,
        still_bias_dps: float,
        bias_motion_fast_tau_s: float,
        bias_unsure: bool,
    ) -> None: ...
    def run(
        self,
        time_s: _F,
        acc_g: _F,
        gyr_dps: _F,
        up_out: _F,
        uref_out: _F,
        still_out: _B,
        rest_out: _B,
        quat_out: _F | None = None,
        lever_out: _F | None = None,
        /,
    ) -> None: ...

def tilt_angles(up: _F, u_ref: _F, axis: Any, offset_deg: float, angle_out_deg: _F, /) -> None: ...

def hip_angles(
    up: _F, g_ref: _F, quat: _F, long_axis: Any, long_ref: Any, axis_ref: Any, offset_deg: float, angle_out_deg: _F, /
) -> None: ...
def first_movement(time_s: _F, rate_dps: _F, still: Any, min_rotation_deg: float, t_prev_s: float, /) -> tuple[int, int] | None: ...
def window_means(x: _F, rest: Any, n: int, out: _F, /) -> None: ...

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
        floor_margin_deg: float,
        held_rise_min_rom_deg: float,
    ) -> None: ...
    def advance(self, time_s: _F, angle_deg: _F, arm: _B, still: _B, base: int, /) -> list[_RepTuple]: ...
    def finish(self, time_s: _F, angle_deg: _F, still: _B, base: int, /) -> list[_RepTuple]: ...
    def oldest_needed(self) -> int: ...

def arm_flags(still: _B, run: int, arm_n: int, arm_out: _B, /) -> int: ...
def measure(
    time_s: _F, angle_deg: _F, rest: _B, lo: int, s0: int, c: int, speed_half_n: int, speed_frac: float, /
) -> tuple[float, float, float, float, float, float, float, float, float, float]: ...
def plane_angles(
    up: _F, u_ref: _F, g_ref: _F, quat: _F, axis: Any, offset_deg: float, long_axis: Any, long_ref: Any, axis_ref: Any,
    max_correction_deg: float, angle_out_deg: _F, /,
) -> None: ...
def movement_anchor(
    rate_dps: _F, still: _B, rest: _B, ok: _B, dt_s: float, turned_deg: float, anchored_deg: float, rotation_deg: float, /,
) -> int: ...
def rows_minus(x: _F, v: Any, out: _F, /) -> None: ...
def level_tests(
    up: _F, u_ref: _F, angle_ev: _F, along: _F, ref_along: _F | float, axis: Any, offset_deg: float, zone_deg: float,
    posture_deg: float, slip_sin: float, slip_far_sin: float, anchor_sin: float, rate_dps: _F, still: _B, rest: _B,
    dt_s: float, turned_deg: float, anchored_deg: float, rotation_deg: float, /,
) -> tuple[int, int, float]: ...
def movement_sums(rate_dps: _F, still: _B, n: int, dt_s: float, turned_deg: float, cov: _F, cov_out: _F, /) -> float: ...
def rest_angles(acc_means: _F, raw_ref: Any, axis: Any, offset_deg: float, angle_out_deg: _F, /) -> None: ...
def first_lower_rest(
    acc_means: _F, n: int, raw_ref: Any, axis: Any, offset_deg: float, lo_deg: float, hi_deg: float, /
) -> tuple[int, float] | None: ...
def anchor_frame(
    quat: Any, up: Any, g_ref: Any | None, axis: Any, long_axis: Any, turn_deg: float, /
) -> tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]: ...
def level_axis(axis: Any, up_ref: Any, /) -> tuple[float, float, float]: ...
def long_axis_flat(axis: Any, up_ref: Any, /) -> tuple[float, float, float]: ...
def long_axis_from_lever(axis: Any, up_ref: Any, lever_m: Any, lever_min_m: float, /) -> tuple[float, float, float]: ...
def row_offset(part: npt.NDArray[Any], whole: npt.NDArray[Any], /) -> int | None: ...
def posture_rows(
    wd: _F, w2: _F, alpha: _F, cos: _F, sin: _F, acc: _F, axis: Any, f_b: Any, axis_x_f_b: Any, axis_dot_f_b: float,
    g_norm: float, design_out: _F, resid_out: _F, /,
) -> None: ...
