"""``analyze_arrays`` with two long legs analyses them on two threads (host/pipeline.py ``_LegThread``):
the same result, every byte, as one leg after the other (``LEGREP_SERIAL=1``), and the same error."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import blocks_of

from legrep_sim.scenarios import SessionSpec, SetSpec, simulate
from legrep.errors import LegrepError
from legrep.export import format_reps_csv
from legrep.model import ImuBlock, Leg
from legrep import pipeline
from legrep.pipeline import analyze_arrays


@pytest.fixture(scope="module")
def session():
    spec = SessionSpec(sets=(SetSpec(5, 4, order="alternating"),), rate_hz=100.0, errors="typical")
    return simulate(spec, seed=23)


def _both(monkeypatch: pytest.MonkeyPatch, **kw):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(pipeline, "THREAD_MIN_SAMPLES", 0)  # (a short session: threads only from 10 min)
    monkeypatch.setattr(pipeline, "_cores", lambda: 2)
    out = []
    for serial in ("1", "0"):
        monkeypatch.setenv("LEGREP_SERIAL", serial)
        try:
            out.append(analyze_arrays(**kw))
        except LegrepError as exc:
            out.append(exc)
    return out


def test_threads_give_the_serial_result(session, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []

    class Counted(pipeline._LegThread):
        def __init__(self, *args, **kw) -> None:  # type: ignore[no-untyped-def]
            made.append(1)
            super().__init__(*args, **kw)

    monkeypatch.setattr(pipeline, "_LegThread", Counted)
    b = blocks_of(session)
    serial, threaded = _both(monkeypatch, left=b[Leg.LEFT], right=b[Leg.RIGHT])
    assert len(made) == 2  # a thread per leg, for the second run only
    assert len(serial.reps) == 9
    assert format_reps_csv(threaded) == format_reps_csv(serial)
    assert threaded.reps == serial.reps and threaded.sets == serial.sets and threaded.uneven == serial.uneven
    assert threaded.diagnostics == serial.diagnostics
    for leg in (Leg.LEFT, Leg.RIGHT):
        for a, c in zip(threaded.traces[leg], serial.traces[leg], strict=True):
            assert a.tobytes() == c.tobytes()


def test_threads_raise_the_serial_error(session, monkeypatch: pytest.MonkeyPatch) -> None:
    b = blocks_of(session)
    left = b[Leg.LEFT]
    t = left.time_s.copy()
    t[500] = t[499]  # time goes back on the left leg; the right one would not calibrate (all moving)
    bad_left = ImuBlock(t, left.acc_g, left.gyr_dps)
    right = b[Leg.RIGHT]
    spin = ImuBlock(right.time_s, right.acc_g, right.gyr_dps + np.array([0.0, 40.0, 0.0]))
    serial, threaded = _both(monkeypatch, left=bad_left, right=spin)
    assert isinstance(serial, LegrepError) and "increasing time" in str(serial)
    assert type(threaded) is type(serial) and str(threaded) == str(serial)
    # the right leg's error, when the left leg is good, comes at the end as serially
    serial, threaded = _both(monkeypatch, left=left, right=spin)
    assert isinstance(serial, LegrepError)
    assert type(threaded) is type(serial) and str(threaded) == str(serial)
