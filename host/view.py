"""The live terminal view: per-leg reps side by side, hip angle bars, last rep, balance, links.

On a terminal it redraws a small block in place with plain ANSI escapes: on every snapshot and on
every released chunk of hip angle (so the bar follows the leg, not the 10 Hz snapshots), at most
``max_redraw_hz`` (50) times a wall second; when the output is not a terminal (a pipe, a log file, CI) it degrades to one line per
rep, per closed set and per link event, and never redraws.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import TYPE_CHECKING, TextIO

from .exercise import CUES
from .live import LegState, LiveState
from .model import FloatArray, Leg, Rep, SetSummary

if TYPE_CHECKING:
    from .coach.cues import Coach, Targets

BAR_WIDTH = 20
BAR_FULL_DEG = 90.0
"""Angle that fills the bar (leg raises peak at ~70-90 deg)."""
COLUMN = 34

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_YELLOW = "\x1b[33m"
_RED = "\x1b[31m"
_GREEN = "\x1b[32m"


def angle_bar(angle_deg: float | None, width: int = BAR_WIDTH) -> str:
    """``[#######.......]  45 deg``-style bar (ASCII, so any terminal shows it)."""
    if angle_deg is None:
        return "[" + " " * width + "]   --"
    filled = int(round(max(0.0, min(1.0, angle_deg / BAR_FULL_DEG)) * width))
    return "[" + "#" * filled + "." * (width - filled) + f"] {angle_deg:4.0f} deg"


def describe_rep(rep: Rep) -> str:
    """``peak 78 deg  rom 76  up 1.4 s  hold 0.9 s  down 2.0 s``."""
    return (
        f"peak {rep.peak_deg:.0f} deg  rom {rep.rom_deg:.0f}  "
        f"up {rep.up_s:.1f} s  hold {rep.hold_s:.1f} s  down {rep.down_s:.1f} s"
    )


def _clock(t_s: float) -> str:
    t = max(0, int(t_s))
    return f"{t // 60:02d}:{t % 60:02d}"


class TerminalView:
    """Live view on a text stream (see module docstring).

    Parameters
    ----------
    stream : where to write (default ``sys.stdout``).
    ansi : redraw in place; default: ``stream`` is a terminal and ``TERM`` is not ``dumb``.
    max_redraw_hz : redraws per wall second at most (the session may run faster than real time);
        50 Hz keeps the bar within 20 ms of the newest chunk (benchmarks/live.py --delay).
    """

    def __init__(self, stream: TextIO | None = None, ansi: bool | None = None, max_redraw_hz: float = 50.0) -> None:
        self.stream = stream or sys.stdout
        if ansi is None:
            isatty = getattr(self.stream, "isatty", lambda: False)()
            ansi = bool(isatty) and os.environ.get("TERM", "") != "dumb"
        self.ansi = ansi
        self.min_redraw_s = 1.0 / max_redraw_hz
        self._last_draw = -float("inf")
        self._pending: LiveState | None = None
        self._state: LiveState | None = None
        """The newest snapshot; angle chunks released after it update its bars and clock."""
        self._angles: dict[Leg, tuple[float, float]] = {}
        """Per leg: (newest sample time s, its hip angle deg) of the chunks released so far."""
        self._lines = 0
        self._uneven_sets: list[SetSummary] = []
        self._notes: list[str] = []
        self.rep_lines = 0

        self.targets: "Targets | None" = None
        """The routine (``--reps-per-leg``, ``--sets``): what remains per leg, and the balance judged
        against it (:class:`legrep.coach.cues.Coach`, the judgement the voice and page use too)."""
        self._coach: "Coach | None" = None

    # --- SessionSink protocol ----------------------------------------------------------------------------

    def angle(self, leg: Leg, time_s: FloatArray, angle_deg: FloatArray) -> None:
        """A released chunk of one leg's hip angle (session seconds, degrees): the bar moves now."""
        if not self.ansi or len(time_s) == 0:
            return
        self._angles[leg] = (float(time_s[-1]), float(angle_deg[-1]))
        if self._state is not None:
            self._draw(self._state)

    def show(self, state: LiveState) -> None:
        if not self.ansi:
            return
        self._state = state
        self._draw(state)

    def _draw(self, state: LiveState) -> None:
        state = self._with_angles(state)
        now = time.monotonic()
        if now - self._last_draw < self.min_redraw_s:
            self._pending = state  # the terminal is real: at most max_redraw_hz redraws a wall second
            return
        self._last_draw = now
        self._pending = None
        self._redraw(self.render(state))

    def _with_angles(self, state: LiveState) -> LiveState:
        """The snapshot with each leg's bar at its newest released angle, and the clock at the
        newest sample shown, when the chunks are newer than the snapshot."""
        legs = []
        newest_s = state.time_s
        for s in state.legs:
            got = self._angles.get(s.leg)
            if got is not None and got[0] >= state.time_s - 1.0:  # not a leg whose link has gone
                legs.append(dataclasses.replace(s, angle_deg=got[1]))
                newest_s = max(newest_s, got[0])
            else:
                legs.append(s)
        return dataclasses.replace(state, time_s=newest_s, legs=tuple(legs))

    def rep(self, rep: Rep, state: LiveState) -> None:
        self.rep_lines += 1
        if not self.ansi:
            counts = "  ".join(f"{s.leg.value} {s.reps}" for s in state.legs)
            self._line(f"{_clock(rep.end_s)}  {rep.leg.value:<5} rep  {describe_rep(rep)}   [{counts}]")
        for flag in rep.flags:  # live cues (host/exercise.py CUES): "one leg at a time"
            if flag in CUES:
                self.note(CUES[flag])
        self._routine(state).rep(rep, state.time_s)

    def set_closed(self, summary: SetSummary, state: LiveState) -> None:
        coach = self._routine(state)
        coach.set_closed(summary, state.time_s)
        warning = coach.progress().warning  # names the leg that needs more reps
        if summary.uneven or warning:
            self._uneven_sets.append(summary)
        text = (
            f"set {summary.set} done: left {summary.left_reps}, right {summary.right_reps}"
            + (f"  UNEVEN: {warning.split(': ', 1)[-1].replace(' more rep', ' more')}" if warning else "  even")
            + f"  {summary.exercise.replace('_', ' ')}"
        )
        if self.ansi:
            self._notes = (self._notes + [text])[-3:]
        else:
            self._line(text)

    def note(self, text: str) -> None:
        if self.ansi:
            self._notes = (self._notes + [text])[-3:]
        else:
            self._line(text)

    def close(self) -> None:
        if self.ansi and self._pending is not None:
            self._redraw(self.render(self._pending))  # the last snapshot is always shown
            self._pending = None
        if self.ansi and self._lines:
            self.stream.write("\n")
            self.stream.flush()
        self._lines = 0

    # --- rendering --------------------------------------------------------------------------------------

    def render(self, state: LiveState) -> list[str]:
        """The lines of the live block (no ANSI cursor moves; colour only when ``ansi``)."""
        legs = list(state.legs)
        set_no = len(state.sets) + 1
        out = [self._c(_BOLD, f"legrep live   {_clock(state.time_s)}   set {set_no}")]

        def row(label: str, cells: list[str]) -> str:
            return f"{label:<10}" + "".join(f"{c:<{COLUMN}}" for c in cells)

        out.append(row("", [f"{s.leg.value.upper()} ({s.sensor})" for s in legs]))
        progress = self._routine(state).progress() if legs else None
        out.append(row("reps", [self._reps(s, legs) for s in legs]))
        out.append(row("hip angle", [angle_bar(s.angle_deg) for s in legs]))
        out.append(row("last rep", [self._last(s) for s in legs]))
        out.append(row("tempo", [self._tempo(s) for s in legs]))
        out.append(row("sensor", [self._link(s) for s in legs]))
        if len(legs) == 2 and progress is not None:
            # judged against the routine: one leg ahead while its set is under way is normal
            from .coach.cues import judge_balance

            balance = judge_balance({s.leg: s.reps for s in legs}, self.targets.reps_per_leg if self.targets else None)
            line = f"{'balance':<10}" + self._c(_GREEN, balance)
            if progress.warning:
                line += "   " + self._c(_RED, f"UNEVEN {progress.warning}")
            out.append(line)
        if progress is not None and progress.done:
            out.append(self._c(_GREEN + _BOLD, "DONE: every set of the routine"))
        out.extend(f"  {n}" for n in self._notes)
        return out

    def _routine(self, state: LiveState) -> "Coach":
        if self._coach is None:
            from .coach.cues import Coach

            self._coach = Coach(tuple(s.leg for s in state.legs) or (Leg.LEFT, Leg.RIGHT), self.targets)
        return self._coach

    def _reps(self, s: LegState, legs: list[LegState]) -> str:
        """``3  (7 to go)``, ``10  (switch legs)``, ``10  (done)`` against ``--reps-per-leg``."""
        target = self.targets.reps_per_leg if self.targets is not None else None
        if target is None:
            return str(s.reps)
        if s.reps < target:
            return f"{s.reps}  ({target - s.reps} to go)"
        return f"{s.reps}  ({'done' if all(o.reps >= target for o in legs) else 'switch legs'})"

    @staticmethod
    def _last(s: LegState) -> str:
        r = s.last_rep
        return "--" if r is None else f"peak {r.peak_deg:.0f} deg, rom {r.rom_deg:.0f}"

    @staticmethod
    def _tempo(s: LegState) -> str:
        r = s.last_rep
        return "--" if r is None else f"{r.up_s:.1f} / {r.hold_s:.1f} / {r.down_s:.1f} s"

    def _link(self, s: LegState) -> str:
        battery = "--" if s.battery_pct is None else f"{s.battery_pct}%"
        colour = _GREEN if s.link == "connected" else _YELLOW
        return f"battery {battery}  " + self._c(colour, s.link)

    def _c(self, colour: str, text: str) -> str:
        return f"{colour}{text}{_RESET}" if self.ansi else text

    def _redraw(self, lines: list[str]) -> None:
        w = self.stream.write
        if self._lines:
            w(f"\x1b[{self._lines}F")  # cursor to the start of the block
        for line in lines:
            w("\x1b[2K" + line + "\n")
        for _ in range(self._lines - len(lines)):
            w("\x1b[2K\n")
        self._lines = max(self._lines, len(lines))
        self.stream.flush()

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


class NullView:
    """A view that shows nothing (benchmarks, tests)."""

    def angle(self, leg: Leg, time_s: FloatArray, angle_deg: FloatArray) -> None:
        pass

    def show(self, state: LiveState) -> None:
        pass

    def rep(self, rep: Rep, state: LiveState) -> None:
        pass

    def set_closed(self, summary: SetSummary, state: LiveState) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


__all__ = ["TerminalView", "NullView", "angle_bar", "describe_rep", "Leg"]
