"""Recordings: written as packets arrive, survive a kill, replay through the live path identically."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from legrep_sim import protocol as fwp
from legrep_sim.firmware import FirmwareConfig, SensorFirmware, array_source
from legrep_sim.scenarios import SessionSpec, SetSpec, simulate
from legrep import packets as hp
from legrep.cli import main
from legrep.errors import RecordingError
from legrep.imu_csv import read_imu_csv
from legrep.live_core import SensorInfo, SessionCore
from legrep.model import Leg
from legrep.offline import analyze_arrays
from legrep.recording import RecordingReader, RecordingWriter
from legrep.records import Kind, Record
from legrep.replay import replay_core, replay_recording
from legrep.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
LEGS = (Leg.LEFT, Leg.RIGHT)


_SESSIONS: dict[tuple[int, bool, int], tuple[bytes | None, tuple]] = {}  # type: ignore[type-arg]


def run_session(path: Path | None, seed: int = 5, faults: bool = True, reps: int = 3):
    """A session driven in-process (no transport): firmware -> records -> writer + SessionCore
    (one set of ``reps`` reps per leg, ~42 s for 3; faults at 5, 9 and 12 s).

    Made once per test process for each ``(seed, faults, reps)`` (1 s each; six modules ask for
    one): a later call gets the same objects, and its ``path`` a copy of the recording written."""
    key = (seed, faults, reps)
    if key in _SESSIONS and (path is None or _SESSIONS[key][0] is not None):
        data, made = _SESSIONS[key]
        if path is not None and data is not None:
            Path(path).write_bytes(data)
        return made
    made = _run_session(path, seed, faults, reps)
    _SESSIONS[key] = (Path(path).read_bytes() if path is not None else None, made)
    return made


def _run_session(path: Path | None, seed: int, faults: bool, reps: int):  # type: ignore[no-untyped-def]
    sim = simulate(SessionSpec(sets=(SetSpec(reps, reps),)), seed=seed)
    rng = np.random.default_rng(seed)
    duration = float(max(s.true_time_s[-1] for s in sim.signals.values()))
    fws = []
    for i, leg in enumerate(LEGS):
        sig = sim.signals[leg.value]
        fws.append(SensorFirmware(
            array_source(sig.true_time_s, sig.acc_g, sig.gyr_dps),
            FirmwareConfig(serial=f"B00{i}", leg=i + 1, drift_ppm=(60, -40)[i], clock_offset_ticks=1000 * (i + 1)),
            connected=True, mtu=247,
        ))
    settings = Settings()
    meta = {"legs": ["left", "right"], "settings": settings.to_dict(), "transport": "in-process"}
    writer = RecordingWriter(path, meta) if path is not None else None
    core = SessionCore(LEGS, settings, keep_samples=True)
    all_events: list = []

    def handle(rec: Record) -> None:
        if writer is not None:
            writer.write(rec)
        all_events.extend(core.process(rec))

    def control(i: int, request: bytes, t: float) -> None:
        handle(Record(Kind.TX, i, t, request))
        handle(Record(Kind.RX, i, t + 0.004, fws[i].handle_control(request, t + 0.002)))

    for i, leg in enumerate(LEGS):
        info = SensorInfo.make(i, leg, fws[i].status(0.0), address=f"AA:BB:CC:00:00:0{i}", name=fws[i].config.name)
        handle(Record.of_json(Kind.SENSOR, i, 0.0, info.to_json()))
        handle(Record.of_json(Kind.EVENT, i, 0.0, {"type": "connect"}))
    for i in range(2):
        control(i, hp.time_sync_request(i), 0.01)
        control(i, hp.start_request(), 0.02)
    schedule = [(5.0, 0, fwp.FaultKind.LOSE, 3), (9.0, 1, fwp.FaultKind.CORRUPT, 2), (12.0, 1, fwp.FaultKind.DUPLICATE, 2)]
    if not faults:
        schedule = []
    t = 0.02
    while t < duration:
        t = round(t + 0.02, 6)
        while schedule and schedule[0][0] <= t:
            _, i, kind, arg = schedule.pop(0)
            fws[i].inject_fault(kind, arg, now_s=t)
        for i in range(2):
            for data in fws[i].advance(t):
                handle(Record(Kind.DATA, i, t + 0.003 + float(rng.exponential(0.01)), data))
        for i, request in core.resend_requests(t + 0.02):
            control(i, request, t + 0.02)
    for i in range(2):
        control(i, hp.stop_request(), duration + 0.05)
        for data in fws[i].advance(duration + 0.06):
            handle(Record(Kind.DATA, i, duration + 0.07, data))
    if writer is not None:
        writer.close(duration + 0.1)
    result = core.finish()
    return sim, fws, core, result, all_events


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("rec") / "session.legrep"
    return (path, *run_session(path))


def test_live_counts_and_samples(recorded) -> None:
    path, sim, fws, core, result, events = recorded
    for i, leg in enumerate(LEGS):
        idx, true_t, _, raw = fws[i].produced.arrays()
        block = core.samples(leg)
        assert len(block) == idx.size
        assert np.array_equal(block.acc_g, raw[:, :3].astype(float) * (fws[i].acc_range_g / 32768))
        assert np.abs(block.time_s - true_t).max() < 0.012
        offline = analyze_arrays(**{leg.value: (true_t, block.acc_g, block.gyr_dps)})
        assert len(result.reps_of(leg)) == len(offline.reps) == 3
    left, right = result.diagnostics["left"].link, result.diagnostics["right"].link
    assert left is not None and left.resent_used >= 3
    assert right is not None and right.corrupt == 2


def test_replay_is_identical_to_live(recorded) -> None:
    path, sim, fws, core, result, events = recorded
    reader = RecordingReader(path)
    assert reader.clean_end and reader.truncated is None
    assert reader.meta["format"] == 1 and reader.meta["legs"] == ["left", "right"]
    sensors = reader.sensors()
    assert [s["leg"] for s in sensors] == ["left", "right"] and sensors[0]["rate_hz"] == 100
    replayed, replay_events = replay_recording(path)
    assert replayed.reps == result.reps and replayed.sets == result.sets
    assert replay_events == events
    core2, _, _ = replay_core(path, keep_samples=True)
    for leg in LEGS:
        a, b = core.samples(leg), core2.samples(leg)
        assert np.array_equal(a.time_s, b.time_s) and np.array_equal(a.gyr_dps, b.gyr_dps)


def test_record_round_trip_and_unknown_kinds(tmp_path: Path) -> None:
    path = tmp_path / "r.legrep"
    recs = [
        Record(Kind.DATA, 0, 1.5, bytes(range(256))),
        Record(Kind.TX, 1, 2.25, b"\x05\x01\x00\x00\x00"),
        Record(99, None, 3.0, b"from the future"),
        Record.of_json(Kind.EVENT, None, 4.0, {"type": "note", "text": "hello"}),
    ]
    with RecordingWriter(path, {"legs": ["left"]}) as w:
        for r in recs:
            w.write(r)
    got = list(RecordingReader(path))
    assert got[:4] == recs and got[-1].kind == Kind.END
    with pytest.raises(RecordingError, match="exists"):
        RecordingWriter(path, {"legs": ["left"]})


def test_truncated_at_any_byte_opens_and_keeps_complete_records(recorded, tmp_path: Path, caplog) -> None:
    path = recorded[0]
    data = path.read_bytes()
    full = list(RecordingReader(path))
    # Offsets of record ends, to know what must survive a cut.
    ends = []
    pos = len(b"LEGREP-REC 1\n")
    while pos < len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        pos += 8 + length
        ends.append(pos)
    rng = np.random.default_rng(9)
    cuts = sorted(set(rng.integers(ends[0] + 1, len(data), 25).tolist()) | {len(data) - 1, ends[5], ends[5] + 3})
    replay_at = set(cuts[-1:] + cuts[len(cuts) // 2 : len(cuts) // 2 + 2])
    for cut in cuts:
        p = tmp_path / f"cut{cut}.legrep"
        p.write_bytes(data[:cut])
        caplog.clear()
        reader = RecordingReader(p)
        complete = sum(1 for e in ends[1:] if e <= cut)
        records = list(reader)
        assert records == full[:complete]
        if cut in ends:
            assert reader.truncated is None
        else:
            assert reader.truncated is not None and "incomplete" in reader.truncated and "\n" not in reader.truncated
            assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1
        assert not reader.clean_end
        if cut in replay_at and cut > len(data) // 4:  # long enough to hold the calibration pose
            result, _ = replay_recording(p)
            assert len(result.reps) <= len(recorded[4].reps)


def test_damaged_and_foreign_files(tmp_path: Path, recorded) -> None:
    data = recorded[0].read_bytes()
    bad = bytearray(data)
    bad[len(data) // 2] ^= 0xFF  # a flipped byte in the middle: that record is skipped, the rest read
    p = tmp_path / "bad.legrep"
    p.write_bytes(bytes(bad))
    reader = RecordingReader(p)
    good = RecordingReader(recorded[0])
    assert len(reader.skipped) == 1 and reader.records == good.records - 1
    kept = list(reader)
    kept_set = set(kept)
    assert kept == [r for r in good if r in kept_set]  # the others, in order
    q = tmp_path / "notrec.csv"
    q.write_text("time_s,acc_x_g\n")
    with pytest.raises(RecordingError, match="a legrep recording expected"):
        RecordingReader(q)
    with pytest.raises(RecordingError, match="cannot read recording"):
        RecordingReader(tmp_path / "missing.legrep")
    r = tmp_path / "nolegs.legrep"
    RecordingWriter(r, {}).close()
    with pytest.raises(RecordingError, match="non-empty 'legs' list"):
        replay_recording(r)


def test_killed_writer_loses_no_record_it_wrote(tmp_path: Path) -> None:
    """A writer process killed with SIGKILL mid-session: the file opens, and every record whose
    ``write`` had returned (the writer says so on stdout after each) is there, in order."""
    path = tmp_path / "killed.legrep"
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from legrep.recording import RecordingWriter
        from legrep.records import Kind, Record
        w = RecordingWriter({str(path)!r}, {{"legs": ["left"]}})
        i = 0
        while True:
            w.write(Record(Kind.DATA, 0, time.time(), bytes(200) + i.to_bytes(4, "little")))
            print(i, flush=True)
            i += 1
            time.sleep(0.002)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        waited = 0
        while not (path.exists() and path.stat().st_size > 20_000):
            if proc.poll() is not None or waited > 400:  # a guard against a hang, not a speed limit
                pytest.fail(f"the writer stopped or wrote under 20 kB in 20 s (exit code {proc.poll()})")
            time.sleep(0.05)
            waited += 1
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    written = [int(line) for line in out.split()]
    reader = RecordingReader(path)
    recs = list(reader)
    assert len(recs) > 50 and not reader.clean_end
    counters = [int.from_bytes(r.payload[200:], "little") for r in recs]
    assert counters == list(range(len(recs)))
    assert written and counters[-1] >= written[-1]  # nothing the writer had written is lost


def test_cli_replay_and_export(recorded, tmp_path: Path, capsys) -> None:
    path = recorded[0]
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count(" rep ") == len(recorded[4].reps)
    out_dir = tmp_path / "export"
    assert main(["export", str(path), "--out", str(out_dir)]) == 0
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["per_leg"]["left"]["reps"] == 3 and summary["per_leg"]["right"]["reps"] == 3
    assert (out_dir / "reps.csv").read_text().count("\n") == 1 + len(recorded[4].reps)
    for leg in LEGS:
        block = read_imu_csv(out_dir / f"imu_{leg.value}.csv")
        assert len(block) == len(recorded[3].samples(leg))
    # The exported CSVs analyse to the same counts.
    assert main(["analyze", "--left", str(out_dir / "imu_left.csv"), "--right", str(out_dir / "imu_right.csv")]) == 0
    capsys.readouterr()
    assert main(["replay", str(tmp_path / "nope.legrep")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read recording" in err
    # --set overrides the stored settings: an impossible min range finds no reps.
    assert main(["replay", str(path), "--quiet", "--set", "min_rom_deg=170"]) == 0
    assert " rep " not in capsys.readouterr().out
