"""Per-rep measures: stopwatch tempo, baseline, peak and range (README "Rep measures").

For each rep let ``v_up`` be its highest rising angular speed and ``v_dn`` its highest lowering
speed. ``start_s`` = going back from the moment of ``v_up``, the first time the rising speed is
at most ``tempo_speed_frac`` (10 %) of ``v_up`` (movement onset); top entry = going forward from
that moment, the first such time; top exit and ``end_s`` likewise around the moment of ``v_dn``
(back, then forward). ``up_s`` = top entry - start, ``hold_s`` = top exit - top entry,
``down_s`` = end - top exit; ``baseline_deg`` = the angle at ``start_s``; ``peak_deg`` = the
maximum; ``rom_deg`` = peak - baseline. A smooth (minimum-jerk) raise of duration T reads
0.827 T. Speeds, the crossings and their interpolation are specified in
:mod:`legrep.reps.reference`; the C kernel computes them when it closes a rep.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model import FloatArray
from .reference import measure_window


@dataclass(frozen=True, slots=True)
class RepMeasures:
    start_s: float
    peak_s: float
    end_s: float
    baseline_deg: float
    peak_deg: float
    rom_deg: float
    up_s: float
    hold_s: float
    down_s: float


def measure_rep(t: FloatArray, angle: FloatArray, speed_half_n: int = 5, speed_frac: float = 0.1) -> RepMeasures:
    """Measure one rep whose rise starts at the first sample and which is over by the last.

    Parameters
    ----------
    t, angle : (N,) float64 sample times (s) and hip angle (deg), N >= 2.
    speed_half_n : samples each side of the speed fit (see :func:`reference.speed_half_n`).
    speed_frac : fraction of the peak speeds that marks the phase boundaries.

    Raises
    ------
    ValueError
        If the arrays are not (N,) of one length with N >= 2.
    """
    t = np.asarray(t, dtype=np.float64)
    angle = np.asarray(angle, dtype=np.float64)
    if t.ndim != 1 or t.shape != angle.shape or len(t) < 2:
        raise ValueError(f"t and angle must be (N,) arrays of one length N >= 2, got {t.shape} and {angle.shape}")
    m = measure_window(t.tolist(), angle.tolist(), [False] * len(t), 0, 0, len(t) - 1, speed_half_n, speed_frac)
    return RepMeasures(*m[:9])
