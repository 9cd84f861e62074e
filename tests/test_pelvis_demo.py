"""``legrep demo --pelvis``: three simulated sensors (both thighs and the pelvis) over the real
BLE stack on virtual time; the recording carries the third sensor and replays to the same reps."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from legrep.cli import main
from legrep.commands.demo import run_demo
from legrep.drivers.sim import load_programme
from legrep.model import Leg
from legrep.recording import RecordingReader
from legrep.replay import replay_recording
from legrep.replay_batch import replay_file
from legrep.view import TerminalView
from legrep_sim import virtual_time
from legrep_sim.pelvis import simulate_with_pelvis
from legrep_sim.peripheral import SignalArrays
from legrep_sim.scenarios import SessionSpec, SetSpec


def pelvis_programme(seed: int = 11) -> tuple[dict[str, SignalArrays], dict[str, Any]]:
    """A short session with a pelvis (one set of 5 + 5 straight leg raises, typical sensor errors,
    the back arching on some reps), shaped as ``load_programme(..., pelvis=True)`` gives the
    bundled one: the same kind of session at a quarter of its length."""
    spec = SessionSpec(exercise="straight_leg_raise", sets=(SetSpec(5, 5),), rate_hz=100.0, errors="typical")
    ps = simulate_with_pelvis(spec, seed, arch_frac=0.4)
    signals = {**ps.session.signals, "pelvis": ps.pelvis}
    arrays = {leg: SignalArrays(sig.true_time_s, sig.acc_g, sig.gyr_dps) for leg, sig in signals.items()}
    truth = ps.session.truth_dict()
    truth["pelvis"] = [dataclasses.asdict(t) for t in ps.truth]
    return arrays, truth


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("pelvis-demo") / "session.lgr"
    stream = io.StringIO()
    programmes, truth = pelvis_programme()
    arches = [p["back_arch"] for p in truth["pelvis"]]
    assert any(arches) and not all(arches)  # reps with and without an arched back
    # three link drops during reps: the left thigh, the right thigh, then the pelvis
    outcome = virtual_time.run(run_demo(1.0, 3, recording=path, pelvis=True, view=TerminalView(stream, ansi=False),
                                        programmes=programmes, truth=truth))
    assert [leg for leg, _, _ in outcome.outages] == ["left", "right", "pelvis"]
    return outcome, path, stream.getvalue(), truth


def test_the_bundled_session_with_a_pelvis_has_three_sensors_and_pelvis_truth() -> None:
    """What ``legrep demo --pelvis`` streams (the demo itself runs on the shorter session above)."""
    arrays, truth = load_programme("straight_leg_raise", pelvis=True)
    assert set(arrays) == {"left", "right", "pelvis"} and len(truth["reps"]) == len(truth["pelvis"]) == 39
    assert {len(a.time_s) for a in arrays.values()} == {len(arrays["left"].time_s)}
    assert any(p["back_arch"] for p in truth["pelvis"]) and not all(p["back_arch"] for p in truth["pelvis"])


def test_three_sensors_over_ble_measure_the_pelvis(demo) -> None:
    outcome, _path, screen, truth = demo
    result = outcome.result
    assert len(result.reps) == len(truth["reps"])  # every rep counted, three link drops on the way
    assert outcome.live.stats.disconnects.get("pelvis") == 1 and outcome.live.stats.reconnects.get("pelvis") == 1
    pelvis = result.diagnostics["pelvis"]
    assert pelvis.link is not None and pelvis.link.lost_packets == 0  # the pelvis re-sent what it missed
    assert pelvis.pelvis is not None and pelvis.pelvis.reps_measured == len(result.reps)
    errors, flags = [], []
    for tr, pt in zip(truth["reps"], truth["pelvis"]):
        rep = min((r for r in result.reps if r.leg.value == tr["leg"]), key=lambda r: abs(r.start_s - outcome.programme_offset_s - tr["start_s"]))
        assert rep.pelvis_tilt_deg is not None
        errors.append(abs(rep.pelvis_tilt_deg - pt["pelvis_tilt_deg"]))
        flags.append(("back_arch" in rep.flags, pt["back_arch"]))
    assert float(np.mean(errors)) <= 1.0
    assert all(got == want for got, want in flags) and any(want for _, want in flags)
    assert "keep your back flat" in screen  # the live cue


def test_the_recording_carries_the_pelvis_and_replays_identically(demo) -> None:
    outcome, path, _, _ = demo
    reader = RecordingReader(path)
    assert reader.meta["legs"] == ["left", "right", "pelvis"]
    replayed, _ = replay_recording(path)
    assert replayed.reps == outcome.result.reps
    assert replayed.sets == outcome.result.sets
    _, batch, _ = replay_file(path)
    assert batch.reps == outcome.result.reps
    live_reps = [ev.rep for ev in outcome.live.events if hasattr(ev, "rep")]
    assert len(live_reps) == len(outcome.result.reps)


def test_demo_pelvis_through_main_and_bad_combination(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--pelvis", "--sensor", "witmotion", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--pelvis" in err[0]


def test_capture_three_wired_sensors_records_the_pelvis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``legrep capture --serial left=P1 --serial right=P2 --serial pelvis=P3``: three firmware
    models behind real pseudo-terminals; the pelvis is told its place (SET_LEG 3) and recorded."""
    from legrep_sim.firmware import FirmwareConfig, SensorFirmware, still_source
    from legrep_sim.serial_port import SerialPortSensor

    fws = [SensorFirmware(still_source(), FirmwareConfig(serial=f"0C0{i}", leg=0)) for i in (1, 2, 3)]
    with SerialPortSensor(fws[0]) as a, SerialPortSensor(fws[1]) as b, SerialPortSensor(fws[2]) as c:
        code = main(["capture", "--serial", f"left={a.port}", "--serial", f"right={b.port}", "--serial",
                     f"pelvis={c.port}", "--duration", "1", "--out", str(tmp_path), "--quiet", "--no-history"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert [fw.leg for fw in fws] == [1, 2, 3]
    assert RecordingReader(tmp_path / "session.lgr").meta["legs"] == ["left", "right", "pelvis"]
    replayed, _ = replay_recording(tmp_path / "session.lgr")
    produced = fws[2].produced.arrays()[0].size
    link = replayed.diagnostics["pelvis"].link
    assert link is not None and link.samples_out == produced >= 75  # 1 s at 100 Hz
    assert replayed.legs == (Leg.LEFT, Leg.RIGHT)
