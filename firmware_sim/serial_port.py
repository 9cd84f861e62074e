"""A simulated wired sensor: a :class:`SensorFirmware` behind a real pseudo-terminal.

The host opens :attr:`SerialPortSensor.port` (the pty's slave device, e.g. ``/dev/pts/7``) with
pyserial like a USB-serial board. Frames are SLIP with a channel byte (docs/protocol.md section 7).
Two ways to run it: :meth:`SerialPortSensor.start` paces the firmware from a background thread by
wall time x ``speed`` (for a host in another event loop, such as the ``legrep capture`` command), and
:meth:`SerialPortSensor.start_async` runs it on the caller's event loop, paced by a shared
``clock`` (on a virtual-time loop: no thread, no waiting in wall time).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from types import TracebackType

from . import protocol as p
from .firmware import SensorFirmware

MAX_PENDING_BYTES = 1 << 20
"""Bytes queued for a host that does not read; beyond this the oldest are dropped (like a UART)."""


class SerialPortSensor:
    """Serve ``firmware`` on a new pty until :meth:`stop`.

    Parameters
    ----------
    firmware : the firmware model (connected here with the serial MTU).
    speed : simulated seconds per wall second (ignored when ``clock`` is given).
    clock : returns the simulated true time in seconds; share it with the host in tests.
    tick_s : seconds between firmware updates.
    link_path : a stable name for the port (a symlink to the pty, like ``/dev/serial/by-id/...``), so
        that after :meth:`unplug` and :meth:`replug` the host can reopen the same path.
    """

    def __init__(
        self,
        firmware: SensorFirmware,
        speed: float = 1.0,
        clock: Callable[[], float] | None = None,
        tick_s: float = 0.005,
        link_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if clock is None:
            t0 = time.monotonic()
            clock = lambda: (time.monotonic() - t0) * speed  # noqa: E731
        self.firmware = firmware
        self.clock: Callable[[], float] = clock
        self.tick_s = tick_s
        self.link_path = None if link_path is None else os.fspath(link_path)
        self._master, self._slave = -1, -1
        self.port = ""
        self._open_pty()
        self._decoder = p.SlipDecoder()
        self._out = bytearray()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self.bytes_written = 0
        self.bytes_dropped = 0
        self.error: BaseException | None = None
        self._scheduled: list[tuple[float, Callable[[SensorFirmware], object]]] = []
        self._lock = threading.Lock()
        firmware.connect(clock(), mtu=p.SERIAL_MTU)

    def _open_pty(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link_path)
            os.symlink(self.port, self.link_path)
            self.port = self.link_path

    def start(self) -> "SerialPortSensor":
        self._thread = threading.Thread(target=self._run, name=f"serial-{self.firmware.config.name}", daemon=True)
        self._thread.start()
        return self

    async def start_async(self) -> "SerialPortSensor":
        """Run on the current event loop (no thread), paced by ``clock``."""
        self._task = asyncio.get_running_loop().create_task(self._run_async(), name=f"serial-{self.firmware.config.name}")
        return self

    async def stop_async(self) -> None:
        """Stop the loop task started by :meth:`start_async` and close the pty."""
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self._master)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.stop()

    def unplug(self) -> None:
        """Pull the cable (async mode): the pty goes away, the host's reads fail; the firmware keeps
        sampling into its ring buffer, as a sensor on its own battery does."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self._master)
        self.firmware.disconnect(self.clock())
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link_path)

    async def replug(self) -> None:
        """Plug the cable back in (async mode): a new pty behind the same ``link_path``."""
        self._decoder = p.SlipDecoder()
        self._out.clear()
        self._open_pty()
        self.firmware.connect(self.clock(), mtu=p.SERIAL_MTU)
        await self.start_async()

    async def _run_async(self) -> None:
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        fd = self._master
        loop.add_reader(fd, readable.set)
        try:
            while True:
                self._step(readable.is_set())
                readable.clear()
                # The next step one tick from now, or, on virtual time, at the tick that ends the
                # idle ones (the same sum of ticks, so at the very same time); bytes from the
                # host wake it at once either way.
                deadline = loop.time()
                for _ in range(self._idle_steps() + 1):
                    deadline += self.tick_s
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
                # arrives in the loop iteration where its inner wait also finishes (CPython
                # gh-86296), and then stop_async() waited forever for this task to end.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(deadline):
                        await readable.wait()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # reported to the test / demo, never silently lost
            self.error = exc
            raise
        finally:
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link_path)

    def __enter__(self) -> "SerialPortSensor":
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def schedule(self, at_s: float, action: Callable[[SensorFirmware], object]) -> None:
        """Run ``action(firmware)`` in the port's thread once simulated time reaches ``at_s``
        (e.g. ``lambda fw: fw.inject_fault(FaultKind.LOSE, 3)``)."""
        with self._lock:
            self._scheduled.append((at_s, action))
            self._scheduled.sort(key=lambda x: x[0])

    # ------------------------------------------------------------------
    def _send(self, channel: p.Channel, message: bytes) -> None:
        self._out += p.slip_encode(bytes([channel]) + message)
        if len(self._out) > MAX_PENDING_BYTES:
            drop = len(self._out) - MAX_PENDING_BYTES
            del self._out[:drop]
            self.bytes_dropped += drop

    def _idle_steps(self) -> int:
        """How many of the next steps certainly have nothing to do: none unless the clock is a
        :class:`~legrep_sim.peripheral.SimClock` on virtual time. A step without bytes from the
        host, output left to write, a scheduled action, a packet filled or a fault timer due only
        takes samples, which the firmware takes as well at the next step that does something."""
        from .peripheral import MAX_IDLE_S, SimClock

        owner = getattr(self.clock, "__self__", None)
        if self._out or not isinstance(owner, SimClock) or not owner.on_virtual_time:
            return 0
        now = self.clock()
        due = min(self.firmware.next_event_s(), now + MAX_IDLE_S)
        with self._lock:
            if self._scheduled:
                due = min(due, self._scheduled[0][0])
        return max(0, math.floor((due - now) / (self.tick_s * owner.speed)) - 1)

    def _step(self, readable: bool) -> None:
        """One pacing step: scheduled actions, control requests, new packets, status, output."""
        fw = self.firmware
        now = self.clock()
        with self._lock:
            while self._scheduled and self._scheduled[0][0] <= now:
                self._scheduled.pop(0)[1](fw)
        if readable:
            try:
                data = os.read(self._master, 4096)
            except OSError as exc:  # EIO: no reader on the slave side right now
                if exc.errno not in (errno.EIO, errno.EAGAIN):
                    raise
                data = b""
            for frame in self._decoder.feed(data):
                if frame[0] == p.Channel.CONTROL:
                    self._send(p.Channel.CONTROL, fw.handle_control(frame[1:], now))
        for packet in fw.advance(now):
            self._send(p.Channel.DATA, packet)
        status = fw.take_status_change()
        if status is not None:
            self._send(p.Channel.STATUS, status)
        if self._out:
            try:
                n = os.write(self._master, self._out)
            except BlockingIOError:
                n = 0
            del self._out[:n]
            self.bytes_written += n

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select([self._master], [], [], self.tick_s)
                self._step(bool(readable))
        except BaseException as exc:  # reported to the test / demo, never silently lost
            self.error = exc
            raise
