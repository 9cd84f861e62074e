"""Per-model decoders against byte vectors built here from each vendor's published layout.

Each test builds notifications with ``struct`` from the documented field layout (not with the
emulators' encoders), then checks sign, scale, times and the handling of a corrupted frame.
"""

from __future__ import annotations

import math
import random
import struct

import numpy as np
import pytest

import legrep.sensors as sensors
from legrep.errors import InputError
from legrep.sensors import metamotion, movella_dot, polar_verity, witmotion
from legrep.sensors._common import ArrivalClock, SensorConfig, unwrap_counter

G = 9.80665


# --------------------------------------------------------------------------- registry / detect
def test_registry_and_detect() -> None:
    assert set(sensors.MODELS) == {"witmotion", "movella-dot", "metamotion", "polar-verity"}
    assert sensors.detect({"local_name": "legrep-1A2B", "service_uuids": []}) == "legrep"
    assert sensors.detect({"local_name": "", "service_uuids": [witmotion.SERVICE_UUID.upper()]}) == "witmotion"
    assert sensors.detect("Movella DOT") == "movella-dot"
    assert sensors.detect("Xsens DOT") == "movella-dot"
    assert sensors.detect("MetaWear") == "metamotion"
    assert sensors.detect("Polar Sense B5A3B52F") == "polar-verity"
    assert sensors.detect("Some Headphones") is None
    with pytest.raises(InputError, match="sensor model must be one of"):
        sensors.get_model("fitbit")
    with pytest.raises(InputError, match="rate must be one of"):
        sensors.get_model("movella-dot").config(rate_hz=100)


def test_notification_record_round_trip() -> None:
    payload = sensors.encode_notification(1, b"\x02\x03")
    assert sensors.decode_notification(payload) == (1, b"\x02\x03")


# --------------------------------------------------------------------------- clocks
def test_arrival_clock_grid_pullback_and_gap() -> None:
    clock = ArrivalClock(100.0, gap_s=0.3)  # default 1.0; shorter here to test the jump
    t1 = clock.assign(3, 1.00)  # anchored: last sample at arrival
    assert np.allclose(t1, [0.98, 0.99, 1.00])
    t2 = clock.assign(3, 1.05)  # predicted last 1.03: 20 ms late, jitter -> keep grid
    assert np.allclose(t2, [1.01, 1.02, 1.03])
    t3 = clock.assign(1, 1.035)  # predicted 1.04 > arrival: pulled back 5 ms
    assert t3[0] == pytest.approx(1.035) and clock.pullbacks == 1
    t4 = clock.assign(1, 2.0)  # ~1 s late: samples lost, grid jumps
    assert t4[0] == pytest.approx(2.0) and clock.gaps == 1
    assert clock.lost_estimate == round((2.0 - 1.045) * 100)
    all_t = np.concatenate([t1, t2, t3, t4])
    assert np.all(np.diff(all_t) > 0)


def test_unwrap_counter() -> None:
    m = 1 << 32
    assert unwrap_counter(5, m - 10, m) == m + 5
    assert unwrap_counter(m - 3, m + 2, m) == m - 3
    assert unwrap_counter(7, None, m) == 7


# --------------------------------------------------------------------------- WitMotion
def wit_frame(acc: tuple[int, int, int], gyr: tuple[int, int, int], ang: tuple[int, int, int] = (0, 0, 0)) -> bytes:
    """``55 61`` + 9 little-endian int16 (WitMotion BLE 5.0 protocol)."""
    return struct.pack("<BB9h", 0x55, 0x61, *acc, *gyr, *ang)


def test_witmotion_scaling_sign_and_random_slices() -> None:
    frames = [wit_frame((2048, -2048, -32768), (16384, -1, 32767), (100, -100, 0)) for _ in range(5)]
    reg_reply = struct.pack("<BBH8h", 0x55, 0x71, 0x3A, *range(8))
    stream = b"\x13\x55\x00" + frames[0] + frames[1] + reg_reply + b"".join(frames[2:])
    rng = random.Random(3)
    parser = witmotion.WitMotionParser()
    acc_parts, gyr_parts = [], []
    i = 0
    while i < len(stream):  # random 1-9 byte slices, bumble-style
        step = rng.randint(1, 9)
        a, g, _ = parser.feed_data(stream[i : i + step])
        acc_parts.append(a)
        gyr_parts.append(g)
        i += step
    acc = np.concatenate(acc_parts)
    gyr = np.concatenate(gyr_parts)
    assert acc.shape == (5, 3)
    assert np.allclose(acc[0], [1.0, -1.0, -16.0])  # x 16/32768 g
    assert np.allclose(gyr[0], [1000.0, -2000.0 / 32768, 2000.0 * 32767 / 32768])  # x 2000/32768 deg/s
    assert parser.register_frames == 1
    assert parser.skipped_bytes == 3


def test_witmotion_corrupted_header_is_skipped_and_times_follow_rate() -> None:
    decoder = witmotion.WitMotionDecoder(SensorConfig(50.0, 16.0, 2000.0))
    good = wit_frame((2048, 0, 0), (0, 0, 164))
    bad = bytearray(good)
    bad[1] = 0x62  # corrupted flag byte: the whole frame is unreadable
    blocks = [decoder.feed(0, good, 0.50), decoder.feed(0, bytes(bad), 0.52), decoder.feed(0, good, 0.54)]
    got = [b for b in blocks if b is not None]
    assert len(got) == 2
    assert got[1].time_s[0] - got[0].time_s[0] == pytest.approx(0.02)  # one 50 Hz period after
    d = decoder.diagnostics()
    assert d.timing.time_from_arrival is True and d.frames == 2 and d.skipped_bytes >= 2


def test_witmotion_configure_commands() -> None:
    writes = witmotion.configure(SensorConfig(100.0, 16.0, 2000.0))
    assert [w.data for w in writes] == [
        bytes.fromhex("ffaa6988b5"),  # unlock
        bytes.fromhex("ffaa030900"),  # return rate 100 Hz
        bytes.fromhex("ffaa000000"),  # save
    ]
    with pytest.raises(ValueError, match="rate must be one of"):
        witmotion.configure(SensorConfig(60.0, 16.0, 2000.0))


# --------------------------------------------------------------------------- Movella DOT
def dot_payload(ts_us: int, acc_mps2: tuple[float, float, float], gyr_dps: tuple[float, float, float]) -> bytes:
    """Rate quantities (mode 21): u32 us + 6 float32, padded to the 40-byte medium payload."""
    return struct.pack("<I6f", ts_us, *acc_mps2, *gyr_dps) + bytes(12)


def test_movella_dot_units_times_wrap_and_corruption() -> None:
    dec = movella_dot.MovellaDotDecoder(movella_dot.MODEL.default_config)
    period_us = round(1e6 / 60)
    start = (1 << 32) - 2 * period_us  # wraps after two samples
    blocks = []
    for k in range(6):
        ts = (start + k * period_us) % (1 << 32)
        if k == 4:
            continue  # lost notification
        blocks.append(dec.feed(0, dot_payload(ts, (0.0, -G, 2 * G), (-90.0, 0.5, 0.0)), 10.0 + k / 60))
    assert dec.feed(0, b"\x00" * 27, 11.0) is None  # truncated payload
    assert dec.feed(0, dot_payload(start, (0, 0, 0), (0, 0, 0)), 11.0) is None  # stale (duplicate)
    t = np.concatenate([b.time_s for b in blocks if b is not None])
    acc = np.concatenate([b.acc_g for b in blocks if b is not None])
    gyr = np.concatenate([b.gyr_dps for b in blocks if b is not None])
    assert np.allclose(acc[0], [0.0, -1.0, 2.0], atol=1e-6)  # m/s^2 -> g
    assert np.allclose(gyr[0], [-90.0, 0.5, 0.0])
    assert np.allclose(np.diff(t), [period_us * 1e-6] * 3 + [2 * period_us * 1e-6])
    assert t[0] == pytest.approx(10.0)
    d = dec.diagnostics()
    assert d.timestamp_gaps == 1 and d.lost_estimate == 1
    assert d.bad_payloads == 1 and d.stale_dropped == 1 and d.timing.time_from_arrival is False


def test_movella_dot_commands() -> None:
    cfg = movella_dot.MODEL.config(rate_hz=30)
    (rate,) = movella_dot.configure(cfg)
    assert rate.char_uuid == "15171002-4947-11e9-8646-d663bd873d93" and len(rate.data) == 32
    assert rate.data[0] == 0x10 and struct.unpack_from("<H", rate.data, 24)[0] == 30
    assert movella_dot.start(cfg)[0].data == bytes([1, 1, 21])
    assert movella_dot.stop(cfg)[0].data == bytes([1, 0, 21])


# --------------------------------------------------------------------------- MetaMotion
def mw(module: int, register: int, samples: list[tuple[int, int, int]]) -> bytes:
    return bytes([module, register]) + b"".join(struct.pack("<3h", *s) for s in samples)


def test_metamotion_scales_and_pairing() -> None:
    cfg = SensorConfig(100.0, 8.0, 2000.0)
    dec = metamotion.MetaMotionDecoder(cfg)
    out = []
    # packed acc (0x03, 0x1C) and packed gyro (0x13, 0x07) on a BMI160 board; gyro started 1 sample later
    acc_s = [(4096, -4096, 0)] * 3  # 4096 LSB/g at +-8 g
    gyr_s = [(164, -164, 16)] * 3  # 16.4 LSB per deg/s at 2000 deg/s
    t = 1.0
    for k in range(4):
        out.append(dec.feed(0, mw(0x03, 0x1C, acc_s), t + 0.03 * k))
        out.append(dec.feed(0, mw(0x13, 0x07, gyr_s), t + 0.03 * k + 0.011))
    out.append(dec.feed(0, bytes([0x03, 0x1C, 1, 2, 3]), 1.2))  # corrupted (truncated) packed message
    out.append(dec.feed(0, bytes([0x0B, 0x84, 0, 0]), 1.2))  # another module's message: ignored
    out.append(dec.flush())
    blocks = [b for b in out if b is not None]
    acc = np.concatenate([b.acc_g for b in blocks])
    gyr = np.concatenate([b.gyr_dps for b in blocks])
    time_s = np.concatenate([b.time_s for b in blocks])
    assert np.allclose(acc, [1.0, -1.0, 0.0])
    assert np.allclose(gyr, [10.0, -10.0, 16 / 16.4])
    assert np.all(np.diff(time_s) > 0)
    d = dec.diagnostics()
    assert d.acc_samples == 12 and d.gyr_samples == 12
    assert len(time_s) == 11  # one acc slot before the gyro started, one gyro slot after the last acc
    assert d.unpaired_acc == 1 and d.unpaired_gyr == 1
    assert d.bad_messages == 1 and d.other_messages == 1


def test_metamotion_commands() -> None:
    cfg = SensorConfig(100.0, 16.0, 500.0)
    acc_conf, gyr_conf = metamotion.configure(cfg)
    assert acc_conf.data == bytes([0x03, 0x03, 0x28, 0x0C])
    assert gyr_conf.data == bytes([0x13, 0x03, 0x28, 0x02])
    start = [w.data for w in metamotion.start(cfg)]
    assert bytes([0x03, 0x1C, 1]) in start and bytes([0x03, 0x01, 1]) == start[-1]
    with pytest.raises(InputError, match="gyro range"):
        metamotion.configure(SensorConfig(100.0, 16.0, 300.0))


# --------------------------------------------------------------------------- Polar PMD
def pack_delta(samples: np.ndarray, width: int) -> bytes:
    """Polar delta frame from the SDK's description: reference int16 x3, then one block."""
    ref = samples[0]
    deltas = np.diff(samples, axis=0)
    out = bytearray(struct.pack("<3h", *ref))
    out += bytes([width, len(deltas)])
    bits: list[int] = []
    for row in deltas:
        for v in row:
            v = int(v) & ((1 << width) - 1)
            bits += [(v >> i) & 1 for i in range(width)]
    bits += [0] * (-len(bits) % 8)
    out += bytes(sum(bits[i + j] << j for j in range(8)) for i in range(0, len(bits), 8))
    return bytes(out)


def pmd_frame(mtype: int, ts_ns: int, frame_type: int, content: bytes) -> bytes:
    return bytes([mtype]) + struct.pack("<Q", ts_ns) + bytes([frame_type]) + content


def start_reply(mtype: int, factor: float) -> bytes:
    factor_bits = struct.unpack("<I", struct.pack("<f", factor))[0]
    return bytes([0xF0, 0x02, mtype, 0, 0]) + bytes([5, 1]) + struct.pack("<I", factor_bits)


def test_polar_delta_decoding_matches_reference() -> None:
    rng = np.random.default_rng(0)
    samples = np.cumsum(rng.integers(-40, 40, size=(9, 3)), axis=0) - 1000
    decoded = polar_verity.decode_delta_frame(pack_delta(samples, 7), 3, 16)
    assert np.array_equal(decoded, samples)
    with pytest.raises(ValueError, match="delta block"):
        polar_verity.decode_delta_frame(pack_delta(samples, 7)[:-3], 3, 16)


def test_polar_frames_factor_times_and_pairing() -> None:
    cfg = polar_verity.MODEL.default_config
    dec = polar_verity.PolarVerityDecoder(cfg)
    acc_factor, gyr_factor = 0.244, 2000.0 / 32768  # mG per LSB at 8 g; deg/s per LSB
    dec.feed(0, start_reply(2, acc_factor), 0.0)
    dec.feed(0, start_reply(5, gyr_factor), 0.0)
    base = 7_000_000_000_000_000  # ns since 2000-01-01: large numbers
    n = 10
    period_ns = 1e9 / 52
    acc_raw = np.tile([[4098, -4098, 0]], (n, 1))  # ~ +1 g, -1 g
    gyr_raw = np.tile([[1638, 0, -1638]], (n, 1))  # ~ +100, -100 deg/s
    blocks = []
    for f in range(3):
        ts = base + int(round((f + 1) * n * period_ns))
        blocks.append(dec.feed(1, pmd_frame(5, ts + 3_000_000, 0x80, pack_delta(gyr_raw, 2)), 5.0 + 0.2 * f))
        blocks.append(dec.feed(1, pmd_frame(2, ts, 0x81, pack_delta(acc_raw, 2)), 5.0 + 0.2 * f))
    corrupt = bytearray(pmd_frame(2, base + int(4 * n * period_ns), 0x81, pack_delta(acc_raw, 2)))
    corrupt[11 + 6] = 40  # block claims 40-bit deltas: impossible for int16 channels, longer than the content
    blocks.append(dec.feed(1, bytes(corrupt), 5.8))
    got = [b for b in blocks if b is not None]
    t = np.concatenate([b.time_s for b in got])
    acc = np.concatenate([b.acc_g for b in got])
    gyr = np.concatenate([b.gyr_dps for b in got])
    assert np.allclose(acc[0], [4098 * 0.244e-3, -4098 * 0.244e-3, 0.0], rtol=1e-6)
    assert np.allclose(gyr, [1638 * gyr_factor, 0.0, -1638 * gyr_factor], rtol=1e-6)
    assert np.allclose(np.diff(t), period_ns * 1e-9, rtol=1e-6)
    d = dec.diagnostics()
    assert d.bad_frames == 1 and d.factor_assumed == 0
    assert d.acc_frames == 3 and d.gyr_frames == 3
    # the gyro's first sample is 3 ms after the accelerometer's: that one acc sample cannot be paired
    assert d.dropped_acc == 1 and len(t) == 3 * n - 1


def test_polar_start_request_layout() -> None:
    req = polar_verity.start_request(5, SensorConfig(52.0, 8.0, 2000.0))
    assert req[:2] == bytes([2, 5])
    settings = polar_verity.parse_settings(req[2:])
    assert settings == {0: [52], 1: [16], 2: [2000], 4: [3]}


def test_polar_without_factor_reply_is_flagged() -> None:
    dec = polar_verity.PolarVerityDecoder(polar_verity.MODEL.default_config)
    dec.feed(1, pmd_frame(2, 10**12, 0x01, struct.pack("<6h", 1000, 0, 0, 1000, 0, 0)), 1.0)  # raw type 1, mG
    dec.feed(1, pmd_frame(5, 10**12, 0x80, pack_delta(np.zeros((2, 3), int), 1)), 1.0)
    assert dec.diagnostics().factor_assumed == 1
    assert math.isclose(dec.factor[5], 1.0)


# --------------------------------------------------------------------------- timestamps checked against arrival


@pytest.mark.parametrize("bit", [20, 26, 31])
def test_movella_dot_flipped_timestamp_bit_costs_one_sample_at_most(bit: int) -> None:
    cfg = movella_dot.MODEL.default_config
    period_us = round(1e6 / cfg.rate_hz)
    n = 600

    def run(flip_at: int | None) -> tuple[int, np.ndarray]:
        rng = np.random.default_rng(bit)  # the same arrival jitter in both runs
        dec = movella_dot.MovellaDotDecoder(cfg)
        times = []
        for k in range(n):
            ts = (123_456 + k * period_us) % (1 << 32)
            if k == flip_at:
                ts ^= 1 << bit
            block = dec.feed(0, dot_payload(ts, (0.0, 0.0, G), (1.0, 2.0, 3.0)), 50.0 + k / cfg.rate_hz + float(rng.uniform(0, 0.02)))
            if block is not None:
                times.append(block.time_s)
        return dec.samples, np.concatenate(times)

    clean, t_clean = run(None)
    kept, t = run(200)
    assert clean == n and kept >= n - 1  # before the fix: 32 % of the stream after the flip
    assert np.all(np.diff(t) > 0) and abs(t[-1] - t_clean[-1]) < 1e-9


def test_polar_flipped_timestamp_bit_costs_one_frame_at_most() -> None:
    cfg = polar_verity.MODEL.default_config
    period_ns = 1e9 / cfg.rate_hz
    n = 10
    raw = np.tile([[4098, -4098, 0]], (n, 1))

    def run(flip_at: int | None) -> PolarVerityDiagnostics:
        dec = polar_verity.PolarVerityDecoder(cfg)
        dec.feed(0, start_reply(2, 0.244), 0.0)
        dec.feed(0, start_reply(5, 2000.0 / 32768), 0.0)
        for f in range(100):
            ts = 7_000_000_000_000_000 + int(round((f + 1) * n * period_ns))
            acc_ts = ts ^ (1 << 40) if f == flip_at else ts
            dec.feed(1, pmd_frame(5, ts + 1_000_000, 0x80, pack_delta(raw, 2)), 5.0 + (f + 1) * n / cfg.rate_hz)
            dec.feed(1, pmd_frame(2, acc_ts, 0x81, pack_delta(raw, 2)), 5.0 + (f + 1) * n / cfg.rate_hz)
        return dec.diagnostics()

    clean, flipped = run(None), run(30)
    assert flipped.acc_frames >= clean.acc_frames - 1 and flipped.stale_frames == 0  # before: 24 % kept
    assert flipped.timestamps_repaired == 1


@pytest.mark.parametrize("factor", [math.nan, math.inf, -math.inf, 0.0, -1.0])
def test_polar_start_reply_with_a_non_finite_factor_is_refused(factor: float) -> None:
    dec = polar_verity.PolarVerityDecoder(polar_verity.MODEL.default_config)
    from legrep.errors import SensorError

    with pytest.raises(SensorError, match="scale factor .* a finite positive number expected") as info:
        dec.feed(0, start_reply(2, factor), 0.0)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("factor", [math.nan, math.inf])
def test_polar_non_finite_factor_stops_the_live_session_in_one_line(factor: float, tmp_path, monkeypatch) -> None:
    """The live connect path (emulators over bumble, the real driver and session loop): a start reply
    with a NaN or infinite factor ends the capture with one SensorError line, before any sample is
    analysed, and the recording of what arrived is kept."""
    from legrep.commands import demo
    from legrep.errors import SensorError
    from legrep.recording import RecordingReader
    from legrep_sim import virtual_time
    from legrep_sim.emulators.models import PolarVerityEmulator
    from legrep_sim.scenarios import SessionSpec, SetSpec, simulate

    monkeypatch.setattr(PolarVerityEmulator, "ACC_FACTOR", factor)
    spec = SessionSpec(legs=("left", "right"), sets=(SetSpec(1, 1, up_s=1.0, hold_s=0.5, down_s=1.0, bottom_rest_s=0.5),), rate_hz=52.0)
    sim = simulate(spec, seed=5)
    recording = tmp_path / "session.lgr"
    with pytest.raises(SensorError, match="scale factor .* a finite positive number expected") as info:
        virtual_time.run(demo.run_demo(1.0, sensor="polar-verity", recording=recording, programmes=dict(sim.signals), truth=sim.truth_dict()))
    assert "\n" not in str(info.value)
    assert RecordingReader(recording).records >= 3  # META, SENSORs and the reply that was refused
