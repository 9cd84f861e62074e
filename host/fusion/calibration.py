"""Calibration from the first rest anywhere in a stream.

A person does not start a session on cue: they settle, adjust a strap or start straight
into a set. The calibration therefore waits for the first *rest* of at least
``calib_min_still_s`` wherever it comes, and takes from it the gyro bias (mean rate), the
gravity reference (mean accelerometer; its direction is what counts) and the neutral pose
(the hip angle is 0 there). Samples before that rest are kept and analysed afterwards (the
orientation stage runs back in time from the rest over them), so nothing is lost.

Stillness is judged on windows of ``calib_window_s``, never on a single sample: a window is
quiet when, with its single worst sample left out (one outlier cannot break a rest),

* the rms deviation of the rate from the window's mean is under ``calib_gyro_dps`` (a
  standing person's sway, 2-6 deg/s, and MEMS gyro noise pass; movement does not),
* the rms deviation of the accelerometer from its mean is under ``calib_acc_g`` per g
  (accelerometer noise up to 15 mg rms per axis passes),
* gravity's direction (per-axis medians) turns less than ``calib_tilt_deg`` between the
  window's first and last quarter (a slow steady turn has a small variance but moves gravity),
* the rate's median is under ``calib_max_rate_dps`` (a turn about gravity itself, such as
  turning round while standing, moves neither the variance nor gravity).

A rest is a run of samples covered by consecutive quiet windows. It is used when it ends (the
last 0.1 s, where motion starts undetectably, is dropped) or reaches ``calib_max_s``. The
gyro bias is the mean rate corrected by gravity's turn over the rest (sway does not average
to zero in half a second: its part normal to gravity shows as gravity turning).

Every decision depends only on samples up to the current one and on the first 64 steps
(nominal step), so any chunking of a stream calibrates at the same sample with the same values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import CalibrationError
from ..model import FloatArray
from ..settings import Settings

DT_PROBE_STEPS = 64
"""The nominal step is the median of the stream's first this many steps."""
ONSET_DROP_S = 0.1
"""Samples this close to the motion that ends a rest are left out of the calibration means."""
RAD2DEG = 180.0 / np.pi


@dataclass(frozen=True, slots=True)
class Calibration:
    """Result of calibration.

    Attributes
    ----------
    gyro_bias_dps : (3,) gyro bias at the rest, deg/s.
    gravity_ref : (3,) mean accelerometer vector at the rest (sensor units, about 1 g).
    dt_nominal_s : nominal sample step (median of the first steps), s.
    still_s : duration of the rest used, s.
    start_index : stream index of the rest's first sample (the orientation stage starts there;
        samples before it are analysed backward from it).
    start_s : time of that sample, s.
    sway_dps : rms of the rate about its mean over the rest, deg/s (a standing person sways
        2-6 deg/s; a leg lying or kneeling still shows the gyro's noise, under 0.5 deg/s).
    bias_se_dps : standard error of the gyro bias (norm over the axes, deg/s) by the fit that
        corrects it for gravity's turn over the rest: a short rest of a person settling leaves
        the bias several deg/s off, and this tells (0.1-0.3 for a rest of 1.5 s, swaying or not;
        about 2 for 0.4 s of a body still shifting).
    """

    gyro_bias_dps: FloatArray
    gravity_ref: FloatArray
    dt_nominal_s: float
    still_s: float
    start_index: int
    start_s: float
    sway_dps: float = 0.0
    bias_se_dps: float = 0.0


class Calibrator:
    """Buffers a stream until its first rest; ``update`` returns a Calibration once found.

    After calibration :meth:`buffered` holds every sample seen so far (the caller analyses
    them, from ``start_index`` forward and before it backward).
    """

    def __init__(self, settings: Settings, name: str = "sensor") -> None:
        self.s = settings
        self.name = name
        self._t: list[FloatArray] = []
        self._a: list[FloatArray] = []
        self._g: list[FloatArray] = []
        self._n = 0
        self._dt: float | None = None
        self._w = 0
        self._done = 0  # samples whose window has been judged
        self._quiet: list[np.ndarray] = []
        self._run_start = -1  # first sample of the current rest, or -1
        self._best = (0.0, float("nan"))  # longest rest so far: (length s, start s)
        self.calibration: Calibration | None = None

    def buffered(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """All samples received so far, as (t (N,), acc (N, 3), gyr (N, 3))."""
        self._consolidate()
        if not self._t:
            return np.empty(0), np.empty((0, 3)), np.empty((0, 3))
        return self._t[0], self._a[0], self._g[0]

    def _consolidate(self) -> None:
        if len(self._t) > 1:
            self._t = [np.concatenate(self._t)]
            self._a = [np.concatenate(self._a)]
            self._g = [np.concatenate(self._g)]

    def update(self, t: FloatArray, acc: FloatArray, gyr: FloatArray) -> Calibration | None:
        """Feed samples; return the calibration when the first rest is complete."""
        if self.calibration is not None:
            raise RuntimeError("calibration is complete; feed later samples to the next stage")
        if len(t):
            self._t.append(np.asarray(t, dtype=np.float64))
            self._a.append(np.asarray(acc, dtype=np.float64))
            self._g.append(np.asarray(gyr, dtype=np.float64))
            self._n += len(t)
        if self._dt is None:
            if self._n <= DT_PROBE_STEPS:
                return None
            self._set_dt()
        return self._scan(final=False)

    def finish(self) -> Calibration:
        """End of stream while calibrating: a rest in progress that is long enough is used.

        Raises
        ------
        CalibrationError
            If the stream has no rest of ``calib_min_still_s``; names the longest quiet stretch.
        """
        if self._dt is None and self._n >= 2:
            self._set_dt()
        cal = self._scan(final=True) if self._dt is not None else None
        if cal is not None:
            return cal
        length, start = self._best
        s = self.s
        found = (
            f"the longest quiet stretch was {length:.2f} s at t={start:.2f} s"
            if length > 0
            else "the longest quiet stretch was 0 s (no quiet window anywhere)"
        )
        raise CalibrationError(
            f"{self.name}: expected a still rest of at least {s.calib_min_still_s:g} s somewhere in the stream "
            f"(rate within {s.calib_gyro_dps:g} deg/s rms, gravity steady) to calibrate, got none in "
            f"{self._n} samples: {found}"
        )

    # ------------------------------------------------------------------ machinery
    def _set_dt(self) -> None:
        self._consolidate()
        tt = self._t[0]
        dt = float(np.median(np.diff(tt[: DT_PROBE_STEPS + 1])))
        if not dt > 0:
            raise CalibrationError(f"{self.name}: sample times must increase, got median step {dt}")
        self._dt = dt
        self._w = max(4, round(self.s.calib_window_s / dt))

    def _quiet_windows(self, lo: int, tt: FloatArray, aa: FloatArray, gg: FloatArray) -> np.ndarray:
        """Quiet flag of the window ending at each sample from ``lo`` (see the module docstring)."""
        w, s = self._w, self.s
        first = max(lo, w - 1)
        out = np.zeros(len(tt) - lo, dtype=bool)
        if first >= len(tt):
            return out
        gw = sliding_window_view(gg[first - w + 1 :], w, axis=0)  # (M, 3, w)
        aw = sliding_window_view(aa[first - w + 1 :], w, axis=0)
        a_mean = aw.mean(axis=2)
        norm = np.linalg.norm(a_mean, axis=1)

        def trimmed_ms(win: np.ndarray) -> np.ndarray:
            dev2 = ((win - win.mean(axis=2, keepdims=True)) ** 2).sum(axis=1)  # (M, w)
            out: np.ndarray = (dev2.sum(axis=1) - dev2.max(axis=1)) / (w - 1)
            return out

        q = max(3, w // 4)
        head = np.median(aw[:, :, :q], axis=2)  # medians: one knock does not turn gravity
        tail = np.median(aw[:, :, -q:], axis=2)
        cos = (head * tail).sum(axis=1) / np.maximum(np.linalg.norm(head, axis=1) * np.linalg.norm(tail, axis=1), 1e-300)
        rate = np.linalg.norm(np.median(gw, axis=2), axis=1)
        quiet = (
            (trimmed_ms(gw) < s.calib_gyro_dps**2)
            & (trimmed_ms(aw) < (s.calib_acc_g * norm) ** 2)
            & (cos > np.cos(np.radians(s.calib_tilt_deg)))
            & (rate < s.calib_max_rate_dps)
            & (norm > 0)
        )
        out[first - lo :] = quiet
        return out

    def _scan(self, final: bool) -> Calibration | None:
        self._consolidate()
        if not self._t:
            return None
        tt, aa, gg = self._t[0], self._a[0], self._g[0]
        n = len(tt)
        lo = self._done
        quiet = self._quiet_windows(lo, tt, aa, gg)
        self._done = n
        w, s = self._w, self.s
        # walk the runs of quiet windows in order
        i = lo
        while i < n:
            q = quiet[i - lo]
            if self._run_start < 0:
                if not q:
                    nxt = np.flatnonzero(quiet[i - lo :])
                    if not len(nxt):
                        break
                    i += int(nxt[0])
                    continue
                self._run_start = i - w + 1
            # inside a rest: find where it ends or reaches calib_max_s
            rest = quiet[i - lo :]
            ends = np.flatnonzero(~rest)
            end = i + int(ends[0]) if len(ends) else n  # first non-quiet window (exclusive)
            t0 = tt[self._run_start]
            cap = np.flatnonzero(tt[i:end] - t0 >= s.calib_max_s)
            if len(cap):
                last = i + int(cap[0])
                return self._calibrate(tt, aa, gg, self._run_start, last + 1, drop_onset=False)
            if end < n or final:
                last = end - 1
                length = float(tt[last] - t0)
                if length > self._best[0]:
                    self._best = (length, float(t0))
                if length >= s.calib_min_still_s:
                    return self._calibrate(tt, aa, gg, self._run_start, last + 1, drop_onset=end < n)
                self._run_start = -1
                i = end + 1
                continue
            break  # the rest goes on past the samples we have
        if final and self._run_start >= 0 and self._done == n and i >= n:
            # end of stream inside a rest
            length = float(tt[n - 1] - tt[self._run_start])
            if length > self._best[0]:
                self._best = (length, float(tt[self._run_start]))
            if length >= s.calib_min_still_s:
                return self._calibrate(tt, aa, gg, self._run_start, n, drop_onset=False)
        return None

    @staticmethod
    def _sway_corrected(t: FloatArray, a: FloatArray, g: FloatArray, grav: FloatArray, bias: FloatArray) -> tuple[FloatArray, float]:
        """The bias corrected for gravity's turn over the rest (or ``bias`` as it is), and the
        fit's standard error (norm over the axes, deg/s; 0 when there is no fit)."""
        n = len(t)
        if n < 8:
            return bias, 0.0
        u0 = grav / np.linalg.norm(grav)
        ahat = a / np.linalg.norm(a, axis=1, keepdims=True)
        dt = np.diff(t, prepend=t[0])
        y = np.cumsum(g * dt[:, None], axis=0) + np.cross(u0, ahat) * RAD2DEG  # deg
        tc = t - t.mean()
        sxx = float(tc @ tc)
        if not sxx > 0:
            return bias, 0.0
        slope = tc @ (y - y.mean(axis=0)) / sxx  # (3,) deg/s
        resid = y - y.mean(axis=0) - np.outer(tc, slope)
        se = np.sqrt((resid**2).sum(axis=0) / max(1, n - 2) / sxx)
        perp = slope - u0 * (u0 @ slope)
        plain_perp = bias - u0 * (u0 @ bias)
        se_norm = float(np.linalg.norm(se))
        if float(np.linalg.norm(perp - plain_perp)) > 3.0 * se_norm:
            corrected: FloatArray = perp + u0 * (u0 @ bias)
            return corrected, se_norm
        return bias, se_norm

    def _calibrate(self, tt: FloatArray, aa: FloatArray, gg: FloatArray, lo: int, hi: int, drop_onset: bool) -> Calibration:
        if drop_onset:
            cut = int(np.searchsorted(tt, tt[hi - 1] - ONSET_DROP_S))
            if cut - lo >= 2:  # keep at least two samples
                hi = cut
        a = aa[lo:hi]
        g = gg[lo:hi]
        grav = a.mean(axis=0)
        if not np.linalg.norm(grav) > 0:
            raise CalibrationError(f"{self.name}: accelerometer reads zero during the rest at t={tt[lo]:.2f} s; is it connected?")
        bias = g.mean(axis=0)
        # sway: gravity turning over the rest is rotation the mean rate contains, not bias.
        # Seen from the sensor, up turns by -w: u0 x a_hat(t) = -int (w - b)_perp dt, so
        # int w dt + u0 x a_hat(t) is a line of slope b_perp in t (any sway shape). Its fit is
        # used when it differs from the plain mean by more than 3 of its standard errors.
        bias, bias_se = self._sway_corrected(tt[lo:hi], a, g, grav, bias)
        assert self._dt is not None
        cal = Calibration(
            gyro_bias_dps=bias,
            gravity_ref=grav,
            dt_nominal_s=self._dt,
            still_s=float(tt[hi - 1] - tt[lo]),
            start_index=int(lo),
            start_s=float(tt[lo]),
            sway_dps=float(np.sqrt(((g - g.mean(axis=0)) ** 2).sum(axis=1).mean())),
            bias_se_dps=bias_se,
        )
        self.calibration = cal
        return cal
