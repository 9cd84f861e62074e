"""The sensor firmware's side of the legrep protocol v1, written from ``docs/protocol.md``.

This module deliberately imports nothing from ``host``: it is the "firmware" encoder,
so that the host decoder is tested against an independent implementation.
All multi-byte fields are little-endian (docs/protocol.md).
"""

from __future__ import annotations

import binascii
import enum
import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

PROTOCOL_VERSION = 1
FW_VERSION = (1, 0, 0)

# --- GATT (docs/protocol.md section 1) ---------------------------------------------------
UUID_BASE = "6c656772-6570-4f00-8000-00000000{:04x}"
SERVICE_UUID = UUID_BASE.format(0xA000)
IMU_DATA_UUID = UUID_BASE.format(0xA001)
CONTROL_UUID = UUID_BASE.format(0xA002)
STATUS_UUID = UUID_BASE.format(0xA003)
# 16-bit UUIDs from the Bluetooth SIG Assigned Numbers document.
BATTERY_SERVICE_UUID16 = 0x180F
BATTERY_LEVEL_UUID16 = 0x2A19
DEVICE_INFO_SERVICE_UUID16 = 0x180A
MANUFACTURER_NAME_UUID16 = 0x2A29
MODEL_NUMBER_UUID16 = 0x2A24
SERIAL_NUMBER_UUID16 = 0x2A25
FIRMWARE_REVISION_UUID16 = 0x2A26
NAME_PREFIX = "legrep-"
MANUFACTURER = "legrep"
MODEL = "legrep-imu-sim"

# --- IMU data packet (section 2) ------------------------------------------------------------
PACKET_TYPE_IMU = 0x01
FLAG_RESENT = 0x01
FLAG_CLIPPED = 0x02
HEADER_SIZE = 16
SAMPLE_SIZE = 12
CRC_SIZE = 2
MAX_SAMPLES_PER_PACKET = 32
MIN_MTU = 3 + HEADER_SIZE + CRC_SIZE + SAMPLE_SIZE  # 33: one sample per notification
SERIAL_MTU = 512
TICKS_PER_S = 32768  # 32.768 kHz RTC crystal
MAX_LATENCY_DIVISOR = 10  # n <= rate_hz / 10: at most ~100 ms of samples per packet
_HEADER = struct.Struct("<BBBBIII")

# --- control (section 3) --------------------------------------------------------------------


class Opcode(enum.IntEnum):
    START = 0x01
    STOP = 0x02
    SET_RATE = 0x03
    SET_RANGES = 0x04
    TIME_SYNC = 0x05
    RESEND = 0x06
    SET_LEG = 0x07
    GET_STATUS = 0x08
    SIM_FAULT = 0x7F


class ReplyStatus(enum.IntEnum):
    OK = 0
    BAD_LENGTH = 1
    BAD_VALUE = 2
    BUSY = 3
    UNKNOWN_OPCODE = 4


class FaultKind(enum.IntEnum):
    DROP_LINK = 1
    LOSE = 2
    DUPLICATE = 3
    CORRUPT = 4
    DRIFT = 5
    STALL = 6


class Channel(enum.IntEnum):
    """Serial frame channel byte (section 7)."""

    DATA = 0x01
    CONTROL = 0x02
    STATUS = 0x03


REPLY_BIT = 0x80
RATES_HZ = (25, 50, 100, 200, 400)
ACC_RANGES_G = (2, 4, 8, 16)
GYR_RANGES_DPS = (250, 500, 1000, 2000)
LEG_CODES = (0, 1, 2, 3)  # unassigned, left, right, pelvis

# Argument layout of each request (after the opcode byte).
REQUEST_FORMATS: dict[int, struct.Struct] = {
    Opcode.START: struct.Struct("<"),
    Opcode.STOP: struct.Struct("<"),
    Opcode.SET_RATE: struct.Struct("<H"),
    Opcode.SET_RANGES: struct.Struct("<BH"),
    Opcode.TIME_SYNC: struct.Struct("<I"),
    Opcode.RESEND: struct.Struct("<II"),
    Opcode.SET_LEG: struct.Struct("<B"),
    Opcode.GET_STATUS: struct.Struct("<"),
    Opcode.SIM_FAULT: struct.Struct("<BI"),
}

# --- status (section 4) ---------------------------------------------------------------------
STATUS_SIZE = 32
_STATUS = struct.Struct("<BBBBHBBHBBffHHII")
assert _STATUS.size == STATUS_SIZE

# --- CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0 ---------------


def crc16_ccitt(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (check value of b"123456789" is 0x29B1).

    ``binascii.crc_hqx`` is this CRC (unreflected 0x1021, the caller's initial value) in C; a
    table loop in Python took a tenth of a simulated sensor's CPU time. tests/test_packets.py
    checks it against a bitwise reference."""
    return binascii.crc_hqx(bytes(data), crc)


# --- packets ----------------------------------------------------------------------------------


def samples_per_packet(mtu: int, rate_hz: int) -> int:
    """Samples per IMU packet for an ATT MTU and rate (section 2); 0 if the MTU is too small."""
    by_mtu = (mtu - 3 - HEADER_SIZE - CRC_SIZE) // SAMPLE_SIZE
    return max(0, min(MAX_SAMPLES_PER_PACKET, by_mtu, max(1, rate_hz // MAX_LATENCY_DIVISOR)))


def sample_tick_offset(i: int, rate_hz: int) -> int:
    """Ticks from a packet's first sample to its sample ``i``: round(i * 32768 / rate_hz)."""
    return (2 * i * TICKS_PER_S + rate_hz) // (2 * rate_hz)


def encode_imu_packet(
    seq: int,
    first_sample_index: int,
    timestamp_ticks: int,
    samples: npt.ArrayLike,
    flags: int = 0,
) -> bytes:
    """Encode one IMU data packet.

    Parameters
    ----------
    seq, first_sample_index, timestamp_ticks : u32 header fields (reduced modulo 2**32).
    samples : (n, 6) int16 raw counts: acc_x, acc_y, acc_z, gyr_x, gyr_y, gyr_z; 1 <= n <= 32.
    flags : FLAG_RESENT | FLAG_CLIPPED.

    Raises
    ------
    ValueError
        ``samples`` has the wrong shape or values outside int16.
    """
    arr = np.asarray(samples)
    if arr.ndim != 2 or arr.shape[1] != 6 or not 1 <= arr.shape[0] <= MAX_SAMPLES_PER_PACKET:
        raise ValueError(f"samples must have shape (n, 6) with 1 <= n <= 32, got {arr.shape}")
    if arr.dtype != np.int16:
        if arr.size and (arr.min() < -32768 or arr.max() > 32767):
            raise ValueError("samples must fit int16")
        arr = arr.astype(np.int16)
    n = arr.shape[0]
    body = _HEADER.pack(
        PACKET_TYPE_IMU,
        flags & 0xFF,
        n,
        0,
        seq & 0xFFFFFFFF,
        first_sample_index & 0xFFFFFFFF,
        timestamp_ticks & 0xFFFFFFFF,
    ) + arr.astype("<i2").tobytes()
    return body + struct.pack("<H", crc16_ccitt(body))


def set_packet_flags(packet: bytes, flags: int) -> bytes:
    """Return ``packet`` with its flags byte replaced and its CRC recomputed."""
    body = bytearray(packet[:-CRC_SIZE])
    body[1] = flags & 0xFF
    return bytes(body) + struct.pack("<H", crc16_ccitt(body))


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """The fields of the 32-byte status (section 4)."""

    rate_hz: int
    acc_range_g: int
    gyr_range_dps: int
    leg: int
    streaming: bool
    battery_pct: int
    buffer_fill_packets: int
    buffer_capacity_packets: int
    next_seq: int
    now_ticks: int
    fw_version: tuple[int, int, int] = FW_VERSION
    protocol_version: int = PROTOCOL_VERSION


def encode_status(info: StatusInfo) -> bytes:
    """Encode the 32-byte status / config record."""
    return _STATUS.pack(
        info.protocol_version,
        *info.fw_version,
        info.rate_hz,
        info.acc_range_g,
        info.leg,
        info.gyr_range_dps,
        1 if info.streaming else 0,
        max(0, min(100, info.battery_pct)),
        info.acc_range_g / 32768.0,
        info.gyr_range_dps / 32768.0,
        min(info.buffer_fill_packets, 0xFFFF),
        min(info.buffer_capacity_packets, 0xFFFF),
        info.next_seq & 0xFFFFFFFF,
        info.now_ticks & 0xFFFFFFFF,
    )


# --- control requests / replies ---------------------------------------------------------------


class ControlRequestError(ValueError):
    """A control request cannot be honoured; ``status`` is the reply status code."""

    def __init__(self, status: ReplyStatus, opcode: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.opcode = opcode


@dataclass(frozen=True, slots=True)
class ControlRequest:
    opcode: Opcode
    args: tuple[int, ...]


def parse_control_request(data: bytes) -> ControlRequest:
    """Parse a control write; raises :class:`ControlRequestError` with the status to answer."""
    if not data:
        raise ControlRequestError(ReplyStatus.BAD_LENGTH, 0, "empty control request")
    op = data[0]
    try:
        opcode = Opcode(op)
    except ValueError:
        raise ControlRequestError(ReplyStatus.UNKNOWN_OPCODE, op, f"unknown opcode 0x{op:02x}") from None
    fmt = REQUEST_FORMATS[opcode]
    if len(data) - 1 != fmt.size:
        raise ControlRequestError(
            ReplyStatus.BAD_LENGTH, op, f"{opcode.name} takes {fmt.size} argument bytes, got {len(data) - 1}"
        )
    return ControlRequest(opcode, tuple(fmt.unpack(data[1:])))


def encode_control_request(opcode: int, *args: int) -> bytes:
    """Encode a control request (used by tests and the simulator's own tools)."""
    return bytes([opcode]) + REQUEST_FORMATS[Opcode(opcode)].pack(*args)


def encode_control_reply(opcode: int, status: int, payload: bytes = b"") -> bytes:
    """``[0x80 | opcode, status, payload...]``."""
    return bytes([REPLY_BIT | (opcode & 0x7F), status & 0xFF]) + payload


# --- SLIP (RFC 1055) --------------------------------------------------------------------------
SLIP_END = 0xC0
SLIP_ESC = 0xDB
SLIP_ESC_END = 0xDC
SLIP_ESC_ESC = 0xDD
MAX_FRAME = 1024


def slip_encode(payload: bytes) -> bytes:
    """One SLIP frame: END, stuffed payload, END."""
    stuffed = payload.replace(bytes([SLIP_ESC]), bytes([SLIP_ESC, SLIP_ESC_ESC])).replace(
        bytes([SLIP_END]), bytes([SLIP_ESC, SLIP_ESC_END])
    )
    return bytes([SLIP_END]) + stuffed + bytes([SLIP_END])


class SlipDecoder:
    """Incremental SLIP decoder (firmware side: host -> sensor control frames).

    ``feed(bytes)`` returns complete frames; frames with an invalid escape or longer than
    ``MAX_FRAME`` are dropped (counted in ``dropped``) and decoding resumes at the next END.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._esc = False
        self._bad = False
        self.dropped = 0

    def feed(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        for b in data:
            if b == SLIP_END:
                if self._bad:
                    self.dropped += 1
                elif self._esc:
                    self.dropped += 1
                elif self._buf:
                    frames.append(bytes(self._buf))
                self._buf.clear()
                self._esc = self._bad = False
            elif self._bad:
                continue
            elif self._esc:
                self._esc = False
                if b == SLIP_ESC_END:
                    self._buf.append(SLIP_END)
                elif b == SLIP_ESC_ESC:
                    self._buf.append(SLIP_ESC)
                else:
                    self._bad = True
            elif b == SLIP_ESC:
                self._esc = True
            else:
                self._buf.append(b)
            if len(self._buf) > MAX_FRAME:
                self._bad = True
                self._buf.clear()
        return frames
