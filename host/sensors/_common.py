"""Shared pieces of the per-model sensor support: configuration, commands, clocks, the model record.

Every model's decoder turns the notifications of its characteristics into
:class:`~legrep.model.ImuBlock` values on the host's session clock (seconds, g, deg/s), the same
block form the legrep decoder produces, so the analysis and the recording code are shared.

Two ways to put samples on the session clock:

* :class:`DeviceClockMapper` for sensors that timestamp samples (Movella DOT, Polar): device time
  plus a fixed offset taken from the first notification (its arrival time minus the device time of
  its last sample).
* :class:`ArrivalClock` for sensors that send no timestamp at all (WitMotion frames, MetaWear
  streaming): a nominal-rate grid anchored on arrival times. Said so in the diagnostics
  (``time_from_arrival = 1``) because tempo figures then rest on the configured rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ..diagnostics import ArrivalTiming, DecoderDiagnostics, DeviceTiming
from ..errors import InputError
from ..model import ImuBlock

FloatArray = npt.NDArray[np.float64]

# Standard acceleration of gravity, exactly (3rd CGPM 1901; ISO 80000-3:2019).
STANDARD_GRAVITY_MPS2 = 9.80665


@dataclass(frozen=True, slots=True)
class SensorConfig:
    """What legrep asks a sensor for.

    Attributes
    ----------
    rate_hz : output data rate.
    acc_range_g : accelerometer full scale (+-), g.
    gyr_range_dps : gyroscope full scale (+-), deg/s.
    """

    rate_hz: float
    acc_range_g: float
    gyr_range_dps: float

    def to_dict(self) -> dict[str, float]:
        return {"rate_hz": self.rate_hz, "acc_range_g": self.acc_range_g, "gyr_range_dps": self.gyr_range_dps}

    @staticmethod
    def from_dict(value: dict[str, object]) -> "SensorConfig":
        try:
            return SensorConfig(float(value["rate_hz"]), float(value["acc_range_g"]), float(value["gyr_range_dps"]))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"sensor config needs rate_hz, acc_range_g, gyr_range_dps; got {value!r} ({exc})") from None


@dataclass(frozen=True, slots=True)
class Write:
    """One GATT write the host sends to configure, start or stop a sensor."""

    char_uuid: str
    data: bytes
    response: bool = True


class Decoder(Protocol):
    """Notifications in, blocks of samples on the session clock out (I/O free).

    ``channel`` is the index of the notifying characteristic in :attr:`SensorModel.notify_uuids`.
    """

    def feed(self, channel: int, data: bytes, arrival_s: float) -> ImuBlock | None: ...

    def flush(self) -> ImuBlock | None: ...

    def diagnostics(self) -> DecoderDiagnostics: ...


@dataclass(frozen=True, slots=True)
class SensorModel:
    """Everything legrep knows about one sensor model.

    Attributes
    ----------
    name : the ``--sensor`` value (``witmotion``, ``movella-dot``...).
    title : product name for people.
    service_uuid : the primary service that identifies the model.
    notify_uuids : characteristics to subscribe to; a notification's channel is its index here.
    name_prefixes : advertised local names that identify the model.
    rates_hz : output rates the model supports (the first is legrep's default).
    default_config : what legrep configures unless told otherwise.
    timestamps : ``"device"`` (the sensor stamps samples) or ``"arrival"`` (derived on the host).
    configure, start, stop : the GATT writes for a configuration.
    make_decoder : a fresh decoder for a configuration.
    """

    name: str
    title: str
    service_uuid: str
    notify_uuids: tuple[str, ...]
    name_prefixes: tuple[str, ...]
    rates_hz: tuple[float, ...]
    default_config: SensorConfig
    timestamps: str
    configure: Callable[[SensorConfig], list[Write]] = field(repr=False)
    start: Callable[[SensorConfig], list[Write]] = field(repr=False)
    stop: Callable[[SensorConfig], list[Write]] = field(repr=False)
    make_decoder: Callable[[SensorConfig], Decoder] = field(repr=False)

    def config(self, rate_hz: float | None = None) -> SensorConfig:
        """The default configuration, at ``rate_hz`` if given (InputError if the model lacks it)."""
        if rate_hz is None:
            return self.default_config
        if float(rate_hz) not in self.rates_hz:
            raise InputError(f"{self.name}: rate must be one of {list(self.rates_hz)} Hz, got {rate_hz}")
        d = self.default_config
        return SensorConfig(float(rate_hz), d.acc_range_g, d.gyr_range_dps)


class ArrivalClock:
    """Sample times for a sensor without timestamps: a nominal-rate grid anchored on arrivals.

    The last sample of a notification cannot have been taken after the notification arrived, so a
    predicted time later than the arrival is pulled back to it (the grid follows the least-delayed
    arrivals, and a sensor clock slightly fast of nominal). A notification arriving more than
    ``gap_s`` later than predicted means samples were lost (or the sensor stalled): the grid jumps
    forward. Both are counted in :meth:`diagnostics`.

    Parameters
    ----------
    rate_hz : the configured output rate.
    gap_s : lateness beyond which a gap is assumed. Well above BLE batching (7.5-50 ms connection
        intervals) and host scheduling stalls, which deliver late bursts, not losses: BLE's link
        layer retransmits, so samples are lost mainly across a dropped link, which lasts seconds.
    """

    def __init__(self, rate_hz: float, gap_s: float = 1.0) -> None:
        if not rate_hz > 0:
            raise InputError(f"rate_hz must be > 0, got {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.gap_s = float(gap_s)
        self._next_t: float | None = None
        self._last_t = -np.inf
        self.samples = 0
        self.pullbacks = 0
        self.gaps = 0
        self.lost_estimate = 0

    def assign(self, n: int, arrival_s: float) -> FloatArray:
        """Times (n,) of ``n`` consecutive samples whose notification arrived at ``arrival_s``."""
        period = 1.0 / self.rate_hz
        if self._next_t is None:
            self._next_t = arrival_s - (n - 1) * period
        else:
            lag = arrival_s - (self._next_t + (n - 1) * period)
            if lag < 0.0:
                self._next_t = max(self._next_t + lag, self._last_t + 0.5 * period)
                self.pullbacks += 1
            elif lag > self.gap_s:
                self._next_t += lag
                self.gaps += 1
                self.lost_estimate += int(round(lag * self.rate_hz))
        times = self._next_t + np.arange(n, dtype=np.float64) * period
        self._next_t = float(times[-1]) + period
        self._last_t = float(times[-1])
        self.samples += n
        return times

    def diagnostics(self) -> ArrivalTiming:
        return ArrivalTiming(pullbacks=int(self.pullbacks), gaps=int(self.gaps), lost_estimate=int(self.lost_estimate))


class DeviceClockMapper:
    """Device timestamps (s) -> session seconds with a fixed offset from the first notification.

    The offset is the first notification's arrival time minus the device time of its last sample,
    so session times keep the sensor's own spacing. ``latency_spread_s`` reports how much later
    than that the other notifications arrived (BLE batching and jitter).
    """

    def __init__(self) -> None:
        self.offset_s: float | None = None
        self._min_lag = np.inf
        self._max_lag = -np.inf

    def plausible(self, device_last_s: float, arrival_s: float, tolerance_s: float) -> bool:
        """Whether a notification whose last sample has device time ``device_last_s`` can have
        arrived at ``arrival_s``: a sample cannot arrive before it was measured, so its lag (arrival
        minus mapped device time) may not fall more than ``tolerance_s`` below the smallest lag seen
        so far (which follows a drifting device clock slowly). A timestamp that jumped forward (a
        flipped bit) fails; late arrival (buffering, reconnection) never does."""
        if self.offset_s is None or not np.isfinite(self._min_lag):
            return bool(np.isfinite(device_last_s))
        lag = arrival_s - (device_last_s + self.offset_s)
        return bool(lag >= self._min_lag - tolerance_s)

    def map(self, device_s: FloatArray, arrival_s: float) -> FloatArray:
        last = float(device_s[-1])
        if self.offset_s is None:
            self.offset_s = arrival_s - last
        lag = arrival_s - (last + self.offset_s)
        self._min_lag = min(self._min_lag, lag)
        self._max_lag = max(self._max_lag, lag)
        return device_s + self.offset_s

    def diagnostics(self) -> DeviceTiming:
        spread = self._max_lag - self._min_lag if self.offset_s is not None else 0.0
        return DeviceTiming(latency_spread_s=float(spread))


def timestamp_tolerance_s(rate_hz: float) -> float:
    """How far ahead of its arrival a device timestamp may seem before it is taken for damage:
    0.1 s or three sample periods (BLE connection intervals are 7.5-50 ms: Bluetooth Core 5.3,
    Vol 6, Part B, 4.5.1)."""
    return max(0.1, 3.0 / rate_hz)


def unwrap_counter(value: int, last_unwrapped: int | None, modulus: int) -> int:
    """Unwrap a wrapping counter (``value`` in [0, modulus)) to the candidate nearest the last one."""
    if last_unwrapped is None:
        return value
    base = last_unwrapped - (last_unwrapped % modulus)
    candidates = (base - modulus + value, base + value, base + modulus + value)
    return min(candidates, key=lambda c: abs(c - last_unwrapped))


def make_block(time_s: FloatArray, acc_g: FloatArray, gyr_dps: FloatArray) -> ImuBlock | None:
    """An ImuBlock, or None when there are no samples."""
    if time_s.size == 0:
        return None
    return ImuBlock(
        np.ascontiguousarray(time_s, dtype=np.float64),
        np.ascontiguousarray(acc_g, dtype=np.float64).reshape(-1, 3),
        np.ascontiguousarray(gyr_dps, dtype=np.float64).reshape(-1, 3),
    )
