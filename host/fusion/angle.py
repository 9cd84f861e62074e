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
frames, so any chunking of a stream gives bit-identical angles. Once the axis is known the
per-sample work runs in one sequential C loop (``legrep._fastcore.AngleKernel``) whose state
is carried between calls; :meth:`HipAngleEstimator._process` lists its steps.
"""

from __future__ import annotations

import math

import numpy as np

try:
    from .._fastcore import AngleKernel
except ImportError as exc:  # a source checkout that was never built
    raise ImportError(
        "expected the C kernel legrep._fastcore to be built, got none: run `pip install -e .` "
        "(or `python setup.py build_ext --inplace`) in the repository"
    ) from exc
from .calibration import Calibration
from ..model import FloatArray
from ..settings import Settings

_PENDING_SLICE = 512
REST_TILT_DEG = 0.2
"""A rest used for bias tracking keeps gravity's direction within this over its window."""
SOFT_ANCHOR_ZONE_DEG = 30.0
SOFT_ANCHOR_GAIN = 0.5
"""At a rest within this angle of the calibration pose, this share of the gravity/gyro
difference is corrected (larger differences re-anchor fully)."""
BIAS_WINDOW_S = 1.5
"""Length of one bias-tracking rest window (it needs twice this of quiet: see _process)."""
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
        # state handed to the C loop when the axis is found (it carries everything after)
        self._t_prev: float | None = None
        self._run = self._anchor_n  # quiet run (calibration ended still)
        self._run_s = self._still_min_n  # strict still run
        self._gap_s = 2.5 * dt
        self._bias_n = max(4, round(BIAS_WINDOW_S / dt))
        self._bias_gain = 1.0 - math.exp(-self._bias_n * dt / settings.bias_tau_s)
        self._kernel: AngleKernel | None = None

    # ------------------------------------------------------------------ public
    def update(self, t: FloatArray, acc: FloatArray, gyr: FloatArray) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Take a chunk: ``t`` (N,) s, ``acc`` (N, 3) g, ``gyr`` (N, 3) °/s.

        Returns ``(time_s, angle_deg, at_rest)`` for the samples released by this call (all
        of them once the axis is known; any chunking gives identical results).
        """
        if len(t) == 0:
            return _EMPTY
        if self.axis is not None:
            return self._process(t, acc, gyr)
        if len(t) > _PENDING_SLICE:
            return self._update_long(t, acc, gyr)
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

    def _update_long(self, t: FloatArray, acc: FloatArray, gyr: FloatArray) -> tuple[FloatArray, FloatArray, BoolArray]:
        """A long chunk before the axis is known: look for the first movement in short slices,
        then run the C loop on the remainder straight into the output arrays (no copies of
        the bulk of a recording)."""
        held = list(self._pend_t)  # samples held back by earlier calls
        heads = []
        done = 0
        while done < len(t) and self.axis is None:
            sl = slice(done, done + _PENDING_SLICE)
            heads.append(self.update(t[sl], acc[sl], gyr[sl]))
            done += _PENDING_SLICE
        if done >= len(t):
            return tuple(np.concatenate(x) for x in zip(*heads))  # type: ignore[return-value]
        # the axis is known, so every sample so far has been released, in order
        n_head = sum(len(h[0]) for h in heads)
        assert n_head == sum(len(x) for x in held) + done
        theta = np.empty(n_head + len(t) - done)
        rest = np.empty(len(theta), dtype=bool)
        i = 0
        for _, h_theta, h_rest in heads:
            theta[i : i + len(h_theta)] = h_theta
            rest[i : i + len(h_rest)] = h_rest
            i += len(h_theta)
        self._process(t[done:], acc[done:], gyr[done:], theta[n_head:], rest[n_head:])
        return (np.concatenate([*held, t]) if held else t), theta, rest

    def finish(self) -> tuple[FloatArray, FloatArray, BoolArray]:
        """End of stream: release held-back samples (angle 0: the leg never moved far)."""
        if self.axis is not None or not self._pend_t:
            return _EMPTY
        tt = np.concatenate(self._pend_t)
        self._pend_t, self._pend_a, self._pend_g = [], [], []
        return tt, np.zeros(len(tt)), np.ones(len(tt), dtype=bool)

    def diagnostics(self) -> dict[str, float]:
        """Gyro bias, gaps, gravity re-anchors, bias updates, still fraction and the axis."""
        k = self._kernel
        bias = k.gyro_bias_dps if k is not None else tuple(self._bias.tolist())
        n_samples = k.n_samples if k is not None else 0
        d = {
            "gyro_bias_x_dps": float(bias[0]),
            "gyro_bias_y_dps": float(bias[1]),
            "gyro_bias_z_dps": float(bias[2]),
            "gaps": float(k.n_gaps if k else 0),
            "max_gap_s": float(k.max_gap_s if k else 0.0),
            "reanchors": float(k.n_anchors if k else 0),
            "bias_updates": float(k.n_bias_updates if k else 0),
            "gap_reanchors": float(k.n_gap_anchors if k else 0),
            "reanchor_total_deg": float(k.anchor_total_deg if k else 0.0),
            "still_fraction": k.n_still / n_samples if k is not None and n_samples else 0.0,
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
    def _process(
        self,
        t: FloatArray,
        acc: FloatArray,
        gyr: FloatArray,
        theta: FloatArray | None = None,
        rest: BoolArray | None = None,
    ) -> tuple[FloatArray, FloatArray, BoolArray]:
        """Hip angle and at-rest flag for samples after the axis is known (the C loop).

        ``theta`` (N,) float64 and ``rest`` (N,) bool receive the results when given.

        Per sample, in order (``host/_fastcore.c`` ``AngleKernel.run`` implements it):

        1. **quiet**: rate within ``still_gyro_dps`` + 2 °/s of the *calibration* bias; the
           quiet run drives the bias windows and the gravity comparisons, so they do not
           depend on the bias they update;
        2. **still** (zero-rate update): ``still_min_s`` of samples under ``still_gyro_dps``
           against the *tracked* bias, with a window mean rate about the axis under
           ``still_mean_dps`` (noise averages out; a slow sag does not); the rate is zeroed;
        3. **onset credit**: when a still window ends, the movement's first slow samples it
           zeroed are added back at the onset;
        4. **trapezoid** integration of the axis rate over the actual sample times (a gap is
           bridged linearly; gaps over ``max_gap_s`` are counted);
        5. **gravity**: after lost samples (a step over 2.5 nominal intervals) the first
           still window re-anchors to gravity unconditionally; at the ``anchor_rest_s``-th
           sample of each quiet run the tilt of the mean accelerometer about the axis is
           compared with the angle: differences over ``anchor_max_error_deg`` re-anchor,
           smaller ones within ``SOFT_ANCHOR_ZONE_DEG`` of the pose are corrected by
           ``SOFT_ANCHOR_GAIN`` (the accelerometer's bias cancels near the calibration pose);
           a mean whose norm is off by 10 % (accelerating) is ignored;
        6. **bias tracking** (from the next sample): every ``BIAS_WINDOW_S`` of a quiet run of
           twice that, the window ending half a window ago is used if gravity's direction
           kept within ``REST_TILT_DEG`` between its first and last quarter and its mean rate
           is within ``BIAS_JUMP_DPS`` of the bias, which moves toward it with ``bias_tau_s``.

        The at-rest flag for the segmenter is ``still_min_s`` of samples under
        ``still_gyro_dps`` (without the mean test: it survives bias drift).
        """
        k = self._kernel
        if k is None:
            k = self._kernel = self._make_kernel()
        if theta is None or rest is None:
            theta = np.empty(len(t))
            rest = np.empty(len(t), dtype=bool)
        # the C loop reads float64 through any strides; other dtypes are converted here
        t, acc, gyr = (np.asarray(x, dtype=np.float64) for x in (t, acc, gyr))
        k.run(t, acc, gyr, theta, rest)
        return t, theta, rest

    def _make_kernel(self) -> AngleKernel:
        """The C loop, starting from the state the pending phase left (run lengths, last time)."""
        assert self.axis is not None
        s = self.s
        return AngleKernel(
            axis=self.axis.tolist(),
            gyro_bias0_dps=self.calib.gyro_bias_dps.tolist(),
            gyro_bias_dps=self._bias.tolist(),
            gravity_ref=self.calib.gravity_ref.tolist(),
            still_n=self._still_min_n,
            anchor_n=self._anchor_n,
            bias_n=self._bias_n,
            still_gyro_dps=s.still_gyro_dps,
            still_mean_dps=s.still_mean_dps,
            rest_tilt_deg=REST_TILT_DEG,
            bias_gain=self._bias_gain,
            bias_jump_dps=BIAS_JUMP_DPS,
            gap_s=self._gap_s,
            max_gap_s=s.max_gap_s,
            anchor_max_error_deg=s.anchor_max_error_deg,
            soft_zone_deg=SOFT_ANCHOR_ZONE_DEG,
            soft_gain=SOFT_ANCHOR_GAIN,
            dt_nominal_s=self.calib.dt_nominal_s,
            t_prev_s=math.nan if self._t_prev is None else self._t_prev,
            run=self._run,
            run_s=self._run_s,
        )


_EMPTY: tuple[FloatArray, FloatArray, BoolArray] = (np.empty(0), np.empty(0), np.empty(0, dtype=bool))
