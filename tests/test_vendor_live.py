"""Vendor sensors through the live loop: emulators on bumble -> bleak -> LiveSession -> recording.

For each vendor model two emulated sensors (left and right thigh) play a short simulated session;
``legrep demo --sensor MODEL``'s engine (:func:`legrep.commands.demo.run_vendor_demo`) finds them by
model, connects, starts them, and runs the very loop legrep sensors use (records -> SessionCore ->
analysis -> recording). The rep counts per leg and set must equal the simulator's truth exactly,
and a replay of the written recording must give the very same reps (same floats).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from legrep_sim import virtual_time
from legrep_sim.emulators import RATES_HZ
from legrep_sim.scenarios import SessionSpec, SetSpec, simulate
from legrep.cli import main
from legrep.commands import demo
from legrep.model import Leg
from legrep.sensors import get_model
from legrep.recording import RecordingReader
from legrep.replay import replay_core, replay_recording

MODELS = ["witmotion", "movella-dot", "metamotion", "polar-verity"]
REPS = {"left": 3, "right": 2}


def small_session(model: str, seed: int = 21) -> Any:
    spec = SessionSpec(
        legs=("left", "right"),
        sets=(SetSpec(REPS["left"], REPS["right"], order="alternating", up_s=1.0, hold_s=0.5, down_s=1.2, bottom_rest_s=0.8),),
        rate_hz=RATES_HZ[model],
    )
    return simulate(spec, seed=seed)


def _read_records(path: Path) -> tuple[dict[str, Any], list[Any]]:
    reader = RecordingReader(path)
    return reader.meta, list(reader)


@pytest.mark.parametrize("model", MODELS)
def test_vendor_demo_counts_and_replays_identically(model: str, tmp_path: Path) -> None:
    """Emulated sensors over bumble on virtual time, the left one dropped once before the first rep:
    the driver reconnects, configures and restarts it; every notification sent while connected
    arrives and is recorded once, the counts are exact, and the replay equals the live session."""
    sim = small_session(model)
    recording = tmp_path / "session.lgr"
    first_s = min(r.start_s for r in sim.reps)
    assert first_s > 3.0  # the still lead-in the outage needs
    outages = [("left", 0.1 * first_s, 0.2 * first_s)]  # a drop in the still lead-in (no rep lost)
    outcome = virtual_time.run(
        demo.run_demo(1.0, sensor=model, recording=recording, programmes=dict(sim.signals), truth=sim.truth_dict(),
                      outages=outages, keep_samples=True)
    )
    result = outcome.result
    stats = outcome.live.stats
    assert stats.disconnects == {"left": 1} and stats.reconnects == {"left": 1}
    emus = outcome.firmwares
    assert emus["left"].disconnections == emus["right"].disconnections + 1  # the outage (both: the end)
    for leg, want in REPS.items():
        got = result.reps_of(Leg(leg))
        assert len(got) == want == len(sim.reps_of(leg)), (model, leg, [round(r.peak_deg, 1) for r in got])
        for rep, truth in zip(got, sim.reps_of(leg)):
            assert rep.rom_deg == pytest.approx(truth.rom_deg, abs=12.0)
    assert result.uneven
    # the live loop saw every rep as an event, while streaming
    assert len(outcome.live.stats.rep_latency_s) == sum(REPS.values())
    # the recording names the model and its configuration: replay decodes it the same way
    meta, records = _read_records(recording)
    assert meta["demo"]["sensor"] == model
    sensors = [json.loads(r.payload) for r in records if r.kind == 2]
    assert [s["model"] for s in sensors] == [model, model]
    assert all(set(s["config"]) == {"rate_hz", "acc_range_g", "gyr_range_dps"} for s in sensors)
    assert sum(1 for r in records if r.kind == 3) > 100
    uuids = [u.lower() for u in get_model(model).notify_uuids]
    for index, leg in enumerate(("left", "right")):
        # every streamed notification sent while connected arrived and was recorded once
        got: dict[str, int] = {}
        for r in records:
            if r.kind == 3 and r.sensor == index and r.payload[0] < len(uuids):
                got[uuids[r.payload[0]]] = got.get(uuids[r.payload[0]], 0) + 1
        sent = emus[leg].sent_by_uuid
        assert sum(sent.values()) > 50 and {u: got.get(u, 0) for u in sent} == sent, leg
    events = [json.loads(r.payload)["type"] for r in records if r.kind == 7 and r.sensor == 0]
    assert events == ["connect", "start", "disconnect", "reconnect", "stop"]
    # the decoded samples of the leg that never dropped: all of them for single-stream models (pairing
    # acc and gyro may drop a few at the edges), on the sensor's own time span, strictly increasing
    core, replayed, _ = replay_core(recording, keep_samples=True)  # (replay_recording, with the samples kept)
    core_samples = core.samples(Leg.RIGHT)
    signal = sim.signals["right"]
    if model in ("witmotion", "movella-dot"):
        assert len(core_samples) == len(signal.time_s)
    else:
        assert len(signal.time_s) - 40 <= len(core_samples) <= len(signal.time_s)
    span = core_samples.time_s[-1] - core_samples.time_s[0]
    assert span == pytest.approx(signal.time_s[-1] - signal.time_s[0], rel=0.02, abs=0.5)
    assert np.all(np.diff(core_samples.time_s) > 0)
    assert replayed.reps == result.reps
    assert [(s.left_reps, s.right_reps) for s in replayed.sets] == [(s.left_reps, s.right_reps) for s in result.sets]
    vendor = replayed.diagnostics["left"].vendor
    assert vendor is not None and vendor.model == model
    assert vendor.time_from_arrival is (model in ("witmotion", "metamotion"))


def test_demo_command_with_sensor_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``legrep demo --sensor polar-verity --quiet --out DIR`` end to end (a short session instead of
    the bundled one), then ``legrep replay`` of what it wrote prints the same table."""
    model = "polar-verity"
    sim = small_session(model, seed=22)
    import legrep.drivers.sim

    monkeypatch.setattr(legrep.drivers.sim, "vendor_programme", lambda session, rate_hz: (sim.signals, sim.truth_dict(), sim.duration_s))
    out = tmp_path / "out"
    assert main(["demo", "--sensor", model, "--quiet", "--speed", "max", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "emulated polar-verity sensors" in text
    assert f"Total: {sum(REPS.values())} reps (left {REPS['left']}, right {REPS['right']})" in text
    for name in ("session.lgr", "reps.csv", "summary.json"):
        assert (out / name).exists(), name
    assert len((out / "reps.csv").read_text().strip().splitlines()) == 1 + sum(REPS.values())
    table = text[text.index("Set 1") : text.index("Link:")]
    assert main(["replay", str(out / "session.lgr"), "--quiet"]) == 0
    assert table.strip() in capsys.readouterr().out


def test_demo_sensor_option_rejects_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--sensor", "fitbit", "--quiet"])
    assert "fitbit" in capsys.readouterr().err
    assert main(["demo", "--sensor", "witmotion", "--disconnects", "-1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--disconnects must be >= 0, got -1" in err[0]


def test_capture_and_scan_find_vendor_sensors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hardware path (``legrep capture --sensor movella-dot``, ``legrep scan``) against emulated
    sensors on an in-memory radio: scan by model, legs from --left/--right (remembered), record,
    analyse; the legs must not be swapped and replay must agree."""
    import argparse

    from legrep_sim.emulators import make_peripheral
    from legrep_sim.peripheral import SimClock
    from legrep_sim.virtual_ble import VirtualRadio
    from legrep.commands.capture import capture
    from legrep.commands.scan import scan
    from legrep.transport.ble import load_assignment

    monkeypatch.setenv("LEGREP_CONFIG", str(tmp_path / "sensors.json"))
    model = "movella-dot"
    sim = small_session(model, seed=23)
    out = tmp_path / "out"
    out.mkdir()

    async def go() -> tuple[list[str], Any, dict[str, str]]:
        clock = SimClock(1.0)
        radio = VirtualRadio()
        # index 0 plays the right leg: address order alone would swap the legs
        emus = {leg: make_peripheral(model, radio, sim.signals[leg], clock, index=i) for i, leg in enumerate(("right", "left"))}
        try:
            for emu in emus.values():
                await emu.start()
            backends = radio.backends()
            lines = await scan(2.0, False, None, backends=(backends.scanner, backends.client), clock=clock)
            args = argparse.Namespace(
                sensor=model, only=None, left=emus["left"].address, right=emus["right"].address, hci=None,
                scan_timeout=5.0, duration=sim.duration_s + 1.5, spec=[], serial=[],
            )
            live = await capture(args, out, [], backends=(backends.scanner, backends.client), clock=clock)
            return lines, live, {leg: e.address.upper() for leg, e in emus.items()}
        finally:
            for emu in emus.values():
                await emu.stop()
            await radio.close()

    lines, live, addresses = virtual_time.run(go())
    assert lines[0].split()[:2] == ["model", "name"]
    rows = [line.split() for line in lines[1:]]
    assert sorted(r[0] for r in rows) == [model, model] and {a for a in addresses.values()} <= {x for r in rows for x in r}
    result = live.result
    for leg, want in REPS.items():
        assert len(result.reps_of(Leg(leg))) == want, leg
    assert {leg.value: addr for leg, addr in load_assignment().items()} == addresses  # remembered
    replayed, _ = replay_recording(out / "session.lgr")
    assert replayed.reps == result.reps
    meta, _records = _read_records(out / "session.lgr")
    assert meta["sensor_model"] == model
