"""Per-rep measures with the README's exact definitions.

baseline = resting angle before the rep; ``peak_deg`` = maximum; ``rom_deg`` = peak - baseline;
``start_s``/``end_s`` = crossings of baseline + 10 % of rom going up / coming down; top phase =
first to last time at or above baseline + 90 % of rom; ``up_s`` = top entry - start,
``hold_s`` = top exit - top entry, ``down_s`` = end - top exit. Crossing times are linearly
interpolated between samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from host.model import FloatArray


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


def _cross(t: FloatArray, a: FloatArray, i: int, j: int, level: float) -> float:
    """Time where the segment from sample i to sample j crosses ``level``."""
    ai, aj = float(a[i]), float(a[j])
    if aj == ai:
        return float(t[j])
    f = (level - ai) / (aj - ai)
    return float(t[i] + min(max(f, 0.0), 1.0) * (t[j] - t[i]))


def measure_rep(t: FloatArray, angle: FloatArray, baseline_deg: float, lo: int, peak_from: int, end: int) -> RepMeasures:
    """Measure one rep in ``angle[lo : end + 1]``.

    Parameters
    ----------
    t, angle : (N,) sample times (s) and hip angle (deg).
    baseline_deg : resting angle before the rep.
    lo : first sample that may hold the start crossing (history limit).
    peak_from : first sample of the excursion (the peak is searched in ``[peak_from, end]``).
    end : first sample at or below baseline + 10 % of rom after the peak.
    """
    seg = angle[peak_from : end + 1]
    p = peak_from + int(np.argmax(seg))
    peak = float(angle[p])
    rom = peak - baseline_deg
    lo10 = baseline_deg + 0.1 * rom
    hi90 = baseline_deg + 0.9 * rom
    # start: last sample below 10 % before the peak
    below = np.flatnonzero(angle[lo:p] < lo10)
    if len(below):
        j = lo + int(below[-1])
        start = _cross(t, angle, j, j + 1, lo10)
    else:
        j = lo
        start = float(t[lo])
    # top entry / exit
    up_idx = j + int(np.argmax(angle[j : p + 1] >= hi90))
    top_in = _cross(t, angle, up_idx - 1, up_idx, hi90) if up_idx > j else float(t[up_idx])
    above = np.flatnonzero(angle[p : end + 1] >= hi90)
    m = p + int(above[-1])
    top_out = _cross(t, angle, m, m + 1, hi90) if m < end else float(t[m])
    # end: first sample at or below 10 % after the top exit
    after = np.flatnonzero(angle[m : end + 1] <= lo10)
    q = m + int(after[0]) if len(after) else end
    end_s = _cross(t, angle, q - 1, q, lo10) if q > m else float(t[q])
    return RepMeasures(
        start_s=start,
        peak_s=float(t[p]),
        end_s=end_s,
        baseline_deg=float(baseline_deg),
        peak_deg=peak,
        rom_deg=rom,
        up_s=top_in - start,
        hold_s=top_out - top_in,
        down_s=end_s - top_out,
    )
