"""Wired legrep sensors over a serial port (pyserial): SLIP frames with a channel byte, on the event loop.

:class:`SerialLink` has the surface of :class:`legrep.transport.ble.SensorLink` (``queue`` of
``(arrival_s, IMU packet)``, ``events``, ``request``, ``status_raw``, reconnection after a loss), so
one legrep driver (:class:`legrep.drivers.legrep.LegrepDriver`) and one session loop serve BLE and
serial alike. The port is read on the event loop (``loop.add_reader`` on its file descriptor): no
thread, and time comes from the injected :class:`~legrep.transport.common.Clock`, so a test on a
virtual clock runs a wired session without waiting in wall time. Framing is pyserial's
``Packetizer`` idea: :class:`legrep.packets.SlipDeframer` cuts frames, :meth:`SerialLink._on_frame`
handles them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from typing import Any

from ..errors import PacketError, SensorError
from ..packets import (
    Channel,
    SensorStatus,
    SlipDeframer,
    decode_status,
    get_status_request,
    slip_frame,
    split_serial_frame,
)
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

logger = logging.getLogger(__name__)

DEFAULT_BAUD = 115200


def _describe_open_error(port: str, exc: BaseException) -> str:
    err = getattr(exc, "errno", None)
    text = str(exc)
    if err == errno.ENOENT or "No such file" in text or "could not open port" in text and "[Errno 2]" in text:
        return f"serial port {port} does not exist (is the sensor plugged in? try 'ls /dev/tty*')"
    if err == errno.EACCES or "Permission denied" in text or "[Errno 13]" in text:
        return f"permission denied opening serial port {port} (add yourself to the 'dialout' group, then log in again)"
    if err == errno.EBUSY or "[Errno 16]" in text:
        return f"serial port {port} is busy (another program has it open)"
    return f"cannot open serial port {port}: {text}"


class SerialLink:
    """One legrep sensor on a serial port (see module docstring).

    Parameters
    ----------
    port : device path (``/dev/ttyACM0``, a pty).
    baudrate : 115 200 by default (docs/protocol.md section 7).
    clock : host clock (arrival times, timeouts, backoff).
    reply_timeout_s : wait for a control reply, clock seconds.
    backoff_s : first and largest wait between attempts to reopen a lost port, clock seconds.
    """

    def __init__(
        self,
        port: str,
        baudrate: int = DEFAULT_BAUD,
        *,
        clock: Clock | None = None,
        reply_timeout_s: float = 2.0,
        backoff_s: tuple[float, float] = (0.5, 5.0),
    ) -> None:
        self.port = port
        self.address = port
        self.name = f"serial:{port}"
        self.baudrate = baudrate
        self.clock: Clock = clock or MonotonicClock()
        self.reply_timeout_s = reply_timeout_s
        self.backoff_s = backoff_s
        self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        """IMU data packets as ``(arrival_s, bytes)``, in arrival order."""
        self.events: asyncio.Queue[LinkEvent] = asyncio.Queue()
        self.status: SensorStatus | None = None
        self.status_raw = b""
        self.battery_pct: int | None = None
        self.connected = False
        self.bad_frames = 0
        self.disconnects = 0
        self.reconnects = 0
        self._ser: Any = None
        self._fd = -1
        self._deframer = SlipDeframer()
        self._replies: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self._request_lock = asyncio.Lock()
        self._closing = False
        self._reconnect_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"SerialLink({self.port}, connected={self.connected})"

    # --- the port -----------------------------------------------------------------------------------

    def _open_port(self) -> None:
        import serial  # type: ignore[import-untyped]  # pyserial ships no type information

        try:
            ser = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=0)
        except serial.SerialException as exc:
            raise SensorError(_describe_open_error(self.port, exc)) from None
        try:
            fd = int(ser.fileno())
        except Exception as exc:  # noqa: BLE001 - a URL backend without a descriptor
            ser.close()
            raise SensorError(f"serial port {self.port}: a device with a file descriptor expected ({exc})") from None
        self._ser, self._fd = ser, fd
        self._deframer.reset()
        asyncio.get_running_loop().add_reader(fd, self._on_readable)
        self.connected = True

    def _close_port(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._fd)
        if self._ser is not None:
            with contextlib.suppress(Exception):
                self._ser.close()
        self._ser, self._fd = None, -1
        self.connected = False

    async def open(self) -> SensorStatus:
        """Open the port and read the sensor's status (GET_STATUS).

        Raises
        ------
        SensorError
            The port does not exist, access is denied, or no legrep sensor answers.
        """
        self._open_port()
        try:
            status = await self.read_status()
        except BaseException:
            self._close_port()
            raise
        self.events.put_nowait(LinkEvent(LinkEventKind.CONNECTED, self.clock.now_s(), status=status, raw=self.status_raw))
        return status

    async def read_status(self) -> SensorStatus:
        """GET_STATUS: the sensor's status now (also kept in ``status`` / ``status_raw``)."""
        timed = await self.request(get_status_request())
        if not timed.reply.ok:
            raise SensorError(f"{self.port}: sensor refused GET_STATUS: {timed.reply.describe()}")
        try:
            status = decode_status(timed.reply.payload)
        except (PacketError, SensorError) as exc:
            raise SensorError(f"{self.port}: unreadable status: {exc}") from None
        self.status, self.status_raw, self.battery_pct = status, bytes(timed.reply.payload[:32]), status.battery_pct
        return status

    def _on_readable(self) -> None:
        try:
            data = self._ser.read(max(1, self._ser.in_waiting))
        except Exception as exc:  # noqa: BLE001 - pyserial raises SerialException, OSError, TypeError
            self._lost(f"read failed: {exc}")
            return
        if not data:
            return
        now = self.clock.now_s()
        for frame in self._deframer.feed_data(data):
            self._on_frame(frame, now)

    def _on_frame(self, frame: bytes, arrival_s: float) -> None:
        try:
            channel, message = split_serial_frame(frame)
        except PacketError:
            self.bad_frames += 1
            return
        if channel == Channel.DATA:
            self.queue.put_nowait((arrival_s, message))
        elif channel == Channel.CONTROL:
            self._replies.put_nowait((arrival_s, message))
        else:
            try:
                status = decode_status(message)
            except (PacketError, SensorError) as exc:
                logger.warning("%s: ignoring status frame: %s", self.port, exc)
                return
            self.status, self.status_raw, self.battery_pct = status, bytes(message), status.battery_pct
            self.events.put_nowait(LinkEvent(LinkEventKind.STATUS, arrival_s, status=status, raw=self.status_raw))

    def _lost(self, why: str) -> None:
        if not self.connected:
            return
        self._close_port()
        self.disconnects += 1
        now = self.clock.now_s()
        self.events.put_nowait(LinkEvent(LinkEventKind.DISCONNECTED, now, detail=why))
        if self._closing:
            return
        logger.info("%s: link lost at %.2f s (%s); reopening", self.port, now, why)
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reopen(self) -> SensorStatus:
        self._open_port()
        return await self.read_status()

    async def _give_up_port(self) -> None:
        self._close_port()

    async def _reconnect(self) -> None:
        done = await retry_with_backoff(
            self._reopen, clock=self.clock, backoff_s=self.backoff_s, closing=lambda: self._closing, name=self.port,
            cleanup=self._give_up_port,
        )
        if done is None:
            return
        status, attempts = done
        self.reconnects += 1
        self.events.put_nowait(
            LinkEvent(LinkEventKind.RECONNECTED, self.clock.now_s(), status=status, raw=self.status_raw,
                      detail=f"after {attempts} attempt(s)")
        )

    # --- control ------------------------------------------------------------------------------------

    async def request(self, payload: bytes) -> TimedReply:
        """Write one control request and wait for its reply (one request at a time).

        Raises
        ------
        SensorError
            Not connected, the write failed, or no reply within ``reply_timeout_s``.
        """
        return await control_request(
            payload, lock=self._request_lock, replies=self._replies, connected=lambda: self.connected, send=self._write,
            clock=self.clock, reply_timeout_s=self.reply_timeout_s, name=self.port,
            no_reply=f"{self.port}: no reply to control request 0x{{opcode:02x}} within {{timeout_s:g}} s "
            "(is a legrep sensor attached?)",
        )

    async def _write(self, payload: bytes) -> None:
        try:
            self._ser.write(slip_frame(bytes([Channel.CONTROL]) + payload))
            self._ser.flush()
        except Exception as exc:  # noqa: BLE001 - the port vanished under the write
            self._lost(f"write failed: {exc}")
            raise SensorError(f"{self.port}: control request 0x{payload[0]:02x} failed: {exc}") from None

    async def close(self) -> None:
        """Close the port for good (no reopening)."""
        self._closing = True
        task, self._reconnect_task = self._reconnect_task, None
        await cancel_and_wait(task)
        self._close_port()
