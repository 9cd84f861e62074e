"""The live session loop: sensor links -> records -> shared core -> events -> view and recording.

Every byte a :class:`~legrep.transport.ble.SensorLink` delivers (IMU notifications, control requests and
replies, status reads, link events) becomes a :class:`~legrep.records.Record` stamped with session
seconds; each record is written to the recording (if any) and fed, in the same order, to
:class:`legrep.live_core.SessionCore` — the path ``legrep replay`` runs too, so a replay of the
recording gives the same reps. The only decisions taken here are transport ones: when to TIME_SYNC,
which gaps to RESEND (the tracker says), what to do after a reconnection.

Vendor sensors (``legrep.sensors``: WitMotion, Movella DOT, MetaMotion, Polar) join through
:class:`legrep.sensors.link.VendorLiveLink`: its queue holds the DATA payloads of a vendor sensor, its
SENSOR record names the model and configuration, and instead of legrep control requests the loop
calls its ``start``/``stop``. Everything else (records, analysis, view, recording) is the same.

Shape (bleak's queue example): notify callbacks only enqueue ``(arrival_s, bytes)``; one consumer
task per sensor turns them into records; a housekeeping task per sensor sends TIME_SYNC and RESEND and
handles link events; the view is refreshed at most ``refresh_hz`` times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .errors import SensorError
from .live_core import SensorInfo, SessionCore
from .model import Leg, Rep, SessionResult, SetSummary
from .packets import resend_request, start_request, stop_request, time_sync_request
from .pipeline import RepClosed, SetClosed
from .recording import RecordingWriter
from .records import Kind, Record
from .settings import Settings
from .transport.ble import Clock, LinkEvent

logger = logging.getLogger(__name__)

TIME_SYNC_COUNT = 3
"""TIME_SYNC exchanges before START (the shortest round trip wins, docs/protocol.md section 6)."""


class Link(Protocol):
    """What the loop needs from a sensor link (:class:`SensorLink` satisfies it)."""

    name: str
    address: str
    connected: bool
    battery_pct: int | None
    queue: asyncio.Queue[tuple[float, bytes]]
    events: asyncio.Queue[LinkEvent]
    status_raw: bytes

    async def request(self, payload: bytes) -> Any: ...


def is_vendor(link: Any) -> bool:
    """True for a vendor sensor link (``VendorLiveLink``): started and stopped with its own writes."""
    return bool(getattr(link, "vendor", False))


# --- what the view shows ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegState:
    """One leg as the live view shows it."""

    leg: Leg
    reps: int
    angle_deg: float | None
    last_rep: Rep | None
    battery_pct: int | None
    link: str
    """connected, reconnecting, stopped."""
    sensor: str


@dataclass(frozen=True, slots=True)
class LiveState:
    """A snapshot for the view (session seconds, per leg)."""

    time_s: float
    legs: tuple[LegState, ...]
    sets: tuple[SetSummary, ...]
    message: str = ""

    @property
    def difference(self) -> int:
        """Left reps minus right reps in the current set (0 with one leg)."""
        counts = {s.leg: s.reps for s in self.legs}
        if len(counts) < 2:
            return 0
        return counts.get(Leg.LEFT, 0) - counts.get(Leg.RIGHT, 0)


class View(Protocol):
    def show(self, state: LiveState) -> None: ...

    def rep(self, rep: Rep, state: LiveState) -> None: ...

    def set_closed(self, summary: SetSummary, state: LiveState) -> None: ...

    def note(self, text: str) -> None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class LiveStats:
    """Transport figures of a live session."""

    records: int = 0
    disconnects: dict[str, int] = field(default_factory=dict)
    reconnects: dict[str, int] = field(default_factory=dict)
    resend_requests: int = 0
    rep_latency_s: list[tuple[Rep, float]] = field(default_factory=list)
    """Per rep, in the order shown: session time its event reached the view minus ``closed_s``."""


@dataclass(frozen=True, slots=True)
class LiveResult:
    result: SessionResult
    stats: LiveStats
    recording: Path | None
    events: tuple[Any, ...]


# --- the loop ----------------------------------------------------------------------------------------


class LiveSession:
    """Run one live session over connected links.

    Parameters
    ----------
    links : ``{leg: link}`` (connected, not yet streaming).
    clock : the host clock; session time 0 is when :meth:`run` starts.
    settings : analysis settings (stored in the recording).
    recording : path of the recording to write (None: do not record).
    view : where reps and state go (None: nowhere).
    time_sync_every_s, poll_s : transport housekeeping periods (clock seconds).
    refresh_hz : view refresh rate (<= 10).
    meta : extra metadata for the recording.
    """

    def __init__(
        self,
        links: Mapping[Leg, Link],
        *,
        clock: Clock,
        settings: Settings | None = None,
        recording: str | Path | None = None,
        view: View | None = None,
        time_sync_every_s: float = 10.0,
        poll_s: float = 0.05,
        refresh_hz: float = 10.0,
        meta: dict[str, Any] | None = None,
        keep_samples: bool = False,
    ) -> None:
        if not links:
            raise SensorError("no sensors to capture from")
        self.links = dict(links)
        self.legs = tuple(leg for leg in (Leg.LEFT, Leg.RIGHT) if leg in self.links)
        self.clock = clock
        self.settings = settings or Settings()
        self.recording_path = Path(recording) if recording is not None else None
        self.view = view
        self.time_sync_every_s = time_sync_every_s
        self.poll_s = poll_s
        self.refresh_s = 1.0 / min(10.0, max(0.5, refresh_hz))
        self.meta = dict(meta or {})
        # no angle traces kept live: an 8-hour session must not grow in memory (replay has them)
        self.core = SessionCore(self.legs, self.settings, keep_traces=False, keep_samples=keep_samples)
        self.stats = LiveStats()
        self._index = {leg: i for i, leg in enumerate(self.legs)}
        self._writer: RecordingWriter | None = None
        self._t0 = 0.0
        self._token = 0
        self._stopping = False
        self._last_rep: dict[Leg, Rep] = {}
        self._set_reps: dict[Leg, int] = {leg: 0 for leg in self.legs}
        self._sets: list[SetSummary] = []
        self._link_state: dict[Leg, str] = {leg: "connected" for leg in self.legs}
        self._dirty = True

    # --- time and records -------------------------------------------------------------------------

    @property
    def session_origin_s(self) -> float:
        """Clock reading of session time 0 (set when :meth:`run` starts)."""
        return self._t0

    def session_s(self, clock_s: float | None = None) -> float:
        """Session seconds for a clock reading (now by default)."""
        return (self.clock.now_s() if clock_s is None else clock_s) - self._t0

    def _emit(self, kind: Kind, leg: Leg | None, t_s: float, payload: bytes) -> None:
        self._take(Record(kind, None if leg is None else self._index[leg], t_s, payload))

    def _emit_json(self, kind: Kind, leg: Leg | None, t_s: float, value: dict[str, Any]) -> None:
        self._take(Record.of_json(kind, None if leg is None else self._index[leg], t_s, value))

    def _take(self, rec: Record) -> None:
        if self._writer is not None:
            self._writer.write(rec)
        self.stats.records += 1
        events = self.core.process(rec)
        if events:
            self._on_events(events)

    def _on_events(self, events: list[Any]) -> None:
        now = self.session_s()
        for ev in events:
            if isinstance(ev, RepClosed):
                rep = ev.rep
                self._last_rep[rep.leg] = rep
                self._set_reps[rep.leg] = self._set_reps.get(rep.leg, 0) + 1
                self.stats.rep_latency_s.append((rep, now - rep.closed_s))
                if self.view is not None:
                    self.view.rep(rep, self.state())
            elif isinstance(ev, SetClosed):
                self._sets.append(ev.summary)
                self._set_reps = {leg: 0 for leg in self.legs}
                if self.view is not None:
                    self.view.set_closed(ev.summary, self.state())
        self._dirty = True

    def state(self, message: str = "") -> LiveState:
        """The current snapshot for the view."""
        legs = []
        for leg in self.legs:
            link = self.links[leg]
            legs.append(
                LegState(
                    leg=leg,
                    reps=self._set_reps.get(leg, 0),
                    angle_deg=self.core.angle_deg(leg),
                    last_rep=self._last_rep.get(leg),
                    battery_pct=link.battery_pct,
                    link=self._link_state[leg],
                    sensor=link.name,
                )
            )
        return LiveState(self.session_s(), tuple(legs), tuple(self._sets), message)

    # --- control requests as records ------------------------------------------------------------------

    async def _request(self, leg: Leg, payload: bytes) -> Any:
        """Send a control request; the request and its reply become TX/RX records."""
        link = self.links[leg]
        timed = await link.request(payload)
        self._emit(Kind.TX, leg, self.session_s(timed.sent_s), payload)
        raw = bytes([0x80 | timed.reply.opcode, timed.reply.status]) + timed.reply.payload
        self._emit(Kind.RX, leg, self.session_s(timed.received_s), raw)
        return timed

    async def _time_sync(self, leg: Leg) -> None:
        self._token = (self._token + 1) & 0xFFFFFFFF
        await self._request(leg, time_sync_request(self._token))

    async def _start(self, leg: Leg) -> None:
        link = self.links[leg]
        if is_vendor(link):
            await link.start()  # type: ignore[attr-defined]
            self._emit_json(Kind.EVENT, leg, self.session_s(), {"type": "start"})
            return
        timed = await self._request(leg, start_request())
        if not timed.reply.ok:
            raise SensorError(f"{self.links[leg].name} refused START: {timed.reply.describe()}")

    # --- tasks ------------------------------------------------------------------------------------------

    async def _consume(self, leg: Leg) -> None:
        """Turn queued notifications into DATA records, in arrival order."""
        queue = self.links[leg].queue
        while True:
            arrival_s, data = await queue.get()
            self._emit(Kind.DATA, leg, self.session_s(arrival_s), data)

    async def _housekeep(self, leg: Leg) -> None:
        """TIME_SYNC every ``time_sync_every_s``, RESEND what the tracker misses, link events."""
        link = self.links[leg]
        stream = self.core.streams[self._index[leg]]
        next_sync_s = self.clock.now_s() + self.time_sync_every_s
        vendor = is_vendor(link)
        while True:
            while not link.events.empty():
                await self._on_link_event(leg, link.events.get_nowait())
            if link.connected and not vendor:
                now_s = self.session_s()
                for a, b in stream.tracker.resend_requests(now_s):
                    self.stats.resend_requests += 1
                    with contextlib.suppress(SensorError):
                        await self._request(leg, resend_request(a, b))
                if self.clock.now_s() >= next_sync_s and not self._stopping:
                    next_sync_s = self.clock.now_s() + self.time_sync_every_s
                    with contextlib.suppress(SensorError):
                        await self._time_sync(leg)
            await self.clock.sleep(self.poll_s)

    async def _on_link_event(self, leg: Leg, event: LinkEvent) -> None:
        t_s = self.session_s(event.time_s)
        link = self.links[leg]
        if event.kind == "disconnected":
            self._link_state[leg] = "lost" if is_vendor(link) else "reconnecting"
            self.stats.disconnects[leg.value] = self.stats.disconnects.get(leg.value, 0) + 1
            self._emit_json(Kind.EVENT, leg, t_s, {"type": "disconnect"})
            if self.view is not None:
                again = "" if is_vendor(link) else ", reconnecting"
                self.view.note(f"{leg.value} sensor {link.name}: link lost{again}")
        elif event.kind == "reconnected":
            self._link_state[leg] = "connected"
            self.stats.reconnects[leg.value] = self.stats.reconnects.get(leg.value, 0) + 1
            self._emit_json(Kind.EVENT, leg, t_s, {"type": "reconnect", "detail": event.detail})
            if event.raw:
                self._emit(Kind.STATUS, leg, t_s, event.raw)  # next_seq: what was missed
            if self.view is not None:
                self.view.note(f"{leg.value} sensor {link.name}: reconnected")
            if event.status is not None and not event.status.streaming and not self._stopping:
                with contextlib.suppress(SensorError):
                    await self._start(leg)  # the sensor stopped by itself: a new stream
        elif event.kind == "status" and event.raw:
            self._emit(Kind.STATUS, leg, t_s, event.raw)
        self._dirty = True

    async def _refresh(self) -> None:
        while True:
            if self.view is not None:  # every tick: the angle moves between events (coach, issue 12)
                self._dirty = False
                self.view.show(self.state())
            await asyncio.sleep(self.refresh_s)  # wall seconds: the terminal is real

    # --- run ------------------------------------------------------------------------------------------------

    async def run(
        self,
        *,
        duration_s: float | None = None,
        stop: asyncio.Event | None = None,
        drain_s: float = 3.0,
    ) -> LiveResult:
        """Stream until ``duration_s`` session seconds have passed or ``stop`` is set, then STOP the
        sensors, fetch what is missing (up to ``drain_s``) and finish the analysis.

        Raises
        ------
        SensorError
            A sensor refuses START or is lost before streaming starts.
        """
        self._t0 = self.clock.now_s()
        if self.recording_path is not None:
            self.recording_path.parent.mkdir(parents=True, exist_ok=True)
            from .export import legrep_version

            meta = {  # the same META keys as legrep.live_core.RecordingCore writes
                "legs": [leg.value for leg in self.legs],
                "settings": self.settings.to_dict(),
                "legrep_version": legrep_version(),
                "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "transport": "ble",
                **self.meta,
            }
            self._writer = RecordingWriter(self.recording_path, meta)
        tasks: list[asyncio.Task[None]] = []
        try:
            for leg in self.legs:
                link = self.links[leg]
                if is_vendor(link):
                    info = link.sensor_info(self._index[leg], leg)  # type: ignore[attr-defined]
                else:
                    info = SensorInfo.make(
                        self._index[leg], leg, link.status_raw, address=link.address, name=link.name,
                        serial=link.name.rsplit("-", 1)[-1], model="legrep",
                    )
                self._take(Record.of_json(Kind.SENSOR, self._index[leg], 0.0, info.to_json()))
                self._emit_json(Kind.EVENT, leg, self.session_s(), {"type": "connect", "address": link.address})
            for leg in self.legs:
                if is_vendor(self.links[leg]):
                    continue  # no TIME_SYNC: its decoder maps device time or arrival time
                for _ in range(TIME_SYNC_COUNT):
                    await self._time_sync(leg)
            for leg in self.legs:
                tasks.append(asyncio.create_task(self._consume(leg), name=f"consume {leg.value}"))
            for leg in self.legs:
                await self._start(leg)
            for leg in self.legs:
                tasks.append(asyncio.create_task(self._housekeep(leg), name=f"housekeep {leg.value}"))
            tasks.append(asyncio.create_task(self._refresh(), name="view"))
            waiters: list[asyncio.Task[Any]] = []
            if stop is not None:
                waiters.append(asyncio.create_task(stop.wait()))
            if duration_s is not None:
                waiters.append(asyncio.create_task(self.clock.sleep(duration_s)))
            if not waiters:
                waiters.append(asyncio.create_task(asyncio.Event().wait()))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
            await self._finish_stream(drain_s)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        n_events = len(self.core.events)
        result = self.core.finish()
        if len(self.core.events) > n_events:
            self._on_events(self.core.events[n_events:])
        # the last set closes at the end of the stream
        shown = {s.set for s in self._sets}
        for summary in result.sets:
            if summary.set not in shown and self.view is not None:
                self.view.set_closed(summary, self.state())
        self._sets = list(result.sets)
        self._set_reps = {leg: 0 for leg in self.legs}
        if self._writer is not None:
            self._writer.close(self.session_s(), {"reps": len(result.reps), "sets": len(result.sets)})
        if self.view is not None:
            self.view.show(self.state())
        return LiveResult(result, self.stats, self.recording_path, tuple(self.core.events))

    async def _finish_stream(self, drain_s: float) -> None:
        """STOP every sensor, then keep fetching gaps until none is missing or ``drain_s`` passed."""
        self._stopping = True
        deadline = self.clock.now_s() + drain_s
        pending = set(self.legs)
        while pending and self.clock.now_s() < deadline:
            for leg in list(pending):
                if not self.links[leg].connected:
                    continue
                if is_vendor(self.links[leg]):
                    try:
                        await self.links[leg].stop()  # type: ignore[attr-defined]
                    except SensorError as exc:
                        logger.info("%s: stop failed: %s", leg.value, exc)
                        continue
                    self._emit_json(Kind.EVENT, leg, self.session_s(), {"type": "stop"})
                    pending.discard(leg)
                    continue
                try:
                    timed = await self._request(leg, stop_request())
                except SensorError as exc:
                    logger.info("%s: STOP failed: %s", leg.value, exc)
                    continue
                if timed.reply.ok:
                    pending.discard(leg)
            if pending:
                await self.clock.sleep(self.poll_s)
        while self.clock.now_s() < deadline:
            missing = any(
                s.tracker.missing() or s.tracker.held_packets for s in self.core.streams.values() if hasattr(s, "tracker")
            )
            queued = any(not self.links[leg].queue.empty() for leg in self.legs)
            if not missing and not queued:
                break
            await self.clock.sleep(self.poll_s)
        # whatever is still queued was received: record it
        for leg in self.legs:
            queue = self.links[leg].queue
            while not queue.empty():
                arrival_s, data = queue.get_nowait()
                self._emit(Kind.DATA, leg, self.session_s(arrival_s), data)
