"""``legrep demo``: two virtual sensors stream a bundled session through the real BLE stack.

    legrep demo [--speed X] [--out DIR] [--disconnects N] [--session NAME] [--sensor MODEL]

The sensors are the simulated firmware behind bumble GATT servers on an in-memory radio; the host
side is the real one (bleak over a bumble backend, the same decoder, tracker, clock mapping,
analysis and live view as ``legrep capture``). Time runs ``--speed`` times faster than the wall
clock. ``--disconnects N`` takes the sensors out of range N times during reps; the host reconnects
and fetches what it missed. At the end the per-set table is printed; ``--out DIR`` keeps the
recording (``session.lgr``, replayable with ``legrep replay``), ``reps.csv`` and ``summary.json``.

``--sensor MODEL`` (``witmotion``, ``movella-dot``, ``metamotion``, ``polar-verity``) replaces the
legrep sensors with emulated sensors of that model (``legrep_sim.emulators``) playing the same
session simulated at the model's rate; the host finds them by model, configures and starts them as
the vendor documents, and the same live loop records and analyses them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, SensorError
from ..sensors import NATIVE, SENSOR_NAMES

SESSIONS = ("straight_leg_raise", "bent_knee_raise")
RECORDINGS_DIR = Path(__file__).resolve().parents[2] / "recordings"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="stream a bundled session from two virtual sensors through the BLE stack",
        description=(
            "Two simulated thigh sensors (bumble GATT servers on an in-memory radio) stream a bundled "
            "session through the real host BLE stack into the live view, then print the reps table."
        ),
    )
    parser.add_argument("--speed", type=float, default=10.0, metavar="X", help="time runs X times faster (default 10)")
    parser.add_argument("--out", metavar="DIR", help="write session.lgr, reps.csv and summary.json here")
    parser.add_argument(
        "--disconnects", type=int, default=0, metavar="N", help="drop the link N times during reps (default 0)"
    )
    parser.add_argument("--session", default=SESSIONS[0], choices=SESSIONS, help="bundled session (default %(default)s)")
    parser.add_argument(
        "--sensor", default=NATIVE, choices=SENSOR_NAMES, metavar="MODEL",
        help=f"sensor model to emulate: {', '.join(SENSOR_NAMES)} (default %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="no live view, only the final table")
    from ..coach.options import add_coach_arguments

    add_coach_arguments(parser)
    parser.set_defaults(func=run)


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    result: Any
    live: Any
    truth: dict[str, Any]
    outages: list[tuple[str, float, float]]
    """``(leg, programme start s, duration s)`` of each link outage."""
    wall_s: float
    programme_offset_s: float
    """Session time of programme time 0 (session_s = programme_s + offset)."""
    firmwares: dict[str, Any]


def load_programme(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bundled session's per-leg arrays and truth (``recordings/<name>``), or a fresh simulation
    of the same kind when the recordings are not installed."""
    from legrep_sim.peripheral import SignalArrays

    folder = RECORDINGS_DIR / name
    if (folder / "left.csv").exists() and (folder / "right.csv").exists():
        from ..imu_csv import read_imu_csv

        programmes = {}
        for leg in ("left", "right"):
            block = read_imu_csv(folder / f"{leg}.csv")
            programmes[leg] = SignalArrays(block.time_s, block.acc_g, block.gyr_dps)
        truth = json.loads((folder / "truth.json").read_text(encoding="utf-8")) if (folder / "truth.json").exists() else {}
        return programmes, truth
    from legrep_sim.scenarios import SessionSpec, SetSpec, simulate

    exercise = name if name in SESSIONS else SESSIONS[0]
    sim = simulate(SessionSpec(exercise=exercise, sets=(SetSpec(10, 10), SetSpec(10, 9)), rest_between_sets_s=20.0), seed=1)
    programmes = {
        leg: SignalArrays(sig.true_time_s, sig.acc_g, sig.gyr_dps) for leg, sig in sim.signals.items()
    }
    truth = {"reps": [{"leg": r.leg, "start_s": r.start_s, "end_s": r.end_s} for r in sim.reps]}
    return programmes, truth


def plan_outages(truth: dict[str, Any], count: int, duration_s: float, legs: tuple[str, ...] = ("left", "right")) -> list[tuple[str, float, float]]:
    """``count`` outages of 2-4 s starting during reps spread over the session (legs alternate)."""
    if count <= 0:
        return []
    reps = sorted(truth.get("reps", []), key=lambda r: r["start_s"])
    lengths = (2.0, 3.0, 4.0)
    out = []
    if reps:
        step = max(1, len(reps) // (count + 1))
        picks = [reps[min(len(reps) - 1, step * (k + 1))] for k in range(count)]
        for k, rep in enumerate(picks):
            out.append((legs[k % len(legs)], float(rep["start_s"]) + 0.3, lengths[k % 3]))
    else:
        for k in range(count):
            out.append((legs[k % len(legs)], duration_s * (k + 1) / (count + 1), lengths[k % 3]))
    return out


async def run_demo(
    speed: float = 10.0,
    disconnects: int = 0,
    session: str = SESSIONS[0],
    recording: Path | None = None,
    view: Any = None,
    programmes: dict[str, Any] | None = None,
    truth: dict[str, Any] | None = None,
    keep_samples: bool = False,
    outages: list[tuple[str, float, float]] | None = None,
    rate_hz: int = 100,
) -> DemoOutcome:
    """Run the whole demo in the current event loop; returns the analysis and transport figures."""
    import time

    from legrep_sim.peripheral import simulate_sensors
    from ..live import LiveSession
    from ..transport.ble import connect_legs, scan_sensors

    if not speed > 0:
        raise InputError(f"--speed must be > 0, got {speed}")
    if disconnects < 0:
        raise InputError(f"--disconnects must be >= 0, got {disconnects}")
    if programmes is None:
        programmes, truth = load_programme(session)
    truth = truth or {}
    wall0 = time.perf_counter()
    sim = await simulate_sensors(programmes, speed=speed, rate_hz=rate_hz)
    links: dict[Any, Any] = {}
    try:
        backends = sim.radio.backends()
        found = await scan_sensors(5.0, scanner_backend=backends.scanner, clock=sim.clock, min_count=len(sim.legs))
        if len(found) < len(sim.legs):
            raise SensorError(f"expected {len(sim.legs)} virtual sensors advertising, found {len(found)}")
        links = await connect_legs(
            found, clock=sim.clock, client_backend=backends.client, remember=False, use_remembered=False
        )
        started_s = sim.begin(delay_s=0.5)
        if outages is None:
            outages = plan_outages(truth, disconnects, sim.duration_s, tuple(sim.legs))
        for leg, start_s, length_s in outages:
            sim.outage(leg, start_s, length_s)
        live = LiveSession(
            links,
            clock=sim.clock,
            recording=recording,
            view=view,
            meta={"demo": {"session": session, "speed": speed, "disconnects": disconnects}},
            keep_samples=keep_samples,
        )
        run_task = asyncio.ensure_future(live.run(duration_s=0.5 + sim.duration_s + 1.0))
        await asyncio.sleep(0)  # run() has read the session origin
        offset_s = started_s - live.session_origin_s
        outcome = await run_task
    finally:
        for link in links.values():
            await link.close()
        await sim.stop()
        await sim.radio.close()
    return DemoOutcome(
        outcome.result,
        outcome,
        truth,
        outages,
        time.perf_counter() - wall0,
        offset_s,
        dict(zip(sim.legs, sim.firmwares)),
    )


def vendor_programme(session: str, rate_hz: float, seed: int | None = None) -> tuple[dict[str, Any], dict[str, Any], float]:
    """The bundled session's recipe simulated at ``rate_hz``: ``(signals per leg, truth, duration_s)``.

    The bundled CSV files are at 100 Hz; a vendor sensor plays at its own rate, so the session is
    simulated again from the same recipe and seed (``legrep_sim.make_recordings.RECORDINGS``).
    """
    import dataclasses

    from legrep_sim.make_recordings import RECORDINGS
    from legrep_sim.scenarios import simulate

    spec, recipe_seed, _ = RECORDINGS[session if session in RECORDINGS else SESSIONS[0]]
    sim = simulate(dataclasses.replace(spec, rate_hz=float(rate_hz)), seed=recipe_seed if seed is None else seed)
    return dict(sim.signals), sim.truth_dict(), float(sim.duration_s)


async def run_vendor_demo(
    model: str,
    speed: float = 10.0,
    session: str = SESSIONS[0],
    recording: Path | None = None,
    view: Any = None,
    signals: dict[str, Any] | None = None,
    truth: dict[str, Any] | None = None,
    keep_samples: bool = False,
) -> DemoOutcome:
    """The demo with emulated ``model`` sensors (one per leg in ``signals``) instead of legrep ones.

    ``signals`` are ``SimSignal`` values (or anything with ``time_s``, ``acc_g``, ``gyr_dps``,
    ``rate_hz``) at ``RATES_HZ[model]``; default: :func:`vendor_programme` of ``session``.

    Raises
    ------
    InputError
        Unknown model or a speed <= 0.
    SensorError
        The emulated sensors are not found or refuse to start.
    """
    import time

    from legrep_sim.emulators import EMULATORS, RATES_HZ, make_peripheral
    from legrep_sim.peripheral import SimClock
    from legrep_sim.virtual_ble import VirtualRadio
    from ..live import LiveSession
    from ..model import Leg
    from ..sensors.link import VendorLiveLink, scan_models

    if model not in EMULATORS:
        raise InputError(f"--sensor must be one of {list(SENSOR_NAMES)}, got {model!r}")
    if not speed > 0:
        raise InputError(f"--speed must be > 0, got {speed}")
    if signals is None:
        signals, truth, _ = vendor_programme(session, RATES_HZ[model])
    truth = truth or {}
    legs: list[str] = [leg for leg in ("left", "right") if leg in signals]
    duration_s = max(float(signals[leg].time_s[-1] - signals[leg].time_s[0]) for leg in legs)
    wall0 = time.perf_counter()
    clock = SimClock(speed)
    radio = VirtualRadio()
    emus = {leg: make_peripheral(model, radio, signals[leg], clock, index=i) for i, leg in enumerate(legs)}
    links: dict[Leg, Any] = {}
    try:
        for emu in emus.values():
            await emu.start()
        backends = radio.backends()
        found = await scan_models(5.0, models=(model,), scanner_backend=backends.scanner, clock=clock, min_count=len(legs))
        by_address = {f.address.upper(): f for f in found}
        for leg, emu in emus.items():
            f = by_address.get(emu.address.upper())
            if f is None:
                raise SensorError(f"emulated {model} sensor {emu.address} for the {leg} leg is not advertising; found {found}")
            link = VendorLiveLink(f.device, model, clock=clock, client_backend=backends.client, name=f"{f.name} ({leg})")
            links[Leg.parse(leg)] = link
            await link.connect()
        live = LiveSession(
            links,
            clock=clock,
            recording=recording,
            view=view,
            meta={"demo": {"session": session, "speed": speed, "disconnects": 0, "sensor": model}, "sensor_model": model},
            keep_samples=keep_samples,
        )
        outcome = await live.run(duration_s=duration_s + 1.5)
    finally:
        for link in links.values():
            await link.close()
        for emu in emus.values():
            await emu.stop()
        await radio.close()
    starts = [e["t_s"] for e in live.core.log if e.get("type") == "start"]
    return DemoOutcome(
        outcome.result, outcome, truth, [], time.perf_counter() - wall0, min(starts) if starts else 0.0, dict(emus),
    )


def run(args: argparse.Namespace) -> int:
    from ..export import format_table, write_reps_csv, write_summary_json
    from ..view import NullView, TerminalView

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
    if sensor != NATIVE and args.disconnects:
        raise InputError(f"--disconnects is for the legrep sensor (RESEND after a reconnection); got --sensor {sensor}")
    from ..coach.options import build_coaching
    from ..coach.sink import Tee
    from ..model import Leg

    coaching = build_coaching(args, (Leg.LEFT, Leg.RIGHT), out=sys.stdout)
    view = NullView() if args.quiet else TerminalView(sys.stdout)
    if isinstance(view, TerminalView):
        from ..coach.options import targets_of

        view.targets = targets_of(args)
    if coaching is not None:
        view = Tee(view, coaching)
    kind = "virtual sensors" if sensor == NATIVE else f"emulated {sensor} sensors"
    print(
        f"legrep demo: two {kind}, session {args.session!r}, speed x{args.speed:g}"
        + (f", {args.disconnects} link drop(s)" if args.disconnects else ""),
        flush=True,
    )
    try:
        if sensor == NATIVE:
            outcome = asyncio.run(
                run_demo(args.speed, args.disconnects, args.session, recording=recording, view=view)
            )
        else:
            outcome = asyncio.run(run_vendor_demo(sensor, args.speed, args.session, recording=recording, view=view))
    finally:
        view.close()
    result = outcome.result
    stats = outcome.live.stats
    print()
    print(format_table(result), end="")
    drops = sum(stats.disconnects.values())
    lost = sum(int(result.diagnostics.get(leg.value, {}).get("packets_lost_packets", 0)) for leg in result.legs)
    if sensor == NATIVE:
        print(
            f"Link: {drops} drop(s), {sum(stats.reconnects.values())} reconnection(s), "
            f"{stats.resend_requests} resend request(s), {lost} packet(s) lost for good; "
            f"{outcome.wall_s:.1f} s wall time"
        )
    else:
        print(f"Link: {drops} drop(s); {outcome.wall_s:.1f} s wall time")
    if out is not None:
        from ..settings import Settings

        write_reps_csv(outputs[1], result)
        write_summary_json(outputs[2], result, Settings())
        print(f"Wrote {', '.join(str(p) for p in outputs)}")
    return 0
