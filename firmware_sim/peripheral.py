"""A legrep thigh sensor as a real BLE peripheral on Google's bumble stack.

:class:`SensorPeripheral` puts a transport-free :class:`~legrep_sim.firmware.SensorFirmware`
behind bumble's GATT server: the legrep service (docs/protocol.md section 1), Battery Service
0x180F and Device Information 0x180A, advertising ``legrep-XXXX`` and the 128-bit service UUID in
the advertising data itself. Time is a :class:`SimClock` (virtual seconds = wall seconds × speed),
so tests and the demo run a session faster than real time while the host sees consistent clocks.

The controller is either a virtual one on an in-process bumble ``LocalLink``
(:meth:`legrep_sim.virtual_ble.VirtualRadio.new_controller`) or, with :func:`serve_tcp`, the
sensors live in this process and a host in another process attaches to an HCI controller on the
same link over TCP (loopback only).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bumble import hci
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from .virtual_ble import QuietDevice, QuietHost
from bumble.transport.common import AsyncPipeSink

from . import protocol as proto

logger = logging.getLogger(__name__)

ADVERTISING_INTERVAL_MS = 20.0
"""Shortest legacy advertising interval (Core spec Vol 6, Part B, 4.4.2.2: 20 ms)."""
LEGACY_ADV_MAX_BYTES = 31
"""Legacy advertising data limit (Core spec Vol 6, Part B, 2.3.1.1)."""
MIN_TICK_WALL_S = 0.005
"""Shortest pause of a pacing loop in loop seconds (a fast simulation must leave the host time)."""
MAX_IDLE_S = 0.5
"""On virtual time a sensor skips at most this many virtual seconds of idle ticks at once."""
DEFAULT_MTU = 23
"""ATT_MTU before an exchange (Core spec Vol 3, Part F, 3.2.8)."""


class Firmware(Protocol):
    """What the peripheral needs from the firmware model (``legrep_sim.firmware.SensorFirmware``)."""

    battery_pct: int
    on_change: Callable[[], None] | None

    def advance(self, now_s: float) -> list[bytes]: ...

    def next_event_s(self) -> float: ...

    def handle_control(self, data: bytes, now_s: float | None = None) -> bytes: ...

    def status(self, now_s: float | None = None) -> bytes: ...

    def connect(self, now_s: float | None = None, mtu: int = 23) -> None: ...

    def set_mtu(self, mtu: int) -> None: ...

    def disconnect(self, now_s: float | None = None) -> None: ...

    def link_drop_due(self, now_s: float) -> bool: ...

    def take_status_change(self) -> bytes | None: ...


class SimClock:
    """Virtual time for a simulated world: ``now_s() = (loop time - start) × speed``.

    Both the sensors and (in the demo and tests) the host read this clock, so a 60 s session at
    ``speed=10`` takes 6 s of wall time and every component sees consistent seconds.
    """

    def __init__(self, speed: float = 1.0, start_s: float = 0.0, max_step_wall_s: float | None = 0.005) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self.speed = float(speed)
        self.max_step_wall_s = max_step_wall_s
        """Between two readings virtual time advances at most this many wall seconds × speed: when
        the process stalls (garbage collection, a busy CPU), the simulated world waits instead of
        jumping ahead. None: pure wall time × speed."""
        self._now_s = float(start_s)
        self._last_wall: float | None = None
        self.stalled_wall_s = 0.0
        """Wall time not counted because of ``max_step_wall_s``."""
        self._virtual: bool | None = None

    @property
    def on_virtual_time(self) -> bool:
        """True once the clock has been read on a :class:`~legrep_sim.virtual_time.VirtualTimeLoop`."""
        return bool(self._virtual)

    def _loop_time(self) -> float:
        loop = asyncio.get_running_loop()
        if self._virtual is None:
            from .virtual_time import VirtualTimeLoop

            # on virtual time the loop never stalls: its clock is the simulation's clock
            self._virtual = isinstance(loop, VirtualTimeLoop)
            if self._virtual:
                self.max_step_wall_s = None
        return loop.time()

    def now_s(self) -> float:
        """Virtual seconds since the clock started (starts at its first reading)."""
        t = self._loop_time()
        if self._last_wall is not None:
            step = t - self._last_wall
            if self.max_step_wall_s is not None and step > self.max_step_wall_s:
                self.stalled_wall_s += step - self.max_step_wall_s
                step = self.max_step_wall_s
            self._now_s += max(0.0, step) * self.speed
        self._last_wall = t
        return self._now_s

    async def sleep(self, duration_s: float) -> None:
        """Sleep until ``duration_s`` virtual seconds have passed on this clock (which can run
        slower than wall × speed when the process stalls)."""
        target_s = self.now_s() + max(0.0, duration_s)
        while True:
            remaining_s = target_s - self.now_s()
            if remaining_s <= 0:
                return
            await asyncio.sleep(min(remaining_s / self.speed, self.max_step_wall_s or 0.05))


class ScheduledSource:
    """A sample source whose programme starts at ``start_s`` (virtual seconds; settable later).

    Wraps ``f(programme_times_s) -> (acc_g, gyr_dps)``; before the start it returns the programme's
    first instant (a sensor lying still in the neutral pose), so the host can connect and START at
    any speed without missing the calibration pose. Several sensors share one instance's start
    through :meth:`follow`.
    """

    def __init__(self, source: Callable[[Any], tuple[Any, Any]], start_s: float = 0.0) -> None:
        self._source = source
        self.start_s = float(start_s)
        self._leader: ScheduledSource | None = None

    def follow(self, source: Callable[[Any], tuple[Any, Any]]) -> "ScheduledSource":
        """Another source that starts whenever this one starts."""
        other = ScheduledSource(source)
        other._leader = self
        return other

    def __call__(self, true_times_s: Any) -> tuple[Any, Any]:
        start_s = self._leader.start_s if self._leader is not None else self.start_s
        import numpy as np

        t = np.maximum(np.asarray(true_times_s, dtype=np.float64) - start_s, 0.0)
        return self._source(t)


def _wake(nap: "asyncio.Future[None]") -> None:
    if not nap.done():
        nap.set_result(None)


def sensor_address(serial: str) -> str:
    """A static random address (two top bits set, Core spec Vol 6, Part B, 1.3.2.1) from a serial."""
    digits = f"{int(serial, 16) & 0xFFFF:04X}"
    return f"F1:E6:00:00:{digits[:2]}:{digits[2:]}"


def advertising_data(name: str) -> bytes:
    """Complete local name + complete list of 128-bit service UUIDs (no flags: 31 bytes exactly)."""
    data = bytes(
        AdvertisingData(
            [
                (AdvertisingData.COMPLETE_LOCAL_NAME, name.encode()),
                (AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, bytes(UUID(proto.SERVICE_UUID))),
            ]
        )
    )
    if len(data) > LEGACY_ADV_MAX_BYTES:
        raise ValueError(f"advertising data must fit {LEGACY_ADV_MAX_BYTES} bytes, got {len(data)} for name {name!r}")
    return data


@dataclass(frozen=True, slots=True)
class Outage:
    """The sensor is out of range from ``start_s`` for ``duration_s`` (virtual seconds)."""

    start_s: float
    duration_s: float


class SensorPeripheral:
    """A :class:`Firmware` behind bumble's GATT server, paced by a :class:`SimClock`.

    Parameters
    ----------
    firmware : the firmware state machine (owns sampling, packets, ring buffer, faults).
    controller : a bumble controller (virtual, on a ``LocalLink``).
    serial : 4 hex digits: name ``legrep-<serial>``, Serial Number characteristic, address.
    clock : the simulation clock (shared with the other sensors and, in a simulation, the host).
    tick_s : period of the pacing loop, simulated seconds (a BLE connection event every 7.5-50 ms
        carries the notifications; at most one tick per ``MIN_TICK_WALL_S`` of wall time).
    """

    def __init__(
        self,
        firmware: Firmware,
        controller: Controller,
        serial: str,
        clock: SimClock,
        *,
        tick_s: float = 0.02,
        address: str | None = None,
    ) -> None:
        if len(serial) != 4 or any(c not in "0123456789ABCDEFabcdef" for c in serial):
            raise ValueError(f"serial must be 4 hex digits, got {serial!r}")
        self.firmware = firmware
        self.serial = serial.upper()
        self.name = f"{proto.NAME_PREFIX}{self.serial}"
        self.address = address or sensor_address(self.serial)
        self.clock = clock
        self.tick_s = tick_s
        self.device = QuietDevice(
            name=self.name, address=hci.Address(self.address), host=QuietHost(controller, AsyncPipeSink(controller))
        )
        self.connection: Connection | None = None
        self.on_start: Callable[[], None] | None = None
        """Called when the sensor accepts a START (e.g. to begin a simulated programme)."""
        self.outages: list[Outage] = []
        self.connections = 0
        self.disconnections = 0
        self.notifications_sent = 0
        self._task: asyncio.Task[None] | None = None
        self._advertising_wanted = False
        self._running = False
        self._last_battery = -1
        self._nap: asyncio.Future[None] | None = None
        self._nap_timer: asyncio.TimerHandle | None = None
        self._nap_from = 0.0
        self._nap_step = 0.0
        self._build_gatt()
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)
        firmware.on_change = self._kick

    # --- GATT database --------------------------------------------------------------------------

    def _build_gatt(self) -> None:
        props = Characteristic.Properties
        self.data_char: Characteristic[bytes] = Characteristic(
            proto.IMU_DATA_UUID, props.NOTIFY, Characteristic.READABLE, b""
        )
        self.control_char: Characteristic[bytes] = Characteristic(
            proto.CONTROL_UUID,
            props.WRITE | props.NOTIFY,
            Characteristic.READABLE | Characteristic.WRITEABLE,
            CharacteristicValue(read=lambda _c: b"", write=self._on_control_write),
        )
        self.status_char: Characteristic[bytes] = Characteristic(
            proto.STATUS_UUID,
            props.READ | props.NOTIFY,
            Characteristic.READABLE,
            CharacteristicValue(read=lambda _c: self.firmware.status(self.clock.now_s())),
        )
        self.battery_char: Characteristic[bytes] = Characteristic(
            UUID.from_16_bits(proto.BATTERY_LEVEL_UUID16),
            props.READ | props.NOTIFY,
            Characteristic.READABLE,
            CharacteristicValue(read=lambda _c: bytes([self._battery_pct()])),
        )
        major, minor, patch = self._fw_version()

        def info(uuid16: int, text: str) -> Characteristic[bytes]:
            return Characteristic(UUID.from_16_bits(uuid16), props.READ, Characteristic.READABLE, text.encode())

        self.device.add_services(
            [
                Service(proto.SERVICE_UUID, [self.data_char, self.control_char, self.status_char]),
                Service(UUID.from_16_bits(proto.BATTERY_SERVICE_UUID16), [self.battery_char]),
                Service(
                    UUID.from_16_bits(proto.DEVICE_INFO_SERVICE_UUID16),
                    [
                        info(proto.MANUFACTURER_NAME_UUID16, proto.MANUFACTURER),
                        info(proto.MODEL_NUMBER_UUID16, proto.MODEL),
                        info(proto.SERIAL_NUMBER_UUID16, self.serial),
                        info(proto.FIRMWARE_REVISION_UUID16, f"{major}.{minor}.{patch}"),
                    ],
                ),
            ]
        )

    def _fw_version(self) -> tuple[int, int, int]:
        status = self.firmware.status()
        return status[1], status[2], status[3]

    def _battery_pct(self) -> int:
        return int(self.firmware.battery_pct)

    # --- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Power on, advertise and start the pacing loop."""
        await self.device.power_on()
        self._advertising_wanted = True
        self._running = True
        await self._advertise()
        self._task = asyncio.create_task(self._pace(), name=f"{self.name} pacing")

    async def stop(self) -> None:
        """Stop pacing and advertising; drop the link.

        The pacing task is not cancelled but asked to finish: cancelling a task while it waits for
        an HCI command response desynchronises bumble's host (the late response would be taken
        for the next command's).
        """
        self._advertising_wanted = False
        self._running = False
        self._kick()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), 5.0)
            except asyncio.TimeoutError:
                task.cancel()
        with contextlib.suppress(Exception):
            await self.device.stop_advertising()
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await self.connection.disconnect()

    def schedule_outage(self, start_s: float, duration_s: float) -> None:
        """Go out of range at virtual time ``start_s`` for ``duration_s``: the link drops and the
        sensor cannot be reached (no advertising) until the outage ends; sampling continues."""
        if duration_s < 0:
            raise ValueError(f"duration_s must be >= 0, got {duration_s}")
        self.outages.append(Outage(start_s, duration_s))
        self.outages.sort(key=lambda o: o.start_s)
        self._kick()

    def in_outage(self, now_s: float) -> bool:
        return any(o.start_s <= now_s < o.start_s + o.duration_s for o in self.outages)

    async def _advertise(self) -> None:
        if not self._advertising_wanted or self.connection is not None or self.device.is_advertising:
            return
        await self.device.start_advertising(
            advertising_data=advertising_data(self.name),
            scan_response_data=advertising_data(self.name),
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )

    # --- connection events ------------------------------------------------------------------------

    def _on_connection(self, connection: Connection) -> None:
        self.connection = connection
        self.connections += 1
        self._kick()
        self.firmware.connect(self.clock.now_s(), mtu=int(connection.att_mtu))
        connection.on(Connection.EVENT_DISCONNECTION, lambda reason: self._on_disconnection(connection, reason))
        connection.on(
            Connection.EVENT_CONNECTION_ATT_MTU_UPDATE,
            lambda *_: self.firmware.set_mtu(int(connection.att_mtu)) if self.connection is connection else None,
        )
        logger.debug("%s: connected to %s", self.name, connection.peer_address)

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        if self.connection is not connection:
            return
        self.connection = None
        self.disconnections += 1
        self._kick()
        self.firmware.disconnect(self.clock.now_s())
        logger.debug("%s: disconnected (reason 0x%02x)", self.name, reason)

    # --- control ----------------------------------------------------------------------------------

    def _on_control_write(self, connection: Connection, value: bytes) -> None:
        reply = self.firmware.handle_control(bytes(value), self.clock.now_s())
        if reply[:2] == bytes([0x80 | proto.Opcode.START, 0]) and self.on_start is not None:
            self.on_start()
        # The reply goes out after the write response, as on a real sensor.
        asyncio.get_running_loop().call_soon(self._send_control_reply, connection, reply)

    def _send_control_reply(self, connection: Connection, reply: bytes) -> None:
        if self.connection is connection:
            asyncio.ensure_future(self.device.notify_subscriber(connection, self.control_char, reply))

    # --- pacing -----------------------------------------------------------------------------------

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        while self._running:
            step = max(self.tick_s / self.clock.speed, MIN_TICK_WALL_S)
            idle = 0
            try:
                await self._tick()
                idle = self._idle_ticks(step) if self._running else 0
            except Exception:  # keep the sensor alive; a bug is logged, not fatal to the radio
                logger.exception("%s: pacing step failed", self.name)
            if idle == 0:
                await asyncio.sleep(step)
                continue
            # Sleep through the idle ticks to the tick they lead to, at the loop time that many
            # sleeps of one step would reach (the same sum of steps: every tick that runs, runs at
            # the very same time); an outside change (a control write, the link, a fault, an
            # outage scheduled) wakes the sensor at the next tick of that grid instead.
            self._nap, self._nap_from, self._nap_step = loop.create_future(), loop.time(), step
            at = self._nap_from
            for _ in range(idle + 1):
                at += step
            self._nap_timer = loop.call_at(at, _wake, self._nap)
            try:
                await self._nap
            finally:
                self._nap_timer.cancel()
                self._nap = self._nap_timer = None

    def _idle_ticks(self, step: float) -> int:
        """How many of the next ticks certainly have nothing to do (0 unless on virtual time).

        A tick with no packet to send, no status or battery change, no outage or fault timer due
        and advertising already on only takes samples, which the firmware takes just as well at
        the next tick that does something (``Firmware.next_event_s``): the sensor sleeps to the
        last tick at or before the next event. On wall time every tick runs (a long sleep would
        read as a stall of the SimClock)."""
        if not self.clock.on_virtual_time:
            return 0
        now_s = self.clock.now_s()
        connection = self.connection
        if connection is None and not self.device.is_advertising and not self.in_outage(now_s):
            return 0
        if connection is not None and int(self.firmware.battery_pct) != self._last_battery:
            return 0
        due_s = min(self.firmware.next_event_s(), now_s + MAX_IDLE_S)
        for o in self.outages:
            for edge in (o.start_s, o.start_s + o.duration_s):
                if edge > now_s:
                    due_s = min(due_s, edge)
        return max(0, math.floor((due_s - now_s) / (step * self.clock.speed)) - 1)

    def _kick(self) -> None:
        """Something from outside changed the sensor: if it sleeps through idle ticks, it ticks at
        the next tick of its grid."""
        nap, timer = self._nap, self._nap_timer
        if nap is None or timer is None or nap.done():
            return
        loop = asyncio.get_running_loop()
        now, at = loop.time(), self._nap_from + self._nap_step
        while at < now:
            at += self._nap_step
        if at < timer.when():
            timer.cancel()
            self._nap_timer = loop.call_at(at, _wake, nap)

    async def _tick(self) -> None:
        now_s = self.clock.now_s()
        out_of_range = self.in_outage(now_s)
        packets = self.firmware.advance(now_s)
        connection = self.connection
        if connection is not None and self.firmware.link_drop_due(now_s):
            # SIM_FAULT "drop link": a real disconnect
            await self._disconnect(connection)
            connection = None
        if connection is not None and out_of_range:
            await self._disconnect(connection)
            connection = None
        if connection is not None:
            for packet in packets:
                await self.device.notify_subscriber(connection, self.data_char, packet)
                self.notifications_sent += 1
            await self._notify_changes(connection)
        elif not out_of_range:
            await self._advertise()
        elif self.device.is_advertising:
            await self.device.stop_advertising()

    async def _disconnect(self, connection: Connection) -> None:
        with contextlib.suppress(Exception):
            await self.device.stop_advertising()
        with contextlib.suppress(Exception):
            await connection.disconnect(hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR)
        if self.connection is connection:
            self._on_disconnection(connection, hci.HCI_ErrorCode.CONNECTION_TERMINATED_BY_LOCAL_HOST_ERROR)

    async def _notify_changes(self, connection: Connection) -> None:
        status = self.firmware.take_status_change()
        if status is not None:
            await self.device.notify_subscriber(connection, self.status_char, status)
        battery = int(self.firmware.battery_pct)
        if battery != self._last_battery:
            if self._last_battery >= 0:
                await self.device.notify_subscriber(connection, self.battery_char, bytes([battery]))
            self._last_battery = battery


async def start_sensors(
    radio: Any,
    firmwares: Sequence[Firmware],
    serials: Sequence[str],
    clock: SimClock,
    **kwargs: Any,
) -> list[SensorPeripheral]:
    """Create and start one :class:`SensorPeripheral` per firmware on ``radio`` (a VirtualRadio)."""
    if len(firmwares) != len(serials):
        raise ValueError(f"need one serial per firmware, got {len(serials)} serials for {len(firmwares)}")
    sensors = [
        SensorPeripheral(fw, radio.new_controller(f"legrep-{s}"), s, clock, **kwargs)
        for fw, s in zip(firmwares, serials)
    ]
    for sensor in sensors:
        await sensor.start()
    return sensors


async def serve_tcp(
    port: int,
    firmwares: Sequence[Firmware],
    serials: Sequence[str],
    clock: SimClock,
    *,
    ready: Callable[[int], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> None:
    """Run sensors on a virtual link and expose one more controller on that link as an HCI
    controller over TCP on 127.0.0.1:``port`` (bumble's ``tcp-server`` transport).

    A host in another process uses it as its Bluetooth adapter:
    ``VirtualRadio(hci_spec="tcp-client:127.0.0.1:PORT")``. Runs until cancelled.
    """
    from bumble.transport import open_transport

    from .virtual_ble import CancellableController, VirtualRadio

    radio = VirtualRadio()
    transport = await open_transport(f"tcp-server:127.0.0.1:{port}")
    CancellableController("hci", host_source=transport.source, host_sink=transport.sink, link=radio.link)
    sensors = await start_sensors(radio, firmwares, serials, clock)
    for sensor in sensors:
        sensor.on_start = on_start
    if ready is not None:
        ready(port)
    try:
        await asyncio.Event().wait()
    finally:
        for sensor in sensors:
            await sensor.stop()
        await transport.close()


@dataclass(frozen=True, slots=True)
class SignalArrays:
    """One thigh's programme: ``time_s (M,)`` programme seconds, ``acc_g (M, 3)``, ``gyr_dps (M, 3)``."""

    time_s: Any
    acc_g: Any
    gyr_dps: Any


class SimulatedSensors:
    """Virtual sensors (one per leg) on a virtual radio, playing a programme through real firmware.

    The programme (e.g. a simulated session or a bundled recording) starts when :meth:`begin` is
    called — after the host connected — and until then every sensor lies still in its first pose.
    """

    def __init__(
        self,
        radio: Any,
        clock: SimClock,
        sensors: list[SensorPeripheral],
        legs: Sequence[str],
        lead: ScheduledSource,
        duration_s: float,
    ) -> None:
        self.radio = radio
        self.clock = clock
        self.sensors = sensors
        self.legs = list(legs)
        self.lead = lead
        self.duration_s = duration_s
        self.started_s: float | None = None

    @property
    def firmwares(self) -> list[Any]:
        return [s.firmware for s in self.sensors]

    def sensor(self, leg: str) -> SensorPeripheral:
        return self.sensors[self.legs.index(leg)]

    def begin(self, delay_s: float = 0.5) -> float:
        """Start the programme ``delay_s`` virtual seconds from now; returns its start time."""
        self.started_s = self.clock.now_s() + delay_s
        self.lead.start_s = self.started_s
        return self.started_s

    def outage(self, leg: str, programme_s: float, duration_s: float) -> None:
        """Take ``leg``'s sensor out of range at programme time ``programme_s`` for ``duration_s``."""
        if self.started_s is None:
            raise RuntimeError("call begin() before scheduling outages in programme time")
        self.sensor(leg).schedule_outage(self.started_s + programme_s, duration_s)

    async def stop(self) -> None:
        for sensor in self.sensors:
            await sensor.stop()


async def simulate_sensors(
    programmes: dict[str, SignalArrays],
    *,
    speed: float = 10.0,
    radio: Any = None,
    rate_hz: int = 100,
    acc_range_g: int = 16,
    gyr_range_dps: int = 2000,
    serials: dict[str, str] | None = None,
    fw_version: tuple[int, int, int] | None = None,
    drift_ppm: dict[str, float] | None = None,
    clock: SimClock | None = None,
) -> SimulatedSensors:
    """Start one advertising virtual sensor per leg (``"left"``/``"right"``) playing ``programmes``.

    The sensors store their leg in "flash" (SET_LEG code 1 left, 2 right), like sensors a person
    assigned once. Ranges default to 16 g / 2000 dps, the simulator's own full scale.
    """
    from .firmware import FirmwareConfig, SensorFirmware, array_source
    from .virtual_ble import VirtualRadio

    radio = radio or VirtualRadio()
    clock = clock or SimClock(speed)
    serials = serials or {"left": "0A11", "right": "0A12", "pelvis": "0A13"}
    lead: ScheduledSource | None = None
    sensors: list[SensorPeripheral] = []
    legs = [leg for leg in ("left", "right", "pelvis") if leg in programmes]
    duration_s = 0.0
    for leg in legs:
        prog = programmes[leg]
        base = array_source(prog.time_s, prog.acc_g, prog.gyr_dps)
        source = lead.follow(base) if lead is not None else ScheduledSource(base, float("inf"))
        lead = lead or source
        duration_s = max(duration_s, float(prog.time_s[-1]))
        extra: dict[str, Any] = {}
        if fw_version is not None:
            extra["fw_version"] = fw_version
        config = FirmwareConfig(
            serial=serials[leg],
            rate_hz=rate_hz,
            acc_range_g=acc_range_g,
            gyr_range_dps=gyr_range_dps,
            leg={"left": 1, "right": 2, "pelvis": 3}[leg],
            drift_ppm=(drift_ppm or {}).get(leg, 0.0),
            **extra,
        )
        firmware = SensorFirmware(source, config)
        sensors.append(SensorPeripheral(firmware, radio.new_controller(f"legrep-{serials[leg]}"), serials[leg], clock))
    if lead is None:
        raise ValueError("programmes must contain 'left' and/or 'right'")
    for sensor in sensors:
        await sensor.start()
    return SimulatedSensors(radio, clock, sensors, legs, lead, duration_s)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m legrep_sim.peripheral --tcp PORT``: two simulated sensors (a simulated session
    in real time) behind an HCI controller on 127.0.0.1:PORT; a host uses it as its adapter with
    ``legrep scan --hci tcp-client:127.0.0.1:PORT`` / ``legrep capture --hci ...``."""
    import argparse

    from .firmware import FirmwareConfig, SensorFirmware, array_source
    from .scenarios import SessionSpec, SetSpec, simulate

    parser = argparse.ArgumentParser(prog="python -m legrep_sim.peripheral", description=main.__doc__)
    parser.add_argument("--tcp", type=int, required=True, metavar="PORT", help="loopback TCP port of the HCI controller")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    sim = simulate(SessionSpec(sets=(SetSpec(10, 10), SetSpec(10, 9)), rest_between_sets_s=20.0), seed=args.seed)
    firmwares: list[Firmware] = []
    lead: ScheduledSource | None = None
    for code, leg in ((1, "left"), (2, "right")):
        sig = sim.signals[leg]
        base = array_source(sig.true_time_s, sig.acc_g, sig.gyr_dps)
        source = lead.follow(base) if lead is not None else ScheduledSource(base, float("inf"))
        lead = lead or source
        config = FirmwareConfig(serial=f"0B1{code}", leg=code, acc_range_g=16, gyr_range_dps=2000)
        firmwares.append(SensorFirmware(source, config))

    def ready(port: int) -> None:
        print(f"legrep simulator: 2 sensors; HCI controller on tcp-client:127.0.0.1:{port} (Ctrl-C to stop)", flush=True)

    clock = SimClock(1.0)
    assert lead is not None

    def begin() -> None:  # the programme starts with the first START (after a 0.5 s still pose)
        if lead.start_s == float("inf"):
            lead.start_s = clock.now_s() + 0.5

    try:
        asyncio.run(serve_tcp(args.tcp, firmwares, ["0B11", "0B12"], clock, ready=ready, on_start=begin))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
