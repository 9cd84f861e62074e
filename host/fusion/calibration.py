"""Start-of-stream calibration from the still neutral pose.

The person holds the neutral pose (lying flat, legs straight; or standing tall)
for at least ``calib_min_still_s``. From that period we take the gyro bias (mean
rate) and the gravity reference (mean accelerometer *direction* — its magnitude
may be off by the accelerometer's scale error). Stillness is judged against the
running mean, so any constant gyro bias (up to several °/s) is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import CalibrationError
from ..model import FloatArray
from ..settings import Settings


@dataclass(frozen=True, slots=True)
class Calibration:
    """Result of the still start.

    Attributes
    ----------
    gyro_bias_dps : (3,) mean angular rate during the still pose, °/s.
    gravity_ref : (3,) mean accelerometer vector in the neutral pose (sensor units, ~1 g).
    dt_nominal_s : median sample interval during calibration, s.
    still_s : duration of the still period used, s.
    n_samples : samples consumed by calibration (their hip angle is 0).
    """

    gyro_bias_dps: FloatArray
    gravity_ref: FloatArray
    dt_nominal_s: float
    still_s: float
    n_samples: int


class Calibrator:
    """Collects the still start of a stream; ``update`` returns a Calibration once done.

    Chunk-invariant: each sample is judged against the mean of the samples before it,
    so any chunking of the same stream ends calibration at the same sample.
    """

    def __init__(self, settings: Settings, name: str = "sensor") -> None:
        self.settings = settings
        self.name = name
        self._t: list[FloatArray] = []
        self._a: list[FloatArray] = []
        self._g: list[FloatArray] = []

    def reset(self) -> None:
        self._t.clear()
        self._a.clear()
        self._g.clear()

    def update(self, t: FloatArray, acc: FloatArray, gyr: FloatArray) -> Calibration | None:
        """Feed samples; return the calibration when the still start is complete.

        Raises
        ------
        CalibrationError
            If the stream moves before ``calib_min_still_s`` of stillness.
        """
        self._t.append(t)
        self._a.append(acc)
        self._g.append(gyr)
        tt = np.concatenate(self._t)
        aa = np.concatenate(self._a)
        gg = np.concatenate(self._g)
        n = len(tt)
        if n < 2:
            return None
        s = self.settings
        counts = np.arange(1, n, dtype=np.float64)[:, None]
        g_mean_prev = np.cumsum(gg, axis=0)[:-1] / counts
        a_mean_prev = np.cumsum(aa, axis=0)[:-1] / counts
        g_dev = np.linalg.norm(gg[1:] - g_mean_prev, axis=1)
        a_dev = np.linalg.norm(aa[1:] - a_mean_prev, axis=1)
        a_tol = s.calib_acc_tol_g * np.linalg.norm(a_mean_prev, axis=1)
        moving = (g_dev > s.calib_gyro_tol_dps) | (a_dev > a_tol)
        # cap: enough stillness collected -> calibrate from the first calib_max_s
        enough = np.flatnonzero(tt - tt[0] >= s.calib_max_s)
        first_move = int(np.argmax(moving)) + 1 if moving.any() else None
        if first_move is not None and (not len(enough) or first_move <= enough[0]):
            still_s = float(tt[first_move - 1] - tt[0])
            if still_s < s.calib_min_still_s:
                raise CalibrationError(
                    f"{self.name}: expected the session to start still in the neutral pose for at least "
                    f"{s.calib_min_still_s:g} s, got movement after {still_s:.2f} s "
                    f"(at t={tt[first_move]:.3f} s)"
                )
            # motion starts a little before it is detectable: drop the last 0.1 s
            use = max(2, int(np.searchsorted(tt, tt[first_move] - 0.1)))
            end = first_move
        elif len(enough):
            use = end = int(enough[0]) + 1
        else:
            return None
        dt = float(np.median(np.diff(tt[:end]))) if end > 1 else 0.01
        if not dt > 0:
            raise CalibrationError(f"{self.name}: sample times must increase, got median step {dt}")
        calib = Calibration(
            gyro_bias_dps=gg[:use].mean(axis=0),
            gravity_ref=aa[:use].mean(axis=0),
            dt_nominal_s=dt,
            still_s=float(tt[use - 1] - tt[0]),
            n_samples=end,
        )
        if not np.linalg.norm(calib.gravity_ref) > 0:
            raise CalibrationError(f"{self.name}: accelerometer reads zero during the still start; is it connected?")
        self._rest = (tt[end:], aa[end:], gg[end:])
        self.calibration_times_s = tt[:end]
        self.reset()
        return calib

    def leftover(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Samples after the calibration period from the chunk that completed it."""
        return self._rest

    def finish_short(self) -> Calibration | None:
        """End of stream while still calibrating: accept it if long enough, else None."""
        if not self._t:
            return None
        tt = np.concatenate(self._t)
        if len(tt) < 2 or tt[-1] - tt[0] < self.settings.calib_min_still_s:
            return None
        aa = np.concatenate(self._a)
        gg = np.concatenate(self._g)
        self.calibration_times_s = tt
        self._rest = (tt[:0], aa[:0], gg[:0])
        self.reset()
        return Calibration(gg.mean(axis=0), aa.mean(axis=0), float(np.median(np.diff(tt))), float(tt[-1] - tt[0]), len(tt))
