"""Serial end to end: simulated firmware behind real pseudo-terminals, the host through pyserial."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from legrep_sim import protocol as fwp
from legrep_sim.firmware import FirmwareConfig, SensorFirmware, signal_source, still_source
from legrep_sim.scenarios import SessionSpec, SetSpec, simulate
from legrep_sim.serial_port import SerialPortSensor
from legrep.errors import SensorError
from legrep.model import Leg
from legrep.pipeline import analyze_arrays
from legrep.recording import RecordingReader
from legrep.replay import replay_recording
from legrep.transport.serial import SerialSensorLink, _describe_open_error, capture_serial

SPEED = 10.0
LEGS = (Leg.LEFT, Leg.RIGHT)


def test_session_over_two_ptys_with_faults(tmp_path: Path) -> None:
    """Two drifting sensors, packets lost, corrupted, duplicated and stalled on the way: every
    produced sample arrives exactly once, the legs line up in time, the rep counts equal
    ``analyze_arrays`` on the firmware's own samples, and a replay of the recording agrees."""
    sim = simulate(SessionSpec(sets=(SetSpec(4, 4),)), seed=3)
    # The sensors start streaming after the host has set them up (a few tenths of a wall second,
    # i.e. seconds at 10x): hold the still neutral pose until PAD_S so the session starts still.
    pad_s = 8.0
    duration_s = float(max(s.true_time_s[-1] for s in sim.signals.values())) + pad_s
    t0 = time.monotonic()

    def clock() -> float:
        return (time.monotonic() - t0) * SPEED

    ports: dict[Leg, str] = {}
    sensors: list[SerialPortSensor] = []
    try:
        for i, leg in enumerate(LEGS):
            sig = sim.signals[leg.value]
            fw = SensorFirmware(
                signal_source(sig, delay_s=pad_s),
                FirmwareConfig(serial=f"00A{i}", drift_ppm=(90, -70)[i], clock_offset_ticks=(12345, 2**32 - 900_000)[i]),
            )
            sensors.append(SerialPortSensor(fw, clock=clock).start())
            ports[leg] = sensors[-1].port
        sensors[0].schedule(16.0, lambda fw: fw.inject_fault(fwp.FaultKind.LOSE, 4))
        sensors[0].schedule(28.0, lambda fw: fw.inject_fault(fwp.FaultKind.STALL, 700))
        sensors[1].schedule(20.0, lambda fw: fw.inject_fault(fwp.FaultKind.CORRUPT, 3))
        sensors[1].schedule(33.0, lambda fw: fw.inject_fault(fwp.FaultKind.DUPLICATE, 5))
        sensors[1].schedule(38.0, lambda fw: fw.inject_fault(fwp.FaultKind.LOSE, 2))
        rec_path = tmp_path / "session.legrep"
        result, core, stats = capture_serial(ports, duration_s, recording=rec_path, clock=clock, keep_samples=True)
    finally:
        for s in sensors:
            s.stop()
    for s in sensors:
        assert s.error is None

    errors = {}
    for i, leg in enumerate(LEGS):
        fw = sensors[i].firmware
        idx, true_t, _, raw = fw.produced.arrays()
        block = core.samples(leg)
        # Every produced sample exactly once, in order, with its exact value.
        assert len(block) == idx.size > 0.9 * duration_s * 100
        acc = raw[:, :3].astype(float) * (fw.acc_range_g / 32768)
        gyr = raw[:, 3:].astype(float) * (fw.gyr_range_dps / 32768)
        assert np.array_equal(block.acc_g, acc) and np.array_equal(block.gyr_dps, gyr)
        errors[leg] = block.time_s + stats.origin_s - true_t
        # Rep counts equal the batch analysis of the very samples the sensor produced.
        offline = analyze_arrays(**{leg.value: (true_t, acc, gyr)})
        assert len(result.reps_of(leg)) == len(offline.reps) == 4
        for live, ref in zip(result.reps_of(leg), offline.reps):
            # start/end crossings are sharp; a peak time on a flat hold moves with a tenth of a degree
            assert live.start_s + stats.origin_s == pytest.approx(ref.start_s, abs=0.05)
            assert live.end_s + stats.origin_s == pytest.approx(ref.end_s, abs=0.05)
            assert live.peak_deg == pytest.approx(ref.peak_deg, abs=1.0)
            assert live.rom_deg == pytest.approx(ref.rom_deg, abs=1.0)
        diag = result.diagnostics[leg.value]
        assert diag["packets_lost_packets"] == 0
    d = result.diagnostics
    assert d["left"]["packets_resent_used"] >= 4 and d["right"]["packets_corrupt"] == 3
    assert d["right"]["packets_duplicates"] == 5 and d["right"]["packets_resent_used"] >= 5
    # Session clock: at 10x speed every wall millisecond of thread-scheduling jitter is 10 ms of
    # simulated latency, so the tolerance is 6 wall ms x SPEED (an idle machine gives < 10 ms; the
    # clock mapper's own accuracy is tested without threads in tests/test_clock.py).
    tol_s = 0.006 * SPEED
    for leg in LEGS:
        assert np.abs(errors[leg]).max() < tol_s, (leg, np.abs(errors[leg]).max())
    assert abs(np.median(errors[Leg.LEFT]) - np.median(errors[Leg.RIGHT])) < tol_s / 2

    # The recording replays through the same path to the same reps.
    reader = RecordingReader(rec_path)
    assert reader.clean_end and reader.truncated is None and reader.meta["legs"] == ["left", "right"]
    replayed, events = replay_recording(rec_path)
    assert replayed.reps == result.reps
    assert len(events) >= len(result.reps)


def test_missing_port_is_one_clear_line() -> None:
    with pytest.raises(SensorError, match=r"serial port /dev/ttyNOPE9 does not exist"):
        SerialSensorLink("/dev/ttyNOPE9")


def test_open_error_messages() -> None:
    denied = serial.SerialException(errno.EACCES, "could not open port /dev/ttyUSB0: [Errno 13] Permission denied: '/dev/ttyUSB0'")
    assert "permission denied opening serial port /dev/ttyUSB0" in _describe_open_error("/dev/ttyUSB0", denied)
    busy = serial.SerialException(errno.EBUSY, "[Errno 16] Device or resource busy")
    assert "is busy" in _describe_open_error("/dev/ttyUSB0", busy)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_permission_denied_real_file(tmp_path: Path) -> None:
    p = tmp_path / "ttyLOCKED"
    p.write_bytes(b"")
    p.chmod(0)
    with pytest.raises(SensorError, match="permission denied"):
        SerialSensorLink(str(p))


def test_silent_port_times_out_with_clear_error() -> None:
    master, slave = os.openpty()
    try:
        link = SerialSensorLink(os.ttyname(slave))
        try:
            with pytest.raises(SensorError, match=r"no reply to control request 0x08 within 0.3 s"):
                link.request(bytes([0x08]), timeout_s=0.3)
        finally:
            link.close()
    finally:
        os.close(master)
        os.close(slave)


def test_request_reply_and_line_noise() -> None:
    fw = SensorFirmware(still_source(), FirmwareConfig(rate_hz=50))
    with SerialPortSensor(fw, speed=1.0) as port:
        # Line noise before the first frame: the sensor's deframer resyncs at END.
        os.write(os.open(port.port, os.O_WRONLY | os.O_NOCTTY), b"\x11\x22\xdb\x33")
        link = SerialSensorLink(port.port)
        try:
            reply, sent, received, _ = link.request(bytes([fwp.Opcode.GET_STATUS]))
            assert reply.ok and received >= sent and len(reply.payload) == 32
            assert reply.payload[4:6] == (50).to_bytes(2, "little")
        finally:
            link.close()
