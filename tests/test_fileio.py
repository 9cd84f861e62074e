"""Outputs never destroy inputs: every way found of overwriting an input is refused in one line,
and outputs are written atomically (a failure leaves the old file whole)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from conftest import EARLIER_SESSION, BundledDemo
from legrep.cli import main
from legrep.errors import InputError
from legrep.fileio import OutputGuard, atomic_open, fresh_names, write_text_atomic
from legrep.imu_csv import write_imu_csv
from legrep.model import ImuBlock


def _imu_csv(path: Path) -> bytes:
    t = np.arange(0.0, 6.0, 0.01)
    acc = np.column_stack([np.zeros_like(t), np.zeros_like(t), np.ones_like(t)])
    write_imu_csv(path, ImuBlock.from_arrays(t, acc, np.zeros((len(t), 3))))
    return path.read_bytes()


def _one_error_line(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


@pytest.fixture
def leg_csv(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "mine_left.csv"
    return path, _imu_csv(path)


@pytest.mark.parametrize("option", ["--reps", "--summary"])
def test_analyze_refuses_to_overwrite_its_input(option: str, leg_csv, capsys, tmp_path: Path) -> None:
    path, before = leg_csv
    assert main(["analyze", "--left", str(path), option, str(path)]) == 2
    _one_error_line(capsys, option, "the input", str(path))
    assert path.read_bytes() == before
    # the same file by another name: a relative path, a symlink, a hard link
    os.symlink(path, tmp_path / "link.csv")
    os.link(path, tmp_path / "hard.csv")
    os.chdir(tmp_path)
    for other in ("./mine_left.csv", "link.csv", "hard.csv", "sub/../mine_left.csv"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        assert main(["analyze", "--left", str(path), "--no-history", option, other]) == 2
        _one_error_line(capsys, "the input")
        assert path.read_bytes() == before


def test_analyze_refuses_reps_and_summary_on_one_file(leg_csv, capsys, tmp_path: Path) -> None:
    path, _ = leg_csv
    out = tmp_path / "out.csv"
    assert main(["analyze", "--left", str(path), "--no-history", "--reps", str(out), "--summary", str(out)]) == 2
    _one_error_line(capsys, "--summary", "the same file")
    assert not out.exists()


def test_report_refuses_to_overwrite_its_input(leg_csv, capsys) -> None:
    path, before = leg_csv
    assert main(["report", "--left", str(path), "--out", str(path)]) == 2
    _one_error_line(capsys, "--out", "the input")
    assert path.read_bytes() == before


def test_outputs_never_replace_the_history_database(leg_csv, capsys, tmp_path: Path) -> None:
    path, _ = leg_csv
    db = tmp_path / "h.db"
    assert main(["analyze", "--left", str(path), "--db", str(db)]) == 0
    capsys.readouterr()
    before = db.read_bytes()
    for argv in (
        ["analyze", "--left", str(path), "--reps", str(db), "--db", str(db)],
        ["analyze", "--left", str(path), "--summary", str(db)],  # LEGREP_DB elsewhere: still an SQLite file
        ["history", "--db", str(db), "--csv", str(db)],
        ["history", "--db", str(db), "--plot", str(db)],
        ["history", "--db", str(db), "--csv", f"{db}-wal"],
        ["report", "--left", str(path), "--db", str(db), "--out", str(db)],
    ):
        assert main(argv) == 2, argv
        _one_error_line(capsys, str(db))
        assert db.read_bytes() == before
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM sessions").fetchone()[0] == 1


def test_outputs_never_replace_an_existing_recording(leg_csv, capsys, tmp_path: Path) -> None:
    path, _ = leg_csv
    rec = tmp_path / "session.lgr"
    rec.write_bytes(b"LEGREP-REC 1\n" + b"\x00" * 40)
    before = rec.read_bytes()
    assert main(["analyze", "--left", str(path), "--no-history", "--reps", str(rec)]) == 2
    _one_error_line(capsys, "existing legrep recording")
    assert rec.read_bytes() == before


def test_export_refuses_to_write_over_its_recording(tmp_path: Path, capsys) -> None:
    from legrep.recording import RecordingWriter

    folder = tmp_path / "out"
    folder.mkdir()
    rec = folder / "reps.csv"  # a recording that happens to be named like an output
    with RecordingWriter(rec, {"legs": ["left"]}):
        pass
    before = rec.read_bytes()
    assert main(["export", str(rec), "--out", str(folder)]) == 2
    _one_error_line(capsys, "the input")
    assert rec.read_bytes() == before


def test_fresh_names_never_reuse_a_session(tmp_path: Path) -> None:
    names = ["session.lgr", "reps.csv", "summary.json"]
    assert [p.name for p in fresh_names(tmp_path, names)] == names
    (tmp_path / "session.lgr").write_text("old")
    assert [p.name for p in fresh_names(tmp_path, names)] == ["session-2.lgr", "reps-2.csv", "summary-2.json"]
    (tmp_path / "summary-2.json").write_text("old")  # any one of them taken: the next number
    assert [p.name for p in fresh_names(tmp_path, names)][0] == "session-3.lgr"


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "reps.csv"
    target.write_text("old content\n")
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_open(target, "w") as fh:
            fh.write("half of the new")
            raise RuntimeError("crash in the middle")
    assert target.read_text() == "old content\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reps.csv"]  # no temporary file left
    write_text_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reps.csv"]


def test_write_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="got a directory"):
        write_text_atomic(tmp_path, "x")
    with pytest.raises(InputError, match="got a missing folder"):
        write_text_atomic(tmp_path / "missing" / "x.csv", "x")


def test_guard_accepts_new_and_unrelated_files(tmp_path: Path) -> None:
    a = tmp_path / "a.csv"
    a.write_text("x")
    guard = OutputGuard([a], tmp_path / "h.db")
    guard.check("--reps", tmp_path / "reps.csv")
    guard.check("--summary", tmp_path / "summary.json")
    guard.check("--ignored", None)


def test_demo_out_never_deletes_an_earlier_session(bundled_demo: BundledDemo) -> None:
    """The shared demo (tests/conftest.py) wrote into a folder holding an earlier session.lgr."""
    assert bundled_demo.code == 0, bundled_demo.stderr
    assert (bundled_demo.out / "session.lgr").read_bytes() == EARLIER_SESSION
    assert "session-2.lgr" in bundled_demo.stdout
    for name in ("session-2.lgr", "reps-2.csv", "summary-2.json"):
        assert (bundled_demo.out / name).stat().st_size > 0
