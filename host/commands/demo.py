"""``legrep demo``: two virtual sensors stream a bundled session through the real BLE stack.

    legrep demo [--speed X] [--out DIR] [--disconnects N] [--session NAME] [--sensor MODEL]

The sensors are the simulated firmware behind bumble GATT servers on an in-memory radio; the host
side is the real one (bleak over a bumble backend, the same drivers, decoder, tracker, clock
mapping, analysis and live view as ``legrep capture``): the demo opens the ``sim:`` driver spec
and runs the live session, nothing else. Time runs ``--speed`` times faster than the wall clock.
``--disconnects N`` takes the sensors out of range N times during reps; the host reconnects (and a
legrep sensor re-sends what was missed). At the end the per-set table is printed; ``--out DIR``
keeps the recording (``session.lgr``, replayable with ``legrep replay``), ``reps.csv`` and
``summary.json``.

``--sensor MODEL`` (``witmotion``, ``movella-dot``, ``metamotion``, ``polar-verity``) replaces the
legrep sensors with emulated sensors of that model (``legrep_sim.emulators``) playing the same
session simulated at the model's rate.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..drivers.sim import RECORDINGS_DIR, SESSIONS, SimWorld, load_programme, plan_outages, vendor_programme
from ._session import add_sink_options, close_sinks, open_sinks, with_sinks
from ..errors import InputError
from ..sensors import NATIVE, SENSOR_NAMES

__all__ = [
    "RECORDINGS_DIR", "SESSIONS", "DemoOutcome", "load_programme", "plan_outages", "register", "run", "run_demo",
    "vendor_programme",
]

if TYPE_CHECKING:
    from ..live import LiveResult
    from ..model import SessionResult
    from ..sinks import SessionSink


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="stream a bundled session from two virtual sensors through the BLE stack",
        description=(
            "Two simulated thigh sensors (bumble GATT servers on an in-memory radio) stream a bundled "
            "session through the real host BLE stack into the live view, then print the reps table."
        ),
    )
    parser.add_argument(
        "--speed", type=_speed, default=10.0, metavar="X",
        help="time runs X times faster (default 10); 'max': on virtual time, as fast as the CPU goes",
    )
    parser.add_argument("--out", metavar="DIR", help="write session.lgr, reps.csv and summary.json here")
    parser.add_argument(
        "--disconnects", type=int, default=0, metavar="N", help="drop the link N times during reps (default 0)"
    )
    parser.add_argument("--session", default=SESSIONS[0], choices=SESSIONS, help="bundled session (default %(default)s)")
    parser.add_argument(
        "--sensor", default=NATIVE, choices=SENSOR_NAMES, metavar="MODEL",
        help=f"sensor model to emulate: {', '.join(SENSOR_NAMES)} (default %(default)s)",
    )
    parser.add_argument(
        "--pelvis", action="store_true",
        help="a third virtual sensor on the pelvis: hip flexion, pelvic tilt and back_arch (README 'The pelvis sensor')",
    )
    add_sink_options(parser)
    parser.set_defaults(func=run)


def _speed(text: str) -> float:
    """``--speed``: a number of simulated seconds per wall second, or ``max`` (virtual time)."""
    if text.strip().lower() == "max":
        return math.inf
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number or 'max' expected, got {text!r}") from None


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    result: "SessionResult"
    live: "LiveResult"
    truth: dict[str, Any]
    outages: list[tuple[str, float, float]]
    """``(leg, programme start s, duration s)`` of each link outage."""
    wall_s: float
    programme_offset_s: float
    """Session time of programme time 0 (session_s = programme_s + offset)."""
    firmwares: dict[str, Any]
    """Per leg: the firmware model (legrep) or the emulated sensor (vendor model)."""


async def run_demo(
    speed: float = 10.0,
    disconnects: int = 0,
    session: str = SESSIONS[0],
    recording: Path | None = None,
    view: "SessionSink | None" = None,
    programmes: dict[str, Any] | None = None,
    truth: dict[str, Any] | None = None,
    keep_samples: bool = False,
    outages: list[tuple[str, float, float]] | None = None,
    rate_hz: int = 100,
    sensor: str = NATIVE,
    sinks: Sequence["SessionSink"] = (),
    pelvis: bool = False,
) -> DemoOutcome:
    """Open ``sim:SENSOR`` and run the live session on it, in the current event loop.

    ``programmes`` (per leg: ``SignalArrays`` for legrep, a ``SimSignal`` at the model's rate for a
    vendor model) and ``truth`` replace the bundled session; ``outages`` the planned link drops.
    ``pelvis``: a third legrep sensor on the pelvis (the session simulated with a pelvis).

    Raises
    ------
    InputError
        Unknown model, a speed <= 0 or a negative number of disconnects.
    SensorError
        The simulated sensors are not found or refuse to start.
    """
    from ..drivers import DriverSpec
    from ..drivers.sim import open_sim
    from ..live import LiveSession
    from ..model import Leg

    if sensor != NATIVE and sensor not in SENSOR_NAMES:
        raise InputError(f"--sensor must be one of {list(SENSOR_NAMES)}, got {sensor!r}")
    if pelvis and sensor != NATIVE:
        raise InputError(f"--pelvis: the virtual pelvis sensor is a legrep sensor; got --sensor {sensor}")
    legs = (Leg.LEFT, Leg.RIGHT, Leg.PELVIS) if pelvis else (Leg.LEFT, Leg.RIGHT)
    spec = DriverSpec("sim", sensor, options={"session": session, "speed": f"{speed!r}", "disconnects": str(disconnects),
                                              "rate": str(rate_hz)})
    wall0 = time.perf_counter()
    drivers = await open_sim(spec, legs=legs, programmes=programmes, truth=truth, outages=outages)
    async with drivers:
        world: SimWorld = drivers.extra["world"]
        live = LiveSession(
            drivers.drivers,
            clock=drivers.clock,
            recording=recording,
            view=view,
            sinks=sinks,
            meta={"demo": {"session": session, "speed": speed, "disconnects": disconnects, "sensor": sensor,
                           "pelvis": pelvis},
                  **({"sensor_model": sensor} if sensor != NATIVE else {})},
            keep_samples=keep_samples,
        )
        for note in drivers.notes:
            live.note(note)
        run_task = asyncio.ensure_future(live.run(duration_s=0.5 + world.duration_s + 1.0))
        await asyncio.sleep(0)  # run() has read the session origin
        offset_s = world.started_s - live.session_origin_s
        outcome = await run_task
    return DemoOutcome(outcome.result, outcome, world.truth, world.outages, time.perf_counter() - wall0, offset_s,
                       dict(world.devices))


def run(args: argparse.Namespace) -> int:
    from ..export import format_table, write_reps_csv, write_summary_json

    from ..fileio import fresh_names

    out = Path(args.out) if args.out else None
    outputs: list[Path] = []
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"--out {out}: a folder expected, got {exc.strerror or exc}") from None
        # Never replaces an earlier session: session.lgr, or session-2.lgr (with reps-2.csv...) and so on.
        outputs = fresh_names(out, ["session.lgr", "reps.csv", "summary.json"])
        recording = outputs[0]
    else:
        tmp = tempfile.TemporaryDirectory(prefix="legrep-demo-")
        recording = Path(tmp.name) / "session.lgr"
    sensor = getattr(args, "sensor", NATIVE)
    sinks = open_sinks(args)
    pelvis = bool(getattr(args, "pelvis", False))
    kind = "virtual sensors" if sensor == NATIVE else f"emulated {sensor} sensors"
    kind = f"three {kind} (thighs and pelvis)" if pelvis else f"two {kind}"
    fast = math.isinf(args.speed)
    pace = "on virtual time (as fast as the CPU goes)" if fast else f"speed x{args.speed:g}"
    print(
        f"legrep demo: {kind}, session {args.session!r}, {pace}"
        + (f", {args.disconnects} link drop(s)" if args.disconnects else ""),
        flush=True,
    )
    try:
        main = with_sinks(run_demo(1.0 if fast else args.speed, args.disconnects, args.session, recording=recording,
                                   sensor=sensor, sinks=sinks, pelvis=pelvis), sinks)
        if fast:
            from legrep_sim import virtual_time

            outcome = virtual_time.run(main)
        else:
            outcome = asyncio.run(main)
    finally:
        close_sinks(sinks)
    result = outcome.result
    stats = outcome.live.stats
    print()
    print(format_table(result), end="")
    drops = sum(stats.disconnects.values())
    lost = sum(d.link.lost_packets for d in result.diagnostics.values() if d.link is not None)
    resent = f", {stats.resend_requests} resend request(s), {lost} packet(s) lost for good" if sensor == NATIVE else ""
    print(
        f"Link: {drops} drop(s), {sum(stats.reconnects.values())} reconnection(s){resent}; "
        f"{outcome.wall_s:.1f} s wall time"
    )
    if out is not None:
        from ..settings import Settings

        write_reps_csv(outputs[1], result)
        write_summary_json(outputs[2], result, Settings())
        print(f"Wrote {', '.join(str(p) for p in outputs)}")
    return 0
