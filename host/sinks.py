"""What a live session tells the things that show or say it: the view, the voice, the web page.

One :class:`LiveSession` (capture, demo, ``replay --realtime``) drives any number of sinks. Each
sink gets the same calls, in session time, from the one live loop; a sink never blocks it (slow
work such as speech goes to a task or thread of the sink's own) and never changes the analysis.

Contract (the live loop calls, in this order of arrival):

- ``angle(leg, time_s, angle_deg)`` for every chunk of hip angle the analysis releases, as soon as
  it is released (``time_s`` and ``angle_deg`` are 1-D float arrays of the same length, seconds of
  session time and degrees);
- ``rep(rep, state)`` when a rep closes;
- ``set_closed(summary, state)`` when a set closes;
- ``show(state)`` at least 10 times a second of session time while the session runs;
- ``note(text)`` for a one-line message (a reconnect, a lost sensor);
- ``close()`` once, when the session ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .live import LiveState
    from .model import FloatArray, Leg, Rep, SetSummary


class SessionSink(Protocol):
    def angle(self, leg: "Leg", time_s: "FloatArray", angle_deg: "FloatArray") -> None: ...

    def show(self, state: "LiveState") -> None: ...

    def rep(self, rep: "Rep", state: "LiveState") -> None: ...

    def set_closed(self, summary: "SetSummary", state: "LiveState") -> None: ...

    def note(self, text: str) -> None: ...

    def close(self) -> None: ...
