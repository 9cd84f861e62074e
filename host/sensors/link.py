"""The BLE edge for vendor sensors: scan by model, connect with bleak, configure, start, collect.

Thin: it only moves bytes. Each notification is queued as ``(channel, data, arrival_s)`` (the
channel is the index of the characteristic in ``model.notify_uuids``); the decoders in this
package turn them into samples, live or from a recording. Works with any bleak backend (the real
platform one, or ``legrep_sim.virtual_ble``'s bumble backend in tests and the demo).

:class:`legrep.drivers.vendor.VendorDriver` puts it under :class:`legrep.live.LiveSession` (the loop
of ``legrep capture`` and ``legrep demo``), reconnecting it after a drop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bleak import BleakClient
    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData

    from ..transport.ble import ClientBackend, ScannerBackend

from ..errors import SensorError
from ..model import Leg
from ..transport.common import Clock, MonotonicClock
from . import detect, get_model
from ._common import SensorConfig, SensorModel, Write


@dataclass(frozen=True, slots=True)
class FoundVendorSensor:
    address: str
    name: str
    model: str
    rssi: int
    device: "BLEDevice | None" = field(default=None, compare=False, repr=False)
    """bleak's ``BLEDevice`` (connect with it rather than with the address)."""


async def scan_models(
    timeout_s: float = 5.0, *, models: tuple[str, ...] | None = None, scanner_backend: "ScannerBackend | None" = None,
    clock: Clock | None = None, min_count: int | None = None,
) -> list[FoundVendorSensor]:
    """Advertisers :func:`legrep.sensors.detect` recognises (optionally only ``models``), by name."""
    from ..transport.ble import scan_advertisers

    def match(device: "BLEDevice", adv: "AdvertisementData") -> FoundVendorSensor | None:
        model = detect(adv)
        if model is None or (models is not None and model not in models):
            return None
        return FoundVendorSensor(
            device.address.upper(), adv.local_name or device.name or device.address, model, int(adv.rssi), device
        )

    return await scan_advertisers(
        match, timeout_s, scanner_backend=scanner_backend, clock=clock, min_count=min_count
    )


class VendorLink:
    """One vendor sensor over BLE.

    Parameters
    ----------
    device : bleak ``BLEDevice`` or address.
    model : a :class:`SensorModel` or its name.
    config : what to configure (default: the model's).
    clock : host clock (arrival times of notifications).
    client_backend : bleak client backend class (None: the platform's).
    name : display name (default: the device's name, else the address).
    on_lost : called with the clock time when the link is lost (not by :meth:`close`).
    """

    def __init__(
        self, device: "BLEDevice | str", model: SensorModel | str, config: SensorConfig | None = None, *,
        clock: Clock | None = None, client_backend: "ClientBackend | None" = None, connect_timeout_s: float = 10.0, name: str | None = None,
        on_lost: Callable[[float], None] | None = None,
    ) -> None:
        from bleak import BleakClient

        self.model = get_model(model) if isinstance(model, str) else model
        self.config = config or self.model.default_config
        self.clock: Clock = clock or MonotonicClock()
        self.on_lost = on_lost
        self.address = str(getattr(device, "address", device)).upper()
        self.name = name or getattr(device, "name", None) or self.address
        self.queue: asyncio.Queue[tuple[int, bytes, float]] = asyncio.Queue()
        """Notifications as ``(channel, data, arrival_s)``, in arrival order."""
        self.notifications = 0
        self.connected = False
        self.disconnects = 0
        self._closing = False
        kwargs: dict[str, Any] = {"timeout": connect_timeout_s / self.clock.speed, "disconnected_callback": self._on_disconnect}
        if client_backend is not None:
            kwargs["backend"] = client_backend
        self._client = BleakClient(device, **kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model.name}, {self.name}, {self.address}, connected={self.connected})"

    def _enqueue(self, channel: int, data: bytes, arrival_s: float) -> None:
        self.queue.put_nowait((channel, data, arrival_s))

    def _on_disconnect(self, _client: "BleakClient") -> None:
        if self.connected:
            self.connected = False
            self.disconnects += 1
            self._disconnected(self.clock.now_s())

    def _disconnected(self, t_s: float) -> None:
        if self.on_lost is not None and not self._closing:
            self.on_lost(t_s)

    def _callback(self, channel: int) -> "Callable[[BleakGATTCharacteristic, bytearray], None]":
        def on_notify(_char: "BleakGATTCharacteristic", data: bytearray) -> None:
            self.notifications += 1
            self._enqueue(channel, bytes(data), self.clock.now_s())

        return on_notify

    async def _write_all(self, writes: list[Write]) -> None:
        for w in writes:
            await self._client.write_gatt_char(w.char_uuid, w.data, response=w.response)

    async def open(self) -> None:
        """Connect, configure, subscribe, start (SensorError with the model and reason on failure)."""
        await self.connect()
        await self.start()

    async def connect(self) -> None:
        """Connect, check the vendor service, configure and subscribe (not yet streaming).

        Raises
        ------
        SensorError
            Not reachable, not this model (its service missing), or a write refused.
        """
        from bleak.exc import BleakError

        try:
            await self._client.connect()
            services = self._client.services
            if services.get_service(self.model.service_uuid) is None:
                raise SensorError(
                    f"{self.address}: {self.model.title} service {self.model.service_uuid} expected, "
                    f"got services {[s.uuid for s in services]}"
                )
            await self._write_all(self.model.configure(self.config))
            for channel, uuid in enumerate(self.model.notify_uuids):
                await self._client.start_notify(uuid, self._callback(channel))
        except SensorError:
            with contextlib.suppress(Exception):
                await self._client.disconnect()
            raise
        except (BleakError, asyncio.TimeoutError, OSError) as exc:
            with contextlib.suppress(Exception):
                await self._client.disconnect()
            raise SensorError(f"{self.address}: cannot connect to {self.model.name}: {exc or type(exc).__name__}") from exc
        self.connected = True

    async def start(self) -> None:
        """Send the model's start writes (SensorError on failure)."""
        from bleak.exc import BleakError

        try:
            await self._write_all(self.model.start(self.config))
        except (BleakError, asyncio.TimeoutError, OSError) as exc:
            raise SensorError(f"{self.address}: cannot start {self.model.name}: {exc or type(exc).__name__}") from exc

    async def stop(self) -> None:
        """Send the model's stop writes (SensorError on failure); the link stays up."""
        from bleak.exc import BleakError

        try:
            await self._write_all(self.model.stop(self.config))
        except (BleakError, asyncio.TimeoutError, OSError) as exc:
            raise SensorError(f"{self.address}: cannot stop {self.model.name}: {exc or type(exc).__name__}") from exc

    async def disconnect(self) -> None:
        """Drop the link (a failed reconnection attempt cleans up with this)."""
        self.connected = False
        with contextlib.suppress(Exception):
            await self._client.disconnect()

    async def close(self) -> None:
        """Stop streaming (best effort) and disconnect."""
        self._closing = True
        with contextlib.suppress(Exception):
            if self._client.is_connected:
                await self._write_all(self.model.stop(self.config))
        self.connected = False  # a disconnection from here on is ours, not an event
        with contextlib.suppress(Exception):
            await self._client.disconnect()

    def drain(self) -> list[tuple[int, bytes, float]]:
        """Every queued notification, in arrival order."""
        out: list[tuple[int, bytes, float]] = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out


def assign_legs(
    found: list[FoundVendorSensor], legs: tuple[Leg, ...], *, left: str | None = None, right: str | None = None,
    remembered: dict[Leg, str] | None = None,
) -> tuple[dict[Leg, FoundVendorSensor], str]:
    """Decide which found vendor sensor is on which leg: ``(assignment, how)``.

    Vendor sensors store no leg, so the order of authority is: ``left``/``right`` addresses, the
    remembered assignment, then the found sensors in address order (``how`` says which was used).

    Raises
    ------
    SensorError
        A requested address is not among ``found``, or fewer sensors than legs.
    """
    by_address = {f.address.upper(): f for f in found}
    explicit = {leg: a.upper() for leg, a in ((Leg.LEFT, left), (Leg.RIGHT, right)) if a and leg in legs}
    seen = ", ".join(f"{f.name} {f.address}" for f in found) or "none"
    for leg, addr in explicit.items():
        if addr not in by_address:
            raise SensorError(f"{leg.value} sensor {addr} is not advertising (out of range or off?); sensors seen: {seen}")
    out: dict[Leg, FoundVendorSensor] = {leg: by_address[a] for leg, a in explicit.items()}
    how = "chosen"
    for leg in legs:
        addr = (remembered or {}).get(leg, "").upper()
        if leg not in out and addr in by_address and by_address[addr] not in out.values():
            out[leg] = by_address[addr]
            how = "remembered" if not explicit else how
    rest = [f for f in sorted(found, key=lambda f: f.address) if f not in out.values()]
    for leg in legs:
        if leg not in out:
            if not rest:
                raise SensorError(f"found {len(found)} sensor(s) ({seen}), need {len(legs)}: switch the other one on")
            out[leg] = rest.pop(0)
            how = "address order"
    return out, how
