"""Shared machinery of the vendor-sensor emulators: a bumble GATT peripheral that plays a
simulated thigh signal (:class:`legrep_sim.scenarios.SimSignal`) through a vendor's profile.

Each model subclass builds its GATT services, reacts to the host's writes (start/stop/configure
as the vendor documents them) and encodes samples into that vendor's notifications. Encoders here
are written from the vendor documents, separately from the host decoders in ``host/sensors``.

Timing: a stream plays the signal from its first sample at the moment it is started (so the host
always sees the still calibration pose first), sample k becoming due ``signal.time_s[k] -
signal.time_s[0]`` virtual seconds after the start; the pacing loop sends whatever is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from bumble import hci
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, Service
from bumble.transport.common import AsyncPipeSink

from ..peripheral import ADVERTISING_INTERVAL_MS, LEGACY_ADV_MAX_BYTES, MIN_TICK_WALL_S, SimClock
from ..virtual_ble import QuietDevice, QuietHost

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Signal:
    """What an emulator plays: times (s), specific force (g), angular rate (deg/s)."""

    time_s: np.ndarray
    acc_g: np.ndarray
    gyr_dps: np.ndarray
    rate_hz: float
    elapsed_s: np.ndarray = field(init=False, repr=False, compare=False)
    """``time_s - time_s[0]``, once (the streams look up every tick's samples in it)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "elapsed_s", self.time_s - self.time_s[0] if self.time_s.size else self.time_s.copy())

    @staticmethod
    def of(sim_signal: Any) -> "Signal":
        """From a ``legrep_sim.scenarios.SimSignal`` (or anything with those four attributes)."""
        return Signal(
            np.asarray(sim_signal.time_s, dtype=np.float64),
            np.asarray(sim_signal.acc_g, dtype=np.float64),
            np.asarray(sim_signal.gyr_dps, dtype=np.float64),
            float(sim_signal.rate_hz),
        )


@dataclass(slots=True)
class Stream:
    """Playback state of one stream (a model may have two: acc and gyro)."""

    started_s: float | None = None
    first_index: int = 0
    next_index: int = 0
    sent: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    play_origin_s: float | None = None
    """When the stream first started (its sample times count from here)."""
    skip_to_now: bool = False

    def start(self, now_s: float, first_index: int | None = None) -> None:
        """Play from ``first_index`` (default 0). Started again after a stop (a reconnection), a
        stream resumes at the sample of that moment: what the sensor measured while the link was
        down is not sent (a vendor sensor keeps nothing for the host)."""
        if self.play_origin_s is None:
            self.play_origin_s = now_s
            self.first_index = self.next_index = first_index or 0
        elif first_index is not None:
            self.next_index = max(self.next_index, first_index)
        else:
            self.skip_to_now = True
        self.started_s = now_s

    def stop(self) -> None:
        self.started_s = None

    def due(self, signal: Signal, now_s: float, origin_s: float | None = None) -> slice:
        """Indices due by ``now_s``; ``origin_s`` is the play start (default: this stream's first start)."""
        if self.started_s is None:
            return slice(0, 0)
        origin = self.play_origin_s if origin_s is None else origin_s
        assert origin is not None
        elapsed = now_s - origin
        end = int(np.searchsorted(signal.elapsed_s, elapsed, side="right"))
        if self.skip_to_now:
            self.skip_to_now = False
            self.next_index = max(self.next_index, end)
        lo = self.next_index
        self.next_index = max(lo, end)
        return slice(lo, self.next_index)


def advertising_data(name: str, service_uuid: str | None) -> bytes:
    """Complete local name (+ the 128-bit service UUID when both fit the 31 legacy bytes)."""
    fields = [(AdvertisingData.COMPLETE_LOCAL_NAME, name.encode())]
    if service_uuid is not None:
        with_uuid = fields + [(AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, bytes(UUID(service_uuid)))]
        data = bytes(AdvertisingData(with_uuid))
        if len(data) <= LEGACY_ADV_MAX_BYTES:
            return data
    return bytes(AdvertisingData(fields))


class EmulatedSensor:
    """Base class: device, advertising, pacing. Subclasses set ``MODEL``, ``NAME`` and implement
    :meth:`build_services` and :meth:`tick` (return the notifications due now)."""

    MODEL = ""
    NAME = ""
    SERVICE_UUID: str | None = None

    def __init__(
        self, signal: Signal, controller: Controller, clock: SimClock, *, address: str = "F1:E6:00:00:00:01",
        name: str | None = None, tick_s: float = 0.02,
    ) -> None:
        self.signal = signal
        self.clock = clock
        self.tick_s = tick_s
        self.name = name or self.NAME
        self.address = address
        self.device = QuietDevice(name=self.name, address=hci.Address(address), host=QuietHost(controller, AsyncPipeSink(controller)))
        self.connection: Connection | None = None
        self.notifications_sent = 0
        self.sent_by_uuid: dict[str, int] = {}
        """Streamed notifications (not replies) per characteristic UUID (lower case)."""
        self.replies_sent = 0
        self.writes: list[bytes] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._adv_task: asyncio.Future[None] | None = None
        self.outages: list[tuple[float, float]] = []
        """``(start_s, duration_s)`` out of range (virtual seconds): :meth:`schedule_outage`."""
        self.disconnections = 0
        self.device.add_services(self.build_services())
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)

    # --- to implement ------------------------------------------------------------------------

    def build_services(self) -> list[Service]:
        raise NotImplementedError

    def tick(self, now_s: float) -> list[tuple[Characteristic[bytes], bytes, bool]]:
        """``(characteristic, value, indicate)`` to send now."""
        raise NotImplementedError

    def on_disconnected(self) -> None:
        """Stop streams (a real sensor stops streaming when the link goes)."""

    # --- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.device.power_on()
        await self._advertise()
        self._task = asyncio.create_task(self._pace(), name=f"{self.name} pacing")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._adv_task is not None:  # a re-advertise after a disconnect: let it finish first
            with contextlib.suppress(Exception):
                await self._adv_task
        with contextlib.suppress(Exception):
            await self.device.stop_advertising()
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.disconnect()

    def schedule_outage(self, start_s: float, duration_s: float) -> None:
        """Go out of range at virtual time ``start_s`` for ``duration_s``: the link drops and the
        sensor cannot be reached until the outage ends (it keeps measuring, but sends nothing)."""
        if duration_s < 0:
            raise ValueError(f"duration_s must be >= 0, got {duration_s}")
        self.outages.append((start_s, duration_s))

    def in_outage(self, now_s: float) -> bool:
        return any(a <= now_s < a + d for a, d in self.outages)

    async def _advertise(self) -> None:
        if self.in_outage(self.clock.now_s()):
            return  # out of range: advertised again when the outage ends (_pace)
        data = advertising_data(self.name, self.SERVICE_UUID)
        await self.device.start_advertising(
            advertising_data=data, scan_response_data=data,
            advertising_interval_min=ADVERTISING_INTERVAL_MS, advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )

    def _on_connection(self, connection: Connection) -> None:
        self.connection = connection
        connection.on(Connection.EVENT_DISCONNECTION, lambda _reason: self._on_disconnection(connection))

    def _on_disconnection(self, connection: Connection) -> None:
        if self.connection is connection:
            self.connection = None
            self.disconnections += 1
            self.on_disconnected()
            if not self._stopping:
                self._adv_task = asyncio.ensure_future(self._advertise())

    async def _pace(self) -> None:
        while True:
            try:
                now_s = self.clock.now_s()
                if self.outages:
                    await self._range(now_s)
                connection = self.connection
                items = self.tick(now_s)
                if connection is not None:
                    for char, value, indicate in items:
                        if indicate:
                            await self.device.indicate_subscriber(connection, char, value)
                        else:
                            await self.device.notify_subscriber(connection, char, value)
                        self.notifications_sent += 1
                        uuid = str(char.uuid).lower()
                        self.sent_by_uuid[uuid] = self.sent_by_uuid.get(uuid, 0) + 1
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the emulated sensor alive; a bug is logged
                logger.exception("%s: pacing step failed", self.name)
            await asyncio.sleep(max(self.tick_s / self.clock.speed, MIN_TICK_WALL_S))

    async def _range(self, now_s: float) -> None:
        """Follow the scheduled outages: drop the link when one starts, advertise when it ends."""
        if self.in_outage(now_s):
            connection = self.connection
            if connection is not None:
                with contextlib.suppress(Exception):
                    await self.device.stop_advertising()
                with contextlib.suppress(Exception):
                    await connection.disconnect(hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR)
                if self.connection is connection:
                    self._on_disconnection(connection)
            elif self.device.is_advertising:
                with contextlib.suppress(Exception):
                    await self.device.stop_advertising()
        elif self.connection is None and not self._stopping and not self.device.is_advertising and (
            self._adv_task is None or self._adv_task.done()
        ):
            with contextlib.suppress(Exception):
                await self._advertise()

    def reply_soon(self, char: Characteristic[bytes], value: bytes, indicate: bool = False) -> None:
        """Send a reply after the write response, as a real sensor does."""
        connection = self.connection

        async def send() -> None:
            if connection is None or self.connection is not connection:
                return
            if indicate:
                await self.device.indicate_subscriber(connection, char, value)
            else:
                await self.device.notify_subscriber(connection, char, value)
            self.replies_sent += 1

        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(send()))


def int16(values: np.ndarray) -> np.ndarray:
    """Round and saturate to int16 (a sensor clips at full scale)."""
    out: np.ndarray = np.clip(np.rint(values), -32768, 32767).astype("<i2")
    return out
