"""``sim:`` / ``sim:MODEL``: simulated sensors on an in-memory radio, opened as ordinary drivers.

The sensors are the simulated firmware (``legrep_sim.peripheral``) or an emulated vendor model
(``legrep_sim.emulators``) behind bumble GATT servers on a ``VirtualRadio``; the host side is the
real one (bleak over the bumble backend, the same scan, connect and drivers as ``ble:`` and
``MODEL:``). Options: ``session=NAME`` (a bundled session), ``speed=X`` (simulated seconds per
wall second; on a virtual-time loop the clock jumps anyway), ``disconnects=N`` (link drops
during reps), ``rate=HZ`` (legrep sensors).

:func:`open_sim` returns a :class:`~legrep.drivers.DriverSet` whose ``clock`` is the simulation's
and whose ``extra`` holds a :class:`SimWorld` (the truth, the planned outages, the firmwares).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, SensorError
from ..model import Leg
from ..sensors import MODELS, get_model
from .base import DriverSet, DriverSpec

SESSIONS = ("straight_leg_raise", "bent_knee_raise")
RECORDINGS_DIR = Path(__file__).resolve().parents[2] / "recordings"
START_DELAY_S = 0.5
"""The programme starts this long after the host connected (the sensors lie still until then)."""


@dataclass(slots=True)
class SimWorld:
    """What is behind ``sim:``: the programme's truth, the outages, the simulated devices."""

    model: str
    truth: dict[str, Any]
    outages: list[tuple[str, float, float]]
    """``(leg, programme start s, duration s)`` of each planned link outage."""
    duration_s: float
    started_s: float = 0.0
    """Clock time of programme time 0."""
    devices: dict[str, Any] = field(default_factory=dict)
    """Per leg: the firmware model (legrep) or the emulated sensor (vendor)."""


def load_programme(name: str, pelvis: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bundled session's per-leg arrays and truth (``recordings/<name>``), or a fresh simulation
    of the same kind when the recordings are not installed.

    ``pelvis``: the bundled session's recipe simulated again with a pelvis (``legrep_sim.pelvis``):
    three sensors, ``"pelvis"`` among the arrays, and the truth gains per rep ``pelvis`` (tilt,
    back arch, hip flexion)."""
    from legrep_sim.peripheral import SignalArrays

    if pelvis:
        from legrep_sim.make_recordings import RECORDINGS
        from legrep_sim.pelvis import simulate_with_pelvis

        spec, seed, _ = RECORDINGS[name if name in RECORDINGS else SESSIONS[0]]
        ps = simulate_with_pelvis(spec, seed)
        signals = {**ps.session.signals, "pelvis": ps.pelvis}
        arrays = {leg: SignalArrays(sig.true_time_s, sig.acc_g, sig.gyr_dps) for leg, sig in signals.items()}
        truth = ps.session.truth_dict()
        truth["pelvis"] = [dataclasses.asdict(t) for t in ps.truth]
        return arrays, truth

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
    programmes = {leg: SignalArrays(sig.true_time_s, sig.acc_g, sig.gyr_dps) for leg, sig in sim.signals.items()}
    truth = {"reps": [{"leg": r.leg, "start_s": r.start_s, "end_s": r.end_s} for r in sim.reps]}
    return programmes, truth


def vendor_programme(session: str, rate_hz: float, seed: int | None = None) -> tuple[dict[str, Any], dict[str, Any], float]:
    """The bundled session's recipe simulated at ``rate_hz``: ``(signals per leg, truth, duration_s)``."""
    from legrep_sim.make_recordings import RECORDINGS
    from legrep_sim.scenarios import simulate

    spec, recipe_seed, _ = RECORDINGS[session if session in RECORDINGS else SESSIONS[0]]
    sim = simulate(dataclasses.replace(spec, rate_hz=float(rate_hz)), seed=recipe_seed if seed is None else seed)
    return dict(sim.signals), sim.truth_dict(), float(sim.duration_s)


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


def _number(spec: DriverSpec, key: str, default: float) -> float:
    text = spec.options.get(key)
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{spec}: option {key} must be a number, got {text!r}") from None


async def open_sim(
    spec: DriverSpec,
    *,
    legs: Sequence[Leg] = (Leg.LEFT, Leg.RIGHT),
    programmes: dict[str, Any] | None = None,
    truth: dict[str, Any] | None = None,
    outages: list[tuple[str, float, float]] | None = None,
) -> DriverSet:
    """Start the simulated sensors of ``spec`` and open a driver for each (see module docstring).

    ``programmes`` (per leg: ``SignalArrays`` for legrep, a ``SimSignal`` at the model's rate for a
    vendor model) and ``truth`` replace the bundled session; ``outages`` the planned drops.

    Raises
    ------
    InputError
        Unknown model or session, a speed <= 0, a negative number of disconnects.
    SensorError
        The simulated sensors are not found or refuse to start.
    """
    from legrep_sim.peripheral import SimClock
    from legrep_sim.virtual_ble import VirtualRadio

    model = spec.target or "legrep"
    if model != "legrep" and model not in MODELS:
        raise InputError(f"sim: model must be legrep or one of {list(MODELS)}, got {model!r}")
    session = spec.options.get("session", SESSIONS[0])
    if session not in SESSIONS:
        raise InputError(f"sim: session must be one of {list(SESSIONS)}, got {session!r}")
    speed = _number(spec, "speed", 10.0)
    disconnects = int(_number(spec, "disconnects", 0))
    rate_hz = int(_number(spec, "rate", 100))
    if not speed > 0:
        raise InputError(f"--speed must be > 0, got {speed:g}")
    if disconnects < 0:
        raise InputError(f"--disconnects must be >= 0, got {disconnects}")
    clock = SimClock(speed)
    radio = VirtualRadio()
    out = DriverSet([], clock, closers=[radio.close])
    try:
        if model == "legrep":
            world = await _open_legrep(out, radio, clock, session, rate_hz, programmes, truth, legs)
        else:
            world = await _open_vendor(out, radio, clock, model, session, programmes, truth, legs)
        world.started_s = clock.now_s() + START_DELAY_S
        if model == "legrep":
            world.started_s = out.extra["sensors"].begin(delay_s=START_DELAY_S)
        world.outages = outages if outages is not None else plan_outages(
            world.truth, disconnects, world.duration_s, tuple(world.devices)
        )
        for leg, start_s, length_s in world.outages:
            if model == "legrep":
                out.extra["sensors"].outage(leg, start_s, length_s)
            else:
                world.devices[leg].schedule_outage(world.started_s + start_s, length_s)
        out.extra["world"] = world
    except BaseException:
        await out.close()
        raise
    return out


async def _open_legrep(
    out: DriverSet, radio: Any, clock: Any, session: str, rate_hz: int, programmes: dict[str, Any] | None,
    truth: dict[str, Any] | None, legs: Sequence[Leg],
) -> SimWorld:
    from legrep_sim.peripheral import simulate_sensors

    from ..transport.ble import connect_legs, scan_sensors
    from .legrep import LegrepDriver

    if programmes is None:
        programmes, truth = load_programme(session, pelvis=Leg.PELVIS in legs)
    programmes = {k: v for k, v in programmes.items() if Leg.parse(k) in legs}
    sim = await simulate_sensors(programmes, speed=clock.speed, radio=radio, rate_hz=rate_hz, clock=clock)
    out.closers.append(sim.stop)
    out.extra["sensors"] = sim
    backends = radio.backends()
    found = await scan_sensors(5.0, scanner_backend=backends.scanner, clock=clock, min_count=len(sim.legs))
    if len(found) < len(sim.legs):
        raise SensorError(f"expected {len(sim.legs)} virtual sensors advertising, found {len(found)}")
    links = await connect_legs(
        found, clock=clock, client_backend=backends.client, remember=False, use_remembered=False,
        legs=tuple(Leg.parse(x) for x in sim.legs),
    )
    for leg, link in links.items():
        out.drivers.append(LegrepDriver(link, leg, spec=f"sim:legrep/{link.address}", clock=clock))
    return SimWorld("legrep", truth or {}, [], sim.duration_s, devices=dict(zip(sim.legs, sim.firmwares)))


async def _open_vendor(
    out: DriverSet, radio: Any, clock: Any, model: str, session: str, signals: dict[str, Any] | None,
    truth: dict[str, Any] | None, legs: Sequence[Leg],
) -> SimWorld:
    from legrep_sim.emulators import RATES_HZ, make_peripheral

    from ..sensors.link import scan_models
    from .vendor import VendorDriver

    if signals is None:
        signals, truth, _ = vendor_programme(session, RATES_HZ[model])
    names: list[str] = [leg.value for leg in legs if leg.value in signals]
    duration_s = max(float(signals[n].time_s[-1] - signals[n].time_s[0]) for n in names)
    emus = {n: make_peripheral(model, radio, signals[n], clock, index=i) for i, n in enumerate(names)}

    async def stop_all() -> None:
        for emu in emus.values():
            await emu.stop()

    out.closers.append(stop_all)
    for emu in emus.values():
        await emu.start()
    backends = radio.backends()
    found = await scan_models(5.0, models=(model,), scanner_backend=backends.scanner, clock=clock, min_count=len(names))
    by_address = {f.address.upper(): f for f in found}
    vendor = get_model(model)
    for n, emu in emus.items():
        f = by_address.get(emu.address.upper())
        if f is None:
            raise SensorError(f"emulated {model} sensor {emu.address} for the {n} leg is not advertising; found {found}")
        driver = VendorDriver(f.device, vendor, Leg.parse(n), spec=f"sim:{model}/{f.address}", clock=clock,
                              client_backend=backends.client, name=f"{f.name} ({n})")
        out.drivers.append(driver)
        await driver.open()
    return SimWorld(model, truth or {}, [], duration_s, devices=dict(emus))
