"""Per-rep measures with the README's exact definitions.

baseline = resting angle before the rep; ``peak_deg`` = maximum; ``rom_deg`` = peak - baseline;
``start_s``/``end_s`` = crossings of baseline + 10 % of rom going up / coming down; top phase =
first to last time at or above baseline + 90 % of rom; ``up_s`` = top entry - start,
``hold_s`` = top exit - top entry, ``down_s`` = end - top exit. Crossing times are linearly
interpolated between samples (and clipped to the segment).
"""

from __future__ import annotations

from dataclasses import dataclass

from .._fastcore import measure
from ..model import FloatArray


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


def measure_rep(t: FloatArray, angle: FloatArray, baseline_deg: float, lo: int, peak_from: int, end: int) -> RepMeasures:
    """Measure one rep in ``angle[lo : end + 1]`` (the module docstring defines each measure).

    The peak is the first maximum in ``[peak_from, end]``; the start crossing follows the last
    sample below 10 % before the peak (or is ``t[lo]``); the top entry is the first sample at
    or above 90 % from there, the top exit the last one up to ``end``; the end crossing
    precedes the first sample at or below 10 % after the top exit (or is ``t[end]``). The
    scans run in C (``legrep._fastcore.measure``).

    Parameters
    ----------
    t, angle : (N,) float64 sample times (s) and hip angle (deg).
    baseline_deg : resting angle before the rep.
    lo : first sample that may hold the start crossing (history limit).
    peak_from : first sample of the excursion (the peak is searched in ``[peak_from, end]``).
    end : first sample at or below baseline + 10 % of rom after the peak.

    Raises
    ------
    ValueError
        If the arrays are not float64 of one length, or unless ``0 <= lo <= peak_from <= end < N``.
    """
    return RepMeasures(*measure(t, angle, baseline_deg, lo, peak_from, end))
