"""Polar Verity Sense: accelerometer and gyroscope over Polar's PMD service.

Facts from Polar's BLE SDK (github.com/polarofficial/polar-ble-sdk, Android sources under
``android-communications/.../gatt/client/pmd/``):

* PMD service ``FB005C80-02E7-F387-1CAD-8ACD2D8DF0C8``, control point ``...5C81`` (write, replies
  by indication), data ``...5C82`` (notify) (``BlePMDClient.kt``).
* Measurement types ACC 2, GYRO 5 (``PmdMeasurementType.kt``); control opcodes: 2 request
  measurement start, 3 stop (``PmdControlPointCommand.kt``). Start is ``[2, type, settings...]``,
  each setting ``[setting type, count 1, value little-endian]`` with SAMPLE_RATE 0 (u16),
  RESOLUTION 1 (u16), RANGE 2 (u16), CHANNELS 4 (u8), FACTOR 5 (4 bytes, float bits)
  (``PmdSetting.kt``). A reply is ``[0xF0, opcode, type, status, more, parameters...]``
  (``PmdControlPointResponse.kt``); a start reply's parameters carry the FACTOR setting.
* A data frame is ``[type][u64 timestamp, ns][frame type][content]``; frame type bit 7 = delta
  compressed, bits 0-6 the frame type (``PmdDataFrame.kt``). The timestamp is that of the *last*
  sample; the others are spaced by (timestamp - previous frame's timestamp) / n, or by 1/rate for
  the first frame (``PmdTimeStampUtils.kt``).
* Delta compression (``BlePMDClient.parseDeltaFramesAll``): reference sample (channels x
  ceil(resolution/8) bytes, signed, little-endian), then blocks ``[delta bit width u8][count u8]``
  + count x channels deltas of that width, packed least-significant bit first, two's complement;
  each delta adds to the previous sample.
* ACC (``AccData.kt``): raw types 0/1/2 (1, 2, 3-byte ints, mG); compressed type 0 (int16 x factor
  = g) and compressed type 1 (int16 x factor = mG). GYRO (``GyrData.kt``): compressed type 0
  (int16 x factor = deg/s) only.

Quirks handled: acc and gyro arrive in separate frames with their own timestamps on the sensor's
one clock; gyro is interpolated onto the accelerometer's sample times (accelerometer samples
outside the gyro's time span wait, or are dropped before the gyro's first sample and counted). A
missing factor (reply lost) falls back to 1.0 as the SDK does, and is flagged.
"""

from __future__ import annotations

import math
import struct

import numpy as np

from ..diagnostics import PolarVerityDiagnostics
from ..errors import InputError, SensorError
from ..model import ImuBlock
from ._common import DeviceClockMapper, SensorConfig, SensorModel, Write, make_block, timestamp_tolerance_s

SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
CONTROL_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
CHANNEL_CONTROL = 0
CHANNEL_DATA = 1

TYPE_ACC = 2
TYPE_GYRO = 5
OP_START = 2
OP_STOP = 3
RESPONSE_CODE = 0xF0
SETTING_SAMPLE_RATE = 0
SETTING_RESOLUTION = 1
SETTING_RANGE = 2
SETTING_CHANNELS = 4
SETTING_FACTOR = 5
SETTING_SIZES = {0: 2, 1: 2, 2: 2, 3: 4, 4: 1, 5: 4, 6: 16}  # PmdSetting.typeToFieldSize
DELTA_FRAME_BIT = 0x80
FRAME_TYPE_MASK = 0x7F
HEADER_BYTES = 10
RATES_HZ = (52.0, 26.0, 104.0, 208.0)
ACC_RANGE_G = 8.0
GYR_RANGE_DPS = 2000.0
RESOLUTION_BITS = 16


def start_request(measurement_type: int, config: SensorConfig) -> bytes:
    """``[2, type, settings...]`` for a 3-channel, 16-bit stream at the configured rate and range."""
    rng = int(config.acc_range_g) if measurement_type == TYPE_ACC else int(config.gyr_range_dps)
    out = bytearray([OP_START, measurement_type])
    out += struct.pack("<BBH", SETTING_SAMPLE_RATE, 1, int(config.rate_hz))
    out += struct.pack("<BBH", SETTING_RESOLUTION, 1, RESOLUTION_BITS)
    out += struct.pack("<BBH", SETTING_RANGE, 1, rng)
    out += struct.pack("<BBB", SETTING_CHANNELS, 1, 3)
    return bytes(out)


def configure(_config: SensorConfig) -> list[Write]:
    return []  # settings travel with the start request


def start(config: SensorConfig) -> list[Write]:
    if float(config.rate_hz) not in RATES_HZ:
        raise InputError(f"polar-verity: rate must be one of {sorted(RATES_HZ)} Hz, got {config.rate_hz}")
    return [Write(CONTROL_UUID, start_request(TYPE_ACC, config)), Write(CONTROL_UUID, start_request(TYPE_GYRO, config))]


def stop(_config: SensorConfig) -> list[Write]:
    return [Write(CONTROL_UUID, bytes([OP_STOP, TYPE_ACC])), Write(CONTROL_UUID, bytes([OP_STOP, TYPE_GYRO]))]


def parse_settings(data: bytes) -> dict[int, list[int]]:
    """PMD settings ``[type][count][values...]...`` -> {type: [values as unsigned ints]}."""
    out: dict[int, list[int]] = {}
    i = 0
    while i + 2 <= len(data):
        kind, count = data[i], data[i + 1]
        size = SETTING_SIZES.get(kind)
        i += 2
        if size is None or i + size * count > len(data):
            raise ValueError(f"polar-verity: setting {kind} with {count} values does not fit {len(data)} bytes")
        out[kind] = [int.from_bytes(data[i + k * size : i + (k + 1) * size], "little") for k in range(count)]
        i += size * count
    return out


def _sign_extend(values: np.ndarray, bits: int) -> np.ndarray:
    sign = np.int64(1) << (bits - 1)
    return (values ^ sign) - sign


def decode_delta_frame(content: bytes, channels: int, resolution_bits: int) -> np.ndarray:
    """Delta-compressed PMD content -> (n, channels) int64 samples (reference sample included).

    Raises
    ------
    ValueError
        If a block claims more bits than the content holds.
    """
    ref_bytes = math.ceil(resolution_bits / 8)
    if len(content) < channels * ref_bytes:
        raise ValueError(f"polar-verity: reference sample of {channels * ref_bytes} bytes expected, got {len(content)}")
    ref = np.array(
        [int.from_bytes(content[c * ref_bytes : (c + 1) * ref_bytes], "little") for c in range(channels)], dtype=np.int64
    )
    rows = [_sign_extend(ref, resolution_bits)[None, :]]
    i = channels * ref_bytes
    while i < len(content):
        if i + 2 > len(content):
            raise ValueError(f"polar-verity: delta block header expected at byte {i}, got {len(content) - i} byte(s)")
        width, count = content[i], content[i + 1]
        i += 2
        n_bits = width * count * channels
        n_bytes = math.ceil(n_bits / 8)
        if width == 0 or width > 32 or i + n_bytes > len(content):
            raise ValueError(
                f"polar-verity: delta block of {count} x {channels} x {width} bits expected, got {len(content) - i} bytes"
            )
        bits = np.unpackbits(np.frombuffer(content[i : i + n_bytes], dtype=np.uint8), bitorder="little")[:n_bits]
        weights = np.int64(1) << np.arange(width, dtype=np.int64)
        deltas = _sign_extend((bits.reshape(count * channels, width).astype(np.int64) * weights).sum(axis=1), width)
        rows.append(deltas.reshape(count, channels))
        i += n_bytes
    return np.cumsum(np.concatenate(rows, axis=0), axis=0)


class PolarVerityDecoder:
    """PMD control replies (channel 0) and data frames (channel 1) -> paired blocks."""

    def __init__(self, config: SensorConfig) -> None:
        if float(config.rate_hz) not in RATES_HZ:
            raise InputError(f"polar-verity: rate must be one of {sorted(RATES_HZ)} Hz, got {config.rate_hz}")
        self.config = config
        self.factor: dict[int, float] = {}
        self._prev_ns: dict[int, int] = {}
        self._base_ns: int | None = None
        self.clock = DeviceClockMapper()
        self._acc_t = np.zeros(0)
        self._acc_v = np.zeros((0, 3))
        self._gyr_t = np.zeros(0)
        self._gyr_v = np.zeros((0, 3))
        self.frames = {TYPE_ACC: 0, TYPE_GYRO: 0}
        self.bad_frames = 0
        self.unsupported_frames = 0
        self.stale_frames = 0
        self.dropped_acc = 0
        self.factor_assumed = 0
        self.start_errors = 0
        self.timestamps_repaired = 0

    # --- control point -------------------------------------------------------------------------

    def _control(self, data: bytes) -> None:
        if len(data) < 4 or data[0] != RESPONSE_CODE:
            return
        opcode, mtype, status = data[1], data[2], data[3]
        if opcode != OP_START:
            return
        if status != 0:
            self.start_errors += 1
            return
        try:
            settings = parse_settings(data[5:]) if len(data) > 5 else {}
        except ValueError:
            self.bad_frames += 1
            return
        if settings.get(SETTING_FACTOR):
            factor = struct.unpack("<f", (settings[SETTING_FACTOR][0] & 0xFFFFFFFF).to_bytes(4, "little"))[0]
            if not (math.isfinite(factor) and factor > 0):
                raise SensorError(
                    f"polar-verity: the start reply for measurement {mtype} gives the scale factor {factor!r}, "
                    "a finite positive number expected (sensor firmware fault?)"
                )
            self.factor[mtype] = factor

    def _factor(self, mtype: int) -> float:
        if mtype not in self.factor:
            self.factor_assumed += 1
            self.factor[mtype] = 1.0
        return self.factor[mtype]

    # --- data ----------------------------------------------------------------------------------

    def _samples(self, mtype: int, frame_type: int, compressed: bool, content: bytes) -> np.ndarray | None:
        """(n, 3) values in g (acc) or deg/s (gyro), or None for an unsupported frame type."""
        if mtype == TYPE_ACC:
            if compressed and frame_type in (0, 1):
                raw = decode_delta_frame(content, 3, 16).astype(np.float64)
                return raw * self._factor(mtype) * (1.0 if frame_type == 0 else 1e-3)
            if not compressed and frame_type in (0, 1, 2):
                width = frame_type + 1
                n = len(content) // (3 * width)
                if n * 3 * width != len(content):
                    raise ValueError(f"polar-verity: raw ACC content of a multiple of {3 * width} bytes expected, got {len(content)}")
                vals = [int.from_bytes(content[k * width : (k + 1) * width], "little", signed=True) for k in range(3 * n)]
                return np.array(vals, dtype=np.float64).reshape(n, 3) * 1e-3  # mG -> g
            return None
        if mtype == TYPE_GYRO and compressed and frame_type == 0:
            return decode_delta_frame(content, 3, 16).astype(np.float64) * self._factor(mtype)
        return None

    def _times_ns(self, mtype: int, ts_ns: int, n: int, arrival_s: float = math.nan) -> np.ndarray | None:
        prev = self._prev_ns.get(mtype)
        if prev is not None and self._base_ns is not None and not self.clock.plausible(
            (ts_ns - self._base_ns) * 1e-9, arrival_s, timestamp_tolerance_s(self.config.rate_hz)
        ):
            # A frame timestamp ahead of its own arrival (a flipped bit): its samples continue from
            # the last frame at the nominal rate, and later frames are not dropped as stale.
            self.timestamps_repaired += 1
            ts_ns = prev + int(round(n * 1e9 / self.config.rate_hz))
        if prev is not None and ts_ns <= prev:
            self.stale_frames += 1
            return None
        if prev is None:
            step = 1e9 / self.config.rate_hz
            t = ts_ns - step * np.arange(n - 1, -1, -1, dtype=np.float64)
        else:
            step = (ts_ns - prev) / n
            t = prev + step * np.arange(1, n + 1, dtype=np.float64)
        self._prev_ns[mtype] = ts_ns
        return t

    def _data(self, data: bytes, arrival_s: float) -> None:
        if len(data) < HEADER_BYTES + 1:
            self.bad_frames += 1
            return
        mtype = data[0] & 0x3F
        ts_ns = int.from_bytes(data[1:9], "little")
        compressed = bool(data[9] & DELTA_FRAME_BIT)
        frame_type = data[9] & FRAME_TYPE_MASK
        try:
            values = self._samples(mtype, frame_type, compressed, bytes(data[HEADER_BYTES:]))
        except ValueError:
            self.bad_frames += 1
            return
        if values is None:
            self.unsupported_frames += 1
            return
        if self._base_ns is None:
            self._base_ns = ts_ns
        t_ns = self._times_ns(mtype, ts_ns, values.shape[0], arrival_s)
        if t_ns is None:
            return
        self.frames[mtype] += 1
        time_s = self.clock.map((t_ns - self._base_ns) * 1e-9, arrival_s)
        if mtype == TYPE_ACC:
            self._acc_t = np.concatenate([self._acc_t, time_s])
            self._acc_v = np.concatenate([self._acc_v, values])
        else:
            self._gyr_t = np.concatenate([self._gyr_t, time_s])
            self._gyr_v = np.concatenate([self._gyr_v, values])

    def _pair(self) -> ImuBlock | None:
        if self._gyr_t.size < 2 or self._acc_t.size == 0:
            return None
        early = self._acc_t < self._gyr_t[0]
        if early.any():
            self.dropped_acc += int(early.sum())
            self._acc_t, self._acc_v = self._acc_t[~early], self._acc_v[~early]
        ready = self._acc_t <= self._gyr_t[-1]
        if not ready.any():
            return None
        t = self._acc_t[ready]
        gyr = np.column_stack([np.interp(t, self._gyr_t, self._gyr_v[:, k]) for k in range(3)])
        block = make_block(t, self._acc_v[ready], gyr)
        self._acc_t, self._acc_v = self._acc_t[~ready], self._acc_v[~ready]
        keep = max(0, int(np.searchsorted(self._gyr_t, t[-1], side="right")) - 1)
        self._gyr_t, self._gyr_v = self._gyr_t[keep:], self._gyr_v[keep:]
        return block

    def feed(self, channel: int, data: bytes, arrival_s: float) -> ImuBlock | None:
        if channel == CHANNEL_CONTROL:
            self._control(bytes(data))
            return None
        self._data(bytes(data), arrival_s)
        return self._pair()

    def flush(self) -> ImuBlock | None:
        self.dropped_acc += int(self._acc_t.size)  # after the gyro's last sample: cannot be paired
        self._acc_t, self._acc_v = np.zeros(0), np.zeros((0, 3))
        return None

    def diagnostics(self) -> PolarVerityDiagnostics:
        return PolarVerityDiagnostics(
            acc_frames=int(self.frames[TYPE_ACC]),
            gyr_frames=int(self.frames[TYPE_GYRO]),
            bad_frames=int(self.bad_frames),
            unsupported_frames=int(self.unsupported_frames),
            stale_frames=int(self.stale_frames),
            dropped_acc=int(self.dropped_acc),
            factor_assumed=int(self.factor_assumed),
            timestamps_repaired=int(self.timestamps_repaired),
            start_errors=int(self.start_errors),
            timing=self.clock.diagnostics(),
        )


MODEL = SensorModel(
    name="polar-verity",
    title="Polar Verity Sense (PMD)",
    service_uuid=SERVICE_UUID,
    notify_uuids=(CONTROL_UUID, DATA_UUID),
    name_prefixes=("Polar Sense",),
    rates_hz=RATES_HZ,
    default_config=SensorConfig(52.0, ACC_RANGE_G, GYR_RANGE_DPS),
    timestamps="device",
    configure=configure,
    start=start,
    stop=stop,
    make_decoder=PolarVerityDecoder,
)
