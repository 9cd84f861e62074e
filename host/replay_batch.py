"""Replay for files (``export``, ``batch``, ``replay``): the live path, with the analysis fed in
larger blocks.

Live capture hands the analysis one packet's samples at a time (18 at an MTU of 247), because a
person is waiting for each rep; replaying a file, nobody is, and the per-call cost of the analysis
was 40 % of a replay. :class:`CoalescingAnalyzer` holds each leg's blocks until ``min_samples`` are
waiting and feeds them as one block. Everything before the analysis (decoder, tracker, clock) runs
exactly as live, record by record; the analysis gives the same reps, sets, flags and traces for any
chunking of the same samples (tests/test_pipeline.py proves it for the stages; tests/test_export.py
compares this replay with :func:`legrep.replay.replay_core` on a recording with lost, corrupt and
duplicated packets). Only when events are reported changes: a rep is reported when its block is fed.
"""

from __future__ import annotations

import binascii
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .clock import TICKS_PER_S
from .live_core import SensorStream, SessionCore, concat_blocks
from .model import ImuBlock, Leg, Rep, SessionResult
from .packets import FLAG_RESENT, PACKET_TYPE_IMU, tick_offset
from .packets import TICKS_PER_S as TICKS_PER_S_INT
from .pipeline import Event, SessionAnalyzer
from .pipeline import Event as AnalysisEvent
from .recording import RecordingReader
from .records import HEAD, Kind
from .replay import EventCallback, replay_records
from .settings import Settings

__all__ = ["CoalescingAnalyzer", "replay_file", "replay_records_batched"]

SampleSink = Callable[[Leg, ImuBlock], None]
"""``on_samples(leg, block)``: the samples fed to the analysis, in order (e.g. to write them out)."""
MIN_SAMPLES = 8192
"""Samples per leg fed to the analysis at once in a file replay (about 80 s at 100 Hz)."""


class CoalescingAnalyzer:
    """A :class:`SessionAnalyzer` whose ``update`` holds blocks until ``min_samples`` per leg wait."""

    def __init__(
        self, analyzer: SessionAnalyzer, min_samples: int = MIN_SAMPLES, on_samples: SampleSink | None = None
    ) -> None:
        self.inner = analyzer
        self.min_samples = min_samples
        self.on_samples = on_samples
        self._held: dict[Leg, list[ImuBlock]] = {}
        self._count: dict[Leg, int] = {}

    def update(self, leg: Leg, block: ImuBlock) -> list[Event]:
        held = self._held.setdefault(leg, [])
        held.append(block)
        self._count[leg] = self._count.get(leg, 0) + len(block)
        if self._count[leg] < self.min_samples:
            return []
        return self._release(leg)

    def _release(self, leg: Leg) -> list[Event]:
        held = self._held.pop(leg, [])
        self._count[leg] = 0
        if not held:
            return []
        block = concat_blocks(held)
        if self.on_samples is not None:
            self.on_samples(leg, block)
        return list(self.inner.update(leg, block))

    def flush(self) -> list[Event]:
        events: list[Event] = []
        for leg in list(self._held):
            events += self._release(leg)
        return events

    def angle_deg(self, leg: Leg) -> float | None:
        return self.inner.angle_deg(leg)

    def reps(self) -> tuple[Rep, ...]:
        return self.inner.reps()

    def finish(self) -> SessionResult:
        self.final_events = self.flush()
        return self.inner.finish()

    final_events: list[Event] = []
    """Events of the blocks still held when ``finish`` was called."""

    def __getattr__(self, name: str) -> Any:  # settings, legs, ... of the wrapped analyzer
        return getattr(self.inner, name)


def replay_file(
    path: str | os.PathLike[str] | RecordingReader,
    settings: Settings | None = None,
    keep_samples: bool = False,
    keep_traces: bool = True,
    on_events: EventCallback | None = None,
    on_samples: SampleSink | None = None,
    batched: bool = True,
) -> tuple[SessionCore, SessionResult, RecordingReader]:
    """Replay a recording as :func:`legrep.replay.replay_core` does, the analysis fed in large blocks
    and (``batched``, the default) the packets decoded in batches (:func:`replay_records_batched`).

    ``keep_traces=False`` keeps no angle traces (memory flat in the length); ``on_samples`` sees
    every sample fed to the analysis (what ``keep_samples`` would keep, without keeping it).
    Returns ``(finished SessionCore, SessionResult, reader)``; the result equals replay_core's.
    """
    reader = path if isinstance(path, RecordingReader) else RecordingReader(path)
    core = SessionCore.from_meta(reader.meta, settings, keep_samples=keep_samples)
    if not keep_traces:
        core.analyzer = SessionAnalyzer(core.legs, core.settings, keep_traces=False)
    core.analyzer = CoalescingAnalyzer(core.analyzer, on_samples=on_samples)  # type: ignore[assignment]
    if batched:
        replay_records_batched(reader, core, on_events)
    else:
        replay_records(reader, core, on_events)
    result = core.finish()
    last = core.analyzer.final_events  # type: ignore[attr-defined]
    core.events += last
    if last and on_events is not None:
        on_events(core.last_t_s, last)
    return core, result, reader


# --- batched decoding -----------------------------------------------------------------------------
# A file replay decodes the legrep DATA records of a recording in batches: the packets of one size
# are unpacked at once (a numpy view over the payloads: header fields, CRC-16, samples), and a
# packet that continues its stream in order (the next seq, the next sample, nothing held, not
# re-sent: almost all of them) takes a short path through the tracker and the clock that updates
# exactly the state SensorStream.data would, with the per-sample work (ticks, clock mapping,
# scaling) done later over many packets at once. The same elementwise float64 operations in the
# same order give the same bits (tests/test_replay_batch.py compares with the per-packet path on
# recordings with drops, resets, re-sends and damaged records). Every other record, and every
# packet that is not in order, goes through SessionCore.process, record by record, as live.

_HEADER_DTYPE = np.dtype([("ptype", "u1"), ("flags", "u1"), ("n", "u1"), ("reserved", "u1"),
                          ("seq", "<u4"), ("first", "<u4"), ("ticks", "<u4")])  # fmt: skip
WINDOW_RECORDS = 1 << 15
"""Records decoded at once by :func:`replay_records_batched` (about 1.5 minutes of two sensors)."""
PENDING_PACKETS = 512
"""Packets of a sensor taken on the short path before their samples are made (memory bound)."""
_PAYLOAD_AT = 4 + HEAD.size
"""A record's payload starts after its u32 length and its head (kind, sensor, t_s)."""


@dataclass(slots=True)
class _Packets:
    """The DATA packets of one size, decoded at once: header fields, validity, samples."""

    seq: list[int]
    first: list[int]
    ticks: list[int]
    ok: list[bool]
    n: int
    samples: npt.NDArray[np.int16]
    """(m, n, 6) raw counts."""


def _decode_packets(data: bytes, starts: npt.NDArray[np.int64], size: int) -> _Packets:
    """The packets of ``size`` bytes whose records start at ``starts``: fields and a validity flag
    (type, count and CRC-16 checked as :func:`legrep.packets.decode_imu_packet` checks them)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    at = starts + _PAYLOAD_AT
    rows = buf[at[:, None] + np.arange(size)]
    header = rows[:, :16].copy().view(_HEADER_DTYPE)[:, 0]
    n = (size - 18) // 12
    view = memoryview(data)
    crc_rx = rows[:, size - 2].astype(np.int64) | (rows[:, size - 1].astype(np.int64) << 8)
    crc = np.fromiter((binascii.crc_hqx(view[a : a + size - 2], 0xFFFF) for a in at.tolist()), np.int64, len(at))
    # (a re-sent packet never continues its stream in order: SensorStream.data takes it)
    ok = (header["ptype"] == PACKET_TYPE_IMU) & (header["n"] == n) & (crc == crc_rx) & ((header["flags"] & FLAG_RESENT) == 0)
    samples = rows[:, 16 : 16 + 12 * n].copy().view("<i2").reshape(len(at), n, 6)
    return _Packets(header["seq"].tolist(), header["first"].tolist(), header["ticks"].tolist(), ok.tolist(), n,
                    samples.astype(np.int16, copy=False))  # fmt: skip


class _Pending:
    """One legrep sensor's packets taken on the short path, not yet turned into a block: per packet
    ``(group, row, unwrapped ticks, mode, lx, lt, drift, offset, error)``, the scalars of
    ClockMapper.map_ticks (mode 0: the clock's first mapping, 1: slewed from the last sample)."""

    def __init__(self, stream: SensorStream) -> None:
        self.stream = stream
        self.items: list[tuple[int, int, int, int, float, float, float, float, float]] = []

    def __bool__(self) -> bool:
        return bool(self.items)

    def block(self, groups: list[_Packets]) -> ImuBlock:
        """The pending packets' samples on the session clock, as ClockMapper.map_ticks and
        SampleBatch.scaled compute them packet by packet (elementwise, the same operations)."""
        stream = self.stream
        clock = stream.clock
        assert clock._x0 is not None
        x0 = clock._x0
        times: list[npt.NDArray[np.float64]] = []
        acc: list[npt.NDArray[np.float64]] = []
        gyr: list[npt.NDArray[np.float64]] = []
        table = np.array(self.items, dtype=np.float64)  # (every integer here is exact below 2**53)
        self.items = []
        g = table[:, 0].astype(np.int64)
        cuts = [0, *(np.flatnonzero(np.diff(g)) + 1).tolist(), len(g)]
        for a, b in zip(cuts[:-1], cuts[1:]):
            packets = groups[int(g[a])]
            n = packets.n
            cols = table[a:b]
            tk = cols[:, 2].astype(np.int64)[:, None] + tick_offset(np.arange(n), stream.status.rate_hz)[None, :]
            x = tk.astype(np.float64) / TICKS_PER_S - x0
            lx, lt, e, c, error = (cols[:, k : k + 1] for k in range(4, 9))
            dx = np.maximum(x - lx, 0.0)
            bound = clock.max_slew * dx
            slewed = lt + dx * (1.0 + e) + np.clip(error, -bound, bound)
            if (cols[:, 3] == 0).any():
                out = np.where(cols[:, 3:4] == 0, x + c + e * x, slewed)
            else:
                out = slewed
            raw = packets.samples[cols[:, 1].astype(np.int64)]
            times.append(out.reshape(-1))
            acc.append(raw[:, :, :3].reshape(-1, 3).astype(np.float64) * stream.status.acc_lsb_g)
            gyr.append(raw[:, :, 3:].reshape(-1, 3).astype(np.float64) * stream.status.gyr_lsb_dps)
        if len(times) == 1:
            return ImuBlock(times[0], acc[0], gyr[0])
        return ImuBlock(np.concatenate(times), np.concatenate(acc), np.concatenate(gyr))


def replay_records_batched(
    reader: RecordingReader, core: SessionCore, on_events: EventCallback | None = None, window: int | None = None
) -> None:
    """Feed every record of ``reader`` to ``core`` as :func:`legrep.replay.replay_records` does, the
    legrep DATA records decoded in batches (the same samples, times, state and diagnostics), a
    ``window`` of records at a time (memory bounded in the session's length)."""
    window = window or WINDOW_RECORDS
    data = reader.data
    all_starts, all_ends, all_times = reader.index()
    buf = np.frombuffer(data, dtype=np.uint8)
    events: list[AnalysisEvent] = []
    legrep = core.legrep
    for w0 in range(0, len(all_starts), window):
        starts = all_starts[w0 : w0 + window]
        ends = all_ends[w0 : w0 + window]
        times_list = all_times[w0 : w0 + window].tolist()
        sensors = buf[starts + 5].tolist()
        sizes = ends - 4 - (starts + _PAYLOAD_AT)
        is_data = buf[starts + 4] == int(Kind.DATA)
        # packets of every plausible size, decoded per size; (group, row) of each DATA record
        groups: list[_Packets] = []
        group_of = np.full(len(starts), -1, dtype=np.int64)
        row_of = np.zeros(len(starts), dtype=np.int64)
        for size in np.unique(sizes[is_data]).tolist():
            if size < 30 or size > 18 + 12 * 32 or (size - 18) % 12:
                continue  # not an IMU packet size: the per-record path says why
            records = np.flatnonzero(is_data & (sizes == size))
            groups.append(_decode_packets(data, starts[records], int(size)))
            group_of[records] = len(groups) - 1
            row_of[records] = np.arange(len(records))
        group_list = group_of.tolist()
        row_list = row_of.tolist()
        pending: dict[int, _Pending] = {}

        def flush(index: int) -> None:
            p = pending.get(index)
            if p:
                events.extend(core._feed(p.stream.leg, p.block(groups)))

        def flush_all() -> None:
            for index in pending:
                flush(index)

        for r, t_s in enumerate(times_list):
            gi = group_list[r]
            stream = legrep.get(sensors[r]) if gi >= 0 else None
            if stream is not None and _short_path(stream, groups[gi], row_list[r], t_s, pending, sensors[r], gi):
                if t_s > core.last_t_s:
                    core.last_t_s = t_s
                sensor = sensors[r]
                if len(pending[sensor].items) >= PENDING_PACKETS:
                    flush(sensor)
                for j, other in legrep.items():
                    if j != sensor and other.tracker._held:
                        block = other.poll(t_s)
                        if block is not None:
                            flush(j)
                            events.extend(core._feed(other.leg, block))
                if events:
                    core.events += events
                    if on_events is not None:
                        on_events(t_s, list(events))
                    events.clear()
                continue
            flush_all()
            if events:  # (the held samples' events come before this record's own)
                core.events += events
                if on_events is not None:
                    on_events(t_s, list(events))
                events.clear()
            got = core.process(reader._record(int(starts[r]), int(ends[r]), t_s))
            if got and on_events is not None:
                on_events(t_s, got)
        flush_all()  # (the window's packets are released with it)
    if events:
        core.events += events
        if on_events is not None:
            on_events(core.last_t_s, list(events))


def _short_path(stream: SensorStream, packets: _Packets, row: int, t_s: float, pending: dict[int, _Pending],
                index: int, group: int) -> bool:  # fmt: skip
    """Take packet ``row`` on the short path if it continues its stream in order; False (nothing
    changed) when it needs SensorStream.data."""
    tracker = stream.tracker
    seq = packets.seq[row]
    first = packets.first[row]
    if not (
        packets.ok[row]
        and seq == tracker._next_seq
        and tracker._max_seq == seq - 1
        and not tracker._held
        and not tracker._gaps
        and (tracker._next_sample is None or first == tracker._next_sample)
    ):
        return False
    raw_ticks = packets.ticks[row]
    clock = stream.clock
    n = packets.n
    rate = stream.status.rate_hz
    # SensorStream.data: the clock observes the packet's last sample, then the tracker feeds it
    ref = tracker._tick_ref  # (PacketTracker.unwrap_ticks, inlined)
    ticks = raw_ticks if ref is None else ref + (((raw_ticks - ref + 0x80000000) & 0xFFFFFFFF) - 0x80000000)
    tracker._tick_ref = ticks
    last = ticks + (2 * (n - 1) * TICKS_PER_S_INT + rate) // (2 * rate)
    x0 = clock._x0
    if x0 is not None and clock._open_index is not None and clock._open_point is not None and clock._offset is not None:
        x = float(last) / TICKS_PER_S - x0
        r = (t_s - clock.origin_host_s) - x
        if math.floor(x / clock.window_s) == clock._open_index:
            if r < clock._open_point[1]:
                clock._open_point = (x, r)
        else:
            clock.observe_packet(last, t_s)
    else:
        clock.observe_packet(last, t_s)
    assert clock._offset is not None  # (observing a packet always gives an offset)
    stream.packets += 1
    stats = tracker.stats
    stats.received += 1
    tracker._max_seq = seq
    tracker._next_seq = seq + 1
    tracker._next_sample = first + n
    stats.samples_out += n
    stream.samples += n
    # ClockMapper.map_ticks for the packet's samples: the scalars now, the arrays later
    assert clock._x0 is not None
    e, c = clock._drift, clock._offset
    x_last = float(last) / TICKS_PER_S - clock._x0
    p = pending.get(index)
    if p is None:
        p = pending[index] = _Pending(stream)
    if clock._last is None:
        out_last = x_last + c + e * x_last
        p.items.append((group, row, ticks, 0, 0.0, 0.0, e, c, 0.0))
    else:
        lx, lt = clock._last
        dx = x_last - lx
        if dx < 0.0:
            dx = 0.0
        error = (lx + c + e * lx) - lt
        bound = clock.max_slew * dx
        out_last = lt + dx * (1.0 + e) + min(max(error, -bound), bound)
        if abs(error) > clock.max_correction_s:
            clock.max_correction_s = abs(error)
        p.items.append((group, row, ticks, 1, lx, lt, e, c, error))
    clock._last = (x_last, out_last)
    return True
