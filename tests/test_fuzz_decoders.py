"""Property tests (Hypothesis) for everything that turns bytes or text from outside into samples.

The legrep packet decoders and tracker (``legrep.packets``), the SLIP deframer, the four vendor
decoders, the importers and the IMU CSV reader are fed random bytes, truncations, bit flips and
duplicated or reordered pieces of valid input. Properties, for each:

* nothing escapes but the package's documented errors (:class:`legrep.errors.LegrepError`,
  one line); a live decoder counts a bad notification and raises nothing at all;
* every sample that comes out is finite;
* every intact frame after garbage is recovered (deframer, WitMotion stream parser, legrep
  packets in a notification stream);
* bounded work per byte: adversarial sequence numbers and timestamps (near 2**32, 2**64) are
  included, and the tracker's state stays bounded (held packets, gaps), so nothing walks a range.
"""

from __future__ import annotations

import functools
import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from legrep import packets as hp
from legrep.errors import LegrepError, PacketError, SensorError
from legrep.imu_csv import parse_imu_csv
from legrep.importers import parse_tables
from legrep.model import ImuBlock
from legrep.sensors import MODELS
from legrep_sim import protocol as fwp

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_100 = settings(FUZZ, max_examples=100)
"""For the properties of the live record path and of the WitMotion and MetaMotion decoders: the
line and branch coverage of what they exercise (coverage.py over host/live_core.py and
host/sensors/{witmotion,metamotion}.py) is the same after 100 examples as after 200, for each of
--hypothesis-seed 1, 2 and 3. The others keep 200: the Polar and Movella DOT decoders, the packet
code, the importers and the CSV reader still reached new lines between 100 and 200 examples."""
U32 = st.integers(0, 0xFFFFFFFF)


def _finite(block: ImuBlock | None) -> None:
    if block is None:
        return
    for name in ("time_s", "acc_g", "gyr_dps"):
        values = np.asarray(getattr(block, name))
        assert np.all(np.isfinite(values)), f"non-finite {name}"


# Strategies that do not change between draws are built once, here: hypothesis caches st.integers
# and st.binary by their arguments but builds st.sampled_from anew on every call (and validates it
# on its first draw), which was most of the cost of drawing inside the composites below. The same
# strategies, so the same examples.
_DAMAGE = st.sampled_from(["flip", "cut", "insert", "dup", "drop", "set"])
_SPECIAL_BYTE = st.sampled_from([0x00, 0xFF, 0x7F, 0x80, 0xC0, 0xDB])
_BASE_SEQ = st.sampled_from([0, 5, 0xFFFFFFF0, 0x7FFFFFFF])
_BASE_FIRST = st.sampled_from([0, 1000, 0xFFFFFF00])
_BASE_TICKS = st.sampled_from([0, 123456, 0xFFFFF000])
_STEP_S = st.sampled_from([0.0, 0.01, 0.04, 0.5, 3.0, 40.0])
_WHAT = st.sampled_from(["ok"] * 6 + ["lost", "dup", "resent", "wild", "bytes", "status", "reply", "link", "resend"])
_DOWN_FOR_S = st.sampled_from([0.1, 5.0, 100.0])


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` with random damage: flips, cuts, inserted junk, a duplicated or dropped span."""
    buf = bytearray(valid)
    for _ in range(draw(st.integers(0, 3))):
        how = draw(_DAMAGE)
        if not buf:
            buf += draw(st.binary(max_size=8))
            continue
        at = draw(st.integers(0, len(buf) - 1))
        if how == "flip":
            buf[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "cut":
            del buf[at:]
        elif how == "insert":
            buf[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif how == "dup":
            buf[at:at] = buf[at : at + draw(st.integers(1, 16))]
        elif how == "drop":
            del buf[at : at + draw(st.integers(1, 16))]
        else:
            buf[at] = draw(_SPECIAL_BYTE)
    return bytes(buf)


def _imu(seq: int, first: int, ticks: int, n: int = 4, flags: int = 0) -> bytes:
    samples = (np.arange(6 * n, dtype=np.int64).reshape(n, 6) * 37 % 20000 - 10000).astype(np.int16)
    return fwp.encode_imu_packet(seq, first, ticks, samples, flags=flags)


# --------------------------------------------------------------------------- legrep packets
@FUZZ
@given(st.one_of(st.binary(max_size=420), st.builds(_imu, U32, U32, U32, st.integers(1, 32)).flatmap(mutated)))
def test_legrep_decoders_raise_only_packet_errors(data: bytes) -> None:
    for decode in (hp.decode_imu_packet, hp.decode_status, hp.decode_control_reply, hp.split_serial_frame):
        try:
            decode(data)
        except LegrepError as exc:
            assert "\n" not in str(exc)


@FUZZ
@given(U32, U32, U32, st.integers(1, 32))
def test_imu_packet_round_trip_and_every_flip_caught(seq: int, first: int, ticks: int, n: int) -> None:
    raw = _imu(seq, first, ticks, n)
    p = hp.decode_imu_packet(raw)
    assert (p.seq, p.first_sample_index, p.timestamp_ticks, p.n) == (seq, first, ticks, n)
    for bit in (0, 7, 8 * (len(raw) // 2) + 3, 8 * len(raw) - 1):  # CRC-16 catches every single-bit error
        bad = bytearray(raw)
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(PacketError):
            hp.decode_imu_packet(bytes(bad))


@st.composite
def packet_streams(draw: st.DrawFn) -> list[tuple[str, object]]:
    """A session's worth of tracker calls: packets (in order, lost, duplicated, reordered, re-sent,
    damaged, with wild seq/index/tick values) and the status, RESEND and link calls between them."""
    base_seq = draw(_BASE_SEQ)
    base_first = draw(_BASE_FIRST)
    base_ticks = draw(_BASE_TICKS)
    n = draw(st.integers(1, 40))
    order = list(range(n))
    for _ in range(draw(st.integers(0, 5))):  # local reordering
        i = draw(st.integers(0, n - 1))
        j = min(n - 1, i + draw(st.integers(1, 4)))
        order[i], order[j] = order[j], order[i]
    calls: list[tuple[str, object]] = []
    t = 0.0
    for k in order:
        t += draw(_STEP_S)
        what = draw(_WHAT)
        seq = (base_seq + k) & 0xFFFFFFFF
        first = (base_first + 4 * k) & 0xFFFFFFFF
        ticks = (base_ticks + 1311 * k) & 0xFFFFFFFF
        if what == "lost":
            continue
        if what == "wild":
            seq, first, ticks = draw(U32), draw(U32), draw(U32)
        if what == "bytes":
            calls.append(("bytes", (draw(mutated(_imu(seq, first, ticks))), t)))
            continue
        if what == "status":
            calls.append(("status", (draw(st.one_of(U32, st.just((seq + 3) & 0xFFFFFFFF))), t)))
        elif what == "reply":
            calls.append(("reply", (draw(U32), draw(U32), t)))
        elif what == "link":
            calls.append(("down", t))
            calls.append(("up", t + draw(_DOWN_FOR_S)))
        elif what == "resend":
            calls.append(("resend", (draw(U32), draw(U32), t)))
        packet = hp.decode_imu_packet(_imu(seq, first, ticks, flags=hp.FLAG_RESENT if what == "resent" else 0))
        calls.append(("packet", (packet, t)))
        if what == "dup":
            calls.append(("packet", (packet, t)))
    return calls


class _NarrowTracker(hp.PacketTracker):
    """The tracker with a window of 256 seqs instead of 65 536: every check of the window reads
    ``self.MAX_JUMP``, so the same branches run (a jump past the window restarts the stream, a
    status beyond it is ignored), and the bound below is stated in it; an example then holds at
    most a few hundred gaps, not tens of thousands walked on every call (6 s of the suite)."""

    MAX_JUMP = 1 << 8


@FUZZ
@given(packet_streams(), st.booleans())
def test_tracker_releases_each_sample_once_in_order_with_bounded_state(calls: list[tuple[str, object]], started: bool) -> None:
    tracker = _NarrowTracker(100)
    if started:
        tracker.start(0)
    out: list[hp.SampleBatch] = []
    for what, args in calls:
        if what == "packet":
            packet, t = args  # type: ignore[misc]
            out.append(tracker.feed(packet, t))
        elif what == "bytes":
            data, t = args  # type: ignore[misc]
            out.append(tracker.feed_bytes(data, t)[1])
        elif what == "status":
            tracker.note_next_seq(*args)  # type: ignore[misc]
        elif what == "reply":
            out.append(tracker.on_resend_reply(*args))  # type: ignore[misc]
        elif what == "resend":
            a, b, t = args  # type: ignore[misc]
            tracker.note_resend_sent(a, b, t)
            tracker.resend_requests(t)
        elif what == "down":
            tracker.link_down(args)  # type: ignore[arg-type]
        elif what == "up":
            tracker.link_up(args)  # type: ignore[arg-type]
        # bounded state: a wild seq restarts the stream instead of opening a window of 2**32
        assert len(tracker._gaps) <= 2 * tracker.MAX_JUMP + 64
        assert tracker.held_packets <= len(calls)
        assert sum(len(r) for r in tracker.resend_requests(1e9)) <= 2 * len(calls) + 2
    out.append(tracker.flush())
    # within one stream (between restarts) sample indices strictly increase; every sample at most once
    for batch in out:
        if len(batch):
            assert np.all(np.diff(batch.sample_index) > 0) or tracker.stats.restarts > 0
    total = sum(len(b) for b in out)
    assert total == tracker.stats.samples_out


@FUZZ_100
@given(st.lists(st.one_of(st.binary(max_size=40), st.builds(_imu, U32, U32, U32).flatmap(mutated)), max_size=30))
def test_sensor_stream_on_random_records_gives_finite_samples(payloads: list[bytes]) -> None:
    from legrep.live_core import SensorInfo, SensorStream
    from legrep.model import Leg
    from legrep_sim.firmware import FirmwareConfig, SensorFirmware, array_source

    fw = SensorFirmware(array_source(np.arange(3) * 0.01, np.zeros((3, 3)), np.zeros((3, 3))), FirmwareConfig(serial="F", leg=1), connected=True)
    stream = SensorStream(SensorInfo.make(0, Leg.LEFT, fw.status(0.0)))
    last = -math.inf
    for k, payload in enumerate(payloads):
        block = stream.data(payload, 0.05 * k)
        _finite(block)
        for rec in (stream.reply(hp.ControlReply(hp.Opcode.RESEND, 0, payload[:8].ljust(8, b"\0")), 0.05 * k), stream.poll(0.05 * k + 10)):
            _finite(rec)
        if block is not None and len(block):
            assert block.time_s[0] >= last
            last = float(block.time_s[-1])
    _finite(stream.flush())


# --------------------------------------------------------------------------- SLIP
@FUZZ
@given(
    st.lists(st.binary(min_size=1, max_size=60), min_size=1, max_size=12),
    st.binary(max_size=200),
    st.lists(st.integers(1, 9), min_size=1, max_size=20),
)
def test_slip_every_frame_after_garbage_is_recovered_in_any_slicing(frames: list[bytes], garbage: bytes, steps: list[int]) -> None:
    stream = garbage + b"".join(hp.slip_frame(f) for f in frames)
    deframer = hp.SlipDeframer()
    got: list[bytes] = []
    i = k = 0
    while i < len(stream):
        step = steps[k % len(steps)]
        got += deframer.feed_data(stream[i : i + step])
        i += step
        k += 1
    # the garbage can at most form frames of its own before the first END of the first frame
    assert got[len(got) - len(frames) :] == frames
    assert all(len(f) <= hp.MAX_FRAME for f in got)


@FUZZ
@given(st.binary(max_size=3000), st.integers(8, 64))
def test_slip_random_bytes_bounded_frames(data: bytes, max_frame: int) -> None:
    deframer = hp.SlipDeframer(max_frame=max_frame)
    frames = deframer.feed_data(data)
    assert all(0 < len(f) <= max_frame for f in frames)
    assert len(deframer._buf) <= max_frame
    for f in frames:
        try:
            hp.split_serial_frame(f)
        except PacketError:
            pass


# --------------------------------------------------------------------------- vendor decoders
def _wit(acc: tuple[int, int, int], gyr: tuple[int, int, int]) -> bytes:
    return struct.pack("<BB9h", 0x55, 0x61, *acc, *gyr, 0, 0, 0)


def _dot(ts_us: int, values: tuple[float, ...]) -> bytes:
    return struct.pack("<I6f", ts_us, *values) + bytes(12)


def _mw(module: int, register: int, n: int, v: int) -> bytes:
    return bytes([module, register]) + struct.pack(f"<{3 * n}h", *([v] * 3 * n))


def _pmd(mtype: int, ts_ns: int, frame_type: int, content: bytes) -> bytes:
    return bytes([mtype]) + struct.pack("<Q", ts_ns) + bytes([frame_type]) + content


def _delta(ref: tuple[int, int, int], width: int, count: int, fill: int) -> bytes:
    body = bytes([fill]) * ((3 * width * count + 7) // 8)
    return struct.pack("<3h", *ref) + bytes([width, count]) + body


def _polar_start(mtype: int, factor_bits: int) -> bytes:
    return bytes([0xF0, 0x02, mtype, 0, 0, 5, 1]) + struct.pack("<I", factor_bits)


I16 = st.integers(-32768, 32767)
F32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
VALID = {
    "witmotion": st.builds(_wit, st.tuples(I16, I16, I16), st.tuples(I16, I16, I16)).map(lambda b: (0, b)),
    "movella-dot": st.builds(_dot, U32, st.tuples(*[F32] * 6)).map(lambda b: (0, b)),
    "metamotion": st.builds(
        _mw, st.sampled_from([0x03, 0x13]), st.sampled_from([0x04, 0x05, 0x1C, 0x07]), st.sampled_from([1, 3]), I16
    ).map(lambda b: (0, b)),
    "polar-verity": st.one_of(
        st.builds(
            _pmd, st.sampled_from([2, 5]), st.integers(0, 2**64 - 1), st.sampled_from([0x00, 0x01, 0x02, 0x80, 0x81]),
            st.one_of(st.binary(max_size=60), st.builds(_delta, st.tuples(I16, I16, I16), st.integers(0, 40), st.integers(0, 255), st.integers(0, 255))),
        ).map(lambda b: (1, b)),
        st.builds(_polar_start, st.sampled_from([2, 5]), st.sampled_from([0x3E79DB23, 0x3D800000])).map(lambda b: (0, b)),
    ),
}


def _notifications(valid: st.SearchStrategy[tuple[int, bytes]]) -> st.SearchStrategy[list[tuple[tuple[int, bytes], float]]]:
    """Up to 40 notifications (valid, damaged or random, on a channel) with their arrival steps."""
    return st.lists(
        st.tuples(
            st.one_of(valid, valid.flatmap(lambda cb: mutated(cb[1]).map(lambda b: (cb[0], b))),
                      st.tuples(st.integers(0, 3), st.binary(max_size=80))),
            st.one_of(st.floats(0.0, 1e5), st.sampled_from([0.0, 1e-9, 1e9])),
        ),
        max_size=40,
    )


NOTIFICATIONS = {model: _notifications(valid) for model, valid in VALID.items()}
"""Built once (not per example: building and validating a strategy costs as much as drawing from it)."""


def _vendor_decoder_never_raises(model: str, data: st.DataObject) -> None:
    """Random and damaged notifications at random (also backwards and huge) arrival times."""
    dec = MODELS[model].make_decoder(MODELS[model].default_config)
    items = data.draw(NOTIFICATIONS[model])
    t = 0.0
    for (channel, payload), dt in items:
        t += dt
        try:
            block = dec.feed(channel, payload, t)
        except SensorError as exc:  # documented: a Polar start reply with an impossible scale factor
            assert model == "polar-verity" and channel == 0 and "\n" not in str(exc)
            continue
        _finite(block)
        if block is not None and len(block):
            assert np.all(np.diff(block.time_s) >= 0)
    _finite(dec.flush())
    assert all(math.isfinite(v) for v in dec.diagnostics().to_json().values())


@pytest.mark.parametrize("model", ["metamotion", "witmotion"])
@FUZZ_100
@given(data=st.data())
def test_vendor_decoder_never_raises_and_gives_finite_samples(model: str, data: st.DataObject) -> None:
    _vendor_decoder_never_raises(model, data)


@pytest.mark.parametrize("model", ["movella-dot", "polar-verity"])
@FUZZ
@given(data=st.data())
def test_vendor_decoder_never_raises_and_gives_finite_samples_200(model: str, data: st.DataObject) -> None:
    _vendor_decoder_never_raises(model, data)


def test_every_vendor_model_is_fuzzed() -> None:
    assert {"metamotion", "witmotion", "movella-dot", "polar-verity"} == set(MODELS)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_vendor_decoder_non_finite_values_never_reach_the_samples(model: str) -> None:
    """NaN/inf in a float payload (DOT) or a factor (Polar: refused in one line) never gives a sample."""
    dec = MODELS[model].make_decoder(MODELS[model].default_config)
    if model == "movella-dot":
        for k, bad in enumerate([math.nan, math.inf, -math.inf, 3e38]):
            _finite(dec.feed(0, _dot(1000 + 16667 * k, (bad, 0.0, 9.8, 0.0, 0.0, bad)), 1.0 + k / 60))
    elif model == "polar-verity":
        for bits in (0x7FC00000, 0x7F800000, 0xFF800000):  # NaN, +inf, -inf as float32
            with pytest.raises(SensorError) as info:
                dec.feed(0, _polar_start(2, bits), 0.0)
            assert "\n" not in str(info.value)


@FUZZ_100
@given(st.binary(max_size=200), st.lists(st.tuples(st.tuples(I16, I16, I16), st.tuples(I16, I16, I16)), min_size=1, max_size=10),
       st.lists(st.integers(1, 9), min_size=1, max_size=10))
def test_witmotion_every_frame_after_garbage_is_recovered(garbage: bytes, frames: list, steps: list[int]) -> None:
    from legrep.sensors.witmotion import WitMotionParser

    # Garbage can hold a chance header (0x55 0x61/0x71) that swallows what follows it: resync
    # happens at the next header after that chance frame, so the garbage ends with a break that a
    # real stream has too (one frame's length of bytes that is no header).
    stream = garbage + bytes(20) + b"".join(_wit(a, g) for a, g in frames)
    parser = WitMotionParser()
    accs = []
    i = k = 0
    while i < len(stream):
        a, _g, _ = parser.feed_data(stream[i : i + steps[k % len(steps)]])
        accs.append(a)
        i += steps[k % len(steps)]
        k += 1
    acc = np.concatenate(accs)
    want = np.array([a for a, _ in frames], dtype=np.float64) / 32768 * 16
    assert acc.shape[0] >= len(frames)
    assert np.array_equal(acc[-len(frames) :], want)


# --------------------------------------------------------------------------- importers, IMU CSV
HEADERS = [
    "time_s,acc_x_g,acc_y_g,acc_z_g,gyr_x_dps,gyr_y_dps,gyr_z_dps",
    '"Time (s)","Acceleration x (m/s^2)","Acceleration y (m/s^2)","Acceleration z (m/s^2)"',
    '"Time (s)","Gyroscope x (rad/s)","Gyroscope y (rad/s)","Gyroscope z (rad/s)"',
    "time,seconds_elapsed,z,y,x",
    "PacketCounter,SampleTimeFine,Acc_X,Acc_Y,Acc_Z,Gyr_X,Gyr_Y,Gyr_Z",
    "epoch (ms),time (01:00),elapsed (s),x-axis (g),y-axis (g),z-axis (g)",
    "Phone timestamp;sensor timestamp [ns];X [mg];Y [mg];Z [mg]",
    "",
]
CELL = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**30, 10**30).map(str),
    st.sampled_from(["", "nan", "inf", "-inf", "1e400", "0x10", '"', "a,b", "\ufeff", "1,5", " 1 "]),
    st.text(max_size=6),
)


_HEADER = st.sampled_from(HEADERS)


@functools.lru_cache(maxsize=None)
def _rows(ncol: int) -> st.SearchStrategy[list[list[str]]]:
    """The rows of a table of ``ncol`` columns (one strategy per width, built once)."""
    return st.lists(st.lists(CELL, min_size=max(0, ncol - 1), max_size=ncol + 1), max_size=12)


@st.composite
def tables(draw: st.DrawFn) -> str:
    head = draw(_HEADER)
    ncol = max(1, head.count(",") + head.count(";") + 1)
    delim = ";" if ";" in head else ","
    rows = draw(_rows(ncol))
    text = "\n".join([head, *(delim.join(r) for r in rows)])
    if draw(st.booleans()):
        text = draw(mutated(text.encode("utf-8"))).decode("utf-8", errors="replace")
    return text


def _sensible(block: ImuBlock) -> None:
    _finite(block)
    assert np.all(np.diff(block.time_s) > 0)


@FUZZ
@given(st.lists(tables(), min_size=1, max_size=2), st.sampled_from(["acc.csv", "Gyroscope.csv", "x_ACC.txt", "TotalAcceleration.csv"]))
def test_importers_raise_only_input_errors(texts: list[str], name: str) -> None:
    try:
        imported = parse_tables([(f"{k}{name}", t) for k, t in enumerate(texts)])
    except LegrepError as exc:
        assert "\n" not in str(exc)
    else:
        _sensible(imported.block)


@FUZZ
@given(tables())
def test_imu_csv_reader_raises_only_input_errors_and_no_warning(text: str) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning printed before the error line is a failure
        try:
            block = parse_imu_csv(text, "fuzz.csv")
        except LegrepError as exc:
            assert "\n" not in str(exc)
        else:
            _sensible(block)


def test_imu_csv_overflowing_values_give_one_line_and_no_warning() -> None:
    """The malformed CSV that printed a numpy RuntimeWarning line before the clean error line."""
    import warnings

    head = HEADERS[0]
    for row in ("0,1e308,0,0,0,0,0\n0.01,-1e308,0,0,0,0,0", "0,1e400,0,1,0,0,0\n0.01,0,0,1,0,0,0", "0,1e200,1e200,1e200,0,0,0\n1,0,0,1,0,0,0"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                block = parse_imu_csv(f"{head}\n{row}\n", "w.csv")
            except LegrepError as exc:
                assert "\n" not in str(exc)
            else:
                _sensible(block)


def test_analyze_of_huge_finite_values_is_one_line_without_a_numpy_warning(tmp_path, capfd) -> None:
    """1e308 in a CSV overflowed the pipeline's finiteness sum: a RuntimeWarning line came first,
    and the error called finite values NaN/inf."""
    from legrep.cli import main

    path = tmp_path / "huge_left.csv"
    path.write_text(f"{HEADERS[0]}\n0,1e308,1e308,1e308,0,0,0\n0.01,1e308,1e308,1e308,0,0,0\n")
    assert main(["analyze", "--left", str(path), "--no-history"]) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "RuntimeWarning" not in err and "physically possible" in err, err
