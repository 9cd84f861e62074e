"""Plain-Python reference of the per-sample fusion stages (the readable specification).

The C kernel ``legrep._fastcore.TiltKernel`` runs exactly these steps, in this order, with
the same floating-point operations (it is built with ``-ffp-contract=off``), so the two
agree to rounding; ``tests/test_fusion_reference.py`` compares them on random and simulated
streams. This module is slow (a Python loop per sample) and exists to be read and tested
against, never to be used in the pipeline.

Orientation stage (one thigh sensor), after Laidig & Seel, "VQF: Highly accurate IMU
orientation estimation with bias estimation and magnetic disturbance rejection",
Information Fusion 91, 2023 (the idea of filtering the accelerometer in an almost-inertial
frame; the rest, the filters and the bias estimator here are our own, simpler choices):

1. **gyro strapdown**: the attitude quaternion ``q`` (sensor -> "I" frame, a frame that
   only the gyro moves) is advanced by the bias-corrected rate, averaged over the step
   (trapezoid), through the exact quaternion exponential (series for small angles);
2a. **lever arm**: the sensor sits a lever arm ``r`` from the hip, so the thigh's own rotation
   adds ``w x (w x r) + dw/dt x r`` to what it measures (up to 0.3 g in a fast raise, and the
   centripetal part never averages out: it would tilt the filtered gravity by a degree per
   rep). ``r`` is fitted by least squares (forgetting over ``lever_tau_s``, a ridge
   ``lever_ridge``) to the accelerometer minus the predicted gravity on samples turning faster
   than ``lever_min_dps``, solved every 16 samples, and that acceleration is subtracted;
2. **accelerometer in the I frame**: the accelerometer sample is rotated into the I frame
   and low-passed there (first order, time constant ``tau_acc_s``, coefficient
   ``dt / (tau + dt / 2)`` so that a gap or jitter in the time stamps is handled). In the I
   frame gravity is constant while the thigh's own accelerations come and go with zero
   mean (it starts and ends every movement at rest), so the low-pass keeps gravity and
   removes them without the lag a sensor-frame low-pass would have;
2b. **onset after a long rest**: a movement that ends a still run (step 5) of at least
   ``onset_rest_s`` starts with both stages' time constants scaled by
   ``1 + (onset_tau_acc_s / tau_acc_s - 1) exp(-t / onset_decay_s)``, ``t`` the time since the
   last still sample. Such a rest has just measured the gyro bias and let the low-pass settle
   on gravity, so for the first seconds the gyro alone is better than the accelerometer,
   while a hand or limb that starts to move accelerates without turning (BROAD's trials with
   breaks: picking the sensor up tilts the accelerometer by 3-7 degrees for a second, and the
   1 s + 1 s low-pass took in twice what VQF's 3 s one did). Short rests (the bottom of a rep,
   where the low-pass has not settled) and rests after lost samples keep ``tau_acc_s``;
3. **motion bias estimation**: a residual gyro bias turns the I frame, so gravity appears to
   rotate in it; the low-passed vector's rotation in one step (``lp_prev x lp / |lp|^2``),
   taken back to the sensor frame, is the bias error times the step: the bias moves by it
   over ``bias_motion_tau_s`` (horizontal components only: gravity cannot see heading);
   **3b.** after a calibration whose bias is unsure (``bias_unsure``), until the first bias rest,
   over ``bias_motion_fast_tau_s`` plus the time since the first sample, if that is shorter;
4. **up vector**: ``up = q^-1 (lp / |lp|) q`` — the unit vector the accelerometer reads at
   rest (opposite to gravity), in the sensor frame;
5. **still** (for the rep segmenter): the mean over the last ``still_n`` samples of
   ``|gyro - bias|^2``, each sample clipped at ``4 still_gyro_dps^2`` (one outlier cannot
   break a rest), is below ``still_gyro_dps^2``; **5b.** or, when the rest window is at least
   as long (``still_n <= bias_n``), the rate's variance over the same ``still_n`` samples is
   below a quarter of ``still_gyro_dps^2`` and its mean lies within ``still_bias_dps`` of the
   bias: a steady rate is a bias estimate still off (a calibration rest taken while settling
   leaves it 2-7 deg/s wrong until the first rest of ``bias_n`` samples), not a movement;
6. **rest** (for the gyro bias): every ``bias_n // 2`` samples the last ``bias_n`` samples are
   a rest if the gyro's variance is under ``rest_gyro_dps^2``, the accelerometer's under
   ``rest_acc_g^2``, gravity's direction kept within ``rest_tilt_deg`` between the first and
   last quarter of the window and the window's mean rate is, along gravity, within
   ``bias_jump_dps`` of the bias (normal to gravity the tilt test has verified it: a rate of
   r deg/s there turns gravity by about 0.6 r degrees over the window, so a wrong calibration
   bias is corrected at the first true rest); the bias then moves toward that mean by
   ``bias_gain`` (from the next sample). The mean leaves out the window's last ``bias_trim_n``
   samples: the last window before a movement holds the hand's or leg's first touch, under
   the rest thresholds but not a bias (on BROAD it moved the bias by up to 0.13 deg/s for the
   whole next movement); every rest sample still counts in the next window's estimate. After a calibration whose bias is unsure
   (``bias_unsure``: its standard error is large) the first such rest is judged without the limit
   along gravity and moves the bias all the way: a quiet rest measures it better;
7. **accelerometer bias** (at each such rest): gravity is one fixed vector in the I frame, so
   two rests in different poses, with attitudes ``M1``, ``M2`` (sensor -> I) and mean
   accelerometer readings ``a1``, ``a2``, satisfy ``M2 (a2 - b) = M1 (a1 - b)`` whatever the
   accelerometer's scale: ``(M2 - M1) b = M2 a2 - M1 a1``, linear in the bias ``b``. The normal
   equations of consecutive rest pairs are accumulated (forgetting ``1 - 1/acc_bias_memory`` per
   pair) and solved with a ridge ``acc_bias_ridge`` (the component along the axis of every turn
   is unobservable and stays near 0; it does not move the hip angle); the bias, limited to
   ``acc_bias_max_g``, is applied at the next rest (any pose: the sets' rests are often far
   from the reference pose, and a bias left there reads every rep off by degrees), as much of
   the change as turns the up vector's angle to the reference by at most ``acc_bias_step_deg``
   (near the reference pose all of it, as both move alike; far from it the rest waits for the
   next rests, so a jump at the top of a rep cannot end the rep), and is then subtracted from
   every later accelerometer sample, the low-pass state moved by the change so it stays
   consistent. A cheap MEMS accelerometer is off by
   tens of mg (up to 0.1 g), which tilts gravity by up to 6 degrees; the gyro, over the few
   seconds between two rests, is far more accurate than that;
8. **after lost samples** (a step over ``gap_s``) the gyro bridges the gap with the lost
   samples' rates taken as linear between the two samples around it, and may still be off by
   degrees: for ``gap_recover_s`` after it the low-pass runs with the shorter time constant
   ``gap_tau_acc_s`` (a fast rep's gap can hide most of a raise: then only the
   accelerometer knows where the thigh went), and at the first still sample whose whole still window lies after the gap the
   low-pass restarts at the mean accelerometer of that window (taken into the I frame),
   instead of converging slowly;
   no rest pair of step 7 spans the gap, and the lever arm's rate difference restarts;
9. **reference up vector**: ``normalize(ref_acc - b)``, the reference rest's accelerometer mean
   corrected by the current bias estimate (what the hip angle is measured from).

Hip-angle stage: ``reference_tilt_angle(up, u_ref, f, offset)`` is the rotation of the up
vector about the flexion axis ``f`` from the reference pose (heading-free: when the thigh turns
by ``d`` about ``f`` the up vector turns by ``-d`` about ``f`` in the sensor frame, so with both
vectors projected onto the plane normal to ``f``, ``d = atan2(f . (up x u_ref), up_p . u_ref_p)
+ offset``); ``reference_hip_angle(up, g_ref, quat, a, a_ref, f_ref, offset)`` the flexion of the
long axis ``a`` in the exercise plane, from the attitude (see its docstring); ``reference_pose``
the attitude and lever-arm outputs of the orientation stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

G_MPS2 = 9.80665
"""Standard gravity (the accelerometer's g), m/s^2."""
INV_G = 1.0 / 9.80665
LEVER_SOLVE_EVERY = 16
"""The lever-arm normal equations are solved every this many samples."""
RAD2DEG = 180.0 / 3.14159265358979323846
DEG2RAD = 3.14159265358979323846 / 180.0
SERIES_H2 = 0.0025
"""Below this squared half-angle (rad^2) the quaternion exponential uses its series."""


@dataclass(frozen=True, slots=True)
class TiltParams:
    """Parameters of one orientation stage (derived from Settings by ``orientation.kernel_params``).

    Attributes
    ----------
    tau_acc_s : accelerometer low-pass time constant in the I frame, s.
    bias_motion_tau_s : time constant of the motion bias estimator, s (0 disables it).
    still_n : still window, samples.
    still_gyro_dps : still threshold on the windowed rms rate about the bias, deg/s.
    bias_n : rest window for the gyro bias, samples (>= 8).
    rest_gyro_dps, rest_acc_g : rest thresholds on the window's rms deviation.
    rest_tilt_deg : gravity's direction may turn this much over a rest window.
    bias_jump_dps : a rest whose mean rate is further from the bias is not used.
    bias_gain : share of the difference a rest moves the bias by.
    max_gap_s : steps longer than this are counted as gaps.
    dt_nominal_s : step assumed for the very first sample when no previous time is given.
    acc_bias_memory : rest pairs the accelerometer-bias estimate remembers (0 disables it).
    acc_bias_ridge : ridge added to the normal equations (turns much smaller than
        ``2 asin(sqrt(ridge) / 2)`` barely move the estimate).
    acc_bias_max_g : the estimate's norm is limited to this, g.
    gap_s : a step longer than this means lost samples (step 8).
    lever_tau_s : memory of the lever-arm fit, s (0 disables step 2a).
    lever_min_dps : samples turning faster than this feed the lever-arm fit.
    lever_ridge : ridge of the lever-arm normal equations, (rad/s^2)^2 (keeps it near 0 until
        the thigh has turned fast enough to show it).
    lever_max_m : the lever arm's length is limited to this, m.
    acc_bias_step_deg : at one rest, a new accelerometer-bias estimate may turn the up vector's
        angle to the reference by at most this (the rest of the change waits for later rests).
    gap_tau_acc_s, gap_recover_s : after lost samples the low-pass runs with time constant
        ``gap_tau_acc_s`` for ``gap_recover_s`` (step 8).
    tau_acc2_s : time constant of the low-pass's second stage, s (0: a single stage).
    acc_bias_turn_deg : a rest pair of step 7 counts with weight ``(1 - (turn / this)^2)^2``
        (0 from ``turn = this`` on), ``turn`` the gyro's path between the two rests (sum over
        steps of the rotation's absolute components, deg).
    still_bias_dps : step 5b: a window whose mean rate lies within this of the bias, with a
        quarter of the still variance, is still too (0 disables it).
    bias_motion_fast_tau_s : step 3b: after an unsure calibration bias the motion bias estimator's
        time constant starts at this and grows by the time since the first sample, up to
        ``bias_motion_tau_s``, until the first bias rest (0 disables it).
    onset_tau_acc_s, onset_decay_s, onset_rest_s : step 2b: a movement that ends a still run of at
        least ``onset_rest_s`` starts with the low-pass's time constant ``onset_tau_acc_s`` (both
        stages scaled alike), relaxing to ``tau_acc_s`` as ``exp(-t / onset_decay_s)``, ``t`` the
        time since the last still sample (off unless ``onset_tau_acc_s > tau_acc_s``).
    bias_trim_n : step 6: a rest window's bias estimate leaves out its last this many samples
        (at most ``bias_n // 2``).
    """

    tau_acc_s: float
    bias_motion_tau_s: float
    still_n: int
    still_gyro_dps: float
    bias_n: int
    rest_gyro_dps: float
    rest_acc_g: float
    rest_tilt_deg: float
    bias_jump_dps: float
    bias_gain: float
    max_gap_s: float
    dt_nominal_s: float
    acc_bias_memory: float = 0.0
    acc_bias_ridge: float = 0.05
    acc_bias_max_g: float = 0.2
    gap_s: float = math.inf
    lever_tau_s: float = 0.0
    lever_min_dps: float = 30.0
    lever_ridge: float = 1.0
    lever_max_m: float = 0.6
    acc_bias_step_deg: float = 180.0
    gap_tau_acc_s: float = 3.0
    gap_recover_s: float = 0.0
    tau_acc2_s: float = 0.0
    acc_bias_turn_deg: float = math.inf
    still_bias_dps: float = 0.0
    bias_motion_fast_tau_s: float = 0.0
    onset_tau_acc_s: float = 0.0
    onset_decay_s: float = 1.0
    onset_rest_s: float = 0.0
    bias_trim_n: int = 0


def _qmul(a: list[float], b: list[float]) -> list[float]:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return [
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ]


def _matrix(w: float, x: float, y: float, z: float) -> list[float]:
    """Row-major rotation matrix of the unit quaternion (w, x, y, z)."""
    return [
        1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - w * z), 2.0 * (x * z + w * y),
        2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - w * x),
        2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y),
    ]


def _solve3(n: list[float], z: list[float]) -> list[float]:
    """Solve the symmetric 3 x 3 system n x = z (row-major n) by cofactors."""
    c00 = n[4] * n[8] - n[5] * n[7]
    c01 = n[5] * n[6] - n[3] * n[8]
    c02 = n[3] * n[7] - n[4] * n[6]
    det = n[0] * c00 + n[1] * c01 + n[2] * c02
    if not det > 0.0:
        return [0.0, 0.0, 0.0]
    c11 = n[0] * n[8] - n[2] * n[6]
    c12 = n[1] * n[6] - n[0] * n[7]
    c22 = n[0] * n[4] - n[1] * n[3]
    inv = 1.0 / det
    return [
        (c00 * z[0] + c01 * z[1] + c02 * z[2]) * inv,
        (c01 * z[0] + c11 * z[1] + c12 * z[2]) * inv,
        (c02 * z[0] + c12 * z[1] + c22 * z[2]) * inv,
    ]


def _rotate(w: float, x: float, y: float, z: float, v: list[float]) -> list[float]:
    """Rotate v by the unit quaternion (w, x, y, z): v + w t + q_v x t with t = 2 q_v x v."""
    tx = 2.0 * (y * v[2] - z * v[1])
    ty = 2.0 * (z * v[0] - x * v[2])
    tz = 2.0 * (x * v[1] - y * v[0])
    return [
        v[0] + w * tx + (y * tz - z * ty),
        v[1] + w * ty + (z * tx - x * tz),
        v[2] + w * tz + (x * ty - y * tx),
    ]


class ReferenceTilt:
    """The orientation stage, one sample at a time (see the module docstring for the steps).

    Parameters
    ----------
    params : the stage's parameters.
    gravity0 : (3,) accelerometer mean at the calibration rest (the I frame starts as the
        sensor frame there, so this starts the low-pass).
    bias0_dps : (3,) gyro bias at the calibration rest.
    t_prev_s : time of the sample before the first one fed, or NaN (then the first step is
        ``dt_nominal_s``).
    bias_unsure : the calibration's bias is unsure (its standard error is large): steps 3b and 6.
    """

    def __init__(
        self, params: TiltParams, gravity0: npt.ArrayLike, bias0_dps: npt.ArrayLike, t_prev_s: float = math.nan, bias_unsure: bool = False
    ) -> None:
        p = self.p = params
        self.unsure = bool(bias_unsure) and p.bias_motion_fast_tau_s > 0.0 and p.bias_motion_tau_s > 0.0
        self.t_first = math.nan
        self.q = [1.0, 0.0, 0.0, 0.0]
        self.lp = [float(v) for v in np.asarray(gravity0, dtype=np.float64)]
        self.lp1 = list(self.lp)  # the low-pass's first stage (lp is its last)
        self.ref_acc = list(self.lp)
        self.acc_bias = [0.0, 0.0, 0.0]
        self.uref = self._uref()
        self.nrm = [0.0] * 9  # normal equations of the accelerometer bias
        self.z = [0.0] * 3
        self.m_prev: list[float] | None = None
        self.pend: list[float] | None = None
        self.step_rad = p.acc_bias_step_deg * DEG2RAD
        self.acc_turn = p.acc_bias_turn_deg * DEG2RAD
        self.turn = 0.0  # the gyro's path since the last rest event, rad (per-axis absolute sum)
        self.y_prev = [0.0] * 3
        self.n_acc_bias_updates = 0
        self.uncertain = False
        self.since_gap = 0  # samples since the last gap (or the start), this one included
        self.recover_left_s = 0.0  # time the shorter low-pass of step 8 still runs
        self.n_gap_snaps = 0
        self.w_prev: list[float] | None = None
        self.lever = [0.0, 0.0, 0.0]
        self.ktk = [0.0] * 6  # 00, 01, 02, 11, 12, 22
        self.kty = [0.0] * 3
        self.lever_n = 0
        self.lever_min2 = (p.lever_min_dps * DEG2RAD) ** 2
        self.bias = [float(v) for v in np.asarray(bias0_dps, dtype=np.float64)]
        self.t_prev = float(t_prev_s)
        self.g_prev: list[float] | None = None
        self.n = 0
        self.cs = 0.0
        self.still_ring = [0.0] * p.still_n
        self.w_pos = 0
        # cumulative sums after each of the last bias_n + 1 samples: g (3), |g|^2, a (3), |a|^2
        self.cum = [0.0] * 8
        self.ring = [[0.0] * 8 for _ in range(p.bias_n + 1)]
        self.r_pos = 0
        self.n_gaps = 0
        self.max_gap_s = 0.0
        self.n_bias_updates = 0
        self.n_still = 0
        self.clip2 = 4.0 * p.still_gyro_dps * p.still_gyro_dps
        self.still2 = p.still_gyro_dps * p.still_gyro_dps
        self.motion_gain = 1.0 / p.bias_motion_tau_s if p.bias_motion_tau_s > 0.0 else 0.0
        self.rest_cos = math.cos(p.rest_tilt_deg * DEG2RAD)
        self.since_still = 0.0  # time since the last still sample (0 while still), s
        self.still_run = 0.0  # length of the current (or the last) still run, s
        self.was_still = False
        self.onset = False  # step 2b applies to this movement
        if not 0 <= p.bias_trim_n <= p.bias_n // 2 or not p.onset_decay_s > 0.0:
            raise ValueError(f"expected 0 <= bias_trim_n <= bias_n / 2 and onset_decay_s > 0, got {p.bias_trim_n} and {p.onset_decay_s}")

    def _uref(self) -> list[float]:
        r = [self.ref_acc[0] - self.acc_bias[0], self.ref_acc[1] - self.acc_bias[1], self.ref_acc[2] - self.acc_bias[2]]
        norm = math.sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2])
        self.g_norm = norm  # the accelerometer's reading of 1 g
        inv = 1.0 / norm
        return [r[0] * inv, r[1] * inv, r[2] * inv]

    def _lever(self, dt: float, g: list[float], a: list[float], q: list[float]) -> list[float]:
        """Step 2a: subtract the thigh's rotational acceleration at the sensor; feed the fit."""
        p = self.p
        b = self.bias
        wx = (g[0] - b[0]) * DEG2RAD
        wy = (g[1] - b[1]) * DEG2RAD
        wz = (g[2] - b[2]) * DEG2RAD
        wp = self.w_prev
        if wp is not None and dt > 0.0:
            idt = 1.0 / dt
            ax = (wx - wp[0]) * idt
            ay = (wy - wp[1]) * idt
            az = (wz - wp[2]) * idt
        else:
            ax = ay = az = 0.0
        self.w_prev = [wx, wy, wz]
        w2 = wx * wx + wy * wy + wz * wz
        # K r = w x (w x r) + alpha x r = (w w^T - |w|^2 I + [alpha]x) r
        k = [
            wx * wx - w2, wx * wy - az, wx * wz + ay,
            wy * wx + az, wy * wy - w2, wy * wz - ax,
            wz * wx - ay, wz * wy + ax, wz * wz - w2,
        ]
        r = self.lever
        out = [
            a[0] - (k[0] * r[0] + k[1] * r[1] + k[2] * r[2]) * INV_G,
            a[1] - (k[3] * r[0] + k[4] * r[1] + k[5] * r[2]) * INV_G,
            a[2] - (k[6] * r[0] + k[7] * r[1] + k[8] * r[2]) * INV_G,
        ]
        if w2 > self.lever_min2:
            lp = self.lp
            inv = self.g_norm / math.sqrt(lp[0] * lp[0] + lp[1] * lp[1] + lp[2] * lp[2])
            gs = _rotate(q[0], -q[1], -q[2], -q[3], [lp[0] * inv, lp[1] * inv, lp[2] * inv])
            y = [(a[0] - gs[0]) * G_MPS2, (a[1] - gs[1]) * G_MPS2, (a[2] - gs[2]) * G_MPS2]
            lam = 1.0 - dt / p.lever_tau_s
            if lam < 0.0:
                lam = 0.0
            t = self.ktk
            t[0] = lam * t[0] + (k[0] * k[0] + k[3] * k[3] + k[6] * k[6])
            t[1] = lam * t[1] + (k[0] * k[1] + k[3] * k[4] + k[6] * k[7])
            t[2] = lam * t[2] + (k[0] * k[2] + k[3] * k[5] + k[6] * k[8])
            t[3] = lam * t[3] + (k[1] * k[1] + k[4] * k[4] + k[7] * k[7])
            t[4] = lam * t[4] + (k[1] * k[2] + k[4] * k[5] + k[7] * k[8])
            t[5] = lam * t[5] + (k[2] * k[2] + k[5] * k[5] + k[8] * k[8])
            z = self.kty
            z[0] = lam * z[0] + (k[0] * y[0] + k[3] * y[1] + k[6] * y[2])
            z[1] = lam * z[1] + (k[1] * y[0] + k[4] * y[1] + k[7] * y[2])
            z[2] = lam * z[2] + (k[2] * y[0] + k[5] * y[1] + k[8] * y[2])
        self.lever_n += 1
        if self.lever_n % LEVER_SOLVE_EVERY == 0:
            t = self.ktk
            rg = p.lever_ridge
            nr = _solve3([t[0] + rg, t[1], t[2], t[1], t[3] + rg, t[4], t[2], t[4], t[5] + rg], self.kty)
            size = math.sqrt(nr[0] * nr[0] + nr[1] * nr[1] + nr[2] * nr[2])
            if size > p.lever_max_m:
                f = p.lever_max_m / size
                nr = [nr[0] * f, nr[1] * f, nr[2] * f]
            self.lever = nr
        return out

    def step(self, t: float, a_raw: list[float], g: list[float]) -> tuple[list[float], list[float], bool, bool]:
        """One sample: time (s), accelerometer (g), gyro (deg/s) -> (up, u_ref, still, rest event)."""
        p = self.p
        if math.isnan(self.t_first):
            self.t_first = t
        ab = self.acc_bias
        a = [a_raw[0] - ab[0], a_raw[1] - ab[1], a_raw[2] - ab[2]]
        dt = t - self.t_prev if not math.isnan(self.t_prev) else p.dt_nominal_s
        if dt > p.max_gap_s:
            self.n_gaps += 1
            if dt > self.max_gap_s:
                self.max_gap_s = dt
        if dt > p.gap_s:
            self.uncertain = True
            self.m_prev = None  # the gyro did not see the gap: no rest pair across it
            self.w_prev = None
            self.since_gap = 0
            self.onset = self.was_still = False  # the gyro bridged the gap: no slower onset (2b)
        self.since_gap += 1
        b = self.bias
        # 1. strapdown: the sample's rate over the step that ends at it, exact exponential. A MEMS
        # gyro's output is its rate filtered over the last output period, so it describes the
        # step before the sample (VQF integrates it so too, Laidig & Seel 2023); the
        # trapezoid of two samples lags by half a step: on BROAD's fast rotation trial it gave
        # 2.29 deg of inclination RMSE against 1.43 this way.
        k = dt * 0.5 * DEG2RAD
        hx = (g[0] - b[0]) * k
        hy = (g[1] - b[1]) * k
        hz = (g[2] - b[2]) * k
        if dt > p.gap_s:
            # lost samples (step 8): their rates taken as linear between the two samples around
            # the gap; each sample's rate covers the step before it, so over (m + 1) nominal steps
            # the rotation is (dt + dt_nominal) / 2 of this rate and (dt - dt_nominal) / 2 of
            # the previous one (dt x the rate alone over-turned a gap at the start of a fast
            # rep by tens of degrees)
            gp = self.g_prev if self.g_prev is not None else g
            kc = (dt + p.dt_nominal_s) * 0.25 * DEG2RAD
            kp = (dt - p.dt_nominal_s) * 0.25 * DEG2RAD
            hx = (g[0] - b[0]) * kc + (gp[0] - b[0]) * kp
            hy = (g[1] - b[1]) * kc + (gp[1] - b[1]) * kp
            hz = (g[2] - b[2]) * kc + (gp[2] - b[2]) * kp
        self.turn = self.turn + 2.0 * (abs(hx) + abs(hy) + abs(hz))
        h2 = hx * hx + hy * hy + hz * hz
        if h2 < SERIES_H2:
            c = 1.0 - h2 / 2.0 + h2 * h2 / 24.0
            s = 1.0 - h2 / 6.0 + h2 * h2 / 120.0
        else:
            h = math.sqrt(h2)
            c = math.cos(h)
            s = math.sin(h) / h
        q = _qmul(self.q, [c, s * hx, s * hy, s * hz])
        inv = 1.0 / math.sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3])
        qw, qx, qy, qz = q[0] * inv, q[1] * inv, q[2] * inv, q[3] * inv
        self.q = [qw, qx, qy, qz]
        # 2a. lever arm (uses the low-pass state of the previous sample)
        if p.lever_tau_s > 0.0:
            a = self._lever(dt, g, a, self.q)
        # 2. accelerometer into the I frame, low-passed there
        a_i = _rotate(qw, qx, qy, qz, a)
        tau = p.tau_acc_s
        recovering = self.recover_left_s > 0.0
        if recovering:
            tau = p.gap_tau_acc_s
            self.recover_left_s -= dt
        if dt > p.gap_s:
            # step 8: from the next sample on (the lever arm's tangential part needs a rate
            # difference again) the low-pass converges fast onto the accelerometer
            self.recover_left_s = p.gap_recover_s
        tau2 = p.tau_acc2_s
        if self.onset and not recovering:
            # 2b. a movement after a long rest: both stages slower, relaxing to tau_acc_s
            r = 1.0 + (p.onset_tau_acc_s / p.tau_acc_s - 1.0) * math.exp(-self.since_still / p.onset_decay_s)
            tau = p.tau_acc_s * r
            tau2 = p.tau_acc2_s * r
        alpha = dt / (tau + 0.5 * dt)
        if alpha > 1.0:
            alpha = 1.0
        f = self.lp1
        f = [f[0] + alpha * (a_i[0] - f[0]), f[1] + alpha * (a_i[1] - f[1]), f[2] + alpha * (a_i[2] - f[2])]
        self.lp1 = f
        lp0 = self.lp
        lp = [f[0], f[1], f[2]]
        if p.tau_acc2_s > 0.0 and not recovering:
            # the second stage (bypassed while recovering from lost samples: lp follows lp1)
            alpha2 = dt / (tau2 + 0.5 * dt)
            if alpha2 > 1.0:
                alpha2 = 1.0
            lp = [lp0[0] + alpha2 * (f[0] - lp0[0]), lp0[1] + alpha2 * (f[1] - lp0[1]), lp0[2] + alpha2 * (f[2] - lp0[2])]
        n2 = lp[0] * lp[0] + lp[1] * lp[1] + lp[2] * lp[2]
        # 3. motion bias: gravity's apparent rotation in the I frame, back in the sensor frame
        # (not across a gap nor while the low-pass recovers from it: that turn is no bias)
        if self.motion_gain > 0.0 and not recovering and not dt > p.gap_s:
            in2 = 1.0 / n2
            rho = [
                (lp0[1] * lp[2] - lp0[2] * lp[1]) * in2,
                (lp0[2] * lp[0] - lp0[0] * lp[2]) * in2,
                (lp0[0] * lp[1] - lp0[1] * lp[0]) * in2,
            ]
            d = _rotate(qw, -qx, -qy, -qz, rho)
            gm = self.motion_gain * RAD2DEG
            if self.unsure:
                # 3b. the time constant grows from the fast one with the time since the start
                te = p.bias_motion_fast_tau_s + (t - self.t_first)
                if te < p.bias_motion_tau_s:
                    gm = RAD2DEG / te
            b[0] = b[0] + gm * d[0]
            b[1] = b[1] + gm * d[1]
            b[2] = b[2] + gm * d[2]
        self.lp = lp
        # 4. up vector in the sensor frame
        ninv = 1.0 / math.sqrt(n2)
        up = _rotate(qw, -qx, -qy, -qz, [lp[0] * ninv, lp[1] * ninv, lp[2] * ninv])
        # 5. still: windowed mean of the clipped squared rate about the bias
        e0, e1, e2 = g[0] - b[0], g[1] - b[1], g[2] - b[2]
        e = e0 * e0 + e1 * e1 + e2 * e2
        if e > self.clip2:
            e = self.clip2
        self.cs = self.cs + e
        win = self.cs - self.still_ring[self.w_pos]
        self.still_ring[self.w_pos] = self.cs
        self.w_pos = self.w_pos + 1 if self.w_pos + 1 < p.still_n else 0
        self.n += 1
        filled = self.n if self.n < p.still_n else p.still_n
        still = win < self.still2 * filled
        # 6. rest windows for the gyro bias
        cum = self.cum
        cum[0] += g[0]
        cum[1] += g[1]
        cum[2] += g[2]
        cum[3] += g[0] * g[0] + g[1] * g[1] + g[2] * g[2]
        cum[4] += a_raw[0]
        cum[5] += a_raw[1]
        cum[6] += a_raw[2]
        cum[7] += a_raw[0] * a_raw[0] + a_raw[1] * a_raw[1] + a_raw[2] * a_raw[2]
        self.ring[self.r_pos] = list(cum)
        cur = self.r_pos
        self.r_pos = self.r_pos + 1 if self.r_pos < p.bias_n else 0
        if not still and self.n > p.still_n and p.still_n <= p.bias_n and p.still_bias_dps > 0.0:
            # 5b. still about the window's own mean rate (the ring holds cumulative sums)
            o = self.ring[(cur - p.still_n) % (p.bias_n + 1)]
            iw = 1.0 / p.still_n
            m0, m1, m2 = (cum[0] - o[0]) * iw, (cum[1] - o[1]) * iw, (cum[2] - o[2]) * iw
            var = (cum[3] - o[3]) * iw - (m0 * m0 + m1 * m1 + m2 * m2)
            d0, d1, d2 = m0 - b[0], m1 - b[1], m2 - b[2]
            still = var < 0.25 * self.still2 and d0 * d0 + d1 * d1 + d2 * d2 < p.still_bias_dps * p.still_bias_dps
        self.n_still += still
        # 5c. the clock of step 2b: a movement that ends a still run of onset_rest_s (no gap in it)
        if still:
            self.still_run = self.still_run + dt if self.was_still else 0.0
            self.since_still = 0.0
            self.onset = False
        else:
            if self.was_still:
                self.onset = p.onset_tau_acc_s > p.tau_acc_s and self.still_run >= p.onset_rest_s
            self.since_still = self.since_still + dt
        self.was_still = bool(still)
        rest = False
        if self.n > p.bias_n and self.n % (p.bias_n // 2) == 0:
            rest = self._rest_event(cur)
            if rest and self.pend is not None:
                self._apply_pending(up)
        if self.uncertain and still and self.since_gap >= p.still_n:
            # (only once the whole still window lies after the gap: a window holding samples
            # from before it mixes poses the thigh left during the gap)
            # 8. restart the low-pass at the still window's mean accelerometer
            old = self.ring[(cur - p.still_n) % (p.bias_n + 1)] if self.n > p.still_n else [0.0] * 8
            inv = 1.0 / p.still_n
            ab = self.acc_bias
            mw = [(cum[4] - old[4]) * inv - ab[0], (cum[5] - old[5]) * inv - ab[1], (cum[6] - old[6]) * inv - ab[2]]
            self.lp = _rotate(self.q[0], self.q[1], self.q[2], self.q[3], mw)
            self.lp1 = list(self.lp)
            self.uncertain = False
            self.n_gap_snaps += 1
        self.g_prev = g
        self.t_prev = t
        return up, self.uref, bool(still), rest

    def _rest_event(self, cur: int) -> bool:
        p = self.p
        nb = p.bias_n
        slots = nb + 1
        qn = nb // 4
        now = self.ring[cur]
        start = self.ring[(cur - nb) % slots]
        q1 = self.ring[(cur - nb + qn) % slots]
        q3 = self.ring[(cur - qn) % slots]
        inv = 1.0 / nb
        mg = [(now[c] - start[c]) * inv for c in range(3)]
        var_g = (now[3] - start[3]) * inv - (mg[0] * mg[0] + mg[1] * mg[1] + mg[2] * mg[2])
        ma = [(now[4 + c] - start[4 + c]) * inv for c in range(3)]
        var_a = (now[7] - start[7]) * inv - (ma[0] * ma[0] + ma[1] * ma[1] + ma[2] * ma[2])
        first = [q1[4 + c] - start[4 + c] for c in range(3)]
        last = [now[4 + c] - q3[4 + c] for c in range(3)]
        dot = first[0] * last[0] + first[1] * last[1] + first[2] * last[2]
        nf = first[0] * first[0] + first[1] * first[1] + first[2] * first[2]
        nl = last[0] * last[0] + last[1] * last[1] + last[2] * last[2]
        b = self.bias
        # the bias estimate leaves out the window's last bias_trim_n samples (a movement's slow start)
        mb = mg
        if p.bias_trim_n > 0:
            mid = self.ring[(cur - p.bias_trim_n) % slots]
            ik = 1.0 / (nb - p.bias_trim_n)
            mb = [(mid[c] - start[c]) * ik for c in range(3)]
        d = [mb[0] - b[0], mb[1] - b[1], mb[2] - b[2]]
        # only the change along gravity is limited: normal to it, the tilt test has verified the
        # rest (a turn of the window's mean rate would have turned gravity)
        da = d[0] * ma[0] + d[1] * ma[1] + d[2] * ma[2]
        na = ma[0] * ma[0] + ma[1] * ma[1] + ma[2] * ma[2]
        if not (
            var_g < p.rest_gyro_dps * p.rest_gyro_dps
            and var_a < p.rest_acc_g * p.rest_acc_g
            and dot > self.rest_cos * math.sqrt(nf * nl)
            and (self.unsure or da * da < p.bias_jump_dps * p.bias_jump_dps * na)
        ):
            return False
        # (an unsure calibration bias: the first quiet rest is the better measure, taken whole)
        gain = 1.0 if self.unsure else p.bias_gain
        b[0] = b[0] + gain * d[0]
        b[1] = b[1] + gain * d[1]
        b[2] = b[2] + gain * d[2]
        self.n_bias_updates += 1
        self.unsure = False
        if p.acc_bias_memory > 0.0:
            self._acc_bias_event(ma)
        return True

    def _acc_bias_event(self, ma: list[float]) -> None:
        """Step 7: one rest pair into the accelerometer-bias estimate."""
        p = self.p
        m = _matrix(*self.q)
        y = [
            m[0] * ma[0] + m[1] * ma[1] + m[2] * ma[2],
            m[3] * ma[0] + m[4] * ma[1] + m[5] * ma[2],
            m[6] * ma[0] + m[7] * ma[1] + m[8] * ma[2],
        ]
        mp = self.m_prev
        self.m_prev = m
        yp = self.y_prev
        self.y_prev = y
        r = self.turn / self.acc_turn
        self.turn = 0.0
        if mp is None:
            return
        # the gyro relates the two poses less well the more it turned between them (Tukey's
        # biweight of the path: 1 at rest, 0 from acc_bias_turn_deg on)
        u = 1.0 - r * r if r < 1.0 else 0.0
        wt = u * u
        am = [m[j] - mp[j] for j in range(9)]
        dy = [y[0] - yp[0], y[1] - yp[1], y[2] - yp[2]]
        lam = 1.0 - 1.0 / p.acc_bias_memory
        nrm, z = self.nrm, self.z
        for i in range(3):
            for c in range(3):
                nrm[3 * i + c] = lam * nrm[3 * i + c] + wt * (am[i] * am[c] + am[3 + i] * am[3 + c] + am[6 + i] * am[6 + c])
            z[i] = lam * z[i] + wt * (am[i] * dy[0] + am[3 + i] * dy[1] + am[6 + i] * dy[2])
        reg = [nrm[0] + p.acc_bias_ridge, nrm[1], nrm[2], nrm[3], nrm[4] + p.acc_bias_ridge, nrm[5], nrm[6], nrm[7], nrm[8] + p.acc_bias_ridge]
        nb = _solve3(reg, z)
        size = math.sqrt(nb[0] * nb[0] + nb[1] * nb[1] + nb[2] * nb[2])
        if size > p.acc_bias_max_g:
            k = p.acc_bias_max_g / size
            nb = [nb[0] * k, nb[1] * k, nb[2] * k]
        self.pend = nb

    def _apply_pending(self, up: list[float]) -> None:
        """Step 7, applying: at any rest, as much of the change as moves the up vector's angle
        to the reference by at most ``acc_bias_step_deg`` (all of it near the reference pose)."""
        m = _matrix(*self.q)
        nb = self.pend
        assert nb is not None
        ab = self.acc_bias
        d = [nb[0] - ab[0], nb[1] - ab[1], nb[2] - ab[2]]
        lp = self.lp
        # the low-pass in the sensor frame, and the up and reference vectors after the full change
        ls = [m[0] * lp[0] + m[3] * lp[1] + m[6] * lp[2], m[1] * lp[0] + m[4] * lp[1] + m[7] * lp[2], m[2] * lp[0] + m[5] * lp[1] + m[8] * lp[2]]
        un = [ls[0] - d[0], ls[1] - d[1], ls[2] - d[2]]
        rn = [self.ref_acc[0] - nb[0], self.ref_acc[1] - nb[1], self.ref_acc[2] - nb[2]]
        r = self.uref
        c0 = (ls[0] * r[0] + ls[1] * r[1] + ls[2] * r[2]) / math.sqrt(ls[0] * ls[0] + ls[1] * ls[1] + ls[2] * ls[2])
        c1 = (un[0] * rn[0] + un[1] * rn[1] + un[2] * rn[2]) / math.sqrt((un[0] * un[0] + un[1] * un[1] + un[2] * un[2]) * (rn[0] * rn[0] + rn[1] * rn[1] + rn[2] * rn[2]))
        jump = abs(math.acos(min(1.0, max(-1.0, c1))) - math.acos(min(1.0, max(-1.0, c0))))
        if jump > self.step_rad:
            k = self.step_rad / jump  # part of it now, the rest at the next rests
            d = [d[0] * k, d[1] * k, d[2] * k]
        else:
            self.pend = None
        # keep the low-pass consistent: its recent inputs carried the old bias
        lp1 = self.lp1
        for j in range(3):
            dj = m[3 * j] * d[0] + m[3 * j + 1] * d[1] + m[3 * j + 2] * d[2]
            lp[j] = lp[j] - dj
            lp1[j] = lp1[j] - dj
        self.acc_bias = [ab[0] + d[0], ab[1] + d[1], ab[2] + d[2]]
        self.uref = self._uref()
        self.n_acc_bias_updates += 1

    def run(self, t: npt.ArrayLike, acc: npt.ArrayLike, gyr: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Samples (N,), (N, 3), (N, 3) -> up (N, 3), u_ref (N, 3), still (N,) bool, rest events (N,) bool."""
        tt = np.asarray(t, dtype=np.float64).tolist()
        aa = np.asarray(acc, dtype=np.float64).tolist()
        gg = np.asarray(gyr, dtype=np.float64).tolist()
        up = np.empty((len(tt), 3))
        uref = np.empty((len(tt), 3))
        still = np.empty(len(tt), dtype=bool)
        rest = np.empty(len(tt), dtype=bool)
        for i, (ti, ai, gi) in enumerate(zip(tt, aa, gg)):
            u, ur, s, r = self.step(ti, ai, gi)
            up[i] = u
            uref[i] = ur
            still[i] = s
            rest[i] = r
        return up, uref, still, rest


def reference_pose(tilt: ReferenceTilt, t: npt.ArrayLike, acc: npt.ArrayLike, gyr: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """``ReferenceTilt.run``'s extra outputs of ``TiltKernel.run`` (quat_out, lever_out): the
    attitude (N, 4) after each sample and the lever-arm estimate (N, 3) after it; runs ``tilt``."""
    tt = np.asarray(t, dtype=np.float64).tolist()
    aa = np.asarray(acc, dtype=np.float64).tolist()
    gg = np.asarray(gyr, dtype=np.float64).tolist()
    quat = np.empty((len(tt), 4))
    lever = np.empty((len(tt), 3))
    for i, (ti, ai, gi) in enumerate(zip(tt, aa, gg)):
        tilt.step(ti, ai, gi)
        quat[i] = tilt.q
        lever[i] = tilt.lever
    return quat, lever


def reference_tilt_angle(up: npt.ArrayLike, u_ref: npt.ArrayLike, f: npt.ArrayLike, offset_deg: float = 0.0) -> np.ndarray:
    """The heading-free angle (deg) per pair of up vectors (N, 3) (reference may be one (3,)
    vector) about axis f (3,): when the thigh turns by ``d`` about ``f`` the up vector turns by
    ``-d`` about ``f`` in the sensor frame, so with both vectors projected onto the plane normal
    to ``f``, ``d = atan2(f . (up x u_ref), up_p . u_ref_p) + offset``. Exact for a movement in
    the plane; abduction and rotation about the long axis enter it to second order."""
    fa = [float(v) for v in np.asarray(f)]
    uu = np.asarray(up, dtype=np.float64)
    rr = np.broadcast_to(np.asarray(u_ref, dtype=np.float64), uu.shape)
    out = []
    for u, r in zip(uu.tolist(), rr.tolist()):
        cx = u[1] * r[2] - u[2] * r[1]
        cy = u[2] * r[0] - u[0] * r[2]
        cz = u[0] * r[1] - u[1] * r[0]
        y = fa[0] * cx + fa[1] * cy + fa[2] * cz
        uf = u[0] * fa[0] + u[1] * fa[1] + u[2] * fa[2]
        rf = r[0] * fa[0] + r[1] * fa[1] + r[2] * fa[2]
        x = (u[0] * r[0] + u[1] * r[1] + u[2] * r[2]) - uf * rf
        out.append(math.atan2(y, x) * RAD2DEG + offset_deg)
    return np.array(out)


def reference_hip_angle(
    up: npt.ArrayLike,
    g_ref: npt.ArrayLike,
    quat: npt.ArrayLike,
    long_axis: npt.ArrayLike,
    long_ref: npt.ArrayLike,
    axis_ref: npt.ArrayLike,
    offset_deg: float = 0.0,
) -> np.ndarray:
    """Hip angle (deg) per sample: the flexion of the thigh's long axis in the exercise plane.

    The exercise plane is normal to the flexion axis ``axis_ref`` (I frame) at the reference
    rest, where the long axis was ``long_ref`` (I frame). Per sample the long axis
    ``long_axis`` (sensor frame) is taken into the I frame by the attitude ``quat`` (N, 4) and
    the I frame's tilt drift is undone by the smallest rotation C taking gravity's direction
    now, ``quat up``, to the reference's ``g_ref`` (N, 3) (or (3,)): ``v = C quat long_axis``;
    the angle is ``atan2(axis_ref . (long_ref x v), long_ref . v) + offset``: the angle of the
    long axis projected on the exercise plane, the hip flexion of the ISB joint coordinate
    system (Wu et al. 2002, J. Biomech. 35(4):543-548; Grood & Suntay 1983, J. Biomech. Eng.
    105(2):136-144: flexion about the proximal segment's mediolateral axis, before abduction
    and axial rotation), so abduction and rotation about the long axis do not enter it.
    """
    uu = np.asarray(up, dtype=np.float64).tolist()
    gg = np.broadcast_to(np.asarray(g_ref, dtype=np.float64), (len(uu), 3)).tolist()
    qq = np.asarray(quat, dtype=np.float64).tolist()
    a = [float(x) for x in np.asarray(long_axis)]
    al = [float(x) for x in np.asarray(long_ref)]
    f = [float(x) for x in np.asarray(axis_ref)]
    out = []
    for u, r, q in zip(uu, gg, qq):
        g = _rotate(q[0], q[1], q[2], q[3], u)
        v = _rotate(q[0], q[1], q[2], q[3], a)
        kx = g[1] * r[2] - g[2] * r[1]
        ky = g[2] * r[0] - g[0] * r[2]
        kz = g[0] * r[1] - g[1] * r[0]
        c = g[0] * r[0] + g[1] * r[1] + g[2] * r[2]
        kv = (kx * v[0] + ky * v[1] + kz * v[2]) / (1.0 + c)
        w0 = c * v[0] + (ky * v[2] - kz * v[1]) + kx * kv
        w1 = c * v[1] + (kz * v[0] - kx * v[2]) + ky * kv
        w2 = c * v[2] + (kx * v[1] - ky * v[0]) + kz * kv
        cx = al[1] * w2 - al[2] * w1
        cy = al[2] * w0 - al[0] * w2
        cz = al[0] * w1 - al[1] * w0
        y = f[0] * cx + f[1] * cy + f[2] * cz
        x = al[0] * w0 + al[1] * w1 + al[2] * w2
        out.append(math.atan2(y, x) * RAD2DEG + offset_deg)
    return np.array(out)
