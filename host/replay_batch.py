"""Replay for files (``export``, ``batch``, ``replay``): the live path, with the analysis fed in
larger blocks.

Live capture hands the analysis one packet's samples at a time (18 at an MTU of 247), because a
person is waiting for each rep; replaying a file, nobody is, and the per-call cost of the analysis
was 40 % of a replay. :class:`CoalescingAnalyzer` holds each leg's blocks until ``min_samples`` are
waiting and feeds them as one block. Everything before the analysis (decoder, tracker, clock) runs
exactly as live, record by record; the analysis gives the same reps, sets, flags and traces for any
chunking of the same samples (tests/test_pipeline.py proves it for the stages; tests/test_export.py
compares this replay with :func:`legrep.replay.replay_core` on a recording with lost, corrupt and
duplicated packets). Only when events are reported changes: a rep is reported when its block is fed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .live_core import SessionCore, concat_blocks
from .model import ImuBlock, Leg, Rep, SessionResult
from .pipeline import Event, SessionAnalyzer
from .recording import RecordingReader
from .replay import EventCallback, replay_records
from .settings import Settings

__all__ = ["CoalescingAnalyzer", "replay_file"]

SampleSink = Callable[[Leg, ImuBlock], None]
"""``on_samples(leg, block)``: the samples fed to the analysis, in order (e.g. to write them out)."""
MIN_SAMPLES = 8192
"""Samples per leg fed to the analysis at once in a file replay (about 80 s at 100 Hz)."""


class CoalescingAnalyzer:
    """A :class:`SessionAnalyzer` whose ``update`` holds blocks until ``min_samples`` per leg wait."""

    def __init__(
        self, analyzer: SessionAnalyzer, min_samples: int = MIN_SAMPLES, on_samples: SampleSink | None = None
    ) -> None:
        self.inner = analyzer
        self.min_samples = min_samples
        self.on_samples = on_samples
        self._held: dict[Leg, list[ImuBlock]] = {}
        self._count: dict[Leg, int] = {}

    def update(self, leg: Leg, block: ImuBlock) -> list[Event]:
        held = self._held.setdefault(leg, [])
        held.append(block)
        self._count[leg] = self._count.get(leg, 0) + len(block)
        if self._count[leg] < self.min_samples:
            return []
        return self._release(leg)

    def _release(self, leg: Leg) -> list[Event]:
        held = self._held.pop(leg, [])
        self._count[leg] = 0
        if not held:
            return []
        block = concat_blocks(held)
        if self.on_samples is not None:
            self.on_samples(leg, block)
        return list(self.inner.update(leg, block))

    def flush(self) -> list[Event]:
        events: list[Event] = []
        for leg in list(self._held):
            events += self._release(leg)
        return events

    def angle_deg(self, leg: Leg) -> float | None:
        return self.inner.angle_deg(leg)

    def reps(self) -> tuple[Rep, ...]:
        return self.inner.reps()

    def finish(self) -> SessionResult:
        self.final_events = self.flush()
        return self.inner.finish()

    final_events: list[Event] = []
    """Events of the blocks still held when ``finish`` was called."""

    def __getattr__(self, name: str) -> Any:  # settings, legs, ... of the wrapped analyzer
        return getattr(self.inner, name)


def replay_file(
    path: str | os.PathLike[str] | RecordingReader,
    settings: Settings | None = None,
    keep_samples: bool = False,
    keep_traces: bool = True,
    on_events: EventCallback | None = None,
    on_samples: SampleSink | None = None,
) -> tuple[SessionCore, SessionResult, RecordingReader]:
    """Replay a recording as :func:`legrep.replay.replay_core` does, the analysis fed in large blocks.

    ``keep_traces=False`` keeps no angle traces (memory flat in the length); ``on_samples`` sees
    every sample fed to the analysis (what ``keep_samples`` would keep, without keeping it).
    Returns ``(finished SessionCore, SessionResult, reader)``; the result equals replay_core's.
    """
    reader = path if isinstance(path, RecordingReader) else RecordingReader(path)
    core = SessionCore.from_meta(reader.meta, settings, keep_samples=keep_samples)
    if not keep_traces:
        core.analyzer = SessionAnalyzer(core.legs, core.settings, keep_traces=False)
    core.analyzer = CoalescingAnalyzer(core.analyzer, on_samples=on_samples)  # type: ignore[assignment]
    replay_records(reader, core, on_events)
    result = core.finish()
    last = core.analyzer.final_events  # type: ignore[attr-defined]
    core.events += last
    if last and on_events is not None:
        on_events(core.last_t_s, last)
    return core, result, reader
