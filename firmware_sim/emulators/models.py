"""One emulated GATT profile per vendor model (facts cited in ``host/sensors/<model>.py``).

Written from the vendors' documents; the byte layouts are built here with ``struct``/NumPy, not
with the host decoders, so an end-to-end test checks one reading of the documents against another.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from bumble.core import UUID
from bumble.gatt import Characteristic, CharacteristicValue, Service

from ._base import EmulatedSensor, Stream, int16

Props = Characteristic.Properties
G_MPS2 = 9.80665


def _char(uuid: str, props: Any, value: Any = b"") -> Characteristic[bytes]:
    perms = Characteristic.READABLE | Characteristic.WRITEABLE
    return Characteristic(UUID(uuid), props, perms, value)


# --------------------------------------------------------------------------- WitMotion
class WitMotionEmulator(EmulatedSensor):
    """WT901BLECL: streams ``55 61`` frames (20 bytes, one per notification) while subscribed."""

    MODEL = "witmotion"
    NAME = "WT901BLE68"
    SERVICE_UUID = "0000ffe5-0000-1000-8000-00805f9a34fb"
    RATE_CODES = {0x06: 10.0, 0x08: 50.0, 0x09: 100.0, 0x0B: 200.0}

    def build_services(self) -> list[Service]:
        self.stream = Stream()
        self.rate_hz = 10.0  # factory default return rate
        self.notify = _char("0000ffe4-0000-1000-8000-00805f9a34fb", Props.NOTIFY)
        self.write = _char(
            "0000ffe9-0000-1000-8000-00805f9a34fb", Props.WRITE_WITHOUT_RESPONSE | Props.WRITE,
            CharacteristicValue(write=self._on_write),
        )
        self.device.on("characteristic_subscription", self._on_subscription)
        return [Service(UUID(self.SERVICE_UUID), [self.notify, self.write])]

    def _on_subscription(self, _conn: Any, char: Any, notify: bool, _indicate: bool) -> None:
        if char is self.notify:
            if notify and self.stream.started_s is None:
                self.stream.start(self.clock.now_s())
            elif not notify:
                self.stream.stop()

    def _on_write(self, _conn: Any, value: bytes) -> None:
        self.writes.append(bytes(value))
        if len(value) == 5 and value[:2] == b"\xff\xaa" and value[2] == 0x03:
            self.rate_hz = self.RATE_CODES.get(value[3], self.rate_hz)

    def on_disconnected(self) -> None:
        self.stream.stop()

    def tick(self, now_s: float) -> list[tuple[Characteristic[bytes], bytes, bool]]:
        idx = self.stream.due(self.signal, now_s)
        n = idx.stop - idx.start
        if n <= 0:
            return []
        acc = int16(self.signal.acc_g[idx] * 32768.0 / 16.0)
        gyr = int16(self.signal.gyr_dps[idx] * 32768.0 / 2000.0)
        out = []
        for k in range(n):
            frame = struct.pack("<BB9h", 0x55, 0x61, *acc[k], *gyr[k], 0, 0, 0)
            out.append((self.notify, frame, False))
        return out


# --------------------------------------------------------------------------- Movella DOT
def _dot(short: int) -> str:
    return f"1517{short:04x}-4947-11e9-8646-d663bd873d93"


class MovellaDotEmulator(EmulatedSensor):
    """Movella DOT: Rate quantities (payload mode 21) on the medium payload characteristic."""

    MODEL = "movella-dot"
    NAME = "Movella DOT"
    SERVICE_UUID = _dot(0x2000)
    TIMESTAMP_START_US = (1 << 32) - 3_000_000  # the u32 microsecond clock wraps 3 s into a stream

    def build_services(self) -> list[Service]:
        self.stream = Stream()
        self.rate_hz = 60.0
        self.payload_mode = 0
        self.device_control = _char(_dot(0x1002), Props.READ | Props.WRITE, CharacteristicValue(
            read=lambda _c: self._device_control_bytes(), write=self._on_device_control))
        self.control = _char(_dot(0x2001), Props.READ | Props.WRITE, CharacteristicValue(
            read=lambda _c: bytes([1, int(self.stream.started_s is not None), self.payload_mode]), write=self._on_control))
        self.medium = _char(_dot(0x2003), Props.NOTIFY)
        return [
            Service(UUID(_dot(0x1000)), [self.device_control]),
            Service(UUID(_dot(0x2000)), [self.control, self.medium]),
        ]

    def _device_control_bytes(self) -> bytes:
        out = bytearray(32)
        struct.pack_into("<H", out, 24, int(self.rate_hz))
        return bytes(out)

    def _on_device_control(self, _conn: Any, value: bytes) -> None:
        self.writes.append(bytes(value))
        if len(value) == 32 and value[0] & 0x10 and self.stream.started_s is None:
            self.rate_hz = float(struct.unpack_from("<H", value, 24)[0])

    def _on_control(self, _conn: Any, value: bytes) -> None:
        self.writes.append(bytes(value))
        if len(value) == 3 and value[0] == 1:
            if value[1] == 1 and value[2] == 21:
                self.payload_mode = 21
                self.stream.start(self.clock.now_s())
            elif value[1] == 0:
                self.stream.stop()

    def on_disconnected(self) -> None:
        self.stream.stop()

    def tick(self, now_s: float) -> list[tuple[Characteristic[bytes], bytes, bool]]:
        idx = self.stream.due(self.signal, now_s)
        out = []
        t0 = self.signal.time_s[0]
        for k in range(idx.start, idx.stop):
            us = (self.TIMESTAMP_START_US + int(round((self.signal.time_s[k] - t0) * 1e6))) % (1 << 32)
            acc = self.signal.acc_g[k] * G_MPS2
            payload = struct.pack("<I6f", us, *acc, *self.signal.gyr_dps[k]) + bytes(12)  # 40-byte medium payload
            out.append((self.medium, payload, False))
        return out


# --------------------------------------------------------------------------- MetaMotion
class MetaMotionEmulator(EmulatedSensor):
    """MetaMotion (BMI160 board): packed acc (03 1C) and packed gyro (13 07), 3 samples each,
    each stream running from its own power-on command."""

    MODEL = "metamotion"
    NAME = "MetaWear"
    SERVICE_UUID = "326a9000-85cb-9195-d9dd-464cfbbae75a"
    ACC_LSB_PER_G = {0x3: 16384.0, 0x5: 8192.0, 0x8: 4096.0, 0xC: 2048.0}
    GYR_LSB_PER_DPS = [16.4, 32.8, 65.6, 131.2, 262.4]

    def build_services(self) -> list[Service]:
        self.acc = Stream()
        self.gyr = Stream()
        self.acc_lsb = 4096.0
        self.gyr_lsb = 16.4
        self.origin_s: float | None = None
        self.command = _char("326a9001-85cb-9195-d9dd-464cfbbae75a", Props.WRITE | Props.WRITE_WITHOUT_RESPONSE,
                             CharacteristicValue(write=self._on_command))
        self.notify = _char("326a9006-85cb-9195-d9dd-464cfbbae75a", Props.NOTIFY)
        return [Service(UUID(self.SERVICE_UUID), [self.command, self.notify])]

    def _on_command(self, _conn: Any, value: bytes) -> None:
        self.writes.append(bytes(value))
        if len(value) < 3:
            return
        module, register = value[0], value[1]
        now = self.clock.now_s()
        if module == 0x03 and register == 0x03 and len(value) == 4:
            self.acc_lsb = self.ACC_LSB_PER_G.get(value[3], self.acc_lsb)
        elif module == 0x13 and register == 0x03 and len(value) == 4 and value[3] < 5:
            self.gyr_lsb = self.GYR_LSB_PER_DPS[value[3]]
        elif register == 0x01:  # power mode
            stream = self.acc if module == 0x03 else self.gyr if module == 0x13 else None
            if stream is None:
                return
            if value[2] == 1:
                if self.origin_s is None:
                    self.origin_s = now
                # A stream powered on later starts at the sample of that moment (no shared clock).
                first = int(np.searchsorted(self.signal.elapsed_s, now - self.origin_s))
                stream.start(now, first)
            else:
                stream.stop()

    def on_disconnected(self) -> None:
        self.acc.stop()
        self.gyr.stop()

    def _packets(self, stream: Stream, module: int, register: int, values: np.ndarray, lsb: float, now_s: float) -> list[bytes]:
        idx = stream.due(self.signal, now_s, self.origin_s)
        pending: list[int] = stream.extra.get("pending", []) + list(range(idx.start, idx.stop))
        out = []
        while len(pending) >= 3:  # a packed register carries three samples
            take, pending = pending[:3], pending[3:]
            # counts of the three samples only (elementwise: the same as of the whole signal)
            out.append(bytes([module, register]) + int16(values[take] * lsb).astype("<i2").tobytes())
        stream.extra["pending"] = pending
        return out

    def tick(self, now_s: float) -> list[tuple[Characteristic[bytes], bytes, bool]]:
        out: list[tuple[Characteristic[bytes], bytes, bool]] = []
        if self.gyr.started_s is not None:
            out += [(self.notify, p, False) for p in self._packets(self.gyr, 0x13, 0x07, self.signal.gyr_dps, self.gyr_lsb, now_s)]
        if self.acc.started_s is not None:
            out += [(self.notify, p, False) for p in self._packets(self.acc, 0x03, 0x1C, self.signal.acc_g, self.acc_lsb, now_s)]
        return out


# --------------------------------------------------------------------------- Polar Verity Sense
def delta_frame(samples: np.ndarray) -> bytes:
    """PMD delta frame: int16 reference sample, then blocks of <= 255 deltas of the bits needed."""
    out = bytearray(samples[0].astype("<i2").tobytes())
    deltas = np.diff(samples.astype(np.int64), axis=0)
    for start in range(0, deltas.shape[0], 255):
        block = deltas[start : start + 255]
        peak = int(np.max(np.abs(block))) if block.size else 0
        width = max(2, peak.bit_length() + 1)
        masked = np.bitwise_and(block.reshape(-1), (1 << width) - 1).astype(np.uint64)
        bits = ((masked[:, None] >> np.arange(width, dtype=np.uint64)) & 1).astype(np.uint8).reshape(-1)
        out += bytes([width, block.shape[0]]) + np.packbits(bits, bitorder="little").tobytes()
    return bytes(out)


class PolarVerityEmulator(EmulatedSensor):
    """Polar Verity Sense PMD: ACC as compressed frame type 1 (mG x factor), GYRO as compressed
    type 0 (deg/s x factor); timestamps in ns on one sensor clock, stamped at each frame's last sample."""

    MODEL = "polar-verity"
    NAME = "Polar Sense 0C30A5F1"
    SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
    ACC_FACTOR = 0.24414062  # mG per count at +-8 g
    GYR_FACTOR = 2000.0 / 32768.0  # deg/s per count at 2000 deg/s
    EPOCH_NS = 7_900_000_000_000_000_000 // 10  # a sensor clock in ns since 2000 (about 25 years)
    SAMPLES_PER_FRAME = 18

    def build_services(self) -> list[Service]:
        self.streams = {2: Stream(), 5: Stream()}
        self.origin_s: float | None = None
        self.control = _char("fb005c81-02e7-f387-1cad-8acd2d8df0c8", Props.WRITE | Props.INDICATE | Props.READ,
                             CharacteristicValue(read=lambda _c: bytes([0x0F, 0x24]), write=self._on_control))
        self.data = _char("fb005c82-02e7-f387-1cad-8acd2d8df0c8", Props.NOTIFY)
        return [Service(UUID(self.SERVICE_UUID), [self.control, self.data])]

    def _on_control(self, _conn: Any, value: bytes) -> None:
        self.writes.append(bytes(value))
        if len(value) < 2:
            return
        op, mtype = value[0], value[1]
        if mtype not in self.streams:
            self.reply_soon(self.control, bytes([0xF0, op, mtype, 2, 0]), indicate=True)  # invalid measurement type
            return
        if op == 2:
            now = self.clock.now_s()
            if self.origin_s is None:
                self.origin_s = now
            first = int(np.searchsorted(self.signal.elapsed_s, now - self.origin_s))
            self.streams[mtype].start(now, first)
            factor = self.ACC_FACTOR if mtype == 2 else self.GYR_FACTOR
            bits = struct.unpack("<I", struct.pack("<f", factor))[0]
            self.reply_soon(self.control, bytes([0xF0, 2, mtype, 0, 0, 5, 1]) + struct.pack("<I", bits), indicate=True)
        elif op == 3:
            self.streams[mtype].stop()
            self.reply_soon(self.control, bytes([0xF0, 3, mtype, 0, 0]), indicate=True)

    def on_disconnected(self) -> None:
        for s in self.streams.values():
            s.stop()

    def tick(self, now_s: float) -> list[tuple[Characteristic[bytes], bytes, bool]]:
        out: list[tuple[Characteristic[bytes], bytes, bool]] = []
        t0 = self.signal.time_s[0]
        for mtype, stream in self.streams.items():
            if stream.started_s is None:
                continue
            idx = stream.due(self.signal, now_s, self.origin_s)
            pending = stream.extra.setdefault("pending", [])
            pending.extend(range(idx.start, idx.stop))
            while len(pending) >= self.SAMPLES_PER_FRAME:
                take, pending = pending[: self.SAMPLES_PER_FRAME], pending[self.SAMPLES_PER_FRAME :]
                if mtype == 2:
                    raw = int16(self.signal.acc_g[take] * 1000.0 / self.ACC_FACTOR)
                    frame_type = 0x81
                else:
                    raw = int16(self.signal.gyr_dps[take] / self.GYR_FACTOR)
                    frame_type = 0x80
                ts = self.EPOCH_NS + int(round((self.signal.time_s[take[-1]] - t0) * 1e9))
                out.append((self.data, bytes([mtype]) + struct.pack("<Q", ts) + bytes([frame_type]) + delta_frame(raw), False))
            stream.extra["pending"] = pending
        return out


EMULATORS: dict[str, type[EmulatedSensor]] = {
    cls.MODEL: cls for cls in (WitMotionEmulator, MovellaDotEmulator, MetaMotionEmulator, PolarVerityEmulator)
}
RATES_HZ = {"witmotion": 100.0, "movella-dot": 60.0, "metamotion": 100.0, "polar-verity": 52.0}
"""The rate each emulated model plays at (simulate the session at this rate)."""

