"""A recording's replay with the thighs in two processes (``replay_file(processes=True)``, the
default for long recordings): the second thigh's process replays the whole recording itself and
analyses only its leg; the result, the events, the samples each process hands on and every error
are those of the replay in one process."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from legrep import offline
from legrep import packets as hp
from legrep.cli import main
from legrep.errors import CalibrationError, RecordingError
from legrep.live_core import SensorInfo
from legrep.model import Leg
from legrep.recording import RecordingReader, RecordingWriter
from legrep.records import Kind, Record
from legrep.replay_batch import replay_file
from legrep.settings import Settings
from legrep_sim import protocol as fwp
from legrep_sim.firmware import FirmwareConfig, SensorFirmware, array_source
from legrep_sim.pelvis import simulate_with_pelvis
from legrep_sim.scenarios import SessionSpec, SetSpec
from test_offline_processes import _fingerprint, _spawned
from test_replay_batch import EDITS, apply_edits, base  # noqa: F401  (base: the fixture)


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small blocks (many steps per leg, their order crossed often); processes for any size."""
    import legrep.replay_batch as rb

    monkeypatch.setattr(rb, "MIN_SAMPLES", 300)
    monkeypatch.setattr(rb, "PROCESSES_MIN_BYTES", 0)


def write_recording(path: Path, signals: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], seed: int = 1) -> Path:
    """A recording of ``signals`` (per leg: time_s, acc_g, gyr_dps), each sensor's packets as the
    firmware frames them at an MTU of 247, arriving a few ms after their last sample, interleaved."""
    rng = np.random.default_rng(seed)
    legs = list(signals)
    writer = RecordingWriter(path, {"legs": legs, "settings": Settings().to_dict(), "transport": "test"})
    arrivals = []
    for i, name in enumerate(legs):
        t, acc, gyr = signals[name]
        fw = SensorFirmware(array_source(t, acc, gyr), FirmwareConfig(serial=f"C{i}", leg=i + 1), connected=True, mtu=247)
        info = SensorInfo.make(i, Leg.parse(name), fw.status(0.0), name=f"test-{name}")
        writer.write(Record.of_json(Kind.SENSOR, i, 0.0, info.to_json()))
        writer.write(Record(Kind.TX, i, 0.0, hp.start_request()))
        writer.write(Record(Kind.RX, i, 0.002, fwp.encode_control_reply(fwp.Opcode.START, 0, (0).to_bytes(4, "little"))))
        assert info.status is not None
        raw = np.column_stack([np.round(acc / info.status.acc_lsb_g), np.round(gyr / info.status.gyr_lsb_dps)])
        raw = np.clip(raw, -32768, 32767).astype(np.int16)
        per = fwp.samples_per_packet(247, 100)
        for k, a in enumerate(range(0, len(t), per)):
            ticks = 1000 * (i + 1) + int(hp.tick_offset(a, 100))
            arrival = float(t[min(a + per, len(t)) - 1]) + 0.004 + float(rng.exponential(0.008))
            arrivals.append((arrival, i, fwp.encode_imu_packet(k, a, ticks, raw[a : a + per])))
    for arrival, i, data in sorted(arrivals, key=lambda x: (x[0], x[1])):
        writer.write(Record(Kind.DATA, i, arrival, data))
    writer.close(max(a[0] for a in arrivals) + 0.1)
    return path


def _replay(path: Path, processes: bool, tmp: Path, **kw: Any) -> tuple[Any, ...]:
    """The replay's result, its events, and the bytes of every sample each process handed on
    (written to ``tmp`` by ``on_samples``, in the process that analysed the leg), with which
    process (here or not) ended which legs' samples."""
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    here = os.getpid()

    def on_samples(leg: Leg, block: Any) -> None:
        with open(tmp / leg.value, "ab") as fh:
            fh.write(block.time_s.tobytes() + block.acc_g.tobytes() + block.gyr_dps.tobytes())

    def on_samples_end(legs: list[Leg]) -> None:
        (tmp / f"end-{'here' if os.getpid() == here else 'child'}").write_text(",".join(leg.value for leg in legs))

    events: list[str] = []
    core, result, _ = replay_file(path, processes=processes, on_samples=on_samples, on_samples_end=on_samples_end,
                                  on_events=lambda _t, evs: events.extend(map(repr, evs)), **kw)  # fmt: skip
    files = {p.name: p.read_bytes() for p in sorted(tmp.iterdir())}
    return _fingerprint(result), events, list(map(repr, core.events)), files, result


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(EDITS, st.booleans())
def test_two_processes_replay_edited_recordings_as_one(base, tmp_path: Path, edits: list, keep_traces: bool) -> None:  # noqa: F811
    """Drops, swaps, duplicates, damage, resets, wild values, link events: the same in both."""
    meta, records = base
    path = tmp_path / "edited.legrep"
    with RecordingWriter(path, {k: v for k, v in meta.items() if k != "format"}, overwrite=True) as writer:
        for rec in apply_edits(records, edits):
            writer.write(rec)
    one = _replay(path, False, tmp_path / "one", keep_traces=keep_traces)
    two = _replay(path, True, tmp_path / "two", keep_traces=keep_traces)
    # each leg's samples handed on in the process that analyses it
    assert one[3].pop("end-here") == b"left,right" and two[3].pop("end-here") == b"left" and two[3].pop("end-child") == b"right"
    assert two[:4] == one[:4]
    assert len(one[3]["left"]) > 0 and len(one[3]["right"]) > 0


def test_a_recording_with_a_pelvis_in_two_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pelvis stays here (it needs both thighs' angles: the other thigh's process sends them)."""
    ps = simulate_with_pelvis(SessionSpec(sets=(SetSpec(3, 3),)), 5, place="belt")
    signals = {name: (s.time_s, s.acc_g, s.gyr_dps) for name, s in [*ps.session.signals.items(), ("pelvis", ps.pelvis)]}
    path = write_recording(tmp_path / "pelvis.legrep", signals)
    spawned = _spawned(monkeypatch)
    one = _replay(path, False, tmp_path / "one", keep_traces=False)
    angles: list[tuple[Leg, bytes]] = []
    two = _replay(path, True, tmp_path / "two", keep_traces=False, on_angle=lambda leg, t, a: angles.append((leg, a.tobytes())))
    assert spawned == [Leg.RIGHT]
    assert two[:3] == one[:3] and two[3]["pelvis"] == one[3]["pelvis"] and two[3]["end-here"] == b"left,pelvis"
    assert {leg for leg, _ in angles} == {Leg.LEFT, Leg.RIGHT}
    reps = two[4].reps
    assert len(reps) == 6 and all(r.pelvis_tilt_deg is not None for r in reps)


def _session(seed: int = 3) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    ps = simulate_with_pelvis(SessionSpec(sets=(SetSpec(3, 3),)), seed, place="belt")
    return {name: (s.time_s, s.acc_g, s.gyr_dps) for name, s in ps.session.signals.items()}


def test_the_errors_are_the_one_process_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record of a sensor never announced (raised where the serial replay raises it, here), and
    the other thigh never at rest (its process's calibration error, raised here in the serial order)."""
    signals = _session()
    good = write_recording(tmp_path / "good.legrep", signals)
    reader = RecordingReader(good)
    records = list(reader)
    k = len(records) // 2
    stray = Record(Kind.DATA, 7, records[k].t_s, records[k].payload)
    unknown = tmp_path / "unknown.legrep"
    with RecordingWriter(unknown, {k2: v for k2, v in reader.meta.items() if k2 != "format"}) as writer:
        for rec in records[:k] + [stray] + records[k:]:
            writer.write(rec)
    rng = np.random.default_rng(4)
    t = signals["right"][0]
    restless = write_recording(tmp_path / "restless.legrep", {
        "left": signals["left"], "right": (t, rng.normal(0, 1, (len(t), 3)), rng.normal(0, 200, (len(t), 3)))})  # fmt: skip
    spawned = _spawned(monkeypatch)
    for path, kind in ((unknown, RecordingError), (restless, CalibrationError)):
        messages = []
        for processes in (False, True):
            with pytest.raises(kind) as err:
                replay_file(path, processes=processes, keep_traces=False)
            assert type(err.value) is kind
            messages.append(str(err.value))
        assert messages[0] == messages[1] and "\n" not in messages[0], messages
    assert spawned == [Leg.RIGHT, Leg.RIGHT]
    assert not offline.LegProcess._open  # every child reaped, every pipe closed


@pytest.mark.skipif(not offline.use_processes(2), reason="one core or no fork here: the CLI replays in one process")
def test_export_when_the_other_process_cannot_write_its_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The right thigh's file cannot be made (its process writes it): one line, as in one process,
    and no file of the left thigh either (nor any part of one)."""
    path = write_recording(tmp_path / "s.legrep", _session())
    seen = []
    for serial in ("1", ""):
        monkeypatch.setenv("LEGREP_SERIAL", serial)
        out = tmp_path / f"out{serial}"
        (out / "imu_right.csv.part").mkdir(parents=True)
        assert main(["export", str(path), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "imu_right.csv.part" in err and "Traceback" not in err, err
        assert sorted(p.name for p in out.iterdir()) == ["imu_right.csv.part"]
        seen.append(err.replace(str(out), "OUT"))
    assert seen[0] == seen[1]
    for serial in ("1", ""):  # and the files it writes when it can: the same bytes
        monkeypatch.setenv("LEGREP_SERIAL", serial)
        out = tmp_path / f"ok{serial}"
        assert main(["export", str(path), "--out", str(out)]) == 0
    capsys.readouterr()
    assert {p.name: p.read_bytes() for p in (tmp_path / "ok1").iterdir()} == {p.name: p.read_bytes() for p in (tmp_path / "ok").iterdir()}
    assert len(list((tmp_path / "ok").iterdir())) == 4


def _mapped_kib(path: Path) -> int | None:
    """This process's resident KiB of its maps of ``path`` (/proc/self/smaps; None without it)."""
    try:
        lines = Path("/proc/self/smaps").read_text().splitlines()
    except OSError:
        return None
    total, inside = 0, False
    for line in lines:
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5:  # a mapping's first line
            inside = len(head) >= 6 and head[5] == str(path)
        elif inside and line.startswith("Rss:"):
            total += int(head[1])
    return total


@pytest.mark.skipif(_mapped_kib(Path("/")) is None, reason="no /proc/self/smaps here")
def test_a_replay_gives_back_the_pages_it_has_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The recording is mapped, not copied, and the pages read are given back as the reading goes:
    memory flat in the recording's length (the pages stay in the page cache). (Windows of a few
    hundred records: a small file has many.)"""
    import legrep.recording as lr
    import legrep.replay_batch as rb

    monkeypatch.setattr(lr, "WALK_RECORDS", 200)
    monkeypatch.setattr(rb, "WINDOW_RECORDS", 200)
    path = write_recording(tmp_path / "s.legrep", _session())
    size_kib = path.stat().st_size // 1024
    assert size_kib > 100
    reader = RecordingReader(path)
    assert not isinstance(reader.data, bytes)
    after_open = _mapped_kib(path)
    assert after_open is not None and after_open < size_kib / 4, (after_open, size_kib)
    core, result, _ = replay_file(reader, processes=False, keep_traces=False)
    after_replay = _mapped_kib(path)
    assert after_replay is not None and after_replay < size_kib / 4, (after_replay, size_kib)
    assert len(result.reps) == 6
    assert sum(1 for _ in reader) == reader.records - 1 and _mapped_kib(path) < size_kib / 4  # (iterating too)
