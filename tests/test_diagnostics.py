"""Typed diagnostics (legrep.diagnostics): the JSON written before they were typed still reads and
writes back unchanged, the current code writes the same keys, and a bad file is one line."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest

from conftest import BundledDemo
from legrep.cli import main
from legrep.diagnostics import (
    ArrivalTiming,
    CalibrationDiagnostics,
    ClockDiagnostics,
    Diagnostics,
    LinkDiagnostics,
    MountingDiagnostics,
    OrientationDiagnostics,
    PelvisDiagnostics,
    RepDiagnostics,
    SensorDiagnostics,
    VendorDiagnostics,
    WitmotionDiagnostics,
)
from legrep.errors import InputError
from legrep.export import _plain

OLD = Path(__file__).parent / "data" / "diagnostics-bfb0597"
"""Summaries written by the code at bfb0597, before the diagnostics were typed (README.md there)."""
OLD_FILES = sorted(OLD.glob("*.summary.json"))


def _old(name: str) -> dict[str, dict[str, float]]:
    data: dict[str, dict[str, float]] = json.loads((OLD / f"{name}.summary.json").read_text())["diagnostics"]
    return data


def test_the_old_summaries_are_there() -> None:
    names = {p.name.split(".")[0] for p in OLD_FILES}
    assert names == {"analyze-bent_knee_raise", "demo-legrep-pelvis", "demo-witmotion", "demo-movella-dot",
                     "demo-metamotion", "demo-polar-verity"}  # fmt: skip


@pytest.mark.parametrize("path", OLD_FILES, ids=lambda p: p.name.split(".")[0])
def test_a_summary_written_by_the_old_code_reads_typed_and_writes_back_the_same(path: Path) -> None:
    old = json.loads(path.read_text())["diagnostics"]
    diag = Diagnostics.from_json(old)
    assert list(diag) == list(old)
    for place, sensor in diag.items():
        assert sensor.extra == {}, (place, sensor.extra)  # every key the old code wrote is known
        assert sensor.calibration is not None and sensor.orientation is not None
        assert isinstance(sensor.samples, int) and sensor.samples == old[place]["samples"] > 0
        assert isinstance(sensor.orientation.bias_updates, int) and isinstance(sensor.orientation.gyro_bias_dps[0], float)
        if place != "pelvis":
            assert sensor.mounting is not None and sensor.mounting.axis_found is True and sensor.reps is not None
        if sensor.link is not None:
            assert sensor.clock is not None and sensor.clock.ready is True and isinstance(sensor.clock.synced, bool)
            assert isinstance(sensor.link.samples_out, int) and sensor.link.samples_out == old[place]["packets_samples_out"]
    back = _plain(diag.to_json())
    assert back == old  # same keys, same values (1.0 == True, 3.0 == 3)
    for place in old:
        assert list(back[place]) == list(old[place])  # in the same order
    # and through JSON text, as a file written now and read by the old code's readers would be
    assert json.loads(json.dumps(back)) == old


def test_the_vendor_and_pelvis_parts_are_typed() -> None:
    wit = Diagnostics.from_json(_old("demo-witmotion"))["left"].vendor
    assert wit is not None and wit.model == "witmotion" and wit.time_from_arrival is True
    assert isinstance(wit.decoder, WitmotionDiagnostics) and wit.decoder.frames > 0
    assert wit.decoder.timing.pullbacks == _old("demo-witmotion")["left"]["witmotion_arrival_pullbacks"]
    for model, from_arrival in (("movella-dot", False), ("metamotion", True), ("polar-verity", False)):
        v = Diagnostics.from_json(_old(f"demo-{model}"))["right"].vendor
        assert v is not None and v.model == model and v.time_from_arrival is from_arrival and v.bad_records == 0
    pelvis = Diagnostics.from_json(_old("demo-legrep-pelvis"))["pelvis"]
    assert pelvis.pelvis is not None and pelvis.mounting is None and pelvis.calibration is not None
    assert pelvis.pelvis.reps_measured > 0 and pelvis.pelvis.reps_without_pelvis == 0 and pelvis.pelvis.tilt_axis is not None
    assert pelvis.calibration.sample_interval_s is None  # the pelvis never reported it


NEW_KEYS = {"neutral_reanchors"}
"""Keys legrep writes that the summaries of bfb0597 lack (counts added since; old files read without them)."""


def _keys(diag: dict[str, dict[str, object]]) -> dict[str, list[str]]:
    return {k: sorted(set(v) - NEW_KEYS) for k, v in diag.items()}


def test_the_current_code_writes_the_keys_the_old_code_wrote(tmp_path: Path, bundled_demo: BundledDemo) -> None:
    """Offline (analyze of a CSV pair) and live (the shared demo: legrep sensors, a link drop)."""
    summary = tmp_path / "summary.json"
    assert main(["analyze", str(Path(__file__).parents[1] / "recordings" / "bent_knee_raise"), "--summary", str(summary)]) == 0
    new = json.loads(summary.read_text())["diagnostics"]
    assert _keys(new) == _keys(_old("analyze-bent_knee_raise"))
    live = json.loads(bundled_demo.file("summary", ".json").read_text())["diagnostics"]
    old_live = _old("demo-legrep-pelvis")
    assert _keys(live) == {leg: sorted(old_live[leg]) for leg in ("left", "right")}


def _everything() -> Diagnostics:
    """A session with every optional part filled in (the edges the bundled files lack)."""
    orient = OrientationDiagnostics((0.1, -0.2, 0.3), 2, 0.5, 10, (0.0, 0.01, -0.01), 4, 1, (0.0, 0.05, 0.1), 0.25)
    thigh = SensorDiagnostics(
        samples=1234,
        calibration=CalibrationDiagnostics(2.5, 0.125, 0.01),
        orientation=orient,
        mounting=MountingDiagnostics(True, 1, 2, 1, (0.0, 0.6, 0.8), neutral_reanchors=2),
        reps=RepDiagnostics(3, 4),
        link=LinkDiagnostics(received=120, corrupt=2, lost_packets=1, lost_samples=10, samples_out=1224),
        clock=ClockDiagnostics(True, 12.5, -0.002, 7, False, 0.0004),
        samples_time_back=3,
    )
    unready = SensorDiagnostics(samples=10, calibration=None, link=LinkDiagnostics(received=1), clock=ClockDiagnostics())
    vendor = SensorDiagnostics(
        samples=99, orientation=orient, mounting=MountingDiagnostics(False, 0, 0, 0),
        vendor=VendorDiagnostics(WitmotionDiagnostics(9, 1, 17, ArrivalTiming(pullbacks=5, gaps=1, lost_estimate=40)), True, 2),
    )  # fmt: skip
    pelvis = SensorDiagnostics(
        samples=500,
        calibration=CalibrationDiagnostics(2.0, 0.0),
        pelvis=PelvisDiagnostics(0.0, 60.0, 8, 2, 40.5, 55.25, (1.0, 0.0, 0.0)),
        extra={"a_key_from_a_newer_legrep": 7.0},
    )
    return Diagnostics({"left": thigh, "right": vendor, "pelvis": pelvis, "spare": unready})


def test_every_part_survives_a_round_trip_through_json_text() -> None:
    diag = _everything()
    text = json.dumps(_plain(diag.to_json()))
    back = Diagnostics.from_json(json.loads(text))
    assert back == diag
    flat = json.loads(text)
    assert flat["left"]["samples_time_back"] == 3 and flat["left"]["clock_synced"] is False
    assert flat["left"]["axis_y"] == 0.6 and flat["left"]["packets_lost_samples"] == 10 and flat["left"]["neutral_reanchors"] == 2
    assert flat["spare"]["clock_ready"] is False and "clock_drift_ppm" not in flat["spare"]  # no fit yet
    assert flat["right"]["witmotion_arrival_lost_estimate"] == 40 and flat["right"]["bad_records"] == 2
    assert "axis_x" not in flat["right"] and flat["right"]["axis_found"] is False
    assert flat["pelvis"]["first_rep_without_pelvis_s"] == 40.5 and flat["pelvis"]["a_key_from_a_newer_legrep"] == 7.0
    assert back["pelvis"].extra == {"a_key_from_a_newer_legrep": 7.0}


def test_non_finite_values_are_null_in_json_and_nan_back() -> None:
    sensor = SensorDiagnostics(samples=0, pelvis=PelvisDiagnostics(math.nan, -math.inf))
    flat = json.loads(json.dumps(_plain(Diagnostics({"pelvis": sensor}).to_json())))
    assert flat["pelvis"]["first_s"] is None and flat["pelvis"]["last_s"] is None
    back = Diagnostics.from_json(flat)["pelvis"].pelvis
    assert back is not None and math.isnan(back.first_s) and math.isnan(back.last_s)


@pytest.mark.parametrize(
    "data, expected",
    [
        ([1, 2], "expected an object per sensor, got list"),
        ({"left": 3}, "expected an object of numbers per sensor, got int"),
        ({"left": {"samples": "many"}}, "expected a number for 'samples', got 'many'"),
        ({"left": {"packets_received": None, "packets_lost_packets": 1}}, "expected a count for 'packets_received', got None"),
        ({"left": {"mystery": [1]}}, "expected a number for 'mystery', got [1]"),
    ],
)
def test_a_damaged_diagnostics_object_is_one_line(data: object, expected: str) -> None:
    with pytest.raises(InputError) as info:
        Diagnostics.from_json(data)  # type: ignore[arg-type]
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_values_are_frozen() -> None:
    link = LinkDiagnostics(received=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        link.received = 2  # type: ignore[misc]
    assert not hasattr(link, "__dict__")  # slotted
