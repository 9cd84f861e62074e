"""Protocol v1: the firmware encoder (legrep_sim.protocol) against the host decoder (legrep.packets).

The two sides are written independently from docs/protocol.md; the spec's test vectors hold for both.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from legrep_sim import protocol as fw
from legrep import packets as hp
from legrep.errors import PacketError, SensorError


def crc_bitwise(data: bytes) -> int:
    """Table-free reference: CRC-16/CCITT-FALSE, one bit at a time."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


# ---------------------------------------------------------------- spec vectors
def test_crc_check_value() -> None:
    for crc in (fw.crc16_ccitt, hp.crc16_ccitt, crc_bitwise):
        assert crc(b"123456789") == 0x29B1
        assert crc(b"") == 0xFFFF


def test_crc_agree_on_random_data() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        data = rng.integers(0, 256, rng.integers(0, 300)).astype(np.uint8).tobytes()
        assert fw.crc16_ccitt(data) == hp.crc16_ccitt(data) == crc_bitwise(data)


def test_spec_packet_vector() -> None:
    pkt = fw.encode_imu_packet(7, 1000, 0x01020304, [[1, -1, 2, -2, 32767, -32768]])
    body = bytes.fromhex("01000100 07000000 e8030000 04030201 0100ffff 0200feff ff7f0080".replace(" ", ""))
    assert pkt[:-2] == body
    assert pkt[-2:] == struct.pack("<H", crc_bitwise(body))
    p = hp.decode_imu_packet(pkt)
    assert (p.seq, p.first_sample_index, p.timestamp_ticks, p.n, p.flags) == (7, 1000, 0x01020304, 1, 0)
    assert p.samples.tolist() == [[1, -1, 2, -2, 32767, -32768]]


def test_spec_slip_vector() -> None:
    payload = bytes.fromhex("01c0db02")
    assert fw.slip_encode(payload) == hp.slip_frame(payload) == bytes.fromhex("c001dbdcdbdd02c0")
    assert hp.SlipDeframer().feed_data(bytes.fromhex("c001dbdcdbdd02c0")) == [payload]


def test_mtu_sizing() -> None:
    assert fw.samples_per_packet(247, 200) == 18
    assert fw.samples_per_packet(247, 100) == 10
    assert fw.samples_per_packet(247, 400) == 18
    assert fw.samples_per_packet(512, 400) == 32
    assert fw.samples_per_packet(33, 100) == 1
    assert fw.samples_per_packet(32, 100) == 0
    assert fw.samples_per_packet(23, 100) == 0
    assert fw.samples_per_packet(247, 25) == 2


def test_tick_offsets_agree() -> None:
    for rate in fw.RATES_HZ:
        i = np.arange(0, 5000)
        expect = np.round(i * 32768 / rate).astype(np.int64)
        assert np.array_equal(hp.tick_offset(i, rate), expect)
        assert [fw.sample_tick_offset(int(k), rate) for k in i[:100]] == expect[:100].tolist()


# ---------------------------------------------------------------- round trips
def random_packet(rng: np.random.Generator) -> tuple[bytes, tuple[int, int, int, int], np.ndarray]:
    n = int(rng.integers(1, 33))
    samples = rng.integers(-32768, 32768, (n, 6)).astype(np.int16)
    hdr = (int(rng.integers(0, 2**32)), int(rng.integers(0, 2**32)), int(rng.integers(0, 2**32)), int(rng.integers(0, 4)))
    return fw.encode_imu_packet(hdr[0], hdr[1], hdr[2], samples, flags=hdr[3]), hdr, samples


def test_imu_round_trip_random() -> None:
    rng = np.random.default_rng(2)
    for _ in range(300):
        data, (seq, first, ticks, flags), samples = random_packet(rng)
        assert len(data) == 18 + 12 * samples.shape[0]
        p = hp.decode_imu_packet(data)
        assert (p.seq, p.first_sample_index, p.timestamp_ticks, p.flags) == (seq, first, ticks, flags)
        assert np.array_equal(p.samples, samples)
        assert p.resent == bool(flags & 1) and p.clipped == bool(flags & 2)
        assert np.array_equal(p.acc_raw, samples[:, :3]) and np.array_equal(p.gyr_raw, samples[:, 3:])


def test_set_flags_recomputes_crc() -> None:
    data = fw.encode_imu_packet(1, 2, 3, np.ones((4, 6), np.int16))
    resent = fw.set_packet_flags(data, fw.FLAG_RESENT)
    p = hp.decode_imu_packet(resent)
    assert p.resent and p.seq == 1


def test_status_round_trip() -> None:
    info = fw.StatusInfo(
        rate_hz=200, acc_range_g=16, gyr_range_dps=2000, leg=2, streaming=True, battery_pct=87,
        buffer_fill_packets=12, buffer_capacity_packets=356, next_seq=99, now_ticks=2**32 - 5,
    )
    raw = fw.encode_status(info)
    assert len(raw) == 32
    st = hp.decode_status(raw + b"\x00\x01")  # appended bytes are future additions, ignored
    assert (st.rate_hz, st.acc_range_g, st.gyr_range_dps, st.leg, st.streaming, st.battery_pct) == (200, 16, 2000, 2, True, 87)
    assert st.acc_lsb_g == pytest.approx(16 / 32768) and st.gyr_lsb_dps == pytest.approx(2000 / 32768)
    assert (st.next_seq, st.now_ticks, st.fw_version_text) == (99, 2**32 - 5, "1.0.0")
    with pytest.raises(PacketError, match="at least 32 bytes, got 31"):
        hp.decode_status(raw[:31])
    with pytest.raises(SensorError, match="protocol version 2"):
        hp.decode_status(b"\x02" + raw[1:])


def test_control_requests_parse_on_firmware_side() -> None:
    cases = [
        (hp.start_request(), fw.Opcode.START, ()),
        (hp.stop_request(), fw.Opcode.STOP, ()),
        (hp.set_rate_request(200), fw.Opcode.SET_RATE, (200,)),
        (hp.set_ranges_request(4, 500), fw.Opcode.SET_RANGES, (4, 500)),
        (hp.time_sync_request(0xDEADBEEF), fw.Opcode.TIME_SYNC, (0xDEADBEEF,)),
        (hp.resend_request(5, 9), fw.Opcode.RESEND, (5, 9)),
        (hp.set_leg_request(1), fw.Opcode.SET_LEG, (1,)),
        (hp.get_status_request(), fw.Opcode.GET_STATUS, ()),
        (hp.sim_fault_request(5, -40), fw.Opcode.SIM_FAULT, (5, 2**32 - 40)),
    ]
    for data, opcode, args in cases:
        req = fw.parse_control_request(data)
        assert req.opcode == opcode and req.args == args
    with pytest.raises(fw.ControlRequestError) as exc:
        fw.parse_control_request(b"\x03\x01")
    assert exc.value.status == fw.ReplyStatus.BAD_LENGTH
    with pytest.raises(fw.ControlRequestError) as exc:
        fw.parse_control_request(b"\x55")
    assert exc.value.status == fw.ReplyStatus.UNKNOWN_OPCODE
    reply = hp.decode_control_reply(fw.encode_control_reply(fw.Opcode.RESEND, 0, struct.pack("<II", 3, 4)))
    assert reply.ok and reply.opcode == 6 and (reply.u32(0), reply.u32(1)) == (3, 4)
    with pytest.raises(PacketError, match="needs 12 payload bytes, got 8"):
        reply.u32(2)


# ---------------------------------------------------------------- malformed input
def test_decoder_rejects_with_reason() -> None:
    good = fw.encode_imu_packet(1, 2, 3, np.zeros((2, 6), np.int16))
    with pytest.raises(PacketError, match="at least 30 bytes, got 10"):
        hp.decode_imu_packet(good[:10])
    with pytest.raises(PacketError, match="must be 42 bytes, got 41"):
        hp.decode_imu_packet(good[:-1])
    with pytest.raises(PacketError, match="type must be 0x01"):
        hp.decode_imu_packet(b"\x02" + good[1:])
    bad = bytearray(good)
    bad[20] ^= 0x40
    with pytest.raises(PacketError, match="CRC mismatch"):
        hp.decode_imu_packet(bytes(bad))
    bad = bytearray(good)
    bad[2] = 0
    with pytest.raises(PacketError, match="sample count must be 1..32, got 0"):
        hp.decode_imu_packet(bytes(bad))


def test_decoder_never_crashes_on_garbage() -> None:
    rng = np.random.default_rng(3)
    data, _, _ = random_packet(rng)
    for _ in range(2000):
        mutated = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            mutated[int(rng.integers(len(mutated)))] ^= int(rng.integers(1, 256))
        cut = int(rng.integers(0, len(mutated) + 1))
        try:
            hp.decode_imu_packet(bytes(mutated[:cut]))
        except PacketError:
            pass


def stream_of_frames(rng: np.random.Generator, count: int) -> tuple[bytes, list[bytes]]:
    payloads = []
    stream = bytearray()
    for _ in range(count):
        data, _, _ = random_packet(rng)
        payload = bytes([fw.Channel.DATA]) + data
        payloads.append(payload)
        stream += fw.slip_encode(payload)
    return bytes(stream), payloads


def test_deframer_identical_under_any_slicing() -> None:
    rng = np.random.default_rng(4)
    stream, payloads = stream_of_frames(rng, 60)
    whole = hp.SlipDeframer().feed_data(stream)
    assert whole == payloads
    for trial in range(20):
        d = hp.SlipDeframer()
        got: list[bytes] = []
        pos = 0
        while pos < len(stream):
            step = int(rng.integers(1, 10)) if trial % 2 else int(rng.integers(1, 400))
            got += d.feed_data(stream[pos : pos + step])
            pos += step
        assert got == payloads


def test_deframer_resyncs_after_garbage_and_counts() -> None:
    rng = np.random.default_rng(5)
    stream, payloads = stream_of_frames(rng, 30)
    # Garbage (line noise, no END) before the stream, a broken escape, and an over-long run.
    noisy = b"\x11\x22\xdb\x99\x33" + stream[:0] + bytes([0xC0]) + b"\xdb\x01\xc0" + b"\x55" * 3000 + stream
    d = hp.SlipDeframer()
    frames = d.feed_data(noisy)
    good = [f for f in frames if f in payloads]
    assert good == payloads
    assert d.dropped_frames >= 2
    # Every leftover frame fails to decode as a data packet: counted, never a crash.
    tracker = hp.PacketTracker(100)
    for f in frames:
        if f not in payloads:
            channel_ok = f[:1] == b"\x01"
            _, _ = tracker.feed_bytes(f[1:] if channel_ok else f, 0.0)
    assert tracker.stats.corrupt == len(frames) - len(good)


def test_split_serial_frame() -> None:
    assert hp.split_serial_frame(b"\x02\x81\x00") == (hp.Channel.CONTROL, b"\x81\x00")
    with pytest.raises(PacketError, match="channel must be 1, 2 or 3, got 0x09"):
        hp.split_serial_frame(b"\x09abc")


# ---------------------------------------------------------------- tracker
RATE = 100


def make_packets(count: int, n: int = 10, first_index: int = 500, first_ticks: int = 2**32 - 3000) -> list[bytes]:
    out = []
    for seq in range(count):
        idx = first_index + seq * n
        samples = np.tile(np.arange(idx, idx + n, dtype=np.int64)[:, None] % 30000, (1, 6)).astype(np.int16)
        ticks = first_ticks + int(hp.tick_offset(seq * n, RATE))
        out.append(fw.encode_imu_packet(seq, idx, ticks, samples))
    return out


def run_tracker(order: list[bytes], tracker: hp.PacketTracker, dt_s: float = 0.1) -> hp.SampleBatch:
    outs = []
    t = 0.0
    for data in order:
        _, batch = tracker.feed_bytes(data, t)
        outs.append(batch)
        t += dt_s
    outs.append(tracker.flush())
    return hp.SampleBatch.concat(outs)


def check_exactly_once(batch: hp.SampleBatch, expected_indices: np.ndarray) -> None:
    assert np.array_equal(batch.sample_index, expected_indices)
    assert np.array_equal(batch.acc_raw[:, 0], (expected_indices % 30000).astype(np.int16))


def test_tracker_in_order_and_tick_unwrap() -> None:
    pk = make_packets(40)
    tracker = hp.PacketTracker(RATE)
    tracker.start(500)
    out = run_tracker(pk, tracker)
    check_exactly_once(out, np.arange(500, 900))
    # Ticks continue across the u32 wrap: strictly increasing, one period apart.
    d = np.diff(out.ticks)
    assert d.min() >= 327 and d.max() <= 328 and out.ticks[-1] > 2**32
    assert tracker.stats.lost_packets == 0 and tracker.stats.duplicates == 0


def test_tracker_dup_reorder_corrupt() -> None:
    rng = np.random.default_rng(6)
    pk = make_packets(200)
    order: list[bytes] = []
    for i, p in enumerate(pk):
        order.append(p)
        if i % 17 == 3:
            order.append(p)  # duplicate
        if i % 23 == 5:
            bad = bytearray(p)
            bad[int(rng.integers(len(bad)))] ^= 0x10
            order.append(bytes(bad))  # corrupt copy (the good one also arrives)
    # Swap some neighbours (reorder within the window).
    for i in range(5, len(order) - 3, 29):
        order[i], order[i + 2] = order[i + 2], order[i]
    tracker = hp.PacketTracker(RATE)
    tracker.start(500)
    out = run_tracker(order, tracker, dt_s=0.01)
    check_exactly_once(out, np.arange(500, 500 + 2000))
    s = tracker.stats
    assert s.duplicates == sum(1 for i in range(200) if i % 17 == 3)
    assert s.corrupt == sum(1 for i in range(200) if i % 23 == 5)
    assert s.reordered > 0 and s.lost_packets == 0


def test_tracker_gap_resend_fill() -> None:
    pk = make_packets(60)
    lost = {10, 11, 12, 30}
    tracker = hp.PacketTracker(RATE, resend_after_s=0.15, give_up_s=2.0)
    tracker.start(500)
    outs = []
    t = 0.0
    requested: list[tuple[int, int]] = []
    for seq, p in enumerate(pk):
        if seq not in lost:
            outs.append(tracker.feed_bytes(p, t)[1])
        for a, b in tracker.resend_requests(t):
            requested.append((a, b))
            outs.append(tracker.on_resend_reply(0, b - a + 1, t))
            for s in range(a, b + 1):  # the sensor re-sends with the resent flag
                outs.append(tracker.feed_bytes(fw.set_packet_flags(pk[s], fw.FLAG_RESENT), t + 0.01)[1])
        t += 0.05
    outs.append(tracker.flush())
    out = hp.SampleBatch.concat(outs)
    check_exactly_once(out, np.arange(500, 1100))
    assert requested == [(10, 12), (30, 30)]
    assert tracker.stats.resent_used == 4 and tracker.stats.lost_packets == 0
    # Samples were held back while the gap was open: nothing after seq 9 left before the resend.
    assert tracker.held_packets == 0


def test_tracker_gives_up_and_counts_lost() -> None:
    pk = make_packets(80)
    lost = {20, 21, 50}
    tracker = hp.PacketTracker(RATE, give_up_s=0.5)
    tracker.start(500)
    order = [p for s, p in enumerate(pk) if s not in lost]
    out = run_tracker(order + [pk[21]], tracker, dt_s=0.1)  # seq 21 turns up after it was given up
    expected = np.array([i for i in range(500, 1300) if (i - 500) // 10 not in lost])
    check_exactly_once(out, expected)
    assert tracker.stats.lost_packets == 3 and tracker.stats.lost_samples == 30
    assert tracker.stats.late == 1


def test_tracker_gone_packets_released_immediately() -> None:
    pk = make_packets(20)
    tracker = hp.PacketTracker(RATE, give_up_s=100.0)
    tracker.start(500)
    for s in (0, 1, 2, 5, 6):
        tracker.feed_bytes(pk[s], 0.0)
    assert tracker.next_seq == 3 and tracker.held_packets == 2
    out = tracker.on_resend_reply(first_available_seq=5, count_resent=0, now_s=0.1)
    assert out.sample_index.tolist() == list(range(550, 570))
    assert tracker.stats.lost_packets == 2


def test_tracker_give_up_counts_from_last_resend_activity() -> None:
    """A reconnect + resend that lands more than give_up_s after the gap was detected (a slow
    reconnection, or a high demo speed) still fills the gap: the timer restarts with each RESEND
    sent, each reply and the link coming back, and nothing is given up while the link is down."""
    pk = make_packets(40)
    tracker = hp.PacketTracker(RATE, give_up_s=2.0)
    tracker.start(500)
    outs = [tracker.feed_bytes(pk[s], 0.0)[1] for s in range(10)]
    outs.append(tracker.feed_bytes(pk[20], 1.0)[1])  # seq 10..19 missing, detected at t=1.0
    assert tracker.missing() == [(10, 19)]
    tracker.link_down(1.1)
    outs.append(tracker.poll(6.0))  # 5 s later, link still down: nothing given up
    assert tracker.missing() == [(10, 19)] and tracker.stats.lost_packets == 0
    tracker.link_up(6.5)
    outs.append(tracker.poll(8.0))  # 1.5 s after the link came back: still waiting
    tracker.note_resend_sent(10, 19, 8.2)
    outs.append(tracker.poll(10.0))  # 1.8 s after the RESEND went out: still waiting
    assert tracker.stats.lost_packets == 0 and tracker.missing() == [(10, 19)]
    outs.append(tracker.on_resend_reply(10, 10, 10.1))
    for s in range(10, 20):
        outs.append(tracker.feed_bytes(fw.set_packet_flags(pk[s], fw.FLAG_RESENT), 10.2 + 0.01 * s)[1])
    for s in range(21, 40):
        outs.append(tracker.feed_bytes(pk[s], 10.5)[1])
    outs.append(tracker.flush())
    check_exactly_once(hp.SampleBatch.concat(outs), np.arange(500, 900))
    assert tracker.stats.lost_packets == 0 and tracker.stats.resent_used == 10
    # Without any activity the old rule holds: 2 s after detection the gap is given up.
    quiet = hp.PacketTracker(RATE, give_up_s=2.0)
    quiet.start(500)
    quiet.feed_bytes(pk[0], 0.0)
    quiet.feed_bytes(pk[2], 1.0)
    assert quiet.poll(2.9).sample_index.size == 0
    assert quiet.poll(3.01).sample_index.tolist() == list(range(520, 530))
    assert quiet.stats.lost_packets == 1
    # ... and resend activity cannot hold a gap longer than max_wait_s.
    capped = hp.PacketTracker(RATE, give_up_s=2.0, max_wait_s=5.0)
    capped.start(500)
    capped.feed_bytes(pk[0], 0.0)
    capped.feed_bytes(pk[2], 1.0)
    capped.note_resend_sent(1, 1, 4.5)
    assert capped.poll(5.9).sample_index.size == 0
    assert capped.poll(6.01).sample_index.size == 10 and capped.stats.lost_packets == 1


def test_tracker_trailing_gap_from_status() -> None:
    pk = make_packets(10)
    tracker = hp.PacketTracker(RATE)
    tracker.start(500)
    for s in range(6):
        tracker.feed_bytes(pk[s], 0.0)
    tracker.note_next_seq(10, 1.0)
    assert tracker.missing() == [(6, 9)]
    assert tracker.resend_requests(1.2) == [(6, 9)]
    assert tracker.resend_requests(1.3) == []  # retry waits
    assert tracker.resend_requests(1.8) == [(6, 9)]


def test_tracker_restart_after_start() -> None:
    a = make_packets(5, first_index=0)
    b = make_packets(5, first_index=1000, first_ticks=900000)
    tracker = hp.PacketTracker(RATE)
    out = run_tracker(a + b, tracker)
    assert out.sample_index.tolist() == list(range(0, 50)) + list(range(1000, 1050))
    assert tracker.stats.restarts == 1 and tracker.stats.duplicates == 0


def test_tracker_random_chaos_exactly_once() -> None:
    """Random loss, duplication, reordering and resends: output is strictly increasing, and
    complete when every gap is eventually resent."""
    rng = np.random.default_rng(7)
    pk = make_packets(300)
    arrivals: list[tuple[float, bytes]] = []
    for seq, p in enumerate(pk):
        t = seq * 0.1 + float(rng.exponential(0.05))
        if rng.random() < 0.1:
            continue
        arrivals.append((t, p))
        if rng.random() < 0.05:
            arrivals.append((t + 0.02, p))
    arrivals.sort(key=lambda x: x[0])
    tracker = hp.PacketTracker(RATE, give_up_s=5.0)
    tracker.start(500)
    outs = []
    for t, p in arrivals:
        outs.append(tracker.feed_bytes(p, t)[1])
        for a, b in tracker.resend_requests(t):
            for s in range(a, b + 1):
                outs.append(tracker.feed_bytes(fw.set_packet_flags(pk[s], fw.FLAG_RESENT), t + 0.03)[1])
    # Trailing packets lost: the status says how many were produced.
    tracker.note_next_seq(300, 1000.0)
    for a, b in tracker.resend_requests(1001.0):
        for s in range(a, b + 1):
            outs.append(tracker.feed_bytes(pk[s], 1001.0)[1])
    outs.append(tracker.flush())
    out = hp.SampleBatch.concat(outs)
    check_exactly_once(out, np.arange(500, 3500))
    assert tracker.stats.lost_packets == 0


def test_doc_vectors() -> None:
    """The byte strings printed in docs/protocol.md section 9."""
    pkt = fw.encode_imu_packet(7, 1000, 0x01020304, [[1, -1, 2, -2, 32767, -32768]])
    assert pkt.hex(" ") == "01 00 01 00 07 00 00 00 e8 03 00 00 04 03 02 01 01 00 ff ff 02 00 fe ff ff 7f 00 80 f4 b7"
    st = fw.encode_status(fw.StatusInfo(
        rate_hz=100, acc_range_g=8, gyr_range_dps=1000, leg=1, streaming=True, battery_pct=95,
        buffer_fill_packets=3, buffer_capacity_packets=320, next_seq=3, now_ticks=0x00010000,
    ))
    assert st.hex(" ") == "01 01 00 00 64 00 08 01 e8 03 01 5f 00 00 80 39 00 00 fa 3c 03 00 40 01 03 00 00 00 00 00 01 00"
    decoded = hp.decode_status(st)
    assert decoded.acc_lsb_g == 8 / 32768 and decoded.gyr_lsb_dps == 1000 / 32768 and decoded.leg == 1
    assert hp.time_sync_request(0xDEADBEEF).hex(" ") == "05 ef be ad de"
    assert fw.encode_control_reply(fw.Opcode.TIME_SYNC, 0, struct.pack("<II", 0xDEADBEEF, 0x10)).hex(" ") == "85 00 ef be ad de 10 00 00 00"
    assert hp.resend_request(5, 9).hex(" ") == "06 05 00 00 00 09 00 00 00"
