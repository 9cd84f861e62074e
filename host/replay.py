"""Replay a recording through the live path: the same records, in the same order, into the same core.

:func:`replay_core` reads a recording (:mod:`legrep.recording`) and feeds every record to a fresh
:class:`~legrep.live_core.SessionCore`, exactly as live capture fed them, so the samples, times and
reps are those of the live session. Paced replay with a live view (``legrep replay --realtime``)
is the replay driver in :mod:`legrep.drivers` run by :class:`legrep.live.LiveSession`.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .live_core import SessionCore
from .model import SessionResult
from .pipeline import Event as AnalysisEvent
from .recording import RecordingReader
from .settings import Settings

EventCallback = Callable[[float, list[AnalysisEvent]], None]
"""``on_events(t_s, events)``: the analysis events one record caused, at its session time."""


def replay_records(reader: RecordingReader, core: SessionCore, on_events: EventCallback | None = None) -> None:
    """Feed every record of ``reader`` to ``core``; ``on_events(t_s, events)`` sees analysis events."""
    for rec in reader:
        events = core.process(rec)
        if events and on_events is not None:
            on_events(rec.t_s, events)


def replay_core(
    path: str | os.PathLike[str] | RecordingReader,
    settings: Settings | None = None,
    keep_samples: bool = False,
    on_events: EventCallback | None = None,
) -> tuple[SessionCore, SessionResult, RecordingReader]:
    """Replay a recording (a path or an open reader): ``(finished SessionCore, SessionResult, reader)``.

    ``settings`` defaults to the settings stored in the recording.
    """
    reader = path if isinstance(path, RecordingReader) else RecordingReader(path)
    core = SessionCore.from_meta(reader.meta, settings, keep_samples=keep_samples)
    replay_records(reader, core, on_events)
    return core, core.finish(), reader


def replay_recording(
    path: str | os.PathLike[str], settings: Settings | None = None
) -> tuple[SessionResult, list[AnalysisEvent]]:
    """Replay a recording through the live path: ``(SessionResult, analysis events in order)``.

    ``settings`` defaults to the settings stored in the recording.

    Raises
    ------
    RecordingError
        Not a recording, damaged in the middle, or records that do not fit together.
    """
    core, result, _ = replay_core(path, settings)
    return result, list(core.events)
