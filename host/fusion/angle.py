"""Hip angle from a calibrated thigh IMU: gyro about the flexion axis, anchored to gravity at rest.

The thigh swings about the hip's flexion (mediolateral) axis, a fixed direction in the
sensor frame whatever the mounting. We find that axis from the first movement
(principal direction of the bias-corrected angular rate, as in PCA-based functional
joint-axis methods, e.g. Seel et al., "IMU-based joint angle measurement for gait
analysis", Sensors 14(4), 2014), integrate the rate about it, and

* zero the rate while the leg is still (zero-velocity update), so rests do not drift;
* track the gyro bias from rests the accelerometer confirms (gravity does not move);
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

_PENDING_SLICE = 512
REST_TILT_DEG = 0.2
"""A rest used for bias tracking keeps gravity's direction within this over its window."""
SOFT_ANCHOR_ZONE_DEG = 30.0
SOFT_ANCHOR_GAIN = 0.5
"""At a rest within this angle of the calibration pose, this share of the gravity/gyro
difference is corrected (larger differences re-anchor fully)."""
BIAS_WINDOW_S = 1.5
"""Length of one bias-tracking rest window (it needs twice this of quiet: see _rest_bias)."""
BIAS_JUMP_DPS = 1.0
"""A rest window whose mean rate is further than this from the current bias is not used."""

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


def _rowdot(a: FloatArray, b: FloatArray) -> FloatArray:
    """Row-wise dot product of (N, 3) arrays, summed in a fixed order.

    BLAS kernels (``@``, ``einsum``) may round a row differently depending on where it falls
    in a block; elementwise arithmetic does not, so any chunking gives identical results.
    """
    out = a[:, 0] * b[:, 0]
    out += a[:, 1] * b[:, 1]
    out += a[:, 2] * b[:, 2]
    return out


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

    ``update(t, acc, gyr)`` returns ``(time_s, angle_deg, at_rest)`` for the samples whose
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
        self._pend_run = self._anchor_n
        # integration state
        self._t_prev: float | None = None
        self._wc_prev = 0.0
        self._theta_prev = 0.0
        self._corr = 0.0
        self._run = self._anchor_n  # quiet run (calibration ended still)
        self._run_s = self._still_min_n  # strict still run
        self._tail_a = np.empty((0, 3))
        self._tail_g = np.empty((0, 3))
        self._still2 = settings.still_gyro_dps**2
        self._quiet2 = (settings.still_gyro_dps + 2.0) ** 2
        self._still_sum = settings.still_mean_dps * self._still_min_n
        self._cs_tail = np.zeros(self._still_min_n)
        self._lost_tail = np.zeros(self._still_min_n)
        self._still_prev = True
        self._gap_s = 2.5 * dt
        self._uncertain = False
        self._rest_cos = math.cos(math.radians(REST_TILT_DEG))
        self._bias_n = max(4, round(BIAS_WINDOW_S / dt))
        self._bias_gain = 1.0 - math.exp(-self._bias_n * dt / settings.bias_tau_s)
        self.n_gap_anchors = 0
        self.n_bias_updates = 0
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
            self._pend_run = run_r
            self._run = self._run_s = run_r
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
            "gap_reanchors": float(self.n_gap_anchors),
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
        run = _run_lengths(raw, self._pend_run)
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
            return None, r, int(run[r]) if r >= 0 else self._pend_run
        k = int(hit[0])
        r = int(last_reset[k])
        lo = r + 1
        seg = w_vec[lo : k + 1] * np.sqrt(dt[lo : k + 1])[:, None]
        _, vecs = np.linalg.eigh(seg.T @ seg)
        axis = vecs[:, -1]
        if float((w_vec[lo : k + 1] @ axis) @ dt[lo : k + 1]) < 0:
            axis = -axis  # the first movement defines the positive direction
        self.axis = axis / np.linalg.norm(axis)
        return k, r, int(run[r]) if r >= 0 else self._pend_run

    # ------------------------------------------------------------------ main path
    def _process(self, t: FloatArray, acc: FloatArray, gyr: FloatArray) -> tuple[FloatArray, FloatArray, BoolArray]:
        theta, rest = self._piece(t, acc, gyr)
        return t, theta, rest

    def _rest_bias(self, acc_h: FloatArray, gyr_h: FloatArray, ends: np.ndarray, off: int, n: int) -> FloatArray | None:
        """Gyro bias per sample, updated after each accelerometer-confirmed rest window.

        A rest window is ``BIAS_WINDOW_S`` of quiet gyro (every sample within ``still_gyro_dps``
        + 2 °/s of the calibration bias) with at least half a window of quiet before and after
        it (so the slow start or end of a movement is not in it), during which gravity's
        direction stays within ``REST_TILT_DEG`` between its first and last quarter, and whose mean rate is
        within ``BIAS_JUMP_DPS`` of the current bias. The bias moves toward the window's mean
        rate with time constant ``bias_tau_s``; the new value applies after the event sample.
        ``ends`` are the event samples (chunk indices). Returns None if the bias is unchanged.
        """
        B, G = self._bias_n, self._bias_n // 2
        his = ends + off - G  # last sample of each window, in the history-extended arrays
        los = his - B + 1
        keep = los >= 0
        his, los, ends = his[keep], los[keep], ends[keep]
        if not len(ends):
            return None
        # segment sums (reduceat sums each segment on its own: the same for any chunking)
        q = B // 4
        idx = np.stack([los, los + q, his - q + 1, his + 1], axis=1).ravel()
        sa = np.add.reduceat(acc_h, idx, axis=0).reshape(len(ends), 4, 3)
        sg = np.add.reduceat(gyr_h, idx, axis=0).reshape(len(ends), 4, 3)
        first, second = sa[:, 0], sa[:, 2]  # first and last quarter
        g_mean = (sg[:, 0] + sg[:, 1] + sg[:, 2]) / B
        dot = _rowdot(first, second)
        norm2 = _rowdot(first, first) * _rowdot(second, second)
        ok = dot > self._rest_cos * np.sqrt(norm2)
        if not ok.any():
            return None
        k_gain = self._bias_gain
        b = self._bias
        values = []
        starts = []
        for k, m, good in zip(ends.tolist(), g_mean, ok.tolist()):
            d = m - b
            if good and float(d.dot(d)) < BIAS_JUMP_DPS**2:
                b = b + k_gain * d
                values.append(b)
                starts.append(k + 1)  # the new bias applies after the event
        if not values:
            return None
        self.n_bias_updates += len(values)
        counts = np.diff(np.concatenate(([0], starts, [n])))
        per_sample = np.repeat(np.vstack([self._bias, *values]), counts, axis=0)
        self._bias = b
        return per_sample

    def _piece(self, t: FloatArray, acc: FloatArray, gyr: FloatArray) -> tuple[FloatArray, BoolArray]:
        axis = self.axis
        assert axis is not None
        s = self.s
        n = len(t)
        W = self._still_min_n
        R = self._anchor_n
        # quiet: the leg is at most slowly moving (judged against the calibration bias)
        d0 = gyr - self.calib.gyro_bias_dps
        quiet = _rowdot(d0, d0) < self._quiet2
        run = _run_lengths(quiet, self._run)
        acc_h = np.concatenate((self._tail_a, acc))
        off = len(self._tail_a)
        bias: FloatArray = self._bias
        gyr_h = None
        span = self._bias_n * 2
        if run.max() >= span:
            ends = np.flatnonzero((run >= span) & ((run - span) % self._bias_n == 0))
            if len(ends):
                gyr_h = np.concatenate((self._tail_g, gyr))
                per_sample = self._rest_bias(acc_h, gyr_h, ends, off, n)
                if per_sample is not None:
                    bias = per_sample
        w_vec = gyr - bias
        raw = _rowdot(w_vec, w_vec) < self._still2
        run_s = _run_lengths(raw, self._run_s)
        wc = w_vec[:, 0] * axis[0]
        wc += w_vec[:, 1] * axis[1]
        wc += w_vec[:, 2] * axis[2]
        # still = a window of still_min_s with no sample above still_gyro_dps and a mean axis
        # rate under still_mean_dps (noise averages out; a slow sag does not)
        cs = np.empty(n + W)
        cs[:W] = self._cs_tail
        cs[W - 1 :] = np.cumsum(np.concatenate(([self._cs_tail[-1]], wc)))
        still = (run_s >= W) & (np.abs(cs[W:] - cs[:n]) < self._still_sum)
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
        lost_all = np.concatenate((self._lost_tail, lost))
        for k in onsets:
            inc[k] += lost_all[k : k + W].sum()
        self._lost_tail = lost_all[-W:]
        self._still_prev = bool(still[-1])
        inc[0] += self._theta_prev
        theta_g = np.cumsum(inc)
        theta = theta_g + self._corr
        if dt.max() > s.max_gap_s:  # long gaps: diagnostics (the trapezoid bridges them)
            self.n_gaps += int((dt > s.max_gap_s).sum())
            self.max_gap_s = max(self.max_gap_s, float(dt.max()))
        # compare with gravity: at the first anchor_rest_s of each rest, and after lost samples
        events: list[tuple[int, int, float]] = []
        if run.max() >= R:
            events = [(int(k), R, s.anchor_max_error_deg) for k in np.flatnonzero(run == R)]
        gaps = np.flatnonzero(dt > self._gap_s)
        if len(gaps) or self._uncertain:
            # after lost samples the angle is uncertain: trust gravity at the first still window
            still_on = np.flatnonzero(still & ~prev_still)
            g = -1 if self._uncertain else int(gaps[0])
            while True:
                later = still_on[still_on > g]
                if not len(later):
                    self._uncertain = True
                    break
                k = int(later[0])
                events.append((k, W, 0.0))
                self.n_gap_anchors += 1
                nxt = gaps[gaps > k]
                if not len(nxt):
                    self._uncertain = False
                    break
                g = int(nxt[0])
            events.sort()
        if events:
            self._anchor(events, theta, theta_g, acc_h, off)
        # carry state
        keep = max(R, 2 * self._bias_n)
        self._tail_a = acc_h[-keep:]
        self._tail_g = (gyr_h if gyr_h is not None else np.concatenate((self._tail_g, gyr)))[-keep:]
        self._t_prev = float(t[-1])
        self._wc_prev = float(wc[-1])
        self._theta_prev = float(theta_g[-1])
        self._run = int(run[-1])
        self._run_s = int(run_s[-1])
        self.n_samples += n
        self.n_still += int(np.count_nonzero(still))
        # for the rep segmenter: at rest = quiet (every sample under still_gyro_dps) for
        # still_min_s; looser than the zero-rate test, so it survives gyro bias drift
        return theta, run_s >= W

    def _anchor(
        self, events: list[tuple[int, int, float]], theta: FloatArray, theta_g: FloatArray, window: FloatArray, off: int
    ) -> None:
        """Compare with gravity at rest events ``(sample, window, max_error_deg)``; re-anchor if off.

        The accelerometer mean over the ``window`` samples ending at the event gives the tilt
        about the flexion axis; when it differs from the angle by more than ``max_error_deg``
        the angle from that sample on is shifted onto it.
        """
        axis = self.axis
        assert axis is not None
        ref = self.calib.gravity_ref
        ref_norm = math.sqrt(float(ref.dot(ref)))
        for k, w, max_err in events:
            hi = off + k + 1
            lo = hi - w
            if lo < 0:
                continue
            a_mean = window[lo:hi].mean(axis=0)
            if abs(math.sqrt(float(a_mean.dot(a_mean))) - ref_norm) > 0.1 * ref_norm:
                continue  # still but accelerating? (vehicle, impacts) - do not trust
            tilt = _tilt_about_axis(a_mean, ref, axis)
            d = (tilt - theta[k] + 180.0) % 360.0 - 180.0
            if abs(tilt) >= SOFT_ANCHOR_ZONE_DEG:
                # away from the calibration pose the accelerometer's bias and scale errors
                # tilt gravity by a few degrees: only large differences are worth a re-anchor
                max_err = max(max_err, self.s.anchor_max_error_deg)
            if abs(d) > max_err:
                self._corr += d
                self.n_anchors += 1
                self.anchor_total_deg += abs(d)
            elif abs(tilt) < SOFT_ANCHOR_ZONE_DEG:
                # near the calibration pose gravity's tilt is most trustworthy (the
                # accelerometer bias cancels there): remove part of the gyro drift at rest
                self._corr += SOFT_ANCHOR_GAIN * d
            else:
                continue
            # theta = theta_g + correction, computed the same way whatever the chunking
            np.add(theta_g[k:], self._corr, out=theta[k:])


_EMPTY: tuple[FloatArray, FloatArray, BoolArray] = (np.empty(0), np.empty(0), np.empty(0, dtype=bool))
