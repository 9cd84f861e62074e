"""A bleak backend over bumble: the unchanged host code talks to virtual sensors.

bleak's front classes accept a ``backend=`` class (``BleakScanner(..., backend=...)``,
``BleakClient(..., backend=...)``). :class:`VirtualRadio` owns one bumble ``LocalLink`` (an
in-memory radio), the host's "adapter" (a bumble :class:`~bumble.device.Device` acting as GATT
central) and hands out scanner/client backend classes bound to it::

    radio = VirtualRadio()
    sensor = SensorPeripheral(firmware, radio.new_controller("legrep-1A2B"), ...)
    backends = radio.backends()
    async with BleakScanner(service_uuids=[SERVICE_UUID], backend=backends.scanner) as scanner: ...
    client = BleakClient(address, backend=backends.client)

Everything goes through bumble's real HCI host, L2CAP, ATT and GATT layers; only the radio is
an in-memory link. The host adapter can also be a controller in another process reached over an
HCI transport (``VirtualRadio(hci_spec="tcp-client:127.0.0.1:PORT")``), see
:func:`legrep_sim.peripheral.serve_tcp`.

Facts this module relies on (bleak 3.1, bumble 0.0.236):

* bumble's virtual controller accepts ``LE Create Connection Cancel`` but does nothing, so a
  connection attempt to an absent device would wait forever. :class:`CancellableController`
  implements the cancel as the Core spec says (Vol 4, Part E, 7.8.13: the pending connection
  completes with status 0x02 Unknown Connection Identifier), so bumble's own connect timeout works.
* The virtual controller's scan response repeats the advertising payload; the scanner merges both.
* A link lost while a GATT request is pending surfaces as ``CancelledError`` inside bumble; the
  client turns it into a :class:`bleak.exc.BleakError`.
* Notifications are truncated to ATT_MTU - 3 bytes, so :meth:`BumbleClient.connect` exchanges an
  ATT MTU of 247 (the largest that fits one LE data PDU of 251 bytes, Core spec Vol 6, Part B, 2.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid as uuid_lib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.att import ATT_Error
from bumble.controller import Controller
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt import Characteristic
from bumble.gatt_client import CharacteristicProxy, DescriptorProxy, ServiceProxy
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

logger = logging.getLogger(__name__)

T = TypeVar("T")

REQUESTED_MTU = 247
"""ATT MTU the client asks for: 251-byte LE data PDU minus the 4-byte L2CAP header (Core Vol 6 B 2.4)."""
HOST_ADDRESS = "F0:F0:F0:F0:F0:F0"

_PROPERTY_NAMES: tuple[tuple[Characteristic.Properties, str], ...] = (
    (Characteristic.Properties.BROADCAST, "broadcast"),
    (Characteristic.Properties.READ, "read"),
    (Characteristic.Properties.WRITE_WITHOUT_RESPONSE, "write-without-response"),
    (Characteristic.Properties.WRITE, "write"),
    (Characteristic.Properties.NOTIFY, "notify"),
    (Characteristic.Properties.INDICATE, "indicate"),
    (Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES, "authenticated-signed-writes"),
    (Characteristic.Properties.EXTENDED_PROPERTIES, "extended-properties"),
)


def bleak_uuid(value: core.UUID) -> str:
    """bumble UUID (little-endian inside) -> bleak's lower-case 128-bit string."""
    return str(uuid_lib.UUID(bytes=value.uuid_128_bytes[::-1]))


# bumble (0.0.236) logs every HCI packet its virtual controller and host pass with
# ``logger.debug(f"... {packet}")``: the f-string (the packet's __str__ and colour codes) is built
# before logging looks at the level, a quarter of a simulated session's CPU time. The two classes
# below pass packets on without building it unless bumble's debug logging is on
# (BUMBLE_LOGLEVEL=DEBUG), when they behave exactly as bumble's own.
_CONTROLLER_LOG = logging.getLogger("bumble.controller")
_HOST_LOG = logging.getLogger("bumble.host")


class QuietHost(Host):
    """bumble's ``Host``; HCI packets are not formatted for a debug line that is not logged."""

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if self.snooper or _HOST_LOG.isEnabledFor(logging.DEBUG):
            super().on_hci_packet(packet)
        elif isinstance(packet, hci.HCI_Event):
            self.on_hci_event_packet(packet)
        elif isinstance(packet, hci.HCI_AclDataPacket):
            self.on_hci_acl_data_packet(packet)
        else:  # commands, SCO and ISO data: rare here, bumble's own path
            super().on_hci_packet(packet)

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if self.snooper or _HOST_LOG.isEnabledFor(logging.DEBUG) or not self.hci_sink:
            super().send_hci_packet(packet)
        else:
            self.hci_sink.on_packet(bytes(packet))


_GATT_SERVER_LOG = logging.getLogger("bumble.gatt_server")
_GATT_CLIENT_LOG = logging.getLogger("bumble.gatt_client")


class QuietDevice(Device):
    """bumble's ``Device``; an ATT notification, sent or received, is not formatted for a debug line
    that is not logged (bumble's GATT server and client build ``f"... {pdu}"`` for every one: a
    sixth of a simulated session's CPU time). Everything else, and everything while bumble's GATT
    debug logging is on, takes bumble's own path.

    Sending (:meth:`notify_subscriber` with a value, on the connection itself): the same checks and
    bytes as bumble's ``Server._notify_single_subscriber`` (a subscriber whose CCCD enables
    notifications, the value encoded and cut to ATT_MTU - 3 bytes), for a link without enhanced ATT
    bearers (none here). Receiving: a notification PDU goes to the connection's GATT client's
    ``on_att_handle_value_notification``, the handler bumble's ``Client.on_gatt_pdu`` picks for it.
    """

    async def notify_subscriber(self, connection: Any, attribute: Any, value: Any = None, force: bool = False) -> None:
        if (
            value is None
            or force
            or _GATT_SERVER_LOG.isEnabledFor(logging.DEBUG)
            or att.is_enhanced_bearer(connection)
            or self.l2cap_channel_manager.le_coc_channels.get(connection.handle)
        ):
            await super().notify_subscriber(connection, attribute, value, force)
            return
        server = self.gatt_server
        cccd = server.subscribers.get(connection, {}).get(attribute.handle)
        if not cccd or len(cccd) != 2 or not cccd[0] & 0x01:
            return
        payload = attribute.encode_value(value)[: connection.att_mtu - 3]
        pdu = att.ATT_Handle_Value_Notification(attribute_handle=attribute.handle, attribute_value=payload)
        server.send_gatt_pdu(connection, bytes(pdu))

    def on_gatt_pdu(self, connection_handle: int, pdu: bytes) -> None:  # type: ignore[override]
        if pdu[:1] == bytes([att.Opcode.ATT_HANDLE_VALUE_NOTIFICATION]) and not _GATT_CLIENT_LOG.isEnabledFor(logging.DEBUG):
            connection = self.lookup_connection(connection_handle)
            if connection is not None and connection.gatt_client is not None:
                notification = cast(att.ATT_Handle_Value_Notification, att.ATT_PDU.from_bytes(pdu))  # (the class of its op code)
                connection.gatt_client.on_att_handle_value_notification(notification)
                return
        super().on_gatt_pdu(connection_handle, pdu)


class CancellableController(Controller):
    """bumble's virtual controller with a working ``LE Create Connection Cancel``.

    Core spec Vol 4, Part E, 7.8.13: after the command completes, the pending connection ends
    with an LE Connection Complete event whose status is 0x02 (Unknown Connection Identifier).
    HCI packets are not formatted for a debug line that is not logged (see :class:`QuietHost`).

    Its LE ACL buffers take 251-byte packets, as a controller with LE Data Length Extension
    (Bluetooth 4.2 and later: phones, nRF52-class sensors) reports them: an ATT notification
    (ATT_MTU 247 plus the 4-byte L2CAP header, one LE data PDU of 251 bytes, Core spec Vol 6,
    Part B, 2.4) crosses as one ACL packet, not as up to ten 27-byte fragments (bumble's default).
    The ATT payloads, so the bytes the host decodes, are the same.
    """

    le_acl_data_packet_length = 251
    """Reported by LE Read Buffer Size (Core spec Vol 4, Part E, 7.8.2)."""

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if _CONTROLLER_LOG.isEnabledFor(logging.DEBUG):
            super().on_hci_packet(packet)
        elif isinstance(packet, hci.HCI_AclDataPacket):
            self.on_hci_acl_data_packet(packet)
        elif isinstance(packet, hci.HCI_Command):
            self.on_hci_command_packet(packet)
        else:
            super().on_hci_packet(packet)

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if _CONTROLLER_LOG.isEnabledFor(logging.DEBUG) or not self.host:
            super().send_hci_packet(packet)
        else:
            asyncio.get_running_loop().call_soon(self.host.on_packet, bytes(packet))

    def on_hci_le_create_connection_cancel_command(self, _command: Any) -> Any:
        pending = self.pending_le_connection
        if pending is not None:
            self.pending_le_connection = None
            event = hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=pending.peer_address.address_type,
                peer_address=pending.peer_address,
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            )
            # after the Command Complete that the caller sends for our return value
            asyncio.get_running_loop().call_soon(self.send_hci_packet, event)
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)


@dataclass(frozen=True, slots=True)
class BleakBackends:
    """The two backend classes bleak's front classes accept as ``backend=``."""

    scanner: type[BaseBleakScanner]
    client: type[BaseBleakClient]


class VirtualRadio:
    """An in-memory BLE radio: virtual sensors and the host's adapter on one bumble ``LocalLink``.

    Parameters
    ----------
    hci_spec : str, optional
        Use a controller reached through this bumble transport spec as the host adapter
        (e.g. ``"tcp-client:127.0.0.1:9999"``, served by :func:`legrep_sim.peripheral.serve_tcp`)
        instead of a controller in this process.
    """

    def __init__(self, hci_spec: str | None = None) -> None:
        self.link = LocalLink()  # type: ignore[no-untyped-call]  # bumble leaves it unannotated
        self._hci_spec = hci_spec
        self._central: Device | None = None
        self._central_lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        self._transport: Any = None
        self._backends: BleakBackends | None = None
        self.gatt_cache: dict[str, list[Any]] = {}
        """GATT database per peer address, as an OS caches it (reconnections skip discovery)."""

    def new_controller(self, name: str) -> Controller:
        """A fresh virtual controller on this radio (for a sensor or any other device)."""
        return CancellableController(name, link=self.link)

    async def central(self) -> Device:
        """The host adapter (powered on at first use)."""
        async with self._central_lock:
            if self._central is None:
                if self._hci_spec is None:
                    controller = self.new_controller("host")
                    host = QuietHost(controller, AsyncPipeSink(controller))
                else:
                    from bumble.transport import open_transport

                    try:
                        self._transport = await open_transport(self._hci_spec)
                    except (OSError, core.BaseBumbleError) as exc:
                        raise BleakError(f"no Bluetooth adapter at {self._hci_spec!r}: {exc}") from exc
                    host = QuietHost(self._transport.source, self._transport.sink)
                device = QuietDevice(name="legrep-host", address=hci.Address(HOST_ADDRESS), host=host)
                await device.power_on()
                self._central = device
            return self._central

    @contextlib.asynccontextmanager
    async def connecting(self) -> Any:
        """bumble allows one pending LE connection per device: connects take turns."""
        async with self._connect_lock:
            yield

    def backends(self) -> BleakBackends:
        """Scanner and client backend classes bound to this radio."""
        if self._backends is None:
            radio = self
            scanner = type("BumbleScanner", (BumbleScanner,), {"radio": radio})
            client = type("BumbleClient", (BumbleClient,), {"radio": radio})
            self._backends = BleakBackends(scanner=scanner, client=client)
        return self._backends

    async def close(self) -> None:
        """Disconnect the adapter's links and close an HCI transport if one was opened."""
        central, self._central = self._central, None
        if central is not None:
            for connection in list(central.connections.values()):
                with contextlib.suppress(Exception):
                    await connection.disconnect()
        if self._transport is not None:
            with contextlib.suppress(Exception):
                await self._transport.close()
            self._transport = None


def _snapshot(peer: Peer) -> list[Any]:
    """The discovered GATT database as plain tuples (handles, UUIDs, properties)."""
    return [
        (
            service.handle,
            service.end_group_handle,
            service.uuid,
            [
                (c.handle, c.end_group_handle, c.uuid, int(c.properties), [(d.handle, d.type) for d in c.descriptors])
                for c in service.characteristics
            ],
        )
        for service in peer.services
    ]


def _restore(peer: Peer, snapshot: list[Any]) -> None:
    """Rebuild a peer's proxies from a snapshot instead of discovering them again."""
    client = peer.gatt_client
    client.services = []
    for handle, end, uuid, characteristics in snapshot:
        service = ServiceProxy(client, handle, end, uuid)  # type: ignore[no-untyped-call]  # bumble leaves it unannotated
        for c_handle, c_end, c_uuid, props, descriptors in characteristics:
            characteristic: CharacteristicProxy[bytes] = CharacteristicProxy(client, c_handle, c_end, c_uuid, props)
            characteristic.descriptors = [DescriptorProxy(client, d_handle, d_type) for d_handle, d_type in descriptors]
            characteristic.descriptors_discovered = True
            service.characteristics.append(characteristic)
        client.services.append(service)


class BumbleScanner(BaseBleakScanner):
    """bleak scanner backend over a :class:`VirtualRadio`'s adapter (bound by ``radio.backends()``)."""

    radio: VirtualRadio

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._active = scanning_mode != "passive"
        self._device: Device | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        device = await self.radio.central()
        self._device = device
        device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        await device.start_scanning(active=self._active, filter_duplicates=False)

    async def stop(self) -> None:
        device, self._device = self._device, None
        if device is None:
            return
        device.remove_listener(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        with contextlib.suppress(Exception):
            await device.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        try:
            self._take_advertisement(advertisement)
        except Exception:  # a malformed advertisement must not break the HCI host
            logger.exception("ignoring an advertisement from %s", advertisement.address)

    def _take_advertisement(self, advertisement: Advertisement) -> None:
        data = advertisement.data
        name_bytes = data.get(core.AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
            core.AdvertisingData.SHORTENED_LOCAL_NAME
        )
        name = name_bytes if isinstance(name_bytes, str) else None
        if isinstance(name_bytes, (bytes, bytearray)):
            name = name_bytes.decode("utf-8", "replace")
        uuids: list[str] = []
        for ad_type in (
            core.AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            core.AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            core.AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            core.AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        ):
            for item in data.get_all(ad_type):
                for u in item if isinstance(item, list) else [item]:
                    if isinstance(u, core.UUID):
                        uuids.append(bleak_uuid(u))
        manufacturer: dict[int, bytes] = {}
        for entry in data.get_all(core.AdvertisingData.MANUFACTURER_SPECIFIC_DATA):
            if isinstance(entry, tuple) and len(entry) == 2:
                manufacturer[int(entry[0])] = bytes(entry[1])
        tx_power = data.get(core.AdvertisingData.TX_POWER_LEVEL)
        adv = AdvertisementData(
            local_name=name,
            manufacturer_data=manufacturer,
            service_data={},
            service_uuids=sorted(set(uuids)),
            tx_power=tx_power if isinstance(tx_power, int) else None,
            rssi=int(advertisement.rssi),
            platform_data=(advertisement,),
        )
        if not self.is_allowed_uuid(adv.service_uuids):
            return
        address = str(advertisement.address)
        device = self.create_or_update_device(address, address, name, advertisement.address, adv)
        self.call_detection_callbacks(device, adv)


class BumbleClient(BaseBleakClient):
    """bleak client backend over a :class:`VirtualRadio`'s adapter (bound by ``radio.backends()``)."""

    radio: VirtualRadio

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._name = (
            address_or_ble_device.name
            if isinstance(address_or_ble_device, BLEDevice) and address_or_ble_device.name
            else self.address.replace(":", "-")
        )
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    # --- connection -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def mtu_size(self) -> int:
        return int(self._connection.att_mtu) if self._connection is not None else 23

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        if self._connection is not None:
            return
        timeout = float(kwargs.get("timeout", self._timeout))
        device = await self.radio.central()
        try:
            address = hci.Address(self.address)
        except (core.InvalidArgumentError, ValueError) as exc:
            raise BleakError(f"expected a Bluetooth address like 'F1:00:00:00:00:01', got {self.address!r}") from exc
        async with self.radio.connecting():
            try:
                connection = await device.connect(address, timeout=timeout)
            except core.TimeoutError as exc:
                raise TimeoutError(f"no connection to {self.address} within {timeout:g} s") from exc
            except core.ConnectionError as exc:
                raise BleakError(f"connection to {self.address} failed: {exc}") from exc
            except asyncio.CancelledError:
                # The caller gave up (e.g. closed a reconnecting link): withdraw the pending
                # connection at the controller, or the adapter stays busy with it.
                with contextlib.suppress(Exception):
                    await asyncio.shield(device.send_sync_command(hci.HCI_LE_Create_Connection_Cancel_Command()))
                raise
        self._connection = connection
        connection.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            peer = Peer(connection)
            self._peer = peer
            await self._gatt(peer.request_mtu(REQUESTED_MTU))
            cached = self.radio.gatt_cache.get(self.address)
            if cached is None:
                await self._gatt(peer.discover_all())  # type: ignore[no-untyped-call]  # bumble leaves it unannotated
                self.radio.gatt_cache[self.address] = _snapshot(peer)
            else:
                _restore(peer, cached)
            self.services = self._build_services(peer)
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.disconnect()
            self._forget()
            raise

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_gone(*_: Any) -> None:
            if not done.done():
                done.set_result(None)

        connection.once(Connection.EVENT_DISCONNECTION, on_gone)
        with contextlib.suppress(Exception):
            await connection.disconnect()
            await asyncio.wait_for(done, 5.0)
        if self._connection is connection:  # the event did not arrive: forget anyway
            self._on_disconnection(hci.HCI_ErrorCode.CONNECTION_TERMINATED_BY_LOCAL_HOST_ERROR)

    def _on_disconnection(self, reason: int) -> None:
        if self._connection is None:
            return
        logger.debug("%s: disconnected (reason 0x%02x)", self.address, reason)
        self._forget()
        callback = self._disconnected_callback
        if callback is not None:
            asyncio.get_running_loop().call_soon(callback)

    def _forget(self) -> None:
        self._connection = None
        self._peer = None
        self._subscribers.clear()
        self.services = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("pairing is not supported by the bumble virtual backend")

    async def unpair(self) -> None:
        raise NotImplementedError("pairing is not supported by the bumble virtual backend")

    # --- GATT -------------------------------------------------------------------------------

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError(f"not connected to {self.address}")
        return self._peer

    async def _gatt(self, awaitable: Awaitable[T]) -> T:
        """Run a bumble GATT request, turning link loss and ATT errors into bleak errors."""
        try:
            return await awaitable
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # we were cancelled from outside: let it through
            raise BleakError(f"link to {self.address} lost during a GATT request") from None
        except ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from exc
        except core.BaseBumbleError as exc:
            raise BleakError(f"GATT request to {self.address} failed: {exc}") from exc

    def _build_services(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in peer.services:
            bleak_service = BleakGATTService(service, service.handle, bleak_uuid(service.uuid))
            collection.add_service(bleak_service)
            for characteristic in service.characteristics:
                props = [name for flag, name in _PROPERTY_NAMES if characteristic.properties & flag]
                bleak_char = BleakGATTCharacteristic(
                    characteristic,
                    characteristic.handle,
                    bleak_uuid(characteristic.uuid),
                    props,  # type: ignore[arg-type]
                    lambda: self.mtu_size - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for descriptor in characteristic.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(descriptor, descriptor.handle, bleak_uuid(descriptor.type), bleak_char)
                    )
        return collection

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        return bytearray(await self._gatt(peer.read_value(proxy)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        proxy: DescriptorProxy = descriptor.obj
        return bytearray(await self._gatt(peer.read_value(proxy)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        peer = self._require_peer()
        await self._gatt(peer.write_value(characteristic.obj, bytes(data), with_response=response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: SizedBuffer) -> None:
        peer = self._require_peer()
        await self._gatt(peer.write_value(descriptor.obj, bytes(data), with_response=True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        self._require_peer()
        proxy: CharacteristicProxy[bytes] = characteristic.obj

        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        old = self._subscribers.pop(characteristic.handle, None)
        if old is not None:
            with contextlib.suppress(Exception):
                await self._gatt(proxy.unsubscribe(old))
        self._subscribers[characteristic.handle] = on_value
        await self._gatt(proxy.subscribe(on_value, prefer_notify=True))

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._require_peer()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        subscriber = self._subscribers.pop(characteristic.handle, None)
        await self._gatt(proxy.unsubscribe(subscriber))
