"""The BLE edge for vendor sensors: scan by model, connect with bleak, configure, start, collect.

Thin: it only moves bytes. Each notification is queued as ``(channel, data, arrival_s)`` (the
channel is the index of the characteristic in ``model.notify_uuids``); the decoders in this
package turn them into samples, live or from a recording. Works with any bleak backend (the real
platform one, or ``firmware_sim.virtual_ble``'s bumble backend in tests and the demo).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from host.errors import SensorError
from host.sensors import detect, get_model
from host.sensors._common import SensorConfig, SensorModel


class _Clock:
    """``now_s()`` and ``speed``: the host clock protocol of ``host.transport.ble``."""

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
    """Advertisers :func:`host.sensors.detect` recognises (optionally only ``models``), by name."""
    from bleak import BleakScanner
    from bleak.exc import BleakError

    clock = clock or _Clock()
    found: dict[str, FoundVendorSensor] = {}
    enough = asyncio.Event()

    def on_adv(device: Any, adv: Any) -> None:
        model = detect(adv)
        if model is None or (models is not None and model not in models):
            return
        found[device.address] = FoundVendorSensor(
            device.address.upper(), adv.local_name or device.name or device.address, model, int(adv.rssi), device
        )
        if min_count is not None and len(found) >= min_count:
            enough.set()

    kwargs: dict[str, Any] = {"detection_callback": on_adv}
    if scanner_backend is not None:
        kwargs["backend"] = scanner_backend
    try:
        async with BleakScanner(**kwargs):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(enough.wait(), timeout_s / clock.speed)
    except (BleakError, OSError) as exc:
        raise SensorError(f"Bluetooth scan failed: {exc}") from exc
    return sorted(found.values(), key=lambda s: (s.name, s.address))


class VendorLink:
    """One vendor sensor over BLE.

    Parameters
    ----------
    device : bleak ``BLEDevice`` or address.
    model : a :class:`SensorModel` or its name.
    config : what to configure (default: the model's).
    clock : host clock with ``now_s()`` and ``speed`` (arrival times of notifications).
    client_backend : bleak client backend class (None: the platform's).
    """

    def __init__(
        self, device: Any, model: SensorModel | str, config: SensorConfig | None = None, *,
        clock: Any = None, client_backend: Any = None, connect_timeout_s: float = 10.0,
    ) -> None:
        from bleak import BleakClient

        self.model = get_model(model) if isinstance(model, str) else model
        self.config = config or self.model.default_config
        self.clock = clock or _Clock()
        self.address = str(getattr(device, "address", device)).upper()
        self.queue: asyncio.Queue[tuple[int, bytes, float]] = asyncio.Queue()
        self.notifications = 0
        kwargs: dict[str, Any] = {"timeout": connect_timeout_s / self.clock.speed}
        if client_backend is not None:
            kwargs["backend"] = client_backend
        self._client = BleakClient(device, **kwargs)

    def _callback(self, channel: int) -> Callable[[Any, bytearray], None]:
        def on_notify(_char: Any, data: bytearray) -> None:
            self.notifications += 1
            self.queue.put_nowait((channel, bytes(data), self.clock.now_s()))

        return on_notify

    async def _write_all(self, writes: list[Any]) -> None:
        for w in writes:
            await self._client.write_gatt_char(w.char_uuid, w.data, response=w.response)

    async def open(self) -> None:
        """Connect, configure, subscribe, start (SensorError with the model and reason on failure)."""
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
            await self._write_all(self.model.start(self.config))
        except (BleakError, asyncio.TimeoutError, OSError) as exc:
            raise SensorError(f"{self.address}: cannot start {self.model.name}: {exc or type(exc).__name__}") from exc

    async def close(self) -> None:
        """Stop streaming (best effort) and disconnect."""
        with contextlib.suppress(Exception):
            if self._client.is_connected:
                await self._write_all(self.model.stop(self.config))
        with contextlib.suppress(Exception):
            await self._client.disconnect()

    def drain(self) -> list[tuple[int, bytes, float]]:
        """Every queued notification, in arrival order."""
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out
