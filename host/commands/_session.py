"""What ``capture``, ``demo`` and ``replay --realtime`` share: the sinks of a live session.

Each of them is "open drivers, run a :class:`legrep.live.LiveSession` with these sinks". The
terminal view is one sink; more (voice, web page: ``legrep.coach``) plug in here through
:func:`add_sink_options` and :func:`open_sinks`, so the three commands take the same options.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable
from typing import TypeVar

from ..sinks import SessionSink

T = TypeVar("T")


def add_sink_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose the sinks: ``--quiet`` (no live view) and the coaching ones
    (``--voice``, ``--voice-wav``, ``--web``...: :mod:`legrep.coach.options`)."""
    from ..coach.options import add_coach_arguments

    parser.add_argument("--quiet", action="store_true", help="no live view, only the final table")
    add_coach_arguments(parser)


def open_sinks(args: argparse.Namespace) -> list[SessionSink]:
    """The sinks ``args`` ask for; close each with ``close()`` when the session is over.

    Everything that can fail (speech engine, busy port) fails here, before the session starts,
    with one line.
    """
    from ..coach.options import build_coaching, targets_of
    from ..view import NullView, TerminalView

    if getattr(args, "quiet", False):
        sinks: list[SessionSink] = [NullView()]
    else:
        view = TerminalView(sys.stdout)
        view.targets = targets_of(args)  # what remains per leg; balance judged against the routine
        sinks = [view]
    coaching = build_coaching(args, None, out=sys.stdout)
    if coaching is not None:
        sinks.append(coaching)
    return sinks


def close_sinks(sinks: list[SessionSink]) -> None:
    for sink in sinks:
        try:
            sink.close()
        except Exception:  # noqa: BLE001 - closing a sink must not hide the session's result
            pass


async def with_sinks(session: Awaitable[T], sinks: list[SessionSink]) -> T:
    """Await ``session``, then close the sinks that need the loop (``aclose``: the web page's
    server) on that same loop, before ``asyncio.run`` ends it; :func:`close_sinks` afterwards
    closes the rest (closing twice is harmless)."""
    try:
        return await session
    finally:
        for sink in sinks:
            closer = getattr(sink, "aclose", None)
            if closer is not None:
                try:
                    await closer()
                except Exception:  # noqa: BLE001 - closing a sink must not hide the session's result
                    pass
