"""Host side of the legrep sensor protocol v1 (``docs/protocol.md``): decode, deframe, track.

I/O free. Bytes from any transport (BLE notifications, a serial port, a recording) become
:class:`ImuPacket` values (:func:`decode_imu_packet`), and a per-sensor :class:`PacketTracker`
turns packets that may arrive lost, duplicated, corrupted or out of order into samples in
sample-index order, each exactly once, asking for RESENDs of the gaps.

Written from the spec, independently of the simulator's encoder (``firmware_sim/protocol.py``).
"""

from __future__ import annotations

import binascii
import logging
import enum
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .diagnostics import LinkDiagnostics
from .errors import PacketError, SensorError

logger = logging.getLogger(__name__)

IntArray = npt.NDArray[np.int64]
Int16Array = npt.NDArray[np.int16]
FloatArray = npt.NDArray[np.float64]

PROTOCOL_VERSION = 1

# --- GATT (docs/protocol.md section 1) --------------------------------------------------------
SERVICE_UUID = "6c656772-6570-4f00-8000-00000000a000"
IMU_DATA_UUID = "6c656772-6570-4f00-8000-00000000a001"
CONTROL_UUID = "6c656772-6570-4f00-8000-00000000a002"
STATUS_UUID = "6c656772-6570-4f00-8000-00000000a003"
# Bluetooth SIG Assigned Numbers, expanded to the Bluetooth base UUID.
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
MANUFACTURER_NAME_UUID = "00002a29-0000-1000-8000-00805f9b34fb"
MODEL_NUMBER_UUID = "00002a24-0000-1000-8000-00805f9b34fb"
SERIAL_NUMBER_UUID = "00002a25-0000-1000-8000-00805f9b34fb"
FIRMWARE_REVISION_UUID = "00002a26-0000-1000-8000-00805f9b34fb"
NAME_PREFIX = "legrep-"

# --- IMU data packet (section 2) ----------------------------------------------------------------
PACKET_TYPE_IMU = 0x01
FLAG_RESENT = 0x01
FLAG_CLIPPED = 0x02
TICKS_PER_S = 32768
MIN_MTU = 33
_IMU_HEADER = struct.Struct("<BBBBIII")
_SAMPLE_DTYPE = np.dtype("<i2")


def crc16_ccitt(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, unreflected, xorout 0).

    ``binascii.crc_hqx`` is the unreflected 0x1021 CRC with a caller-given initial value.
    """
    return binascii.crc_hqx(bytes(data), crc)


def tick_offset(i: npt.ArrayLike, rate_hz: int) -> IntArray:
    """Ticks from a packet's first sample to sample ``i``: round(i * 32768 / rate_hz), exact integers."""
    i64 = np.asarray(i, dtype=np.int64)
    return (2 * i64 * TICKS_PER_S + rate_hz) // (2 * rate_hz)


@dataclass(frozen=True, slots=True)
class ImuPacket:
    """One decoded IMU data packet.

    Attributes
    ----------
    samples : (n, 6) int16 raw counts, columns acc_x, acc_y, acc_z, gyr_x, gyr_y, gyr_z.
    """

    flags: int
    seq: int
    first_sample_index: int
    timestamp_ticks: int
    samples: Int16Array

    @property
    def n(self) -> int:
        return int(self.samples.shape[0])

    @property
    def resent(self) -> bool:
        return bool(self.flags & FLAG_RESENT)

    @property
    def clipped(self) -> bool:
        return bool(self.flags & FLAG_CLIPPED)

    @property
    def acc_raw(self) -> Int16Array:
        return self.samples[:, :3]

    @property
    def gyr_raw(self) -> Int16Array:
        return self.samples[:, 3:]


def decode_imu_packet(data: bytes | bytearray | memoryview) -> ImuPacket:
    """Decode one IMU data packet.

    Raises
    ------
    PacketError
        Too short, not an IMU packet, length not 18 + 12 n, or CRC mismatch; the message says
        what was expected and what arrived.
    """
    raw = bytes(data)
    if len(raw) < 18 + 12:
        raise PacketError(f"IMU packet needs at least 30 bytes, got {len(raw)}")
    ptype, flags, n, _reserved, seq, first, ticks = _IMU_HEADER.unpack_from(raw)
    if ptype != PACKET_TYPE_IMU:
        raise PacketError(f"packet type must be 0x01 (IMU), got 0x{ptype:02x}")
    if not 1 <= n <= 32:
        raise PacketError(f"IMU packet sample count must be 1..32, got {n}")
    if len(raw) != 18 + 12 * n:
        raise PacketError(f"IMU packet with n={n} must be {18 + 12 * n} bytes, got {len(raw)}")
    (crc_rx,) = struct.unpack_from("<H", raw, len(raw) - 2)
    crc = crc16_ccitt(raw[:-2])
    if crc != crc_rx:
        raise PacketError(f"IMU packet CRC mismatch: computed 0x{crc:04x}, packet says 0x{crc_rx:04x}")
    samples = np.frombuffer(raw, dtype=_SAMPLE_DTYPE, count=6 * n, offset=16).astype(np.int16).reshape(n, 6)
    return ImuPacket(flags, seq, first, ticks, samples)


# --- status (section 4) -------------------------------------------------------------------------
STATUS_SIZE = 32
_STATUS = struct.Struct("<BBBBHBBHBBffHHII")


@dataclass(frozen=True, slots=True)
class SensorStatus:
    """The sensor's 32-byte status / config record."""

    protocol_version: int
    fw_version: tuple[int, int, int]
    rate_hz: int
    acc_range_g: int
    leg: int
    gyr_range_dps: int
    streaming: bool
    battery_pct: int
    acc_lsb_g: float
    gyr_lsb_dps: float
    buffer_fill_packets: int
    buffer_capacity_packets: int
    next_seq: int
    now_ticks: int

    @property
    def fw_version_text(self) -> str:
        return ".".join(str(v) for v in self.fw_version)

    def to_dict(self) -> dict[str, object]:
        return {
            "protocol_version": self.protocol_version,
            "fw_version": self.fw_version_text,
            "rate_hz": self.rate_hz,
            "acc_range_g": self.acc_range_g,
            "gyr_range_dps": self.gyr_range_dps,
            "leg": self.leg,
            "acc_lsb_g": self.acc_lsb_g,
            "gyr_lsb_dps": self.gyr_lsb_dps,
            "battery_pct": self.battery_pct,
        }


def decode_status(data: bytes | bytearray | memoryview) -> SensorStatus:
    """Decode the status record (the first 32 bytes; later bytes are future additions).

    Raises
    ------
    PacketError
        Shorter than 32 bytes or impossible values.
    SensorError
        The sensor speaks another protocol version.
    """
    raw = bytes(data)
    if len(raw) < STATUS_SIZE:
        raise PacketError(f"status must be at least {STATUS_SIZE} bytes, got {len(raw)}")
    f = _STATUS.unpack_from(raw)
    if f[0] != PROTOCOL_VERSION:
        raise SensorError(f"sensor speaks protocol version {f[0]}, this legrep supports version {PROTOCOL_VERSION}")
    st = SensorStatus(
        protocol_version=f[0],
        fw_version=(f[1], f[2], f[3]),
        rate_hz=f[4],
        acc_range_g=f[5],
        leg=f[6],
        gyr_range_dps=f[7],
        streaming=bool(f[8]),
        battery_pct=f[9],
        acc_lsb_g=float(f[10]),
        gyr_lsb_dps=float(f[11]),
        buffer_fill_packets=f[12],
        buffer_capacity_packets=f[13],
        next_seq=f[14],
        now_ticks=f[15],
    )
    if st.rate_hz <= 0 or not st.acc_lsb_g > 0 or not st.gyr_lsb_dps > 0:
        raise PacketError(
            f"status has impossible values: rate_hz={st.rate_hz}, acc_lsb_g={st.acc_lsb_g}, gyr_lsb_dps={st.gyr_lsb_dps}"
        )
    return st


# --- control (section 3) ------------------------------------------------------------------------


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


REPLY_STATUS_TEXT = {0: "ok", 1: "bad length", 2: "bad value", 3: "busy", 4: "unknown opcode"}


def start_request() -> bytes:
    return bytes([Opcode.START])


def stop_request() -> bytes:
    return bytes([Opcode.STOP])


def set_rate_request(rate_hz: int) -> bytes:
    return struct.pack("<BH", Opcode.SET_RATE, rate_hz)


def set_ranges_request(acc_range_g: int, gyr_range_dps: int) -> bytes:
    return struct.pack("<BBH", Opcode.SET_RANGES, acc_range_g, gyr_range_dps)


def time_sync_request(host_token: int) -> bytes:
    return struct.pack("<BI", Opcode.TIME_SYNC, host_token & 0xFFFFFFFF)


def resend_request(from_seq: int, to_seq: int) -> bytes:
    return struct.pack("<BII", Opcode.RESEND, from_seq & 0xFFFFFFFF, to_seq & 0xFFFFFFFF)


def set_leg_request(leg_code: int) -> bytes:
    return struct.pack("<BB", Opcode.SET_LEG, leg_code)


def get_status_request() -> bytes:
    return bytes([Opcode.GET_STATUS])


def sim_fault_request(kind: int, arg: int) -> bytes:
    """Simulator-only fault injection; ``arg`` may be negative for kind 5 (drift ppm)."""
    return struct.pack("<BBI", Opcode.SIM_FAULT, kind, arg & 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class ControlReply:
    """``[0x80 | opcode, status, payload...]`` from the control characteristic."""

    opcode: int
    status: int
    payload: bytes

    @property
    def ok(self) -> bool:
        return self.status == 0

    def u32(self, index: int) -> int:
        """The ``index``-th u32 of the payload; PacketError if the payload is too short."""
        end = 4 * index + 4
        if len(self.payload) < end:
            raise PacketError(
                f"reply to opcode 0x{self.opcode:02x} needs {end} payload bytes, got {len(self.payload)}"
            )
        return int(struct.unpack_from("<I", self.payload, 4 * index)[0])

    def describe(self) -> str:
        try:
            name = Opcode(self.opcode).name
        except ValueError:
            name = f"0x{self.opcode:02x}"
        return f"{name}: {REPLY_STATUS_TEXT.get(self.status, f'status {self.status}')}"


def decode_control_reply(data: bytes | bytearray | memoryview) -> ControlReply:
    raw = bytes(data)
    if len(raw) < 2:
        raise PacketError(f"control reply needs at least 2 bytes, got {len(raw)}")
    if not raw[0] & 0x80:
        raise PacketError(f"control reply must start with 0x80|opcode, got 0x{raw[0]:02x}")
    return ControlReply(raw[0] & 0x7F, raw[1], raw[2:])


# --- serial framing: SLIP, RFC 1055 (section 7) -------------------------------------------------
SLIP_END = 0xC0
SLIP_ESC = 0xDB
SLIP_ESC_END = 0xDC
SLIP_ESC_ESC = 0xDD
MAX_FRAME = 1024


class Channel(enum.IntEnum):
    DATA = 0x01
    CONTROL = 0x02
    STATUS = 0x03


def slip_frame(payload: bytes) -> bytes:
    """END + stuffed payload + END."""
    out = bytearray([SLIP_END])
    for b in payload:
        if b == SLIP_END:
            out += bytes([SLIP_ESC, SLIP_ESC_END])
        elif b == SLIP_ESC:
            out += bytes([SLIP_ESC, SLIP_ESC_ESC])
        else:
            out.append(b)
    out.append(SLIP_END)
    return bytes(out)


class SlipDeframer:
    """Streaming SLIP deframer: any slicing of the input gives the same frames.

    Frames with an invalid escape or longer than ``max_frame`` bytes are dropped and counted in
    ``dropped_frames``; decoding resynchronises at the next END. Empty frames are skipped.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._esc = False
        self._bad = False
        self.dropped_frames = 0
        self.frames = 0

    def reset(self) -> None:
        self._buf.clear()
        self._esc = self._bad = False

    def feed_data(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        out: list[bytes] = []
        buf = self._buf
        for b in bytes(data):
            if b == SLIP_END:
                if self._bad or self._esc:
                    self.dropped_frames += 1
                elif buf:
                    out.append(bytes(buf))
                    self.frames += 1
                buf.clear()
                self._esc = self._bad = False
            elif self._bad:
                continue
            elif self._esc:
                self._esc = False
                if b == SLIP_ESC_END:
                    buf.append(SLIP_END)
                elif b == SLIP_ESC_ESC:
                    buf.append(SLIP_ESC)
                else:
                    self._bad = True
                    buf.clear()
            elif b == SLIP_ESC:
                self._esc = True
            else:
                buf.append(b)
                if len(buf) > self.max_frame:
                    self._bad = True
                    buf.clear()
        return out


def split_serial_frame(frame: bytes) -> tuple[Channel, bytes]:
    """``(channel, message)`` of a deframed serial frame; PacketError for an unknown channel."""
    if not frame:
        raise PacketError("empty serial frame")
    try:
        return Channel(frame[0]), frame[1:]
    except ValueError:
        raise PacketError(f"serial frame channel must be 1, 2 or 3, got 0x{frame[0]:02x}") from None


# --- tracking: gaps, duplicates, reordering, resend -------------------------------------------


def unwrap_u32(value: int, reference: int) -> int:
    """The integer congruent to ``value`` mod 2**32 nearest to ``reference``."""
    d = ((value - reference + 0x80000000) & 0xFFFFFFFF) - 0x80000000
    return reference + d


@dataclass(frozen=True, slots=True)
class SampleBatch:
    """Samples released by a tracker, in increasing sample index, each exactly once.

    Attributes
    ----------
    sample_index : (N,) int64 device sample counter (gaps where samples were lost).
    ticks : (N,) int64 unwrapped sensor clock ticks (32 768 Hz) of each sample.
    acc_raw, gyr_raw : (N, 3) int16 raw counts.
    """

    sample_index: IntArray
    ticks: IntArray
    acc_raw: Int16Array
    gyr_raw: Int16Array

    def __len__(self) -> int:
        return int(self.sample_index.shape[0])

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter((self.sample_index, self.ticks, self.acc_raw, self.gyr_raw))

    def scaled(self, acc_lsb_g: float, gyr_lsb_dps: float) -> tuple[FloatArray, FloatArray]:
        """``(acc_g (N, 3), gyr_dps (N, 3))`` using the status LSBs."""
        return self.acc_raw.astype(np.float64) * acc_lsb_g, self.gyr_raw.astype(np.float64) * gyr_lsb_dps

    @staticmethod
    def concat(batches: Iterable["SampleBatch"]) -> "SampleBatch":
        items = [b for b in batches if len(b)]
        if not items:
            return SampleBatch(
                np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int16), np.zeros((0, 3), np.int16)
            )
        if len(items) == 1:
            return items[0]
        return SampleBatch(
            np.concatenate([b.sample_index for b in items]),
            np.concatenate([b.ticks for b in items]),
            np.concatenate([b.acc_raw for b in items]),
            np.concatenate([b.gyr_raw for b in items]),
        )


@dataclass(slots=True)
class TrackerStats:
    """Counters a :class:`PacketTracker` keeps (diagnostics, not errors)."""

    received: int = 0
    """Packets decoded and accepted (including re-sent ones that filled a gap)."""
    duplicates: int = 0
    corrupt: int = 0
    """Notifications or frames that failed to decode (length, CRC, type)."""
    reordered: int = 0
    """Live packets that arrived after a later seq."""
    resent_used: int = 0
    """Re-sent packets that filled a gap."""
    late: int = 0
    """Packets that arrived after their gap had been given up."""
    lost_packets: int = 0
    lost_samples: int = 0
    resend_requests: int = 0
    samples_out: int = 0
    restarts: int = 0

    def to_dict(self) -> dict[str, int]:
        return {k: int(getattr(self, k)) for k in self.__slots__}

    def snapshot(self) -> LinkDiagnostics:
        """The counters now, as the frozen value the session's diagnostics hold."""
        return LinkDiagnostics(**self.to_dict())


@dataclass(slots=True)
class _Gap:
    detected_s: float
    requested_s: float | None = None
    """When the live edge decided to request it (live only: not in a recording)."""
    attempts: int = 0
    resend_sent_s: float = -math.inf
    """When a RESEND covering it was sent (from the recorded request: replay sees it too)."""
    link_up_s: float = -math.inf
    """When the link last came back while it was open."""


class PacketTracker:
    """One sensor's packets in, samples out in sample-index order, each exactly once.

    Holds packets that arrive after a missing seq for a short reorder window; a gap is filled by
    a late or re-sent packet, or given up ``give_up_s`` after the last sign of life for it (its
    detection, a RESEND sent for it, any RESEND reply or re-sent packet, the link coming back), or
    as soon as the sensor says the packets are gone. While the link is down (:meth:`link_down`)
    nothing is given up: the sensor keeps its ring buffer, and a reconnection that takes long (in
    session seconds, as at high demo speeds) must not lose what it can still fetch. Time only
    advances through the ``now_s``/``arrival_s``/``t_s`` arguments (host clock), and every call
    comes from a recorded record, so a replay that feeds the same calls gets the same output.

    Parameters
    ----------
    rate_hz : sample rate (from the status), for per-sample ticks.
    resend_after_s : a gap older than this is reported by :meth:`resend_requests`.
    resend_retry_s : wait between requests for the same gap; at most ``max_resend_attempts``.
    give_up_s : a gap at the head with no resend activity for this long is declared lost and the
        samples behind it released.
    max_wait_s : with the link up, no gap is held longer than this after its detection, whatever
        resend activity continues (bounds the latency and memory of a hopeless gap).
    """

    MAX_JUMP = 1 << 16

    def __init__(
        self,
        rate_hz: int,
        resend_after_s: float = 0.15,
        resend_retry_s: float = 0.5,
        max_resend_attempts: int = 3,
        give_up_s: float = 2.0,
        max_wait_s: float = 30.0,
    ) -> None:
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {rate_hz}")
        self.rate_hz = int(rate_hz)
        self.resend_after_s = resend_after_s
        self.resend_retry_s = resend_retry_s
        self.max_resend_attempts = max_resend_attempts
        self.give_up_s = give_up_s
        self.max_wait_s = max_wait_s
        self.stats = TrackerStats()
        self._tick_ref: int | None = None
        self._resend_activity_s = -math.inf
        self._link_down = False
        self._reset_stream()

    # -- state ------------------------------------------------------------------------------
    def _reset_stream(self) -> None:
        self._next_seq: int | None = None
        self._next_sample: int | None = None
        self._max_seq: int | None = None
        self._held: dict[int, tuple[ImuPacket, int]] = {}
        self._gaps: dict[int, _Gap] = {}
        self._gone_before = -1
        self._given_up_below = -1

    def start(self, first_sample_index: int | None = None) -> None:
        """The host sent START: expect seq 0 (and this first sample index, from the reply)."""
        self._reset_stream()
        self._next_seq = 0
        self._max_seq = -1
        self._next_sample = first_sample_index

    @property
    def next_seq(self) -> int | None:
        """The seq the tracker waits for next (everything below is released or given up)."""
        return self._next_seq

    @property
    def next_sample_index(self) -> int | None:
        return self._next_sample

    @property
    def held_packets(self) -> int:
        return len(self._held)

    def unwrap_ticks(self, ticks_u32: int) -> int:
        """Unwrap a u32 sensor tick value near the previous one (the first one is kept as is)."""
        ref = ticks_u32 if self._tick_ref is None else self._tick_ref
        value = unwrap_u32(ticks_u32, ref)
        self._tick_ref = value
        return value

    def missing(self) -> list[tuple[int, int]]:
        """Missing seq ranges (inclusive) the tracker is waiting for."""
        return _ranges(sorted(self._gaps))

    # -- input ------------------------------------------------------------------------------
    def feed_bytes(self, data: bytes, arrival_s: float) -> tuple[ImuPacket | None, SampleBatch]:
        """Decode and feed one notification; a bad one is counted in ``stats.corrupt``."""
        try:
            packet = decode_imu_packet(data)
        except PacketError:
            self.stats.corrupt += 1
            return None, self.poll(arrival_s)
        return packet, self.feed(packet, arrival_s)

    def feed(self, packet: ImuPacket, arrival_s: float) -> SampleBatch:
        """Accept one packet; returns the samples that can now be released (possibly none)."""
        ticks = self.unwrap_ticks(packet.timestamp_ticks)
        seq = packet.seq
        if self._next_seq is None:
            self._next_seq = seq
            self._max_seq = seq - 1
        assert self._max_seq is not None
        if seq < self._next_seq:
            if (
                self._next_sample is not None
                and packet.first_sample_index >= self._next_sample
                and not packet.resent
            ):
                # A new stream (START resets seq) or a seq field that wrapped: start over.
                out = self.flush()
                self.stats.restarts += 1
                self._reset_stream()
                self._next_seq = seq
                self._max_seq = seq - 1
                self._next_sample = packet.first_sample_index
                return SampleBatch.concat([out, self.feed(packet, arrival_s)])
            if seq <= self._given_up_below and seq not in self._held:
                self.stats.late += 1
            else:
                self.stats.duplicates += 1
            return self.poll(arrival_s)
        if seq in self._held:
            self.stats.duplicates += 1
            return self.poll(arrival_s)
        if seq - self._next_seq > self.MAX_JUMP:  # (from the head: the window waited on stays bounded)
            out = self.flush()
            self.stats.restarts += 1
            self._reset_stream()
            self._next_seq = seq
            self._max_seq = seq - 1
            return SampleBatch.concat([out, self.feed(packet, arrival_s)])
        self.stats.received += 1
        if seq < self._max_seq:
            if packet.resent:
                self.stats.resent_used += 1
            else:
                self.stats.reordered += 1
        elif packet.resent:
            self.stats.resent_used += 1
        if packet.resent:
            self._resend_activity_s = max(self._resend_activity_s, arrival_s)
        for missing_seq in range(self._max_seq + 1, seq):
            self._gaps[missing_seq] = _Gap(arrival_s)
        self._gaps.pop(seq, None)
        self._max_seq = max(self._max_seq, seq)
        self._held[seq] = (packet, ticks)
        return SampleBatch.concat([self._release(), self.poll(arrival_s)])

    def note_next_seq(self, next_seq: int, now_s: float) -> None:
        """The sensor says it produced packets up to ``next_seq - 1`` (status): trailing gaps."""
        if self._max_seq is None or self._next_seq is None:
            return
        if next_seq - 1 - self._next_seq > self.MAX_JUMP:
            # Implausible (a damaged status, a restarted sensor): more packets than the sensor can
            # hold. Believing it would make the tracker wait for (and later walk) billions of seqs.
            logger.info("status next_seq %d is %d beyond the seq awaited; ignored", next_seq, next_seq - 1 - self._next_seq)
            return
        for missing_seq in range(self._max_seq + 1, next_seq):
            self._gaps.setdefault(missing_seq, _Gap(now_s))
        self._max_seq = max(self._max_seq, next_seq - 1)

    def resend_requests(self, now_s: float) -> list[tuple[int, int]]:
        """Seq ranges to ask the sensor to RESEND now (marks them requested)."""
        due: list[int] = []
        for seq, gap in self._gaps.items():
            if gap.attempts >= self.max_resend_attempts or now_s - gap.detected_s < self.resend_after_s:
                continue
            if gap.requested_s is not None and now_s - gap.requested_s < self.resend_retry_s:
                continue
            gap.requested_s = now_s
            gap.attempts += 1
            due.append(seq)
        ranges = _ranges(sorted(due))
        self.stats.resend_requests += len(ranges)
        return ranges

    def note_resend_sent(self, from_seq: int, to_seq: int, t_s: float) -> None:
        """A RESEND for ``from_seq..to_seq`` (inclusive) was sent at ``t_s``: those gaps wait anew."""
        if to_seq - from_seq + 1 > len(self._gaps):  # bounded by the gaps held, whatever the range
            seqs: Iterable[int] = [s for s in self._gaps if from_seq <= s <= to_seq]
        else:
            seqs = range(from_seq, to_seq + 1)
        for seq in seqs:
            gap = self._gaps.get(seq)
            if gap is not None:
                gap.resend_sent_s = max(gap.resend_sent_s, t_s)

    def link_down(self, t_s: float) -> None:
        """The link was lost at ``t_s``: hold every gap until :meth:`link_up`."""
        self._link_down = True

    def link_up(self, t_s: float) -> None:
        """The link is back at ``t_s``: gaps get ``give_up_s`` from now to be re-sent."""
        self._link_down = False
        self._resend_activity_s = max(self._resend_activity_s, t_s)
        for gap in self._gaps.values():
            gap.link_up_s = max(gap.link_up_s, t_s)

    def on_resend_reply(self, first_available_seq: int, count_resent: int, now_s: float) -> SampleBatch:
        """The sensor answered a RESEND: packets below ``first_available_seq`` are gone."""
        self._gone_before = max(self._gone_before, first_available_seq)
        self._resend_activity_s = max(self._resend_activity_s, now_s)
        return self.poll(now_s)

    def _waiting_since_s(self, gap: _Gap) -> float:
        since = max(gap.detected_s, gap.resend_sent_s, self._resend_activity_s)
        return min(since, max(gap.detected_s, gap.link_up_s) + self.max_wait_s - self.give_up_s)

    def poll(self, now_s: float) -> SampleBatch:
        """Give up head gaps that are too old (or gone) and release what follows them."""
        out: list[SampleBatch] = []
        while self._held and self._next_seq is not None and self._next_seq not in self._held:
            head = self._next_seq
            gap = self._gaps.get(head)
            if (
                gap is not None
                and head >= self._gone_before
                and (self._link_down or now_s - self._waiting_since_s(gap) < self.give_up_s)
            ):
                break
            lowest = min(self._held)
            self._give_up(head, lowest)
            out.append(self._release())
        return SampleBatch.concat(out)

    def flush(self) -> SampleBatch:
        """End of stream: give up every gap and release everything held."""
        out: list[SampleBatch] = []
        while self._held and self._next_seq is not None:
            lowest = min(self._held)
            if lowest > self._next_seq:
                self._give_up(self._next_seq, lowest)
            out.append(self._release())
        if self._max_seq is not None and self._next_seq is not None and self._max_seq >= self._next_seq:
            self._give_up(self._next_seq, self._max_seq + 1)
        return SampleBatch.concat(out)

    # -- internals --------------------------------------------------------------------------
    def _give_up(self, first: int, stop: int) -> None:
        if stop - first > len(self._gaps):  # bounded by the gaps held, however far apart first and stop
            for s in [k for k in self._gaps if first <= k < stop]:
                del self._gaps[s]
        else:
            for s in range(first, stop):
                self._gaps.pop(s, None)
        self.stats.lost_packets += stop - first
        self._given_up_below = max(self._given_up_below, stop - 1)
        self._next_seq = stop

    def _release(self) -> SampleBatch:
        parts: list[SampleBatch] = []
        assert self._next_seq is not None
        while self._next_seq in self._held:
            packet, ticks = self._held.pop(self._next_seq)
            self._next_seq += 1
            idx = packet.first_sample_index + np.arange(packet.n, dtype=np.int64)
            tk = ticks + tick_offset(np.arange(packet.n), self.rate_hz)
            keep = slice(None)
            if self._next_sample is not None:
                if packet.first_sample_index < self._next_sample:
                    skip = self._next_sample - packet.first_sample_index
                    if skip >= packet.n:
                        continue
                    keep = slice(skip, None)
                elif packet.first_sample_index > self._next_sample:
                    self.stats.lost_samples += packet.first_sample_index - self._next_sample
            self._next_sample = packet.first_sample_index + packet.n
            batch = SampleBatch(idx[keep], tk[keep], packet.acc_raw[keep], packet.gyr_raw[keep])
            self.stats.samples_out += len(batch)
            parts.append(batch)
        return SampleBatch.concat(parts)


def _ranges(seqs: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s in seqs:
        if out and out[-1][1] == s - 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out
