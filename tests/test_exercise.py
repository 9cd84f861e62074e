"""Which exercise each set was, and both thighs rising together (host/exercise.py).

Judged on simulated sessions with truth (legrep_sim.exercise_sessions): random sensor
mountings, typical and harsh sensor errors, every exercise kind, double-leg sets mixed with
single-leg ones.
"""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from legrep.cli import main
from legrep.exercise import (
    CUES,
    EXERCISES,
    classify_elevation,
    exercise_from_text,
    flag_both_legs,
    override_exercise,
)
from legrep.history import store_session
from legrep.live import LegState, LiveState
from legrep.model import ImuBlock, Leg, Rep, SessionResult
from legrep.offline import analyze_arrays
from legrep.pipeline import SessionAnalyzer
from legrep.settings import Settings
from legrep.view import TerminalView
from legrep_sim.exercise_sessions import KINDS, ExerciseTruth, double_leg_session, exercise_session, score_both_legs


def _analyse(truth: ExerciseTruth, settings: Settings | None = None) -> SessionResult:
    s = truth.session.signals
    blocks = {leg: (sig.time_s, sig.acc_g, sig.gyr_dps) for leg, sig in s.items()}
    return analyze_arrays(blocks.get("left"), blocks.get("right"), settings=settings)


def _both_legs_counts(truth: ExerciseTruth, result: SessionResult) -> tuple[int, int, int]:
    return score_both_legs(truth, [(r.leg.value, r.start_s, "both_legs" in r.flags) for r in result.reps])


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(("errors", "tempo", "seed"), [("typical", "normal", 11), ("harsh", "fast", 12), ("typical", "slow", 13)])
def test_exercise_per_set_matches_truth(kind: str, errors: str, tempo: str, seed: int) -> None:
    truth = exercise_session(kind, seed, errors=errors, tempo=tempo)
    result = _analyse(truth)
    assert len(result.sets) == len(truth.session.sets)
    assert [s.exercise for s in result.sets] == list(truth.exercise_per_set)
    assert not any("both_legs" in r.flags for r in result.reps)  # one leg at a time, every rep


def test_alternating_legs_are_not_both_legs() -> None:
    truth = exercise_session("straight_leg_raise", 21, order="alternating", tempo="fast")
    result = _analyse(truth)
    assert [s.exercise for s in result.sets] == ["straight_leg_raise"]
    assert not any("both_legs" in r.flags for r in result.reps)


def test_both_legs_precision_and_recall_on_mixed_sets() -> None:
    tp = fp = fn = 0
    for seed in (31, 32, 34):
        truth = double_leg_session(seed, errors="harsh" if seed == 34 else "typical")
        result = _analyse(truth)
        assert [s.exercise for s in result.sets] == list(truth.exercise_per_set)
        a, b, c = _both_legs_counts(truth, result)
        tp, fp, fn = tp + a, fp + b, fn + c
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert tp + fn == 72  # 3 sessions x 2 double sets x 6 reps x 2 legs
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)


def test_any_chunking_gives_the_same_labels() -> None:
    truth = double_leg_session(41, pattern=("double", "alternating"))
    batch = _analyse(truth)
    rng = np.random.default_rng(5)
    analyzer = SessionAnalyzer((Leg.LEFT, Leg.RIGHT))
    sig = truth.session.signals
    pos = {"left": 0, "right": 0}
    live_cues = 0
    while any(pos[leg] < len(sig[leg].time_s) for leg in pos):
        leg = str(rng.choice([leg for leg in pos if pos[leg] < len(sig[leg].time_s)]))
        n = int(rng.integers(1, 400))
        i = pos[leg]
        s = sig[leg]
        events = analyzer.update(Leg(leg), ImuBlock.from_arrays(s.time_s[i : i + n], s.acc_g[i : i + n], s.gyr_dps[i : i + n]))
        live_cues += sum("both_legs" in getattr(e, "rep", None).flags for e in events if hasattr(e, "rep"))  # type: ignore[union-attr]
        pos[leg] = i + n
    live = analyzer.finish()
    assert [s.exercise for s in live.sets] == [s.exercise for s in batch.sets] == ["double_leg_raise", "straight_leg_raise"]
    assert [r.flags for r in live.reps] == [r.flags for r in batch.reps]
    assert live_cues >= 6  # the second rep of each double lift closes flagged: the live cue


def test_elevation_thresholds_and_a_trainers_settings() -> None:
    s = Settings()
    cases = {
        2.0: "straight_leg_raise", 20.0: "straight_leg_raise", 55.0: "bent_knee_raise",
        -20.0: "hip_extension", -105.0: "hip_extension", -75.0: "standing_hip_flexion",
        150.0: "unknown", -170.0: "unknown",
    }  # fmt: skip
    assert {e: classify_elevation(e, s) for e in cases} == cases
    assert classify_elevation(30.0, s.replace(exercise_bent_knee_deg=25.0)) == "bent_knee_raise"
    assert set(cases.values()) <= set(EXERCISES)


def _rep(leg: Leg, start: float, end: float) -> Rep:
    return Rep(leg, start, (start + end) / 2, end, 0.0, 80.0, 80.0, 1.0, 0.5, 1.5, end + 0.3)


def test_both_legs_definition_on_hand_built_reps() -> None:
    s = Settings()
    reps = [
        _rep(Leg.LEFT, 0.0, 4.0), _rep(Leg.RIGHT, 0.2, 4.1),  # together
        _rep(Leg.LEFT, 10.0, 14.0), _rep(Leg.RIGHT, 13.0, 17.0),  # 1 s of 4 overlap: scissors, not together
        _rep(Leg.LEFT, 20.0, 24.0), _rep(Leg.RIGHT, 21.5, 25.5),  # 2.5 s of 4: together
    ]  # fmt: skip
    flagged = ["both_legs" in r.flags for r in flag_both_legs(reps, s)]
    assert flagged == [True, True, False, False, True, True]
    strict = ["both_legs" in r.flags for r in flag_both_legs(reps, s.replace(both_legs_overlap_frac=0.9))]
    assert strict == [True, True, False, False, False, False]


def test_exercise_option_text() -> None:
    assert exercise_from_text("bird dog") == "hip_extension"
    assert exercise_from_text("Plank leg lifts (slow)") == "hip_extension"
    assert exercise_from_text("straight leg raise (synthetic recording)") == "straight_leg_raise"
    assert exercise_from_text("bent-knee raise") == "bent_knee_raise"
    assert exercise_from_text("leg lift") is None and exercise_from_text(None) is None
    assert exercise_from_text("straight legs") is None


def test_cli_summary_reps_csv_history_and_override(tmp_path: Path) -> None:
    truth = double_leg_session(51, pattern=("double", "one_then_other"))
    truth.session.write_csv(tmp_path)
    db = tmp_path / "h.db"
    args = ["analyze", "--left", str(tmp_path / "left.csv"), "--right", str(tmp_path / "right.csv"), "--db", str(db)]
    assert main([*args, "--summary", str(tmp_path / "s.json"), "--reps", str(tmp_path / "r.csv")]) == 0
    data = json.loads((tmp_path / "s.json").read_text())
    assert [s["exercise"] for s in data["sets"]] == ["double_leg_raise", "straight_leg_raise"]
    assert data["per_leg"]["left"]["flags"]["both_legs"] == 6
    rows = (tmp_path / "r.csv").read_text().splitlines()
    assert sum("both_legs" in row for row in rows) == 12
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT exercise FROM sets ORDER BY set_no")] == ["double_leg_raise", "straight_leg_raise"]
    # --exercise naming one of the exercises overrides every set
    assert main([*args, "--no-history", "--summary", str(tmp_path / "o.json"), "--exercise", "bird dogs"]) == 0
    data = json.loads((tmp_path / "o.json").read_text())
    assert [s["exercise"] for s in data["sets"]] == ["hip_extension", "hip_extension"]


def test_history_keeps_the_set_exercise(tmp_path: Path) -> None:
    result = _analyse(exercise_session("bird_dog", 61, reps=3))
    result = override_exercise(result, "plank leg lift")
    store_session(tmp_path / "h.db", result)
    with sqlite3.connect(tmp_path / "h.db") as conn:
        assert conn.execute("SELECT exercise FROM sets").fetchall() == [("hip_extension",)]


def test_live_view_says_one_leg_at_a_time() -> None:
    out = io.StringIO()
    view = TerminalView(out, ansi=False)
    rep = Rep(Leg.LEFT, 1.0, 2.0, 4.0, 0.0, 80.0, 80.0, 1.0, 0.5, 1.5, 4.3, ("both_legs",))
    legs = tuple(LegState(leg, 1, 0.0, rep, None, "connected", "sim") for leg in (Leg.LEFT, Leg.RIGHT))
    view.rep(rep, LiveState(4.3, legs, ()))
    assert CUES["both_legs"] in out.getvalue()
    view.rep(_rep(Leg.RIGHT, 5.0, 8.0), LiveState(8.3, legs, ()))
    assert out.getvalue().count(CUES["both_legs"]) == 1


def test_report_names_each_sets_exercise() -> None:
    """The report's words (its figures, a dozen matplotlib PNGs, are drawn and checked in
    tests/test_report.py: here they are left out, the text does not depend on them)."""
    from legrep.report import render_html

    result = _analyse(double_leg_session(71, pattern=("double", "alternating")))
    html = render_html(result, Settings(), figures_png={})
    assert "Exercise: set 1 double leg raise · set 2 straight leg raise" in html
    assert "both_legs" in html  # the flag counts of the averages table


def test_both_legs_search_equals_checking_every_pair() -> None:
    """The bisection (set close) and the bounded walk back (live) find exactly what comparing
    every rep with every rep of the other leg finds, on random non-overlapping reps per leg."""
    from legrep.exercise import OpenReps, _overlaps, live_both_legs

    s = Settings()
    rng = np.random.default_rng(11)
    pairs_found = 0
    for _ in range(30):
        reps: list[Rep] = []
        for leg in (Leg.LEFT, Leg.RIGHT):
            t = float(rng.uniform(0.0, 3.0))
            for _ in range(int(rng.integers(0, 25))):
                start = t + float(rng.uniform(0.0, 3.0))
                end = start + float(rng.uniform(0.5, 5.0))
                reps.append(_rep(leg, start, end))
                t = end
        order = list(rng.permutation(len(reps)))
        shuffled = [reps[i] for i in order]
        brute = [any(o.leg is not r.leg and _overlaps(r, o, s) for o in shuffled) for r in shuffled]
        assert ["both_legs" in r.flags for r in flag_both_legs(shuffled, s)] == brute
        # live: reps close in closing order (closed_s never decreases within a leg)
        by_close = sorted(reps, key=lambda r: r.closed_s)
        live = [("both_legs" in live_both_legs(r, by_close[:i], s).flags) for i, r in enumerate(by_close)]
        expect = [any(o.leg is not r.leg and _overlaps(r, o, s) for o in by_close[:i]) for i, r in enumerate(by_close)]
        assert live == expect
        # the pipeline's index of the open set (bisection per leg) finds the same
        index = OpenReps()
        indexed = []
        for r in by_close:
            indexed.append("both_legs" in index.flag(r, s).flags)
            index.extend([r])
        assert indexed == expect
        pairs_found += sum(expect)
    assert pairs_found > 20  # the random reps do overlap often enough to test something


def test_block_means_equal_numpy_mean_bit_for_bit() -> None:
    """The posture fit's decimation gives exactly what ``reshape(...).mean(axis=1)`` gives."""
    from legrep.exercise import _block_means

    rng = np.random.default_rng(5)
    for step in (1, 2, 3, 4):
        for shape in ((60,), (60, 3)):
            x = rng.normal(0.0, 1.0, (shape[0] * step, *shape[1:])) * 10.0 ** rng.integers(-8, 8)
            x[::7] = -0.0
            x[:4] = -0.0  # a block of zeros of either sign
            want = x.reshape(shape[0], step, *shape[1:]).mean(axis=1)
            got = _block_means(x, shape[0], step)
            assert got.shape == want.shape and got.tobytes() == want.tobytes()
