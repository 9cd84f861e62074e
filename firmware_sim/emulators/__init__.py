"""Emulated vendor sensors (WitMotion, Movella DOT, MetaMotion, Polar Verity Sense) on bumble.

Each plays a simulated thigh signal through the vendor's GATT profile, so the host's per-model
code (``host/sensors``) runs end to end over bleak + bumble with no hardware::

    radio = VirtualRadio()
    session = simulate(SessionSpec(rate_hz=RATES_HZ["movella-dot"], ...), seed=1)
    sensor = make_peripheral("movella-dot", radio, session.signals["left"], clock)
    await sensor.start()

``legrep`` itself is served by :mod:`legrep_sim.peripheral`; this package covers the others.
"""

from __future__ import annotations

from typing import Any

from ._base import EmulatedSensor, Signal
from .models import EMULATORS, RATES_HZ
from ..peripheral import SimClock

__all__ = ["EMULATORS", "RATES_HZ", "EmulatedSensor", "Signal", "make_peripheral"]


def make_peripheral(
    model: str, radio: Any, signal: Any, clock: SimClock, *, index: int = 0, name: str | None = None, **kwargs: Any
) -> EmulatedSensor:
    """An emulated ``model`` sensor on ``radio`` (a ``VirtualRadio``) playing ``signal``.

    Parameters
    ----------
    model : a key of :data:`EMULATORS` (``witmotion``, ``movella-dot``, ``metamotion``, ``polar-verity``).
    signal : a ``SimSignal`` (or :class:`Signal`); simulate it at ``RATES_HZ[model]``.
    index : distinguishes several sensors of one model (address and default name suffix).
    """
    try:
        cls = EMULATORS[model]
    except KeyError:
        raise ValueError(f"model must be one of {sorted(EMULATORS)}, got {model!r}") from None
    sig = signal if isinstance(signal, Signal) else Signal.of(signal)
    address = f"F2:E6:00:00:{0x10 + list(EMULATORS).index(model):02X}:{index:02X}"
    default_name = cls.NAME if index == 0 or model == "polar-verity" else f"{cls.NAME}"
    if model == "polar-verity" and name is None:
        default_name = f"Polar Sense 0C30A5{index:02X}"
    controller = radio.new_controller(f"{model}-{index}")
    return cls(sig, controller, clock, address=address, name=name or default_name, **kwargs)
