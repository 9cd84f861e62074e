"""The BLE edge for vendor sensors: scan by model, connect with bleak, configure, start, collect.

Thin: it only moves bytes. Each notification is queued as ``(channel, data, arrival_s)`` (the
channel is the index of the characteristic in ``model.notify_uuids``); the decoders in this
package turn them into samples, live or from a recording. Works with any bleak backend (the real
platform one, or ``legrep_sim.virtual_ble``'s bumble backend in tests and the demo).

:class:`VendorLiveLink` is the same link shaped for :class:`legrep.live.LiveSession` (the loop of
``legrep capture`` and ``legrep demo``): its queue holds ``(arrival_s, encode_notification(channel,
data))``, the DATA record payload, so a vendor sensor is recorded, analysed and replayed by the
very path a legrep sensor takes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import SensorError
from ..model import Leg
from . import detect, encode_notification, get_model
from ._common import SensorConfig, SensorModel


class _Clock:
    """``now_s()`` and ``speed``: the host clock protocol of ``legrep.transport.ble``."""

    speed = 1.0

    def now_s(self) -> float:
        return asyncio.get_running_loop().time()


@dataclass(frozen=True, slots=True)
class FoundVendorSensor:
    address: str
    name: str
    model: str
    rssi: int
    device: Any


async def scan_models(
    timeout_s: float = 5.0, *, models: tuple[str, ...] | None = None, scanner_backend: Any = None,
    clock: Any = None, min_count: int | None = None,
) -> list[FoundVendorSensor]:
    """Advertisers :func:`legrep.sensors.detect` recognises (optionally only ``models``), by name."""
    from ..transport.ble import scan_advertisers

    def match(device: Any, adv: Any) -> FoundVendorSensor | None:
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
    clock : host clock with ``now_s()`` and ``speed`` (arrival times of notifications).
    client_backend : bleak client backend class (None: the platform's).
    name : display name (default: the device's name, else the address).
    """

    def __init__(
        self, device: Any, model: SensorModel | str, config: SensorConfig | None = None, *,
        clock: Any = None, client_backend: Any = None, connect_timeout_s: float = 10.0, name: str | None = None,
    ) -> None:
        from bleak import BleakClient

        self.model = get_model(model) if isinstance(model, str) else model
        self.config = config or self.model.default_config
        self.clock = clock or _Clock()
        self.address = str(getattr(device, "address", device)).upper()
        self.name = name or getattr(device, "name", None) or self.address
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
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

    def _on_disconnect(self, _client: Any) -> None:
        if self.connected:
            self.connected = False
            self.disconnects += 1
            self._disconnected(self.clock.now_s())

    def _disconnected(self, t_s: float) -> None:
        """Hook: the link was lost (not by :meth:`close`)."""

    def _callback(self, channel: int) -> Callable[[Any, bytearray], None]:
        def on_notify(_char: Any, data: bytearray) -> None:
            self.notifications += 1
            self._enqueue(channel, bytes(data), self.clock.now_s())

        return on_notify

    async def _write_all(self, writes: list[Any]) -> None:
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
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out


class VendorLiveLink(VendorLink):
    """A :class:`VendorLink` shaped for :class:`legrep.live.LiveSession`.

    ``queue`` holds ``(arrival_s, payload)`` with ``payload = encode_notification(channel, data)``,
    the DATA record of a vendor sensor; ``events`` gets a ``disconnected`` ``LinkEvent`` when the link
    is lost (vendor sensors are not reconnected: their streams restart from scratch, see
    docs/sensors.md). ``vendor = True`` tells the loop to use :meth:`start`/:meth:`stop` instead of
    the legrep control requests (TIME_SYNC, START, RESEND, STOP).
    """

    vendor = True
    battery_pct: int | None = None
    status_raw = b""

    def __init__(self, device: Any, model: SensorModel | str, config: SensorConfig | None = None, **kwargs: Any) -> None:
        from ..transport.ble import LinkEvent

        super().__init__(device, model, config, **kwargs)
        self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self.events: asyncio.Queue[LinkEvent] = asyncio.Queue()

    def _enqueue(self, channel: int, data: bytes, arrival_s: float) -> None:
        self.queue.put_nowait((arrival_s, encode_notification(channel, data)))

    def _disconnected(self, t_s: float) -> None:
        from ..transport.ble import LinkEvent

        self.events.put_nowait(LinkEvent("disconnected", t_s, detail=f"{self.model.title} link lost"))

    def sensor_info(self, index: int, leg: Leg) -> Any:
        """The SENSOR record content (a :class:`legrep.live_core.SensorInfo`) for this sensor."""
        from ..live_core import SensorInfo

        return SensorInfo.make_vendor(
            index, leg, self.model.name, self.config.to_dict(), address=self.address, name=self.name,
        )

    async def request(self, payload: bytes) -> Any:
        """Vendor sensors take no legrep control requests."""
        raise SensorError(f"{self.name}: a {self.model.title} takes no legrep control request (got 0x{payload[:1].hex()})")


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
