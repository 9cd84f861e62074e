"""What a thigh IMU measures: rigid-body physics plus realistic sensor errors.

The thigh is a rigid body rotating about the hip joint (see :mod:`legrep_sim.motion` for
frames). The sensor sits at ``offset_thigh_m`` from the hip, in any mounting orientation
``mounting`` (sensor -> thigh rotation). It measures

* specific force ``f = R_ws^T (a_sensor - g_world)`` with ``g_world = (0, 0, -g)`` (so at rest
  the accelerometer reads +1 g *up*), including tangential, centripetal and whole-body terms;
* angular velocity in the sensor frame, ``omega_s = R_ws^T omega_world``.

Both are analytic (no numerical differentiation). Sensor errors (:class:`SensorErrors`)
are then applied: biases, bias random walk, scale errors, white noise, int16 quantisation
and saturation, the device clock (drift, offset, timestamp jitter) and lost samples.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from .motion import FloatArray, LegMotion

G_MPS2 = 9.80665
"""Standard gravity (CGPM 1901; ISO 80000-3)."""

Int16Array = npt.NDArray[np.int16]
Vec3 = tuple[float, float, float]

LEVELS = ("none", "typical", "harsh")


def _uniform3(rng: np.random.Generator, limit: float) -> Vec3:
    a = rng.uniform(-limit, limit, 3)
    return (float(a[0]), float(a[1]), float(a[2]))


@dataclass(frozen=True, slots=True)
class SensorErrors:
    """Errors of one IMU and its clock. All zero means an ideal (but still int16) sensor.

    Attributes
    ----------
    gyr_bias_dps : initial gyro bias per axis.
    gyr_bias_walk_dps_rt_s : bias random walk, deg/s per sqrt(s).
    gyr_noise_dps_rt_hz : gyro white-noise density; per-sample std = density * sqrt(rate/2).
    gyr_scale : relative gyro scale error per axis (0.02 = +2 %).
    acc_scale_common : relative accelerometer scale error shared by the axes.
    acc_scale_axis : extra per-axis relative accelerometer scale mismatch.
    acc_bias_g : accelerometer bias per axis.
    acc_noise_g_rt_hz : accelerometer white-noise density.
    acc_range_g, gyr_range_dps : full-scale ranges; LSB = range / 32768.
    clock_drift_ppm : the device clock runs fast by this much (negative: slow).
    clock_offset_s : session time at which the device clock reads 0.
    jitter_frac : std of the reported timestamp error, as a fraction of the sample period.
    lost_fraction : fraction of samples lost (in bursts).
    lost_burst_mean : mean length of a loss burst, samples.
    """

    gyr_bias_dps: Vec3 = (0.0, 0.0, 0.0)
    gyr_bias_walk_dps_rt_s: float = 0.0
    gyr_noise_dps_rt_hz: float = 0.0
    gyr_scale: Vec3 = (0.0, 0.0, 0.0)
    acc_scale_common: float = 0.0
    acc_scale_axis: Vec3 = (0.0, 0.0, 0.0)
    acc_bias_g: Vec3 = (0.0, 0.0, 0.0)
    acc_noise_g_rt_hz: float = 0.0
    acc_range_g: float = 16.0
    gyr_range_dps: float = 2000.0
    clock_drift_ppm: float = 0.0
    clock_offset_s: float = 0.0
    jitter_frac: float = 0.0
    lost_fraction: float = 0.0
    lost_burst_mean: float = 8.0

    @property
    def acc_lsb_g(self) -> float:
        """Accelerometer LSB; +-16 g -> 1/2048 g (Bosch BMI270 datasheet BST-BMI270-DS000, sensitivity 2048 LSB/g)."""
        return self.acc_range_g / 32768.0

    @property
    def gyr_lsb_dps(self) -> float:
        """Gyro LSB; +-2000 dps -> 0.061 dps (BMI270 datasheet: 16.4 LSB/(deg/s) at +-2000 dps)."""
        return self.gyr_range_dps / 32768.0

    @classmethod
    def random(cls, rng: np.random.Generator, level: str) -> "SensorErrors":
        """Draw the errors of one sensor at an error ``level`` ("none", "typical", "harsh").

        Timing fields (drift, offset, jitter, losses) stay zero: a scenario sets them.

        Raises
        ------
        ValueError
            If ``level`` is not one of the three levels.
        """
        if level not in LEVELS:
            raise ValueError(f"error level must be one of {LEVELS}, got {level!r}")
        if level == "none":
            return cls()
        harsh = level == "harsh"
        return cls(
            gyr_bias_dps=_uniform3(rng, 5.0 if harsh else 2.5),
            gyr_bias_walk_dps_rt_s=0.03 if harsh else 0.005,
            # BMI270 datasheet (BST-BMI270-DS000): gyro noise density 0.007 dps/sqrt(Hz).
            gyr_noise_dps_rt_hz=0.03 if harsh else 0.007,
            gyr_scale=_uniform3(rng, 0.02 if harsh else 0.01),
            acc_scale_common=float(rng.uniform(-0.3, 0.3) if harsh else rng.uniform(-0.1, 0.1)),
            acc_scale_axis=_uniform3(rng, 0.02 if harsh else 0.01),
            acc_bias_g=_uniform3(rng, 0.1 if harsh else 0.03),
            # BMI270 datasheet: accelerometer noise density 160 ug/sqrt(Hz).
            acc_noise_g_rt_hz=600e-6 if harsh else 160e-6,
        )

    def with_timing(self, **changes: Any) -> "SensorErrors":
        """A copy with some fields replaced (clock and loss settings)."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Mounting:
    """Where and how the sensor sits on the thigh.

    Attributes
    ----------
    rot : (3, 3) thigh-from-sensor rotation (columns: sensor axes in the thigh frame).
    offset_thigh_m : (3,) sensor position from the hip joint, thigh frame (x distal, z anterior).
    """

    rot: FloatArray
    offset_thigh_m: FloatArray

    @classmethod
    def aligned(cls) -> "Mounting":
        """Sensor x along the thigh (distal), z out of the front, 0.20 m from the hip, 5 cm in front."""
        return cls(np.eye(3), np.array([0.20, 0.0, 0.05]))

    @classmethod
    def random(cls, rng: np.random.Generator) -> "Mounting":
        """Uniformly random orientation; 0.15-0.25 m along the thigh, 3-8 cm in front."""
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        w, x, y, z = q
        rot = np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
            ]
        )
        offset = np.array([rng.uniform(0.15, 0.25), rng.uniform(-0.02, 0.02), rng.uniform(0.03, 0.08)])
        return cls(rot, offset)


@dataclass(frozen=True, slots=True)
class IdealImu:
    """Error-free sensor readings at given instants.

    Attributes
    ----------
    acc_g : (N, 3) specific force in g, sensor frame.
    gyr_dps : (N, 3) angular rate in deg/s, sensor frame.
    """

    acc_g: FloatArray
    gyr_dps: FloatArray


def ideal_imu(motion: LegMotion, mounting: Mounting, true_time_s: npt.ArrayLike) -> IdealImu:
    """Exact accelerometer and gyroscope readings of a sensor on a moving thigh.

    Parameters
    ----------
    motion : the thigh's movement programme.
    mounting : sensor orientation and position on the thigh.
    true_time_s : (N,) session times (s) at which the sensor samples.
    """
    t = np.asarray(true_time_s, dtype=np.float64)
    kin = motion.kinematics(t)
    acc_w = kin.point_acc_mps2(mounting.offset_thigh_m)
    spec_w = acc_w - np.array([0.0, 0.0, -G_MPS2])
    world_from_sensor = kin.rot @ mounting.rot
    # R^T v for each sample: einsum over the first index of R.
    spec_s = np.einsum("nji,nj->ni", world_from_sensor, spec_w)
    omega_s = np.einsum("nji,nj->ni", world_from_sensor, kin.omega_rps)
    return IdealImu(spec_s / G_MPS2, np.degrees(omega_s))


def quantise(values: FloatArray, lsb: float) -> Int16Array:
    """Round to the nearest LSB and saturate at the int16 limits."""
    return np.clip(np.rint(values / lsb), -32768, 32767).astype(np.int16)


@dataclass(frozen=True, slots=True)
class DeviceClock:
    """When a device samples and what it reports.

    Attributes
    ----------
    sample_index : (N,) int64 device sample counter.
    true_time_s : (N,) session time of each sample.
    time_s : (N,) timestamp the device reports (its own clock, with jitter).
    """

    sample_index: npt.NDArray[np.int64]
    true_time_s: FloatArray
    time_s: FloatArray


def device_clock(duration_s: float, rate_hz: float, errors: SensorErrors, rng: np.random.Generator) -> DeviceClock:
    """Sample instants of a device that runs from session time ``clock_offset_s`` to ``duration_s``.

    The device samples when its clock reads ``k / rate_hz``; its clock runs fast by
    ``clock_drift_ppm``. Reported timestamps carry Gaussian jitter (std ``jitter_frac`` of a
    period, clipped to +-0.45 period so they stay strictly increasing).
    """
    if rate_hz <= 0.0:
        raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
    factor = 1.0 + errors.clock_drift_ppm * 1e-6
    n = int(np.floor((duration_s - errors.clock_offset_s) * factor * rate_hz)) + 1
    k = np.arange(max(n, 0), dtype=np.int64)
    device_s = k / rate_hz
    true_s = errors.clock_offset_s + device_s / factor
    jitter = np.clip(rng.normal(0.0, errors.jitter_frac, k.size), -0.45, 0.45) / rate_hz if errors.jitter_frac > 0 else 0.0
    return DeviceClock(k, true_s, device_s + jitter)


def lost_mask(n: int, fraction: float, burst_mean: float, rng: np.random.Generator, protect: int = 0) -> npt.NDArray[np.bool_]:
    """(n,) True for samples that arrive; about ``fraction`` of them lost.

    A loss event drops a single sample (30 % of events) or a burst whose length is
    geometric with mean ``burst_mean``; the first ``protect`` samples (the calibration
    pose) and the last one are never lost.
    """
    keep = np.ones(n, dtype=bool)
    if fraction <= 0.0 or n <= protect + 2 * burst_mean + 4:
        return keep
    if not 0.0 <= fraction < 0.5:
        raise ValueError(f"lost fraction must be in [0, 0.5), got {fraction}")
    target = int(round(fraction * n))
    p = 1.0 / max(burst_mean, 1.0)
    longest = n - 2 - protect
    lost = 0
    while lost < target:
        length = 1 if rng.random() < 0.3 else int(rng.geometric(p))
        length = min(length, target - lost, longest)
        start = int(rng.integers(protect, n - 1 - length + 1))
        lost += int(np.count_nonzero(keep[start : start + length]))
        keep[start : start + length] = False
    return keep


@dataclass(frozen=True, slots=True)
class SensorOutput:
    """What a device streams (after losses).

    Attributes
    ----------
    sample_index : (N,) int64; gaps where samples were lost.
    time_s : (N,) reported timestamps.
    true_time_s : (N,) session time of each sample.
    acc_raw, gyr_raw : (N, 3) int16 raw readings.
    acc_lsb_g, gyr_lsb_dps : scale of one LSB.
    """

    sample_index: npt.NDArray[np.int64]
    time_s: FloatArray
    true_time_s: FloatArray
    acc_raw: Int16Array
    gyr_raw: Int16Array
    acc_lsb_g: float
    gyr_lsb_dps: float


def render(
    motion: LegMotion,
    mounting: Mounting,
    errors: SensorErrors,
    clock: DeviceClock,
    rate_hz: float,
    rng: np.random.Generator,
    protect_s: float = 1.0,
    chunk: int = 50_000,
) -> SensorOutput:
    """Evaluate a leg's motion at the device's true sample times and make its sensor output.

    Parameters
    ----------
    motion, mounting : what the thigh does and where the sensor sits.
    errors : sensor and clock errors (clock errors are already in ``clock``).
    clock : sample instants from :func:`device_clock`.
    rate_hz : nominal output data rate (for the noise bandwidth).
    rng : randomness for noise, bias walk and losses.
    protect_s : no sample is lost in the first ``protect_s`` seconds (calibration pose).
    chunk : samples evaluated at once (bounds memory on long sessions).
    """
    t = clock.true_time_s
    n = t.size
    acc = np.empty((n, 3))
    gyr = np.empty((n, 3))
    for i in range(0, n, chunk):
        ideal = ideal_imu(motion, mounting, t[i : i + chunk])
        acc[i : i + chunk] = ideal.acc_g
        gyr[i : i + chunk] = ideal.gyr_dps
    # Gyroscope: scale, bias + random walk, white noise.
    bias = np.broadcast_to(np.asarray(errors.gyr_bias_dps), (n, 3)).copy()
    if errors.gyr_bias_walk_dps_rt_s > 0.0 and n > 1:
        dt = np.diff(t, prepend=t[0])[:, None]
        bias += np.cumsum(rng.normal(0.0, 1.0, (n, 3)) * np.sqrt(dt), axis=0) * errors.gyr_bias_walk_dps_rt_s
    gyr = gyr * (1.0 + np.asarray(errors.gyr_scale)) + bias
    if errors.gyr_noise_dps_rt_hz > 0.0:
        gyr += rng.normal(0.0, errors.gyr_noise_dps_rt_hz * np.sqrt(rate_hz / 2.0), (n, 3))
    # Accelerometer: common and per-axis scale, bias, white noise.
    acc = acc * (1.0 + errors.acc_scale_common) * (1.0 + np.asarray(errors.acc_scale_axis)) + np.asarray(errors.acc_bias_g)
    if errors.acc_noise_g_rt_hz > 0.0:
        acc += rng.normal(0.0, errors.acc_noise_g_rt_hz * np.sqrt(rate_hz / 2.0), (n, 3))
    acc_raw = quantise(acc, errors.acc_lsb_g)
    gyr_raw = quantise(gyr, errors.gyr_lsb_dps)
    keep = lost_mask(n, errors.lost_fraction, errors.lost_burst_mean, rng, protect=int(np.ceil(protect_s * rate_hz)))
    return SensorOutput(
        sample_index=clock.sample_index[keep],
        time_s=clock.time_s[keep],
        true_time_s=clock.true_time_s[keep],
        acc_raw=acc_raw[keep],
        gyr_raw=gyr_raw[keep],
        acc_lsb_g=errors.acc_lsb_g,
        gyr_lsb_dps=errors.gyr_lsb_dps,
    )
