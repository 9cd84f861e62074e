"""``analyze_arrays`` with two long legs analyses the right one in a forked process of its own
(host/pipeline.py, host/offline.py ``LegProcess``): the same result, every byte (reps, sets,
diagnostics, traces), as one leg after the other (``LEGREP_SERIAL=1``), with ``exercise=`` and
``pelvis=`` too, and the same error."""

from __future__ import annotations

import dataclasses
import os
import pickle
from typing import Any

import numpy as np
import pytest
from conftest import blocks_of

from legrep import offline, parallel, pipeline
from legrep.errors import LegrepError
from legrep.export import format_reps_csv, summary_dict
from legrep.model import ImuBlock, Leg, SessionResult
from legrep.offline import analyze_arrays
from legrep_sim.pelvis import simulate_with_pelvis
from legrep_sim.scenarios import SessionSpec, SetSpec, simulate

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here: one process")


@pytest.fixture(scope="module")
def session():  # type: ignore[no-untyped-def]
    spec = SessionSpec(sets=(SetSpec(5, 4, order="alternating"),), rate_hz=100.0, errors="typical")
    return simulate(spec, seed=23)


def _forked(monkeypatch: pytest.MonkeyPatch) -> list[Leg]:
    """Fork from any length on a machine of 2 cores or more; the legs forked are recorded."""
    monkeypatch.setattr(offline, "PROCESS_MIN_SAMPLES", 0)  # (a short session: processes only from 20 000 samples)
    monkeypatch.setattr(offline, "usable_cores", lambda: 2)
    legs: list[Leg] = []
    real = offline.LegProcess.__init__

    def counting(self: Any, leg: Leg, *args: Any, **kw: Any) -> None:
        legs.append(leg)
        real(self, leg, *args, **kw)

    monkeypatch.setattr(offline.LegProcess, "__init__", counting)
    return legs


def _both(monkeypatch: pytest.MonkeyPatch, **kw: Any) -> list[SessionResult | LegrepError]:
    """``analyze_arrays(**kw)`` in one process, then with the forked leg."""
    out: list[SessionResult | LegrepError] = []
    for serial in ("1", "0"):
        monkeypatch.setenv("LEGREP_SERIAL", serial)
        try:
            out.append(analyze_arrays(**kw))
        except LegrepError as exc:
            out.append(exc)
    return out


def _fingerprint(result: SessionResult | LegrepError) -> tuple[Any, ...]:
    """Every float's bits (pickle of the result without its traces), the traces' bytes and dtypes,
    the reps CSV and the summary."""
    assert isinstance(result, SessionResult), result
    traces = [(leg, t.tobytes(), a.tobytes(), t.dtype.str + a.dtype.str) for leg, (t, a) in result.traces.items()]
    return pickle.dumps(dataclasses.replace(result, traces={})), traces, format_reps_csv(result), repr(summary_dict(result))


@needs_fork
def test_the_forked_leg_gives_the_serial_result(session, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    forked = _forked(monkeypatch)
    b = blocks_of(session)
    serial, per_leg = _both(monkeypatch, left=b[Leg.LEFT], right=b[Leg.RIGHT])
    assert forked == [Leg.RIGHT]  # for the second run only; the left leg analysed here
    assert isinstance(serial, SessionResult) and len(serial.reps) == 9
    assert set(serial.traces) == {Leg.LEFT, Leg.RIGHT} and all(len(t) > 1000 for t, _ in serial.traces.values())
    assert _fingerprint(per_leg) == _fingerprint(serial)


@needs_fork
def test_exercise_and_pelvis_reach_the_forked_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    forked = _forked(monkeypatch)
    ps = simulate_with_pelvis(SessionSpec(sets=(SetSpec(5, 5, "alternating"), SetSpec(4, 4))), 5, place="belt")
    legs = {name: ImuBlock.from_arrays(s.time_s, s.acc_g, s.gyr_dps) for name, s in ps.session.signals.items()}
    pelvis = (ps.pelvis.time_s, ps.pelvis.acc_g, ps.pelvis.gyr_dps)
    serial, per_leg = _both(monkeypatch, left=legs["left"], right=legs["right"], pelvis=pelvis, exercise="bent_knee_raise")
    assert forked == [Leg.RIGHT]
    assert isinstance(serial, SessionResult) and len(serial.reps) >= 16
    assert any(r.pelvis_tilt_deg is not None for r in serial.reps)
    assert {s.exercise for s in serial.sets} == {"bent_knee_raise"}
    assert _fingerprint(per_leg) == _fingerprint(serial)


@needs_fork
def test_the_forked_leg_raises_the_serial_error(session, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    forked = _forked(monkeypatch)
    b = blocks_of(session)
    left = b[Leg.LEFT]
    t = left.time_s.copy()
    t[500] = t[499]  # time goes back on the left leg; the right one would not calibrate (all moving)
    bad_left = ImuBlock(t, left.acc_g, left.gyr_dps)
    right = b[Leg.RIGHT]
    spin = ImuBlock(right.time_s, right.acc_g, right.gyr_dps + np.array([0.0, 40.0, 0.0]))
    serial, per_leg = _both(monkeypatch, left=bad_left, right=spin)
    assert isinstance(serial, LegrepError) and "increasing time" in str(serial)
    assert type(per_leg) is type(serial) and str(per_leg) == str(serial)
    # the right leg's error (raised in its process), when the left leg is good, as serially
    serial, per_leg = _both(monkeypatch, left=left, right=spin)
    assert isinstance(serial, LegrepError) and "right" in str(serial)
    assert type(per_leg) is type(serial) and str(per_leg) == str(serial)
    # and the right leg's bad time, found in its process at its first block
    t = right.time_s.copy()
    t[800] = np.nan
    serial, per_leg = _both(monkeypatch, left=left, right=(t, right.acc_g, right.gyr_dps))
    assert isinstance(serial, LegrepError) and "finite" in str(serial)
    assert type(per_leg) is type(serial) and str(per_leg) == str(serial)
    assert forked == [Leg.RIGHT] * 3


def test_one_leg_a_short_session_or_serial_stays_in_one_process(session, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    forked = _forked(monkeypatch)
    b = blocks_of(session)
    analyze_arrays(left=b[Leg.LEFT])
    monkeypatch.setenv("LEGREP_SERIAL", "1")
    analyze_arrays(left=b[Leg.LEFT], right=b[Leg.RIGHT])
    monkeypatch.delenv("LEGREP_SERIAL")
    monkeypatch.setattr(offline, "PROCESS_MIN_SAMPLES", len(b[Leg.LEFT]) + 1)
    analyze_arrays(left=b[Leg.LEFT], right=b[Leg.RIGHT])
    assert forked == []


def test_a_process_that_shares_the_cores_counts_its_share(monkeypatch: pytest.MonkeyPatch) -> None:
    """What turns a leg's orientation thread off where the other leg's process has the other core."""
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert parallel.usable_cores() == 4
    with parallel.sharing_cores(2):
        assert parallel.usable_cores() == 2
        with parallel.sharing_cores(8):
            assert parallel.usable_cores() == 1
        assert parallel.usable_cores() == 2
    assert parallel.usable_cores() == 4


@needs_fork
def test_a_legs_process_shares_the_cores_with_the_other(monkeypatch: pytest.MonkeyPatch) -> None:
    """The forked leg's process counts its share of the cores (its LegSteps see it)."""
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    seen: list[int] = []

    def work(steps: offline.LegSteps) -> None:
        steps._conn.send(("block", None, float(parallel.usable_cores()), None))

    child = offline.LegProcess(Leg.RIGHT, work, pipeline.Settings(), False, "none", sharers=2)
    try:
        assert child.advance()
        seen.append(int(child.horizon_s()))
    finally:
        child.close()
    assert seen == [1] and parallel.usable_cores() == 2
