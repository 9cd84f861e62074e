"""One process per leg (host/offline.py): the legs of a whole file analysed in forked children give
exactly what one process gives, every byte, and the same one-line errors."""

from __future__ import annotations

import dataclasses
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from legrep import offline
from legrep.cli import main
from legrep.errors import CalibrationError, InputError
from legrep.export import format_reps_csv, summary_dict
from legrep.imu_csv import iter_imu_csv, write_imu_csv
from legrep.model import ImuBlock, Leg, SessionResult
from legrep.offline import analyze_blocks, use_processes
from legrep_sim.pelvis import simulate_with_pelvis
from legrep_sim.scenarios import SessionSpec, SetSpec

SPEC = SessionSpec(sets=(SetSpec(5, 5, "alternating"), SetSpec(4, 4)))
BLOCK_BYTES = 1 << 16  # ~900 rows a block: many steps per leg, sets close while the stream runs


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    ps = simulate_with_pelvis(SPEC, 5, place="belt")
    out = tmp_path_factory.mktemp("perleg")
    paths = {}
    for name, sig in [*ps.session.signals.items(), ("pelvis", ps.pelvis)]:
        paths[name] = out / f"{name}.csv"
        write_imu_csv(paths[name], ImuBlock.from_arrays(sig.time_s, sig.acc_g, sig.gyr_dps))
    # both legs raised together: the right thigh moving as the left a quarter second later (the
    # live ``both_legs`` flag depends on which rep closed first: on the order the parent feeds the
    # children's steps in)
    sig = ps.session.signals["left"]
    paths["together"] = out / "right_together.csv"
    write_imu_csv(paths["together"], ImuBlock.from_arrays(sig.time_s + 0.25, sig.acc_g, sig.gyr_dps))
    return paths


def _spawned(monkeypatch: pytest.MonkeyPatch) -> list[Leg]:
    """The legs that got a process of their own (recorded as they are forked)."""
    legs: list[Leg] = []
    real = offline.LegProcess.__init__

    def counting(self: Any, leg: Leg, *args: Any) -> None:
        legs.append(leg)
        real(self, leg, *args)

    monkeypatch.setattr(offline.LegProcess, "__init__", counting)
    return legs


def _fingerprint(result: SessionResult) -> tuple[bytes, list[tuple[Leg, bytes, bytes, str]], str, str]:
    """The result as bytes (reps, sets, flags, diagnostics: every float's bits; the traces' values
    and dtypes, not the identity of their dtype objects, which pickle also records), its reps CSV
    and its summary."""
    traces = [(leg, t.tobytes(), a.tobytes(), t.dtype.str + a.dtype.str) for leg, (t, a) in result.traces.items()]
    return pickle.dumps(dataclasses.replace(result, traces={})), traces, format_reps_csv(result), repr(summary_dict(result))


def _analyze(files: dict[str, Path], processes: bool, pelvis: bool = False, right: str = "right", **kw: Any) -> SessionResult:
    sources = {Leg.LEFT: iter_imu_csv(files["left"], BLOCK_BYTES), Leg.RIGHT: iter_imu_csv(files[right], BLOCK_BYTES)}
    return analyze_blocks(sources, processes=processes, pelvis=iter_imu_csv(files["pelvis"], BLOCK_BYTES) if pelvis else None,
                          **kw)  # fmt: skip


@pytest.mark.parametrize(
    "right, pelvis, keep_traces", [("right", False, False), ("right", True, False), ("together", False, True), ("together", True, False)]
)
def test_per_leg_processes_give_the_one_process_result_bit_for_bit(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, right: str, pelvis: bool, keep_traces: bool
) -> None:
    spawned = _spawned(monkeypatch)
    one = _analyze(files, False, pelvis, right, keep_traces=keep_traces)
    assert spawned == []
    per_leg = _analyze(files, True, pelvis, right, keep_traces=keep_traces)
    assert spawned == [Leg.LEFT, Leg.RIGHT]
    assert len(one.reps) >= 16  # the cases are exercised:
    assert ("both_legs" in {f for r in one.reps for f in r.flags}) == (right == "together")
    assert any(r.pelvis_tilt_deg is not None for r in one.reps) == pelvis
    assert bool(one.traces) == keep_traces
    assert _fingerprint(per_leg) == _fingerprint(one)


def test_the_streamed_angles_reach_on_angle_in_the_same_calls(files: dict[str, Path]) -> None:
    calls: dict[bool, list[tuple[Leg, bytes, bytes]]] = {False: [], True: []}
    for processes, log in calls.items():
        def on_angle(leg: Leg, t: np.ndarray, a: np.ndarray, log: list[tuple[Leg, bytes, bytes]] = log) -> None:
            log.append((leg, t.tobytes(), a.tobytes()))

        _analyze(files, processes, on_angle=on_angle)
    assert len(calls[False]) > 20 and {c[0] for c in calls[False]} == {Leg.LEFT, Leg.RIGHT}
    assert calls[True] == calls[False]


def test_the_reduced_trace_made_in_each_legs_process_is_the_one_made_here(files: dict[str, Path]) -> None:
    """``trace_points`` (the report's trace): each leg's envelope made in its process, bit for bit."""
    calls = []
    one = _analyze(files, False, trace_points=300, beside=lambda: calls.append("one"))
    per_leg = _analyze(files, True, trace_points=300, beside=lambda: calls.append("per leg"))
    assert calls == ["one", "per leg"]
    assert set(one.traces) == {Leg.LEFT, Leg.RIGHT} and all(0 < len(t) <= 300 for t, _ in one.traces.values())
    assert _fingerprint(per_leg) == _fingerprint(one)


def _broken(tmp_path: Path, files: dict[str, Path], leg: str, where: float, bad: str) -> tuple[Path, int]:
    """A copy of a leg's file with the line ``where`` of the way through replaced by ``bad``;
    returns it and that line's number."""
    lines = files[leg].read_text().splitlines(keepends=True)
    k = int(where * len(lines))
    lines[k] = bad
    path = tmp_path / f"{leg}_{where}.csv"
    path.write_text("".join(lines))
    return path, k + 1


def test_an_error_in_a_leg_process_is_the_one_process_error(files: dict[str, Path], tmp_path: Path) -> None:
    """A bad line of one file, of both (the serial path's first one wins), a leg that never rests."""
    right_bad, _ = _broken(tmp_path, files, "right", 0.6, "12.5,0.1,oops,0.9,1,2,3\n")
    left_bad, _ = _broken(tmp_path, files, "left", 0.8, "12.5,0.1,0.2\n")
    left_early, _ = _broken(tmp_path, files, "left", 0.3, "12.5,0.1,0.2\n")
    rng = np.random.default_rng(3)
    t = np.arange(0.0, 30.0, 0.01)
    restless = tmp_path / "restless_left.csv"
    write_imu_csv(restless, ImuBlock.from_arrays(t, rng.normal(0, 1, (len(t), 3)), rng.normal(0, 200, (len(t), 3))))
    cases = [
        ({"left": files["left"], "right": right_bad}, InputError),
        ({"left": left_bad, "right": right_bad}, InputError),  # the right file's error, reached first
        ({"left": left_early, "right": right_bad}, InputError),  # the left one's
        ({"left": restless, "right": files["right"]}, CalibrationError),
    ]
    seen = []
    for paths, kind in cases:
        messages = []
        for processes in (False, True):
            with pytest.raises(kind) as err:
                analyze_blocks({Leg(k): iter_imu_csv(p, BLOCK_BYTES) for k, p in paths.items()}, processes=processes)
            assert type(err.value) is kind
            messages.append(str(err.value))
        assert messages[0] == messages[1], paths
        assert "\n" not in messages[0]
        seen.append(messages[0])
    assert str(right_bad) in seen[0] and str(right_bad) in seen[1] and str(left_early) in seen[2], seen
    assert "calibrat" in seen[3], seen


@pytest.mark.skipif(not use_processes(2), reason="one core or no fork here: the CLI analyses in one process")
def test_the_cli_writes_the_same_bytes_and_the_same_error_line(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    right_bad, line = _broken(tmp_path, files, "right", 0.6, "12.5,0.1,oops,0.9,1,2,3\n")
    outputs = {}
    for serial in ("1", ""):
        monkeypatch.setenv("LEGREP_SERIAL", serial)
        spawned = _spawned(monkeypatch)
        out = tmp_path / "out"  # (the same paths: stdout names them)
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        code = main(["analyze", "--left", str(files["left"]), "--right", str(files["right"]), "--pelvis", str(files["pelvis"]),
                     "--reps", str(out / "reps.csv"), "--summary", str(out / "summary.json"), "--no-history"])  # fmt: skip
        assert code == 0
        stdout = capsys.readouterr().out
        bad = main(["analyze", "--left", str(files["left"]), "--right", str(right_bad), "--no-history"])
        captured = capsys.readouterr()
        assert len(spawned) == (0 if serial else 4)
        outputs[serial] = (stdout, (out / "reps.csv").read_bytes(), (out / "summary.json").read_bytes(), bad, captured)
    one, per_leg = outputs["1"], outputs[""]
    assert per_leg[:4] == one[:4]
    assert per_leg[4].out == one[4].out and per_leg[4].err == one[4].err
    err = one[4].err.strip()
    assert one[3] != 0 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{right_bad}:{line}:" in err and "oops" in err, err


# --------------------------------------------------------------------------- recordings


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_recording import run_session

    path = tmp_path_factory.mktemp("rec") / "s.legrep"
    run_session(path, seed=9)  # lost, corrupt and duplicated packets, RESENDs
    return path


@pytest.fixture()
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay's blocks small: many steps per leg, their order crossed often."""
    import legrep.replay_batch as rb

    monkeypatch.setattr(rb, "MIN_SAMPLES", 300)
    monkeypatch.setattr(rb, "PROCESSES_BY_DEFAULT", True)  # (the CLI's choice: processes, for any size)
    monkeypatch.setattr(rb, "PROCESSES_MIN_BYTES", 0)


@pytest.mark.parametrize("keep_traces", [False, True])
def test_a_replay_with_a_process_per_leg_is_the_serial_replay(
    recording: Path, small_blocks: None, monkeypatch: pytest.MonkeyPatch, keep_traces: bool
) -> None:
    from legrep.replay_batch import replay_file

    spawned = _spawned(monkeypatch)
    got = {}
    for processes in (False, True):
        seen: list[str] = []
        core, result, _ = replay_file(recording, keep_traces=keep_traces, processes=processes,
                                      on_events=lambda _t, events, seen=seen: seen.extend(map(repr, events)))  # fmt: skip
        got[processes] = (_fingerprint(result), seen, list(map(repr, core.events)))
    assert spawned == [Leg.RIGHT]  # (the left thigh is analysed here, beside it)
    assert len(got[False][1]) >= 6 and bool(got[False][0][1]) == keep_traces
    assert got[True] == got[False]


@pytest.mark.skipif(not use_processes(2), reason="one core or no fork here: the CLI replays in one process")
def test_replay_export_and_analyze_of_a_recording_print_and_write_the_same(
    recording: Path, small_blocks: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = {}
    for serial in ("1", ""):
        monkeypatch.setenv("LEGREP_SERIAL", serial)
        spawned = _spawned(monkeypatch)
        out = tmp_path / "out"
        shutil.rmtree(out, ignore_errors=True)
        printed = []
        for argv in (["replay", str(recording)], ["export", str(recording), "--out", str(out)],
                     ["analyze", str(recording), "--no-history", "--reps", str(out / "analyzed.csv")]):  # fmt: skip
            assert main(argv) == 0
            printed.append(capsys.readouterr().out)
        assert len(spawned) == (0 if serial else 3)
        outputs[serial] = (printed, {p.name: p.read_bytes() for p in sorted(out.iterdir())})
    assert outputs[""] == outputs["1"]
    assert "rep  peak" in outputs["1"][0][0] and len(outputs["1"][1]) == 5
