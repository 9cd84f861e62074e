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
import mmap
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from .errors import InputError, RecordingError
from .records import HEAD, LENGTH, MAX_RECORD, NO_SENSOR, Kind, Record, encode_record, kind_name

__all__ = ["FORMAT_VERSION", "MAGIC", "RecordingReader", "SkippedRegion", "RecordingWriter", "Kind", "Record", "encode_record"]

logger = logging.getLogger(__name__)

MAGIC = b"LEGREP-REC 1\n"
FORMAT_VERSION = 1
_LEN = LENGTH
_HEAD = HEAD
_KNOWN_KINDS = frozenset(int(k) for k in Kind)
_KNOWN_KINDS_ARRAY = sorted(_KNOWN_KINDS)


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


@dataclass(frozen=True, slots=True)
class SkippedRegion:
    """Bytes a reader could not read as records and skipped (damage, or a zero or garbage tail).

    ``after_t_s`` is the time of the last record before it; ``before_t_s`` that of the first record
    after it (None at the end of the file).
    """

    start_byte: int
    stop_byte: int
    after_t_s: float
    before_t_s: float | None
    why: str

    @property
    def n_bytes(self) -> int:
        return self.stop_byte - self.start_byte

    def describe(self) -> str:
        span = f"after t={self.after_t_s:.3f} s" if self.before_t_s is None else f"t={self.after_t_s:.3f}..{self.before_t_s:.3f} s"
        return f"{self.n_bytes} bytes at byte {self.start_byte} ({self.why}; {span})"


_RESYNC_WINDOW = 1 << 16
"""Bytes examined per vectorised step of the resynchronising scan."""
WALK_RECORDS = 1 << 16
"""Records the validating pass (and an iteration) takes at a time; their pages are given back after."""
_MAX_T_S = 1e12
"""Host times are seconds (since the session start, or a wall clock): beyond +-1e12 s is damage."""


def _map(path: Path) -> bytes | mmap.mmap:
    """The file's bytes: a read-only map of a regular file (nothing copied; the pages a replay has
    read are given back as it goes, :meth:`RecordingReader.release`), else (empty, not mappable)
    its bytes read. (A file cut shorter by another program while mapped would end the process with
    SIGBUS; recordings are only ever appended to.)"""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > 0:
            try:
                return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):  # (a special file: read it)
                pass
        return fh.read()


class RecordingReader:
    """Iterate the records of a recording file, resynchronising after damage.

    ``meta`` is read and validated on open (``format``, ``legs``; ``settings`` checked with the
    same code as ``--set``: invalid stored settings are reported in one warning line and replaced
    by the defaults, ``self.settings_problem`` says why). Then one validating pass over the file:

    * a region that does not parse as records (a damaged length or CRC, zeros or garbage left by a
      power cut) is skipped to the next record whose length and CRC-32 hold (and whose kind and time
      are plausible); each such region is kept in ``skipped`` (bytes and time span) and summed up
      in one warning line; every intact record before and after it is read;
    * a last record cut short is reported in ``truncated`` (one warning line) and ignored;
    * a record whose time is not finite (or beyond 1e12 s) is given the latest time before it
      (counted in ``times_repaired``); times that step back a little are kept as they are (the
      records of several sensors interleave).

    Raises
    ------
    RecordingError
        Not a file, not a recording (magic line), no intact META first, another format number,
        or a META without a valid ``legs`` list.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._data = _map(self.path)
        except IsADirectoryError:
            raise RecordingError(f"{self.path}: a recording file expected, got a directory") from None
        except OSError as exc:
            raise RecordingError(f"{self.path}: cannot read recording: {exc.strerror or exc}") from None
        if self._data[: len(MAGIC)] != MAGIC:
            head = self._data[: len(MAGIC)]
            raise RecordingError(f"{self.path}: a legrep recording expected (starts {MAGIC!r}), got {head!r}")
        self.truncated: str | None = None
        self.clean_end = False
        self.skipped: list[SkippedRegion] = []
        self.times_repaired = 0
        self.settings_problem: str | None = None
        self._report = True  # the first pass (here) reports; later iterations are silent
        first = self._record_at(len(MAGIC), resync=False)
        if first is None or first[0].kind != Kind.META:
            got = "an unreadable first record" if first is None else kind_name(first[0].kind)
            raise RecordingError(f"{self.path}: the first record must be META, got {got}")
        self.meta = first[0].json()
        self._check_meta()
        # One validating pass: damage is found and reported once, here; it keeps where each record is
        # (:meth:`index`), so that later passes need not parse again.
        chunks = list(self._walk_chunks())
        # (arrays: a tenth of the memory of lists, for 8 h of records)
        self._starts = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, np.int64)
        self._ends = np.concatenate([c[1] for c in chunks]) if chunks else np.zeros(0, np.int64)
        self._times = np.concatenate([c[2] for c in chunks]) if chunks else np.zeros(0, np.float64)
        self.records = len(self._starts)
        del chunks
        self._report = False
        if self.skipped:
            total = sum(r.n_bytes for r in self.skipped)
            logger.warning(
                "%s: skipped %d damaged region(s), %d bytes in all (first: %s); every intact record was read",
                self.path, len(self.skipped), total, self.skipped[0].describe(),
            )  # fmt: skip
        if self.times_repaired:
            logger.warning(
                "%s: %d record time(s) were not finite or out of range; given the latest time before them",
                self.path, self.times_repaired,
            )  # fmt: skip

    def _check_meta(self) -> None:
        from .model import Leg
        from .settings import Settings

        if self.meta.get("format") != FORMAT_VERSION:
            raise RecordingError(f"{self.path}: recording format {FORMAT_VERSION} expected, got {self.meta.get('format')!r}")
        legs = self.meta.get("legs")
        if legs is not None:  # (absent: replay says a recording needs legs; a reader still lists records)
            try:
                parsed = [Leg.parse(x) for x in legs] if isinstance(legs, list) and all(isinstance(x, str) for x in legs) else None
            except InputError:
                parsed = None
            if not parsed or len(set(parsed)) != len(parsed):
                raise RecordingError(f"{self.path}: META 'legs' must be a non-empty list of distinct legs (left, right), got {legs!r:.80}")
        if "settings" in self.meta:
            try:
                self.meta["settings"] = Settings.from_dict(self.meta["settings"]).to_dict()
            except InputError as exc:
                self.settings_problem = f"{self.path}: the settings stored in META are not valid ({exc}); using the defaults"
                logger.warning(self.settings_problem)
                del self.meta["settings"]

    def _end_at(self, pos: int, resync: bool) -> int | None:
        """The position after the intact record starting at ``pos``, or None if none is there.

        With ``resync`` (looking for a record after damage) the kind must be known and the time
        plausible as well, so that a chance CRC match in garbage is not taken for a record.
        """
        data = self._data
        if len(data) - pos < 4 + _HEAD.size + 4:
            return None
        length = int(_LEN.unpack_from(data, pos)[0])
        if length < _HEAD.size or length > MAX_RECORD:
            return None
        end = pos + 4 + length + 4
        if end > len(data):
            return None
        if resync:
            kind, _sensor, t_s = _HEAD.unpack_from(data, pos + 4)
            if kind not in _KNOWN_KINDS or not (-_MAX_T_S <= t_s <= _MAX_T_S):
                return None
        (crc,) = _LEN.unpack_from(data, end - 4)
        if zlib.crc32(memoryview(data)[pos : end - 4]) != crc:
            return None
        return end

    def _record(self, pos: int, end: int, t_s: float | None = None) -> Record:
        """The record at ``pos..end`` (checked already); ``t_s`` replaces a repaired time."""
        kind, sensor, stored_t_s = _HEAD.unpack_from(self._data, pos + 4)
        try:
            kind = Kind(kind)
        except ValueError:
            pass
        return Record(kind, None if sensor == NO_SENSOR else sensor, stored_t_s if t_s is None else t_s,
                      self._data[pos + 4 + _HEAD.size : end - 4])  # fmt: skip

    def _record_at(self, pos: int, resync: bool) -> tuple[Record, int] | None:
        """The record starting at ``pos`` and the position after it, or None if none is there."""
        end = self._end_at(pos, resync)
        return None if end is None else (self._record(pos, end), end)

    def _next_record(self, start: int) -> int | None:
        """The first position at or after ``start`` where a plausible intact record begins.

        Vectorised: the length, kind and time fields at every offset of a window are checked with
        numpy, and only the offsets that pass get a CRC (bounded work per byte of damage).
        """
        data = self._data
        n = len(data)
        min_size = 4 + _HEAD.size + 4
        pos = start
        while pos + min_size <= n:
            stop = min(n - min_size + 1, pos + _RESYNC_WINDOW)
            count = stop - pos
            view = memoryview(data)
            lengths = np.ndarray((count,), dtype="<u4", buffer=view, offset=pos, strides=(1,))
            kinds = np.frombuffer(data, dtype=np.uint8, count=count, offset=pos + 4)
            times = np.ndarray((count,), dtype="<f8", buffer=view, offset=pos + 6, strides=(1,))
            offsets = np.arange(pos, stop, dtype=np.int64)
            ok = (lengths >= _HEAD.size) & (lengths <= MAX_RECORD) & (offsets + 8 + lengths.astype(np.int64) <= n)
            ok &= np.isin(kinds, _KNOWN_KINDS_ARRAY)
            with np.errstate(invalid="ignore"):
                ok &= np.abs(times) <= _MAX_T_S
            for candidate in np.flatnonzero(ok):
                at = pos + int(candidate)
                if self._end_at(at, resync=True) is not None:
                    return at
            pos = stop
        return None

    def _skip(self, start: int, stop: int, after_t_s: float, before_t_s: float | None, why: str) -> None:
        if self._report:
            self.skipped.append(SkippedRegion(start, stop, after_t_s, before_t_s, why))

    def _why(self, pos: int) -> str:
        data = self._data
        if len(data) - pos < 4:
            return "length field cut short"
        (length,) = _LEN.unpack_from(data, pos)
        if length < _HEAD.size or length > MAX_RECORD:
            return f"impossible length {length}"
        if pos + 8 + length > len(data):
            return f"needs {8 + length} bytes, {len(data) - pos} left"
        return "CRC mismatch"

    def _iter(self) -> Iterator[Record]:
        """Every record from the first (META) on, from the index the first pass made."""
        if self._report:  # (the first pass itself)
            for start, end, t_s in self._walk():
                yield self._record(start, end, t_s)
            return
        step = WALK_RECORDS
        for k in range(0, len(self._starts), step):
            for start, end, t_s in zip(self._starts[k : k + step].tolist(), self._ends[k : k + step].tolist(),
                                       self._times[k : k + step].tolist()):  # fmt: skip
                yield self._record(start, end, t_s)
            self.release(int(self._starts[min(k + step, len(self._starts)) - 1]))

    def index(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Where the records after META are: ``(starts, ends, times)``, int64 byte offsets in
        :attr:`data` and float64 times (repaired where they were not finite), in file order."""
        return self._starts[1:], self._ends[1:], self._times[1:]

    @property
    def data(self) -> bytes | mmap.mmap:
        """The bytes of the whole file (as found on open): a read-only map of it (see :func:`_map`)."""
        return self._data

    def release(self, stop: int) -> None:
        """The bytes before ``stop`` are read (for now): their pages leave this process's memory
        (they stay in the page cache; reading them again maps them back). Keeps a replay's
        memory flat in the recording's length."""
        if isinstance(self._data, mmap.mmap) and stop >= mmap.PAGESIZE and hasattr(mmap, "MADV_DONTNEED"):
            self._data.madvise(mmap.MADV_DONTNEED, 0, stop - stop % mmap.PAGESIZE)

    def _walk(self) -> Iterator[tuple[int, int, float]]:
        """``(start, end, t_s)`` of every intact record in file order (see :meth:`_walk_chunks`)."""
        for starts, ends, times in self._walk_chunks():
            yield from zip(starts.tolist(), ends.tolist(), times.tolist())

    def _walk_chunks(self) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
        """``(starts, ends, times)`` of the intact records in file order, a run at a time, skipping
        damage (the one validating parse: it records what it skipped, repaired or found cut short).

        Runs of intact records with plausible times are walked in C (``walk_records``: the same
        checks); each record where it stops (damage, a time to repair) is taken here."""
        from ._replaycore import walk_records

        data = self._data
        pos = len(MAGIC)
        index = 0
        last_t = 0.0
        n = len(data)
        min_length = _HEAD.size
        cap = WALK_RECORDS
        buf_s, buf_e, buf_k = np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64)
        buf_t = np.empty(cap, np.float64)
        while pos < n:
            count, pos = walk_records(data, pos, _MAX_T_S, MAX_RECORD, buf_s, buf_e, buf_t, buf_k)
            if count:
                yield buf_s[:count].copy(), buf_e[:count].copy(), buf_t[:count].copy()
                self.release(int(buf_s[0]))  # (the validating pass touches every page once)
                last_t = max(last_t, float(buf_t[:count].max()))
                if (buf_k[:count] == int(Kind.END)).any():
                    self.clean_end = True
                index += count
                if count == cap:
                    continue
            if pos >= n:
                return
            # (the checks of _end_at, inlined, for the record where the C walk stopped)
            end_at: int | None = None
            if n - pos >= 8 + min_length:
                length = _LEN.unpack_from(data, pos)[0]
                if min_length <= length <= MAX_RECORD and pos + 8 + length <= n:
                    end_at = pos + 8 + length
                    if zlib.crc32(memoryview(data)[pos : end_at - 4]) != _LEN.unpack_from(data, end_at - 4)[0]:
                        end_at = None
            if end_at is None:
                why = self._why(pos)
                nxt = self._next_record(pos + 1)
                if nxt is None:  # nothing intact after: the tail
                    rest = data[pos:]
                    if self._report:
                        if rest.count(0) == len(rest) and len(rest) > 8:
                            self._skip(pos, len(data), last_t, None, "zeros at the end (a power cut?)")
                        elif self._record_tail_is_torn(pos):
                            self._truncate(pos, index, why)
                        else:
                            self._skip(pos, len(data), last_t, None, f"unreadable tail: {why}")
                    return
                self._skip(pos, nxt, last_t, float(_HEAD.unpack_from(data, nxt + 4)[2]), why)
                pos = nxt
                continue
            kind, _sensor, t_s = _HEAD.unpack_from(data, pos + 4)
            if not (-_MAX_T_S <= t_s <= _MAX_T_S):  # NaN, infinite or absurd (small steps back are normal:
                # records of several sensors and the host interleave)
                if self._report:
                    self.times_repaired += 1
                t_s = last_t
            if t_s > last_t:
                last_t = t_s
            yield np.array([pos], np.int64), np.array([end_at], np.int64), np.array([t_s], np.float64)
            if kind == Kind.END:
                self.clean_end = True
            pos = end_at
            index += 1

    def _record_tail_is_torn(self, pos: int) -> bool:
        """A last record the writer did not finish: its length fits the file, the rest is missing
        or its CRC fails exactly at the end."""
        data = self._data
        if len(data) - pos < 4:
            return True
        (length,) = _LEN.unpack_from(data, pos)
        if not _HEAD.size <= length <= MAX_RECORD:
            return False
        return bool(pos + 8 + length >= len(data))

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
