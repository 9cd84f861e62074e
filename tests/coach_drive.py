"""Drive a coaching sink with legrep's real analysis of a simulated session, in session time.

Shared by the tests/test_coach_*.py files: samples of both legs go through
:class:`legrep.pipeline.SessionAnalyzer` in 100 ms chunks in time order (as the live loop
feeds them); after each chunk the sink gets the released angle, then each event, then ``show``.

The analysis does not depend on the sink, so a session is analysed once per test process: the
sink calls it makes (with the immutable ``LiveState`` snapshots of that moment) are kept and made
again, in the same order with the same arguments, on each later sink of the same session.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from legrep.live import LegState, LiveState
from legrep.model import Leg, Rep, SetSummary
from legrep.pipeline import RepClosed, SessionAnalyzer, SetClosed
from legrep.settings import Settings

CHUNK_S = 0.1


_TAPES: dict[tuple[int, Settings | None, float], tuple[Any, list[tuple[str, tuple[Any, ...]]], list[Any]]] = {}
"""Per (session signals, settings, latency): the signals (kept, so that their id stays theirs), the
sink calls in order and the analysis events."""


def drive(sink: Any, signals: dict[str, Any], settings: Settings | None = None, latency_s: float = 0.05) -> list[Any]:
    """Feed ``signals`` (per leg name: ``time_s``, ``acc_g``, ``gyr_dps``) through the analysis into
    ``sink``; each chunk's calls are made at session time = its last sample + ``latency_s``.
    Returns the analysis events in order."""
    key = (id(signals), settings, latency_s)
    tape = _TAPES.get(key)
    if tape is None or tape[0] is not signals:
        recorder = _Recorder()
        events = _analyse(recorder, signals, settings, latency_s)
        tape = _TAPES[key] = (signals, recorder.calls, events)
    for name, args in tape[1]:
        getattr(sink, name)(*args)
    return list(tape[2])


class _Recorder:
    """A sink that keeps each call (name and arguments) to be made again on a real sink."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.calls.append((name, args))


def _analyse(sink: Any, signals: dict[str, Any], settings: Settings | None, latency_s: float) -> list[Any]:
    legs = tuple(Leg(name) for name in ("left", "right") if name in signals)
    analyzer = SessionAnalyzer(legs, settings, keep_traces=False)
    last: dict[Leg, Rep] = {}
    counts = {leg: 0 for leg in legs}
    sets: list[SetSummary] = []
    events_all: list[Any] = []

    def state(now_s: float) -> LiveState:
        return LiveState(
            now_s,
            tuple(LegState(leg, counts[leg], analyzer.angle_deg(leg), last.get(leg), 90, "connected", f"sim-{leg.value}") for leg in legs),
            tuple(sets),
        )

    chunks = []
    for leg in legs:
        sig = signals[leg.value]
        t = np.asarray(sig.time_s, dtype=float)
        edges = np.searchsorted(t, np.arange(t[0], t[-1] + CHUNK_S, CHUNK_S))
        for a, b in zip(edges[:-1], edges[1:]):
            if b > a:
                chunks.append((float(t[b - 1]), leg, slice(a, b)))
    chunks.sort(key=lambda c: (c[0], c[1].value))
    from legrep.model import ImuBlock

    def handle(events: list[Any], now_s: float) -> None:
        for ev in events:
            events_all.append(ev)
            if isinstance(ev, RepClosed):
                last[ev.rep.leg] = ev.rep
                counts[ev.rep.leg] += 1
                sink.rep(ev.rep, state(now_s))
            elif isinstance(ev, SetClosed):
                sets.append(ev.summary)
                for leg in legs:
                    counts[leg] = 0
                sink.set_closed(ev.summary, state(now_s))

    next_show = 0.0
    now_s = 0.0
    for t_last, leg, sl in chunks:
        sig = signals[leg.value]
        now_s = t_last + latency_s
        events = analyzer.update(leg, ImuBlock.from_arrays(sig.time_s[sl], sig.acc_g[sl], sig.gyr_dps[sl]))
        angle = analyzer.angle_deg(leg)
        if angle is not None:
            sink.angle(leg, np.array([t_last]), np.array([angle]))
        handle(events, now_s)
        if now_s >= next_show:
            sink.show(state(now_s))
            next_show = now_s + 0.1
    seen = {(ev.rep.leg, ev.rep.start_s) for ev in events_all if isinstance(ev, RepClosed)}
    shown = {s.set for s in sets}
    result = analyzer.finish()  # the end of the stream confirms a pending rep and closes the last set
    handle([RepClosed(r) for r in result.reps if (r.leg, r.start_s) not in seen], now_s + 0.2)
    for summary in result.sets:
        if summary.set not in shown:
            sets.append(summary)
            events_all.append(SetClosed(summary, ()))
            for leg in legs:
                counts[leg] = 0
            sink.set_closed(summary, state(now_s + 0.5))
    sink.show(state(now_s + 0.5))
    sink.close()
    return events_all
