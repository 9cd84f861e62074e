"""``legrep replay``: run a recorded session through the live path again.

    legrep replay FILE [--realtime] [--set NAME=VALUE ...]

Prints each rep and set as the analysis closes it, then the per-set table. ``--realtime`` runs
the recording as a driver (``replay:FILE``) through the live session at the recorded pace, with the
live view (and any other sink), as it was captured. The settings stored
in the recording are used unless overridden with ``--set``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._session import add_sink_options


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay a recorded session (same decoding and analysis as live capture)",
        description="Replay a legrep recording through the same decoder, clock and analysis as live capture.",
    )
    parser.add_argument("file", metavar="FILE", help="a recording written by 'legrep capture'")
    parser.add_argument(
        "--realtime", action="store_true", help="pace the replay at the recorded speed, with the live view"
    )
    add_sink_options(parser)
    parser.add_argument(
        "--set", dest="settings", metavar="NAME=VALUE", action="append", default=[],
        help="override an analysis setting (default: the settings stored in the recording)",
    )
    parser.set_defaults(func=run)


def describe_event(event: Any) -> str:
    """One line for a RepClosed / SetClosed event."""
    rep = getattr(event, "rep", None)
    if rep is not None:
        flags = f"  [{', '.join(rep.flags)}]" if rep.flags else ""
        return (
            f"{rep.end_s:8.1f} s  {rep.leg.value:<5} rep  peak {rep.peak_deg:5.1f} deg  range {rep.rom_deg:5.1f} deg  "
            f"up {rep.up_s:.1f} s  hold {rep.hold_s:.1f} s  down {rep.down_s:.1f} s{flags}"
        )
    summary = getattr(event, "summary", None)
    if summary is not None:
        uneven = "  UNEVEN" if summary.uneven else ""
        return f"{summary.end_s:8.1f} s  set {summary.set} closed: left {summary.left_reps}, right {summary.right_reps}{uneven}"
    return str(event)


def settings_for(args: argparse.Namespace, meta: dict[str, Any]) -> Any:
    from .analyze import parse_overrides
    from ..settings import Settings

    base = Settings.from_dict(meta["settings"]) if isinstance(meta.get("settings"), dict) else Settings()
    return parse_overrides(args.settings, base)


async def replay_live(path: str, settings: Any, sinks: list[Any], clock: Any = None) -> Any:
    """``replay --realtime``: the recording as a driver (``replay:FILE``) run by the live session,
    paced by ``clock`` (default: the monotonic clock), with the live view and the other sinks."""
    from ..drivers.replay import ReplayDriver
    from ..live import LiveSession
    from ..transport.common import MonotonicClock

    clock = clock or MonotonicClock()
    driver = ReplayDriver(path, clock=clock, realtime=True)
    live = LiveSession([driver], clock=clock, settings=settings, sinks=sinks)
    return await live.run()


def run(args: argparse.Namespace) -> int:
    import asyncio

    from ._session import close_sinks, open_sinks
    from ..export import format_table
    from ..recording import RecordingReader
    from ..replay import replay_core

    reader = RecordingReader(args.file)  # a torn last record is reported once, here
    settings = settings_for(args, reader.meta)
    if args.realtime:
        sinks = open_sinks(args)
        try:
            result = asyncio.run(replay_live(args.file, settings, sinks)).result
        finally:
            close_sinks(sinks)
        print(format_table(result))
        return 0

    def show(t_s: float, events: list[Any]) -> None:
        if not args.quiet:
            for event in events:
                print(describe_event(event), flush=True)

    core, result, reader = replay_core(reader, settings, on_events=show)
    print(format_table(result))
    return 0
