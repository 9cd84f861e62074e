"""Movella DOT (formerly Xsens DOT): "Rate quantities" payload over BLE.

Facts from *Movella DOT BLE Service Specification*, document XD0506P, revision C (July 2023):

* UUIDs are ``1517xxxx-4947-11e9-8646-d663bd873d93`` (section 1.1); all fields little-endian (1.3);
  advertised name "Movella DOT" (firmware 2.x) or "Xsens DOT" (older), table 4.
* Configuration service 0x1000, Device control 0x1002 (32 bytes, table 7): byte 0 "visit index"
  bitmask, b4 = output rate; output rate u16 at byte 24 (after identifying, power off, 4 power
  saving bytes, tag length, 16-byte tag). Rates 1, 4, 10, 12, 15, 20, 30, 60 Hz (120 Hz only for
  recording).
* Measurement service 0x2000, Control 0x2001 = ``[type 1 (measurement), action 1 start / 0 stop,
  payload mode]`` (table 13); payload mode 21 = "Rate quantities", 28 bytes on the Medium payload
  characteristic 0x2003 (table 15, trailing unused bytes are 0x00): u32 timestamp (us, sensor
  clock), acceleration x,y,z float32 (m/s^2, calibrated, sensor frame), angular velocity x,y,z
  float32 (deg/s) (table 17).

Quirks handled: the u32 microsecond timestamp wraps every 71.6 min (unwrapped); duplicated or
out-of-order notifications (timestamp not after the last one) are dropped and counted; gaps
(lost notifications) are counted from the timestamps.
"""

from __future__ import annotations

import struct

import numpy as np

from ..diagnostics import MovellaDotDiagnostics
from ..model import ImuBlock
from ._common import (
    STANDARD_GRAVITY_MPS2,
    DeviceClockMapper,
    SensorConfig,
    SensorModel,
    Write,
    make_block,
    timestamp_tolerance_s,
    unwrap_counter,
)


def dot_uuid(short: int) -> str:
    """The full UUID of a DOT attribute from its 16-bit short form (spec section 1.1)."""
    return f"1517{short:04x}-4947-11e9-8646-d663bd873d93"


CONFIG_SERVICE_UUID = dot_uuid(0x1000)
DEVICE_CONTROL_UUID = dot_uuid(0x1002)
MEASUREMENT_SERVICE_UUID = dot_uuid(0x2000)
CONTROL_UUID = dot_uuid(0x2001)
MEDIUM_PAYLOAD_UUID = dot_uuid(0x2003)

CONTROL_TYPE_MEASUREMENT = 1  # table 13
ACTION_STOP = 0
ACTION_START = 1
PAYLOAD_RATE_QUANTITIES = 21  # table 13
RATE_QUANTITIES_BYTES = 28  # table 15
DEVICE_CONTROL_BYTES = 32  # table 7
VISIT_OUTPUT_RATE = 0x10  # table 7: visit index b4
OUTPUT_RATE_OFFSET = 24  # table 7: 1+1+1+4+1+16 bytes precede it
RATES_HZ = (60.0, 30.0, 20.0, 15.0, 12.0, 10.0, 4.0, 1.0)  # table 7 (120 Hz: recording only)
ACC_RANGE_G = 16.0  # nominal full scale, informative only: the payload carries calibrated floats
GYR_RANGE_DPS = 2000.0  # nominal full scale, informative only
TIMESTAMP_MODULUS = 1 << 32
_RATE_QUANTITIES = struct.Struct("<I6f")


def device_control_rate(rate_hz: float) -> bytes:
    """The 32-byte Device control write that sets only the output rate."""
    if float(rate_hz) not in RATES_HZ:
        raise ValueError(f"movella-dot: rate must be one of {sorted(RATES_HZ)} Hz, got {rate_hz}")
    out = bytearray(DEVICE_CONTROL_BYTES)
    out[0] = VISIT_OUTPUT_RATE
    struct.pack_into("<H", out, OUTPUT_RATE_OFFSET, int(rate_hz))
    return bytes(out)


def configure(config: SensorConfig) -> list[Write]:
    return [Write(DEVICE_CONTROL_UUID, device_control_rate(config.rate_hz))]


def start(_config: SensorConfig) -> list[Write]:
    return [Write(CONTROL_UUID, bytes([CONTROL_TYPE_MEASUREMENT, ACTION_START, PAYLOAD_RATE_QUANTITIES]))]


def stop(_config: SensorConfig) -> list[Write]:
    return [Write(CONTROL_UUID, bytes([CONTROL_TYPE_MEASUREMENT, ACTION_STOP, PAYLOAD_RATE_QUANTITIES]))]


def decode_rate_quantities(data: bytes) -> tuple[int, np.ndarray, np.ndarray]:
    """``(timestamp_us, acc_mps2 (3,), gyr_dps (3,))`` of one Rate quantities payload.

    Raises
    ------
    ValueError
        If the payload is shorter than 28 bytes or holds a non-finite value.
    """
    if len(data) < RATE_QUANTITIES_BYTES:
        raise ValueError(f"movella-dot: Rate quantities payload of >= {RATE_QUANTITIES_BYTES} bytes expected, got {len(data)}")
    ts, *values = _RATE_QUANTITIES.unpack_from(data, 0)
    arr = np.array(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"movella-dot: finite acceleration and angular velocity expected, got {arr.tolist()}")
    return int(ts), arr[:3], arr[3:]


class MovellaDotDecoder:
    """Medium payload notifications -> blocks (one sample each) on the session clock."""

    def __init__(self, config: SensorConfig) -> None:
        self.config = config
        self.clock = DeviceClockMapper()
        self._last_us: int | None = None
        self.samples = 0
        self.bad = 0
        self.dropped_stale = 0
        self.gaps = 0
        self.lost_estimate = 0
        self.repaired = 0

    def feed(self, channel: int, data: bytes, arrival_s: float) -> ImuBlock | None:
        try:
            ts, acc_mps2, gyr_dps = decode_rate_quantities(data)
        except ValueError:
            self.bad += 1
            return None
        us = unwrap_counter(ts, self._last_us, TIMESTAMP_MODULUS)
        if self._last_us is not None and not self.clock.plausible(us * 1e-6, arrival_s, timestamp_tolerance_s(self.config.rate_hz)):
            # A timestamp ahead of its own arrival (a flipped bit): one sample period after the last
            # one instead, so that it does not make every later notification look stale.
            self.repaired += 1
            us = self._last_us + max(1, int(round(1e6 / self.config.rate_hz)))
        if self._last_us is not None:
            if us <= self._last_us:
                self.dropped_stale += 1
                return None
            missed = int(round((us - self._last_us) * 1e-6 * self.config.rate_hz)) - 1
            if missed > 0:
                self.gaps += 1
                self.lost_estimate += missed
        self._last_us = us
        self.samples += 1
        time_s = self.clock.map(np.array([us * 1e-6]), arrival_s)
        return make_block(time_s, acc_mps2 / STANDARD_GRAVITY_MPS2, gyr_dps)

    def flush(self) -> ImuBlock | None:
        return None

    def diagnostics(self) -> MovellaDotDiagnostics:
        return MovellaDotDiagnostics(
            samples=int(self.samples),
            bad_payloads=int(self.bad),
            stale_dropped=int(self.dropped_stale),
            timestamp_gaps=int(self.gaps),
            lost_estimate=int(self.lost_estimate),
            timestamps_repaired=int(self.repaired),
            timing=self.clock.diagnostics(),
        )


MODEL = SensorModel(
    name="movella-dot",
    title="Movella DOT",
    service_uuid=MEASUREMENT_SERVICE_UUID,
    notify_uuids=(MEDIUM_PAYLOAD_UUID,),
    name_prefixes=("Movella DOT", "Xsens DOT"),
    rates_hz=RATES_HZ,
    default_config=SensorConfig(60.0, ACC_RANGE_G, GYR_RANGE_DPS),
    timestamps="device",
    configure=configure,
    start=start,
    stop=stop,
    make_decoder=MovellaDotDecoder,
)
