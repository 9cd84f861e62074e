"""The terminal view's hip-angle bar follows every released chunk, not only the 10 Hz snapshots,
and redraws at most ``max_redraw_hz`` times a wall second (issue 12: an angle that moves)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from legrep import view as view_module
from legrep.live import LegState, LiveState
from legrep.model import Leg
from legrep.view import TerminalView


def _state(t_s: float, left_deg: float | None) -> LiveState:
    legs = (
        LegState(Leg.LEFT, 2, left_deg, None, 90, "connected", "legrep-0A11"),
        LegState(Leg.RIGHT, 0, 3.0, None, 90, "connected", "legrep-0A12"),
    )
    return LiveState(t_s, legs, ())


class WallClock:
    """The view's wall clock, set by the test (the redraw cap is in wall seconds)."""

    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> WallClock:
    clock = WallClock()
    monkeypatch.setattr(view_module.time, "monotonic", clock)
    return clock


def frames(text: str) -> list[str]:
    """The redrawn blocks, oldest first (each starts at its bold title line)."""
    return [f for f in text.split("legrep live")[1:]]


def test_bar_moves_per_chunk_between_snapshots(wall: WallClock) -> None:
    out = io.StringIO()
    view = TerminalView(out, ansi=True)
    view.show(_state(10.0, 5.0))
    for k, deg in enumerate((20.0, 40.0, 60.0)):
        wall.now_s += 0.03  # chunks 30 ms apart in wall time: each one drawn
        view.angle(Leg.LEFT, np.array([10.0 + 0.1 * k, 10.05 + 0.1 * k]), np.array([deg - 5, deg]))
    shown = frames(out.getvalue())
    assert len(shown) == 4
    for frame, deg in zip(shown, (5.0, 20.0, 40.0, 60.0)):
        assert f"{deg:4.0f} deg" in frame, frame
    assert "00:10" in shown[-1] and "   3 deg" in shown[-1]  # the other leg keeps its snapshot angle


def test_redraws_are_capped_and_the_last_chunk_is_shown_at_close(wall: WallClock) -> None:
    out = io.StringIO()
    view = TerminalView(out, ansi=True, max_redraw_hz=50.0)
    view.show(_state(0.0, 0.0))
    for k in range(100):  # 100 chunks within 0.1 s of wall time: at most 5 more redraws at 50 Hz
        wall.now_s += 0.001
        view.angle(Leg.LEFT, np.array([0.01 * k]), np.array([float(k)]))
    assert len(frames(out.getvalue())) <= 1 + 5 + 1
    view.close()
    assert "  99 deg" in frames(out.getvalue())[-1]


def test_a_stale_leg_keeps_its_snapshot(wall: WallClock) -> None:
    out = io.StringIO()
    view = TerminalView(out, ansi=True)
    view.show(_state(1.0, 10.0))
    view.angle(Leg.LEFT, np.array([1.0]), np.array([70.0]))
    wall.now_s += 1.0
    view.show(_state(30.0, None))  # the left link went: its last chunk is 29 s old
    assert "[" + " " * 20 + "]   --" in frames(out.getvalue())[-1]


def test_a_pipe_gets_no_redraws() -> None:
    out = io.StringIO()
    view = TerminalView(out, ansi=False)
    view.show(_state(1.0, 10.0))
    view.angle(Leg.LEFT, np.array([1.0]), np.array([70.0]))
    assert out.getvalue() == ""
