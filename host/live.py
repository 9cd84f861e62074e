"""The live session: any set of sensor drivers -> records -> one recorder and core -> sinks.

:class:`LiveSession` drives :class:`~legrep.drivers.base.SensorDriver` values (legrep sensors over
BLE or serial, vendor sensors, a recording being replayed; :mod:`legrep.drivers`). Every item a
driver delivers becomes a :class:`~legrep.records.Record` stamped with session seconds, written
to the recording (if any) and fed, in the same order, to :class:`legrep.live_core.SessionCore`,
the path ``legrep replay`` runs too, so a replay of the recording gives the same reps. The
session decides nothing about transports: the drivers keep their links up (reconnecting after a
drop) and speak their protocols; the session records and reports what they say, and tells them
which gaps the packet tracker wants re-sent (:class:`~legrep.drivers.base.SessionPort`).

Sinks (:class:`legrep.sinks.SessionSink`: the terminal view, the voice, the web page) get every
released chunk of hip angle, every rep and closed set, a snapshot at ``refresh_hz`` (>= 10 Hz of
session time) and one-line notes (a link lost, a reconnection).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .drivers.base import DriverItem, LinkChange, LinkState, Noted, Received, SensorDriver
from .errors import InputError, SensorError
from .export import legrep_version
from .live_core import SensorInfo, SessionCore
from .model import FloatArray, Leg, Rep, SessionResult, SetSummary
from .packets import Opcode
from .pipeline import Event as AnalysisEvent
from .pipeline import RepClosed, SetClosed
from .recording import RecordingWriter
from .records import EventType, Kind, Record
from .settings import Settings
from .sinks import SessionSink
from .transport.common import Clock, cancel_and_wait

logger = logging.getLogger(__name__)


# --- what the sinks see -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegState:
    """One leg as the live view shows it."""

    leg: Leg
    reps: int
    angle_deg: float | None
    last_rep: Rep | None
    battery_pct: int | None
    link: LinkState
    sensor: str


@dataclass(frozen=True, slots=True)
class LiveState:
    """A snapshot for the sinks (session seconds, per leg)."""

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


View = SessionSink
"""The terminal view is one sink among others (kept as a name for callers)."""


@dataclass(slots=True)
class LiveStats:
    """Transport figures of a live session."""

    records: int = 0
    disconnects: dict[str, int] = field(default_factory=dict)
    reconnects: dict[str, int] = field(default_factory=dict)
    resend_requests: int = 0
    rep_latency_s: list[tuple[Rep, float]] = field(default_factory=list)
    """Per rep, in the order shown: session time its event reached the sinks minus ``closed_s``."""


@dataclass(frozen=True, slots=True)
class LiveResult:
    result: SessionResult
    stats: LiveStats
    recording: Path | None
    events: tuple[AnalysisEvent, ...]


# --- what a driver sees of the session ----------------------------------------------------------------


class _Port:
    """The :class:`~legrep.drivers.base.SessionPort` of one driver (its sensors from ``base``)."""

    def __init__(self, session: "LiveSession", base: int) -> None:
        self._session = session
        self._base = base

    @property
    def stopping(self) -> bool:
        return self._session.stopping

    def session_s(self, clock_s: float | None = None) -> float:
        return self._session.session_s(clock_s)

    def resend_ranges(self, sensor: int, t_s: float) -> list[tuple[int, int]]:
        return self._session.core.resend_ranges(self._base + sensor, t_s)

    def missing(self, sensor: int) -> bool:
        return self._session.core.missing(self._base + sensor)


@dataclass(slots=True)
class _Sensor:
    info: SensorInfo
    driver: SensorDriver
    link: LinkState = LinkState.CONNECTED


# --- the loop -------------------------------------------------------------------------------------------


class LiveSession:
    """Run one live session over opened drivers.

    Parameters
    ----------
    drivers : opened drivers (connected, not yet streaming); their sensors' legs must differ.
    clock : the host clock; session time 0 is when :meth:`run` starts.
    settings : analysis settings (stored in the recording).
    recording : path of the recording to write (None: do not record).
    sinks : where angles, reps, sets, snapshots and notes go (the terminal view, voice, web).
    view : one more sink (kept for callers that pass the terminal view alone).
    refresh_hz : snapshots per second of session time (at least 10).
    meta : extra metadata for the recording.
    keep_samples : keep every sample fed to the analysis (tests).
    """

    def __init__(
        self,
        drivers: Sequence[SensorDriver],
        *,
        clock: Clock,
        settings: Settings | None = None,
        recording: str | Path | None = None,
        sinks: Sequence[SessionSink] = (),
        view: SessionSink | None = None,
        refresh_hz: float = 10.0,
        meta: dict[str, Any] | None = None,
        keep_samples: bool = False,
    ) -> None:
        if not drivers:
            raise SensorError("no sensors to capture from")
        self.drivers = list(drivers)
        self.clock = clock
        self.settings = settings or Settings()
        self.recording_path = Path(recording) if recording is not None else None
        self.sinks: list[SessionSink] = list(sinks) + ([view] if view is not None else [])
        self.refresh_s = 1.0 / max(10.0, refresh_hz)
        self.meta = dict(meta or {})
        self._sensors: list[_Sensor] = []
        self._base: list[int] = []
        for driver in self.drivers:
            self._base.append(len(self._sensors))
            for info in driver.sensors(len(self._sensors)):
                self._sensors.append(_Sensor(info, driver))
        legs = [s.info.leg for s in self._sensors]
        for leg in set(legs):
            if legs.count(leg) > 1:
                names = [s.info.name for s in self._sensors if s.info.leg is leg]
                raise InputError(f"one sensor per leg expected, got {len(names)} on the {leg.value} leg: {names}")
        self.legs = tuple(leg for leg in (Leg.LEFT, Leg.RIGHT, Leg.PELVIS) if leg in legs)
        # no angle traces kept live: an 8-hour session must not grow in memory (replay has them)
        self.core = SessionCore(self.legs, self.settings, keep_traces=False, keep_samples=keep_samples)
        self.core.analyzer.on_angle = self._on_angle
        self.stats = LiveStats()
        self.stopping = False
        self._writer: RecordingWriter | None = None
        self._t0 = 0.0
        self._last_rep: dict[Leg, Rep] = {}
        self._set_reps: dict[Leg, int] = {leg: 0 for leg in self.legs}
        self._sets: list[SetSummary] = []

    # --- time and records -------------------------------------------------------------------------

    @property
    def session_origin_s(self) -> float:
        """Clock reading of session time 0 (set when :meth:`run` starts)."""
        return self._t0

    def session_s(self, clock_s: float | None = None) -> float:
        """Session seconds for a clock reading (now by default)."""
        return (self.clock.now_s() if clock_s is None else clock_s) - self._t0

    def _take(self, rec: Record) -> None:
        if self._writer is not None:
            self._writer.write(rec)
        self.stats.records += 1
        events = self.core.process(rec)
        if events:
            self._on_events(events)

    def _take_item(self, base: int, item: DriverItem) -> None:
        index = base + item.sensor
        if isinstance(item, Received):
            if item.kind == Kind.TX and item.payload[:1] == bytes([Opcode.RESEND]):
                self.stats.resend_requests += 1
            self._take(Record(item.kind, index, item.t_s, item.payload))
        elif isinstance(item, LinkChange):
            self._on_link_change(index, item)
        elif isinstance(item, Noted):
            kind = item.type.value if isinstance(item.type, EventType) else item.type
            self._take(Record.of_json(Kind.EVENT, index, item.t_s, {"type": kind, **item.fields}))

    def _on_link_change(self, index: int, change: LinkChange) -> None:
        sensor = self._sensors[index]
        leg = sensor.info.leg.value
        if change.lost:
            sensor.link = LinkState.RECONNECTING
            self.stats.disconnects[leg] = self.stats.disconnects.get(leg, 0) + 1
            self._take(Record.event(index, change.t_s, EventType.DISCONNECT))
            self.note(f"{leg} sensor {sensor.info.name}: link lost, reconnecting")
        else:
            sensor.link = LinkState.CONNECTED
            self.stats.reconnects[leg] = self.stats.reconnects.get(leg, 0) + 1
            self._take(Record.event(index, change.t_s, EventType.RECONNECT, detail=change.detail))
            if change.status_raw:
                self._take(Record(Kind.STATUS, index, change.t_s, change.status_raw))  # next_seq: what was missed
            self.note(f"{leg} sensor {sensor.info.name}: reconnected")

    # --- sinks --------------------------------------------------------------------------------------------

    def _sink(self, what: str, *args: Any) -> None:
        """Call ``what`` on every sink; a failing sink is logged, never stops the session."""
        for sink in self.sinks:
            try:
                getattr(sink, what)(*args)
            except Exception:  # noqa: BLE001 - a sink must not take the capture down
                logger.exception("sink %r failed in %s()", sink, what)

    def note(self, text: str) -> None:
        """A one-line message to every sink."""
        self._sink("note", text)

    def _on_angle(self, leg: Leg, time_s: FloatArray, angle_deg: FloatArray) -> None:
        if self.sinks:
            self._sink("angle", leg, time_s, angle_deg)

    def _on_events(self, events: Sequence[AnalysisEvent]) -> None:
        now = self.session_s()
        for ev in events:
            if isinstance(ev, RepClosed):
                rep = ev.rep
                self._last_rep[rep.leg] = rep
                self._set_reps[rep.leg] = self._set_reps.get(rep.leg, 0) + 1
                self.stats.rep_latency_s.append((rep, now - rep.closed_s))
                self._sink("rep", rep, self.state())
            elif isinstance(ev, SetClosed):
                self._sets.append(ev.summary)
                self._set_reps = {leg: 0 for leg in self.legs}
                self._sink("set_closed", ev.summary, self.state())

    def state(self, message: str = "") -> LiveState:
        """The current snapshot for the sinks."""
        legs = []
        for sensor in self._sensors:
            leg = sensor.info.leg
            if leg is Leg.PELVIS:  # no reps, no hip angle: its back_arch shows on the thighs' reps
                continue
            legs.append(
                LegState(
                    leg=leg,
                    reps=self._set_reps.get(leg, 0),
                    angle_deg=self.core.angle_deg(leg),
                    last_rep=self._last_rep.get(leg),
                    battery_pct=sensor.driver.battery_pct,
                    link=sensor.link,
                    sensor=sensor.info.name,
                )
            )
        legs.sort(key=lambda s: self.legs.index(s.leg))
        return LiveState(self.session_s(), tuple(legs), tuple(self._sets), message)

    async def _refresh(self) -> None:
        while True:
            self._sink("show", self.state())
            await self.clock.sleep(self.refresh_s)

    # --- run ------------------------------------------------------------------------------------------------

    async def run(
        self,
        *,
        duration_s: float | None = None,
        stop: asyncio.Event | None = None,
        drain_s: float = 3.0,
    ) -> LiveResult:
        """Stream until ``duration_s`` session seconds have passed, ``stop`` is set or every driver's
        stream ended (a replay), then stop the drivers, fetch what is missing (up to ``drain_s``),
        close the drivers and finish the analysis.

        Raises
        ------
        SensorError
            A sensor refuses to start or is lost before streaming starts.
        """
        self._t0 = self.clock.now_s()
        if self.recording_path is not None:
            self.recording_path.parent.mkdir(parents=True, exist_ok=True)
            meta = {
                "legs": [leg.value for leg in self.legs],
                "settings": self.settings.to_dict(),
                "legrep_version": legrep_version(),
                "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "transport": ",".join(sorted({d.spec.split(":", 1)[0] for d in self.drivers})),
                "drivers": [d.spec for d in self.drivers],
                **self.meta,
            }
            self._writer = RecordingWriter(self.recording_path, meta)
        pumps: list[asyncio.Task[None]] = []
        refresh: asyncio.Task[None] | None = None
        try:
            for index, sensor in enumerate(self._sensors):
                self._take(Record.of_json(Kind.SENSOR, index, 0.0, sensor.info.to_json()))
                self._take(Record.event(index, self.session_s(), EventType.CONNECT, address=sensor.info.address))
            for driver, base in zip(self.drivers, self._base):
                pumps.append(asyncio.create_task(self._pump(driver, base), name=f"pump {driver.spec}"))
            for driver, base in zip(self.drivers, self._base):
                await driver.start(_Port(self, base))
            refresh = asyncio.create_task(self._refresh(), name="sinks")
            waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(asyncio.wait(pumps))]
            if stop is not None:
                waiters.append(asyncio.ensure_future(stop.wait()))
            if duration_s is not None:
                waiters.append(asyncio.ensure_future(self.clock.sleep(duration_s)))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
            await self._finish_stream(drain_s)
            # asyncio.timeout, not wait_for (3.11's wait_for can swallow a cancel: CPython gh-86296)
            async with asyncio.timeout(max(1.0, drain_s) / self.clock.speed):
                await asyncio.gather(*pumps)
        finally:
            await cancel_and_wait(*pumps, refresh)
            for driver in self.drivers:
                with contextlib.suppress(Exception):
                    await driver.close()
        n_events = len(self.core.events)
        result = self.core.finish()
        if len(self.core.events) > n_events:
            self._on_events(self.core.events[n_events:])
        shown = {s.set for s in self._sets}
        for summary in result.sets:  # the last set closes at the end of the stream
            if summary.set not in shown:
                self._sink("set_closed", summary, self.state())
        self._sets = list(result.sets)
        self._set_reps = {leg: 0 for leg in self.legs}
        for sensor in self._sensors:
            sensor.link = LinkState.STOPPED
        if self._writer is not None:
            self._writer.close(self.session_s(), {"reps": len(result.reps), "sets": len(result.sets)})
        self._sink("show", self.state())
        return LiveResult(result, self.stats, self.recording_path, tuple(self.core.events))

    async def _pump(self, driver: SensorDriver, base: int) -> None:
        async for item in driver.items():
            self._take_item(base, item)

    async def _finish_stream(self, drain_s: float) -> None:
        """Stop every driver, then wait until each has what it is missing or ``drain_s`` passed;
        closing a driver delivers what it still holds and ends its stream."""
        self.stopping = True
        deadline = self.clock.now_s() + drain_s
        await asyncio.gather(*(d.stop() for d in self.drivers), return_exceptions=True)
        while self.clock.now_s() < deadline and not all(d.drained() for d in self.drivers):
            await self.clock.sleep(0.05)
        await asyncio.gather(*(d.close() for d in self.drivers), return_exceptions=True)
