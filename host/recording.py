"""Session recording files: the file format only (format in docs/recording.md).

A recording keeps the raw bytes (IMU packets, control requests and replies, status records) with the
host arrival time, plus metadata and events, as :class:`~legrep.records.Record` values (the record
vocabulary, :mod:`legrep.records`). :class:`RecordingWriter` appends them, :class:`RecordingReader`
reads them back; replaying them through the live path is :mod:`legrep.replay`.

File layout: a magic line, then length-prefixed records, each protected by a CRC-32::

    b"LEGREP-REC 1\\n"
    record: u32 body_length | body | u32 crc32(body_length bytes + body)
    body:   u8 kind | u8 sensor (0xFF: none) | f64 t_s (host seconds since session start) | payload

All little-endian. The writer appends and flushes every record (at most one second can be lost
to a kill); a reader reports a truncated or torn last record in one line and ignores it.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

from .errors import RecordingError
from .records import HEAD, LENGTH, MAX_RECORD, NO_SENSOR, Kind, Record, encode_record

__all__ = ["FORMAT_VERSION", "MAGIC", "RecordingReader", "RecordingWriter", "Kind", "Record", "encode_record"]

logger = logging.getLogger(__name__)

MAGIC = b"LEGREP-REC 1\n"
FORMAT_VERSION = 1
_LEN = LENGTH
_HEAD = HEAD


class RecordingWriter:
    """Append records to a new recording file, flushing each one (so a kill loses little).

    Parameters
    ----------
    path : the file to create (an existing file is an error unless ``overwrite``).
    meta : session metadata written as the first record (see docs/recording.md).
    """

    def __init__(self, path: str | os.PathLike[str], meta: dict[str, Any], overwrite: bool = False) -> None:
        self.path = Path(path)
        try:
            self._fh: BinaryIO | None = open(self.path, "wb" if overwrite else "xb")
        except FileExistsError:
            raise RecordingError(f"{self.path}: a new file expected, but it exists (choose another name)") from None
        except OSError as exc:
            raise RecordingError(f"{self.path}: cannot create recording: {exc.strerror or exc}") from None
        self._fh.write(MAGIC)
        meta = {"format": FORMAT_VERSION, **meta}
        self.records = 0
        self.write(Record.of_json(Kind.META, None, 0.0, meta))

    def write(self, rec: Record) -> None:
        if self._fh is None:
            raise RecordingError(f"{self.path}: recording already closed")
        self._fh.write(encode_record(rec))
        self._fh.flush()
        self.records += 1

    def add(self, kind: Kind, sensor: int | None, t_s: float, payload: bytes) -> Record:
        rec = Record(kind, sensor, t_s, bytes(payload))
        self.write(rec)
        return rec

    def close(self, t_s: float | None = None, summary: dict[str, Any] | None = None) -> None:
        """Write the END record and close (idempotent)."""
        if self._fh is None:
            return
        self.write(Record.of_json(Kind.END, None, t_s or 0.0, summary or {}))
        self._fh.close()
        self._fh = None

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class RecordingReader:
    """Iterate the records of a recording file.

    ``meta`` is read on open. Iteration stops at a truncated or torn last record, which is
    reported in one warning line and recorded in ``truncated``. A damaged record followed by
    more data is a :class:`RecordingError` (with its byte offset).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._data = self.path.read_bytes()
        except IsADirectoryError:
            raise RecordingError(f"{self.path}: a recording file expected, got a directory") from None
        except OSError as exc:
            raise RecordingError(f"{self.path}: cannot read recording: {exc.strerror or exc}") from None
        if not self._data.startswith(MAGIC):
            head = self._data[: len(MAGIC)]
            raise RecordingError(f"{self.path}: a legrep recording expected (starts {MAGIC!r}), got {head!r}")
        self.truncated: str | None = None
        self.clean_end = False
        first = next(self._iter(), None)
        if first is None or first.kind != Kind.META:
            raise RecordingError(f"{self.path}: the first record must be META, got {None if first is None else first.kind}")
        self.meta = first.json()
        if self.meta.get("format") != FORMAT_VERSION:
            raise RecordingError(f"{self.path}: recording format {FORMAT_VERSION} expected, got {self.meta.get('format')!r}")
        # One validating pass: damage in the middle raises now, a torn tail is reported once.
        self.records = sum(1 for _ in self._iter())

    def _iter(self) -> Iterator[Record]:
        data = self._data
        pos = len(MAGIC)
        index = 0
        while pos < len(data):
            if len(data) - pos < 4:
                self._truncate(pos, index, "length field cut short")
                return
            (length,) = _LEN.unpack_from(data, pos)
            end = pos + 4 + length + 4
            if length < _HEAD.size or length > MAX_RECORD:
                if end >= len(data) or length > MAX_RECORD and len(data) - pos < MAX_RECORD:
                    self._truncate(pos, index, f"impossible length {length}")
                    return
                raise RecordingError(f"{self.path}: record {index} at byte {pos}: impossible length {length}")
            if end > len(data):
                self._truncate(pos, index, f"needs {end - pos} bytes, {len(data) - pos} left")
                return
            (crc,) = _LEN.unpack_from(data, end - 4)
            if zlib.crc32(data[pos : end - 4]) != crc:
                if end == len(data):
                    self._truncate(pos, index, "CRC mismatch (torn write)")
                    return
                raise RecordingError(f"{self.path}: record {index} at byte {pos}: CRC mismatch (file damaged)")
            kind, sensor, t_s = _HEAD.unpack_from(data, pos + 4)
            payload = data[pos + 4 + _HEAD.size : end - 4]
            try:
                kind = Kind(kind)
            except ValueError:
                pass
            yield Record(kind, None if sensor == NO_SENSOR else sensor, t_s, payload)
            if kind == Kind.END:
                self.clean_end = True
            pos = end
            index += 1

    def _truncate(self, pos: int, index: int, why: str) -> None:
        if self.truncated is None:
            self.truncated = f"{self.path}: last record ({index}, byte {pos}) is incomplete ({why}); ignored"
            logger.warning(self.truncated)

    def __iter__(self) -> Iterator[Record]:
        """All records after META, in file order (unknown kinds included, as plain ints)."""
        it = self._iter()
        next(it, None)
        yield from it

    def sensors(self) -> list[dict[str, Any]]:
        return [r.json() for r in self if r.kind == Kind.SENSOR]
