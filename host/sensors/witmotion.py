"""WitMotion BLE 5.0 IMUs (WT901BLECL, BWT901BLECL5.0): 20-byte frames in a byte stream.

Facts, from WitMotion's own SDK for these modules (github.com/WITMOTION/WitBluetooth_BWT901BLE5_0,
``Python/BWT901BLE5.0_python_sdk/device_model.py`` and the Android ``DeviceModel.java``):

* Service ``0000ffe5-0000-1000-8000-00805f9a34fb``, notify ``...ffe4...``, write ``...ffe9...``. Note
  ``9a34fb``, not the Bluetooth base ``9b34fb``: that is how the module spells them.
* A data frame is 20 bytes: ``0x55 0x61`` then nine little-endian int16: acc x,y,z (x 16/32768 g),
  gyro x,y,z (x 2000/32768 deg/s), angle x,y,z (x 180/32768 deg). A register read reply is
  ``0x55 0x71`` + register + data, also 20 bytes. The SDK treats the notifications as a byte stream
  and resynchronises on ``0x55`` followed by ``0x61``/``0x71``; so do we (frames may be split or
  joined across notifications, and the same frames come over the module's serial port).
* Commands are 5 bytes ``FF AA register value_lo value_hi``; unlock ``FF AA 69 88 B5``; save
  ``FF AA 00 00 00``; return rate register 0x03 with codes 10 Hz -> 0x06, 50 Hz -> 0x08,
  100 Hz -> 0x09, 200 Hz -> 0x0B (``DeviceModel.SetRRate``).

Quirks handled: no timestamp and no packet counter in a frame (times come from arrival and the
configured rate, :class:`~legrep.sensors._common.ArrivalClock`; lost frames are only noticed as a late
arrival); no checksum (a corrupted header is skipped by resynchronising, a corrupted value cannot be
detected); the module streams as soon as notifications are enabled (no start command).
"""

from __future__ import annotations

import struct

import numpy as np

from ..diagnostics import WitmotionDiagnostics
from ..model import ImuBlock
from ._common import ArrivalClock, SensorConfig, SensorModel, Write, make_block

SERVICE_UUID = "0000ffe5-0000-1000-8000-00805f9a34fb"
NOTIFY_UUID = "0000ffe4-0000-1000-8000-00805f9a34fb"
WRITE_UUID = "0000ffe9-0000-1000-8000-00805f9a34fb"

HEADER = 0x55
FLAG_IMU = 0x61
FLAG_REGISTER = 0x71
FRAME_BYTES = 20
FULL_SCALE = 32768.0
ACC_RANGE_G = 16.0  # device_model.py: value / 32768 * 16
GYR_RANGE_DPS = 2000.0  # device_model.py: value / 32768 * 2000
ANGLE_RANGE_DEG = 180.0  # device_model.py: value / 32768 * 180
RATE_CODES: dict[float, int] = {10.0: 0x06, 50.0: 0x08, 100.0: 0x09, 200.0: 0x0B}  # DeviceModel.SetRRate
REG_SAVE = 0x00
REG_RATE = 0x03
REG_UNLOCK = 0x69
UNLOCK_KEY = 0xB588  # FF AA 69 88 B5
_FRAME = struct.Struct("<2B9h")


def command(register: int, value: int) -> bytes:
    """``FF AA register value_lo value_hi``."""
    return bytes([0xFF, 0xAA, register & 0xFF, value & 0xFF, (value >> 8) & 0xFF])


def configure(config: SensorConfig) -> list[Write]:
    """Unlock, set the return rate, save."""
    code = RATE_CODES.get(float(config.rate_hz))
    if code is None:
        raise ValueError(f"witmotion: rate must be one of {sorted(RATE_CODES)} Hz, got {config.rate_hz}")
    return [
        Write(WRITE_UUID, command(REG_UNLOCK, UNLOCK_KEY), False),
        Write(WRITE_UUID, command(REG_RATE, code), False),
        Write(WRITE_UUID, command(REG_SAVE, 0), False),
    ]


def start(_config: SensorConfig) -> list[Write]:
    """Nothing: the module streams while notifications are enabled."""
    return []


def stop(_config: SensorConfig) -> list[Write]:
    return []


class WitMotionParser:
    """Byte stream -> frames. Skips bytes until ``0x55`` followed by a known flag.

    :meth:`feed_data` returns ``(acc_g (n,3), gyr_dps (n,3), angle_deg (n,3))`` for the complete
    IMU frames found; register replies are counted, not returned.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.frames = 0
        self.register_frames = 0
        self.skipped_bytes = 0

    def reset(self) -> None:
        self._buf.clear()

    def feed_data(self, data: bytes | bytearray | memoryview) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._buf += data
        raw: list[tuple[int, ...]] = []
        buf = self._buf
        i = 0
        while len(buf) - i >= 2:
            if buf[i] != HEADER or buf[i + 1] not in (FLAG_IMU, FLAG_REGISTER):
                i += 1
                self.skipped_bytes += 1
                continue
            if len(buf) - i < FRAME_BYTES:
                break
            fields = _FRAME.unpack_from(buf, i)
            if fields[1] == FLAG_IMU:
                raw.append(fields[2:])
                self.frames += 1
            else:
                self.register_frames += 1
            i += FRAME_BYTES
        if len(buf) - i == 1 and buf[i] != HEADER:
            i += 1
            self.skipped_bytes += 1
        del buf[:i]
        values = np.array(raw, dtype=np.float64).reshape(-1, 9) / FULL_SCALE
        return values[:, 0:3] * ACC_RANGE_G, values[:, 3:6] * GYR_RANGE_DPS, values[:, 6:9] * ANGLE_RANGE_DEG


class WitMotionDecoder:
    """Notifications (one byte stream) -> blocks; times from arrival and the configured rate."""

    def __init__(self, config: SensorConfig) -> None:
        self.config = config
        self.parser = WitMotionParser()
        self.clock = ArrivalClock(config.rate_hz)

    def feed(self, channel: int, data: bytes, arrival_s: float) -> ImuBlock | None:
        acc_g, gyr_dps, _angle = self.parser.feed_data(data)
        if acc_g.shape[0] == 0:
            return None
        return make_block(self.clock.assign(acc_g.shape[0], arrival_s), acc_g, gyr_dps)

    def flush(self) -> ImuBlock | None:
        return None

    def diagnostics(self) -> WitmotionDiagnostics:
        return WitmotionDiagnostics(
            frames=int(self.parser.frames),
            register_frames=int(self.parser.register_frames),
            skipped_bytes=int(self.parser.skipped_bytes),
            timing=self.clock.diagnostics(),
        )


MODEL = SensorModel(
    name="witmotion",
    title="WitMotion WT901BLECL (BLE 5.0)",
    service_uuid=SERVICE_UUID,
    notify_uuids=(NOTIFY_UUID,),
    name_prefixes=("WT",),  # the SDK's scan keeps names containing "WT" (Python/.../test.py)
    rates_hz=(100.0, 50.0, 200.0, 10.0),
    default_config=SensorConfig(100.0, ACC_RANGE_G, GYR_RANGE_DPS),
    timestamps="arrival",
    configure=configure,
    start=start,
    stop=stop,
    make_decoder=WitMotionDecoder,
)
