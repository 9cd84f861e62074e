"""The coaching sink: one :class:`~legrep.sinks.SessionSink` that turns the live loop's calls into
cues for the voices (live speaker, ``--voice-wav``) and snapshots for the phone page.

The live loop calls it like any sink; everything here is quick (a cue goes to a queue, a snapshot
to the page's clients), so it never holds the loop up.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..model import FloatArray, Leg, Rep, SetSummary
from .cues import Coach, Cue, Progress

if TYPE_CHECKING:
    from ..live import LiveState
    from .web import WebPage

logger = logging.getLogger(__name__)

ZONE_DEG = 10.0
"""Half-width of the gauge's target zone around ``--target-deg``."""


class CueListener(Protocol):
    def say(self, cue: Cue) -> None: ...


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


class CoachSink:
    """Coach + voices + page behind the sink contract (see module docstring).

    Parameters
    ----------
    coach : the cue logic (its legs are the session's), or None with ``make_coach``: built from the
        legs of the first snapshot (for callers that open sinks before the drivers).
    voices : where cues go (:class:`~legrep.coach.voice.Speaker`, :class:`~legrep.coach.wavout.WavRecorder`).
    page : the phone page (None: no page).
    """

    def __init__(
        self,
        coach: Coach | None = None,
        voices: list[Any] | None = None,
        page: "WebPage | None" = None,
        *,
        make_coach: Callable[[tuple[Leg, ...]], Coach] | None = None,
    ) -> None:
        if coach is None and make_coach is None:
            raise TypeError("CoachSink needs a coach or make_coach")
        self._coach = coach
        self._make_coach = make_coach
        self.voices: list[Any] = list(voices or [])
        self.page = page
        self.angles: dict[Leg, tuple[float, float]] = {}
        """Per leg, the newest ``(sample time_s, angle_deg)`` released."""
        self._state: "LiveState | None" = None
        self._note = ""
        self._ended = False
        self.end_s = 0.0

    @property
    def coach(self) -> Coach:
        if self._coach is None:
            assert self._make_coach is not None
            self._coach = self._make_coach((Leg.LEFT, Leg.RIGHT))
        return self._coach

    def _legs_from(self, state: "LiveState") -> None:
        if self._coach is None and state.legs:
            assert self._make_coach is not None
            self._coach = self._make_coach(tuple(s.leg for s in state.legs))

    # --- SessionSink ----------------------------------------------------------------------------------

    def angle(self, leg: Leg, time_s: FloatArray, angle_deg: FloatArray) -> None:
        if len(time_s) == 0:
            return
        self.angles[leg] = (float(time_s[-1]), float(angle_deg[-1]))
        self._publish()

    def show(self, state: "LiveState") -> None:
        self._legs_from(state)
        self._state = state
        self.end_s = max(self.end_s, state.time_s)
        for s in state.legs:  # (a link reconnecting is down; stopped or ended is the session's end)
            if s.leg in self.coach.legs:
                link = str(getattr(s.link, "value", s.link))  # (LinkState's value: no driver import here)
                self._say(self.coach.link(s.leg, link != "reconnecting", state.time_s))
                self._say(self.coach.battery(s.leg, s.battery_pct, state.time_s))
        self._publish()

    def rep(self, rep: Rep, state: "LiveState") -> None:
        self._legs_from(state)
        self._state = state
        self._say(self.coach.rep(rep, state.time_s))
        self._publish()

    def set_closed(self, summary: SetSummary, state: "LiveState") -> None:
        self._legs_from(state)
        self._state = state
        self._say(self.coach.set_closed(summary, state.time_s))
        self._publish()

    def note(self, text: str) -> None:
        self._note = text
        self._publish()

    def close(self) -> None:
        """End the session: the last snapshot, the voices closed, the page told to stop (its
        shutdown scheduled when a loop runs: prefer :meth:`aclose` there). Idempotent."""
        self._finish()
        if self.page is not None:
            self.page.close()

    async def aclose(self) -> None:
        """:meth:`close`, awaiting the page's bounded shutdown (on the session's loop, before it ends)."""
        self._finish()
        if self.page is not None:
            await self.page.aclose()

    def _finish(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._publish()
        for voice in self.voices:
            closer = getattr(voice, "close", None)
            if closer is not None:
                closer()
            writer = getattr(voice, "write", None)
            if writer is not None:
                writer(self.end_s)

    # --- helpers -----------------------------------------------------------------------------------------

    def progress(self) -> Progress:
        return self.coach.progress()

    def _say(self, cues: list[Cue]) -> None:
        for cue in cues:
            for voice in self.voices:
                voice.say(cue)

    def snapshot(self) -> dict[str, Any]:
        """What the page shows, as JSON-able values."""
        progress = self.coach.progress()
        state = self._state
        legs_state = {s.leg: s for s in state.legs} if state is not None else {}
        legs = []
        for p in progress.legs:
            s = legs_state.get(p.leg)
            sample = self.angles.get(p.leg)
            angle = sample[1] if sample is not None else (s.angle_deg if s is not None else None)
            last = s.last_rep if s is not None else None
            legs.append(
                {
                    "leg": p.leg.value,
                    "reps": p.reps,
                    "remaining": p.remaining,
                    "angle_deg": _finite(angle),
                    "angle_t_s": _finite(sample[0]) if sample is not None else None,
                    "battery_pct": s.battery_pct if s is not None else None,
                    "link": str(getattr(s.link, "value", s.link)) if s is not None else "connecting",
                    "sensor": s.sensor if s is not None else "",
                    "last": None
                    if last is None
                    else {
                        "peak_deg": _finite(last.peak_deg) or 0.0,
                        "rom_deg": _finite(last.rom_deg) or 0.0,
                        "up_s": _finite(last.up_s) or 0.0,
                        "hold_s": _finite(last.hold_s) or 0.0,
                        "down_s": _finite(last.down_s) or 0.0,
                        "flags": list(last.flags),
                    },
                }
            )
        targets = self.coach.targets
        return {
            "t": _finite(state.time_s) or 0.0 if state is not None else 0.0,
            "legs": legs,
            "set_no": progress.set_no,
            "sets_total": progress.sets_total,
            "reps_per_leg": targets.reps_per_leg,
            "target_deg": targets.target_deg,
            "zone_deg": ZONE_DEG,
            "balance": progress.balance,
            "warning": progress.warning,
            "done": progress.done,
            "note": self._note,
            "ended": self._ended,
        }

    def _publish(self) -> None:
        if self.page is not None and (self._coach is not None or self._state is not None):
            self.page.publish(self.snapshot())


class Tee:
    """Several sinks behind the one ``view`` of a live session that does not take a ``sinks`` list
    yet: each call goes to every sink in order. Without ``angle`` calls from the loop, each
    ``show`` passes the newest angle of the state on (``LegState.angle_deg``, at the state's time).
    """

    def __init__(self, *sinks: Any) -> None:
        self.sinks = [s for s in sinks if s is not None]
        self._angle_calls = False

    def angle(self, leg: Leg, time_s: FloatArray, angle_deg: FloatArray) -> None:
        self._angle_calls = True
        for s in self.sinks:
            fn = getattr(s, "angle", None)
            if fn is not None:
                fn(leg, time_s, angle_deg)

    def show(self, state: "LiveState") -> None:
        if not self._angle_calls:
            import numpy as np

            for ls in state.legs:
                if ls.angle_deg is not None:
                    for s in self.sinks:
                        fn = getattr(s, "angle", None)
                        if fn is not None:
                            fn(ls.leg, np.array([state.time_s]), np.array([ls.angle_deg]))
        for s in self.sinks:
            s.show(state)

    def rep(self, rep: Rep, state: "LiveState") -> None:
        for s in self.sinks:
            s.rep(rep, state)

    def set_closed(self, summary: SetSummary, state: "LiveState") -> None:
        for s in self.sinks:
            s.set_closed(summary, state)

    def note(self, text: str) -> None:
        for s in self.sinks:
            s.note(text)

    def close(self) -> None:
        for s in self.sinks:
            s.close()
