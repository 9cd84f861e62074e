"""``legrep analyze`` through ``legrep.cli.main``: counts end to end, output files, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from legrep.cli import main
from legrep.export import read_reps_csv
from legrep.imu_csv import CANONICAL_HEADER, write_imu_csv
from legrep.model import ImuBlock, Leg

HEADER = ",".join(CANONICAL_HEADER)


# --------------------------------------------------------------------------- a small, independent generator


def _rotation(rotvec: tuple[float, float, float]) -> np.ndarray:
    """Rotation matrix of a rotation vector (Rodrigues' formula)."""
    v = np.asarray(rotvec, dtype=float)
    angle = float(np.linalg.norm(v))
    k = v / angle
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def leg_raises(
    reps_per_set: list[int],
    *,
    end_s: float,
    mounting: tuple[float, float, float],
    seed: int,
    rate_hz: float = 100.0,
    peak_deg: float = 80.0,
    up_s: float = 1.5,
    hold_s: float = 1.0,
    down_s: float = 2.0,
    rest_s: float = 1.5,
    set_rest_s: float = 25.0,
    still_s: float = 2.0,
) -> ImuBlock:
    """Supine straight-leg raises of one thigh (minimum-jerk rise and fall about the sensor's x axis,
    seen through an arbitrary mounting rotation), with noise and a constant gyro bias.

    Deliberately simpler than ``firmware_sim`` (no centripetal terms or quantisation): a second,
    independent source of truth for the CLI.
    """
    t = np.arange(0.0, end_s, 1.0 / rate_hz)
    angle = np.zeros_like(t)
    rate = np.zeros_like(t)
    start = still_s
    for k, n in enumerate(reps_per_set):
        start += set_rest_s if k else 0.0
        for _ in range(n):
            for t0, dur, a0, a1 in ((start, up_s, 0.0, peak_deg), (start + up_s + hold_s, down_s, peak_deg, 0.0)):
                m = (t >= t0) & (t < t0 + dur)
                tau = (t[m] - t0) / dur
                angle[m] = a0 + (a1 - a0) * (10 * tau**3 - 15 * tau**4 + 6 * tau**5)
                rate[m] = (a1 - a0) * (30 * tau**2 - 60 * tau**3 + 30 * tau**4) / dur
            angle[(t >= start + up_s) & (t < start + up_s + hold_s)] = peak_deg
            start += up_s + hold_s + down_s + rest_s
    assert start < end_s, "the programme must end before the recording"
    theta = np.radians(angle)
    acc = np.column_stack([np.zeros_like(theta), np.sin(theta), np.cos(theta)])
    gyr = np.column_stack([rate, np.zeros_like(rate), np.zeros_like(rate)])
    mount = _rotation(mounting)
    rng = np.random.default_rng(seed)
    acc = acc @ mount.T + rng.normal(0.0, 0.004, acc.shape)
    gyr = gyr @ mount.T + rng.normal(0.0, 0.15, gyr.shape) + np.array([0.8, -0.4, 0.3])
    return ImuBlock.from_arrays(t, acc, gyr)


@pytest.fixture(scope="module")
def session_csvs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Set 1: 5 left / 5 right; set 2: 5 left / 4 right (uneven). 25 s rest between sets."""
    folder = tmp_path_factory.mktemp("session")
    end_s = 2.0 + 10 * 6.0 + 25.0 + 5.0
    left = leg_raises([5, 5], end_s=end_s, mounting=(0.3, -0.5, 0.8), seed=1)
    right = leg_raises([5, 4], end_s=end_s, mounting=(1.9, 0.2, -0.4), seed=2)
    write_imu_csv(folder / "left.csv", left)
    write_imu_csv(folder / "right.csv", right)
    return folder / "left.csv", folder / "right.csv"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["analyze", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- end to end


def test_table_counts_each_leg_and_marks_the_uneven_set(capsys: pytest.CaptureFixture[str], session_csvs: tuple[Path, Path]) -> None:
    left, right = session_csvs
    code, out, err = run_cli(capsys, "--left", left, "--right", right)
    assert (code, err) == (0, "")
    set_lines = [ln for ln in out.splitlines() if ln.startswith("Set ")]
    assert len(set_lines) == 2, out
    assert "left 5  right 5  even" in set_lines[0]
    assert "left 5  right 4  UNEVEN (5 left / 4 right)" in set_lines[1]
    assert out.splitlines()[-1] == "Total: 19 reps (left 10, right 9) in 2 sets; UNEVEN in set 2"


def test_reps_and_summary_files_match_the_programme(
    capsys: pytest.CaptureFixture[str], session_csvs: tuple[Path, Path], tmp_path: Path
) -> None:
    left, right = session_csvs
    reps_path, summary_path = tmp_path / "reps.csv", tmp_path / "summary.json"
    code, out, err = run_cli(capsys, "--left", left, "--right", right, "--reps", reps_path, "--summary", summary_path)
    assert (code, err) == (0, "")
    assert out.count("\n") == 1 and out.startswith("Total: 19 reps (left 10, right 9)") and str(reps_path) in out
    reps = read_reps_csv(reps_path)
    assert [sum(1 for r in reps if r.leg is leg) for leg in (Leg.LEFT, Leg.RIGHT)] == [10, 9]
    # the generator's exact measures (README "Rep measures", stopwatch tempo): a minimum-jerk move's
    # speed 30 tau^2 (1 - tau)^2 is 10 % of its peak (30/16) at tau10 and 1 - tau10 of its duration,
    # so up = (1 - 2 tau10) * 1.5 s, hold = 1.0 s + tau10 * (1.5 s + 2.0 s), down = (1 - 2 tau10) * 2.0 s
    tau10 = (1.0 - np.sqrt(1.0 - 4.0 * np.sqrt(0.1 / 16.0))) / 2.0
    for r in reps:
        assert r.peak_deg == pytest.approx(80.0, abs=2.0)
        assert r.rom_deg == pytest.approx(80.0, abs=2.0)
        assert r.up_s == pytest.approx((1 - 2 * tau10) * 1.5, abs=0.08)
        assert r.hold_s == pytest.approx(1.0 + tau10 * 3.5, abs=0.08)
        assert r.down_s == pytest.approx((1 - 2 * tau10) * 2.0, abs=0.08)
    # rep times: the k-th rep of a set starts 6 s after the (k-1)-th
    left_starts = np.array([r.start_s for r in reps if r.leg is Leg.LEFT and r.set == 1])
    np.testing.assert_allclose(np.diff(left_starts), 6.0, atol=0.05)
    assert left_starts[0] == pytest.approx(2.0 + tau10 * 1.5, abs=0.05)
    summary = json.loads(summary_path.read_text())
    assert [(s["left_reps"], s["right_reps"], s["uneven"]) for s in summary["sets"]] == [(5, 5, False), (5, 4, True)]
    assert summary["uneven"] is True
    assert summary["per_leg"]["left"]["reps"] == 10 and summary["per_leg"]["right"]["reps"] == 9


def test_one_leg_and_settings_override(capsys: pytest.CaptureFixture[str], session_csvs: tuple[Path, Path], tmp_path: Path) -> None:
    _, right = session_csvs
    code, out, err = run_cli(capsys, "--right", right, "--set", "min_rom_deg=25", "--summary", tmp_path / "s.json")
    assert (code, err) == (0, "")
    assert out.startswith("Total: 9 reps (right 9) in 2 sets")
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["legs"] == ["right"] and summary["settings"]["min_rom_deg"] == 25.0
    # a threshold above the range performed: nothing counts any more
    code, out, err = run_cli(capsys, "--right", right, "--set", "min_rom_deg=85")
    assert (code, err) == (0, "")
    assert out.splitlines()[-1].startswith("Total: 0 reps (right 0)")


# --------------------------------------------------------------------------- bad input: one line, exit 2


GOOD_ROWS = [f"{i * 0.01:.2f},0,0,1,0,0,0" for i in range(300)]


def bad_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "L.csv:1: a header line (time_s,acc_x_g,acc_y_g,acc_z_g,gyr_x_dps,gyr_y_dps,gyr_z_dps) expected, got an empty file"),
        (HEADER + "\n", "L.csv:2: data rows expected after the header, got only the header"),
        ("\n".join([HEADER, *GOOD_ROWS, "3.00,0,0"]), "L.csv:302: 7 comma-separated fields expected (as in the header), got 3 (truncated last line?): '3.00,0,0'"),
        ("\n".join([HEADER, *GOOD_ROWS[:50], "0.50,0,nan,1,0,0,0", *GOOD_ROWS[51:]]), "L.csv:52: column acc_y_g: a finite number expected, got 'nan'"),
        ("\n".join([HEADER, *GOOD_ROWS[:50], "0.40,0,0,1,0,0,0", *GOOD_ROWS[51:]]), "L.csv:52: column time_s: strictly increasing time expected, got going back: 0.40 after 0.49 (line 51)"),
        ("\n".join([HEADER.replace("gyr_x_dps", "gyr_x_deg"), *GOOD_ROWS]), "L.csv:1: gyr_x: expected unit suffix _dps or _rads, got 'gyr_x_deg'"),
        ("\n".join([HEADER, *GOOD_ROWS[:9], "0.09,0,0,one,0,0,0", *GOOD_ROWS[10:]]), "L.csv:11: column acc_z_g: a number expected, got 'one'"),
    ],
    ids=["empty", "header-only", "truncated-last-line", "nan", "time-going-back", "wrong-units", "not-a-number"],
)
def test_bad_csv_gives_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, expected: str) -> None:
    path = bad_file(tmp_path, "L.csv", text)
    code, out, err = run_cli(capsys, "--left", path)
    assert code == 2 and out == ""
    assert err.count("\n") == 1, err
    assert err == f"legrep analyze: error: {tmp_path}/{expected}\n"


def test_file_problems_give_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, session_csvs: tuple[Path, Path]) -> None:
    left, _ = session_csvs
    cases = [
        (("--left", left, "--right", tmp_path / "missing.csv"), f"{tmp_path}/missing.csv: an existing IMU CSV file expected, got no such file"),
        (("--left", tmp_path), f"{tmp_path}: an IMU CSV file expected, got a directory"),
        (("--left", left, "--reps", tmp_path / "no" / "reps.csv"), "expected, got a missing folder"),
        (("--left", left, "--summary", tmp_path), "got a directory"),
    ]
    for argv, expected in cases:
        code, out, err = run_cli(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and err.startswith("legrep analyze: error: "), err
        assert expected in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ((), "--left CSV and/or --right CSV expected, got neither"),
        (("--set", "min_rom=25"), "--set: a setting name expected (one of calib_min_still_s,"),
        (("--set", "min_rom_deg=lots"), "--set min_rom_deg: a number expected, got 'lots'"),
        (("--set", "min_rom_deg"), "--set: NAME=VALUE expected, got 'min_rom_deg'"),
        (("--set", "min_rom_deg=-5"), "--set min_rom_deg: 0 <= value <= 180 expected, got -5.0"),
    ],
)
def test_bad_arguments_give_one_line(
    capsys: pytest.CaptureFixture[str], session_csvs: tuple[Path, Path], argv: tuple[str, ...], expected: str
) -> None:
    left, _ = session_csvs
    code, out, err = run_cli(capsys, *(argv if not argv else ("--left", left, *argv)))
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith("legrep analyze: error: ") and expected in err


def test_a_recording_that_never_rests_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # calibration may use a rest anywhere (issue 8): only a stream without any is refused
    moving = leg_raises(
        [8], end_s=11.3, mounting=(0.3, 0.2, 0.1), seed=5, still_s=0.0, rest_s=0.0, hold_s=0.0, up_s=0.7, down_s=0.7
    )
    write_imu_csv(tmp_path / "L.csv", moving)
    code, out, err = run_cli(capsys, "--left", tmp_path / "L.csv")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert err.startswith("legrep analyze: error: left sensor: ") and "still" in err and "longest quiet stretch" in err


# --------------------------------------------------------------------------- against the simulator's truth

SIM_CASES = {
    "two_sets_uneven_100hz": dict(
        sets=((6, 6, "left_then_right"), (6, 5, "alternating")), legs=("left", "right"), rate_hz=100.0, errors="typical"
    ),
    "bent_knee_50hz": dict(
        sets=((5, 5, "right_then_left"),), legs=("left", "right"), rate_hz=50.0, errors="typical", exercise="bent_knee_raise"
    ),
    "right_leg_only_200hz": dict(sets=((0, 7, "left_then_right"),), legs=("right",), rate_hz=200.0, errors="none"),
}


@pytest.mark.parametrize("name", sorted(SIM_CASES))
def test_simulated_session_counts_match_truth(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str) -> None:
    """CSV files written by the simulator, read by the CLI: per-leg and per-set counts equal the truth."""
    from legrep_sim.scenarios import SessionSpec, SetSpec, simulate

    case = dict(SIM_CASES[name])
    sets = tuple(SetSpec(reps_left=left, reps_right=right, order=order) for left, right, order in case.pop("sets"))
    spec = SessionSpec(sets=sets, mounting="random", rest_between_sets_s=20.0, **case)
    session = simulate(spec, seed=11)
    session.write_csv(tmp_path)
    argv = [arg for leg in spec.legs for arg in (f"--{leg}", str(tmp_path / f"{leg}.csv"))]
    code, out, err = run_cli(capsys, *argv, "--summary", tmp_path / "s.json", "--reps", tmp_path / "r.csv")
    assert (code, err) == (0, "")
    summary = json.loads((tmp_path / "s.json").read_text())
    for leg in spec.legs:
        truth = sum(1 for r in session.reps if r.leg == leg)
        assert summary["per_leg"][leg]["reps"] == truth, (leg, summary["per_leg"][leg])
    assert [(s["left_reps"], s["right_reps"], s["uneven"]) for s in summary["sets"]] == [
        (s.left_reps, s.right_reps, s.uneven) for s in session.sets
    ]
    assert summary["uneven"] is session.uneven
    # every counted rep lies on a true rep of its leg: the true peak falls inside the counted rep
    # (a peak *time* on a flat hold moves with a tenth of a degree; the rep's span does not)
    for rep in read_reps_csv(tmp_path / "r.csv"):
        assert any(rep.start_s < t.peak_s < rep.end_s for t in session.reps if t.leg == rep.leg.value), rep


# --------------------------------------------------------------------------- the README's quick start

RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"


@pytest.mark.parametrize("name", ["straight_leg_raise", "bent_knee_raise"])
def test_bundled_recording_matches_its_truth(capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str) -> None:
    """The README's main command on the bundled recordings: counts per set and leg equal truth.json."""
    folder = RECORDINGS / name
    truth = json.loads((folder / "truth.json").read_text())
    code, out, err = run_cli(
        capsys, "--left", folder / "left.csv", "--right", folder / "right.csv", "--summary", tmp_path / "s.json"
    )
    assert (code, err) == (0, ""), err
    summary = json.loads((tmp_path / "s.json").read_text())
    want = [(s["left_reps"], s["right_reps"], s["uneven"]) for s in truth["sets"]]
    assert [(s["left_reps"], s["right_reps"], s["uneven"]) for s in summary["sets"]] == want
    assert summary["uneven"] is truth["uneven"]
    # and the printed table says the same
    code, out, err = run_cli(capsys, "--left", folder / "left.csv", "--right", folder / "right.csv")
    assert code == 0
    for k, (left, right, uneven) in enumerate(want, start=1):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"Set {k} "))
        assert f"left {left}  right {right}" in line
        assert ("UNEVEN" in line) is uneven


def test_analyze_reads_a_phone_app_export_pair(tmp_path, capsys):
    """A phone on the thigh, phyphox export (acc m/s^2 and gyro rad/s in two files): same reps as truth."""
    import math

    from legrep_sim.scenarios import SessionSpec, SetSpec, simulate
    from legrep.cli import main as cli_main

    sim = simulate(SessionSpec(sets=(SetSpec(5, 0),), legs=("left",)), seed=21)
    sig = sim.signals["left"]
    acc = ['"Time (s)","Acceleration x (m/s^2)","Acceleration y (m/s^2)","Acceleration z (m/s^2)","Absolute acceleration (m/s^2)"']
    gyr = ['"Time (s)","Gyroscope x (rad/s)","Gyroscope y (rad/s)","Gyroscope z (rad/s)","Absolute (rad/s)"']
    g0 = 9.80665
    for t, a, w in zip(sig.time_s, sig.acc_g, sig.gyr_dps):
        am = a * g0
        wr = w * math.pi / 180
        acc.append(f"{t:.6E},{am[0]:.6E},{am[1]:.6E},{am[2]:.6E},{float((am @ am) ** 0.5):.6E}")
        gyr.append(f"{t:.6E},{wr[0]:.9E},{wr[1]:.9E},{wr[2]:.9E},{float((wr @ wr) ** 0.5):.6E}")
    (tmp_path / "Accelerometer.csv").write_text("\n".join(acc))
    (tmp_path / "Gyroscope.csv").write_text("\n".join(gyr))
    reps = tmp_path / "reps.csv"
    code = cli_main(["analyze", "--left", str(tmp_path / "Accelerometer.csv"), str(tmp_path / "Gyroscope.csv"),
                     "--reps", str(reps)])
    assert code == 0, capsys.readouterr().err
    rows = reps.read_text().strip().splitlines()[1:]
    assert len(rows) == len(sim.reps) == 5
    # a header nobody knows, without a mapping: one clear line, exit 2
    (tmp_path / "odd.csv").write_text("when,a1,a2\n0,1,2\n")
    assert cli_main(["analyze", "--left", str(tmp_path / "odd.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "odd.csv" in err[0]


def test_analyze_stores_the_session_in_history_once(tmp_path, capsys):
    """Every analysed session lands in the history; analysing the same files again adds nothing."""
    import os

    from legrep.cli import main as cli_main
    from legrep.history import list_sessions

    rec = RECORDINGS / "straight_leg_raise"
    args = ["analyze", "--left", str(rec / "left.csv"), "--right", str(rec / "right.csv"), "--exercise", "straight leg raise"]
    assert cli_main(args) == 0
    assert len(list_sessions(os.environ["LEGREP_DB"])) == 1
    assert cli_main(args) == 0
    sessions = list_sessions(os.environ["LEGREP_DB"])
    assert len(sessions) == 1
    # a different input (left leg only) would be a new session, but not with --no-history
    assert cli_main(["analyze", "--left", str(rec / "left.csv"), "--no-history"]) == 0
    assert len(list_sessions(os.environ["LEGREP_DB"])) == 1
    assert cli_main(["analyze", "--left", str(rec / "left.csv")]) == 0
    assert len(list_sessions(os.environ["LEGREP_DB"])) == 2


# --------------------------------------------------------------------------- lazy start-up


def test_the_command_table_says_what_each_module_registers() -> None:
    import argparse
    import importlib

    from legrep.cli import COMMAND_HELP

    for name, help_text in COMMAND_HELP.items():
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"legrep.commands.{name}").register(sub)
        assert sub._choices_actions[0].help == help_text, name


def test_help_lists_every_command_and_analyze_imports_only_what_it_uses(session_csvs: tuple[Path, Path]) -> None:
    import subprocess
    import sys

    from legrep.cli import COMMAND_HELP

    probe = (
        "import sys, contextlib, io\n"
        "from legrep.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    code = main(sys.argv[1:])\n"
        "print(code, out.getvalue().count(chr(10)))\n"
        "print(' '.join(sorted(m for m in sys.modules)))\n"
    )
    shown = subprocess.run([sys.executable, "-m", "legrep", "--help"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and all(f"    {name} " in shown.stdout for name in COMMAND_HELP), shown.stdout
    left, right = session_csvs
    argv = ["analyze", "--left", str(left), "--right", str(right), "--no-history"]
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("0 "), done.stderr
    loaded = {"analyze": set(done.stdout.split())}
    heavy = {"asyncio", "bleak", "bumble", "matplotlib", "serial", "legrep.sensors", "legrep.live", "legrep.report"}
    assert not heavy & loaded["analyze"], heavy & loaded["analyze"]
    assert "legrep.commands.analyze" in loaded["analyze"]
    assert not {f"legrep.commands.{c}" for c in COMMAND_HELP if c != "analyze"} & loaded["analyze"]
