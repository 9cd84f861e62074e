"""Host side of the BLE link to legrep thigh sensors, on bleak.

The same code drives real sensors (bleak's platform backend) and the simulator (a bleak backend over
bumble, :mod:`legrep_sim.virtual_ble`, passed as ``scanner_backend`` / ``client_backend``).

* :func:`scan_sensors` finds sensors advertising the legrep service UUID.
* :func:`assign_legs` decides which sensor is on which thigh: ``--left/--right`` addresses, else the
  assignment remembered in ``~/.config/legrep/sensors.json`` (or ``$LEGREP_CONFIG``), else the leg
  stored in each sensor's flash.
* :class:`SensorLink` is one connected sensor: it checks the protocol and firmware version, subscribes
  (control replies first, then status, battery and IMU data), serialises control requests, and after
  a link loss reconnects with backoff by itself. Its notify callback only enqueues
  ``(arrival_s, bytes)`` on :attr:`SensorLink.queue`; the live session consumes it.

Errors a person can act on are :class:`legrep.errors.SensorError` with one line: no adapter, no sensor
found, out of range (connect timeout), wrong firmware or protocol version.

Time comes from a :class:`Clock` (the host's monotonic clock; in a simulation a virtual clock that
runs ``speed`` times faster than the wall clock, so the sensors and the host agree on seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from bleak import BleakClient
    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.client import BaseBleakClient
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData, BaseBleakScanner

    ScannerBackend = type[BaseBleakScanner]
    ClientBackend = type[BaseBleakClient]

from ..errors import PacketError, SensorError
from ..model import Leg
from .common import (
    Clock,
    LinkEvent,
    LinkEventKind,
    MonotonicClock,
    TimedReply,
    cancel_and_wait,
    control_request,
    retry_with_backoff,
)
from ..packets import (
    BATTERY_LEVEL_UUID,
    CONTROL_UUID,
    IMU_DATA_UUID,
    SERVICE_UUID,
    STATUS_UUID,
    SensorStatus,
    decode_status,
    resend_request,
    set_leg_request,
    start_request,
    stop_request,
    time_sync_request,
)


class _Named(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def address(self) -> str: ...


_Found = TypeVar("_Found", bound=_Named)

logger = logging.getLogger(__name__)

SUPPORTED_FW_MAJOR = 1
"""Firmware major version this host speaks (docs/protocol.md section 8)."""
LEG_CODES: dict[Leg, int] = {Leg.LEFT: 1, Leg.RIGHT: 2, Leg.PELVIS: 3}
"""SET_LEG / status leg byte (docs/protocol.md section 3)."""
CONFIG_ENV = "LEGREP_CONFIG"


# --- leg assignment config ----------------------------------------------------------------------


def config_path() -> Path:
    """``$LEGREP_CONFIG`` if set, else ``~/.config/legrep/sensors.json``."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "legrep" / "sensors.json"


def load_assignment(path: Path | None = None) -> dict[Leg, str]:
    """The remembered ``{leg: address}``; empty if there is none. A broken file is ignored (logged)."""
    path = path or config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        legs = data.get("legs", {})
        return {Leg.parse(k): str(v).upper() for k, v in legs.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError) as exc:
        logger.warning("ignoring sensor config %s: %s", path, exc)
        return {}


def save_assignment(assignment: dict[Leg, str], path: Path | None = None) -> Path:
    """Remember ``{leg: address}`` (atomically replaces the file)."""
    path = path or config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    data = {"legs": {leg.value: addr for leg, addr in sorted(assignment.items(), key=lambda kv: kv[0].value)}}
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


# --- discovery ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FoundSensor:
    """A sensor seen advertising the legrep service."""

    address: str
    name: str
    rssi_dbm: int
    device: "BLEDevice | None" = field(default=None, compare=False, repr=False)
    """bleak's ``BLEDevice`` (connect with it rather than with the address)."""


def _adapter_error(exc: BaseException) -> SensorError | None:
    """A bleak/OS error that means "no usable Bluetooth adapter", as a one-line SensorError."""
    from bleak.exc import BleakError

    text = str(exc).lower()
    if isinstance(exc, (FileNotFoundError, ConnectionRefusedError)) or (
        isinstance(exc, BleakError)
        and any(k in text for k in ("adapter", "not available", "bluetooth is", "powered", "dbus", "no bluetooth"))
    ):
        return SensorError(f"no Bluetooth adapter available ({exc}); switch Bluetooth on or plug in an adapter")
    return None


async def scan_sensors(
    timeout_s: float = 5.0,
    *,
    scanner_backend: "ScannerBackend | None" = None,
    clock: Clock | None = None,
    min_count: int | None = None,
) -> list[FoundSensor]:
    """Sensors advertising the legrep service UUID, sorted by name.

    Parameters
    ----------
    timeout_s : scan duration in clock seconds (stops early once ``min_count`` sensors are seen).
    scanner_backend : a bleak scanner backend class (None: the platform's).

    Raises
    ------
    SensorError
        No Bluetooth adapter.
    """

    def match(device: "BLEDevice", adv: "AdvertisementData") -> FoundSensor | None:
        if SERVICE_UUID not in [u.lower() for u in adv.service_uuids]:
            return None
        name = adv.local_name or device.name or device.address
        return FoundSensor(device.address.upper(), name, int(adv.rssi), device)

    return await scan_advertisers(
        match, timeout_s, scanner_backend=scanner_backend, clock=clock, min_count=min_count, service_uuids=[SERVICE_UUID]
    )


async def scan_advertisers(
    match: "Callable[[BLEDevice, AdvertisementData], _Found | None]",
    timeout_s: float,
    *,
    scanner_backend: "ScannerBackend | None" = None,
    clock: Clock | None = None,
    min_count: int | None = None,
    service_uuids: list[str] | None = None,
) -> list[_Found]:
    """Scan for ``timeout_s`` clock seconds; ``match(device, advertisement)`` keeps an advertiser.

    Stops early once ``min_count`` advertisers matched. Returns the matches (one per address)
    sorted by name and address. A missing or refused adapter is one ``SensorError`` line.
    """
    from bleak import BleakScanner
    from bleak.exc import BleakError

    clock = clock or MonotonicClock()
    found: dict[str, _Found] = {}
    enough = asyncio.Event()

    def on_adv(device: "BLEDevice", adv: "AdvertisementData") -> None:
        hit = match(device, adv)
        if hit is None:
            return
        found[device.address] = hit
        if min_count is not None and len(found) >= min_count:
            enough.set()

    kwargs: dict[str, Any] = {"detection_callback": on_adv}
    if service_uuids:
        kwargs["service_uuids"] = service_uuids
    if scanner_backend is not None:
        kwargs["backend"] = scanner_backend
    try:
        async with BleakScanner(**kwargs):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s / clock.speed):  # not wait_for: see gh-86296
                    await enough.wait()
    except (BleakError, OSError) as exc:
        adapter = _adapter_error(exc)
        if adapter is not None:
            raise adapter from exc
        raise SensorError(f"Bluetooth scan failed: {exc}") from exc
    return sorted(found.values(), key=lambda s: (s.name, s.address))


# --- one sensor -------------------------------------------------------------------------------------


class SensorLink:
    """One sensor over BLE (see module docstring).

    Parameters
    ----------
    device : bleak ``BLEDevice`` or address string.
    clock : host clock (timestamps of notifications, backoff).
    client_backend : bleak client backend class (None: the platform's).
    connect_timeout_s : per connection attempt, clock seconds.
    reply_timeout_s : wait for a control reply, clock seconds.
    backoff_s : first and largest wait between reconnection attempts, clock seconds.
    name : display name (``legrep-XXXX``).
    """

    def __init__(
        self,
        device: "BLEDevice | str",
        *,
        clock: Clock | None = None,
        client_backend: "ClientBackend | None" = None,
        connect_timeout_s: float = 10.0,
        reply_timeout_s: float = 3.0,
        backoff_s: tuple[float, float] = (0.5, 5.0),
        name: str | None = None,
    ) -> None:
        from bleak import BleakClient

        self.clock: Clock = clock or MonotonicClock()
        self.address = str(getattr(device, "address", device)).upper()
        self.name = name or getattr(device, "name", None) or self.address
        self.connect_timeout_s = connect_timeout_s
        self.reply_timeout_s = reply_timeout_s
        self.backoff_s = backoff_s
        self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        """IMU data notifications as ``(arrival_s, bytes)``, in arrival order."""
        self.events: asyncio.Queue[LinkEvent] = asyncio.Queue()
        self.status: SensorStatus | None = None
        self.status_raw = b""
        """The last status record as received (32 bytes)."""
        self.battery_pct: int | None = None
        self.connected = False
        self.disconnects = 0
        self.reconnects = 0
        self._replies: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self._request_lock = asyncio.Lock()
        self._closing = False
        self._reconnect_task: asyncio.Task[None] | None = None
        kwargs: dict[str, Any] = {
            "disconnected_callback": self._on_disconnect,
            "timeout": connect_timeout_s / self.clock.speed,
        }
        if client_backend is not None:
            kwargs["backend"] = client_backend
        self._client = BleakClient(device, **kwargs)

    def __repr__(self) -> str:
        return f"SensorLink({self.name}, {self.address}, connected={self.connected})"

    # --- connection ----------------------------------------------------------------------------

    async def open(self) -> SensorStatus:
        """Connect, check versions, subscribe; returns the sensor's status.

        Raises
        ------
        SensorError
            Out of range / connect timeout, no adapter, wrong protocol or firmware version.
        """
        status = await self._connect_once()
        self.events.put_nowait(LinkEvent(LinkEventKind.CONNECTED, self.clock.now_s(), status=status, raw=self.status_raw))
        return status

    async def _connect_once(self) -> SensorStatus:
        from bleak.exc import BleakError

        try:
            await self._client.connect()
        except (asyncio.TimeoutError, TimeoutError) as exc:
            raise SensorError(
                f"sensor {self.name} ({self.address}) did not answer within {self.connect_timeout_s:g} s: "
                "out of range or switched off?"
            ) from exc
        except (BleakError, OSError) as exc:
            adapter = _adapter_error(exc)
            if adapter is not None:
                raise adapter from exc
            raise SensorError(f"cannot connect to sensor {self.name} ({self.address}): {exc}") from exc
        try:
            status = await self._setup()
        except BaseException:
            with contextlib.suppress(Exception):
                await self._client.disconnect()
            raise
        self.connected = True
        return status

    async def _setup(self) -> SensorStatus:
        from bleak.exc import BleakError

        try:
            raw = await self._client.read_gatt_char(STATUS_UUID)
        except BleakError as exc:
            raise SensorError(
                f"{self.name} ({self.address}) has no readable legrep status characteristic: {exc}"
            ) from exc
        status = self._check_version(raw)
        self.status = status
        self.status_raw = bytes(raw)
        self.battery_pct = status.battery_pct
        try:
            # Replies first: docs/protocol.md section 1 (subscribe before any control write).
            await self._client.start_notify(CONTROL_UUID, self._on_control)
            await self._client.start_notify(STATUS_UUID, self._on_status)
            with contextlib.suppress(BleakError):
                await self._client.start_notify(BATTERY_LEVEL_UUID, self._on_battery)
            await self._client.start_notify(IMU_DATA_UUID, self._on_data)
        except BleakError as exc:
            raise SensorError(f"cannot subscribe to {self.name} ({self.address}): {exc}") from exc
        return status

    def _check_version(self, raw: bytes | bytearray) -> SensorStatus:
        try:
            status = decode_status(raw)
        except SensorError as exc:
            raise SensorError(f"{self.name} ({self.address}): {exc}") from exc
        except PacketError as exc:
            raise SensorError(f"{self.name} ({self.address}) sent an unreadable status: {exc}") from exc
        if status.fw_version[0] != SUPPORTED_FW_MAJOR:
            raise SensorError(
                f"{self.name} ({self.address}) runs firmware {status.fw_version_text}; this legrep needs "
                f"firmware {SUPPORTED_FW_MAJOR}.x: update the sensor or legrep"
            )
        return status

    async def close(self) -> None:
        """Disconnect for good (no reconnection)."""
        self._closing = True
        task, self._reconnect_task = self._reconnect_task, None
        await cancel_and_wait(task)
        with contextlib.suppress(Exception):
            await self._client.disconnect()
        self.connected = False

    def _on_disconnect(self, _client: "BleakClient") -> None:
        if not self.connected:
            return
        self.connected = False
        self.disconnects += 1
        now = self.clock.now_s()
        self.events.put_nowait(LinkEvent(LinkEventKind.DISCONNECTED, now))
        if self._closing:
            return
        logger.info("%s: link lost at %.2f s; reconnecting", self.name, now)
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        done = await retry_with_backoff(
            self._connect_once, clock=self.clock, backoff_s=self.backoff_s, closing=lambda: self._closing, name=self.name
        )
        if done is None:
            return
        status, attempts = done
        self.reconnects += 1
        self.events.put_nowait(
            LinkEvent(
                LinkEventKind.RECONNECTED, self.clock.now_s(), status=status, raw=self.status_raw,
                detail=f"after {attempts} attempt(s)",
            )
        )

    # --- notifications (only enqueue) ------------------------------------------------------------

    def _on_data(self, _char: "BleakGATTCharacteristic", data: bytearray) -> None:
        self.queue.put_nowait((self.clock.now_s(), bytes(data)))

    def _on_control(self, _char: "BleakGATTCharacteristic", data: bytearray) -> None:
        self._replies.put_nowait((self.clock.now_s(), bytes(data)))

    def _on_status(self, _char: "BleakGATTCharacteristic", data: bytearray) -> None:
        try:
            status = decode_status(data)
        except (PacketError, SensorError) as exc:
            logger.warning("%s: ignoring status notification: %s", self.name, exc)
            return
        self.status = status
        self.status_raw = bytes(data)
        self.battery_pct = status.battery_pct
        self.events.put_nowait(LinkEvent(LinkEventKind.STATUS, self.clock.now_s(), status=status, raw=self.status_raw))

    def _on_battery(self, _char: "BleakGATTCharacteristic", data: bytearray) -> None:
        if data:
            self.battery_pct = int(data[0])
            self.events.put_nowait(LinkEvent(LinkEventKind.BATTERY, self.clock.now_s(), battery_pct=self.battery_pct))

    # --- control -----------------------------------------------------------------------------------

    async def request(self, payload: bytes) -> TimedReply:
        """Write one control request and wait for its reply (one request at a time).

        Raises
        ------
        SensorError
            Not connected, the write failed, or no reply within ``reply_timeout_s``.
        """
        return await control_request(
            payload, lock=self._request_lock, replies=self._replies, connected=lambda: self.connected, send=self._write,
            clock=self.clock, reply_timeout_s=self.reply_timeout_s, name=self.name,
            no_reply=f"{self.name} did not answer control request 0x{{opcode:02x}} within {{timeout_s:g}} s",
        )

    async def _write(self, payload: bytes) -> None:
        from bleak.exc import BleakError

        try:
            await self._client.write_gatt_char(CONTROL_UUID, payload, response=True)
        except BleakError as exc:
            raise SensorError(f"control request 0x{payload[0]:02x} to {self.name} failed: {exc}") from exc

    async def read_status(self) -> SensorStatus:
        from bleak.exc import BleakError

        try:
            raw = await self._client.read_gatt_char(STATUS_UUID)
        except BleakError as exc:
            raise SensorError(f"cannot read the status of {self.name}: {exc}") from exc
        self.status = self._check_version(raw)
        self.status_raw = bytes(raw)
        return self.status

    async def start(self) -> int:
        """START streaming; returns the first sample index of packet 0."""
        timed = await self.request(start_request())
        if not timed.reply.ok:
            hint = " (BLE link MTU below 33: the adapter refused a larger MTU)" if timed.reply.status == 2 else ""
            raise SensorError(f"{self.name} refused START: {timed.reply.describe()}{hint}")
        return timed.reply.u32(0)

    async def stop(self) -> int:
        """STOP streaming; returns ``next_seq`` (packets 0..next_seq-1 were produced)."""
        timed = await self.request(stop_request())
        if not timed.reply.ok:
            raise SensorError(f"{self.name} refused STOP: {timed.reply.describe()}")
        return timed.reply.u32(0)

    async def time_sync(self, token: int) -> TimedReply:
        """TIME_SYNC: the reply's payload is ``(token, sensor_ticks_at_receipt)``."""
        timed = await self.request(time_sync_request(token))
        if not timed.reply.ok or timed.reply.u32(0) != token & 0xFFFFFFFF:
            raise SensorError(f"{self.name} answered TIME_SYNC badly: {timed.reply.describe()}")
        return timed

    async def resend(self, from_seq: int, to_seq: int) -> TimedReply:
        """RESEND ``from_seq..to_seq``; payload ``(first_available_seq, count_resent)``."""
        return await self.request(resend_request(from_seq, to_seq))

    async def set_leg(self, leg: Leg) -> None:
        timed = await self.request(set_leg_request(LEG_CODES[leg]))
        if not timed.reply.ok:
            raise SensorError(f"{self.name} refused SET_LEG: {timed.reply.describe()}")


# --- both legs ------------------------------------------------------------------------------------------


def _leg_of_code(code: int) -> Leg | None:
    return {code: leg for leg, code in LEG_CODES.items()}.get(code)


async def connect_legs(
    found: Sequence[FoundSensor],
    *,
    left: str | None = None,
    right: str | None = None,
    pelvis: str | None = None,
    clock: Clock | None = None,
    client_backend: "ClientBackend | None" = None,
    remember: bool = True,
    use_remembered: bool = True,
    config: Path | None = None,
    legs: Sequence[Leg] = (Leg.LEFT, Leg.RIGHT),
    link_factory: Callable[..., SensorLink] = SensorLink,
    **link_kwargs: Any,
) -> dict[Leg, SensorLink]:
    """Connect the sensors for ``legs`` concurrently and decide which is which.

    Order of authority: ``left``/``right`` addresses, the remembered config, the leg stored in each
    sensor. Explicit choices are written to the sensors (SET_LEG) and remembered (``remember``).
    A remembered sensor that is not advertising is skipped (the stored legs decide).

    Raises
    ------
    SensorError
        A requested sensor is not among ``found`` (out of range), legs cannot be decided, a sensor
        fails to connect or has the wrong version.
    """
    clock = clock or MonotonicClock()
    by_address = {s.address.upper(): s for s in found}
    explicit = {leg: addr.upper() for leg, addr in ((Leg.LEFT, left), (Leg.RIGHT, right), (Leg.PELVIS, pelvis)) if addr}
    remembered = load_assignment(config) if not explicit and use_remembered else {}
    wanted: dict[Leg, str] = {}
    for leg in legs:
        addr = explicit.get(leg)
        if addr is not None and addr not in by_address:
            seen = ", ".join(f"{s.name} {s.address}" for s in found) or "none"
            raise SensorError(
                f"{leg.value} sensor {addr} is not advertising (out of range or off?); sensors seen: {seen}"
            )
        if addr is None and remembered.get(leg) in by_address:
            addr = remembered[leg]
        if addr is not None:
            wanted[leg] = addr
    # Connect every candidate concurrently (the adapter serialises the connection set-up itself).
    candidates = list(wanted.values()) if len(wanted) == len(legs) else [s.address for s in found]
    links = {
        addr: link_factory(
            by_address[addr].device or addr,
            clock=clock,
            client_backend=client_backend,
            name=by_address[addr].name,
            **link_kwargs,
        )
        for addr in candidates
    }
    results = await asyncio.gather(*(link.open() for link in links.values()), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]

    async def close_all() -> None:
        await asyncio.gather(*(lk.close() for lk in links.values()), return_exceptions=True)

    if errors:
        await close_all()
        err = errors[0]
        if isinstance(err, SensorError):
            raise err
        raise SensorError(f"cannot connect the sensors: {err}") from err
    if len(wanted) < len(legs):
        for addr, link in links.items():
            stored = _leg_of_code(link.status.leg) if link.status else None
            if stored is not None and stored in legs and stored not in wanted and addr not in wanted.values():
                wanted[stored] = addr
    missing = [leg.value for leg in legs if leg not in wanted]
    if missing:
        await close_all()
        seen = ", ".join(f"{s.name} {s.address}" for s in found) or "none"
        raise SensorError(
            f"cannot tell which sensor is the {' and '.join(missing)} one (sensors seen: {seen}); "
            "pass --left ADDRESS --right ADDRESS once (it is remembered)"
        )
    chosen = {leg: links[addr] for leg, addr in wanted.items()}
    for addr, link in links.items():
        if link not in chosen.values():
            await link.close()
    if explicit:
        for leg, link in chosen.items():
            if link.status is not None and _leg_of_code(link.status.leg) is not leg:
                await link.set_leg(leg)
        if remember:
            save_assignment({leg: link.address for leg, link in chosen.items()}, config)
    return chosen
