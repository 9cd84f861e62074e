"""An independent (numpy) stopwatch-tempo reading of an exactly known angle, for tests.

Written from the README definitions without legrep's code: on a fine grid the speed is the
exact derivative, so this is the tempo a perfect sensor and a perfect stopwatch would give.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAC = 0.1


@dataclass(frozen=True)
class Tempo:
    leg: str
    start_s: float
    peak_s: float
    end_s: float
    baseline_deg: float
    peak_deg: float
    up_s: float
    hold_s: float
    down_s: float


def stopwatch(t: np.ndarray, angle: np.ndarray, leg: str = "left", frac: float = FRAC) -> Tempo:
    """Stopwatch measures of one rep sampled finely in ``t`` (rise, top, descent, all inside)."""
    v = np.gradient(angle, t)
    p = int(np.argmax(angle))
    iu = int(np.argmax(v[: p + 1]))
    idn = p + int(np.argmin(v[p:]))
    up_thr, dn_thr = frac * v[iu], frac * v[idn]
    before = np.flatnonzero(v[:iu] <= up_thr)
    start_i = int(before[-1]) if len(before) else 0
    top_in_i = iu + int(np.flatnonzero(v[iu:] <= up_thr)[0])
    top_out_i = int(np.flatnonzero(v[:idn] >= dn_thr)[-1])
    after = np.flatnonzero(v[idn:] >= dn_thr)
    end_i = idn + int(after[0]) if len(after) else len(t) - 1
    return Tempo(
        leg, float(t[start_i]), float(t[p]), float(t[end_i]), float(angle[start_i]), float(angle[p]),
        float(t[top_in_i] - t[start_i]), float(t[top_out_i] - t[top_in_i]), float(t[end_i] - t[top_out_i]),
    )  # fmt: skip


def minimum_jerk_rep(rate_hz: float, up_s: float, hold_s: float, down_s: float, rom_deg: float,
                     base_deg: float = 0.0, rest_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """A rest, a minimum-jerk raise of ``up_s``, a hold, a minimum-jerk lowering, a rest."""
    t = np.arange(0.0, rest_s + up_s + hold_s + down_s + rest_s, 1.0 / rate_hz)

    def mj(x: np.ndarray) -> np.ndarray:
        x = np.clip(x, 0.0, 1.0)
        return 10 * x**3 - 15 * x**4 + 6 * x**5

    a = mj((t - rest_s) / up_s) - mj((t - rest_s - up_s - hold_s) / down_s)
    return t, base_deg + rom_deg * a
