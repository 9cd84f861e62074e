"""What the coach says and when: legrep's real analysis of simulated sessions (legrep_sim) drives
the coaching sink in session time; cues are checked against the simulator's truth and the events."""

from __future__ import annotations

import re

import pytest

from coach_drive import drive
from legrep.coach.cues import (
    COUNT_DEADLINE_S,
    Coach,
    Cue,
    CueKind,
    SpeechPolicy,
    Targets,
    VoiceMode,
    number_words,
    schedule_speech,
)
from legrep.coach.sink import CoachSink
from legrep.errors import InputError
from legrep.model import Leg
from legrep.pipeline import RepClosed, SetClosed
from legrep_sim.scenarios import SessionSpec, SetSpec, simulate

WORDS = {number_words(n): n for n in range(0, 100)}


class Collect:
    def __init__(self) -> None:
        self.cues: list[Cue] = []

    def say(self, cue: Cue) -> None:
        self.cues.append(cue)


@pytest.fixture(scope="module")
def uneven_session():  # type: ignore[no-untyped-def]
    """Set 1: 5 left then 4 right, the 4th left rep partial; set 2: 5 and 5 lowered fast."""
    spec = SessionSpec(
        sets=(SetSpec(5, 4, partial=(("left", 3),)), SetSpec(5, 5, down_s=0.6, bottom_rest_s=0.8)),
        rest_between_sets_s=30.0,
    )
    return simulate(spec, seed=3)


def run(sim, targets: Targets | None = None, mode: VoiceMode = VoiceMode.ALL):  # type: ignore[no-untyped-def]
    coach = Coach((Leg.LEFT, Leg.RIGHT), targets, mode=mode)
    said = Collect()
    progress = []

    class Probe(CoachSink):
        def show(self, state):  # type: ignore[no-untyped-def]
            super().show(state)
            progress.append((state.time_s, self.coach.progress()))

    events = drive(Probe(coach, [said]), sim.signals)
    return said.cues, events, progress


def count_of(text: str) -> tuple[str, int] | None:
    m = re.match(r"(left|right), ([a-z-]+)", text)
    return (m.group(1), WORDS[m.group(2)]) if m else None


def test_counts_follow_every_rep_in_order_and_in_time(uneven_session) -> None:  # type: ignore[no-untyped-def]
    cues, events, _ = run(uneven_session)
    reps = [ev.rep for ev in events if isinstance(ev, RepClosed)]
    truth = uneven_session.reps
    assert len(reps) == len(truth)  # the analysis found every rep (otherwise the rest is moot)
    counted = [(c, count_of(c.text)) for c in cues if count_of(c.text)]
    assert len(counted) == len(truth)
    per_set: dict[tuple[int, str], int] = {}
    for (cue, (leg, n)), t in zip(counted, sorted(truth, key=lambda r: r.end_s)):
        per_set[(t.set, t.leg)] = per_set.get((t.set, t.leg), 0) + 1
        assert (leg, n) == (t.leg, per_set[(t.set, t.leg)])
    # the count comes as soon as the rep closes (<= 0.3 s) and may not wait longer than its deadline
    for cue, rep in zip((c for c, _ in counted), reps):
        assert 0.0 <= cue.time_s - rep.closed_s <= 0.3
        assert cue.deadline_s - cue.time_s == pytest.approx(COUNT_DEADLINE_S if cue.kind is not CueKind.ROUTINE else 2.0)


def test_form_cues_name_the_flagged_and_partial_reps(uneven_session) -> None:  # type: ignore[no-untyped-def]
    cues, events, _ = run(uneven_session)
    reps = [ev.rep for ev in events if isinstance(ev, RepClosed)]
    rep_cues = [c for c in cues if count_of(c.text)]
    for cue, rep in zip(rep_cues, reps):
        assert ("lower slowly" in cue.text) == ("fast_down" in rep.flags), (cue.text, rep.flags)
    # set 2 is lowered in 0.6 s (programmed): every rep of it is flagged and cued
    set2 = [c for c in rep_cues if c.time_s > uneven_session.sets[1].start_s]
    assert len(set2) == 10 and all("lower slowly" in c.text for c in set2)
    # the partial rep (truth) gets "all the way up", and no other rep does
    partial_truth = [i for i, r in enumerate(sorted(uneven_session.reps, key=lambda r: r.end_s)) if r.partial]
    partial_said = [i for i, c in enumerate(rep_cues) if "all the way up" in c.text]
    assert partial_said == partial_truth == [3]


def test_an_uneven_set_names_the_leg_that_needs_more(uneven_session) -> None:  # type: ignore[no-untyped-def]
    cues, events, progress = run(uneven_session)
    closed = [c for c in cues if c.text.startswith("set done")]
    assert [c.text for c in closed] == ["set done, five and four. one more on the right", "set done, five and five"]
    # while set 1 is under way the left leg is ahead (left-then-right routine): no warning
    set1_end = next(ev.summary for ev in events if isinstance(ev, SetClosed)).end_s
    during = [p for t, p in progress if t < set1_end and p.legs[0].reps > p.legs[1].reps]
    assert during and all(p.warning == "" and "normal" in p.balance for p in during)
    after = [p for t, p in progress if set1_end + 20 < t < uneven_session.sets[1].start_s]
    assert after and all(p.warning == "set 1: right needs 1 more rep" for p in after)


def test_targets_switch_legs_and_done(uneven_session) -> None:  # type: ignore[no-untyped-def]
    cues, _, progress = run(uneven_session, Targets(reps_per_leg=5, sets=2))
    texts = [c.text for c in cues]
    switch = [t for t in texts if "switch legs" in t]
    assert len(switch) == 2 and all(t.startswith("left, five") for t in switch)  # left first, both sets
    assert texts[-1].startswith("right, five") and texts[-1].endswith("set done, five and five. done")
    assert "set done, five and four. one more on the right" in texts
    # what remains per leg counts down within set 1, from 5 to 0 on the left
    remaining = [p.of(Leg.LEFT).remaining for _, p in progress if p.set_no == 1 and p.legs[1].reps == 0]  # type: ignore[union-attr]
    assert remaining[0] == 5 and remaining[-1] == 0 and remaining == sorted(remaining, reverse=True)
    assert progress[-1][1].done


@pytest.mark.parametrize("mode", [VoiceMode.COUNTS, VoiceMode.CUES])
def test_voice_modes_filter(uneven_session, mode: VoiceMode) -> None:  # type: ignore[no-untyped-def]
    cues, _, _ = run(uneven_session, Targets(reps_per_leg=5), mode)
    if mode is VoiceMode.COUNTS:
        assert cues and all(count_of(c.text) and "." not in c.text for c in cues)
    else:
        assert cues and not any(count_of(c.text) for c in cues)
        assert "lower slowly" in [c.text for c in cues] and any("switch legs" in c.text for c in cues)


def test_speech_policy_drops_stale_and_superseded_counts() -> None:
    def count(t: float, n: int) -> Cue:
        return Cue(t, f"left, {number_words(n)}", CueKind.COUNT, t + 0.5, Leg.LEFT)

    routine = Cue(0.25, "switch legs", CueKind.ROUTINE, 2.25)
    cues = [count(0.0, 1), count(0.1, 2), count(0.2, 3), routine, count(0.3, 4), count(2.9, 5)]
    spoken, dropped = schedule_speech(cues, [1.0] * len(cues))
    # "one" at 0; the voice is busy to 1.0; counts 2-4 supersede each other, and 4 is stale at 1.0
    # (deadline 0.8); the routine cue waits (deadline 2.25); "five" comes after the voice is free
    assert [(s.cue.text, s.start_s) for s in spoken] == [("left, one", 0.0), ("switch legs", 1.0), ("left, five", 2.9)]
    assert sorted(c.text for c in dropped) == ["left, four", "left, three", "left, two"]
    for s in spoken:
        assert s.start_s <= s.cue.deadline_s
    policy = SpeechPolicy()
    for n in range(1, 20):
        policy.push(count(0.01 * n, n))
    assert len(policy.pending) == 1  # never piles up


def test_bad_targets_are_one_line() -> None:
    with pytest.raises(InputError, match="--reps-per-leg must be >= 1, got 0"):
        Targets(reps_per_leg=0)
    with pytest.raises(InputError, match="--target-deg must be in"):
        Targets(target_deg=float("nan"))
    with pytest.raises(InputError, match="--voice must be one of counts, cues, all; got 'loud'"):
        VoiceMode.parse("loud")


def test_number_words() -> None:
    assert [number_words(n) for n in (0, 3, 10, 19, 20, 42, 100, 115)] == [
        "zero", "three", "ten", "nineteen", "twenty", "forty-two", "one hundred", "one hundred and fifteen",
    ]  # fmt: skip


def test_a_sensor_down_long_enough_is_announced_lost_then_back_in_every_mode() -> None:
    from legrep.coach.cues import LINK_LOST_CUE_S

    for mode in VoiceMode:
        coach = Coach((Leg.LEFT, Leg.RIGHT), mode=mode)
        said = []
        for t in (10.0, 10.5, 11.0):  # a drop of 1.2 s that comes back: not announced
            said += coach.link(Leg.RIGHT, False, t)
        said += coach.link(Leg.RIGHT, True, 11.2)
        assert said == []
        for t in (20.0, 20.0 + LINK_LOST_CUE_S - 0.1, 20.0 + LINK_LOST_CUE_S, 25.0):
            said += coach.link(Leg.RIGHT, False, t)
        assert [c.text for c in said] == ["right sensor lost"] and said[0].time_s == 20.0 + LINK_LOST_CUE_S
        said += coach.link(Leg.LEFT, True, 26.0) + coach.link(Leg.RIGHT, True, 26.0) + coach.link(Leg.RIGHT, True, 27.0)
        assert [c.text for c in said] == ["right sensor lost", "right sensor back"]
        assert all(c.kind is CueKind.ALERT and c.leg is Leg.RIGHT for c in said)


def test_a_low_battery_is_said_once_until_the_sensor_is_charged() -> None:
    """Through the sink, as the live loop's snapshots carry each sensor's battery level."""
    from legrep.drivers.base import LinkState
    from legrep.live import LegState, LiveState

    said = Collect()
    sink = CoachSink(Coach((Leg.LEFT, Leg.RIGHT), mode=VoiceMode.COUNTS), [said])

    def show(t: float, left: int | None, right: int | None) -> None:
        legs = tuple(LegState(leg, 0, 0.0, None, pct, LinkState.CONNECTED, leg.value)
                     for leg, pct in ((Leg.LEFT, left), (Leg.RIGHT, right)))
        sink.show(LiveState(t, legs, ()))

    for t, left in enumerate([40, 16, 15, 14, 16, 15, 24, 13, 30, 12]):
        show(float(t), left, None)
    assert [(c.time_s, c.text) for c in said.cues] == [(2.0, "left sensor battery low"), (9.0, "left sensor battery low")]
    assert all(c.kind is CueKind.ALERT for c in said.cues)
