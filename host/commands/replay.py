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
    parser.add_argument(
        "file", metavar="INPUT", nargs="?",
        help="a recording, a folder (capture/demo --out, or left.csv/right.csv) or CSV files named after their leg",
    )
    parser.add_argument("more", metavar="CSV", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--left", metavar="CSV", help="IMU CSV of the left thigh (instead of INPUT)")
    parser.add_argument("--right", metavar="CSV", help="IMU CSV of the right thigh (instead of INPUT)")
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

    from ..inputs import resolve_one

    item = resolve_one([p for p in [args.file, *args.more] if p is not None], args.left, args.right)
    if item.recording is None:
        return _replay_csv(args, item)
    reader = RecordingReader(item.recording)  # a torn last record is reported once, here
    settings = settings_for(args, reader.meta)
    if args.realtime:
        sinks = open_sinks(args)
        try:
            result = asyncio.run(replay_live(str(item.recording), settings, sinks)).result
        finally:
            close_sinks(sinks)
        print(format_table(result))
        return 0

    def show(t_s: float, events: list[Any]) -> None:
        if not args.quiet:
            for event in events:
                print(describe_event(event), flush=True)

    if args.realtime:
        core, result, reader = replay_core(reader, settings, on_events=show)
    else:  # nobody waits for each rep: the analysis is fed in large blocks (same result, see replay_batch)
        from ..replay_batch import replay_file

        core, result, reader = replay_file(reader, settings, keep_traces=False, on_events=show)
    print(format_table(result))
    return 0


CSV_CHUNK_S = 0.5
"""A CSV session is fed to the analysis in chunks of this many seconds of sample time."""


def _replay_csv(args: argparse.Namespace, item: Any) -> int:
    """Replay IMU CSV files (one per leg): the analysis fed in sample-time order, each rep and set
    printed as it closes (``--realtime``: paced by the sample times)."""
    import time

    import numpy as np

    from .analyze import parse_overrides
    from ..export import format_table
    from ..imu_csv import read_imu_csv
    from ..model import ImuBlock
    from ..pipeline import SessionAnalyzer

    settings = parse_overrides(args.settings)
    blocks = {leg: read_imu_csv(path) for leg, path in item.csv().items()}
    analyzer = SessionAnalyzer(tuple(blocks), settings)
    t0 = min(float(b.time_s[0]) for b in blocks.values() if len(b))
    t1 = max(float(b.time_s[-1]) for b in blocks.values() if len(b))
    wall0 = time.monotonic()
    edges = np.arange(t0 + CSV_CHUNK_S, t1 + CSV_CHUNK_S, CSV_CHUNK_S)
    cuts = {leg: np.searchsorted(b.time_s, edges, side="right") for leg, b in blocks.items()}
    start = {leg: 0 for leg in blocks}
    for k, edge in enumerate(edges):
        if args.realtime:
            time.sleep(max(0.0, wall0 + (edge - t0) - time.monotonic()))
        for leg, b in blocks.items():
            stop = int(cuts[leg][k])
            if stop > start[leg]:
                sl = slice(start[leg], stop)
                events = analyzer.update(leg, ImuBlock(b.time_s[sl], b.acc_g[sl], b.gyr_dps[sl]))
                start[leg] = stop
                if not args.quiet:
                    for event in events:
                        print(describe_event(event), flush=True)
    result = analyzer.finish()
    print(format_table(result))
    return 0
