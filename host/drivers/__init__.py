"""Sensor drivers, opened from spec strings the way bumble opens transports.

=====================================  ==============================================================
spec                                   driver
=====================================  ==============================================================
``ble:ADDR`` / ``ble:``                a legrep sensor over BLE (``ble:`` scans; legs from
                                       ``--left/--right``, the remembered assignment, or the leg
                                       stored in each sensor) -> :class:`~.legrep.LegrepDriver`
``serial:/dev/ttyACM0``                a wired legrep sensor board -> :class:`~.legrep.LegrepDriver`
``witmotion:ADDR``, ``movella-dot:``,  a vendor sensor of that model (``MODEL:`` scans for it)
``metamotion:``, ``polar-verity:``     -> :class:`~.vendor.VendorDriver`
``replay:FILE``                        a recording, paced by the session clock
                                       -> :class:`~.replay.ReplayDriver`
``sim:`` / ``sim:MODEL``               simulated sensors (legrep, or emulated MODEL) on an in-memory
                                       radio playing a bundled session -> BLE or vendor drivers
                                       (:mod:`legrep.drivers.sim`)
=====================================  ==============================================================

A spec may name its leg first (``left=serial:/dev/ttyACM0``) and carry options after a comma
(``sim:witmotion,session=bent_knee_raise``). :func:`open_drivers` opens a list of specs into a
:class:`DriverSet` (the drivers, the clock they share, and what must be closed at the end);
:class:`legrep.live.LiveSession` runs any such set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError, SensorError
from ..model import Leg
from ..sensors import MODELS, get_model
from ..transport.common import Clock, MonotonicClock
from .base import (
    KINDS,
    DriverItem,
    DriverSet,
    DriverSpec,
    LinkChange,
    LinkState,
    Noted,
    Received,
    SensorDriver,
    SessionPort,
    parse_spec,
)

__all__ = [
    "DriverItem",
    "DriverSet",
    "DriverSpec",
    "KINDS",
    "LinkChange",
    "LinkState",
    "Noted",
    "Received",
    "SensorDriver",
    "SessionPort",
    "open_drivers",
    "parse_spec",
]




async def open_drivers(
    specs: Sequence[str | DriverSpec],
    *,
    legs: Sequence[Leg] = (Leg.LEFT, Leg.RIGHT),
    clock: Clock | None = None,
    backends: tuple[Any, Any] | None = None,
    scan_timeout_s: float = 8.0,
    remember: bool = True,
    use_remembered: bool = True,
    config: Path | None = None,
    realtime: bool = True,
) -> DriverSet:
    """Open ``specs`` into drivers for ``legs`` (see module docstring).

    Parameters
    ----------
    legs : the legs to capture (a spec without a leg takes one of these).
    clock : the host clock (default: monotonic; ``sim:`` brings its own).
    backends : ``(scanner, client)`` bleak backends (default: the operating system's adapter).
    scan_timeout_s : how long to look for BLE sensors.
    remember, use_remembered, config : the leg assignment memory (``~/.config/legrep/sensors.json``).
    realtime : pace ``replay:`` by the recorded times.

    Raises
    ------
    InputError
        A spec that cannot be parsed, or specs that do not fit together.
    SensorError
        A sensor not found, not reachable or refusing (one line each).
    """
    parsed = [s if isinstance(s, DriverSpec) else parse_spec(s) for s in specs]
    if not parsed:
        raise InputError("at least one sensor spec expected (ble:, serial:PORT, MODEL:, replay:FILE, sim:), got none")
    kinds = {p.kind for p in parsed}
    if "sim" in kinds:
        if len(parsed) != 1:
            raise InputError(f"sim: opens the simulated sensors of both legs; got it with {[str(p) for p in parsed]}")
        from .sim import open_sim

        return await open_sim(parsed[0], legs=legs)
    out = DriverSet([], clock or MonotonicClock())
    try:
        ble = [p for p in parsed if p.kind == "ble"]
        if ble:
            await _open_ble(out, ble, legs, backends, scan_timeout_s, remember, use_remembered, config)
        for model in MODELS:
            group = [p for p in parsed if p.kind == model]
            if group:
                await _open_vendor(out, model, group, legs, backends, scan_timeout_s, remember, use_remembered, config)
        serial = [p for p in parsed if p.kind == "serial"]
        if serial:
            await _open_serial(out, serial, legs)
        for p in parsed:
            if p.kind == "replay":
                from .replay import ReplayDriver

                if not p.target:
                    raise InputError("replay: needs a recording file (replay:FILE)")
                out.drivers.append(ReplayDriver(p.target, clock=out.clock, realtime=realtime))
    except BaseException:
        await out.close()
        raise
    taken = [leg for d in out.drivers for leg in d.legs()]
    for leg in set(taken):
        if taken.count(leg) > 1:
            await out.close()
            raise InputError(f"one sensor per leg expected, got {taken.count(leg)} on the {leg.value} leg ({[str(p) for p in parsed]})")
    return out


def _explicit(group: Sequence[DriverSpec], legs: Sequence[Leg]) -> tuple[dict[Leg, str], tuple[Leg, ...]]:
    """``({leg: address} named in the specs, the legs this group serves)``; ``KIND:`` alone serves
    every leg, a spec without a leg takes the next free one."""
    if len(group) == 1 and group[0].leg is None and not group[0].target:
        return {}, tuple(legs)
    named: dict[Leg, str] = {}
    wanted = [p.leg for p in group if p.leg is not None]
    free = [leg for leg in legs if leg not in wanted]
    for p in group:
        leg = p.leg
        if leg is None:
            if not free:
                raise InputError(f"more {p.kind} sensors than legs: {[str(q) for q in group]}")
            leg = free.pop(0)
            wanted.append(leg)
        if p.target:
            named[leg] = p.target
    return named, tuple(leg for leg in (Leg.LEFT, Leg.RIGHT, Leg.PELVIS) if leg in wanted)


async def _open_ble(
    out: DriverSet, group: Sequence[DriverSpec], legs: Sequence[Leg], backends: tuple[Any, Any] | None,
    scan_timeout_s: float, remember: bool, use_remembered: bool, config: Path | None,
) -> None:
    from ..transport.ble import connect_legs, scan_sensors
    from .legrep import LegrepDriver

    named, wanted = _explicit(group, legs)
    scanner, client = backends or (None, None)
    found = await scan_sensors(scan_timeout_s, scanner_backend=scanner, clock=out.clock, min_count=len(wanted) + 1)
    if not found:
        raise SensorError(
            f"no legrep sensor found within {scan_timeout_s:g} s: are the sensors charged, switched on "
            "and within a few metres?"
        )
    if len(found) < len(wanted):
        raise SensorError(
            f"found {len(found)} sensor ({found[0].name} {found[0].address}), need {len(wanted)}: switch the other "
            "one on, or capture one leg with --only left|right"
        )
    links = await connect_legs(
        found, left=named.get(Leg.LEFT), right=named.get(Leg.RIGHT), pelvis=named.get(Leg.PELVIS), clock=out.clock,
        client_backend=client,
        remember=remember, use_remembered=use_remembered, config=config, legs=wanted,
    )
    for leg, link in links.items():
        out.drivers.append(LegrepDriver(link, leg, spec=f"ble:{link.address}", clock=out.clock))


async def _open_vendor(
    out: DriverSet, model_name: str, group: Sequence[DriverSpec], legs: Sequence[Leg],
    backends: tuple[Any, Any] | None, scan_timeout_s: float, remember: bool, use_remembered: bool, config: Path | None,
) -> None:
    from ..sensors.link import assign_legs, scan_models
    from ..transport.ble import load_assignment, save_assignment
    from .vendor import VendorDriver

    model = get_model(model_name)
    named, wanted = _explicit(group, legs)
    scanner, client = backends or (None, None)
    found = await scan_models(scan_timeout_s, models=(model.name,), scanner_backend=scanner, clock=out.clock,
                              min_count=len(wanted) + 1)
    if not found:
        raise SensorError(
            f"no {model.title} found within {scan_timeout_s:g} s: is it charged, switched on, not connected "
            "to its phone app, and within a few metres?"
        )
    remembered = load_assignment(config) if not named and use_remembered else {}
    assignment, how = assign_legs(found, wanted, left=named.get(Leg.LEFT), right=named.get(Leg.RIGHT),
                                  remembered=remembered)
    if named and remember:
        save_assignment({leg: f.address for leg, f in assignment.items()}, config)
    for leg, f in assignment.items():
        driver = VendorDriver(f.device or f.address, model, leg, spec=f"{model.name}:{f.address}", clock=out.clock,
                              client_backend=client, name=f.name)
        out.drivers.append(driver)
        await driver.open()
    out.notes.append(
        f"{model.title}: " + ", ".join(f"{leg.value} {f.name} ({f.address})" for leg, f in assignment.items())
        + f" [legs by {how}; --left/--right to choose]"
    )


async def _open_serial(out: DriverSet, group: Sequence[DriverSpec], legs: Sequence[Leg]) -> None:
    from ..packets import set_leg_request
    from ..transport.ble import LEG_CODES
    from ..transport.serial import SerialLink
    from .legrep import LegrepDriver

    free = [leg for leg in legs if leg not in {p.leg for p in group}]
    for p in group:
        if not p.target:
            raise InputError("serial: needs a port (serial:/dev/ttyACM0)")
        leg = p.leg if p.leg is not None else (free.pop(0) if free else None)
        if leg is None:
            raise InputError(f"more serial ports than legs: {[str(q) for q in group]}")
        link = SerialLink(p.target, clock=out.clock)
        await link.open()
        out.closers.append(link.close)
        timed = await link.request(set_leg_request(LEG_CODES[leg]))
        if not timed.reply.ok:
            raise SensorError(f"{p.target}: sensor refused SET_LEG: {timed.reply.describe()}")
        await link.read_status()
        out.drivers.append(LegrepDriver(link, leg, spec=f"serial:{p.target}", clock=out.clock,
                                        model="legrep serial sensor"))
