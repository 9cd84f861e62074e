"""Hip angle from a calibrated thigh IMU: gyro about the flexion axis, anchored to gravity at rest.

The thigh swings about the hip's flexion (mediolateral) axis, a fixed direction in the
sensor frame whatever the mounting. We find that axis from the first movement
(principal direction of the bias-corrected angular rate, as in PCA-based functional
joint-axis methods, e.g. Seel et al., "IMU-based joint angle measurement for gait
analysis", Sensors 14(4), 2014), integrate the rate about it, and

* zero the rate while the leg is still (zero-velocity update), so rests do not drift;
* track the gyro bias from still samples, updated once per frame of ``FRAME`` samples;
* compare with the accelerometer's tilt about the axis only at rests of
  ``anchor_rest_s`` (the accelerometer is ignored while the leg accelerates), and
  re-anchor when the two disagree by more than ``anchor_max_error_deg`` — e.g. after
  getting up, walking and lying down again.

Every decision depends only on samples up to the current one and on fixed sample-index
frames, so any chunking of a stream gives bit-identical angles.
"""

from __future__ import annotations

import math

import numpy as np

from host.fusion.calibration import Calibration
from host.model import FloatArray
from host.settings import Settings

FRAME = 2048
"""Samples per gyro-bias update frame (fixed by global sample index)."""
_PENDING_SLICE = 512
REST_TILT_DEG = 0.25
"""A rest used for bias tracking keeps gravity's direction within this over its window."""

BoolArray = np.ndarray


def _run_lengths(flags: BoolArray, carry: int) -> np.ndarray:
    """Length of the run of True ending at each sample, continuing a run of ``carry``."""
    n = len(flags)
    if n <= 24:  # live chunks: a loop beats five numpy calls
        out = []
        r = carry
        for f in flags.tolist():
            r = r + 1 if f else 0
            out.append(r)
        return np.array(out, dtype=np.int64)
    idx = np.arange(n)
    last_false = np.maximum.accumulate(np.where(flags, -1, idx))
    run = idx - last_false
    head = last_false < 0
    run[head] += carry
    run[~flags] = 0
    return run


def _tilt_about_axis(acc: FloatArray, gravity_ref: FloatArray, axis: FloatArray) -> float:
    """Hip angle implied by gravity alone (deg): rotation of the thigh about ``axis``."""
    ax, ay, az = (float(v) for v in axis)
    a = acc - float(acc.dot(axis)) * axis
    g = gravity_ref - float(gravity_ref.dot(axis)) * axis
    cx = g[1] * a[2] - g[2] * a[1]
    cy = g[2] * a[0] - g[0] * a[2]
    cz = g[0] * a[1] - g[1] * a[0]
    # gravity seen from the thigh turns the opposite way to the thigh
    return -math.degrees(math.atan2(ax * cx + ay * cy + az * cz, float(g.dot(a))))


class HipAngleEstimator:
    """Streaming hip-angle estimator for one thigh (after calibration).

    ``update(t, acc, gyr)`` returns ``(time_s, angle_deg, still)`` for the samples whose
    angle is known. Until the flexion axis is found (``axis_rotation_deg`` of movement
    after calibration) samples are held back, then released together.
    """

    def __init__(self, calib: Calibration, settings: Settings) -> None:
        self.calib = calib
        self.s = settings
        dt = calib.dt_nominal_s
        self._still_min_n = max(1, round(settings.still_min_s / dt))
        self._anchor_n = max(self._still_min_n + 1, round(settings.anchor_rest_s / dt))
        self.axis: FloatArray | None = None
        self._bias = calib.gyro_bias_dps.copy()
        # pending (axis unknown)
        self._pend_t: list[FloatArray] = []
        self._pend_a: list[FloatArray] = []
        self._pend_g: list[FloatArray] = []
        # integration state
        self._t_prev: float | None = None
        self._wc_prev = 0.0
        self._theta_prev = 0.0
        self._corr = 0.0
        self._run = self._still_min_n  # calibration ended still
        self._acc_hist: list[FloatArray] = []
        self._acc_hist_n = 0
        self._still2 = settings.still_gyro_dps**2
        self._still_sum = settings.still_mean_dps * self._still_min_n
        self._cs_tail = np.zeros(self._still_min_n)
        self._lost_tail = np.zeros(self._still_min_n)
        self._still_prev = True
        self._frame_g: list[FloatArray] = []
        self._frame_a: list[FloatArray] = []
        self._frame_q: list[BoolArray] = []
        self._frame_run = 0
        self.n_bias_updates = 0
        self._frame_n = 0
        # diagnostics
        self.n_gaps = 0
        self.max_gap_s = 0.0
        self.n_anchors = 0
        self.anchor_total_deg = 0.0
        self.n_samples = 0
        self.n_still = 0

    # ------------------------------------------------------------------ public
    def update(self, t: FloatArray, acc: FloatArray, gyr: FloatArray) -> tuple[FloatArray, FloatArray, BoolArray]:
        if len(t) == 0:
            return _EMPTY
        if self.axis is not None:
            return self._process(t, acc, gyr)
        if len(t) > _PENDING_SLICE:  # look for the first movement in short slices
            parts = [self.update(t[i : i + _PENDING_SLICE], acc[i : i + _PENDING_SLICE], gyr[i : i + _PENDING_SLICE])
                     for i in range(0, len(t), _PENDING_SLICE) if self.axis is None]
            done = len(parts) * _PENDING_SLICE
            if done < len(t):
                parts.append(self._process(t[done:], acc[done:], gyr[done:]))
            return tuple(np.concatenate(x) for x in zip(*parts))  # type: ignore[return-value]
        # Axis unknown: hold back the current movement; samples followed by a rest
        # before any large movement are released with angle 0 (the leg has not moved).
        self._pend_t.append(t)
        self._pend_a.append(acc)
        self._pend_g.append(gyr)
        tt = np.concatenate(self._pend_t)
        aa = np.concatenate(self._pend_a)
        gg = np.concatenate(self._pend_g)
        k, r, run_r = self._find_axis(tt, gg)
        released = (tt[: r + 1], np.zeros(r + 1), np.ones(r + 1, dtype=bool))
        if r >= 0:
            self._t_prev = float(tt[r])
            self._run = run_r
        tt, aa, gg = tt[r + 1 :], aa[r + 1 :], gg[r + 1 :]
        if k is None:
            self._pend_t, self._pend_a, self._pend_g = [tt], [aa], [gg]
            return released
        self._pend_t, self._pend_a, self._pend_g = [], [], []
        out = self._process(tt, aa, gg)
        return tuple(np.concatenate([x, y]) for x, y in zip(released, out))  # type: ignore[return-value]

    def finish(self) -> tuple[FloatArray, FloatArray, BoolArray]:
        """End of stream: release held-back samples (angle 0: the leg never moved far)."""
        if self.axis is not None or not self._pend_t:
            return _EMPTY
        tt = np.concatenate(self._pend_t)
        self._pend_t, self._pend_a, self._pend_g = [], [], []
        return tt, np.zeros(len(tt)), np.ones(len(tt), dtype=bool)

    def diagnostics(self) -> dict[str, float]:
        d = {
            "gyro_bias_x_dps": float(self._bias[0]),
            "gyro_bias_y_dps": float(self._bias[1]),
            "gyro_bias_z_dps": float(self._bias[2]),
            "gaps": float(self.n_gaps),
            "max_gap_s": self.max_gap_s,
            "reanchors": float(self.n_anchors),
            "bias_updates": float(self.n_bias_updates),
            "reanchor_total_deg": self.anchor_total_deg,
            "still_fraction": self.n_still / self.n_samples if self.n_samples else 0.0,
            "axis_found": float(self.axis is not None),
        }
        if self.axis is not None:
            d.update({f"axis_{c}": float(v) for c, v in zip("xyz", self.axis)})
        return d

    # ------------------------------------------------------------------ axis
    def _find_axis(self, tt: FloatArray, gg: FloatArray) -> tuple[int | None, int, int]:
        """Look for the first movement of ``axis_rotation_deg`` since a rest.

        Returns ``(k, r, run_r)``: the sample where the axis was fixed (or None), the
        last rest sample before it (or before the end; -1 if none) and the still-run
        length there. Sets ``self.axis`` when found.
        """
        w_vec = gg - self.calib.gyro_bias_dps
        w = np.linalg.norm(w_vec, axis=1)
        raw = w < self.s.still_gyro_dps
        run = _run_lengths(raw, self._run)
        reset = run >= self._still_min_n
        t_prev = self._t_prev if self._t_prev is not None else tt[0] - self.calib.dt_nominal_s
        dt = np.diff(tt, prepend=t_prev)
        rot = np.where(reset, 0.0, w * dt)
        idx = np.arange(len(tt))
        last_reset = np.maximum.accumulate(np.where(reset, idx, -1))
        cs = np.cumsum(rot)
        base = np.where(last_reset >= 0, cs[np.maximum(last_reset, 0)], 0.0)
        hit = np.flatnonzero(cs - base >= self.s.axis_rotation_deg)
        if not len(hit):
            r = int(last_reset[-1])
            return None, r, int(run[r]) if r >= 0 else self._run
        k = int(hit[0])
        r = int(last_reset[k])
        lo = r + 1
        seg = w_vec[lo : k + 1] * np.sqrt(dt[lo : k + 1])[:, None]
        _, vecs = np.linalg.eigh(seg.T @ seg)
        axis = vecs[:, -1]
        if float((w_vec[lo : k + 1] @ axis) @ dt[lo : k + 1]) < 0:
            axis = -axis  # the first movement defines the positive direction
        self.axis = axis / np.linalg.norm(axis)
        return k, r, int(run[r]) if r >= 0 else self._run

    # ------------------------------------------------------------------ main path
    def _process(self, t: FloatArray, acc: FloatArray, gyr: FloatArray) -> tuple[FloatArray, FloatArray, BoolArray]:
        n = len(t)
        if n <= FRAME - self._frame_n:  # the usual live case: one piece
            theta, still = self._piece(t, acc, gyr)
            return t, theta, still
        outs_theta = np.empty(n)
        outs_still = np.empty(n, dtype=bool)
        i = 0
        while i < n:
            m = min(n - i, FRAME - self._frame_n)
            sl = slice(i, i + m)
            outs_theta[sl], outs_still[sl] = self._piece(t[sl], acc[sl], gyr[sl])
            i += m
        return t, outs_theta, outs_still

    def _piece(self, t: FloatArray, acc: FloatArray, gyr: FloatArray) -> tuple[FloatArray, BoolArray]:
        axis = self.axis
        assert axis is not None
        s = self.s
        n = len(t)
        w_vec = gyr - self._bias
        raw = np.einsum("ij,ij->i", w_vec, w_vec) < self._still2
        run = _run_lengths(raw, self._run)
        wc = w_vec @ axis
        # still = a window of still_min_s with no sample above still_gyro_dps and a mean axis
        # rate under still_mean_dps (noise averages out; a slow sag does not)
        W = self._still_min_n
        cs = np.empty(n + W)
        cs[:W] = self._cs_tail
        cs[W - 1 :] = np.cumsum(np.concatenate(([self._cs_tail[-1]], wc)))
        still = (run >= W) & (np.abs(cs[W:] - cs[:n]) < self._still_sum)
        self._cs_tail = cs[-W:]
        lost = np.where(still, wc, 0.0)
        wc[still] = 0.0
        # trapezoid: theta[n] = theta[n-1] + (wc[n] + wc[n-1]) / 2 * (t[n] - t[n-1])
        tp = np.empty(n + 1)
        tp[0] = self._t_prev if self._t_prev is not None else t[0] - self.calib.dt_nominal_s
        tp[1:] = t
        dt = tp[1:] - tp[:-1]
        wp = np.empty(n + 1)
        wp[0] = self._wc_prev
        wp[1:] = wc
        inc = wp[1:] + wp[:-1]
        inc *= dt
        inc *= 0.5
        # A still window ends with the onset of the next movement, whose first, slow
        # samples it has zeroed: credit them back where the movement is detected.
        prev_still = np.empty(n, dtype=bool)
        prev_still[0] = self._still_prev
        prev_still[1:] = still[:-1]
        onsets = np.flatnonzero(prev_still & ~still)
        lost *= dt
        if len(onsets):
            lost_all = np.concatenate((self._lost_tail, lost))
            for k in onsets:
                inc[k] += lost_all[k : k + W].sum()
            self._lost_tail = lost_all[-W:]
        else:
            self._lost_tail = np.concatenate((self._lost_tail, lost))[-W:]
        self._still_prev = bool(still[-1])
        inc[0] += self._theta_prev
        theta_g = np.cumsum(inc)
        theta = theta_g + self._corr
        if dt.max() > s.max_gap_s:  # gaps: diagnostics only, the trapezoid bridges them
            self.n_gaps += int((dt > s.max_gap_s).sum())
            self.max_gap_s = max(self.max_gap_s, float(dt.max()))
        self._acc_hist.append(acc)
        self._acc_hist_n += n
        if run.max() >= self._anchor_n:
            self._anchor(run, theta)
        while self._acc_hist_n - len(self._acc_hist[0]) >= self._anchor_n:
            self._acc_hist_n -= len(self._acc_hist.pop(0))
        # carry state
        self._t_prev = float(t[-1])
        self._wc_prev = float(wc[-1])
        self._theta_prev = float(theta_g[-1])
        self._run = int(run[-1])
        # gyro bias tracking, once per frame
        self._frame_g.append(gyr)
        self._frame_a.append(acc)
        self._frame_q.append(raw)
        self._frame_n += n
        self.n_samples += n
        self.n_still += int(np.count_nonzero(still))
        if self._frame_n >= FRAME:
            self._update_bias()
        return theta, still

    def _update_bias(self) -> None:
        """Move the gyro bias toward the mean rate of this frame's accelerometer-confirmed rests.

        A rest window is ``anchor_rest_s`` with every sample under ``still_gyro_dps`` and gravity's
        direction unchanged (< ``REST_TILT_DEG``) between its first and last quarter, so a slow sag
        is not mistaken for bias. The windows are fixed by sample index, so chunking does not matter.
        """
        fg = np.concatenate(self._frame_g)
        fa = np.concatenate(self._frame_a)
        fq = np.concatenate(self._frame_q)
        self._frame_g, self._frame_a, self._frame_q, self._frame_n = [], [], [], 0
        R = self._anchor_n
        q = max(1, R // 4)
        run = _run_lengths(fq, self._frame_run)
        self._frame_run = int(run[-1])
        ends = np.flatnonzero((run >= R) & (run % R == 0))
        total = np.zeros(3)
        m = 0
        cos_tol = math.cos(math.radians(REST_TILT_DEG))
        for k in ends:
            lo = int(k) - R + 1
            if lo < 0:
                continue
            a1 = fa[lo : lo + q].mean(axis=0)
            a2 = fa[k - q + 1 : k + 1].mean(axis=0)
            if float(a1.dot(a2)) < cos_tol * math.sqrt(float(a1.dot(a1)) * float(a2.dot(a2))):
                continue  # gravity moved: the leg was sagging, not resting
            total += fg[lo : k + 1].sum(axis=0)
            m += R
        if m:
            k_gain = 1.0 - math.exp(-m * self.calib.dt_nominal_s / self.s.bias_tau_s)
            self._bias = self._bias + k_gain * (total / m - self._bias)
            self.n_bias_updates += 1

    def _anchor(self, run: np.ndarray, theta: FloatArray) -> None:
        """Compare with gravity where a rest reaches ``anchor_rest_s``; re-anchor if far off."""
        anchors = np.flatnonzero(run == self._anchor_n)
        if not len(anchors):
            return
        axis = self.axis
        assert axis is not None
        window = np.concatenate(self._acc_hist)
        off = len(window) - len(run)
        ref = self.calib.gravity_ref
        ref_norm = math.sqrt(float(ref.dot(ref)))
        for k in anchors:
            hi = off + int(k) + 1
            lo = hi - self._anchor_n
            if lo < 0:
                continue
            a_mean = window[lo:hi].mean(axis=0)
            if abs(math.sqrt(float(a_mean.dot(a_mean))) - ref_norm) > 0.1 * ref_norm:
                continue  # still but accelerating? (vehicle, impacts) - do not trust
            tilt = _tilt_about_axis(a_mean, ref, axis)
            d = (tilt - theta[k] + 180.0) % 360.0 - 180.0
            if abs(d) > self.s.anchor_max_error_deg:
                theta[k:] += d
                self._corr += d
                self.n_anchors += 1
                self.anchor_total_deg += abs(d)


_EMPTY: tuple[FloatArray, FloatArray, BoolArray] = (np.empty(0), np.empty(0), np.empty(0, dtype=bool))
