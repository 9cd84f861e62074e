"""History database: store and list, de-duplication by content, v1 -> v2 migration, CSV export, CLI."""

from __future__ import annotations

import csv
import json
import math
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from legrep.cli import main
from legrep.history import (
    EXPORT_COLUMNS,
    SCHEMA_VERSION,
    HistoryError,
    SessionInput,
    export_csv,
    format_sessions,
    group_inputs,
    list_sessions,
    open_history,
    store_session,
)
from legrep.model import Leg
from legrep.settings import Settings
from test_report import make_session, simulated_csvs


def _files(tmp_path: Path, tag: str) -> dict[str, Path]:
    """Two small input files standing in for a CSV pair (content decides identity)."""
    out = {}
    for leg in ("left", "right"):
        path = tmp_path / f"{tag}_{leg}.csv"
        path.write_text(f"time_s,acc_x_g\n0,{tag}-{leg}\n", encoding="utf-8")
        out[leg] = path
    return out


def test_store_and_list_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    a = make_session(counts=((10, 10), (10, 9)))
    b = make_session(counts=((12, 12),), fast_down=frozenset())
    settings = Settings(min_down_s=1.5)
    first = store_session(db, a, settings, _files(tmp_path, "a"), "straight leg raise", "2026-05-01T18:30:00+02:00")
    second = store_session(db, b, None, _files(tmp_path, "b"), "bent knee raise", "2026-05-03T09:00:00+02:00")
    assert first.created and second.created and first.session_id != second.session_id
    rows = list_sessions(db)
    assert [r.session_id for r in rows] == [first.session_id, second.session_id]
    ra, rb = rows
    assert (ra.left_reps, ra.right_reps, ra.uneven_sets, ra.n_sets) == (20, 19, (2,), 2)
    assert (rb.left_reps, rb.right_reps, rb.uneven_sets, rb.n_sets) == (12, 12, (), 1)
    assert ra.mean_peak_left_deg == pytest.approx(np.mean([r.peak_deg for r in a.reps_of(Leg.LEFT)]), abs=1e-9)
    assert ra.mean_peak_right_deg == pytest.approx(np.mean([r.peak_deg for r in a.reps_of(Leg.RIGHT)]), abs=1e-9)
    assert ra.exercise == "straight leg raise" and ra.started_at == "2026-05-01T18:30:00+02:00"
    assert json.loads(ra.settings_json or "{}")["min_down_s"] == 1.5
    assert {s.role for s in ra.sources} == {"left", "right"}
    assert all(s.sha256 and len(s.sha256) == 64 for s in ra.sources)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        stored = conn.execute(
            "SELECT leg, set_no, rep_no, peak_deg, down_s, flags FROM reps WHERE session_id = ? ORDER BY rowid",
            (first.session_id,),
        ).fetchall()
    assert stored == [(r.leg.value, r.set, r.rep, r.peak_deg, r.down_s, ";".join(r.flags)) for r in a.reps]
    table = format_sessions(rows)
    lines = table.splitlines()
    assert len(lines) == 3 and "uneven sets" in lines[0]
    assert lines[1].split()[-1] == "2" and lines[2].split()[-1] == "-"
    assert "bent knee raise" in lines[2]


def test_same_content_is_not_stored_twice(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    session = make_session()
    files = _files(tmp_path, "a")
    first = store_session(db, session, None, files, "x", "2026-05-01T10:00:00")
    # The same files again, and a copy of them elsewhere (same content, other path): no new session.
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    copies = {leg: Path(shutil.copy(p, copy_dir / p.name)) for leg, p in files.items()}
    for again in (files, copies):
        outcome = store_session(db, session, None, again, "x", "2026-05-02T10:00:00")
        assert outcome.session_id == first.session_id and not outcome.created
    # A changed byte makes a new session.
    copies["right"].write_text(copies["right"].read_text() + "1,2\n")
    assert store_session(db, session, None, copies, "x", "2026-05-02T10:00:00").created
    # No files: never de-duplicated (a live capture without a recording).
    assert store_session(db, session, None, None).created
    assert store_session(db, session, None, None).created
    assert len(list_sessions(db)) == 4


# A version-1 database as legrep 0.0 would have written it: no exercise, no settings, no sources table.
_V1_DDL = """
CREATE TABLE sessions (id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, stored_at TEXT NOT NULL,
    source_hash TEXT UNIQUE, source_paths TEXT NOT NULL DEFAULT '[]', legs TEXT NOT NULL, uneven INTEGER NOT NULL);
CREATE TABLE sets (session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE, set_no INTEGER NOT NULL,
    start_s REAL NOT NULL, end_s REAL NOT NULL, left_reps INTEGER NOT NULL, right_reps INTEGER NOT NULL,
    uneven INTEGER NOT NULL, PRIMARY KEY (session_id, set_no));
CREATE TABLE reps (session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE, leg TEXT NOT NULL,
    set_no INTEGER NOT NULL, rep_no INTEGER NOT NULL, start_s REAL NOT NULL, peak_s REAL NOT NULL, end_s REAL NOT NULL,
    baseline_deg REAL NOT NULL, peak_deg REAL NOT NULL, rom_deg REAL NOT NULL, up_s REAL NOT NULL,
    hold_s REAL NOT NULL, down_s REAL NOT NULL, flags TEXT NOT NULL DEFAULT '');
CREATE INDEX reps_session ON reps(session_id);
PRAGMA user_version = 1;
"""


def test_migrates_a_version_1_file(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    session = make_session(counts=((5, 4),), fast_down=frozenset())
    conn = sqlite3.connect(db)
    conn.executescript(_V1_DDL)
    conn.execute(
        "INSERT INTO sessions VALUES (1, '2025-12-24T08:00:00', '2025-12-24T09:00:00', 'abc', ?, 'left,right', 1)",
        (json.dumps(["/data/old/left.csv", "/data/old/right.csv"]),),
    )
    conn.execute("INSERT INTO sets VALUES (1, 1, 2.0, 40.0, 5, 4, 1)")
    conn.executemany(
        "INSERT INTO reps VALUES (1, ?, 1, ?, ?, ?, ?, 0.0, ?, ?, ?, ?, ?, '')",
        [(r.leg.value, r.rep, r.start_s, r.peak_s, r.end_s, r.peak_deg, r.rom_deg, r.up_s, r.hold_s, r.down_s) for r in session.reps],
    )
    conn.commit()
    conn.close()

    migrated = open_history(db)
    try:
        assert migrated.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = {row[1] for row in migrated.execute("PRAGMA table_info(sessions)")}
        assert {"exercise", "settings_json"} <= columns
        assert migrated.execute("SELECT path, role, sha256 FROM sources ORDER BY rowid").fetchall() == [
            ("/data/old/left.csv", "input", None),
            ("/data/old/right.csv", "input", None),
        ]
    finally:
        migrated.close()
    (row,) = list_sessions(db)
    assert (row.exercise, row.left_reps, row.right_reps, row.uneven_sets, row.settings_json) == ("leg lift", 5, 4, (1,), None)
    # The migrated file takes new sessions, and opening it again is a no-op.
    assert store_session(db, session, Settings(), None, "plank leg lift").created
    assert [r.exercise for r in list_sessions(db)] == ["leg lift", "plank leg lift"]


def test_refuses_newer_foreign_and_broken_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(HistoryError, match=f"version {SCHEMA_VERSION} or older expected, got {SCHEMA_VERSION + 1}"):
        open_history(newer)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(HistoryError, match="other tables"):
        open_history(foreign)
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not sqlite at all" * 100)
    assert main(["history", "--db", str(broken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(broken) in err[0] and "SQLite history database expected" in err[0]


def test_csv_export_reads_back(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    a = make_session(counts=((10, 10), (10, 9)))
    b = make_session(counts=((0, 0),), fast_down=frozenset())  # a session with no reps still appears
    ida = store_session(db, a, Settings(), _files(tmp_path, "a"), "straight leg raise", "2026-05-01T10:00:00").session_id
    idb = store_session(db, b, Settings(), None, "bent knee raise", "2026-05-02T10:00:00").session_id
    out = tmp_path / "all.csv"
    n = export_csv(db, out)
    with open(out, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == EXPORT_COLUMNS
        rows = list(reader)
    assert n == len(rows) == len(a.reps) + 1
    rep_rows = [r for r in rows if r["session_id"] == str(ida)]
    by_key = {(r["leg"], int(r["set"]), int(r["rep"])): r for r in rep_rows}
    for rep in a.reps:
        row = by_key[(rep.leg.value, rep.set, rep.rep)]
        for name in ("start_s", "peak_s", "end_s", "peak_deg", "rom_deg", "up_s", "hold_s", "down_s"):
            assert float(row[name]) == getattr(rep, name)  # exact: written with repr precision
        assert row["flags"] == ";".join(rep.flags)
        summary = a.sets[rep.set - 1]
        assert (int(row["set_left_reps"]), int(row["set_right_reps"])) == (summary.left_reps, summary.right_reps)
        assert row["exercise"] == "straight leg raise" and "left=" in row["sources"]
        assert json.loads(row["settings_json"]) == Settings().to_dict()
    (empty,) = [r for r in rows if r["session_id"] == str(idb)]
    assert empty["exercise"] == "bent knee raise" and empty["rep"] == "" and empty["leg"] == ""


def test_group_inputs_pairs_csvs_by_name(tmp_path: Path) -> None:
    for name in ("mon_left.csv", "mon_right.csv", "tue_LEFT.csv", "tue_RIGHT.csv", "wed_left.csv", "s.rec"):
        (tmp_path / name).write_text("x")
    folder = tmp_path / "thu"
    folder.mkdir()
    (folder / "left.csv").write_text("x")
    (folder / "right.csv").write_text("x")
    names = ["mon_right.csv", "tue_LEFT.csv", "mon_left.csv", "wed_left.csv", "tue_RIGHT.csv", "s.rec"]
    groups = group_inputs([tmp_path / n for n in names] + [folder])
    assert set(groups) == {
        SessionInput(tmp_path / "s.rec"),
        SessionInput(None, folder / "left.csv", folder / "right.csv"),
        SessionInput(None, tmp_path / "mon_left.csv", tmp_path / "mon_right.csv"),
        SessionInput(None, tmp_path / "tue_LEFT.csv", tmp_path / "tue_RIGHT.csv"),
        SessionInput(None, tmp_path / "wed_left.csv", None),
    }
    (tmp_path / "both.csv").write_text("x")
    from legrep.errors import InputError

    with pytest.raises(InputError, match="with 'left' or 'right' in the name"):
        group_inputs([tmp_path / "both.csv"])
    with pytest.raises(InputError, match="got no such file"):
        group_inputs([tmp_path / "missing_left.csv"])
    with pytest.raises(InputError, match="got neither"):
        group_inputs([_empty_dir(tmp_path)])


def _empty_dir(tmp_path: Path) -> Path:
    path = tmp_path / "empty"
    path.mkdir()
    return path


def test_cli_lists_exports_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "via_env.db"
    monkeypatch.setenv("LEGREP_DB", str(db))
    sessions = [make_session(), make_session(counts=((8, 8),))]
    store_session(None, sessions[0], Settings(), _files(tmp_path, "a"), "straight leg raise", "2026-05-01T10:00:00")
    store_session(None, sessions[1], Settings(), None, "straight leg raise", "2026-05-04T10:00:00")
    assert db.is_file()
    assert main(["history"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and out[1].split()[:3] == ["1", "2026-05-01", "10:00"]
    assert main(["history", "--csv", str(tmp_path / "x.csv"), "--plot", str(tmp_path / "t.png")]) == 0
    out = capsys.readouterr().out
    assert f"wrote {len(sessions[0].reps) + len(sessions[1].reps)} rows" in out and "(2 sessions)" in out
    png = (tmp_path / "t.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    empty = tmp_path / "empty.db"
    assert main(["history", "--db", str(empty), "--plot", str(tmp_path / "none.png")]) == 2
    assert "no sessions to plot" in capsys.readouterr().err


def test_cli_add_imports_a_simulated_csv_pair_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "sim").mkdir()
    _left, _right, session = simulated_csvs(tmp_path / "sim")
    name = "straight leg raise"
    db = tmp_path / "h.db"
    args = ["history", "--db", str(db), "--exercise", name, "--started-at", "2026-05-01T10:00",
            "--add", str(tmp_path / "sim" / "left.csv"), str(tmp_path / "sim" / "right.csv")]  # fmt: skip
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "added as session 1" in first
    assert main(args) == 0
    assert "already stored as session 1" in capsys.readouterr().out
    (row,) = list_sessions(db)
    truth = {leg: sum(getattr(s, f"{leg}_reps") for s in session.sets) for leg in ("left", "right")}
    assert (row.left_reps, row.right_reps) == (truth["left"], truth["right"])
    assert not math.isnan(row.mean_peak_left_deg)


# --------------------------------------------------------------------------- concurrency and damage


def _still_csv(path: Path, tag: int) -> Path:
    """A small IMU CSV whose content (so history identity) depends on ``tag``."""
    from legrep.imu_csv import write_imu_csv
    from legrep.model import ImuBlock

    t = np.arange(0.0, 4.0, 0.01)
    acc = np.column_stack([np.full_like(t, 0.001 * tag), np.zeros_like(t), np.ones_like(t)])
    write_imu_csv(path, ImuBlock.from_arrays(t, acc, np.zeros((len(t), 3))))
    return path


def _analyze_in_child(barrier, queue, argv) -> None:  # type: ignore[no-untyped-def]
    import contextlib
    import io
    import logging

    logging.root.handlers.clear()  # pytest's capture handlers came along with fork: main's -v logs to err
    err = io.StringIO()
    barrier.wait()  # every process opens the new database at the same moment
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    queue.put((argv[-1], code, err.getvalue()))


def test_processes_storing_at_once_store_every_session_exactly_once(tmp_path: Path) -> None:
    import multiprocessing as mp

    db = tmp_path / "new.db"
    distinct = [_still_csv(tmp_path / f"d{i}_left.csv", i) for i in range(6)]
    same = _still_csv(tmp_path / "same_left.csv", 99)
    jobs = [(p, f"distinct {i}") for i, p in enumerate(distinct)] + [(same, f"same {k}") for k in range(4)]
    jobs += [(p, f"distinct {i} again") for i, p in enumerate(distinct[:2])]  # the same content, other names
    ctx = mp.get_context("fork")
    barrier, queue = ctx.Barrier(len(jobs)), ctx.Queue()
    procs = [
        ctx.Process(target=_analyze_in_child, args=(barrier, queue, ["-v", "analyze", "--left", str(p), "--db", str(db), "--exercise", tag]))
        for p, tag in jobs
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert all(code == 0 for _, code, _ in results), [r for r in results if r[1] != 0]
    problems = [err for _, _, err in results if "Traceback" in err or "error" in err]
    assert not problems, problems
    with sqlite3.connect(db) as conn:
        stored = sorted(r[0] for r in conn.execute("SELECT exercise FROM sessions"))
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert sorted(s.removesuffix(" again") for s in stored if s.startswith("distinct")) == [f"distinct {i}" for i in range(6)]
    assert len([s for s in stored if s.startswith("same")]) == 1
    said = [err for tag, _, err in results if tag.startswith("same")]
    assert sum("already stored as session" in e for e in said) == 3 and sum(" stored as session" in e and "already" not in e for e in said) == 1


def test_concurrent_migrators_of_an_old_database_migrate_once(tmp_path: Path) -> None:
    import threading

    db = tmp_path / "v1.db"
    conn = sqlite3.connect(db)
    conn.executescript(_V1_DDL)
    conn.close()
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_it() -> None:
        start.wait()
        try:
            open_history(db).close()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def _damaged_databases(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.db"
    for i in range(3):
        store_session(good, make_session(counts=((3, 3),)), Settings(), None, f"s{i}")
    with sqlite3.connect(good) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    out = {}
    scrambled = tmp_path / "scrambled.db"
    data = bytearray(good.read_bytes())
    rng = np.random.default_rng(3)
    data[4096:] = rng.integers(0, 256, len(data) - 4096, dtype=np.uint8).tobytes()  # every page after the first
    scrambled.write_bytes(bytes(data))
    out["scrambled"] = scrambled
    out["not sqlite"] = tmp_path / "notes.db"
    out["not sqlite"].write_text("my notes, not a database\n" * 50)
    out["directory"] = tmp_path / "folder.db"
    out["directory"].mkdir()
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    out["newer"] = newer
    return out


@pytest.mark.parametrize("kind", ["scrambled", "not sqlite", "directory", "newer"])
def test_a_damaged_database_is_reported_and_never_touched(kind: str, tmp_path: Path, capsys) -> None:
    from legrep.history import EXIT_NOT_STORED

    db = _damaged_databases(tmp_path)[kind]
    before = None if db.is_dir() else db.read_bytes()
    left = _still_csv(tmp_path / "x_left.csv", 1)
    reps = tmp_path / "reps.csv"
    assert main(["analyze", "--left", str(left), "--db", str(db), "--reps", str(reps)]) == EXIT_NOT_STORED
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "session not stored in history" in err and str(db) in err, err
    assert "--db" in err  # says what to do
    if kind == "scrambled":
        assert ".recover" in err
    assert reps.is_file()  # the results are still written
    assert (None if db.is_dir() else db.read_bytes()) == before
    assert not Path(f"{db}-wal").exists() or kind == "directory"
    assert main(["history", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (None if db.is_dir() else db.read_bytes()) == before


def test_a_lock_held_too_long_is_one_line_and_a_short_one_waits(tmp_path: Path, capsys, monkeypatch) -> None:
    import threading

    from legrep import history
    from legrep.history import EXIT_NOT_STORED

    db = tmp_path / "h.db"
    open_history(db).close()
    left = _still_csv(tmp_path / "x_left.csv", 2)
    monkeypatch.setattr(history, "_BUSY_TIMEOUT_S", 0.1)
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert main(["analyze", "--left", str(left), "--db", str(db)]) == EXIT_NOT_STORED
    finally:
        holder.execute("ROLLBACK")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "locked" in err and "try again" in err, err
    monkeypatch.setattr(history, "_BUSY_TIMEOUT_S", 30.0)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.5, lambda: holder.execute("ROLLBACK"))
    release.start()
    assert main(["analyze", "--left", str(left), "--db", str(db)]) == 0
    release.join()
    holder.close()
    assert len(list_sessions(db)) == 1


def test_history_prints_no_terminal_escapes(tmp_path: Path, capsys) -> None:
    db = tmp_path / "h.db"
    store_session(db, make_session(counts=((1, 1),)), Settings(), None, "raise\x1b[2J\x1b]0;owned\x07\r\u202eevil")
    assert main(["history", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert not any(c in out for c in "\x1b\x07\r\u202e"), repr(out)
    assert "raise" in out and "evil" in out


def test_history_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    db = tmp_path / "h.db"
    # The 400 sessions are only this test's input (a listing longer than the pipe holds): stored
    # over one connection that does not wait for the disk at each commit (SQLite's
    # ``synchronous = OFF``, on this connection only); what is tested is the reading process.
    conn = open_history(db)
    conn.execute("PRAGMA synchronous = OFF")
    session = make_session(counts=((1, 1),))
    for i in range(400):
        store_session(conn, session, Settings(), None, f"session {i}")
    conn.close()
    env = {**os.environ, "LEGREP_DB": str(db)}
    proc = subprocess.Popen([sys.executable, "-m", "legrep", "history"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141)
    assert err == "", err


def test_research_export_has_settings_once_per_session_and_reads_back(tmp_path: Path, capsys, monkeypatch) -> None:
    db = tmp_path / "h.db"
    a = make_session(counts=((10, 10), (10, 9)))
    b = make_session(counts=((0, 0),), fast_down=frozenset())
    ida = store_session(db, a, Settings(min_down_s=1.5), _files(tmp_path, "a"), "straight leg raise", "2026-05-01T10:00:00").session_id
    idb = store_session(db, b, Settings(), None, "bent knee raise", "2026-05-02T10:00:00").session_id
    out = tmp_path / "tables"
    assert main(["history", "--db", str(db), "--export", str(out)]) == 0
    assert "sessions.csv" in capsys.readouterr().out
    with open(out / "sessions.csv", newline="") as fh:
        sessions = list(csv.DictReader(fh))
    with open(out / "reps.csv", newline="") as fh:
        reps = list(csv.DictReader(fh))
    with open(out / "sets.csv", newline="") as fh:
        sets = list(csv.DictReader(fh))
    assert [int(s["session_id"]) for s in sessions] == [ida, idb]
    assert float(sessions[0]["setting_min_down_s"]) == 1.5
    assert float(sessions[1]["setting_min_down_s"]) == Settings().min_down_s
    for name, value in Settings().to_dict().items():
        assert float(sessions[1][f"setting_{name}"]) == value
    assert (int(sessions[0]["left_reps"]), int(sessions[0]["right_reps"]), int(sessions[0]["n_sets"])) == (20, 19, 2)
    assert not any("setting" in c or "settings" in c for c in reps[0])  # settings are not repeated per rep
    assert len(reps) == len(a.reps) and {int(r["session_id"]) for r in reps} == {ida}
    want = sorted((r.leg.value, r.set, r.rep, r.peak_deg, r.down_s) for r in a.reps)
    got = sorted((r["leg"], int(r["set"]), int(r["rep"]), float(r["peak_deg"]), float(r["down_s"])) for r in reps)
    assert got == want  # floats exact (repr precision)
    assert [(int(s["session_id"]), int(s["set"])) for s in sets] == [(ida, 1), (ida, 2)] + [(idb, s.set) for s in b.sets]
    try:
        import pyarrow.parquet as pq
    except ImportError:
        assert not (out / "reps.parquet").exists()
    else:
        table = pq.read_table(out / "reps.parquet").to_pylist()
        assert sorted((r["leg"], r["set"], r["rep"], r["peak_deg"], r["down_s"]) for r in table) == want
        stable = pq.read_table(out / "sessions.parquet").to_pylist()
        assert [s["setting_min_down_s"] for s in stable] == [1.5, Settings().min_down_s] and [s["session_id"] for s in stable] == [ida, idb]
    # without pyarrow: CSV only, and the old flat --csv still works
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    out2 = tmp_path / "tables2"
    assert main(["history", "--db", str(db), "--export", str(out2)]) == 0
    assert sorted(p.name for p in out2.iterdir()) == ["reps.csv", "sessions.csv", "sets.csv"]
    assert main(["history", "--db", str(db), "--csv", str(tmp_path / "flat.csv")]) == 0


@pytest.mark.parametrize("kind", ["scrambled", "not sqlite"])
def test_report_on_a_damaged_database_says_it_once(kind: str, tmp_path: Path, capsys, caplog) -> None:
    import logging

    """The report is written and the damage is one stderr line (it printed a second "no advice" one)."""
    from legrep.history import EXIT_NOT_STORED

    db = _damaged_databases(tmp_path)[kind]
    before = db.read_bytes()
    left = _still_csv(tmp_path / "x_left.csv", 1)
    out = tmp_path / "r.html"
    assert main(["report", "--left", str(left), "--db", str(db), "--out", str(out)]) == EXIT_NOT_STORED
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "session not stored in history" in err, err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records  # no second line
    assert out.is_file() and db.read_bytes() == before


def test_analyze_input_streams_csv_and_replays_recordings_with_the_whole_array_result(tmp_path: Path) -> None:
    """``report``/``history add`` analyse through analyze_input: CSVs read block by block (memory of
    the traces only), recordings by the batched file replay; both equal the whole-array paths."""
    from legrep.history import SessionInput, analyze_input
    from legrep.imu_csv import read_imu_csv
    from legrep.offline import analyze_arrays
    from legrep.replay import replay_recording
    from test_recording import run_session

    left, right, _ = simulated_csvs(tmp_path)
    whole = analyze_arrays(left=read_imu_csv(left), right=read_imu_csv(right))
    got = analyze_input(SessionInput(left_csv=left, right_csv=right)).result
    assert got.reps == whole.reps and got.sets == whole.sets and got.diagnostics == whole.diagnostics
    for leg in whole.traces:
        np.testing.assert_array_equal(got.traces[leg][0], whole.traces[leg][0])
        np.testing.assert_array_equal(got.traces[leg][1], whole.traces[leg][1])
    recording = tmp_path / "s.legrep"
    run_session(recording, seed=9)
    ref, _ = replay_recording(recording)
    got = analyze_input(SessionInput(recording=recording)).result
    assert got.reps == ref.reps and got.sets == ref.sets and got.diagnostics == ref.diagnostics
    for leg in ref.traces:
        np.testing.assert_array_equal(got.traces[leg][1], ref.traces[leg][1])
