"""A transport-free model of the legrep sensor firmware (docs/protocol.md).

:class:`SensorFirmware` is the state machine a real sensor runs: a drifting 32 768 Hz clock,
sampling at the configured rate on that clock, int16 quantisation with the configured ranges,
packets sized to the link MTU, a ring buffer for RESEND, control requests, the status record and
simulator-only fault injection. It never reads a clock: the transport edge (bumble peripheral,
pty serial port, a test) drives it with the *true* time in seconds, so tests are deterministic.

The sample source is any callable ``f(true_times_s (N,)) -> (acc_g (N, 3), gyr_dps (N, 3))``, e.g.
:func:`array_source` over a simulated or recorded signal.
"""

from __future__ import annotations

import collections
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from numpy._core.multiarray import interp as _interp

from . import protocol as p

FloatArray = npt.NDArray[np.float64]
SampleSource = Callable[[FloatArray], tuple[FloatArray, FloatArray]]


def array_source(time_s: npt.ArrayLike, acc_g: npt.ArrayLike, gyr_dps: npt.ArrayLike) -> SampleSource:
    """A sample source interpolating (linearly, held at the ends) a signal given at ``time_s``.

    Parameters
    ----------
    time_s : (M,) increasing seconds. acc_g, gyr_dps : (M, 3).
    """
    t = np.asarray(time_s, dtype=np.float64)
    a = np.asarray(acc_g, dtype=np.float64).reshape(-1, 3)
    g = np.asarray(gyr_dps, dtype=np.float64).reshape(-1, 3)
    if t.ndim != 1 or a.shape != (t.size, 3) or g.shape != (t.size, 3) or t.size < 1:
        raise ValueError(f"array_source needs time_s (M,), acc_g and gyr_dps (M, 3); got {t.shape}, {a.shape}, {g.shape}")

    columns = [np.ascontiguousarray(a[:, k]) for k in range(3)] + [np.ascontiguousarray(g[:, k]) for k in range(3)]
    search = t.searchsorted

    def source(times_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        # Interpolate within the window that brackets the query (the same neighbours, so the same
        # values as over the whole signal): a firmware tick asks for a few samples of a long signal.
        # (``_interp`` is what ``np.interp`` calls for real values, without its per-call checks:
        # a tick costs a few microseconds, and the simulated sensors tick 50 times a second.)
        times_s = np.asarray(times_s, dtype=np.float64)
        if times_s.size == 0:
            return np.zeros((0, 3)), np.zeros((0, 3))
        lo = max(int(search(times_s.min(), side="right")) - 1, 0)
        hi = min(int(search(times_s.max(), side="left")) + 1, t.size)
        tw = t[lo:hi]
        out = np.empty((6, times_s.size))
        for k, column in enumerate(columns):
            out[k] = _interp(times_s, tw, column[lo:hi], None, None)
        return out[:3].T, out[3:].T

    return source


def signal_source(signal: object, delay_s: float = 0.0) -> SampleSource:
    """A sample source replaying a simulated thigh signal (``legrep_sim.scenarios.SimSignal``).

    The signal's ``true_time_s``/``acc_g``/``gyr_dps`` are interpolated; ``delay_s`` shifts the
    movement later in true time (the first sample -- the still neutral pose -- is held before it),
    so a sensor started after a transport's set-up still sees the whole session.
    """
    t = np.asarray(getattr(signal, "true_time_s"), dtype=np.float64)
    return array_source(t + delay_s, getattr(signal, "acc_g"), getattr(signal, "gyr_dps"))


def still_source(acc_g: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> SampleSource:
    """A sensor lying still: constant specific force, zero rate."""
    acc = np.asarray(acc_g, dtype=np.float64)

    def source(times_s: FloatArray) -> tuple[FloatArray, FloatArray]:
        n = np.asarray(times_s).shape[0]
        return np.tile(acc, (n, 1)), np.zeros((n, 3))

    return source


@dataclass(frozen=True, slots=True)
class FirmwareConfig:
    """Power-on configuration of a simulated sensor."""

    serial: str = "0001"
    """4 hex digits: advertised name ``legrep-<serial>`` and Serial Number characteristic."""
    rate_hz: int = 100
    acc_range_g: int = 8
    gyr_range_dps: int = 1000
    leg: int = 0
    """0 unassigned, 1 left, 2 right (the 'flash' content at power-on)."""
    battery_pct: int = 95
    drift_ppm: float = 0.0
    """Sensor clock error: +100 means the clock runs 100 ppm fast."""
    clock_offset_ticks: int = 0
    """Sensor clock reading at true time 0."""
    ring_s: float = 32.0
    """Ring buffer length in seconds of packets (protocol: at least 30 s)."""
    idle_stop_s: float = 120.0
    """Streaming stops by itself after this long without a connection."""
    fw_version: tuple[int, int, int] = p.FW_VERSION

    @property
    def name(self) -> str:
        return p.NAME_PREFIX + self.serial.upper()


@dataclass(slots=True)
class _Faults:
    lose: int = 0
    duplicate: int = 0
    corrupt: int = 0
    stall_until_s: float | None = None
    drop_link_at_s: float | None = None


@dataclass(slots=True)
class Produced:
    """Every sample the sensor took and put in a packet, in order (test bookkeeping)."""

    sample_index: list[int] = field(default_factory=list)
    true_time_s: list[float] = field(default_factory=list)
    ticks: list[int] = field(default_factory=list)
    raw: list[npt.NDArray[np.int16]] = field(default_factory=list)

    def arrays(self) -> tuple[npt.NDArray[np.int64], FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int16]]:
        """``(sample_index (N,), true_time_s (N,), ticks (N,), raw (N, 6) int16)``."""
        raw = np.concatenate(self.raw) if self.raw else np.zeros((0, 6), np.int16)
        return (
            np.asarray(self.sample_index, dtype=np.int64),
            np.asarray(self.true_time_s, dtype=np.float64),
            np.asarray(self.ticks, dtype=np.int64),
            raw,
        )


class SensorFirmware:
    """The firmware state machine, driven by the transport with true time in seconds.

    Parameters
    ----------
    source : ``f(true_times_s (N,)) -> (acc_g (N, 3), gyr_dps (N, 3))``.
    config : power-on configuration.
    connected, mtu : initial link state (a serial link is always connected, MTU 512).
    """

    def __init__(
        self,
        source: SampleSource,
        config: FirmwareConfig = FirmwareConfig(),
        *,
        connected: bool = False,
        mtu: int = 23,
    ) -> None:
        if config.rate_hz not in p.RATES_HZ:
            raise ValueError(f"rate_hz must be one of {p.RATES_HZ}, got {config.rate_hz}")
        self.source = source
        self.config = config
        self.rate_hz = config.rate_hz
        self.acc_range_g = config.acc_range_g
        self.gyr_range_dps = config.gyr_range_dps
        self.leg = config.leg
        self.battery_pct = config.battery_pct
        self.connected = connected
        self.mtu = mtu
        self.streaming = False
        self.now_s = 0.0
        # Clock: ticks(t) = seg_ticks + (t - seg_t) * 32768 * (1 + ppm * 1e-6), piecewise in drift.
        self._seg_t = 0.0
        self._seg_ticks = float(config.clock_offset_ticks)
        self._drift_ppm = float(config.drift_ppm)
        # Sampling.
        self.sample_counter = 0
        self._start_ticks = 0
        self._k = 0  # samples taken since START
        # the samples of the packet being filled: runs of rows, whether any clipped, bookkeeping
        self._pending_raw: list[npt.NDArray[np.int16]] = []
        self._pending_clip = False
        self._pending_meta: list[tuple[int, float, int]] = []
        self._pending_first: tuple[int, int] | None = None  # (sample index, ticks) of first pending
        self._pending_n = 0
        self.next_seq = 0
        self._ring: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=1)
        self._outbox: list[bytes] = []
        self._stall_backlog: list[bytes] = []
        self._faults = _Faults()
        self._disconnected_at_s: float | None = None if connected else 0.0
        self._status_dirty = False
        self.produced = Produced()
        self.notifications_sent = 0
        self.on_change: Callable[[], None] | None = None
        """Called after anything from outside changed the sensor (a control request, the link, the
        MTU, a fault, the battery, the clock rate): a transport that skips idle ticks
        (:meth:`next_event_s`) then ticks at once."""

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # ------------------------------------------------------------------ clock
    def ticks_at(self, true_time_s: float) -> int:
        """The sensor clock (unwrapped integer ticks) at a true time."""
        return math.floor(self._seg_ticks + (true_time_s - self._seg_t) * p.TICKS_PER_S * (1 + self._drift_ppm * 1e-6))

    def _true_time_of(self, ticks: npt.NDArray[np.int64]) -> FloatArray:
        return self._seg_t + (ticks.astype(np.float64) - self._seg_ticks) / (p.TICKS_PER_S * (1 + self._drift_ppm * 1e-6))

    @property
    def drift_ppm(self) -> float:
        return self._drift_ppm

    def set_drift_ppm(self, ppm: float, now_s: float | None = None) -> None:
        """Change the clock rate from ``now_s`` on, continuously (no jump)."""
        now = self._sync(now_s)
        self._seg_ticks = self._seg_ticks + (now - self._seg_t) * p.TICKS_PER_S * (1 + self._drift_ppm * 1e-6)
        self._seg_t = now
        self._drift_ppm = float(ppm)
        self._changed()

    # ------------------------------------------------------------------ link
    def connect(self, now_s: float | None = None, mtu: int = 23) -> None:
        self._sync(now_s)
        self.connected = True
        self.mtu = mtu
        self._disconnected_at_s = None
        self._changed()

    def set_mtu(self, mtu: int) -> None:
        self.mtu = mtu
        self._changed()

    def disconnect(self, now_s: float | None = None) -> None:
        """The link is gone: queued notifications are not sent (they stay in the ring buffer)."""
        now = self._sync(now_s)
        self.connected = False
        self._disconnected_at_s = now
        self._outbox.clear()
        self._stall_backlog.clear()
        self._faults.drop_link_at_s = None
        self._changed()

    def link_drop_due(self, now_s: float) -> bool:
        """True once when a SIM_FAULT drop-link timer has expired (the transport then disconnects)."""
        at = self._faults.drop_link_at_s
        if at is not None and now_s >= at and self.connected:
            self._faults.drop_link_at_s = None
            return True
        return False

    @property
    def samples_per_packet(self) -> int:
        return p.samples_per_packet(self.mtu, self.rate_hz)

    def next_event_s(self) -> float:
        """The earliest true time at which :meth:`advance` may send something or change state
        without anything from outside (``inf``: never): the next packet filled while connected,
        the end of a stall, a link-drop timer, the idle stop. Until then an :meth:`advance` only
        takes samples, which the next one takes as well (the samples and the packets do not
        depend on how often it is called), so a transport may skip those ticks."""
        f = self._faults
        due = min([math.inf] + [at for at in (f.stall_until_s, f.drop_link_at_s) if at is not None])
        if not self.streaming:
            return due
        if self._disconnected_at_s is not None:
            return min(due, self._disconnected_at_s + self.config.idle_stop_s)
        if not self.connected:
            return due
        n = max(1, self.samples_per_packet)
        last = self._k + n - self._pending_n - 1  # the sample that fills the packet
        ticks = self._start_ticks + p.sample_tick_offset(last, self.rate_hz)
        return min(due, self._seg_t + (ticks - self._seg_ticks) / (p.TICKS_PER_S * (1 + self._drift_ppm * 1e-6)))

    # ------------------------------------------------------------------ streaming
    def advance(self, now_s: float) -> list[bytes]:
        """Take the samples due up to true time ``now_s``; return the data notifications to send now."""
        self._sample_until(now_s)
        if self._disconnected_at_s is not None and self.streaming:
            if now_s - self._disconnected_at_s >= self.config.idle_stop_s:
                self._stop()
        return self._take_outgoing(now_s)

    def _sync(self, now_s: float | None) -> float:
        if now_s is not None and now_s > self.now_s:
            self._sample_until(now_s)
        return self.now_s

    def _sample_until(self, now_s: float) -> None:
        if now_s < self.now_s:
            return
        self.now_s = now_s
        if not self.streaming:
            return
        span = self.ticks_at(now_s) - self._start_ticks
        if span < 0:
            return
        # Last k with round(k * 32768 / rate) <= span.
        k_last = (span * self.rate_hz) // p.TICKS_PER_S + 1
        while p.sample_tick_offset(k_last, self.rate_hz) > span:
            k_last -= 1
        if k_last < self._k:
            return
        ks = np.arange(self._k, k_last + 1, dtype=np.int64)
        ticks = self._start_ticks + (2 * ks * p.TICKS_PER_S + self.rate_hz) // (2 * self.rate_hz)
        true_t = self._true_time_of(ticks)
        acc_g, gyr_dps = self.source(true_t)
        acc_lsb = self.acc_range_g / 32768.0
        gyr_lsb = self.gyr_range_dps / 32768.0
        scaled = np.concatenate([np.asarray(acc_g, np.float64) / acc_lsb, np.asarray(gyr_dps, np.float64) / gyr_lsb], axis=1)
        counts = np.rint(scaled)
        clipped = ((counts <= -32768) | (counts >= 32767)).any(axis=1)
        raw = counts.clip(-32768, 32767).astype(np.int16)
        first = self.sample_counter
        self.sample_counter += ks.size
        self._k = k_last + 1
        n = max(1, self.samples_per_packet)
        # (Python numbers from .tolist(): the same values as int()/float() of each element)
        tick_list, time_list = ticks.tolist(), true_t.tolist()
        j, m = 0, ks.size
        while j < m:  # fill packets with runs of samples; a packet goes out once it holds n
            if self._pending_first is None:
                self._pending_first = (first + j, tick_list[j])
            take = min(m - j, max(1, n - self._pending_n))
            self._pending_raw.append(raw[j : j + take])
            self._pending_clip |= bool(clipped[j : j + take].any())
            self._pending_meta.extend(zip(range(first + j, first + j + take), time_list[j : j + take], tick_list[j : j + take]))
            self._pending_n += take
            j += take
            if self._pending_n >= n:
                self._emit_packet()

    def _emit_packet(self) -> None:
        if not self._pending_raw or self._pending_first is None:
            return
        raw = self._pending_raw[0] if len(self._pending_raw) == 1 else np.concatenate(self._pending_raw)
        first_index, first_ticks = self._pending_first
        flags = p.FLAG_CLIPPED if self._pending_clip else 0
        packet = p.encode_imu_packet(self.next_seq, first_index, first_ticks, raw, flags)
        self.produced.raw.append(raw)
        for index, true_t, ticks in self._pending_meta:
            self.produced.sample_index.append(index)
            self.produced.true_time_s.append(true_t)
            self.produced.ticks.append(ticks)
        self._pending_meta = []
        self._ring.append((self.next_seq, packet))
        self.next_seq += 1
        self._pending_raw = []
        self._pending_clip = False
        self._pending_first = None
        self._pending_n = 0
        if self.connected:
            self._outbox.append(packet)

    def _take_outgoing(self, now_s: float) -> list[bytes]:
        if not self.connected:
            self._outbox.clear()
            return []
        queued = self._outbox
        self._outbox = []
        f = self._faults
        if f.stall_until_s is not None:
            if now_s < f.stall_until_s:
                self._stall_backlog.extend(queued)
                return []
            f.stall_until_s = None
            queued = self._stall_backlog + queued
            self._stall_backlog = []
        out: list[bytes] = []
        for packet in queued:
            if f.lose > 0:
                f.lose -= 1
                continue
            if f.corrupt > 0:
                f.corrupt -= 1
                bad = bytearray(packet)
                pos = 16 + (self.notifications_sent * 7) % (len(bad) - 18)  # a sample byte
                bad[pos] ^= 0x5A
                packet = bytes(bad)
            out.append(packet)
            if f.duplicate > 0:
                f.duplicate -= 1
                out.append(packet)
        self.notifications_sent += len(out)
        return out

    def _start(self) -> int:
        now_ticks = self.ticks_at(self.now_s)
        self._start_ticks = now_ticks + 1
        self._k = 0
        self._pending_raw, self._pending_clip, self._pending_first, self._pending_meta = [], False, None, []
        self._pending_n = 0
        self.next_seq = 0
        n = max(1, self.samples_per_packet)
        capacity = math.ceil(self.config.ring_s * self.rate_hz / n)
        self._ring = collections.deque(maxlen=capacity)
        self._outbox.clear()
        self._stall_backlog.clear()
        if not self.streaming:
            self._status_dirty = True
        self.streaming = True
        return self.sample_counter

    def _stop(self) -> None:
        if self.streaming:
            self._emit_packet()  # the partial packet, so no sample is lost
            self.streaming = False
            self._status_dirty = True

    # ------------------------------------------------------------------ control
    def handle_control(self, data: bytes, now_s: float | None = None) -> bytes:
        """Handle one control write at true time ``now_s`` (default: the last advance); return the reply."""
        try:
            return self._handle_control(data, now_s)
        finally:
            self._changed()

    def _handle_control(self, data: bytes, now_s: float | None) -> bytes:
        self._sync(now_s)
        try:
            req = p.parse_control_request(bytes(data))
        except p.ControlRequestError as exc:
            return p.encode_control_reply(exc.opcode, exc.status)
        op, args = req.opcode, req.args
        ok, bad = p.ReplyStatus.OK, p.ReplyStatus.BAD_VALUE
        if op == p.Opcode.START:
            if self.mtu < p.MIN_MTU:
                return p.encode_control_reply(op, bad)
            return p.encode_control_reply(op, ok, struct.pack("<I", self._start() & 0xFFFFFFFF))
        if op == p.Opcode.STOP:
            self._stop()
            return p.encode_control_reply(op, ok, struct.pack("<I", self.next_seq & 0xFFFFFFFF))
        if op == p.Opcode.SET_RATE:
            if args[0] not in p.RATES_HZ:
                return p.encode_control_reply(op, bad)
            if self.streaming:
                return p.encode_control_reply(op, p.ReplyStatus.BUSY)
            self._status_dirty |= self.rate_hz != args[0]
            self.rate_hz = args[0]
            return p.encode_control_reply(op, ok)
        if op == p.Opcode.SET_RANGES:
            if args[0] not in p.ACC_RANGES_G or args[1] not in p.GYR_RANGES_DPS:
                return p.encode_control_reply(op, bad)
            if self.streaming:
                return p.encode_control_reply(op, p.ReplyStatus.BUSY)
            self._status_dirty |= (self.acc_range_g, self.gyr_range_dps) != args
            self.acc_range_g, self.gyr_range_dps = args
            return p.encode_control_reply(op, ok)
        if op == p.Opcode.TIME_SYNC:
            ticks = self.ticks_at(self.now_s) & 0xFFFFFFFF
            return p.encode_control_reply(op, ok, struct.pack("<II", args[0], ticks))
        if op == p.Opcode.RESEND:
            first, last = args
            if first > last:
                return p.encode_control_reply(op, bad)
            first_available = self._ring[0][0] if self._ring else self.next_seq
            again = [p.set_packet_flags(pkt, pkt[1] | p.FLAG_RESENT) for seq, pkt in self._ring if first <= seq <= last]
            if self.connected:
                self._outbox.extend(again)
            return p.encode_control_reply(op, ok, struct.pack("<II", first_available, len(again)))
        if op == p.Opcode.SET_LEG:
            if args[0] not in p.LEG_CODES:
                return p.encode_control_reply(op, bad)
            self._status_dirty |= self.leg != args[0]
            self.leg = args[0]
            return p.encode_control_reply(op, ok)
        if op == p.Opcode.GET_STATUS:
            return p.encode_control_reply(op, ok, self.status())
        if op == p.Opcode.SIM_FAULT:
            kind, arg = args
            try:
                self.inject_fault(p.FaultKind(kind), arg)
            except ValueError:
                return p.encode_control_reply(op, bad)
            return p.encode_control_reply(op, ok)
        return p.encode_control_reply(op, p.ReplyStatus.UNKNOWN_OPCODE)  # pragma: no cover

    def inject_fault(self, kind: p.FaultKind | int, arg: int, now_s: float | None = None) -> None:
        """Apply a SIM_FAULT (also callable from Python). For DRIFT, ``arg`` may be a signed int."""
        now = self._sync(now_s)
        kind = p.FaultKind(kind)
        f = self._faults
        if kind is p.FaultKind.DROP_LINK:
            f.drop_link_at_s = now + arg / 1000.0
        elif kind is p.FaultKind.LOSE:
            f.lose += arg
        elif kind is p.FaultKind.DUPLICATE:
            f.duplicate += arg
        elif kind is p.FaultKind.CORRUPT:
            f.corrupt += arg
        elif kind is p.FaultKind.DRIFT:
            signed = arg - (1 << 32) if arg >= 1 << 31 else arg
            self.set_drift_ppm(float(signed))
        elif kind is p.FaultKind.STALL:
            f.stall_until_s = now + arg / 1000.0
        self._changed()

    # ------------------------------------------------------------------ status
    def status_info(self) -> p.StatusInfo:
        return p.StatusInfo(
            rate_hz=self.rate_hz,
            acc_range_g=self.acc_range_g,
            gyr_range_dps=self.gyr_range_dps,
            leg=self.leg,
            streaming=self.streaming,
            battery_pct=self.battery_pct,
            buffer_fill_packets=len(self._ring),
            buffer_capacity_packets=self._ring.maxlen or 0,
            next_seq=self.next_seq,
            now_ticks=self.ticks_at(self.now_s),
            fw_version=self.config.fw_version,
        )

    def status(self, now_s: float | None = None) -> bytes:
        """The 32-byte status record at true time ``now_s``."""
        self._sync(now_s)
        return p.encode_status(self.status_info())

    def set_battery(self, pct: int) -> None:
        if pct != self.battery_pct:
            self.battery_pct = int(pct)
            self._status_dirty = True
            self._changed()

    def take_status_change(self) -> bytes | None:
        """The status to notify if something in it changed since the last call, else None."""
        if not self._status_dirty:
            return None
        self._status_dirty = False
        return self.status()
