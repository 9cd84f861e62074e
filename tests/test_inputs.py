"""Commands that agree: analyze, report, replay, export and history --add take the same inputs.

A short session is captured live (simulated sensors, virtual time) into a ``demo --out``-style
folder; ``export`` turns it into per-leg CSV files. Every command then reads it as a recording, as
that folder, as a folder of ``left.csv``/``right.csv``, as leg-named CSV files and as
``--left/--right``, and finds the same number of reps.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from legrep_sim import virtual_time
from legrep_sim.peripheral import SignalArrays
from legrep_sim.scenarios import SessionSpec, SetSpec, simulate
from legrep.cli import build_parser, main
from legrep.commands.report import _session_input as report_input
from legrep.commands.demo import run_demo
from legrep.errors import InputError
from legrep.inputs import SessionInput, resolve_inputs, resolve_one
from legrep.model import Leg


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    sim = simulate(SessionSpec(sets=(SetSpec(3, 2),), rate_hz=100.0), seed=5)
    programmes = {leg: SignalArrays(s.true_time_s, s.acc_g, s.gyr_dps) for leg, s in sim.signals.items()}
    root = tmp_path_factory.mktemp("inputs")
    live = root / "live"
    live.mkdir()
    virtual_time.run(run_demo(1.0, programmes=programmes, truth={}, recording=live / "session.lgr"))
    n_left, n_right = len(sim.reps_of("left")), len(sim.reps_of("right"))
    return root, n_left, n_right


def _total(text: str) -> tuple[int, int]:
    m = re.search(r"(\d+) reps \(left (\d+), right (\d+)\)", text)
    assert m is not None, text
    return int(m.group(2)), int(m.group(3))


def test_every_command_takes_every_form_of_input(session, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root, n_left, n_right = session
    live = root / "live"
    # export: the recording -> imu_left.csv / imu_right.csv (+ reps.csv, summary.json)
    assert main(["export", str(live / "session.lgr"), "--out", str(tmp_path / "exported")]) == 0
    assert _total(capsys.readouterr().out) == (n_left, n_right)
    pair = tmp_path / "pair"
    pair.mkdir()
    shutil.copy(tmp_path / "exported" / "imu_left.csv", pair / "left.csv")
    shutil.copy(tmp_path / "exported" / "imu_right.csv", pair / "right.csv")
    named = [tmp_path / "exported" / "imu_left.csv", tmp_path / "exported" / "imu_right.csv"]
    forms: list[list[str]] = [
        [str(live / "session.lgr")],  # a recording
        [str(live)],  # a capture / demo --out folder
        [str(pair)],  # a folder with left.csv / right.csv
        [str(tmp_path / "exported")],  # an export folder (imu_left.csv / imu_right.csv)
        [str(p) for p in named],  # CSV files named after their leg
        ["--left", str(pair / "left.csv"), "--right", str(pair / "right.csv")],  # CSV per leg
    ]
    db = tmp_path / "history.db"
    for k, form in enumerate(forms):
        assert main(["analyze", *form, "--no-history"]) == 0, form
        assert _total(capsys.readouterr().out) == (n_left, n_right), ("analyze", form)
        assert main(["replay", *form, "--quiet"]) == 0, form
        assert _total(capsys.readouterr().out) == (n_left, n_right), ("replay", form)
        # report: its input is resolved exactly like analyze's; it renders (the costly part: a dozen
        # matplotlib figures) from the recording (from CSV per leg: tests/test_report.py,
        # test_cli_report_on_a_simulated_session)
        parsed = build_parser().parse_args(["report", *form])
        assert report_input(parsed) == resolve_one(parsed.file, parsed.left, parsed.right), form
        assert report_input(parsed).recording is not None or set(report_input(parsed).csv()) == {Leg.LEFT, Leg.RIGHT}
        if k == 0:
            assert main(["report", *form, "--out", str(tmp_path / f"r{k}.html"), "--no-history"]) == 0, form
            out = capsys.readouterr().out
            assert (tmp_path / f"r{k}.html").stat().st_size > 0 and f"{n_left} left, {n_right} right reps" in out, out
        if form[0] != "--left":
            assert main(["export", *form, "--out", str(tmp_path / f"e{k}")]) == 0, form
            assert _total(capsys.readouterr().out) == (n_left, n_right), ("export", form)
            assert main(["history", "--db", str(db), "--add", *form]) == 0, form
            capsys.readouterr()


def test_resolver_rules(session, tmp_path: Path) -> None:
    root, _, _ = session
    live = root / "live"
    assert resolve_one([live]) == SessionInput(recording=live / "session.lgr")
    (tmp_path / "a_left.csv").write_text("x")
    (tmp_path / "a_right.csv").write_text("x")
    (tmp_path / "b_LEFT.csv").write_text("x")
    got = resolve_inputs([tmp_path / "a_left.csv", tmp_path / "b_LEFT.csv", tmp_path / "a_right.csv"])
    assert got == [
        SessionInput(None, tmp_path / "a_left.csv", tmp_path / "a_right.csv"),
        SessionInput(None, tmp_path / "b_LEFT.csv", None),
    ]
    assert resolve_one(left=tmp_path / "a_left.csv").csv() == {Leg.LEFT: tmp_path / "a_left.csv"}


@pytest.mark.parametrize(
    "paths, left, message",
    [
        ([], None, "got no input"),
        (["nope.lgr"], None, "nope.lgr: cannot read recording"),
        (["legs.csv"], None, "a CSV named after its leg expected"),
        (["EMPTY"], None, "a folder with session.lgr, left.csv/right.csv or imu_left.csv/imu_right.csv expected, got neither (an empty folder)"),
        (["x_left.csv", "y.lgr"], None, "one session expected, got 2"),
        (["y.lgr"], "x_left.csv", "got both"),
    ],
)
def test_bad_inputs_are_one_clear_line(tmp_path: Path, paths: list[str], left: str | None, message: str) -> None:
    (tmp_path / "EMPTY").mkdir()
    for name in ("legs.csv", "x_left.csv", "y.lgr"):
        (tmp_path / name).write_text("x")
    with pytest.raises(InputError, match=re.escape(message)):
        resolve_one([tmp_path / p for p in paths], tmp_path / left if left else None)
