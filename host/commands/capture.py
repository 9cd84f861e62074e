"""``legrep capture``: live capture from the thigh sensors with the live view.

    legrep capture [--left ADDR] [--right ADDR] [--only LEG] [--serial [LEG=]PORT] [--sensor MODEL]
                   [--spec SPEC ...] [--out DIR] [--duration S]

Opens the sensors as drivers (:mod:`legrep.drivers`) and runs one live session over them until
Ctrl-C (or ``--duration``), then writes the recording (``session.lgr``), ``reps.csv`` and
``summary.json`` to ``--out`` (default ``legrep-session-<date>-<time>``) and stores the session in
the history. The options only choose the driver specs:

* default: legrep sensors over BLE (``ble:``); which leg is which comes from ``--left/--right``
  (remembered), else the remembered assignment, else the leg stored in the sensors;
* ``--serial [LEG=]PORT``: a wired sensor board (``serial:PORT``);
* ``--sensor MODEL``: sensors people already own (``witmotion``, ``movella-dot``, ``metamotion``,
  ``polar-verity``; docs/sensors.md): found by their advertisement, configured and started as the
  vendor documents. They store no leg: ``--left/--right`` (remembered), else the remembered
  assignment, else address order (said on screen);
* ``--spec SPEC``: any driver spec (``ble:ADDR``, ``serial:/dev/ttyACM0``, ``witmotion:ADDR``,
  ``replay:FILE``, ``sim:``), with its leg first (``left=serial:/dev/ttyACM0``); repeatable.
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

from ._session import add_sink_options, close_sinks, open_sinks, with_sinks
from .scan import add_adapter_option, backends_for
from ..errors import InputError
from ..model import Leg
from ..sensors import NATIVE, SENSOR_NAMES

def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "capture", help="live capture from the thigh sensors (BLE, serial, vendor models)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--left", metavar="ADDR", help="address of the left thigh sensor (remembered)")
    parser.add_argument("--right", metavar="ADDR", help="address of the right thigh sensor (remembered)")
    parser.add_argument("--only", choices=("left", "right"), help="capture one leg only")
    parser.add_argument("--pelvis", metavar="ADDR", nargs="?", const="",
                        help="also a pelvis sensor (sacrum or belt; its address, or the one that stores the pelvis); "
                        "with --serial: pelvis=PORT")
    parser.add_argument(
        "--serial",
        action="append",
        default=[],
        metavar="[LEG=]PORT",
        help="a wired sensor board on this serial port instead of BLE (repeat as left=PORT right=PORT)",
    )
    parser.add_argument(
        "--spec", action="append", default=[], metavar="SPEC",
        help="a driver spec: ble:ADDR, serial:PORT, MODEL:ADDR, replay:FILE, sim: (optionally LEG=SPEC; repeatable)",
    )
    parser.add_argument("--out", metavar="DIR", help="output directory (default legrep-session-<date>-<time>)")
    parser.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: Ctrl-C)")
    parser.add_argument("--scan-timeout", type=float, default=8.0, metavar="S", help="look for sensors this long")
    add_sink_options(parser)
    parser.add_argument("--exercise", default=None, help="exercise name stored in the history (e.g. 'bird dog')")
    parser.add_argument("--db", metavar="FILE", help="history database (default: $LEGREP_DB or ~/.local/share/legrep/history.db)")
    parser.add_argument("--no-history", action="store_true", help="do not store the session in the history database")
    parser.add_argument(
        "--sensor", default=NATIVE, choices=SENSOR_NAMES, metavar="MODEL",
        help=f"sensor model: {', '.join(SENSOR_NAMES)} (default %(default)s)",
    )
    add_adapter_option(parser)
    parser.set_defaults(func=run)


def driver_specs(args: argparse.Namespace) -> list[str]:
    """The driver specs the options ask for (see module docstring)."""
    if args.spec:
        return list(args.spec)
    legs = (Leg.parse(args.only),) if args.only else (Leg.LEFT, Leg.RIGHT)
    if args.serial:
        if args.sensor != NATIVE:
            raise InputError(f"--serial is for the legrep sensor board; got --sensor {args.sensor}")
        specs: list[str] = []
        seen: dict[Leg, str] = {}
        for item in args.serial:
            leg_text, sep, port = item.partition("=")
            if sep and leg_text.strip().lower() in ("left", "right", "pelvis"):
                leg = Leg.parse(leg_text)
            else:
                leg, port = Leg.parse(args.only or ("left" if Leg.LEFT not in seen else "right")), item
            if leg in seen:
                raise InputError(f"--serial: two ports for the {leg.value} leg ({seen[leg]} and {port})")
            seen[leg] = port
            specs.append(f"{leg.value}=serial:{port}")
        return specs
    kind = "ble" if args.sensor == NATIVE else args.sensor
    addresses = {Leg.LEFT: args.left, Leg.RIGHT: args.right, Leg.PELVIS: getattr(args, "pelvis", None)}
    if addresses[Leg.PELVIS] is not None:
        if args.sensor != NATIVE:
            raise InputError(f"--pelvis is a legrep sensor; got --sensor {args.sensor}")
        legs = (*legs, Leg.PELVIS)
    return [f"{leg.value}={kind}:{addresses[leg] or ''}" for leg in legs]


async def capture(
    args: argparse.Namespace, out: Path, sinks: list[Any], *, backends: tuple[Any, Any] | None = None,
    clock: Any = None,
) -> Any:
    """Open the drivers ``args`` ask for and run the live session: a :class:`legrep.live.LiveResult`.

    ``backends`` is ``(scanner_backend, client_backend)`` (default: from ``--hci``, else the
    operating system's adapter); ``clock`` the host clock (default: monotonic).

    Raises
    ------
    SensorError
        Too few sensors advertising, a requested address not seen, or a sensor that refuses to
        connect or start.
    """
    from ..drivers import open_drivers
    from ..live import LiveSession

    specs = driver_specs(args)
    legs = (Leg.parse(args.only),) if args.only else (Leg.LEFT, Leg.RIGHT)
    if any(s.startswith("pelvis=") for s in specs):
        legs = (*legs, Leg.PELVIS)
    radio = None
    if backends is None:
        radio, scanner_backend, client_backend = backends_for(args.hci)
        backends = (scanner_backend, client_backend)
    loop = asyncio.get_running_loop()
    try:
        drivers = await open_drivers(specs, legs=legs, clock=clock, backends=backends, scan_timeout_s=args.scan_timeout)
        async with drivers:
            stop = asyncio.Event()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGINT, stop.set)
            meta: dict[str, Any] = {"sensor_model": args.sensor} if args.sensor != NATIVE else {}
            live = LiveSession(
                drivers.drivers, clock=drivers.clock, recording=_recording_path(args, out), sinks=sinks, meta=meta
            )
            for note in drivers.notes:
                live.note(note)
            live.note(
                "capturing from "
                + ", ".join(f"{leg.value} {d.name}" for d in drivers.drivers for leg in d.legs())
                + " - Ctrl-C to stop"
            )
            return await live.run(duration_s=args.duration, stop=stop)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        if radio is not None:
            await radio.close()


def _recording_path(args: argparse.Namespace, out: Path) -> Path:
    """The recording ``run`` chose (a fresh name in ``out``), or ``out/session.lgr`` for callers of
    :func:`capture` itself."""
    chosen = getattr(args, "recording_path", None)
    return Path(chosen) if chosen is not None else out / "session.lgr"


def run(args: argparse.Namespace) -> int:
    from ..export import format_table, write_reps_csv, write_summary_json
    from ..settings import Settings

    if args.duration is not None and not args.duration > 0:
        raise InputError(f"--duration must be > 0 seconds, got {args.duration}")
    driver_specs(args)  # bad options fail before anything is created
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path(f"legrep-session-{stamp}")
    from ..fileio import fresh_names

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: a folder expected, got {exc.strerror or exc}") from None
    # Never replaces an earlier session: session.lgr, or session-2.lgr (with reps-2.csv...) and so on.
    args.recording_path, reps_path, summary_path = fresh_names(out, ["session.lgr", "reps.csv", "summary.json"])
    sinks = open_sinks(args)
    try:
        result = asyncio.run(with_sinks(capture(args, out, sinks), sinks)).result
    finally:
        close_sinks(sinks)
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
