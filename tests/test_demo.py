"""``legrep demo`` through ``main(argv)``: the bundled session streamed by two virtual sensors over
the BLE stack, with a link drop, must give the bundled truth's counts and replay identically."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import BundledDemo
from legrep.cli import main
from legrep.commands.demo import RECORDINGS_DIR, plan_outages
from legrep.export import format_table
from legrep.diagnostics import LinkDiagnostics
from legrep.model import SessionResult
from legrep.replay import replay_recording

TRUTH = RECORDINGS_DIR / "straight_leg_raise" / "truth.json"


@pytest.mark.skipif(not TRUTH.exists(), reason="bundled recordings not present")
def test_demo_end_to_end_with_a_link_drop(bundled_demo: BundledDemo) -> None:
    """The shared demo run (tests/conftest.py: virtual time, one link drop, --out, targets)."""
    truth = json.loads(TRUTH.read_text())
    out = bundled_demo.stdout
    assert bundled_demo.code == 0, bundled_demo.stderr
    n_left = sum(1 for r in truth["reps"] if r["leg"] == "left")
    n_right = sum(1 for r in truth["reps"] if r["leg"] == "right")
    uneven = [s["set"] for s in truth["sets"] if s["uneven"]]
    assert f"Total: {n_left + n_right} reps (left {n_left}, right {n_right}) in {len(truth['sets'])} sets" in out
    assert f"UNEVEN in set {uneven[0]}" in out
    assert "1 drop(s), 1 reconnection(s)" in out and "0 packet(s) lost for good" in out
    # files: the recording replays to the same table; reps.csv has one row per rep
    recording, reps_csv, summary_json = (bundled_demo.file(*n) for n in (("session", ".lgr"), ("reps", ".csv"), ("summary", ".json")))
    for path in (recording, reps_csv, summary_json):
        assert path.stat().st_size > 0
    with open(reps_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n_left + n_right
    replayed, _ = replay_recording(recording)
    assert format_table(replayed) in out
    summary = json.loads(summary_json.read_text())
    assert json.dumps(summary)  # valid JSON written by legrep.export


def test_demo_rejects_bad_arguments_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--speed", "0", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--speed must be > 0, got 0" in err[0]
    assert main(["demo", "--disconnects", "-1", "--quiet"]) == 2
    assert "--disconnects must be >= 0" in capsys.readouterr().err


def test_outages_are_planned_during_reps() -> None:
    truth = {"reps": [{"start_s": 10.0 * k, "leg": "left"} for k in range(1, 21)]}
    plan = plan_outages(truth, 3, 220.0)
    assert [leg for leg, _, _ in plan] == ["left", "right", "left"]
    assert all(2.0 <= length <= 4.0 for _, _, length in plan)
    starts = [s for _, s, _ in plan]
    assert starts == sorted(starts) and all(abs(s - round(s / 10) * 10 - 0.3) < 1e-9 for s in starts)
    assert plan_outages(truth, 0, 220.0) == []


def test_capture_from_a_wired_sensor_on_a_pty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``legrep capture --serial PORT``: the firmware model behind a real pseudo-terminal."""
    from legrep_sim.firmware import FirmwareConfig, SensorFirmware, still_source
    from legrep_sim.serial_port import SerialPortSensor

    firmware = SensorFirmware(still_source(), FirmwareConfig(serial="0C01", leg=1))
    with SerialPortSensor(firmware) as sensor:
        code = main(["capture", "--serial", sensor.port, "--only", "left", "--duration", "1", "--out", str(tmp_path), "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "Total: 0 reps (left 0) in 0 sets" in out
    assert "stored as session 1" in out  # every captured session goes to the history
    replayed, _ = replay_recording(tmp_path / "session.lgr")
    received = _link(replayed, "left").samples_out
    produced = firmware.produced.arrays()[0].size
    assert received == produced and produced >= 75  # 1 s at 100 Hz (25 packets over the pty), every sample once


def _link(result: SessionResult, place: str) -> LinkDiagnostics:
    link = result.diagnostics[place].link
    assert link is not None, f"{place}: no link diagnostics"
    return link


def test_capture_without_an_adapter_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["capture", "--hci", f"tcp-client:127.0.0.1:{port}", "--duration", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("legrep capture: error: no Bluetooth adapter")
