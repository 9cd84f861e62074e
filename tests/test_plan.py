"""The programme (host/plan.py, ``legrep plan``): histories built from simulated sessions through
the real analysis and the real history store, one per branch of the rules (progress, stay, step
back), a trainer's edited TOML, and one-line errors for a malformed one."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from legrep.cli import main
from legrep.history import store_session
from legrep.model import SessionResult
from legrep.offline import analyze_arrays
from legrep.plan import (
    SessionFacts,
    SetFacts,
    advise,
    default_plan_text,
    load_history,
    load_plan,
    parse_plan,
)
from legrep.errors import InputError
from legrep_sim.scenarios import SessionSpec, SetSpec, simulate

CONTROLLED = dict(up_s=1.5, hold_s=0.5, down_s=2.6, bottom_rest_s=1.0, tempo_jitter=0.05)
"""Lowering over 2.6 s: reads ~2.2 s (a stopwatch reading of a smooth move is 0.83 of it), above 1.6."""
DROPPED = dict(up_s=1.5, hold_s=0.5, down_s=1.0, bottom_rest_s=1.0, tempo_jitter=0.05)


@functools.lru_cache(maxsize=None)
def _session(kind: str, seed: int) -> SessionResult:
    """A simulated bent-knee session analysed for real: ``good`` (2 sets of 10 per leg, lowered over
    2.6 s), ``uneven`` (second set 10 left / 9 right), ``dropped`` (lowered in 1 s), ``short``
    (one set of 5 per leg), ``bird_dog`` (2 sets of 8 per leg)."""
    exercise = "bird_dog" if kind == "bird_dog" else "bent_knee_raise"
    sets = {
        "good": (SetSpec(10, 10, **CONTROLLED), SetSpec(10, 10, **CONTROLLED)),
        "uneven": (SetSpec(10, 10, **CONTROLLED), SetSpec(10, 9, **CONTROLLED)),
        "dropped": (SetSpec(10, 10, **DROPPED), SetSpec(10, 10, **DROPPED)),
        "short": (SetSpec(5, 5, **CONTROLLED),),
        "bird_dog": (SetSpec(8, 8, **CONTROLLED), SetSpec(8, 8, **CONTROLLED)),
    }[kind]
    sim = simulate(SessionSpec(exercise=exercise, sets=sets, rest_between_sets_s=20.0), seed)
    s = sim.signals
    return analyze_arrays((s["left"].time_s, s["left"].acc_g, s["left"].gyr_dps),
                          (s["right"].time_s, s["right"].acc_g, s["right"].gyr_dps))  # fmt: skip


def _history(tmp_path: Path, kinds: list[str]) -> Path:
    """Store the sessions (one per day) in a fresh history database, as `legrep analyze` would."""
    db = tmp_path / "history.db"
    for day, kind in enumerate(kinds, start=1):
        store_session(db, _session(kind, 100 + day), started_at=f"2026-05-{day:02d}T18:00:00+00:00", exercise=kind)
    return db


def test_the_simulated_sessions_are_what_the_plan_expects() -> None:
    good = _session("good", 101)
    assert [s.exercise for s in good.sets] == ["bent_knee_raise", "bent_knee_raise"]
    assert [(s.left_reps, s.right_reps) for s in good.sets] == [(10, 10), (10, 10)]
    assert min(r.down_s for r in good.reps) >= 1.6
    assert max(r.down_s for r in _session("dropped", 102).reps) < 1.6
    assert [s.uneven for s in _session("uneven", 103).sets] == [False, True]


def test_progress_after_two_sessions_that_met_every_target(tmp_path: Path) -> None:
    db = _history(tmp_path, ["good", "good"])
    progress = advise(load_plan(), load_history(db))
    assert progress.step == 1
    assert [e.move for e in progress.entries] == ["", "progress"]
    assert progress.next_time().startswith("next time: both knees bent at 45° (step 2")


def test_stay_when_a_target_was_missed(tmp_path: Path) -> None:
    db = _history(tmp_path, ["good", "dropped"])
    progress = advise(load_plan(), load_history(db))
    assert progress.step == 0 and progress.met_in_a_row == 0
    advice = progress.next_time()
    assert advice.startswith("next time: single-leg bent-knee raises again (missing: lowering over >= 1.6 s (")
    # a miss in between restarts the count: good, uneven, good is one in a row, not two
    db2 = _history(tmp_path / "b", ["good", "uneven", "good"])
    progress = advise(load_plan(), load_history(db2))
    assert progress.step == 0 and progress.met_in_a_row == 1
    assert progress.next_time() == "next time: single-leg bent-knee raises again (1 of 2 sessions in a row met every target)"


def test_step_back_after_uneven_legs_twice(tmp_path: Path) -> None:
    db = _history(tmp_path, ["good", "good", "uneven", "uneven"])
    progress = advise(load_plan(), load_history(db))
    assert [e.move for e in progress.entries] == ["", "progress", "", "step back"]
    assert [e.step for e in progress.entries] == [0, 0, 1, 1]
    assert progress.step == 0
    assert progress.next_time().startswith("next time: back to single-leg bent-knee raises (step 1: legs uneven in 2 sessions")


def test_step_back_after_the_back_arched_twice() -> None:
    def facts(flags: tuple[str, ...]) -> SessionFacts:
        one = SetFacts("bent_knee_raise", {"left": 12, "right": 12}, False, (2.0,) * 24, flags)
        return SessionFacts("s", "", (one, one))

    good, arched = facts(()), facts(("back_arch",))
    progress = advise(load_plan(), [good, good, arched, good, arched, arched])
    assert [e.move for e in progress.entries] == ["", "progress", "", "", "", "step back"]
    assert "back arched" in progress.next_time()
    assert progress.entries[2].verdict.missing == ("no back arch (2 reps arched)",)  # one per set


def test_other_exercises_and_alternatives_do_not_move_the_person(tmp_path: Path) -> None:
    db = _history(tmp_path, ["good", "bird_dog", "good"])
    progress = advise(load_plan(), load_history(db))
    alt = progress.entries[1]
    assert not alt.verdict.at_step and alt.alternative == "plank with alternating leg lifts to the back"
    assert alt.alt_verdict is not None and alt.alt_verdict.met
    assert progress.step == 1  # the two bent-knee sessions are "in a row" at the step


def test_a_trainers_edited_plan_takes_effect(tmp_path: Path) -> None:
    db = _history(tmp_path, ["short"])
    assert advise(load_plan(), load_history(db)).step == 0  # default: 2 sets of 10 per leg needed
    edited = default_plan_text().replace("progress_after = 2", "progress_after = 1")
    edited = edited.replace("reps_per_leg = 10\nsets = 2", "reps_per_leg = 5\nsets = 1")
    assert edited.count("progress_after = 1") == 1 and "reps_per_leg = 5\nsets = 1" in edited
    plan_path = tmp_path / "trainer.toml"
    plan_path.write_text(edited)
    progress = advise(load_plan(plan_path), load_history(db))
    assert progress.step == 1
    assert progress.next_time().startswith("next time: both knees bent at 45° (step 2: 1 sessions in a row")


def test_plan_command_shows_steps_position_and_advice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = _history(tmp_path, ["good", "good"])
    assert main(["plan", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "1. single-leg bent-knee raises [bent_knee_raise]" in out
    assert re.search(r"2\. both knees bent at 45° \[bent_knee_raise\]  <- you are here", out)
    assert "10 reps per leg x 2 sets, lower over >= 1.6 s, even legs, no back arch, one leg at a time" in out
    assert "plank with alternating leg lifts to the back" in out and "bird dogs" in out
    assert out.count(": step 1: met every target") == 2 and "-> progress" in out
    assert out.rstrip().splitlines()[-1].startswith("next time: both knees bent at 45°")


def test_report_ends_with_the_advice(tmp_path: Path) -> None:
    db = _history(tmp_path, ["good"])
    sim = simulate(SessionSpec(exercise="bent_knee_raise", sets=(SetSpec(10, 10, **CONTROLLED), SetSpec(10, 10, **CONTROLLED)),
                               rest_between_sets_s=20.0), 102)  # fmt: skip
    sim.write_csv(tmp_path / "csv")
    out = tmp_path / "r.html"
    args = ["report", "--left", str(tmp_path / "csv" / "left.csv"), "--right", str(tmp_path / "csv" / "right.csv"),
            "--out", str(out), "--db", str(db), "--started-at", "2026-05-02T18:00"]  # fmt: skip
    assert main(args) == 0
    html = out.read_text()
    body = html[: html.index("</main>")]
    last = body[body.rindex("<h2>") :]
    assert last.startswith("<h2>Next time</h2>") and 'id="advice">next time: both knees bent at 45°' in last
    assert len(load_history(db)) == 2  # this session was stored once, and counted once


def test_init_writes_the_default_plan_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plan.toml"
    assert main(["plan", "--init", str(path)]) == 0
    assert load_plan(path).steps == load_plan().steps
    assert main(["plan", "--init", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not overwriting" in err[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x"\n[rules]\nprogress_after = 2\n[[step]]\nid = "a"\ntitle = "t"\nexercise = "bent_knee_raise"\nreps_per_leg = 1O\n',
         r"at line 8, column 17"),
        ('name = "x"\n[[step]]\nid = "a"\ntitle = "t"\nexercise = "bent_knee_raise"\n\n[[step]]\nid = "b"\ntitle = "u"\nexercise = "bent_knees"\n',
         r"step 2 \(line 7\): exercise must be one of .*got 'bent_knees'"),
        ('[[step]]\nid = "a"\ntitle = "t"\nexercise = "bent_knee_raise"\nsets = "two"\n', r"step 1 \(line 1\): sets must be int, got 'two'"),
        ('[[step]]\nid = "a"\ntitle = "t"\nexercise = "bent_knee_raise"\nrepz = 3\n', r"step 1 \(line 1\): unknown key 'repz'"),
        ('[rules]\nprogress_after = 0\n[[step]]\nid = "a"\ntitle = "t"\nexercise = "bent_knee_raise"\n', r"counts must be >= 1"),
        ('name = "no steps"\n', r"at least one \[\[step\]\] expected"),
    ],
)
def test_a_malformed_plan_is_one_line_naming_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_plan(text, "p.toml")
    path = tmp_path / "p.toml"
    path.write_text(text)
    assert main(["plan", "--plan", str(path), "--db", str(tmp_path / "none.db")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]) and str(path) in err[0]
    assert not (tmp_path / "none.db").exists()  # a plan command never creates a history
