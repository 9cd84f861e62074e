"""The record vocabulary: what a session is made of, as the edge saw it (a leaf module).

Everything a driver sees (an IMU packet, a control request sent, its reply, a status record, a link
event) becomes one :class:`Record` stamped with session seconds. Live capture writes records to the
recording file (:mod:`legrep.recording`, the file format) *and* feeds them to the session core
(:mod:`legrep.live_core`); replay (:mod:`legrep.replay`) reads them back and feeds the same core.
This module only names and encodes them; it imports nothing of legrep but :mod:`legrep.errors`,
so every other module can use it without import cycles.

Record framing (docs/recording.md)::

    record: u32 body_length | body | u32 crc32(body_length bytes + body)
    body:   u8 kind | u8 sensor (0xFF: none) | f64 t_s (host seconds since session start) | payload
"""

from __future__ import annotations

import enum
import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from .errors import RecordingError

NO_SENSOR = 0xFF
"""The sensor byte of a record that belongs to no sensor (META, END, session events)."""
MAX_RECORD = 1 << 20
"""Largest record body a reader accepts (bytes)."""
LENGTH = struct.Struct("<I")
"""The u32 length prefix and the u32 CRC trailer."""
HEAD = struct.Struct("<BBd")
"""kind, sensor, t_s at the start of every body."""


class Kind(enum.IntEnum):
    """Record kinds. Readers skip kinds they do not know (forward compatible)."""

    META = 1
    """JSON: session metadata (first record)."""
    SENSOR = 2
    """JSON: one sensor (index, leg, address, name, model, serial, firmware, status hex)."""
    DATA = 3
    """An IMU data packet exactly as received."""
    TX = 4
    """A control request the host sent."""
    RX = 5
    """A control reply the sensor sent."""
    STATUS = 6
    """A 32-byte status record (read or notified)."""
    EVENT = 7
    """JSON: ``{"type": EventType, ...}`` (connect, disconnect, reconnect, start, stop, note)."""
    END = 8
    """JSON: the writer closed the file cleanly."""


class EventType(str, enum.Enum):
    """The ``type`` of an EVENT record (the strings are the file format; unknown ones are kept)."""

    CONNECT = "connect"
    DISCONNECT = "disconnect"
    RECONNECT = "reconnect"
    START = "start"
    STOP = "stop"
    NOTE = "note"


@dataclass(frozen=True, slots=True)
class Record:
    """One record: ``sensor`` is an index into the SENSOR records (or ``None``)."""

    kind: Kind | int
    sensor: int | None
    t_s: float
    payload: bytes

    def json(self) -> dict[str, Any]:
        """The payload of a JSON record; RecordingError if it is not a JSON object."""
        try:
            value = json.loads(self.payload.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RecordingError(f"record {kind_name(self.kind)} at t={self.t_s:.3f}s: JSON object expected, got {exc}") from None
        if not isinstance(value, dict):
            raise RecordingError(f"record {kind_name(self.kind)}: JSON object expected, got {type(value).__name__}")
        return value

    @staticmethod
    def of_json(kind: Kind, sensor: int | None, t_s: float, value: dict[str, Any]) -> "Record":
        return Record(kind, sensor, t_s, json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8"))

    @staticmethod
    def event(sensor: int | None, t_s: float, type: EventType, **fields: Any) -> "Record":
        """An EVENT record of ``type`` with extra JSON ``fields``."""
        return Record.of_json(Kind.EVENT, sensor, t_s, {"type": type.value, **fields})


def kind_name(kind: Kind | int) -> str:
    """``DATA``, ``EVENT``... or ``kind 42`` for a kind this version does not know."""
    try:
        return Kind(kind).name
    except ValueError:
        return f"kind {int(kind)}"


def encode_record(rec: Record) -> bytes:
    """The bytes of one framed record (length, body, CRC-32)."""
    sensor = NO_SENSOR if rec.sensor is None else rec.sensor
    if not 0 <= sensor <= 0xFF:
        raise ValueError(f"sensor index must be 0..254 or None, got {rec.sensor}")
    body = HEAD.pack(int(rec.kind), sensor, float(rec.t_s)) + bytes(rec.payload)
    length = LENGTH.pack(len(body))
    return length + body + LENGTH.pack(zlib.crc32(length + body))
