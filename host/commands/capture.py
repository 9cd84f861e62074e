"""``legrep capture``: live capture from two thigh sensors with the live view.

    legrep capture [--left ADDR] [--right ADDR] [--only LEG] [--serial PORT] [--out DIR] [--duration S]
                   [--sensor MODEL]

Finds the sensors over BLE (or one wired board on ``--serial``), decides which leg is which
(``--left/--right``, else the remembered assignment, else the leg stored in the sensors), streams
until Ctrl-C (or ``--duration``) with the live view, and writes the recording (``session.lgr``),
``reps.csv`` and ``summary.json`` to ``--out`` (default ``legrep-session-<date>-<time>``).

``--sensor MODEL`` captures from sensors people already own (``witmotion``, ``movella-dot``,
``metamotion``, ``polar-verity``; docs/sensors.md): they are found by their advertisement
(:func:`legrep.sensors.detect`), configured and started as the vendor documents, and recorded and
analysed by the same loop. They store no leg: ``--left/--right`` (remembered), else the remembered
assignment, else address order (said on screen).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import signal
import sys
from pathlib import Path
from typing import Any

from .scan import add_adapter_option, backends_for
from ..errors import InputError, SensorError
from ..model import Leg
from ..sensors import NATIVE, SENSOR_NAMES


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "capture", help="live capture from the thigh sensors (BLE or serial)", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--left", metavar="ADDR", help="address of the left thigh sensor (remembered)")
    parser.add_argument("--right", metavar="ADDR", help="address of the right thigh sensor (remembered)")
    parser.add_argument("--only", choices=("left", "right"), help="capture one leg only")
    parser.add_argument(
        "--serial",
        action="append",
        default=[],
        metavar="[LEG=]PORT",
        help="a wired sensor board on this serial port instead of BLE (repeat as left=PORT right=PORT)",
    )
    parser.add_argument("--out", metavar="DIR", help="output directory (default legrep-session-<date>-<time>)")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: Ctrl-C)")
    parser.add_argument("--scan-timeout", type=float, default=8.0, metavar="S", help="look for sensors this long")
    parser.add_argument("--quiet", action="store_true", help="no live view")
    parser.add_argument("--exercise", default=None, help="exercise name stored in the history (e.g. 'bird dog')")
    parser.add_argument("--db", metavar="FILE", help="history database (default: $LEGREP_DB or ~/.local/share/legrep/history.db)")
    parser.add_argument("--no-history", action="store_true", help="do not store the session in the history database")
    parser.add_argument(
        "--sensor", default=NATIVE, choices=SENSOR_NAMES, metavar="MODEL",
        help=f"sensor model: {', '.join(SENSOR_NAMES)} (default %(default)s)",
    )
    add_adapter_option(parser)
    parser.set_defaults(func=run)


async def capture(args: argparse.Namespace, out: Path, view: Any) -> Any:
    from ..live import LiveSession
    from ..transport.ble import connect_legs, scan_sensors

    legs = (Leg.parse(args.only),) if args.only else (Leg.LEFT, Leg.RIGHT)
    radio, scanner_backend, client_backend = backends_for(args.hci)
    links: dict[Leg, Any] = {}
    loop = asyncio.get_running_loop()
    try:
        # min_count one above what is needed: keep looking the whole timeout only when few are seen
        found = await scan_sensors(args.scan_timeout, scanner_backend=scanner_backend, min_count=len(legs) + 1)
        if not found:
            raise SensorError(
                f"no legrep sensor found within {args.scan_timeout:g} s: are the sensors charged, switched on "
                "and within a few metres?"
            )
        if len(found) < len(legs):
            raise SensorError(
                f"found {len(found)} sensor ({found[0].name} {found[0].address}), need {len(legs)}: switch the other "
                "one on, or capture one leg with --only left|right"
            )
        links = await connect_legs(found, left=args.left, right=args.right, client_backend=client_backend, legs=legs)
        stop = asyncio.Event()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, stop.set)
        live = LiveSession(links, clock=_clock(), recording=_recording_path(args, out), view=view)
        if view is not None:
            view.note(
                "capturing from "
                + ", ".join(f"{leg.value} {link.name}" for leg, link in links.items())
                + " - Ctrl-C to stop"
            )
        return await live.run(duration_s=args.duration, stop=stop)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        for link in links.values():
            with contextlib.suppress(Exception):
                await link.close()
        if radio is not None:
            await radio.close()


async def capture_vendor(
    args: argparse.Namespace, out: Path, view: Any, *, backends: tuple[Any, Any] | None = None, clock: Any = None,
) -> Any:
    """A live session from two (or ``--only`` one) vendor sensors of model ``args.sensor``.

    ``backends`` is ``(scanner_backend, client_backend)`` (default: from ``--hci``, else the
    operating system's adapter); ``clock`` the host clock (default: monotonic).

    Raises
    ------
    SensorError
        Too few sensors of that model advertising, a requested address not seen, or a sensor that
        refuses to connect or start.
    """
    from ..live import LiveSession
    from ..sensors import get_model
    from ..sensors.link import VendorLiveLink, assign_legs, scan_models
    from ..transport.ble import load_assignment, save_assignment

    model = get_model(args.sensor)
    legs = (Leg.parse(args.only),) if args.only else (Leg.LEFT, Leg.RIGHT)
    radio = None
    if backends is None:
        radio, scanner_backend, client_backend = backends_for(args.hci)
    else:
        scanner_backend, client_backend = backends
    clock = clock or _clock()
    links: dict[Leg, Any] = {}
    loop = asyncio.get_running_loop()
    try:
        found = await scan_models(
            args.scan_timeout, models=(model.name,), scanner_backend=scanner_backend, clock=clock, min_count=len(legs) + 1
        )
        if not found:
            raise SensorError(
                f"no {model.title} found within {args.scan_timeout:g} s: is it charged, switched on, not connected "
                "to its phone app, and within a few metres?"
            )
        remembered = load_assignment() if not (args.left or args.right) else {}
        assignment, how = assign_legs(found, legs, left=args.left, right=args.right, remembered=remembered)
        if args.left or args.right:
            save_assignment({leg: f.address for leg, f in assignment.items()})
        for leg, f in assignment.items():
            link = VendorLiveLink(f.device, model, clock=clock, client_backend=client_backend, name=f.name)
            links[leg] = link
            await link.connect()
        stop = asyncio.Event()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, stop.set)
        live = LiveSession(
            links, clock=clock, recording=_recording_path(args, out), view=view, meta={"sensor_model": model.name}
        )
        if view is not None:
            view.note(
                f"capturing from {model.title}: "
                + ", ".join(f"{leg.value} {link.name} ({link.address})" for leg, link in links.items())
                + f" [legs by {how}; --left/--right to choose] - Ctrl-C to stop"
            )
        return await live.run(duration_s=args.duration, stop=stop)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        for link in links.values():
            with contextlib.suppress(Exception):
                await link.close()
        if radio is not None:
            await radio.close()


def _clock() -> Any:
    from ..transport.ble import MonotonicClock

    return MonotonicClock()


def serial_ports(items: list[str], only: str | None) -> dict[Leg, str]:
    """``--serial PORT`` (the ``--only`` leg, default left) or ``--serial LEG=PORT`` (repeatable)."""
    ports: dict[Leg, str] = {}
    for item in items:
        leg_text, sep, port = item.partition("=")
        if sep and leg_text.strip().lower() in ("left", "right"):
            leg = Leg.parse(leg_text)
        else:
            leg, port = Leg.parse(only or "left"), item
        if leg in ports:
            raise InputError(f"--serial: two ports for the {leg.value} leg ({ports[leg]} and {port})")
        ports[leg] = port
    return ports


def capture_wired(args: argparse.Namespace, out: Path, view: Any) -> Any:
    """A wired session (legrep.transport.serial); Ctrl-C ends it and the recording is replayed."""
    from ..replay import replay_recording
    from ..transport.serial import capture_serial

    ports = serial_ports(args.serial, args.only)

    def on_events(t_s: float, events: list[Any]) -> None:
        from ..pipeline import RepClosed

        for ev in events:
            if isinstance(ev, RepClosed) and view is not None:
                from ..view import describe_rep

                view.note(f"{t_s:7.1f} s  {ev.rep.leg.value:<5} rep  {describe_rep(ev.rep)}")

    recording = _recording_path(args, out)
    try:
        result, _, _ = capture_serial(
            ports, args.duration if args.duration is not None else 24 * 3600.0, recording, on_events=on_events
        )
        return result
    except KeyboardInterrupt:
        if not recording.exists():
            raise
        result, _ = replay_recording(recording)  # everything up to Ctrl-C was written as it arrived
        return result


def _recording_path(args: argparse.Namespace, out: Path) -> Path:
    """The recording ``run`` chose (a fresh name in ``out``), or ``out/session.lgr`` for callers of
    the capture functions themselves."""
    chosen = getattr(args, "recording_path", None)
    return Path(chosen) if chosen is not None else out / "session.lgr"


def run(args: argparse.Namespace) -> int:
    from ..export import format_table, write_reps_csv, write_summary_json
    from ..settings import Settings
    from ..view import NullView, TerminalView

    if args.duration is not None and not args.duration > 0:
        raise InputError(f"--duration must be > 0 seconds, got {args.duration}")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path(f"legrep-session-{stamp}")
    from ..fileio import fresh_names

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: a folder expected, got {exc.strerror or exc}") from None
    # Never replaces an earlier session: session.lgr, or session-2.lgr (with reps-2.csv...) and so on.
    args.recording_path, reps_path, summary_path = fresh_names(out, ["session.lgr", "reps.csv", "summary.json"])
    view = NullView() if args.quiet else TerminalView(sys.stdout)
    try:
        if args.serial:
            if args.sensor != NATIVE:
                raise InputError(f"--serial is for the legrep sensor board; got --sensor {args.sensor}")
            result = capture_wired(args, out, view)
        elif args.sensor != NATIVE:
            result = asyncio.run(capture_vendor(args, out, view)).result
        else:
            result = asyncio.run(capture(args, out, view)).result
    finally:
        view.close()
    from ..exercise import override_exercise

    result = override_exercise(result, args.exercise)  # README "Which exercise"
    print(format_table(result), end="")
    write_reps_csv(reps_path, result)
    write_summary_json(summary_path, result, Settings())
    print(f"Wrote {args.recording_path}, {reps_path}, {summary_path}")
    if not args.no_history:
        from ..history import DEFAULT_EXERCISE, remember_session

        started = dt.datetime.strptime(stamp, "%Y%m%d-%H%M%S")
        remembered = remember_session(args.db, result, Settings(), args.recording_path, args.exercise or DEFAULT_EXERCISE, started)
        if not remembered.stored:
            from ..history import EXIT_NOT_STORED

            print(f"legrep capture: error: {remembered.line}", file=sys.stderr)
            return EXIT_NOT_STORED
        print(remembered.line)
    return 0
