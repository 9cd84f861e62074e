"""``legrep replay``: run a recorded session through the live path again.

    legrep replay FILE [--realtime] [--set NAME=VALUE ...]

Prints each rep and set as the analysis closes it, then the per-set table. ``--realtime`` runs
the recording as a driver (``replay:FILE``) through the live session at the recorded pace, with the
live view (and any other sink), as it was captured. The settings stored
in the recording are used unless overridden with ``--set``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
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
    from ._session import close_sinks, open_sinks, with_sinks
    from ..export import format_table
    from ..recording import RecordingReader

    from ..inputs import resolve_one

    item = resolve_one([p for p in [args.file, *args.more] if p is not None], args.left, args.right)
    if item.recording is None:
        return _replay_csv(args, item)
    reader = RecordingReader(item.recording)  # a torn last record is reported once, here
    settings = settings_for(args, reader.meta)
    if args.realtime:
        import asyncio  # (only here: a file replay needs no event loop)

        sinks = open_sinks(args)
        try:
            result = asyncio.run(with_sinks(replay_live(str(item.recording), settings, sinks), sinks)).result
        finally:
            close_sinks(sinks)
        print(format_table(result))
        return 0

    def show(t_s: float, events: list[Any]) -> None:
        if not args.quiet:
            for event in events:
                print(describe_event(event), flush=True)

    from ..replay_batch import replay_file

    # nobody waits for each rep: the analysis is fed in large blocks (the same result, see replay_batch)
    core, result, reader = replay_file(reader, settings, keep_traces=False, on_events=show)
    print(format_table(result))
    return 0


CSV_CHUNK_S = 0.5
"""A CSV session is fed to the analysis in chunks of this many seconds of sample time."""
CSV_LIVE_CHUNK_S = 0.1
"""``--realtime``: chunks of this many seconds (what a sensor's packets bring), so the angle moves;
a snapshot for the sinks after each (10 Hz, as live)."""


def _replay_csv(args: argparse.Namespace, item: Any) -> int:
    """Replay IMU CSV files (one per leg): the analysis fed in sample-time order, each rep and set
    printed as it closes. ``--realtime``: paced by the sample times on the event loop, with the
    same sinks as a recording's replay (live view, voice, page)."""
    import asyncio

    from .analyze import parse_overrides
    from ..export import format_table
    from ..imu_csv import read_imu_csv

    settings = parse_overrides(args.settings)
    blocks = {leg: read_imu_csv(path) for leg, path in item.csv().items()}
    names = {leg: Path(path).name for leg, path in item.csv().items()}
    if args.realtime:
        from ._session import close_sinks, open_sinks, with_sinks

        sinks = open_sinks(args)
        try:
            result = asyncio.run(with_sinks(play_csv(blocks, settings, sinks, names), sinks))
        finally:
            close_sinks(sinks)
    else:
        def printed(events: list[Any]) -> None:
            if not args.quiet:
                for event in events:
                    print(describe_event(event), flush=True)

        result = _feed_csv(blocks, settings, CSV_CHUNK_S, printed)
    print(format_table(result))
    return 0


def _feed_csv(blocks: dict[Any, Any], settings: Any, chunk_s: float, on_events: Any) -> Any:
    """The analysis fed ``blocks`` (per leg) in sample-time chunks of ``chunk_s``; ``on_events``
    gets each chunk's events. Returns the session result."""
    import numpy as np

    from ..model import ImuBlock
    from ..pipeline import SessionAnalyzer

    analyzer = SessionAnalyzer(tuple(blocks), settings)
    t0 = min(float(b.time_s[0]) for b in blocks.values() if len(b))
    t1 = max(float(b.time_s[-1]) for b in blocks.values() if len(b))
    edges = np.arange(t0 + chunk_s, t1 + chunk_s, chunk_s)
    cuts = {leg: np.searchsorted(b.time_s, edges, side="right") for leg, b in blocks.items()}
    start = {leg: 0 for leg in blocks}
    for k in range(edges.size):
        for leg, b in blocks.items():
            stop = int(cuts[leg][k])
            if stop > start[leg]:
                sl = slice(start[leg], stop)
                on_events(analyzer.update(leg, ImuBlock(b.time_s[sl], b.acc_g[sl], b.gyr_dps[sl])))
                start[leg] = stop
    return analyzer.finish()


async def play_csv(blocks: dict[Any, Any], settings: Any, sinks: list[Any], names: dict[Any, str], clock: Any = None) -> Any:
    """``replay --realtime`` of CSV files: the samples fed in 0.1 s chunks when ``clock`` reaches
    their time (default: the monotonic clock; on a virtual-time loop, as fast as the CPU goes), each
    chunk's angle, every rep and set and a 10 Hz snapshot to ``sinks``. Returns the session result
    (the same as without ``--realtime``: the analysis streams)."""
    import numpy as np

    from ..live import LegState, LiveState
    from ..drivers.base import LinkState
    from ..model import ImuBlock, Rep, SetSummary
    from ..pipeline import RepClosed, SessionAnalyzer, SetClosed
    from ..transport.common import MonotonicClock

    clock = clock or MonotonicClock()
    legs = tuple(blocks)
    analyzer = SessionAnalyzer(legs, settings, keep_traces=False)
    t0 = min(float(b.time_s[0]) for b in blocks.values() if len(b))
    t1 = max(float(b.time_s[-1]) for b in blocks.values() if len(b))
    counts = {leg: 0 for leg in legs}
    last: dict[Any, Rep] = {}
    sets: list[SetSummary] = []
    seen: set[tuple[Any, float]] = set()

    def state(now_s: float) -> LiveState:
        return LiveState(now_s, tuple(LegState(leg, counts[leg], analyzer.angle_deg(leg), last.get(leg), None,
                                               LinkState.CONNECTED, names[leg]) for leg in legs), tuple(sets))

    def each(method: str, *a: Any) -> None:
        for sink in sinks:
            getattr(sink, method)(*a)

    def handle(events: list[Any], now_s: float) -> None:
        for ev in events:
            if isinstance(ev, RepClosed):
                seen.add((ev.rep.leg, ev.rep.start_s))
                last[ev.rep.leg] = ev.rep
                counts[ev.rep.leg] += 1
                each("rep", ev.rep, state(now_s))
            elif isinstance(ev, SetClosed):
                sets.append(ev.summary)
                for leg in legs:
                    counts[leg] = 0
                each("set_closed", ev.summary, state(now_s))

    analyzer.on_angle = lambda leg, t, a: each("angle", leg, t, a)
    edges = np.arange(t0 + CSV_LIVE_CHUNK_S, t1 + CSV_LIVE_CHUNK_S, CSV_LIVE_CHUNK_S)
    cuts = {leg: np.searchsorted(b.time_s, edges, side="right") for leg, b in blocks.items()}
    start = {leg: 0 for leg in legs}
    begin_s = clock.now_s()
    for k, edge in enumerate(edges):
        wait_s = (edge - t0) - (clock.now_s() - begin_s)
        if wait_s > 0:
            await clock.sleep(wait_s)
        now_s = float(min(edge, t1))
        for leg, b in blocks.items():
            stop = int(cuts[leg][k])
            if stop > start[leg]:
                sl = slice(start[leg], stop)
                handle(analyzer.update(leg, ImuBlock(b.time_s[sl], b.acc_g[sl], b.gyr_dps[sl])), now_s)
                start[leg] = stop
        each("show", state(now_s))
    result = analyzer.finish()  # the end of the stream confirms a pending rep and closes the last set
    shown = {s.set for s in sets}
    handle([RepClosed(r) for r in result.reps if (r.leg, r.start_s) not in seen], t1)
    for summary in result.sets:
        if summary.set not in shown:
            handle([SetClosed(summary, ())], t1)
    each("show", state(t1))
    return result
