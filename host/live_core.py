"""The one path from sensor bytes to reps, shared by live capture and replay.

Everything a driver sees is turned into a :class:`~legrep.records.Record` (data packet,
control request sent, control reply, status, event) stamped with host seconds since the session
start. :class:`SessionCore` consumes those records: per sensor a :class:`SensorStream` (decoder ->
:class:`~legrep.packets.PacketTracker` -> :class:`~legrep.clock.ClockMapper` -> :class:`ImuBlock`),
then one :class:`~legrep.pipeline.SessionAnalyzer`. Live capture writes each record to the recording
*and* feeds it here; replay reads the file and feeds the same records in the same order, so it gets
the same samples, times and reps.

The only outputs that go back to the edge are :meth:`SessionCore.resend_ranges` and
:meth:`SessionCore.missing` (what to ask the sensors to re-send): the driver sends those requests,
and they come back as records.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .clock import ClockMapper
from .diagnostics import SensorDiagnostics
from .errors import InputError, PacketError, RecordingError
from .model import ImuBlock, Leg, SessionResult
from .packets import (
    ControlReply,
    Opcode,
    PacketTracker,
    SampleBatch,
    SensorStatus,
    decode_control_reply,
    decode_imu_packet,
    decode_status,
    resend_request,
    tick_offset,
)
from .pipeline import Event as AnalysisEvent
from .pipeline import SessionAnalyzer
from .records import EventType, Kind, Record, kind_name
from .sensors import MODELS, SensorConfig, VendorStream, get_model
from .settings import Settings

logger = logging.getLogger(__name__)

LEG_CODES = {0: None, 1: Leg.LEFT, 2: Leg.RIGHT, 3: Leg.PELVIS}
VENDOR_BATCH_S = 0.1
"""A vendor sensor's samples reach the analysis in blocks spanning at least this long (seconds of
sample time; deterministic, so replay batches the same way). Adds at most this to rep latency."""


@dataclass(frozen=True, slots=True)
class SensorInfo:
    """What a SENSOR record says about one sensor.

    A legrep sensor is described by its 32-byte status (``status``); a vendor sensor (``model`` one
    of :data:`legrep.sensors.MODELS`) has no legrep status and is described by ``model`` and
    ``config`` (a :class:`legrep.sensors.SensorConfig` as a dict), which is all its decoder needs.
    """

    index: int
    leg: Leg
    address: str
    name: str
    model: str
    serial: str
    firmware: str
    status: SensorStatus | None
    _status_hex: str = ""
    config: dict[str, float] | None = None

    @property
    def vendor(self) -> bool:
        """True for a vendor sensor (decoded by :class:`legrep.sensors.VendorStream`)."""
        return self.status is None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "leg": self.leg.value,
            "address": self.address,
            "name": self.name,
            "model": self.model,
            "serial": self.serial,
            "firmware": self.firmware,
        }
        if self.status is None:
            out["config"] = dict(self.config or {})
            return out
        out.update({
            "status_hex": self._status_hex,
            "rate_hz": self.status.rate_hz,
            "acc_range_g": self.status.acc_range_g,
            "gyr_range_dps": self.status.gyr_range_dps,
            "acc_lsb_g": self.status.acc_lsb_g,
            "gyr_lsb_dps": self.status.gyr_lsb_dps,
        })
        return out

    @staticmethod
    def make(index: int, leg: Leg, status_bytes: bytes, address: str = "", name: str = "", model: str = "",
             serial: str = "", firmware: str = "") -> "SensorInfo":
        """A legrep sensor's info from its status bytes."""
        status = decode_status(status_bytes)
        return SensorInfo(index, leg, address, name, model, serial, firmware or status.fw_version_text, status,
                          bytes(status_bytes[:32]).hex())

    @staticmethod
    def make_vendor(index: int, leg: Leg, model: str, config: dict[str, Any], address: str = "", name: str = "",
                    serial: str = "", firmware: str = "") -> "SensorInfo":
        """A vendor sensor's info: ``model`` (a key of ``legrep.sensors.MODELS``) and its config dict.

        Raises
        ------
        InputError
            ``model`` is not a vendor model, or ``config`` lacks rate_hz, acc_range_g, gyr_range_dps.
        """

        if model not in MODELS:
            get_model(model)  # the one-line error listing the known models
        cfg = SensorConfig.from_dict(dict(config)).to_dict()
        return SensorInfo(index, leg, address, name, model, serial, firmware, None, "", cfg)

    @staticmethod
    def from_json(value: dict[str, Any]) -> "SensorInfo":

        try:
            model = str(value.get("model", ""))
            if model in MODELS:
                config = value["config"]
                if not isinstance(config, dict):
                    raise TypeError(f"config must be an object, got {type(config).__name__}")
                return SensorInfo.make_vendor(
                    int(value["index"]), Leg.parse(str(value["leg"])), model, config,
                    str(value.get("address", "")), str(value.get("name", "")),
                    str(value.get("serial", "")), str(value.get("firmware", "")),
                )
            status_hex = str(value["status_hex"])
            return SensorInfo.make(
                int(value["index"]), Leg.parse(str(value["leg"])), bytes.fromhex(status_hex),
                str(value.get("address", "")), str(value.get("name", "")), model,
                str(value.get("serial", "")), str(value.get("firmware", "")),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise RecordingError(
                "SENSOR record needs index, leg and status_hex (legrep sensor) or model and config (vendor "
                f"sensor); got {sorted(value)} ({exc})"
            ) from None


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """An EVENT (or END) record as the core saw it: ``type`` is an :class:`EventType` value
    (``end`` for the END record); ``fields`` the whole JSON object."""

    t_s: float
    sensor: int | None
    type: str
    fields: dict[str, Any]


class RecordStream(Protocol):
    """One sensor's records -> ImuBlocks: :class:`SensorStream` (legrep) or ``VendorStream``."""

    leg: Leg
    samples: int

    def data(self, payload: bytes, t_s: float) -> ImuBlock | None: ...

    def sent(self, request: bytes, t_s: float) -> None: ...

    def reply(self, reply: ControlReply, t_s: float) -> ImuBlock | None: ...

    def status_record(self, payload: bytes, t_s: float) -> None: ...

    def poll(self, t_s: float) -> ImuBlock | None: ...

    def flush(self) -> ImuBlock | None: ...

    def diagnostics(self) -> SensorDiagnostics:
        """The transport's part (link and clock, or the vendor decoder's)."""
        ...


class SensorStream:
    """One sensor's records -> ImuBlocks on the session clock (seconds, g, dps)."""

    def __init__(self, info: SensorInfo, give_up_s: float = 2.0) -> None:
        if info.status is None:
            raise InputError(f"sensor {info.name or info.index} ({info.model}) has no legrep status: use VendorStream")
        self.info = info
        self.leg = info.leg
        self.status = info.status
        self.tracker = PacketTracker(info.status.rate_hz, give_up_s=give_up_s)
        self.clock = ClockMapper(0.0)
        self._syncs: dict[int, float] = {}
        self.packets = 0
        self.samples = 0

    def _block(self, batch: SampleBatch) -> ImuBlock | None:
        if not len(batch):
            return None
        if not self.clock.ready:  # cannot happen after a data packet; kept for safety
            return None
        time_s = self.clock.map_ticks(batch.ticks)
        acc_g, gyr_dps = batch.scaled(self.status.acc_lsb_g, self.status.gyr_lsb_dps)
        self.samples += len(batch)
        return ImuBlock(time_s, acc_g, gyr_dps)

    def data(self, payload: bytes, t_s: float) -> ImuBlock | None:
        try:
            packet = decode_imu_packet(payload)
        except PacketError as exc:
            self.tracker.stats.corrupt += 1
            logger.debug("%s: %s", self.leg.value, exc)
            return self._block(self.tracker.poll(t_s))
        self.packets += 1
        if not packet.resent:
            last = self.tracker.unwrap_ticks(packet.timestamp_ticks) + int(tick_offset(packet.n - 1, self.status.rate_hz))
            self.clock.observe_packet(last, t_s)
        return self._block(self.tracker.feed(packet, t_s))

    def sent(self, request: bytes, t_s: float) -> None:
        if len(request) == 5 and request[0] == Opcode.TIME_SYNC:
            self._syncs[struct.unpack_from("<I", request, 1)[0]] = t_s
        elif len(request) == 9 and request[0] == Opcode.RESEND:
            first, last = struct.unpack_from("<II", request, 1)
            self.tracker.note_resend_sent(first, last, t_s)

    def link_event(self, kind: str, t_s: float) -> None:
        """A recorded link event: while the link is down no gap is given up (the sensor keeps them)."""
        if kind == EventType.DISCONNECT.value:
            self.tracker.link_down(t_s)
        elif kind == EventType.RECONNECT.value:
            self.tracker.link_up(t_s)

    def reply(self, reply: ControlReply, t_s: float) -> ImuBlock | None:
        if not reply.ok:
            logger.info("%s: %s", self.leg.value, reply.describe())
            return None
        try:
            if reply.opcode == Opcode.START:
                self.tracker.start(reply.u32(0))
            elif reply.opcode == Opcode.TIME_SYNC:
                sent = self._syncs.pop(reply.u32(0), None)
                if sent is not None and t_s >= sent:  # (a reply "before" its request: damaged times, dropped)
                    self.clock.observe_time_sync(self.tracker.unwrap_ticks(reply.u32(1)), sent, t_s)
            elif reply.opcode == Opcode.RESEND:
                return self._block(self.tracker.on_resend_reply(reply.u32(0), reply.u32(1), t_s))
            elif reply.opcode == Opcode.STOP:
                self.tracker.note_next_seq(reply.u32(0), t_s)
            elif reply.opcode == Opcode.GET_STATUS:
                self.status_record(reply.payload, t_s)
        except PacketError as exc:
            logger.info("%s: %s", self.leg.value, exc)
        return None

    def status_record(self, payload: bytes, t_s: float) -> None:
        try:
            st = decode_status(payload)
        except (PacketError, ValueError) as exc:
            logger.info("%s: %s", self.leg.value, exc)
            return
        if (st.rate_hz, st.acc_lsb_g, st.gyr_lsb_dps) != (self.status.rate_hz, self.status.acc_lsb_g, self.status.gyr_lsb_dps):
            logger.warning("%s: sensor configuration changed mid-session (ignored): %s", self.leg.value, st.to_dict())
        if st.streaming and self.tracker.next_seq is not None:
            self.tracker.note_next_seq(st.next_seq, t_s)

    def poll(self, t_s: float) -> ImuBlock | None:
        return self._block(self.tracker.poll(t_s))

    def flush(self) -> ImuBlock | None:
        return self._block(self.tracker.flush())

    def diagnostics(self) -> SensorDiagnostics:
        return SensorDiagnostics(link=self.tracker.stats.snapshot(), clock=self.clock.diagnostics())


_LINK_CHANGES = (EventType.DISCONNECT.value, EventType.RECONNECT.value)


class SessionCore:
    """All sensors of a session: records in, analysis events out, a SessionResult at the end.

    Parameters
    ----------
    legs : the legs the session analyses (from the META record's ``legs``).
    settings : analysis settings.
    """

    def __init__(
        self, legs: Sequence[Leg], settings: Settings | None = None, keep_traces: bool = True, keep_samples: bool = False
    ) -> None:
        if not legs:
            raise InputError("expected at least one leg, got none")
        self.settings = settings or Settings()
        self.legs = tuple(legs)
        self.analyzer = SessionAnalyzer(self.legs, self.settings, keep_traces=keep_traces)
        self.streams: dict[int, RecordStream] = {}
        """``{sensor index: SensorStream | VendorStream}``."""
        self.legrep: dict[int, SensorStream] = {}
        """The legrep sensors among them (the ones with a packet tracker and RESEND)."""
        self.infos: dict[int, SensorInfo] = {}
        self.events: list[AnalysisEvent] = []
        self.last_t_s = 0.0
        self.log: list[LoggedEvent] = []
        """The EVENT and END records seen, in order."""
        self._keep_samples = keep_samples
        self._samples: dict[Leg, list[ImuBlock]] = {leg: [] for leg in self.legs}
        self._last_time_s: dict[Leg, float] = {}
        self.time_back: dict[Leg, int] = {}
        """Samples dropped per leg because their time was not after every earlier sample's."""
        self._batch: dict[int, list[ImuBlock]] = {}
        """Vendor blocks held until ``VENDOR_BATCH_S`` of samples (most vendor notifications carry
        1-5 samples: feeding the analysis per notification would cost most of the CPU)."""

    @staticmethod
    def from_meta(meta: dict[str, Any], settings: Settings | None = None, keep_samples: bool = False) -> "SessionCore":
        """A core for a recording's META: its ``legs`` and (unless given) its ``settings``."""
        legs = meta.get("legs")
        if not isinstance(legs, list) or not legs:
            raise RecordingError(f"META record needs a non-empty 'legs' list, got {legs!r}")
        if settings is None and isinstance(meta.get("settings"), dict):
            settings = Settings.from_dict(meta["settings"])
        return SessionCore([Leg.parse(str(x)) for x in legs], settings, keep_samples=keep_samples)

    def add_sensor(self, info: SensorInfo) -> None:
        """Start decoding a sensor: a :class:`SensorStream` for legrep, a ``VendorStream`` for a vendor
        model (``info.model`` in ``legrep.sensors.MODELS``; DATA records then hold
        ``encode_notification(channel, data)``)."""
        if info.leg not in self.legs:
            raise InputError(f"sensor {info.name or info.index} is on the {info.leg.value} leg; session legs are {[x.value for x in self.legs]}")
        for index, other in self.infos.items():
            if other.leg is info.leg and index != info.index:
                raise InputError(f"two sensors on the {info.leg.value} leg: {other.name!r} and {info.name!r}")
        if info.model in MODELS:
            config = SensorConfig.from_dict(dict(info.config or {}))
            self.streams[info.index] = VendorStream(info.leg, get_model(info.model), config)
            self._batch[info.index] = []
        else:
            stream = SensorStream(info)
            self.streams[info.index] = self.legrep[info.index] = stream
        self.infos[info.index] = info

    def process(self, rec: Record) -> list[AnalysisEvent]:
        """Consume one record; returns the analysis events (RepClosed / SetClosed) it caused."""
        self.last_t_s = max(self.last_t_s, rec.t_s)
        events: list[AnalysisEvent] = []
        kind = rec.kind
        if kind == Kind.SENSOR:
            self.add_sensor(SensorInfo.from_json(rec.json()))
            return events
        if kind in (Kind.EVENT, Kind.END):
            value = rec.json()
            self.log.append(LoggedEvent(rec.t_s, rec.sensor, str(value.get("type", kind_name(kind).lower())), value))
            if kind == Kind.EVENT and rec.sensor is not None:
                kind_text = str(value.get("type", ""))
                target = self.legrep.get(rec.sensor)
                if target is not None:
                    target.link_event(kind_text, rec.t_s)
                info = self.infos.get(rec.sensor)
                if info is not None and kind_text in _LINK_CHANGES:
                    # (the analysis stops waiting for a thigh whose link is down: host/reps/gait.py)
                    events += self.analyzer.link_event(info.leg, kind_text == EventType.RECONNECT.value)
                    self.events += events
            return events
        if kind not in (Kind.DATA, Kind.TX, Kind.RX, Kind.STATUS):
            return events  # META again or an unknown (newer) kind
        stream = self.streams.get(rec.sensor) if rec.sensor is not None else None
        if stream is None:
            raise RecordingError(f"{kind_name(kind)} record at t={rec.t_s:.3f}s for sensor {rec.sensor}, which has no SENSOR record")
        block: ImuBlock | None = None
        if kind == Kind.DATA:
            block = stream.data(rec.payload, rec.t_s)
        elif kind == Kind.TX:
            stream.sent(rec.payload, rec.t_s)
        elif kind == Kind.RX:
            try:
                reply = decode_control_reply(rec.payload)
            except PacketError as exc:
                logger.info("%s: %s", stream.leg.value, exc)
            else:
                block = stream.reply(reply, rec.t_s)
        elif kind == Kind.STATUS:
            stream.status_record(rec.payload, rec.t_s)
        if block is not None and rec.sensor in self._batch:
            block = self._batched(rec.sensor, block)
        if block is not None:
            events += self._feed(stream.leg, block)
        for other in self.streams.values():
            if other is not stream:
                b = other.poll(rec.t_s)
                if b is not None:
                    events += self._feed(other.leg, b)
        self.events += events
        return events

    def _batched(self, index: int, block: ImuBlock) -> ImuBlock | None:
        """Hold a vendor sensor's block until the held samples span ``VENDOR_BATCH_S``."""
        held = self._batch[index]
        held.append(block)
        if held[-1].time_s[-1] - held[0].time_s[0] < VENDOR_BATCH_S:
            return None
        self._batch[index] = []
        return concat_blocks(held)

    def _feed(self, leg: Leg, block: ImuBlock) -> list[AnalysisEvent]:
        # A sample not after every earlier one of its leg (a sensor clock that jumped or restarted:
        # the mapped clock never runs back, it stands still) is dropped and counted, not allowed to
        # stop the analysis. Against the running maximum: the same samples for any chunking.
        t = block.time_s
        last = self._last_time_s.get(leg, -math.inf)
        if len(t) and not (t[0] > last and bool((t[1:] > t[:-1]).all())):
            before = np.maximum.accumulate(np.concatenate([[last], t[:-1]]))
            keep = t > before
            self.time_back[leg] = self.time_back.get(leg, 0) + int((~keep).sum())
            block = ImuBlock(t[keep], block.acc_g[keep], block.gyr_dps[keep])
            if not len(block):
                self._last_time_s[leg] = max(last, float(t.max()))
                return []
        if len(block):
            self._last_time_s[leg] = max(last, float(block.time_s[-1]))
        if self._keep_samples:
            self._samples[leg].append(block)
        return list(self.analyzer.update(leg, block))

    def samples(self, leg: Leg) -> ImuBlock:
        """Every sample of ``leg`` fed to the analysis (needs ``keep_samples=True``)."""
        parts = self._samples.get(leg, [])
        if not parts:
            return empty_block()
        return ImuBlock(
            np.concatenate([b.time_s for b in parts]),
            np.concatenate([b.acc_g for b in parts]),
            np.concatenate([b.gyr_dps for b in parts]),
        )

    def resend_ranges(self, index: int, t_s: float) -> list[tuple[int, int]]:
        """Packet ranges of sensor ``index`` the live edge should ask to be re-sent now (none for a
        vendor sensor: it keeps nothing)."""
        stream = self.legrep.get(index)
        return [] if stream is None else stream.tracker.resend_requests(t_s)

    def resend_requests(self, t_s: float) -> list[tuple[int, bytes]]:
        """``(sensor index, RESEND request)`` for every gap of every legrep sensor due now."""
        return [(index, resend_request(a, b)) for index in self.legrep for a, b in self.resend_ranges(index, t_s)]

    def missing(self, index: int) -> bool:
        """True while sensor ``index`` has gaps or held packets the tracker still waits for."""
        stream = self.legrep.get(index)
        return stream is not None and bool(stream.tracker.missing() or stream.tracker.held_packets)

    def angle_deg(self, leg: Leg) -> float | None:
        return self.analyzer.angle_deg(leg)

    def finish(self) -> SessionResult:
        """End of stream: release held samples, resolve pending reps, add transport diagnostics."""
        for index, stream in self.streams.items():
            held = self._batch.get(index, [])
            block = stream.flush()
            if block is not None:
                held.append(block)
            if held:
                self._batch[index] = []
                self.events += self._feed(stream.leg, concat_blocks(held))
        result = self.analyzer.finish()
        diagnostics = result.diagnostics
        for stream in self.streams.values():
            own = stream.diagnostics()
            diagnostics = diagnostics.with_sensor(stream.leg, link=own.link, clock=own.clock, vendor=own.vendor)
        for leg, count in self.time_back.items():
            diagnostics = diagnostics.with_sensor(leg, samples_time_back=int(count))
        return SessionResult(result.reps, result.sets, result.legs, result.uneven, diagnostics, result.traces)

    def received_samples(self) -> dict[Leg, int]:
        return {s.leg: s.samples for s in self.streams.values()}


def concat_blocks(blocks: Sequence[ImuBlock]) -> ImuBlock:
    """One block of ``blocks`` in order."""
    if len(blocks) == 1:
        return blocks[0]
    return ImuBlock(
        np.concatenate([b.time_s for b in blocks]),
        np.concatenate([b.acc_g for b in blocks]),
        np.concatenate([b.gyr_dps for b in blocks]),
    )


def empty_block() -> ImuBlock:
    return ImuBlock(np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3)))
