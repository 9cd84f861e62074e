"""Sensor clock -> session clock (docs/protocol.md section 6).

Each sensor stamps samples with its own free-running 32 768 Hz clock, which drifts against the host
(crystal tolerance, up to about +-100 ppm). :class:`ClockMapper` maps one sensor's (unwrapped) ticks onto
the session clock: seconds since the session origin on the host's monotonic clock. Model::

    host_s - origin_s = x + c + e * x,        x = ticks / 32768 - x0

* ``e`` (drift of the sensor clock against the host) from the data stream: a packet never arrives
  before its last sample was taken, so ``arrival - x`` is ``c + e x`` plus a positive latency. The
  minimum per window of ``window_s`` (the lower envelope) is fitted with a line, one outlier pass.
* ``c`` from TIME_SYNC exchanges when there are any (midpoint of the shortest round trips), else the
  lowest point of the envelope.
* Fits use a bounded recent history: the envelope points and TIME_SYNC exchanges of the last
  ``fit_span_s`` sensor seconds (10 minutes by default), so a refit costs the same after 8 hours as
  after 10 minutes, and a slowly wandering crystal (temperature) is followed.
* The mapping is **monotonic and continuous**: when an estimate changes, the mapped clock slews towards
  it at most ``max_slew`` (seconds per second) instead of jumping.

I/O free and deterministic: the same calls in the same order give the same times (replay relies on it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._replaycore import fit_drift as _fit_drift
from .diagnostics import ClockDiagnostics

FloatArray = npt.NDArray[np.float64]
TICKS_PER_S = 32768.0


def fit_line_reference(x: list[float], y: list[float]) -> tuple[float, float]:
    """``(slope, intercept)`` of the least-squares line through ``(x, y)``, from centred sums taken
    in order (the C kernel ``legrep._replaycore.fit_drift`` does exactly these operations)."""
    n = len(x)
    sx = sy = 0.0
    for xi, yi in zip(x, y):
        sx += xi
        sy += yi
    mx, my = sx / n, sy / n
    sxx = sxy = 0.0
    for xi, yi in zip(x, y):
        dx = xi - mx
        sxx += dx * dx
        sxy += dx * (yi - my)
    slope = sxy / sxx if sxx > 0.0 else 0.0
    return slope, my - slope * mx


def _median(v: list[float]) -> float:
    s = sorted(v)
    h = len(s) // 2
    return s[h] if len(s) % 2 else (s[h - 1] + s[h]) / 2.0


def fit_drift_reference(xs: list[float], rs: list[float], min_span_s: float, max_drift: float) -> float:
    """The drift from the envelope points ``(xs, rs)`` (plain Python; the reference of
    ``legrep._replaycore.fit_drift``, which :class:`ClockMapper` runs): 0 until the points span
    ``min_span_s``; else a line through them, then once more without the points far above it
    (more than 4 scaled MADs above the median residual), clipped to ``+-max_drift``."""
    n = len(xs)
    if not (n >= 3 and xs[-1] - xs[0] >= min_span_s):
        return 0.0
    slope, icept = fit_line_reference(xs, rs)
    resid = [r - (icept + slope * x) for x, r in zip(xs, rs)]
    med = _median(resid)
    mad = _median([abs(v - med) for v in resid]) + 1e-6
    limit = med + 4.0 * 1.4826 * mad
    kept = [(x, r) for x, r, v in zip(xs, rs, resid) if v <= limit]
    if 3 <= len(kept) < n:
        slope, icept = fit_line_reference([k[0] for k in kept], [k[1] for k in kept])
    return min(max(slope, -max_drift), max_drift)


@dataclass(frozen=True, slots=True)
class ClockEstimate:
    """The current mapping: ``session_s = x + offset_s + drift * x`` with ``x = ticks/32768 - x0_s``."""

    x0_s: float
    offset_s: float
    drift: float
    windows: int
    synced: bool

    @property
    def drift_ppm(self) -> float:
        """Host seconds per sensor second minus one, in ppm (a sensor clock running fast gives < 0)."""
        return self.drift * 1e6


class ClockMapper:
    """Map one sensor's ticks onto the session clock.

    Parameters
    ----------
    origin_host_s : host monotonic time of the session start (session time 0).
    window_s : envelope window length in sensor seconds.
    min_span_s : the drift is assumed 0 until the closed windows span at least this long.
    max_slew : largest correction rate of the mapped clock, seconds per second.
    max_drift_ppm : estimates beyond this are clipped (no real crystal is that bad).
    fit_span_s : only observations this recent (sensor seconds before the newest) enter a fit;
        older ones are dropped (the last ``min_syncs_kept`` TIME_SYNC exchanges are always kept).
    """

    min_syncs_kept = 3

    def __init__(
        self,
        origin_host_s: float = 0.0,
        window_s: float = 2.0,
        min_span_s: float = 10.0,
        max_slew: float = 0.005,
        max_drift_ppm: float = 2000.0,
        fit_span_s: float = 600.0,
    ) -> None:
        if window_s <= 0 or max_slew <= 0 or max_slew >= 0.5:
            raise ValueError(f"need window_s > 0 and 0 < max_slew < 0.5, got {window_s}, {max_slew}")
        if not fit_span_s >= max(min_span_s, window_s):
            raise ValueError(f"fit_span_s must be >= min_span_s and window_s, got {fit_span_s}")
        self.fit_span_s = float(fit_span_s)
        self.origin_host_s = float(origin_host_s)
        self.window_s = float(window_s)
        self.min_span_s = float(min_span_s)
        self.max_slew = float(max_slew)
        self.max_drift = max_drift_ppm * 1e-6
        self._x0: float | None = None
        # Envelope: the closed windows' points (x, r) (rows 0 and 1 of _win, columns _w0.._w1) and
        # the open window's.
        self._win = np.empty((2, 64))
        self._w0 = self._w1 = 0
        self._windows_closed = 0
        self._open_index: int | None = None
        self._open_point: tuple[float, float] | None = None
        # TIME_SYNC points: (x, r_mid, rtt).
        self._syncs: list[tuple[float, float, float]] = []
        self._drift = 0.0
        self._offset: float | None = None
        # Last mapped sample (x, session_s).
        self._last: tuple[float, float] | None = None
        self.max_correction_s = 0.0

    # ------------------------------------------------------------------ observations
    def _x(self, ticks: float) -> float:
        s = ticks / TICKS_PER_S
        if self._x0 is None:
            self._x0 = s
        return s - self._x0

    def observe_packet(self, last_sample_ticks: int, arrival_host_s: float) -> None:
        """A live (not re-sent) packet whose last sample was taken at ``last_sample_ticks`` arrived."""
        x = self._x(float(last_sample_ticks))
        r = (arrival_host_s - self.origin_host_s) - x
        index = math.floor(x / self.window_s)
        if self._open_index is None or index > self._open_index:
            if self._open_point is not None:
                self._win_append(self._open_point)
                self._windows_closed += 1
                self._open_index, self._open_point = index, (x, r)
                self._refit()
            else:
                self._open_index, self._open_point = index, (x, r)
        elif index == self._open_index:
            assert self._open_point is not None
            if r < self._open_point[1]:
                self._open_point = (x, r)
        # (an older window's point: it closed already; ignore, it is late anyway)
        if self._offset is None:
            self._refit()

    def observe_time_sync(self, sensor_ticks: int, sent_host_s: float, received_host_s: float) -> None:
        """A TIME_SYNC request sent at ``sent_host_s`` was answered (received at ``received_host_s``)
        with the sensor clock at receipt ``sensor_ticks`` (unwrapped)."""
        if received_host_s < sent_host_s:
            raise ValueError(f"TIME_SYNC received before it was sent: {sent_host_s} > {received_host_s}")
        x = self._x(float(sensor_ticks))
        mid = 0.5 * (sent_host_s + received_host_s) - self.origin_host_s
        self._syncs.append((x, mid - x, received_host_s - sent_host_s))
        self._refit()

    def _win_append(self, point: tuple[float, float]) -> None:
        if self._w1 == self._win.shape[1]:  # full: move the live points to the front, or grow
            live = self._w1 - self._w0
            if live > self._win.shape[1] // 2:
                grown = np.empty((2, 2 * self._win.shape[1]))
                grown[:, :live] = self._win[:, self._w0 : self._w1]
                self._win = grown
            else:
                self._win[:, :live] = self._win[:, self._w0 : self._w1].copy()
            self._w0, self._w1 = 0, live
        self._win[0, self._w1] = point[0]
        self._win[1, self._w1] = point[1]
        self._w1 += 1

    # ------------------------------------------------------------------ estimate
    @property
    def window_points(self) -> int:
        """Closed windows' points the next fit uses (bounded by ``fit_span_s / window_s + 1``)."""
        return self._w1 - self._w0

    def _trim(self) -> None:
        """Drop observations older than ``fit_span_s`` before the newest one."""
        w0, w1 = self._w0, self._w1
        newest = max(
            float(self._win[0, w1 - 1]) if w1 > w0 else -math.inf,
            self._open_point[0] if self._open_point is not None else -math.inf,
            self._syncs[-1][0] if self._syncs else -math.inf,
        )
        cut = newest - self.fit_span_s
        if w1 > w0 and self._win[0, w0] < cut:  # (the points are in increasing x)
            self._w0 = w0 + int(np.searchsorted(self._win[0, w0:w1], cut, side="left"))
        if len(self._syncs) > self.min_syncs_kept and self._syncs[0][0] < cut:
            k = 0
            while k < len(self._syncs) - self.min_syncs_kept and self._syncs[k][0] < cut:
                k += 1
            del self._syncs[:k]

    def _refit(self) -> None:
        # The drift from the envelope in C (fit_drift_reference in plain Python is its reference,
        # bit for bit: tests/test_replay_batch.py). It runs at every closed window, 14 400 times per
        # sensor in 8 hours: O(points) with no numpy call (np.polyfit took a third of a replay);
        # refitting less often would change the mapped times, running sums would lose digits.
        self._trim()
        xs = self._win[0, self._w0 : self._w1]
        rs = self._win[1, self._w0 : self._w1]
        drift = _fit_drift(xs, rs, self.min_span_s, self.max_drift)
        self._drift = drift
        if self._syncs:
            best_rtt = min(s[2] for s in self._syncs) * 1.5 + 1e-4
            total, m = 0.0, 0
            for x, r, rtt in self._syncs:  # (a mean taken in order, as the C kernel takes it)
                if rtt <= best_rtt:
                    total += r - drift * x
                    m += 1
            self._offset = total / m
        else:
            lowest = float((rs - drift * xs).min()) if xs.size else math.inf
            if self._open_point is not None:
                lowest = min(lowest, self._open_point[1] - drift * self._open_point[0])
            self._offset = None if lowest == math.inf else lowest

    @property
    def estimate(self) -> ClockEstimate | None:
        if self._offset is None or self._x0 is None:
            return None
        return ClockEstimate(self._x0, self._offset, self._drift, self._windows_closed, bool(self._syncs))

    @property
    def ready(self) -> bool:
        return self._offset is not None

    # ------------------------------------------------------------------ mapping
    def map_ticks(self, ticks: npt.ArrayLike) -> FloatArray:
        """Session seconds of samples taken at ``ticks`` (unwrapped, non-decreasing across calls).

        Raises
        ------
        ValueError
            Nothing has been observed yet (no packet, no TIME_SYNC).
        """
        tk = np.asarray(ticks, dtype=np.float64)
        if tk.size == 0:
            return np.zeros(0)
        if self._offset is None:
            raise ValueError("ClockMapper.map_ticks needs a packet or TIME_SYNC observation first")
        assert self._x0 is not None
        x = tk / TICKS_PER_S - self._x0
        e, c = self._drift, self._offset
        if self._last is None:
            out = x + c + e * x
        else:
            lx, lt = self._last
            dx = np.maximum(x - lx, 0.0)
            error = (lx + c + e * lx) - lt  # where the estimate wants the last sample vs where it went
            bound = self.max_slew * dx
            out = lt + dx * (1.0 + e) + np.clip(error, -bound, bound)
            self.max_correction_s = max(self.max_correction_s, abs(error))
        self._last = (float(x[-1]), float(out[-1]))
        return out

    def diagnostics(self) -> ClockDiagnostics:
        est = self.estimate
        if est is None:
            return ClockDiagnostics(ready=False)
        return ClockDiagnostics(
            ready=True,
            drift_ppm=float(est.drift_ppm),
            offset_s=float(est.offset_s),
            windows=int(est.windows),
            synced=bool(est.synced),
            max_correction_s=float(self.max_correction_s),
        )
