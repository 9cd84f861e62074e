"""The simulated firmware (legrep_sim.firmware) checked through the host decoder and tracker."""

from __future__ import annotations


import numpy as np
import pytest

from legrep_sim import protocol as fw
from legrep_sim.firmware import FirmwareConfig, SensorFirmware, array_source, still_source
from legrep import packets as hp


def sine_source(freq_hz: float = 0.5):
    def source(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        acc = np.stack([np.sin(2 * np.pi * freq_hz * t), np.cos(2 * np.pi * freq_hz * t), np.full_like(t, 0.5)], axis=1)
        gyr = np.stack([100 * np.sin(2 * np.pi * freq_hz * t), np.zeros_like(t), t], axis=1)
        return acc, gyr

    return source


def started(source=None, config: FirmwareConfig = FirmwareConfig(), mtu: int = 247) -> tuple[SensorFirmware, hp.ControlReply]:
    f = SensorFirmware(source or sine_source(), config, connected=True, mtu=mtu)
    reply = hp.decode_control_reply(f.handle_control(hp.start_request(), 0.0))
    return f, reply


def run(f: SensorFirmware, until_s: float, step_s: float = 0.02, t0_s: float = 0.0) -> list[bytes]:
    out: list[bytes] = []
    for t in np.arange(t0_s + step_s, until_s + 1e-9, step_s):
        out += f.advance(float(t))
    return out


def test_start_refused_below_min_mtu_then_streams() -> None:
    f = SensorFirmware(still_source(), connected=True, mtu=23)
    r = hp.decode_control_reply(f.handle_control(hp.start_request(), 0.0))
    assert (r.opcode, r.status) == (fw.Opcode.START, 2)
    assert run(f, 1.0) == []
    f.set_mtu(247)
    r = hp.decode_control_reply(f.handle_control(hp.start_request(), 1.0))
    assert r.ok and r.u32(0) == 0
    pk = [hp.decode_imu_packet(x) for x in run(f, 3.0, t0_s=1.0)]
    assert [p.seq for p in pk] == list(range(len(pk)))
    assert all(p.n == 10 for p in pk) and 19 <= len(pk) <= 20  # 100 Hz, n = 10, 2 s
    # still sensor at 8 g range: 1 g is 4096 counts
    assert np.all(pk[0].acc_raw == [0, 0, 4096]) and np.all(pk[0].gyr_raw == 0)


def test_samples_match_source_and_tick_formula() -> None:
    f, reply = started(config=FirmwareConfig(rate_hz=200, clock_offset_ticks=2**32 - 20000, drift_ppm=50))
    pk = [hp.decode_imu_packet(x) for x in run(f, 5.0)]
    assert all(p.n == 18 for p in pk)
    idx, true_t, ticks, raw = f.produced.arrays()
    assert idx[0] == reply.u32(0) and np.array_equal(idx, np.arange(idx.size))
    tracker = hp.PacketTracker(200)
    tracker.start(reply.u32(0))
    out = hp.SampleBatch.concat([tracker.feed(p, 0.0) for p in pk])
    assert np.array_equal(out.sample_index, idx) and np.array_equal(np.concatenate([out.acc_raw, out.gyr_raw], 1), raw)
    # host per-sample ticks == firmware sampling ticks within the spec's +-1 tick (across the u32 wrap)
    assert np.abs(out.ticks - ticks).max() <= 1
    # The sensor samples on its own (drifting) clock: 200 Hz * (1 + 50 ppm) in true time.
    period_true = np.diff(true_t).mean()
    assert period_true == pytest.approx(1 / 200 / (1 + 50e-6), rel=2e-6)
    # The values are the source at the true sample times, quantised with the ranges.
    acc, gyr = sine_source()(true_t)
    assert np.abs(out.acc_raw * (8 / 32768) - acc).max() <= 0.5 * 8 / 32768 + 1e-12
    assert np.abs(out.gyr_raw * (1000 / 32768) - gyr).max() <= 0.5 * 1000 / 32768 + 1e-9


def test_clipping_flag() -> None:
    def source(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        acc = np.zeros((t.size, 3))
        acc[:, 0] = np.where(t > 1.0, 20.0, 0.5)  # 20 g on an 8 g range
        return acc, np.zeros((t.size, 3))

    f, _ = started(source)
    pk = [hp.decode_imu_packet(x) for x in run(f, 2.0)]
    assert not any(p.clipped for p in pk[:9]) and all(p.clipped for p in pk[11:])
    assert pk[-1].acc_raw[:, 0].max() == 32767


def test_control_errors() -> None:
    f, _ = started()

    def ask(data: bytes) -> hp.ControlReply:
        return hp.decode_control_reply(f.handle_control(data))

    assert ask(hp.set_rate_request(200)).status == 3  # busy while streaming
    assert ask(hp.set_rate_request(123)).status == 2
    assert ask(b"\x03\x01").status == 1
    assert ask(b"\x42").status == 4 and ask(b"\x42").opcode == 0x42
    assert ask(hp.resend_request(5, 2)).status == 2
    assert ask(hp.set_leg_request(4)).status == 2  # 0-3: unassigned, left, right, pelvis
    assert ask(hp.sim_fault_request(9, 0)).status == 2
    r = ask(hp.stop_request())
    assert r.ok
    assert ask(hp.set_rate_request(400)).ok and ask(hp.set_ranges_request(16, 2000)).ok
    assert ask(hp.set_ranges_request(3, 2000)).status == 2
    st = hp.decode_status(ask(hp.get_status_request()).payload)
    assert (st.rate_hz, st.acc_range_g, st.gyr_range_dps, st.streaming) == (400, 16, 2000, False)


def test_stop_flushes_partial_packet_and_status() -> None:
    f, _ = started()
    pk = run(f, 1.234)
    r = hp.decode_control_reply(f.handle_control(hp.stop_request(), 1.25))
    pk += f.advance(1.3)
    decoded = [hp.decode_imu_packet(x) for x in pk]
    assert decoded[-1].n < 10 and r.u32(0) == len(decoded)
    assert sum(p.n for p in decoded) == len(f.produced.sample_index) == 125
    st = hp.decode_status(f.status())
    assert st.next_seq == len(decoded) and not st.streaming
    assert f.take_status_change() is not None and f.take_status_change() is None


def test_time_sync_reports_drifting_clock() -> None:
    f = SensorFirmware(still_source(), FirmwareConfig(drift_ppm=-80, clock_offset_ticks=1000), connected=True, mtu=247)
    r = hp.decode_control_reply(f.handle_control(hp.time_sync_request(77), 600.0))
    assert r.u32(0) == 77
    assert r.u32(1) == 1000 + int(600 * 32768 * (1 - 80e-6))


def test_resend_from_ring_and_overflow() -> None:
    f, _ = started(config=FirmwareConfig(ring_s=2.0))
    pk = run(f, 5.0)
    r = hp.decode_control_reply(f.handle_control(hp.resend_request(0, 1000), 5.0))
    resent = [hp.decode_imu_packet(x) for x in f.advance(5.0)]
    capacity = 20  # ceil(2 s * 100 Hz / 10)
    assert r.u32(0) == len(pk) - capacity and r.u32(1) == capacity == len(resent)
    assert all(p.resent for p in resent) and [p.seq for p in resent] == list(range(len(pk) - capacity, len(pk)))
    assert resent[-1].samples.tolist() == hp.decode_imu_packet(pk[-1]).samples.tolist()


@pytest.mark.parametrize(
    "kind, arg, check",
    [
        (fw.FaultKind.LOSE, 3, lambda seqs, n: len(seqs) == n - 3 and len(set(seqs)) == len(seqs)),
        (fw.FaultKind.DUPLICATE, 4, lambda seqs, n: len(seqs) == n + 4 and len(set(seqs)) == n),
    ],
)
def test_faults_lose_duplicate(kind, arg, check) -> None:
    f, _ = started()
    run(f, 1.0)
    f.inject_fault(kind, arg)
    pk = run(f, 3.0, t0_s=1.0)
    seqs = [hp.decode_imu_packet(x).seq for x in pk]
    assert check(seqs, f.next_seq - 10)


def test_fault_corrupt_detected_by_crc() -> None:
    f, _ = started()
    f.handle_control(hp.sim_fault_request(fw.FaultKind.CORRUPT, 5))
    pk = run(f, 2.0)
    bad = 0
    for x in pk:
        try:
            hp.decode_imu_packet(x)
        except hp.PacketError:
            bad += 1
    assert bad == 5 and len(pk) == f.next_seq


def test_fault_stall_then_burst() -> None:
    f, _ = started()
    run(f, 1.0)
    f.handle_control(hp.sim_fault_request(fw.FaultKind.STALL, 500), 1.0)
    assert run(f, 1.48, step_s=0.02, t0_s=1.0) == []
    burst = f.advance(1.5)
    assert len(burst) == 5
    assert [hp.decode_imu_packet(x).seq for x in burst] == list(range(10, 15))


def test_fault_drift_is_continuous() -> None:
    f, _ = started()
    run(f, 10.0)
    before = f.ticks_at(10.0)
    f.handle_control(hp.sim_fault_request(fw.FaultKind.DRIFT, -200), 10.0)
    assert f.drift_ppm == -200
    assert abs(f.ticks_at(10.0) - before) <= 1
    assert f.ticks_at(110.0) - f.ticks_at(10.0) == pytest.approx(100 * 32768 * (1 - 200e-6), abs=1)


def test_link_drop_keeps_sampling_and_resend_recovers_everything() -> None:
    """Drop the link, reconnect, read status, RESEND the gap: every sample exactly once."""
    f, reply = started()
    tracker = hp.PacketTracker(100)
    tracker.start(reply.u32(0))
    out: list[hp.SampleBatch] = []
    f.handle_control(hp.sim_fault_request(fw.FaultKind.DROP_LINK, 1500), 0.5)
    t = 0.0
    while t < 12.0:
        t = round(t + 0.02, 6)
        if f.link_drop_due(t):
            f.disconnect(t)
        if not f.connected and t >= 5.0:
            f.connect(t, mtu=247)
            st = hp.decode_status(f.status(t))
            assert st.streaming
            tracker.note_next_seq(st.next_seq, t)
        for data in f.advance(t):
            out.append(tracker.feed_bytes(data, t)[1])
        for a, b in tracker.resend_requests(t):
            r = hp.decode_control_reply(f.handle_control(hp.resend_request(a, b), t))
            out.append(tracker.on_resend_reply(r.u32(0), r.u32(1), t))
    f.handle_control(hp.stop_request(), 12.0)
    for data in f.advance(12.0):
        out.append(tracker.feed_bytes(data, 12.0)[1])
    out.append(tracker.flush())
    got = hp.SampleBatch.concat(out)
    idx, _, _, raw = f.produced.arrays()
    assert np.array_equal(got.sample_index, idx)
    assert np.array_equal(np.concatenate([got.acc_raw, got.gyr_raw], 1), raw)
    assert tracker.stats.resent_used >= 29 and tracker.stats.lost_packets == 0


def test_idle_stop_after_long_disconnect() -> None:
    f, _ = started(config=FirmwareConfig(idle_stop_s=10.0))
    run(f, 1.0)
    f.disconnect(1.0)
    f.advance(10.5)
    assert f.streaming
    f.advance(11.5)
    assert not f.streaming


def test_array_source_interpolates() -> None:
    t = np.arange(0, 10, 0.01)
    acc = np.stack([t, -t, np.ones_like(t)], 1)
    src = array_source(t, acc, np.zeros_like(acc))
    a, g = src(np.array([0.005, 5.0, 20.0]))
    assert a[:, 0] == pytest.approx([0.005, 5.0, t[-1]])
    with pytest.raises(ValueError, match=r"acc_g and gyr_dps \(M, 3\)"):
        array_source(t, acc[:5], acc)
