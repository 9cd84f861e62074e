"""MbientLab MetaMotion (MetaWear firmware): separate accelerometer and gyroscope streams.

Facts from MbientLab's MetaWear C++ SDK (github.com/mbientlab/MetaWear-SDK-Cpp):

* GATT: service ``326a9000-85cb-9195-d9dd-464cfbbae75a``, command characteristic ``...9001``
  (write), notification characteristic ``...9006``. Every message is ``[module, register, data...]``.
* Modules (``core/module.h``): accelerometer 0x03, gyroscope 0x13.
* Registers (``sensor/cpp/accelerometer_bosch_register.h``, ``gyro_bosch_register.h``): power mode
  1, data interrupt enable 2, config 3. BMI160 boards (MetaMotion R/RL/C): acc data 0x04, packed
  acc 0x1C, gyro data 0x05, packed gyro 0x07. BMI270 boards (MetaMotion S): acc data 0x04, packed
  acc 0x05, gyro data 0x04, packed gyro 0x05. A data message carries int16 x,y,z; a packed one
  three such samples (``response_handler_packed_data`` steps 6 bytes from offset 2).
* Scales: acc LSB/g 16384, 8192, 4096, 2048 for +-2, 4, 8, 16 g (``BMI160_FSR_SCALE``, range codes
  0x3, 0x5, 0x8, 0xC; BMI270 codes 0..3); gyro LSB per deg/s 16.4, 32.8, 65.6, 131.2, 262.4 for
  2000, 1000, 500, 250, 125 deg/s (``gyro_bosch.cpp`` ``FSR_SCALE``; range codes 0..4). Note 16.4,
  not 32768/2000 = 16.384: the SDK (and the Bosch datasheet) use the rounded sensitivity.
* Config bytes: acc ``[odr | bwp << 4 | us << 7, range]`` with the BMI160 register ODR code = SDK
  enum + 1 (25 Hz 0x6, 50 Hz 0x7, 100 Hz 0x8, 200 Hz 0x9); gyro ``[odr | bwp << 4, range]`` with
  25 Hz 6 ... 200 Hz 9 (``MBL_MW_GYRO_BOSCH_ODR_*``); bwp 2 = normal filter mode.
* Start (SDK order): subscribe ``[module, register, 1]`` (``MblMwDataSignal::subscribe``), enable
  data interrupt ``[module, 2, 1, 0]``, power on ``[module, 1, 1]``. Stop mirrors it.

Quirks handled: streamed samples carry no timestamp (the SDK stamps them with the host clock on
arrival), so times come from arrival and the configured rate, per stream; the accelerometer and
the gyroscope have no shared clock and are started by separate commands, so the two streams are
paired on that arrival grid: each sample gets a slot ``round((t - t0) * rate)`` from the first
accelerometer sample, and an accelerometer and a gyroscope sample with the same slot make one
output sample; a slot seen in one stream only is dropped and counted.
"""

from __future__ import annotations

import numpy as np

from ..diagnostics import MetaMotionDiagnostics
from ..errors import InputError
from ..model import ImuBlock
from ._common import ArrivalClock, SensorConfig, SensorModel, Write, make_block

SERVICE_UUID = "326a9000-85cb-9195-d9dd-464cfbbae75a"
COMMAND_UUID = "326a9001-85cb-9195-d9dd-464cfbbae75a"
NOTIFY_UUID = "326a9006-85cb-9195-d9dd-464cfbbae75a"

MODULE_ACC = 0x03
MODULE_GYRO = 0x13
REG_POWER_MODE = 0x01
REG_DATA_INTERRUPT_ENABLE = 0x02
REG_CONFIG = 0x03
# (single-sample data register, packed data register) per chip
ACC_REGISTERS = {"bmi160": (0x04, 0x1C), "bmi270": (0x04, 0x05)}
GYRO_REGISTERS = {"bmi160": (0x05, 0x07), "bmi270": (0x04, 0x05)}
SAMPLE_BYTES = 6
PACKED_SAMPLES = 3

ACC_RANGE_CODES_BMI160 = {2.0: 0x3, 4.0: 0x5, 8.0: 0x8, 16.0: 0xC}
ACC_RANGE_CODES_BMI270 = {2.0: 0x0, 4.0: 0x1, 8.0: 0x2, 16.0: 0x3}
GYR_RANGE_CODES = {2000.0: 0, 1000.0: 1, 500.0: 2, 250.0: 3, 125.0: 4}
GYR_LSB_PER_DPS = {2000.0: 16.4, 1000.0: 32.8, 500.0: 65.6, 250.0: 131.2, 125.0: 262.4}  # gyro_bosch.cpp FSR_SCALE
ACC_ODR_CODES = {25.0: 0x6, 50.0: 0x7, 100.0: 0x8, 200.0: 0x9}  # BMI160 register value = SDK enum + 1
GYR_ODR_CODES = {25.0: 6, 50.0: 7, 100.0: 8, 200.0: 9}  # MBL_MW_GYRO_BOSCH_ODR_*
BWP_NORMAL = 2
RATES_HZ = (100.0, 50.0, 200.0, 25.0)


def acc_lsb_per_g(range_g: float) -> float:
    """Counts per g for the accelerometer range (16384 at +-2 g, ``BMI160_FSR_SCALE``)."""
    return 32768.0 / float(range_g)


def _check(config: SensorConfig) -> None:
    if float(config.rate_hz) not in ACC_ODR_CODES:
        raise InputError(f"metamotion: rate must be one of {sorted(ACC_ODR_CODES)} Hz, got {config.rate_hz}")
    if float(config.acc_range_g) not in ACC_RANGE_CODES_BMI160:
        raise InputError(f"metamotion: acc range must be one of {sorted(ACC_RANGE_CODES_BMI160)} g, got {config.acc_range_g}")
    if float(config.gyr_range_dps) not in GYR_RANGE_CODES:
        raise InputError(f"metamotion: gyro range must be one of {sorted(GYR_RANGE_CODES)} deg/s, got {config.gyr_range_dps}")


def configure(config: SensorConfig, chip: str = "bmi160") -> list[Write]:
    _check(config)
    acc_range = (ACC_RANGE_CODES_BMI160 if chip == "bmi160" else ACC_RANGE_CODES_BMI270)[float(config.acc_range_g)]
    acc_conf = ACC_ODR_CODES[float(config.rate_hz)] | (BWP_NORMAL << 4)
    gyr_conf = GYR_ODR_CODES[float(config.rate_hz)] | (BWP_NORMAL << 4)
    return [
        Write(COMMAND_UUID, bytes([MODULE_ACC, REG_CONFIG, acc_conf, acc_range])),
        Write(COMMAND_UUID, bytes([MODULE_GYRO, REG_CONFIG, gyr_conf, GYR_RANGE_CODES[float(config.gyr_range_dps)]])),
    ]


def start(config: SensorConfig, chip: str = "bmi160") -> list[Write]:
    acc_packed = ACC_REGISTERS[chip][1]
    gyr_packed = GYRO_REGISTERS[chip][1]
    return [
        Write(COMMAND_UUID, bytes([MODULE_ACC, acc_packed, 1])),
        Write(COMMAND_UUID, bytes([MODULE_GYRO, gyr_packed, 1])),
        Write(COMMAND_UUID, bytes([MODULE_ACC, REG_DATA_INTERRUPT_ENABLE, 1, 0])),
        Write(COMMAND_UUID, bytes([MODULE_GYRO, REG_DATA_INTERRUPT_ENABLE, 1, 0])),
        Write(COMMAND_UUID, bytes([MODULE_GYRO, REG_POWER_MODE, 1])),
        Write(COMMAND_UUID, bytes([MODULE_ACC, REG_POWER_MODE, 1])),
    ]


def stop(config: SensorConfig, chip: str = "bmi160") -> list[Write]:
    acc_packed = ACC_REGISTERS[chip][1]
    gyr_packed = GYRO_REGISTERS[chip][1]
    return [
        Write(COMMAND_UUID, bytes([MODULE_ACC, REG_POWER_MODE, 0])),
        Write(COMMAND_UUID, bytes([MODULE_GYRO, REG_POWER_MODE, 0])),
        Write(COMMAND_UUID, bytes([MODULE_ACC, REG_DATA_INTERRUPT_ENABLE, 0, 1])),
        Write(COMMAND_UUID, bytes([MODULE_GYRO, REG_DATA_INTERRUPT_ENABLE, 0, 1])),
        Write(COMMAND_UUID, bytes([MODULE_ACC, acc_packed, 0])),
        Write(COMMAND_UUID, bytes([MODULE_GYRO, gyr_packed, 0])),
    ]


_EMPTY = (np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 3)))


class _Stream:
    """One of the two streams: its arrival clock and the samples waiting for a partner."""

    def __init__(self, rate_hz: float) -> None:
        self.clock = ArrivalClock(rate_hz)
        self.slots: list[np.ndarray] = []
        self.times: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.samples = 0
        self.t0: float | None = None
        self.k0 = 0

    def take(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.slots:
            return np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 3))
        return np.concatenate(self.slots), np.concatenate(self.times), np.concatenate(self.values)

    def put(self, slots: np.ndarray, times: np.ndarray, values: np.ndarray) -> None:
        self.slots, self.times, self.values = ([slots], [times], [values]) if slots.size else ([], [], [])


class MetaMotionDecoder:
    """Notifications of ``...9006`` -> paired acc/gyro blocks on the session clock.

    Parameters
    ----------
    config : rate and ranges the sensor was configured with (they set the scales).
    chip : ``"bmi160"`` (MetaMotion R/RL/C) or ``"bmi270"`` (MetaMotion S): register numbers.
    """

    def __init__(self, config: SensorConfig, chip: str = "bmi160") -> None:
        _check(config)
        if chip not in ACC_REGISTERS:
            raise InputError(f"metamotion: chip must be one of {sorted(ACC_REGISTERS)}, got {chip!r}")
        self.config = config
        self.chip = chip
        self.acc_scale = 1.0 / acc_lsb_per_g(config.acc_range_g)
        self.gyr_scale = 1.0 / GYR_LSB_PER_DPS[float(config.gyr_range_dps)]
        self._acc = _Stream(config.rate_hz)
        self._gyr = _Stream(config.rate_hz)
        self._t0: float | None = None
        self.other_messages = 0
        self.bad_messages = 0
        self.unpaired_acc = 0
        self.unpaired_gyr = 0

    def _parse(self, data: bytes) -> tuple[str, np.ndarray] | None:
        if len(data) < 2:
            self.bad_messages += 1
            return None
        module, register, body = data[0], data[1], data[2:]
        if module == MODULE_ACC:
            single, packed = ACC_REGISTERS[self.chip]
            name = "acc"
        elif module == MODULE_GYRO:
            single, packed = GYRO_REGISTERS[self.chip]
            name = "gyr"
        else:
            self.other_messages += 1
            return None
        if register == packed and len(body) == PACKED_SAMPLES * SAMPLE_BYTES:
            n = PACKED_SAMPLES
        elif register == single and len(body) == SAMPLE_BYTES:
            n = 1
        elif register in (single, packed):
            self.bad_messages += 1  # right register, wrong length: a corrupted or truncated message
            return None
        else:
            self.other_messages += 1
            return None
        raw = np.frombuffer(bytes(body), dtype="<i2").astype(np.float64).reshape(n, 3)
        return name, raw

    def feed(self, channel: int, data: bytes, arrival_s: float) -> ImuBlock | None:
        parsed = self._parse(bytes(data))
        if parsed is None:
            return None
        name, raw = parsed
        stream = self._acc if name == "acc" else self._gyr
        values = raw * (self.acc_scale if name == "acc" else self.gyr_scale)
        times = stream.clock.assign(raw.shape[0], arrival_s)
        if self._t0 is None:
            self._t0 = float(times[0])
        if stream.t0 is None:
            # Each stream keeps its own grid; its first sample fixes its slot offset once.
            stream.t0 = float(times[0])
            stream.k0 = int(round((stream.t0 - self._t0) * self.config.rate_hz))
        slots = np.rint((times - stream.t0) * self.config.rate_hz).astype(np.int64) + stream.k0
        stream.samples += raw.shape[0]
        s, t, v = stream.take()
        stream.put(np.concatenate([s, slots]), np.concatenate([t, times]), np.concatenate([v, values]))
        return self._pair(final=False)

    def _pair(self, final: bool) -> ImuBlock | None:
        a_slot, a_t, a_v = self._acc.take()
        g_slot, g_t, g_v = self._gyr.take()
        if a_slot.size == 0 or g_slot.size == 0:
            if final:
                self.unpaired_acc += a_slot.size
                self.unpaired_gyr += g_slot.size
                self._acc.put(*_EMPTY)
                self._gyr.put(*_EMPTY)
            return None
        # Slots increase within a stream; one repeats only after a sub-period pull-back: keep the first.
        a_keep = np.concatenate([[True], np.diff(a_slot) > 0])
        g_keep = np.concatenate([[True], np.diff(g_slot) > 0])
        self.unpaired_acc += int((~a_keep).sum())
        self.unpaired_gyr += int((~g_keep).sum())
        a_slot, a_t, a_v = a_slot[a_keep], a_t[a_keep], a_v[a_keep]
        g_slot, g_t, g_v = g_slot[g_keep], g_t[g_keep], g_v[g_keep]
        # Up to the horizon both streams are complete: a slot missing from one is lost for good.
        horizon = max(int(a_slot[-1]), int(g_slot[-1])) if final else min(int(a_slot[-1]), int(g_slot[-1]))
        common, ai, gi = np.intersect1d(a_slot, g_slot, assume_unique=True, return_indices=True)
        paired = common <= horizon
        ai, gi = ai[paired], gi[paired]
        done_a = a_slot <= horizon
        done_g = g_slot <= horizon
        self.unpaired_acc += int(done_a.sum()) - int(paired.sum())
        self.unpaired_gyr += int(done_g.sum()) - int(paired.sum())
        self._acc.put(a_slot[~done_a], a_t[~done_a], a_v[~done_a])
        self._gyr.put(g_slot[~done_g], g_t[~done_g], g_v[~done_g])
        return make_block(a_t[ai], a_v[ai], g_v[gi])

    def flush(self) -> ImuBlock | None:
        return self._pair(final=True)

    def diagnostics(self) -> MetaMotionDiagnostics:
        return MetaMotionDiagnostics(
            acc_samples=int(self._acc.samples),
            gyr_samples=int(self._gyr.samples),
            unpaired_acc=int(self.unpaired_acc),
            unpaired_gyr=int(self.unpaired_gyr),
            acc_arrival_gaps=self._acc.clock.diagnostics().gaps,
            gyr_arrival_gaps=self._gyr.clock.diagnostics().gaps,
            other_messages=int(self.other_messages),
            bad_messages=int(self.bad_messages),
        )


MODEL = SensorModel(
    name="metamotion",
    title="MbientLab MetaMotion (BMI160 boards; bmi270 via chip=)",
    service_uuid=SERVICE_UUID,
    notify_uuids=(NOTIFY_UUID,),
    name_prefixes=("MetaWear",),
    rates_hz=RATES_HZ,
    default_config=SensorConfig(100.0, 8.0, 2000.0),
    timestamps="arrival",
    configure=configure,
    start=start,
    stop=stop,
    make_decoder=MetaMotionDecoder,
)
