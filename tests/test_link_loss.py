"""A thigh's sensor whose link goes down mid-session (a DISCONNECT record, e.g. a dead battery):
the other thigh's reps are still announced as they close (host/reps/gait.py, "A link that went
down"), live and in every replay of the recording alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from legrep.live_core import SessionCore
from legrep.model import Leg
from legrep.pipeline import RepClosed
from legrep.recording import RecordingReader, RecordingWriter
from legrep.records import EventType, Kind, Record
from legrep.replay_batch import replay_file
from legrep_sim.pelvis import simulate_with_pelvis
from legrep_sim.scenarios import SessionSpec, SetSpec
from test_recording import run_session
from test_replay_processes import write_recording

DEAD_AT_S = 19.5
"""The left sensor dies here: after its three reps (3-18 s), before the right thigh's (21-36 s)."""


def _dead_left(path: Path, tmp: Path, event: bool, sensor: int = 0) -> tuple[dict, list[Record], Path]:
    """The recording of ``path`` with the left sensor (or ``sensor``) silent from DEAD_AT_S on, and
    (``event``) the DISCONNECT record the live edge writes when its link drops."""
    reader = RecordingReader(path)
    out: list[Record] = []
    for rec in reader:
        if rec.sensor == sensor and rec.t_s >= DEAD_AT_S and rec.kind in (Kind.DATA, Kind.TX, Kind.RX, Kind.STATUS):
            continue
        if event and rec.t_s >= DEAD_AT_S and not any(r.kind == Kind.EVENT and r.sensor == sensor and r.t_s >= DEAD_AT_S for r in out):
            out.append(Record.event(sensor, DEAD_AT_S, EventType.DISCONNECT))
        if rec.kind != Kind.END:
            out.append(rec)
    meta = {k: v for k, v in reader.meta.items() if k != "format"}
    written = tmp / ("event.legrep" if event else "silent.legrep")
    with RecordingWriter(written, meta) as writer:
        for rec in out:
            writer.write(rec)
    return reader.meta, out, written


def _live(meta: dict, records: list[Record]) -> tuple[SessionCore, dict[float, float]]:
    """Records through SessionCore.process one by one, as live capture feeds them: ``{rep start_s:
    the record time its RepClosed came at}`` (a rep released only when the session is finished
    has none)."""
    core = SessionCore.from_meta(meta)
    told: dict[float, float] = {}
    for rec in records:
        for e in core.process(rec):
            if isinstance(e, RepClosed):
                told[e.rep.start_s] = rec.t_s
    return core, told


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("link") / "s.legrep"
    run_session(path, seed=5, reps=3)
    return path


def test_the_other_thighs_reps_are_announced_while_a_sensor_is_dead(recording: Path, tmp_path: Path) -> None:
    meta, records, _ = _dead_left(recording, tmp_path, event=True)
    core, told = _live(meta, records)
    result = core.finish()
    right = result.reps_of(Leg.RIGHT)
    assert len(right) == 3 and len(result.reps_of(Leg.LEFT)) == 3
    for r in right:  # each as it closed (the live edge's delay), not at the end of the session
        assert told.get(r.start_s, float("inf")) <= r.closed_s + 1.0, (r.start_s, told.get(r.start_s))
    # the same samples without the DISCONNECT record: the right reps wait for the left thigh's
    # angles to the end (what the event changes, and so what this test would catch)
    meta, records, _ = _dead_left(recording, tmp_path, event=False)
    _, silent = _live(meta, records)
    assert not any(r.start_s in silent for r in right)


@pytest.mark.parametrize("processes", [False, True])
def test_every_replay_of_the_recording_gives_the_live_reps_and_events(recording: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch, processes: bool) -> None:  # fmt: skip
    """The batched replay feeds the analysis in large blocks, and with ``processes`` the right thigh
    is analysed in a process that replays the recording itself: both flush their blocks at the
    link event, so the analysis decides on the same samples as live."""
    import legrep.replay_batch as rb

    monkeypatch.setattr(rb, "MIN_SAMPLES", 700)  # (blocks held across the event: 7 s at 100 Hz)
    monkeypatch.setattr(rb, "PROCESSES_MIN_BYTES", 0)
    meta, records, path = _dead_left(recording, tmp_path, event=True)
    live, _ = _live(meta, records)
    live_result = live.finish()
    core, result, _ = replay_file(path, processes=processes)
    assert result.reps == live_result.reps and result.sets == live_result.sets
    assert [repr(e) for e in core.events] == [repr(e) for e in live.events]


def test_a_dead_pelvis_sensor_leaves_the_later_reps_unmeasured_not_held(tmp_path: Path) -> None:
    ps = simulate_with_pelvis(SessionSpec(sets=(SetSpec(3, 3),)), 5, place="belt")
    signals = {name: (x.time_s, x.acc_g, x.gyr_dps) for name, x in [*ps.session.signals.items(), ("pelvis", ps.pelvis)]}
    path = write_recording(tmp_path / "pelvis.legrep", signals)
    meta, records, cut = _dead_left(path, tmp_path, event=True, sensor=2)
    live, told = _live(meta, records)
    result = live.finish()
    assert len(result.reps) == 6
    for r in result.reps:
        if r.end_s < DEAD_AT_S:
            assert r.pelvis_tilt_deg is not None  # measured before the pelvis sensor died
        else:  # announced as it closed, without the pelvis's measure
            assert r.pelvis_tilt_deg is None and told.get(r.start_s, float("inf")) <= r.closed_s + 1.0
    assert any(r.end_s > DEAD_AT_S for r in result.reps)
    _, replayed, _ = replay_file(cut)
    assert replayed.reps == result.reps
