"""Wired legrep sensors over a serial port (pyserial): SLIP frames with a channel byte.

:class:`SerialSensorLink` opens one port, deframes in a reader thread and queues
``(channel, message, arrival_s)``; :func:`capture_serial` runs a whole session over one or two
ports: configure, TIME_SYNC, START, stream (asking for RESENDs of gaps), STOP, drain -- every
frame becomes a :class:`~legrep.records.Record` that is written to the recording (if any) and fed
to :class:`~legrep.live_core.SessionCore`, exactly as a replay will feed it.
"""

from __future__ import annotations

import errno
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PacketError, SensorError
from ..live_core import RecordingCore, SensorInfo, SessionCore
from ..model import Leg, SessionResult
from ..packets import (
    Channel,
    ControlReply,
    SlipDeframer,
    decode_control_reply,
    get_status_request,
    set_leg_request,
    set_rate_request,
    slip_frame,
    split_serial_frame,
    start_request,
    stop_request,
    time_sync_request,
)
from ..records import Kind, Record
from ..settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_BAUD = 115200
LEG_CODE = {Leg.LEFT: 1, Leg.RIGHT: 2}
Clock = Callable[[], float]


class SerialSensorLink:
    """One sensor on a serial port.

    Parameters
    ----------
    port : device path (``/dev/ttyUSB0``, a pty) or any pyserial URL.
    baudrate : 115 200 by default (docs/protocol.md section 7).
    clock : host clock in seconds (``time.monotonic``; a simulation may share a virtual clock).

    Raises
    ------
    SensorError
        The port does not exist, access is denied, or it cannot be opened.
    """

    def __init__(self, port: str, baudrate: int = DEFAULT_BAUD, clock: Clock = time.monotonic) -> None:
        import serial  # type: ignore[import-untyped]  # pyserial ships no type information

        self.port = port
        self.clock = clock
        try:
            self._ser = serial.serial_for_url(port, baudrate=baudrate, timeout=0.05)
        except serial.SerialException as exc:
            raise SensorError(_describe_open_error(port, exc)) from None
        self.deframer = SlipDeframer()
        self.frames: queue.Queue[tuple[Channel, bytes, float]] = queue.Queue()
        self.bad_frames = 0
        self._stop = threading.Event()
        self._backlog: list[tuple[Channel, bytes, float]] = []
        self._thread = threading.Thread(target=self._read_loop, name=f"serial-read-{port}", daemon=True)
        self._thread.start()

    def _read_loop(self) -> None:
        import serial

        while not self._stop.is_set():
            try:
                data = self._ser.read(max(1, self._ser.in_waiting))
            except (serial.SerialException, OSError, TypeError) as exc:
                if not self._stop.is_set():
                    logger.warning("%s: read failed: %s", self.port, exc)
                    self.frames.put((Channel.STATUS, b"", -1.0))  # marks link loss
                return
            if not data:
                continue
            t = self.clock()
            for frame in self.deframer.feed_data(data):
                try:
                    channel, message = split_serial_frame(frame)
                except PacketError:
                    self.bad_frames += 1
                    continue
                self.frames.put((channel, message, t))

    def send(self, request: bytes) -> float:
        """Write one control request; returns the host time it was sent."""
        t = self.clock()
        self._ser.write(slip_frame(bytes([Channel.CONTROL]) + request))
        self._ser.flush()
        return t

    def poll(self, timeout_s: float = 0.0) -> list[tuple[Channel, bytes, float]]:
        """Frames received so far (waiting up to ``timeout_s`` for the first one)."""
        out = self._backlog
        self._backlog = []
        try:
            if not out and timeout_s > 0:
                out.append(self.frames.get(timeout=timeout_s))
            while True:
                out.append(self.frames.get_nowait())
        except queue.Empty:
            pass
        return out

    def request(self, request: bytes, timeout_s: float = 2.0) -> tuple[ControlReply, float, float, bytes]:
        """Send a request and wait for its reply: ``(reply, sent_s, received_s, raw reply)``.

        Other frames that arrive meanwhile are kept for :meth:`poll`.

        Raises
        ------
        SensorError
            No reply within ``timeout_s``.
        """
        sent = self.send(request)
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SensorError(f"{self.port}: no reply to control request 0x{request[0]:02x} within {timeout_s:g} s (is a legrep sensor attached?)")
            try:
                channel, message, t = self.frames.get(timeout=left)
            except queue.Empty:
                continue
            if channel == Channel.CONTROL and message and message[0] == (0x80 | request[0]):
                try:
                    return decode_control_reply(message), sent, t, message
                except PacketError:
                    pass
            self._backlog.append((channel, message, t))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        try:
            self._ser.close()
        except Exception:  # noqa: BLE001 - closing a vanished port
            pass

    def __enter__(self) -> "SerialSensorLink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


@dataclass(slots=True)
class CaptureStats:
    """What :func:`capture_serial` saw, for reports and tests."""

    records: int = 0
    resend_requests: int = 0
    time_syncs: int = 0
    link_losses: int = 0
    origin_s: float = 0.0
    """Host clock reading at session time 0."""
    per_sensor: dict[str, dict[str, float]] = field(default_factory=dict)


def capture_serial(
    ports: Mapping[Leg, str],
    duration_s: float,
    recording: str | Path | None = None,
    settings: Settings | None = None,
    rate_hz: int | None = None,
    clock: Clock = time.monotonic,
    baudrate: int = DEFAULT_BAUD,
    on_events: Callable[[float, list[Any]], None] | None = None,
    time_sync_every_s: float = 10.0,
    keep_samples: bool = False,
    meta_extra: Mapping[str, Any] | None = None,
) -> tuple[SessionResult, SessionCore, CaptureStats]:
    """Capture a session from serial sensors for ``duration_s`` (host clock seconds).

    Parameters
    ----------
    ports : port per leg, e.g. ``{Leg.LEFT: "/dev/ttyUSB0"}``.
    recording : file to write (must not exist), or None.
    rate_hz : set this sample rate on every sensor first (None: keep the sensor's).
    on_events : called with ``(session_s, events)`` whenever the analysis emits events.

    Raises
    ------
    SensorError
        A port cannot be opened, a sensor does not answer or refuses a request.
    """
    settings = settings or Settings()
    legs = tuple(leg for leg in (Leg.LEFT, Leg.RIGHT) if leg in ports)
    if not legs:
        raise SensorError("no serial port given (expected one per leg)")
    links: dict[int, SerialSensorLink] = {}
    stats = CaptureStats()
    session: RecordingCore | None = None
    try:
        for index, leg in enumerate(legs):
            links[index] = SerialSensorLink(ports[leg], baudrate, clock)
        origin = clock()
        stats.origin_s = origin

        def now() -> float:
            return clock() - origin

        session = RecordingCore(
            legs,
            settings,
            recording,
            meta={"transport": "serial", **(dict(meta_extra) if meta_extra else {})},
            keep_samples=keep_samples,
        )
        core = session.core

        def handle(rec: Record) -> None:
            stats.records += 1
            events = session.handle(rec)
            if events and on_events is not None:
                on_events(rec.t_s, events)

        def request(index: int, data: bytes, record: bool = True) -> ControlReply:
            reply, sent, received, raw = links[index].request(data)
            if record:
                handle(Record(Kind.TX, index, sent - origin, data))
                handle(Record(Kind.RX, index, received - origin, raw))
            return reply

        # Configure, describe, then synchronise and start.
        for index, leg in enumerate(legs):
            link = links[index]
            if rate_hz is not None:
                _check(link, request(index, set_rate_request(rate_hz), record=False))
            _check(link, request(index, set_leg_request(LEG_CODE[leg]), record=False))
            status_reply = request(index, get_status_request(), record=False)
            _check(link, status_reply)
            info = SensorInfo.make(index, leg, status_reply.payload, address=link.port, name=f"serial:{link.port}",
                                   model="legrep serial sensor")
            handle(Record.of_json(Kind.SENSOR, index, now(), info.to_json()))
            session.event(index, now(), "connect", port=link.port, baudrate=baudrate)
        for index in links:
            for _ in range(3):
                request(index, time_sync_request(stats.time_syncs))
                stats.time_syncs += 1
        for index in links:
            _check(links[index], request(index, start_request()))

        stopped: set[int] = set()

        def pump(timeout_s: float) -> None:
            for index, link in links.items():
                for channel, message, t in link.poll(timeout_s / max(1, len(links))):
                    if t < 0:
                        stats.link_losses += 1
                        raise SensorError(f"{link.port}: serial link lost (unplugged?)")
                    kind = {Channel.DATA: Kind.DATA, Channel.CONTROL: Kind.RX, Channel.STATUS: Kind.STATUS}[channel]
                    if kind == Kind.RX and message[:2] == bytes([0x80 | 0x02, 0]):
                        stopped.add(index)  # STOP acknowledged: its next_seq bounds the stream
                    handle(Record(kind, index, t - origin, message))
            for index, data in core.resend_requests(now()):
                t = links[index].send(data)
                handle(Record(Kind.TX, index, t - origin, data))
                stats.resend_requests += 1

        last_sync = now()
        while now() < duration_s:
            pump(0.02)
            if now() - last_sync >= time_sync_every_s:
                last_sync = now()
                for index, link in links.items():
                    data = time_sync_request(stats.time_syncs)
                    stats.time_syncs += 1
                    handle(Record(Kind.TX, index, link.send(data) - origin, data))
        for index, link in links.items():
            handle(Record(Kind.TX, index, link.send(stop_request()) - origin, stop_request()))
        # Drain: wait for the last packets and the re-sends of trailing gaps.
        quiet_since = time.monotonic()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            before = stats.records
            pump(0.02)
            missing = any(s.tracker.missing() for s in core.streams.values())
            if stats.records != before:
                quiet_since = time.monotonic()
            if len(stopped) == len(links) and not missing and time.monotonic() - quiet_since > 0.2:
                break
        result = session.finish(now())
        for stream in core.streams.values():
            stats.per_sensor[stream.leg.value] = stream.diagnostics()
        return result, core, stats
    finally:
        if session is not None:
            session.close()
        for link in links.values():
            link.close()


def _check(link: SerialSensorLink, reply: ControlReply) -> None:
    if not reply.ok:
        raise SensorError(f"{link.port}: sensor refused {reply.describe()}")
