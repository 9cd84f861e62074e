"""The BLE link end to end: host code on bleak, a bleak backend over bumble, virtual sensors
running the firmware model behind bumble's GATT server on an in-memory radio. No mocks: every
request goes through bumble's HCI, L2CAP, ATT and GATT layers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from bumble.core import UUID, AdvertisingData
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink

from legrep_sim import protocol as proto
from legrep_sim import virtual_time
from legrep_sim.firmware import FirmwareConfig, SensorFirmware, still_source
from legrep_sim.peripheral import SimClock, advertising_data, start_sensors
from legrep_sim.virtual_ble import REQUESTED_MTU, VirtualRadio
from legrep.errors import SensorError
from legrep.model import Leg
from legrep.packets import decode_imu_packet
from legrep.transport.ble import SensorLink, connect_legs, load_assignment, scan_sensors

SPEED = 1.0  # virtual time: the clock jumps, so no speed-up is needed


def run(coro):
    """Run on a virtual-time loop: sensors and host share its clock, nothing waits in wall time."""
    return virtual_time.run(coro)


async def _sensors(radio: VirtualRadio, clock: SimClock, *, rate_hz: int = 100, fw=None, legs=(1, 2), serials=("1A2B", "3C4D")):
    firmwares = []
    for leg, serial in zip(legs, serials):
        extra = {"fw_version": fw} if fw is not None else {}
        firmwares.append(SensorFirmware(still_source(), FirmwareConfig(serial=serial, rate_hz=rate_hz, leg=leg, **extra)))
    return await start_sensors(radio, firmwares, list(serials), clock)


async def _stop(sensors, links=()):
    for link in links:
        await link.close()
    for s in sensors:
        await s.stop()


def test_advertising_data_carries_name_and_uuid_within_31_bytes() -> None:
    data = advertising_data("legrep-1A2B")
    assert len(data) <= 31
    ad = AdvertisingData.from_bytes(data)
    assert ad.get(AdvertisingData.COMPLETE_LOCAL_NAME) == "legrep-1A2B"
    assert ad.get(AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS) == [UUID(proto.SERVICE_UUID)]


def test_scan_finds_two_sensors_by_service_uuid_and_ignores_others() -> None:
    async def main():
        radio = VirtualRadio()
        clock = SimClock(SPEED)
        sensors = await _sensors(radio, clock)
        # A third device advertising something else must not be reported.
        other = Device(name="kettle", address=Address("F2:00:00:00:00:01"), host=Host(c := radio.new_controller("kettle"), AsyncPipeSink(c)))
        await other.power_on()
        await other.start_advertising(
            advertising_data=bytes(AdvertisingData([(AdvertisingData.COMPLETE_LOCAL_NAME, b"kettle")])),
            advertising_interval_min=20,
            advertising_interval_max=20,
        )
        try:
            found = await scan_sensors(3.0, scanner_backend=radio.backends().scanner, clock=clock)
        finally:
            await other.stop_advertising()
            await _stop(sensors)
        return found

    found = run(main())
    assert [f.name for f in found] == ["legrep-1A2B", "legrep-3C4D"]
    assert all(f.address.startswith("F1:E6") for f in found)


def test_connect_negotiates_mtu_247_and_gets_full_size_packets() -> None:
    async def main():
        radio = VirtualRadio()
        clock = SimClock(SPEED)
        sensors = await _sensors(radio, clock, rate_hz=200)
        found = await scan_sensors(3.0, scanner_backend=radio.backends().scanner, clock=clock, min_count=2)
        link = SensorLink(found[0].device, clock=clock, client_backend=radio.backends().client, name=found[0].name)
        status = await link.open()
        mtu = link._client.mtu_size
        # standard services on the same peripheral
        fw_rev = await link._client.read_gatt_char("00002a26-0000-1000-8000-00805f9b34fb")
        serial = await link._client.read_gatt_char("00002a25-0000-1000-8000-00805f9b34fb")
        battery = await link._client.read_gatt_char("00002a19-0000-1000-8000-00805f9b34fb")
        first = await link.start()
        await clock.sleep(2.0)
        items = []
        while not link.queue.empty():
            items.append(link.queue.get_nowait())
        await _stop(sensors, [link])
        return status, mtu, fw_rev, serial, battery, first, items

    status, mtu, fw_rev, serial, battery, first, items = run(main())
    assert mtu == REQUESTED_MTU == 247
    assert (status.rate_hz, status.protocol_version, status.fw_version) == (200, 1, (1, 0, 0))
    assert bytes(fw_rev) == b"1.0.0" and bytes(serial) == b"1A2B" and battery[0] == status.battery_pct
    # 200 Hz, MTU 247: n = min(32, (247 - 3 - 18) // 12, 200 // 10) = 18 samples, 234 bytes
    assert len(items) >= 15, f"expected ~22 packets in 2 s, got {len(items)}"
    packets = [decode_imu_packet(data) for _, data in items]
    assert all(len(data) == 18 + 12 * 18 for _, data in items)
    assert [p.seq for p in packets] == list(range(len(packets)))
    assert packets[0].first_sample_index == first
    arrivals = [t for t, _ in items]
    assert arrivals == sorted(arrivals)


def test_connect_to_absent_address_times_out_with_one_clear_line() -> None:
    async def main():
        radio = VirtualRadio()
        clock = SimClock(SPEED)
        link = SensorLink("F1:E6:00:00:99:99", clock=clock, client_backend=radio.backends().client, connect_timeout_s=3.0)
        t0 = clock.now_s()
        with pytest.raises(SensorError) as err:
            await link.open()
        waited_s = clock.now_s() - t0  # on the shared virtual clock, not the wall's
        # after the timeout the adapter can connect elsewhere (the pending connection was cancelled)
        sensors = await _sensors(radio, clock, legs=(1,), serials=("1A2B",))
        ok = SensorLink("F1:E6:00:00:1A:2B", clock=clock, client_backend=radio.backends().client)
        status = await ok.open()
        await _stop(sensors, [ok])
        return str(err.value), waited_s, status

    message, waited_s, status = run(main())
    assert "F1:E6:00:00:99:99" in message and "did not answer within 3 s" in message and "out of range" in message
    assert "\n" not in message
    assert 3.0 <= waited_s < 3.5  # it gave up at the timeout, not before, not long after
    assert status.leg == 1


def test_wrong_firmware_version_is_refused() -> None:
    async def main():
        radio = VirtualRadio()
        clock = SimClock(SPEED)
        sensors = await _sensors(radio, clock, fw=(2, 0, 0))
        found = await scan_sensors(3.0, scanner_backend=radio.backends().scanner, clock=clock, min_count=2)
        with pytest.raises(SensorError) as err:
            await connect_legs(found, clock=clock, client_backend=radio.backends().client, remember=False, use_remembered=False)
        await _stop(sensors)
        return str(err.value)

    message = run(main())
    assert "firmware 2.0.0" in message and "1.x" in message and "\n" not in message


def test_sim_fault_drop_link_disconnects_and_the_link_comes_back(tmp_path: Path) -> None:
    async def main():
        radio = VirtualRadio()
        clock = SimClock(SPEED)
        sensors = await _sensors(radio, clock)
        found = await scan_sensors(3.0, scanner_backend=radio.backends().scanner, clock=clock, min_count=2)
        links = await connect_legs(found, clock=clock, client_backend=radio.backends().client, remember=False, use_remembered=False)
        left = links[Leg.LEFT]
        await left.start()
        timed = await left.request(bytes([proto.Opcode.SIM_FAULT, proto.FaultKind.DROP_LINK]) + (100).to_bytes(4, "little"))
        kinds = []
        t_end = clock.now_s() + 10.0
        while clock.now_s() < t_end and "reconnected" not in kinds:
            try:
                ev = await asyncio.wait_for(left.events.get(), 0.2)
                kinds.append(ev.kind)
            except asyncio.TimeoutError:
                pass
        status = left.status
        drops = sensors[0].disconnections
        await _stop(sensors, links.values())
        return timed, kinds, status, drops

    timed, kinds, status, drops = run(main())
    assert timed.reply.ok
    assert kinds[0] == "connected" and "disconnected" in kinds and kinds[-1] == "reconnected"
    assert drops == 1
    assert status is not None and status.streaming  # streaming went on while the link was down


def test_legs_from_stored_leg_then_explicit_assignment_is_written_and_remembered(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "sensors.json"
    monkeypatch.setenv("LEGREP_CONFIG", str(config))

    async def main():
        radio = VirtualRadio()
        clock = SimClock(SPEED)
        sensors = await _sensors(radio, clock, legs=(2, 1))  # 1A2B says right, 3C4D says left
        be = radio.backends()
        found = await scan_sensors(3.0, scanner_backend=be.scanner, clock=clock, min_count=2)
        stored = await connect_legs(found, clock=clock, client_backend=be.client)
        by_stored = {leg: link.name for leg, link in stored.items()}
        for link in stored.values():
            await link.close()
        # the person swaps them: explicit addresses win, are written to the sensors and remembered
        swapped = await connect_legs(found, left=found[0].address, right=found[1].address, clock=clock, client_backend=be.client)
        by_explicit = {leg: link.name for leg, link in swapped.items()}
        flash = [s.firmware.leg for s in sensors]
        for link in swapped.values():
            await link.close()
        again = await connect_legs(found, clock=clock, client_backend=be.client)
        by_remembered = {leg: link.name for leg, link in again.items()}
        await _stop(sensors, again.values())
        return by_stored, by_explicit, flash, by_remembered

    by_stored, by_explicit, flash, by_remembered = run(main())
    assert by_stored == {Leg.LEFT: "legrep-3C4D", Leg.RIGHT: "legrep-1A2B"}
    assert by_explicit == {Leg.LEFT: "legrep-1A2B", Leg.RIGHT: "legrep-3C4D"}
    assert flash == [1, 2]
    assert by_remembered == by_explicit
    assert load_assignment() == {Leg.LEFT: "F1:E6:00:00:1A:2B", Leg.RIGHT: "F1:E6:00:00:3C:4D"}
    assert json.loads(config.read_text())["legs"]["left"] == "F1:E6:00:00:1A:2B"


def test_unknown_legs_ask_for_an_explicit_assignment() -> None:
    async def main():
        radio = VirtualRadio()
        clock = SimClock(SPEED)
        sensors = await _sensors(radio, clock, legs=(0, 0))
        found = await scan_sensors(3.0, scanner_backend=radio.backends().scanner, clock=clock, min_count=2)
        with pytest.raises(SensorError) as err:
            await connect_legs(found, clock=clock, client_backend=radio.backends().client, remember=False, use_remembered=False)
        await _stop(sensors)
        return str(err.value)

    message = run(main())
    assert "--left ADDRESS --right ADDRESS" in message and "legrep-1A2B" in message


def test_status_notification_on_change_reaches_the_host() -> None:
    async def main():
        radio = VirtualRadio()
        clock = SimClock(SPEED)
        sensors = await _sensors(radio, clock, legs=(1,), serials=("1A2B",))
        found = await scan_sensors(3.0, scanner_backend=radio.backends().scanner, clock=clock, min_count=1)
        link = SensorLink(found[0].device, clock=clock, client_backend=radio.backends().client)
        await link.open()
        sensors[0].firmware.set_battery(42)
        t_end = clock.now_s() + 3.0
        got = []
        while clock.now_s() < t_end and not any(e.kind == "battery" for e in got):
            try:
                got.append(await asyncio.wait_for(link.events.get(), 0.2))
            except asyncio.TimeoutError:
                pass
        await _stop(sensors, [link])
        return got, link.battery_pct

    events, battery = run(main())
    assert battery == 42
    assert any(e.kind == "status" and e.status is not None and e.status.battery_pct == 42 for e in events)
    assert np.isfinite(battery)


def test_sensors_in_another_stack_reached_over_a_tcp_hci_transport(capsys) -> None:
    """The simulator can expose its radio as an HCI controller on loopback TCP: the host uses it as
    its adapter through bumble's tcp-client transport (here both ends in one process)."""
    import socket

    from legrep_sim.peripheral import serve_tcp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main():
        clock = SimClock(1.0)
        firmwares = [SensorFirmware(still_source(), FirmwareConfig(serial=x, leg=i + 1)) for i, x in enumerate(("0B11", "0B12"))]
        ready = asyncio.Event()
        server = asyncio.create_task(serve_tcp(port, firmwares, ["0B11", "0B12"], clock, ready=lambda _p: ready.set()))
        await asyncio.wait_for(ready.wait(), 10)
        radio = VirtualRadio(hci_spec=f"tcp-client:127.0.0.1:{port}")
        try:
            found = await scan_sensors(2.0, scanner_backend=radio.backends().scanner, min_count=2)
            links = await connect_legs(found, client_backend=radio.backends().client, remember=False, use_remembered=False)
            first = await links[Leg.RIGHT].start()
            arrival, data = await asyncio.wait_for(links[Leg.RIGHT].queue.get(), 5)
            for link in links.values():
                await link.close()
        finally:
            await radio.close()
            server.cancel()
            with __import__("contextlib").suppress(asyncio.CancelledError):
                await server
        return found, first, data

    found, first, data = asyncio.run(asyncio.wait_for(main(), 40))  # real TCP sockets: wall time
    assert [f.name for f in found] == ["legrep-0B11", "legrep-0B12"]
    packet = decode_imu_packet(data)
    assert packet.seq == 0 and packet.first_sample_index == first and packet.n == 10  # 100 Hz: n = rate / 10


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_errors_are_one_line_no_adapter_and_no_sensor(capsys) -> None:
    """``legrep scan`` / ``capture`` through main(argv): an adapter that is not there, and an
    adapter (the simulator's radio in another thread, over TCP) with no sensor in range."""
    import threading

    from legrep_sim.peripheral import serve_tcp
    from legrep.cli import main

    closed = _free_port()
    assert main(["scan", "--timeout", "1", "--hci", f"tcp-client:127.0.0.1:{closed}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no Bluetooth adapter" in err[0], err

    port = _free_port()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    task_box = {}

    def serve() -> None:
        asyncio.set_event_loop(loop)
        task_box["task"] = loop.create_task(serve_tcp(port, [], [], SimClock(1.0), ready=lambda _p: ready.set()))
        with __import__("contextlib").suppress(asyncio.CancelledError):
            loop.run_until_complete(task_box["task"])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        # (an empty radio: a short scan finds nothing as surely as a long one)
        assert main(["scan", "--timeout", "0.3", "--hci", f"tcp-client:127.0.0.1:{port}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no legrep sensor found within 0.3 s" in err[0], err
    finally:
        loop.call_soon_threadsafe(task_box["task"].cancel)
        thread.join(10)


def test_link_lost_during_a_gatt_request_is_a_bleak_error() -> None:
    from bleak.exc import BleakError

    async def main():
        radio = VirtualRadio()
        clock = SimClock(SPEED)
        sensors = await _sensors(radio, clock, legs=(1,), serials=("1A2B",))
        sensor = sensors[0]
        found = await scan_sensors(3.0, scanner_backend=radio.backends().scanner, clock=clock, min_count=1)
        link = SensorLink(found[0].device, clock=clock, client_backend=radio.backends().client)
        await link.open()
        entered = asyncio.Event()

        async def slow_status(_connection):  # the sensor takes its time to answer a read...
            entered.set()
            await asyncio.sleep(0.5)
            return sensor.firmware.status()

        sensor.status_char.value._read = slow_status
        read = asyncio.create_task(link._client.read_gatt_char(proto.STATUS_UUID))
        await entered.wait()
        await sensor.connection.disconnect()  # ...and the link drops meanwhile
        with pytest.raises(BleakError) as err:
            await read
        link._closing = True
        await _stop(sensors, [link])
        return str(err.value)

    message = run(main())
    assert message == "link to F1:E6:00:00:1A:2B lost during a GATT request", message


def test_closing_a_link_while_it_reconnects_leaves_the_adapter_usable() -> None:
    async def main():
        radio = VirtualRadio()
        clock = SimClock(SPEED)
        sensors = await _sensors(radio, clock)
        be = radio.backends()
        found = await scan_sensors(3.0, scanner_backend=be.scanner, clock=clock, min_count=2)
        links = await connect_legs(found, clock=clock, client_backend=be.client, remember=False, use_remembered=False)
        left, right = links[Leg.LEFT], links[Leg.RIGHT]
        sensors[0].schedule_outage(clock.now_s(), 60.0)  # left goes out of range for a minute
        while left.connected:
            await clock.sleep(0.05)
        await clock.sleep(1.0)  # its reconnection attempt is now pending at the adapter
        await left.close()
        # the right sensor drops too and must still get back in through the same adapter
        sensors[1].schedule_outage(clock.now_s(), 0.5)
        kinds = []
        t_end = clock.now_s() + 10.0
        while clock.now_s() < t_end and "reconnected" not in kinds:
            try:
                kinds.append((await asyncio.wait_for(right.events.get(), 0.2)).kind)
            except asyncio.TimeoutError:
                pass
        await _stop(sensors, [right])
        return kinds

    kinds = run(main())
    assert "disconnected" in kinds and kinds[-1] == "reconnected"
