"""``legrep scan``: list the sensors in range, legrep and vendor ones.

    legrep scan [--timeout S] [--details]

Shows each sensor :func:`legrep.sensors.detect` recognises (model, name, address, signal) and which
leg it is remembered for: legrep sensors and the vendor models ``legrep capture --sensor MODEL``
takes. ``--details`` connects to each legrep sensor and reads firmware, stored leg, rate and battery.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ..errors import InputError, SensorError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("scan", help="list the sensors in range (legrep and vendor models)", description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=5.0, metavar="S", help="scan for S seconds (default 5)")
    parser.add_argument("--details", action="store_true", help="connect to each sensor and read its status")
    add_adapter_option(parser)
    parser.set_defaults(func=run)


def add_adapter_option(parser: argparse.ArgumentParser) -> None:
    """``--hci SPEC``: use a bumble HCI controller (e.g. the simulator's ``tcp-client:127.0.0.1:PORT``)
    instead of the operating system's Bluetooth adapter."""
    parser.add_argument(
        "--hci",
        metavar="SPEC",
        help="use a bumble HCI transport as the adapter, e.g. tcp-client:127.0.0.1:9999 "
        "(the simulator: python -m legrep_sim.peripheral --tcp 9999)",
    )


def backends_for(spec: str | None) -> tuple[Any, Any, Any]:
    """``(radio, scanner_backend, client_backend)``; all None for the OS adapter."""
    if not spec:
        return None, None, None
    from legrep_sim.virtual_ble import VirtualRadio

    radio = VirtualRadio(hci_spec=spec)
    backends = radio.backends()
    return radio, backends.scanner, backends.client


async def scan(
    timeout_s: float, details: bool, hci: str | None, *, backends: tuple[Any, Any] | None = None, clock: Any = None
) -> list[str]:
    """The lines ``legrep scan`` prints. ``backends`` = ``(scanner, client)`` bleak backends (default
    from ``hci``, else the operating system's adapter)."""
    from ..sensors import MODELS
    from ..sensors.link import scan_models
    from ..transport.ble import SensorLink, load_assignment

    radio = None
    if backends is None:
        radio, scanner_backend, client_backend = backends_for(hci)
    else:
        scanner_backend, client_backend = backends
    try:
        found = await scan_models(timeout_s, scanner_backend=scanner_backend, clock=clock)
        if not found:
            raise SensorError(
                f"no legrep sensor found within {timeout_s:g} s (nor any of {', '.join(MODELS)}): are the sensors "
                "charged, switched on and within a few metres?"
            )
        remembered = {addr: leg.value for leg, addr in load_assignment().items()}
        width = max(14, *(len(s.name) + 2 for s in found))
        lines = [f"{'model':<14}{'name':<{width}}{'address':<20}{'rssi':>6}  remembered"]
        for s in found:
            lines.append(f"{s.model:<14}{s.name:<{width}}{s.address:<20}{s.rssi:>4}dB  {remembered.get(s.address, '-')}")
        legrep = [s for s in found if s.model == "legrep"]
        if details and legrep:
            lines.append("")
            lines.append(f"{'name':<14}{'firmware':<10}{'leg':<12}{'rate_hz':>8}{'battery':>9}")
            for s in legrep:
                link = SensorLink(s.device or s.address, client_backend=client_backend, name=s.name)
                try:
                    st = await link.open()
                    leg = {0: "unassigned", 1: "left", 2: "right"}.get(st.leg, str(st.leg))
                    lines.append(f"{s.name:<14}{st.fw_version_text:<10}{leg:<12}{st.rate_hz:>8}{st.battery_pct:>8}%")
                except SensorError as exc:
                    lines.append(f"{s.name:<14}error: {exc}")
                finally:
                    await link.close()
        return lines
    finally:
        if radio is not None:
            await radio.close()


def run(args: argparse.Namespace) -> int:
    if not args.timeout > 0:
        raise InputError(f"--timeout must be > 0 seconds, got {args.timeout}")
    for line in asyncio.run(scan(args.timeout, args.details, args.hci)):
        print(line)
    return 0
