"""``legrep batch``: every session under a folder, in worker processes, resumable, failures listed."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from legrep.cli import main
from legrep.commands.batch import find_sessions
from legrep.imu_csv import write_imu_csv

from test_cli_analyze import leg_raises


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """a/left.csv + a/right.csv (5+5, 5+4 reps), b/walk_left.csv + b/walk_right.csv (3 + 3),
    c/only_left.csv (4), broken/left.csv + right.csv (a bad value), and a recording."""
    root = tmp_path_factory.mktemp("batch")
    end_s = 2.0 + 10 * 6.0 + 25.0 + 5.0
    (root / "a").mkdir()
    write_imu_csv(root / "a" / "left.csv", leg_raises([5, 5], end_s=end_s, mounting=(0.3, -0.5, 0.8), seed=1))
    write_imu_csv(root / "a" / "right.csv", leg_raises([5, 4], end_s=end_s, mounting=(1.9, 0.2, -0.4), seed=2))
    (root / "b").mkdir()
    write_imu_csv(root / "b" / "walk_left.csv", leg_raises([3], end_s=30.0, mounting=(0.1, 0.2, 0.3), seed=3))
    write_imu_csv(root / "b" / "walk_right.csv", leg_raises([3], end_s=30.0, mounting=(0.4, 0.1, 0.2), seed=4))
    (root / "c").mkdir()
    write_imu_csv(root / "c" / "only_left.csv", leg_raises([4], end_s=35.0, mounting=(0.2, 0.2, 0.2), seed=5))
    (root / "broken").mkdir()
    shutil.copy(root / "b" / "walk_left.csv", root / "broken" / "left.csv")
    lines = (root / "b" / "walk_right.csv").read_text().splitlines()
    lines[500] = lines[500].replace(",", ",x", 1)
    (root / "broken" / "right.csv").write_text("\n".join(lines) + "\n")
    from test_recording import run_session

    (root / "rec").mkdir()
    run_session(root / "rec" / "session.bin")  # a recording of 3 + 3 reps with lost/corrupt packets
    (root / "notes.txt").write_text("not a session\n")
    return root


def summary(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "sessions.csv", newline="") as fh:
        return {row["session"]: row for row in csv.DictReader(fh)}


def test_finds_each_kind_of_session(tree: Path) -> None:
    found = {s.name: s for s in find_sessions(tree)}
    assert set(found) == {"a", "b__walk", "c__only", "broken", "rec__session.bin"}
    assert found["a"].legs == ("left", "right") and found["c__only"].legs == ("left",)
    assert found["rec__session.bin"].kind == "recording"


def test_batch_analyses_all_lists_the_failure_and_resumes(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["batch", str(tree), "--out", str(out), "--jobs", "2"])
    printed, err = capsys.readouterr()
    assert code == 1  # one session failed; the others are done
    rows = summary(out)
    assert {k: r["status"] for k, r in rows.items()} == {
        "a": "done", "b__walk": "done", "c__only": "done", "broken": "failed", "rec__session.bin": "done",
    }
    assert (rows["a"]["left_reps"], rows["a"]["right_reps"], rows["a"]["sets"], rows["a"]["uneven"]) == ("10", "9", "2", "yes")
    assert (rows["b__walk"]["left_reps"], rows["b__walk"]["right_reps"]) == ("3", "3")
    assert (rows["c__only"]["left_reps"], rows["c__only"]["right_reps"]) == ("4", "")
    assert (rows["rec__session.bin"]["left_reps"], rows["rec__session.bin"]["right_reps"]) == ("3", "3")
    assert "broken/right.csv:501: column acc_x_g: a number expected, got 'x" in rows["broken"]["error"]
    assert f"failed: broken: {rows['broken']['error']}" in err and "batch [" in err
    assert "5 sessions: 4 analysed, 0 done before, 1 failed" in printed
    # the same reps as `legrep analyze` of the same files
    assert main(["analyze", "--left", str(tree / "a" / "left.csv"), "--right", str(tree / "a" / "right.csv"),
                 "--reps", str(tmp_path / "reps.csv"), "--no-history"]) == 0  # fmt: skip
    assert (out / "a" / "reps.csv").read_text() == (tmp_path / "reps.csv").read_text()

    # resumable: nothing done twice; a changed input is analysed again
    stamp = (out / "a" / "reps.csv").stat().st_mtime_ns
    lines = (tree / "c" / "only_left.csv").read_text().splitlines()
    (tree / "c" / "only_left.csv").write_text("\n".join(lines[:-200]) + "\n")
    code = main(["batch", str(tree), "--out", str(out), "--jobs", "1"])
    printed, err = capsys.readouterr()
    rows = summary(out)
    assert code == 1 and rows["a"]["status"] == "skipped" and rows["a"]["left_reps"] == "10"
    assert rows["c__only"]["status"] == "done" and rows["broken"]["status"] == "failed"
    assert (out / "a" / "reps.csv").stat().st_mtime_ns == stamp
    assert "5 sessions: 1 analysed, 3 done before, 1 failed" in printed


def test_bad_arguments_are_one_line(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "a folder expected, got no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["batch", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "recordings or left/right IMU CSVs expected, got none" in capsys.readouterr().err
    assert main(["batch", str(tree), "--out", str(tmp_path / "o"), "--set", "nope=1"]) == 2
    assert "--set: a setting name expected" in capsys.readouterr().err
