"""Live capture end to end over the BLE stack: a scripted two-leg session from the physical
simulator, streamed by the firmware model behind bumble GATT servers, with the link dropped three
times for 2-5 s in the middle of reps. Checked against the simulator's truth and the firmware's own
bookkeeping; then the recording is replayed and must give the same reps."""

from __future__ import annotations

import io

import numpy as np
import pytest

from legrep_sim import virtual_time
from legrep_sim.peripheral import SignalArrays
from legrep_sim.scenarios import SessionSpec, SetSpec, simulate
from legrep.coach.cues import LINK_LOST_CUE_S, Coach, Cue, CueKind
from legrep.coach.sink import CoachSink
from legrep.commands.demo import run_demo
from legrep.live import LiveState
from legrep.model import Leg
from legrep.recording import RecordingReader
from legrep.records import Kind
from legrep.replay import replay_recording
from legrep.view import TerminalView, angle_bar

SPEED = 1.0  # virtual time: the clock jumps, so no speed-up is needed
ACC_LSB_G = 16 / 32768  # the virtual sensors run at 16 g / 2000 dps full scale
GYR_LSB_DPS = 2000 / 32768


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory):
    sim = simulate(
        SessionSpec(
            sets=(
                SetSpec(4, 4, order="alternating", up_s=1.0, hold_s=0.5, down_s=1.2, bottom_rest_s=0.6),
                SetSpec(4, 3, up_s=1.0, hold_s=0.5, down_s=1.2, bottom_rest_s=0.6),
            ),
            rest_between_sets_s=16.0,
            errors="typical",
            rate_hz=100.0,
        ),
        seed=11,
    )
    programmes = {leg: SignalArrays(sig.true_time_s, sig.acc_g, sig.gyr_dps) for leg, sig in sim.signals.items()}
    # three outages of 2-5 s, each starting during a rep (0.3 s after its start)
    picks = [(Leg.LEFT, 1, 1, 2.0), (Leg.RIGHT, 1, 3, 5.0), (Leg.LEFT, 2, 2, 3.5)]
    outages = []
    for leg, set_no, rep_no, length in picks:
        rep = next(r for r in sim.reps if r.leg == leg.value and r.set == set_no and r.rep == rep_no)
        outages.append((leg.value, rep.start_s + 0.3, length))
    path = tmp_path_factory.mktemp("live") / "session.lgr"
    stream = io.StringIO()
    SINK.__init__()
    VOICE.cues.clear()
    coach = CoachSink(Coach((Leg.LEFT, Leg.RIGHT)), [VOICE])
    outcome = virtual_time.run(
        run_demo(
            SPEED,
            programmes=programmes,
            truth={},
            recording=path,
            view=TerminalView(stream, ansi=False),
            sinks=[SINK, coach],
            keep_samples=True,
            outages=outages,
        )
    )
    return sim, outcome, path, stream.getvalue(), outages


class CountingSink:
    """A sink that keeps what the session told it (the contract of legrep.sinks)."""

    def __init__(self) -> None:
        self.angles: dict[Leg, list[tuple[np.ndarray, np.ndarray]]] = {Leg.LEFT: [], Leg.RIGHT: []}
        self.shows: list[float] = []
        self.reps: list[object] = []
        self.sets: list[object] = []
        self.notes: list[str] = []
        self.closed = 0

    def angle(self, leg, time_s, angle_deg) -> None:
        self.angles[leg].append((np.array(time_s), np.array(angle_deg)))

    def show(self, state) -> None:
        self.shows.append(state.time_s)

    def rep(self, rep, state) -> None:
        self.reps.append(rep)

    def set_closed(self, summary, state) -> None:
        self.sets.append(summary)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def close(self) -> None:
        self.closed += 1


SINK = CountingSink()


class Voice:
    """What the coach would have said (the speaker's side of legrep.coach.sink)."""

    def __init__(self) -> None:
        self.cues: list[Cue] = []

    def say(self, cue: Cue) -> None:
        self.cues.append(cue)


VOICE = Voice()


def test_a_sensor_lost_for_seconds_is_said_and_so_is_its_return(session) -> None:
    """The person on the mat hears which sensor dropped (after LINK_LOST_CUE_S of it) and when it
    is back: each outage longer than that gives one "lost" during it and one "back" after it."""
    outages = session[4]
    alerts = [c for c in VOICE.cues if c.kind is CueKind.ALERT]
    assert alerts, [c.text for c in VOICE.cues]
    for leg, start_s, length_s in outages:
        lost = [c for c in alerts if c.text == f"{leg} sensor lost" and start_s <= c.time_s <= start_s + length_s + 3.0]
        back = [c for c in alerts if c.text == f"{leg} sensor back" and start_s <= c.time_s <= start_s + length_s + 6.0]
        if length_s > LINK_LOST_CUE_S + 0.5:
            assert len(lost) == 1 and lost[0].time_s >= start_s + LINK_LOST_CUE_S, (leg, start_s, length_s, alerts)
            assert len(back) == 1 and back[0].time_s > lost[0].time_s
    assert len(alerts) % 2 == 0 and all(a.text.endswith("lost") == (i % 2 == 0) for i, a in enumerate(
        sorted((c for c in alerts if c.leg is Leg.RIGHT), key=lambda c: c.time_s)))


def test_three_link_drops_happened_and_were_recovered(session) -> None:
    sim, outcome, path, text, _o = session
    stats = outcome.live.stats
    assert sum(stats.disconnects.values()) == 3, stats.disconnects
    assert stats.reconnects == stats.disconnects
    assert stats.resend_requests >= 3
    assert text.count("link lost") == 3 and text.count("reconnected") == 3


def test_every_produced_sample_arrives_exactly_once_in_order(session) -> None:
    sim, outcome, path, _, _o = session
    result = outcome.result
    for leg in (Leg.LEFT, Leg.RIGHT):
        fw = outcome.firmwares[leg.value]
        index, _, _, raw = fw.produced.arrays()
        diag = result.diagnostics[leg].link
        assert diag is not None
        assert diag.lost_packets == 0 and diag.lost_samples == 0, diag
        assert diag.samples_out == index.size
        assert diag.resent_used > 0  # the outages were filled by RESEND
    # the recording holds every produced sample; duplicates are dropped by seq
    reader = RecordingReader(path)
    seen: dict[int, set[int]] = {0: set(), 1: set()}
    from legrep.packets import decode_imu_packet

    for rec in reader:
        if rec.kind == Kind.DATA:
            p = decode_imu_packet(rec.payload)
            seen[rec.sensor].update(range(p.first_sample_index, p.first_sample_index + p.n))
    for i, leg in enumerate(("left", "right")):
        index = outcome.firmwares[leg].produced.arrays()[0]
        assert seen[i] == set(index.tolist())


def test_samples_fed_to_the_analysis_equal_what_the_sensors_measured(session) -> None:
    sim, outcome, path, _, _o = session
    # the recording, replayed with sample keeping, holds every sample the sensors measured
    from legrep.live_core import SessionCore

    reader_core = SessionCore([Leg.LEFT, Leg.RIGHT], keep_samples=True)
    for rec in RecordingReader(path):
        reader_core.process(rec)
    reader_core.finish()
    for leg in (Leg.LEFT, Leg.RIGHT):
        _, _, _, raw = outcome.firmwares[leg.value].produced.arrays()
        block = reader_core.samples(leg)
        assert len(block) == raw.shape[0]
        np.testing.assert_array_equal(block.acc_g, raw[:, :3] * ACC_LSB_G)
        np.testing.assert_array_equal(block.gyr_dps, raw[:, 3:] * GYR_LSB_DPS)
        assert np.all(np.diff(block.time_s) > 0)
        # the session clock is the sensors' sample clock: 10 ms steps within 1 %
        assert np.median(np.diff(block.time_s)) == pytest.approx(0.01, rel=0.01)


def test_rep_counts_are_exact_against_truth(session) -> None:
    sim, outcome, _, _, _o = session
    result = outcome.result
    for leg in (Leg.LEFT, Leg.RIGHT):
        assert len(result.reps_of(leg)) == sum(1 for r in sim.reps if r.leg == leg.value)
    assert [(s.left_reps, s.right_reps, s.uneven) for s in result.sets] == [
        (s.left_reps, s.right_reps, s.uneven) for s in sim.sets
    ]
    # each rep's peak lies near a true rep's peak (session time = programme time + offset)
    off = outcome.programme_offset_s
    for rep in result.reps:
        nearest = min(abs(t.peak_s + off - rep.peak_s) for t in sim.reps if t.leg == rep.leg.value)
        assert nearest < 1.0


def test_live_reps_equal_the_replay_of_the_recording(session) -> None:
    _, outcome, path, _, _o = session
    replayed, events = replay_recording(path)
    assert replayed.reps == outcome.result.reps
    assert replayed.sets == outcome.result.sets
    assert len(events) == len(outcome.live.events)


def test_reps_reach_the_view_promptly(session) -> None:
    sim, outcome, _, text, _o = session
    off = outcome.programme_offset_s
    windows = [(start + off, start + off + length + 3.0) for _, start, length in outcome.outages]
    shown = outcome.live.stats.rep_latency_s
    assert len(shown) == len(outcome.result.reps)
    latencies = [lat for rep, lat in shown if not any(a <= rep.closed_s <= b for a, b in windows)]
    assert len(latencies) >= 8
    # session seconds (virtual time: the host's processing takes none, so this is the protocol's latency)
    assert np.median(latencies) < 0.3, latencies
    assert text.count(" rep ") == len(outcome.result.reps)


def test_sinks_get_every_angle_every_rep_and_a_snapshot_ten_times_a_second(session) -> None:
    _, outcome, _, _, _o = session
    result = outcome.result
    assert SINK.reps == [ev.rep for ev in outcome.live.events if hasattr(ev, "rep")]
    assert len(SINK.reps) == len(result.reps)
    assert [s.set for s in SINK.sets] == [s.set for s in result.sets]
    assert sum("link lost" in n for n in SINK.notes) == 3
    for leg in (Leg.LEFT, Leg.RIGHT):
        times = np.concatenate([t for t, _ in SINK.angles[leg]])
        # every sample fed to the analysis comes out as angle once, in order
        assert times.size == result.diagnostics[leg].samples
        assert np.all(np.diff(times) > 0)
    gaps = np.diff(SINK.shows)
    assert len(SINK.shows) >= 10 * (SINK.shows[-1] - SINK.shows[0]) * 0.95
    assert gaps.max() <= 0.1 + 1e-6, gaps.max()


def test_terminal_view_renders_both_legs() -> None:
    from legrep.live import LegState

    state = LiveState(
        12.0,
        (
            LegState(Leg.LEFT, 3, 45.0, None, 95, "connected", "legrep-0A11"),
            LegState(Leg.RIGHT, 2, None, None, None, "reconnecting", "legrep-0A12"),
        ),
        (),
    )
    lines = TerminalView(io.StringIO(), ansi=False).render(state)
    text = "\n".join(lines)
    assert "LEFT (legrep-0A11)" in text and "RIGHT (legrep-0A12)" in text
    # one leg ahead while the set is under way is the routine, not a warning (issue 12)
    assert "left first: 3 / 2 (normal" in text and "reconnecting" in text and "battery 95%" in text
    assert angle_bar(45.0).count("#") == 10 and angle_bar(200.0).count("#") == 20
    ansi = io.StringIO()
    view = TerminalView(ansi, ansi=True)
    view.show(state)
    view.show(state)
    assert "\x1b[" in ansi.getvalue()


def test_replay_realtime_runs_the_recording_through_the_live_session(session) -> None:
    """``legrep replay --realtime``: the recording as a driver (``replay:FILE``) paced by the session
    clock (virtual here), through the same LiveSession and sinks: the same reps, the same link drops
    reported, and the sinks told everything the live sinks were told."""
    from legrep.commands.replay import replay_live
    from legrep.transport.common import MonotonicClock

    _, outcome, path, _, _o = session
    sink = CountingSink()
    replayed = virtual_time.run(replay_live(str(path), None, [sink], clock=MonotonicClock()))
    assert replayed.result.reps == outcome.result.reps
    assert replayed.result.sets == outcome.result.sets
    assert replayed.stats.disconnects == outcome.live.stats.disconnects
    assert replayed.stats.reconnects == outcome.live.stats.reconnects
    assert len(sink.reps) == len(outcome.result.reps) and sink.closed == 0
    assert sum("link lost" in n for n in sink.notes) == 3
    # paced: the snapshots span the recorded session, ten a second
    assert sink.shows[-1] >= outcome.result.reps[-1].closed_s
    assert np.diff(sink.shows).max() <= 0.1 + 1e-6


def test_replay_realtime_of_csv_files_feeds_the_same_sinks() -> None:
    """``legrep replay --realtime left.csv right.csv``: the samples paced by the clock (virtual here)
    in 0.1 s chunks, with the live view's calls (every chunk's angle, each rep and set, 10 Hz
    snapshots), and the same result as the replay without pacing."""
    from legrep.commands.demo import RECORDINGS_DIR
    from legrep.commands.replay import CSV_CHUNK_S, _feed_csv, play_csv
    from legrep.imu_csv import read_imu_csv
    from legrep.transport.common import MonotonicClock

    folder = RECORDINGS_DIR / "bent_knee_raise"
    blocks = {leg: read_imu_csv(folder / f"{leg.value}.csv") for leg in (Leg.LEFT, Leg.RIGHT)}
    sink = CountingSink()
    result = virtual_time.run(play_csv(blocks, None, [sink], {leg: f"{leg.value}.csv" for leg in blocks}, clock=MonotonicClock()))
    batch = _feed_csv(blocks, None, CSV_CHUNK_S, lambda events: None)
    assert result.reps == batch.reps and result.sets == batch.sets and len(result.reps) > 10
    assert len(sink.reps) == len(result.reps) and len(sink.sets) == len(result.sets)
    duration_s = float(blocks[Leg.LEFT].time_s[-1] - blocks[Leg.LEFT].time_s[0])
    for leg in blocks:  # an angle per 0.1 s chunk, in time order, covering the session
        times = np.concatenate([t for t, _ in sink.angles[leg]])
        assert len(sink.angles[leg]) >= 0.9 * duration_s / 0.1 and np.all(np.diff(times) > 0)
    assert np.diff(sink.shows).max() <= 0.1 + 1e-6 and sink.shows[-1] >= result.reps[-1].closed_s
