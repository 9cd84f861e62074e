"""Batched decoding of recordings (``legrep.replay_batch.replay_records_batched``) against the
per-packet path (``SessionCore.process`` record by record, what live capture runs).

A simulated session with lost, corrupt and duplicated packets and RESENDs (tests/test_recording.py)
is recorded; Hypothesis then edits its records (drops, swaps, duplicates, payload damage under an
intact record CRC, seq resets as after a sensor restart, wild seq and tick values, the 32-bit tick
counter wrapping, re-sent flags, link events and status records in between) and both paths replay every edited file. Required:
the same samples bit for bit (times, acc, gyr), the same reps, sets, flags, diagnostics and
events, and the same tracker and clock state.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from legrep import packets as hp
from legrep.model import Leg
from legrep.recording import RecordingReader, RecordingWriter
from legrep.records import EventType, Kind, Record
from legrep.replay_batch import replay_file
from legrep_sim import protocol as fwp
from test_recording import run_session


class _Base(tuple):  # (meta, records), with a short repr in Hypothesis's failure reports
    def __repr__(self) -> str:
        return f"<recording of {len(self[1])} records>"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[Record]]:
    path = tmp_path_factory.mktemp("batch") / "s.legrep"
    # two reps a leg (31 s, every fault of the session in it): each Hypothesis example replays the
    # edited file three times, and the edits need packets, not length
    run_session(path, seed=9, reps=2)
    reader = RecordingReader(path)
    return _Base((reader.meta, list(reader)))


def _write(path: Path, meta: dict, records: list[Record]) -> Path:
    meta = {k: v for k, v in meta.items() if k != "format"}
    with RecordingWriter(path, meta, overwrite=True) as writer:
        for rec in records:
            writer.write(rec)
    return path


def _reencode(rec: Record, **change: int) -> Record:
    p = hp.decode_imu_packet(rec.payload)
    fields = {"seq": p.seq, "first": p.first_sample_index, "ticks": p.timestamp_ticks, "flags": p.flags, **change}
    data = fwp.encode_imu_packet(fields["seq"] & 0xFFFFFFFF, fields["first"] & 0xFFFFFFFF, fields["ticks"] & 0xFFFFFFFF,
                                 p.samples, flags=fields["flags"])  # fmt: skip
    return Record(rec.kind, rec.sensor, rec.t_s, data)


def _valid(rec: Record) -> bool:
    return _decodes(rec.payload)


@functools.lru_cache(maxsize=None)
def _decodes(payload: bytes) -> bool:
    """(Memoised: every edit asks it of every record, and most payloads are the base's.)"""
    try:
        hp.decode_imu_packet(payload)
    except hp.PacketError:
        return False
    return True


def _compare(path: Path, small: bool = True) -> None:
    import legrep.replay_batch as rb

    ref_core, ref, _ = replay_file(path, keep_samples=True, batched=False)
    if small:  # small windows and pending batches: their edges are crossed many times
        old = rb.WINDOW_RECORDS, rb.PENDING_PACKETS
        rb.WINDOW_RECORDS, rb.PENDING_PACKETS = 97, 5
        try:
            _compare_to(path, ref_core, ref)
        finally:
            rb.WINDOW_RECORDS, rb.PENDING_PACKETS = old
    _compare_to(path, ref_core, ref)


def _compare_to(path: Path, ref_core, ref) -> None:  # type: ignore[no-untyped-def]
    core, got, _ = replay_file(path, keep_samples=True, batched=True)
    assert got.reps == ref.reps
    assert got.sets == ref.sets and got.uneven == ref.uneven
    assert got.diagnostics == ref.diagnostics
    for leg in ref_core.legs:
        a, b = core.samples(leg), ref_core.samples(leg)
        np.testing.assert_array_equal(a.time_s, b.time_s)
        np.testing.assert_array_equal(a.acc_g, b.acc_g)
        np.testing.assert_array_equal(a.gyr_dps, b.gyr_dps)
    assert list(map(repr, core.events)) == list(map(repr, ref_core.events))
    for index, stream in ref_core.legrep.items():
        other = core.legrep[index]
        assert other.tracker.stats == stream.tracker.stats
        assert (other.tracker.next_seq, other.tracker.next_sample_index) == (stream.tracker.next_seq, stream.tracker.next_sample_index)
        assert other.clock.estimate == stream.clock.estimate and other.clock._last == stream.clock._last
        assert other.samples == stream.samples and other.packets == stream.packets


def test_batched_replay_equals_the_per_packet_replay_on_the_simulated_session(base, tmp_path: Path) -> None:
    meta, records = base
    assert sum(1 for r in records if r.kind == Kind.TX and r.payload[:1] == bytes([hp.Opcode.RESEND])) > 0
    _compare(_write(tmp_path / "s.legrep", meta, records))


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["drop", "swap", "dup", "damage", "reset", "wild", "resent", "status", "link", "jump_ticks",
                         "wrap_ticks"]),
        st.floats(0.02, 0.98),
        st.integers(1, 40),
    ),
    min_size=1,
    max_size=6,
)


def test_batched_replay_across_a_wrap_of_the_tick_counter(base, tmp_path: Path) -> None:
    """Every packet's ticks shifted so that the 32-bit counter wraps mid-session: the same samples
    as the per-packet path, and the session clock runs on without a jump."""
    meta, records = base
    data = [r for r in records if r.kind == Kind.DATA and _valid(r)]
    mid = hp.decode_imu_packet(data[len(data) // 2].payload).timestamp_ticks
    shift = (1 << 32) - mid
    recs = []
    for r in records:
        if r.kind == Kind.DATA and _valid(r):
            r = _reencode(r, ticks=hp.decode_imu_packet(r.payload).timestamp_ticks + shift)
        elif r.kind == Kind.RX and r.payload[:1] == bytes([0x80 | hp.Opcode.TIME_SYNC]) and len(r.payload) >= 10:
            ticks = (int.from_bytes(r.payload[6:10], "little") + shift) & 0xFFFFFFFF  # (the sensor's clock in the reply)
            r = Record(r.kind, r.sensor, r.t_s, r.payload[:6] + ticks.to_bytes(4, "little") + r.payload[10:])
        recs.append(r)
    assert any(hp.decode_imu_packet(r.payload).timestamp_ticks < 1000 for r in recs if r.kind == Kind.DATA and _valid(r))
    path = _write(tmp_path / "wrap.legrep", meta, recs)
    _compare(path)
    core, _, _ = replay_file(path, keep_samples=True)
    t = core.samples(Leg.LEFT).time_s
    assert np.all(np.diff(t) > 0) and np.diff(t).max() < 1.0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(EDITS)
def test_batched_replay_equals_the_per_packet_replay_on_edited_recordings(base, tmp_path: Path, edits: list) -> None:
    meta, records = base
    _compare(_write(tmp_path / "edited.legrep", meta, apply_edits(records, edits)))


def apply_edits(records: list[Record], edits: list[tuple[str, float, int]]) -> list[Record]:
    """``records`` with ``edits`` (drawn from :data:`EDITS`) made, in order."""
    recs = list(records)
    for how, where, count in edits:
        data_at = [k for k, r in enumerate(recs) if r.kind == Kind.DATA and _valid(r)]
        if not data_at:
            break
        k = data_at[int(where * (len(data_at) - 1))]
        rec = recs[k]
        if how == "drop":
            del recs[k : k + count]
        elif how == "swap" and k + count < len(recs):
            recs[k], recs[k + count] = recs[k + count], recs[k]
        elif how == "dup":
            recs[k:k] = recs[k : k + count]
        elif how == "damage":  # bytes damaged on the air: the recording's CRC holds, the packet's not
            payload = bytearray(rec.payload)
            payload[count % len(payload)] ^= 0x10
            recs[k] = Record(rec.kind, rec.sensor, rec.t_s, bytes(payload))
        elif how == "reset":  # the sensor restarted: seq from 0 again for every later packet
            shift = hp.decode_imu_packet(rec.payload).seq
            for j in range(k, len(recs)):
                if recs[j].kind == Kind.DATA and recs[j].sensor == rec.sensor and _valid(recs[j]):
                    recs[j] = _reencode(recs[j], seq=hp.decode_imu_packet(recs[j].payload).seq - shift + count % 3)
        elif how == "wild":
            recs[k] = _reencode(rec, seq=0xFFFFFFFF - count, first=count * 7919)
        elif how == "resent":
            recs[k] = _reencode(rec, flags=hp.FLAG_RESENT)
        elif how == "wrap_ticks":  # the 32-bit tick counter wraps a few packets after this one
            shift = (1 << 32) - hp.decode_imu_packet(rec.payload).timestamp_ticks - count * 3000
            for j in range(len(recs)):
                if recs[j].kind == Kind.DATA and recs[j].sensor == rec.sensor and _valid(recs[j]):
                    recs[j] = _reencode(recs[j], ticks=hp.decode_imu_packet(recs[j].payload).timestamp_ticks + shift)
        elif how == "jump_ticks":
            recs[k] = _reencode(rec, ticks=hp.decode_imu_packet(rec.payload).timestamp_ticks + count * 100_000)
        elif how == "status":
            status = bytearray(bytes.fromhex(next(r for r in recs if r.kind == Kind.SENSOR).json()["status_hex"]))
            status[8] = 1  # streaming
            status[24:28] = ((hp.decode_imu_packet(rec.payload).seq + count) & 0xFFFFFFFF).to_bytes(4, "little")  # (seq wraps at 32 bits)
            recs.insert(k, Record(Kind.STATUS, rec.sensor, rec.t_s, bytes(status)))
        elif how == "link":
            recs.insert(k, Record.event(rec.sensor, rec.t_s, EventType.DISCONNECT))
            recs.insert(min(len(recs), k + count), Record.event(rec.sensor, rec.t_s + 0.5, EventType.RECONNECT))
    return recs


def test_batched_replay_of_a_recording_without_start_and_with_odd_packet_sizes(base, tmp_path: Path) -> None:
    """No START (the tracker takes the first seq it sees) and packets of several sizes."""
    meta, records = base
    recs = [r for r in records if not (r.kind in (Kind.TX, Kind.RX) and r.payload[:1] in (bytes([hp.Opcode.START]), bytes([0x80 | hp.Opcode.START])))]
    out: list[Record] = []
    for r in recs:
        if r.kind == Kind.DATA and _valid(r) and r.sensor == 1:
            p = hp.decode_imu_packet(r.payload)
            if p.n > 4 and p.seq % 7 == 3:  # a shorter packet: another size (its last samples lost)
                out.append(Record(r.kind, r.sensor, r.t_s, fwp.encode_imu_packet(p.seq, p.first_sample_index, p.timestamp_ticks, p.samples[: p.n - 2 - p.seq % 2])))
                continue
        out.append(r)
    path = _write(tmp_path / "nostart.legrep", meta, out)
    _compare(path)
    core, _, _ = replay_file(path, keep_samples=True)
    assert len(core.samples(Leg.LEFT)) > 1000


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 400), st.integers(0, 2**32 - 1), st.sampled_from([1.0, 600.0, 1e5]), st.sampled_from([1e-3, 1.0, 1e3]),
       st.floats(0.0, 0.3), st.booleans())
def test_the_clock_fit_in_c_equals_its_python_reference_bit_for_bit(n: int, seed: int, span: float, size: float,
                                                                     late: float, coarse: bool) -> None:  # fmt: skip
    """ClockMapper's refit runs legrep._replaycore.fit_drift; clock.fit_drift_reference is the same
    fit in plain Python. Random envelopes, with a share of late (outlier) points, and (``coarse``)
    values on a coarse grid, the residuals' medians among many equal values: the same bits."""
    from legrep._replaycore import fit_drift
    from legrep.clock import fit_drift_reference

    rng = np.random.default_rng(seed)
    x = np.sort(rng.random(n)) * span + rng.choice([0.0, 1e4])
    y = rng.normal(size=n) * size + 1e-4 * x
    y[rng.random(n) < late] += 5.0 * size
    if coarse:
        x, y = np.round(x), np.round(y / size * 2.0) * size / 2.0
    for min_span, max_drift in ((10.0, 2e-3), (0.0, 1e-5)):
        assert fit_drift(x, y, min_span, max_drift) == fit_drift_reference(x.tolist(), y.tolist(), min_span, max_drift)


@pytest.mark.parametrize("seed", range(6))
def test_the_clock_fit_agrees_with_numpy_polyfit(seed: int) -> None:
    """The centred-sums line equals np.polyfit's (LAPACK least squares) to rounding: an envelope of
    300 windows at an hour of session time, drift 80 ppm, latency noise, late outliers."""
    from legrep.clock import fit_drift_reference, fit_line_reference

    rng = np.random.default_rng(seed)
    x = 3600.0 + np.arange(300) * 2.0 + rng.random(300)
    y = 0.01 + 80e-6 * x + rng.exponential(0.002, 300)
    slope, icept = np.polyfit(x, y, 1)
    got = fit_line_reference(x.tolist(), y.tolist())
    assert abs(got[0] - slope) <= 1e-12 and abs(got[1] - icept) <= 1e-9
    y[rng.integers(0, 300, 12)] += 1.0  # late packets: the second pass drops them
    drift = fit_drift_reference(x.tolist(), y.tolist(), 10.0, 2e-3)
    assert abs(drift - 80e-6) < 2e-6


class _ReferenceClock:
    """ClockMapper._refit as first written (np.polyfit, np.median, a two-pass loop): the reference
    the faster refit must equal bit for bit."""

    @staticmethod
    def refit(self) -> None:  # type: ignore[no-untyped-def]
        self._trim()
        xs = self._win[0, self._w0 : self._w1].copy()
        rs = self._win[1, self._w0 : self._w1].copy()
        drift = 0.0
        if xs.size >= 3 and xs[-1] - xs[0] >= self.min_span_s:
            keep = np.ones(xs.size, bool)
            for _ in range(2):
                slope, icept = np.polyfit(xs[keep], rs[keep], 1)
                resid = rs - (icept + slope * xs)
                med = np.median(resid[keep])
                mad = np.median(np.abs(resid[keep] - med)) + 1e-6
                new_keep = resid <= med + 4.0 * 1.4826 * mad
                if new_keep.sum() < 3 or np.array_equal(new_keep, keep):
                    break
                keep = new_keep
            drift = float(np.clip(slope, -self.max_drift, self.max_drift))
        self._drift = drift
        if self._syncs:
            rtts = np.asarray([s[2] for s in self._syncs])
            best = rtts <= rtts.min() * 1.5 + 1e-4
            self._offset = float(np.mean([r - drift * x for (x, r, _), b in zip(self._syncs, best) if b]))
        else:
            candidates = [r - drift * x for x, r in zip(xs.tolist(), rs.tolist())]
            if self._open_point is not None:
                candidates.append(self._open_point[1] - drift * self._open_point[0])
            self._offset = min(candidates) if candidates else None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_clock_refit_equals_its_reference(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Packets with jitter, late outliers and a jump, TIME_SYNCs for odd seeds: mapped times and
    estimates of ClockMapper (the fit in C) equal those with the plain-Python fit bit for bit, and
    those of the refit as first written (np.polyfit, np.median, np.mean) to 1 ns."""
    import legrep.clock as clock_module
    from legrep.clock import ClockMapper, fit_drift_reference

    class Reference(ClockMapper):
        _refit = _ReferenceClock.refit

    class PythonFit(ClockMapper):
        def _refit(self) -> None:
            monkeypatch.setattr(clock_module, "_fit_drift", lambda xs, rs, a, b: fit_drift_reference(xs.tolist(), rs.tolist(), a, b))
            try:
                ClockMapper._refit(self)
            finally:
                monkeypatch.undo()

    runs = []
    for cls in (ClockMapper, PythonFit, Reference):
        rng = np.random.default_rng(seed)
        clock = cls(0.0)
        out = []
        for k in range(6000):
            x = k * 0.18
            late = 5.0 if k == 3000 else (float(rng.exponential(1.0)) if k % 97 == 0 else 0.0)
            clock.observe_packet(int(x * 32768) + int(rng.integers(0, 50)), x * (1 + 80e-6) + 0.01 + float(rng.exponential(0.01)) + late)
            if k % 7 == 0:
                out.append(clock.map_ticks(np.arange(18) + int(x * 32768)))
            if seed % 2 and k % 500 == 3:
                clock.observe_time_sync(int(x * 32768), x, x + 0.01 + float(rng.exponential(0.01)))
        est = clock.estimate
        runs.append((np.concatenate(out), None if est is None else (est.offset_s, est.drift, est.windows)))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    np.testing.assert_allclose(runs[0][0], runs[2][0], rtol=0, atol=1e-9)
    assert runs[0][1] is not None and runs[2][1] is not None
    assert abs(runs[0][1][0] - runs[2][1][0]) < 1e-9 and abs(runs[0][1][1] - runs[2][1][1]) < 1e-12


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=700))
def test_the_c_crcs_are_zlibs_and_binasciis(data: bytes) -> None:
    """The C path checks records with CRC-32 (zlib.crc32) and packets with CRC-16/CCITT-FALSE
    (binascii.crc_hqx from 0xFFFF), 8 bytes a step: the same values for every length."""
    import binascii
    import zlib

    from legrep._replaycore import crc16, crc32

    assert crc32(data) == zlib.crc32(data) and crc16(data) == binascii.crc_hqx(data, 0xFFFF)
