"""Generic IMU CSV files: one thigh sensor per file, units named in the header.

The canonical header is::

    time_s,acc_x_g,acc_y_g,acc_z_g,gyr_x_dps,gyr_y_dps,gyr_z_dps

Forgiving where it is safe: any column order, extra columns (ignored, need not be
numeric), whitespace around names and values, ``\\r\\n`` line ends, a UTF-8 byte
order mark, blank lines, and convertible units (``time_ms``/``time_us``,
``acc_*_mps2``, ``gyr_*_rads``). Strict where guessing would corrupt data: a
missing column, a missing or unknown unit, a row with the wrong number of fields
(a truncated last line included), a value that is not a number, NaN or infinity,
time that does not strictly increase, and fewer than two samples. Every problem is
an :class:`~legrep.errors.InputError` whose message is one line::

    <file>:<line>: <what was expected>, got <what arrived>

The parser (:class:`ImuCsvParser`, fed bytes in blocks; :func:`parse_imu_csv` for a whole text)
does no I/O; :func:`iter_imu_csv` (block by block, memory flat in the file's length),
:func:`read_imu_csv` and :func:`write_imu_csv` are the file edges. A problem is reported at the
first bad line in file order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .model import FloatArray, ImuBlock

__all__ = [
    "STANDARD_GRAVITY_MPS2",
    "CANONICAL_HEADER",
    "BLOCK_BYTES",
    "ImuCsvParser",
    "concat_imu_blocks",
    "iter_imu_csv",
    "parse_imu_csv",
    "read_imu_csv",
    "write_imu_csv",
    "format_imu_csv",
]

# Standard acceleration of gravity, 9.80665 m/s^2 exactly (3rd CGPM 1901; ISO 80000-3:2019, 3-12.a).
STANDARD_GRAVITY_MPS2 = 9.80665
_DEG_PER_RAD = 180.0 / math.pi

CANONICAL_HEADER = ("time_s", "acc_x_g", "acc_y_g", "acc_z_g", "gyr_x_dps", "gyr_y_dps", "gyr_z_dps")

# quantity -> {unit suffix: (multiplier, divisor) to the canonical unit (s, g, deg/s)}
_Conversion = tuple[float, float]
_TIME_UNITS: dict[str, _Conversion] = {"s": (1.0, 1.0), "ms": (1.0, 1e3), "us": (1.0, 1e6)}
_ACC_UNITS: dict[str, _Conversion] = {"g": (1.0, 1.0), "mps2": (1.0, STANDARD_GRAVITY_MPS2)}
_GYR_UNITS: dict[str, _Conversion] = {"dps": (1.0, 1.0), "rads": (_DEG_PER_RAD, 1.0)}
_QUANTITIES: dict[str, dict[str, _Conversion]] = {
    "time": _TIME_UNITS,
    "acc_x": _ACC_UNITS,
    "acc_y": _ACC_UNITS,
    "acc_z": _ACC_UNITS,
    "gyr_x": _GYR_UNITS,
    "gyr_y": _GYR_UNITS,
    "gyr_z": _GYR_UNITS,
}
_ORDER = tuple(_QUANTITIES)


def _expected_units(quantity: str) -> str:
    units = [f"_{u}" for u in _QUANTITIES[quantity]]
    return ", ".join(units[:-1]) + " or " + units[-1]


def _quantity_of(name: str) -> str | None:
    """The quantity a header name claims (``acc_x_mps2`` -> ``acc_x``), or None for extra columns."""
    for quantity in _ORDER:
        if name == quantity or name.startswith(quantity + "_"):
            return quantity
    return None


def _parse_header(source: str, lineno: int, line: str) -> tuple[list[int], list[_Conversion], int]:
    """Column index and unit factor of each quantity in ``_ORDER``, and the field count."""
    names = [n.strip().strip('"').strip().lower() for n in line.split(",")]
    if len(names) < 2:
        raise InputError(
            f"{source}:{lineno}: a comma-separated header like {','.join(CANONICAL_HEADER)} expected, "
            f"got {line.strip()[:80]!r}"
        )
    valid: dict[str, list[tuple[int, _Conversion, str]]] = {q: [] for q in _ORDER}
    unknown: dict[str, list[str]] = {q: [] for q in _ORDER}
    for index, name in enumerate(names):
        quantity = _quantity_of(name)
        if quantity is None:
            continue  # extra column: ignored
        unit = name[len(quantity) + 1 :]
        if unit in _QUANTITIES[quantity]:
            valid[quantity].append((index, _QUANTITIES[quantity][unit], name))
        else:
            unknown[quantity].append(name)
    found: dict[str, tuple[int, _Conversion, str]] = {}
    for quantity in _ORDER:
        if len(valid[quantity]) > 1:
            first, second = (v[2] for v in valid[quantity][:2])
            raise InputError(f"{source}:{lineno}: {quantity}: expected one column, got two ({first!r} and {second!r})")
        if valid[quantity]:
            found[quantity] = valid[quantity][0]  # e.g. acc_x_g beside acc_x_raw: the raw one is ignored
        elif unknown[quantity]:
            raise InputError(
                f"{source}:{lineno}: {quantity}: expected unit suffix {_expected_units(quantity)}, "
                f"got {unknown[quantity][0]!r}"
            )
    missing = [q for q in _ORDER if q not in found]
    if missing:
        wanted = "; ".join(f"{q} ({' or '.join(q + '_' + u for u in _QUANTITIES[q])})" for q in missing)
        noun = "column" if len(missing) == 1 else "columns"
        raise InputError(f"{source}:{lineno}: {noun} {wanted} expected, got columns {','.join(names)!r}")
    return [found[q][0] for q in _ORDER], [found[q][1] for q in _ORDER], len(names)


def _load(lines: list[str], cols: list[int]) -> np.ndarray:
    """The numbers in columns ``cols`` of ``lines`` (C parser); ValueError on a field that is not one."""
    return np.loadtxt(lines, delimiter=",", dtype=np.float64, comments=None, usecols=cols, ndmin=2)


_SKIP = 0xFF
BLOCK_BYTES = 1 << 22
"""Bytes read per block by :func:`iter_imu_csv` (about 50 000 rows of a canonical file)."""
_ROWS_PER_BLOCK = 1 << 16
"""At most this many samples per returned block."""
_EMPTY: tuple[FloatArray, FloatArray, FloatArray] = (np.empty(0), np.empty((0, 3)), np.empty((0, 3)))


@dataclass(slots=True)
class _Header:
    lineno: int
    cols: list[int]
    factors: list[_Conversion]
    n_fields: int
    names: list[str]
    col_map: bytes
    """One byte per field: its target column (0 time, 1-3 acc, 4-6 gyr) or ``_SKIP``."""


class ImuCsvParser:
    """Streaming IMU CSV parser: fed bytes in any slicing, it returns :class:`ImuBlock` values.

    No I/O (``feed`` bytes, then ``finish``): :func:`iter_imu_csv` is the file edge. Any slicing
    of the same bytes gives the same samples and the same first error.

    Each line goes through the C scanner (``legrep._csvscan``), which accepts a strict subset of
    the reference parser below and stops at any other line; that line then goes through the
    reference (``np.loadtxt`` on the line, the checks in the module docstring), which accepts it or
    raises the one-line error. Numbers are identical on both paths (both correctly rounded).

    Parameters
    ----------
    source_name : how errors name the input (usually the file path).
    fast : False sends every line through the reference parser (for tests that compare the two).
    """

    def __init__(self, source_name: str = "<csv>", fast: bool = True) -> None:
        self.source_name = source_name
        self._fast = fast
        self._pending = b""
        self._offset = 0
        """File offset of ``_pending[0]`` (for UTF-8 error offsets)."""
        self._started = False
        self._header: _Header | None = None
        self._lineno = 1
        """Line number of the next line to parse."""
        self._prev_t = -math.inf
        self._prev_line = ""
        self._prev_lineno = 0
        self._prev_at: tuple[bytes | bytearray, int, int] | None = None
        self._rows = 0
        self._arrays = _EMPTY

    @property
    def rows(self) -> int:
        """Samples returned so far."""
        return self._rows

    def feed(self, data: bytes | bytearray | memoryview) -> list[ImuBlock]:
        """Parse the complete lines in ``data`` (and what was held back); returns their samples.

        Raises
        ------
        InputError
            At the first bad line (see the module docstring).
        """
        buf = data if isinstance(data, bytes | bytearray) else bytes(data)
        return self._feed(buf, len(buf))

    def _feed(self, buf: bytes | bytearray, n: int) -> list[ImuBlock]:
        """:meth:`feed` of ``buf[:n]``, which may be reused once this returns (nothing keeps it).

        The line held back from the previous call is joined with this one's first line only (a
        line's bytes), and the rest is scanned where it lies: no copy of the whole buffer (a copy
        and its page faults were a quarter of reading a file)."""
        stop = buf.rfind(b"\n", 0, n) + 1
        if stop == 0:  # no line end yet: all of it waits
            self._pending += bytes(buf[:n])
            return []
        head, self._pending = self._pending, bytes(buf[stop:n])
        head_offset = self._offset
        offset = self._offset + len(head)  # (of buf[0] in the file)
        self._offset = offset + stop
        out: list[ImuBlock] = []
        row = 0
        first = 0
        if head:
            first = buf.find(b"\n", 0, stop) + 1
            head += bytes(buf[:first])
            row = self._lines(head, 0, len(head), head_offset, False, first < stop, row, out)
        if first < stop:
            row = self._lines(buf, first, stop, offset, False, False, row, out)
        self._flush(row, out)
        if self._prev_at is not None and not isinstance(self._prev_at[0], bytes):  # (buf is reused)
            b, lo, hi = self._prev_at
            self._prev_at = (bytes(b[lo:hi]), 0, hi - lo)
        return out

    def finish(self) -> list[ImuBlock]:
        """The end of the input: parse the last (unterminated) line and check the whole file.

        Raises
        ------
        InputError
            Empty file, header only, fewer than 2 samples, or a bad last line.
        """
        buf, self._pending = self._pending, b""
        blocks = self._process(buf, len(buf), self._offset, final=True)
        src = self.source_name
        if self._header is None:
            raise InputError(f"{src}:1: a header line ({','.join(CANONICAL_HEADER)}) expected, got an empty file")
        if self._rows == 0:
            raise InputError(f"{src}:{self._header.lineno + 1}: data rows expected after the header, got only the header")
        if self._rows < 2:
            raise InputError(f"{src}:{self._prev_lineno}: at least 2 samples expected, got {self._rows}")
        return blocks

    # ------------------------------------------------------------------
    def _decode(self, raw: bytes | bytearray, offset: int) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{self.source_name}: UTF-8 text expected, got a non-text byte at offset {offset + exc.start}"
            ) from None

    def _process(self, buf: bytes, stop: int, offset: int, final: bool) -> list[ImuBlock]:
        """The lines of ``buf[:stop]`` (``buf[0]`` is at file offset ``offset``)."""
        out: list[ImuBlock] = []
        self._flush(self._lines(buf, 0, stop, offset, final, False, 0, out), out)
        return out

    def _lines(self, buf: bytes | bytearray, pos: int, stop: int, offset: int, final: bool, more: bool, row: int,
               out: list[ImuBlock]) -> int:  # fmt: skip
        """The lines of ``buf[pos:stop]`` (``buf[0]`` is at file offset ``offset``) into the arrays
        from ``row`` on (full ones go to ``out``); ``more``: lines of the same call follow them (the
        last line here is not the last one so far). Returns the row count."""
        if not self._started and pos < stop:
            self._started = True
            if buf.startswith(b"\xef\xbb\xbf", pos):
                pos += 3
        while self._header is None and pos < stop:
            nl = buf.find(b"\n", pos, stop)
            end = stop if nl < 0 else nl
            last = final and not buf[end:stop].strip()
            lines = self._decode(buf[pos:end], offset + pos).splitlines() or [""]
            for k, line in enumerate(lines):
                if self._header is not None:  # a line break str.splitlines knows (e.g. a lone CR)
                    row = self._slow_line(line, last and k == len(lines) - 1, row)
                elif line.strip():
                    self._header = self._make_header(self._lineno, line)
                self._lineno += 1
            pos = end + 1
        if self._header is not None and pos < stop:
            row = self._scan(buf, pos, stop, offset, final, more, row, out)
        return row

    def _make_header(self, lineno: int, line: str) -> _Header:
        cols, factors, n_fields = _parse_header(self.source_name, lineno, line)
        col_map = bytearray([_SKIP] * n_fields)
        for target, c in enumerate(cols):
            col_map[c] = target
        names = [n.strip() for n in line.split(",")]
        return _Header(lineno, cols, factors, n_fields, names, bytes(col_map))

    def _scan(self, buf: bytes | bytearray, pos: int, stop: int, offset: int, final: bool, more: bool, row: int,
              out: list[ImuBlock]) -> int:  # fmt: skip
        """Rows of ``buf[pos:stop]`` into ``self._arrays`` from ``row`` on (full arrays go to ``out``):
        the C scanner, and the reference parser for each line it stops at. Returns the row count."""
        from ._csvscan import scan

        assert self._header is not None
        # a row takes at least 2 bytes per field; real rows take ~10 per field: start there, and
        # hand full arrays on as blocks rather than over-allocate
        cap = min(_ROWS_PER_BLOCK, (stop - pos) // (10 * self._header.n_fields) + 16)
        self._grow(row, cap)
        col_map = self._header.col_map
        view = memoryview(buf)[:stop]
        while pos < stop:
            t, acc, gyr = self._arrays
            if not self._fast:
                status, last_pos = 1, -1
            else:
                pos, row, self._lineno, self._prev_t, last_pos, last_lineno, status = scan(
                    view, pos, t, acc, gyr, row, col_map, self._prev_t, self._lineno
                )
            if last_pos >= 0:
                nl = buf.find(b"\n", last_pos, stop)
                self._prev_at = (buf, last_pos, stop if nl < 0 else nl)
                self._prev_lineno = last_lineno
            if status == 0:
                break
            if status == 2:
                self._flush(row, out)
                row = 0
                self._grow(0, cap)
                continue
            nl = buf.find(b"\n", pos, stop)
            end = stop if nl < 0 else nl
            tail_blank = not buf[end:stop].strip()
            lines = self._decode(buf[pos:end], offset + pos).splitlines() or [""]
            if not final and not more and tail_blank and len(lines) == 1 and lines[0].count(",") + 1 < self._header.n_fields:
                # too few fields on the last line so far: the next block, or the end of the file,
                # tells whether it is a truncated last line (the message says so)
                self._pending = bytes(buf[pos:stop]) + self._pending
                self._offset = offset + pos
                return row
            for k, line in enumerate(lines):
                if row >= len(self._arrays[0]) and row >= cap:
                    self._flush(row, out)
                    row = 0
                    self._grow(0, cap)
                row = self._slow_line(line, final and tail_blank and k == len(lines) - 1, row)
                self._lineno += 1
            pos = end + 1
        return row

    def _flush(self, row: int, out: list[ImuBlock]) -> None:
        """The first ``row`` rows of ``self._arrays`` become a block in ``out``; fresh arrays."""
        t, acc, gyr = self._arrays
        self._arrays = _EMPTY
        out.extend(self._block(t[:row], acc[:row], gyr[:row]))

    def _grow(self, row: int, n: int) -> None:
        """Make ``self._arrays`` hold at least ``n`` rows, keeping the first ``row``."""
        t, acc, gyr = self._arrays
        if len(t) >= n:
            return
        t2, acc2, gyr2 = np.empty(n), np.empty((n, 3)), np.empty((n, 3))
        t2[:row], acc2[:row], gyr2[:row] = t[:row], acc[:row], gyr[:row]
        self._arrays = (t2, acc2, gyr2)

    def _prev_text(self) -> str:
        """The line of the previous row (kept as a slice of the buffer until it is needed)."""
        if self._prev_at is not None:
            buf, a, b = self._prev_at
            self._prev_line = buf[a:b].decode("utf-8", "replace").rstrip("\r")
            self._prev_at = None
        return self._prev_line

    def _block(self, t: FloatArray, acc: FloatArray, gyr: FloatArray) -> list[ImuBlock]:
        if len(t) == 0:
            return []
        assert self._header is not None
        self._rows += len(t)
        f = self._header.factors
        columns = [(t, f[0])] + [(acc[:, k], f[1 + k]) for k in range(3)] + [(gyr[:, k], f[4 + k]) for k in range(3)]
        for arr, (mul, div) in columns:
            if mul != 1.0:
                arr *= mul
            if div != 1.0:
                arr /= div
        return [ImuBlock(t, acc, gyr)]

    def _slow_line(self, line: str, last: bool, row: int) -> int:
        """The reference parser for one line: store its sample at ``row`` or raise the error."""
        h = self._header
        assert h is not None
        src, lineno = self.source_name, self._lineno
        if not line or line.isspace():
            return row
        n_commas = line.count(",")
        if n_commas != h.n_fields - 1:
            got = n_commas + 1
            what = " (truncated last line?)" if last and got < h.n_fields else ""
            raise InputError(
                f"{src}:{lineno}: {h.n_fields} comma-separated fields expected (as in the header), "
                f"got {got}{what}: {line.strip()[:80]!r}"
            )
        fields = line.split(",")
        try:
            values = _load([line], h.cols)[0]
        except ValueError:
            for c in h.cols:
                try:
                    if not fields[c].strip():
                        raise ValueError("empty field")
                    _load([fields[c]], [0])
                except ValueError:
                    raise InputError(f"{src}:{lineno}: column {h.names[c]}: a number expected, got {fields[c].strip()!r}") from None
            raise InputError(f"{src}:{lineno}: numbers expected, got {line.strip()[:80]!r}") from None
        finite = np.isfinite(values)
        if not finite.all():
            c = h.cols[int(np.flatnonzero(~finite)[0])]
            raise InputError(f"{src}:{lineno}: column {h.names[c]}: a finite number expected, got {fields[c].strip()!r}")
        t_now = float(values[0])
        if self._prev_lineno and not t_now > self._prev_t:
            kind = "duplicated" if t_now == self._prev_t else "going back"
            before = self._prev_text().split(",")[h.cols[0]].strip()
            raise InputError(
                f"{src}:{lineno}: column {h.names[h.cols[0]]}: strictly increasing time expected, "
                f"got {kind}: {fields[h.cols[0]].strip()} after {before} (line {self._prev_lineno})"
            )
        self._grow(row, row + 1 if row < 16 else 2 * row)
        t, acc, gyr = self._arrays
        t[row], acc[row], gyr[row] = values[0], values[1:4], values[4:7]
        self._prev_t, self._prev_line, self._prev_lineno, self._prev_at = t_now, line, lineno, None
        return row + 1


def parse_imu_csv(text_or_lines: str | Iterable[str], source_name: str = "<csv>") -> ImuBlock:
    """Parse an IMU CSV (text or lines) into an :class:`ImuBlock` in g and deg/s.

    Parameters
    ----------
    text_or_lines : the whole file as one string, or its lines (with or without line ends).
    source_name : how errors name the input (usually the file path).

    Returns
    -------
    ImuBlock
        ``time_s`` (N,) s, strictly increasing; ``acc_g`` (N, 3) g; ``gyr_dps`` (N, 3) deg/s; N >= 2.

    Raises
    ------
    InputError
        One line ``<source>:<line>: <expected>, got <arrived>`` for any problem listed in the
        module docstring.
    """
    if isinstance(text_or_lines, str):
        text = text_or_lines
    else:
        text = "".join(line.rstrip("\r\n") + "\n" for line in text_or_lines)
    parser = ImuCsvParser(source_name)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{source_name}: UTF-8 text expected, got a lone surrogate at character {exc.start}") from None
    blocks = parser.feed(data) + parser.finish()
    return concat_imu_blocks(blocks)


def concat_imu_blocks(blocks: Sequence[ImuBlock]) -> ImuBlock:
    """One block of ``blocks`` in order (an empty block for none)."""
    if len(blocks) == 1:
        return blocks[0]
    if not blocks:
        return ImuBlock(np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3)))
    return ImuBlock(
        np.concatenate([b.time_s for b in blocks]),
        np.concatenate([b.acc_g for b in blocks]),
        np.concatenate([b.gyr_dps for b in blocks]),
    )


def iter_imu_csv(path: str | os.PathLike[str], block_bytes: int = BLOCK_BYTES) -> Iterator[ImuBlock]:
    """The samples of one sensor's IMU CSV file, block by block (memory flat in the file's length).

    Raises
    ------
    InputError
        The file is missing, a directory, unreadable, not UTF-8 text, or its content is invalid
        (raised when the bad line is reached; the blocks before it have been yielded).
    """
    p = Path(path)
    parser = ImuCsvParser(str(path))
    try:
        fh = open(p, "rb")
    except OSError as exc:
        raise _file_error(p, "IMU CSV file", exc) from None
    buf = bytearray(max(1, block_bytes))  # (read into again and again: no new pages per block)
    with fh:
        while True:
            try:
                n = fh.readinto(buf)
            except OSError as exc:
                raise _file_error(p, "IMU CSV file", exc) from None
            if not n:
                break
            yield from parser._feed(buf, n)  # (a list: buf is free again before the next read)
    yield from parser.finish()


def read_imu_csv(path: str | os.PathLike[str]) -> ImuBlock:
    """Read one sensor's IMU CSV file (see :func:`parse_imu_csv`, :func:`iter_imu_csv`).

    Raises
    ------
    InputError
        The file is missing, a directory, unreadable, not UTF-8 text, or its content is invalid.
    """
    return concat_imu_blocks(list(iter_imu_csv(path)))


def _file_error(p: Path, what: str, exc: OSError) -> InputError:
    article = "an" if what[:1].lower() in "aeiou" else "a"
    if isinstance(exc, FileNotFoundError):
        return InputError(f"{p}: an existing {what} expected, got no such file")
    if isinstance(exc, IsADirectoryError):
        return InputError(f"{p}: {article} {what} expected, got a directory")
    if isinstance(exc, PermissionError):
        return InputError(f"{p}: a readable {what} expected, got permission denied")
    return InputError(f"{p}: a readable {what} expected, got {exc.strerror or exc}")


def read_text_file(path: str | os.PathLike[str], what: str) -> str:
    """Read a UTF-8 text file (BOM allowed); every failure is one ``InputError`` line naming ``what``.

    ``what`` names the expected file, e.g. ``"IMU CSV file"``.
    """
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: UTF-8 text expected, got a non-text byte at offset {exc.start}") from None
    except OSError as exc:
        raise _file_error(p, what, exc) from None


def format_imu_csv(block: ImuBlock) -> str:
    """The canonical CSV text of ``block`` (header + one row per sample).

    Times get 6 decimals (1 µs); acceleration and angular rate 8 significant digits, far finer
    than any IMU's least significant bit (e.g. 1/16384 g, 1/131 deg/s), so a write/read round trip
    is exact within the LSB.
    """
    return ",".join(CANONICAL_HEADER) + "\n" + "".join(b.decode("ascii") for b in _format_rows(block))


def _format_rows(block: ImuBlock, rows_per_chunk: int = 1 << 16) -> Iterator[bytes]:
    """The data rows of ``block`` as ASCII, in chunks: one C loop per chunk (``_csvscan.format_rows``,
    the text ``"%.6f," + "%.8g," * 6`` gives, 8x faster than formatting each row in Python);
    non-finite values (which ``read_imu_csv`` would refuse anyway) go through Python's formatting."""
    from ._csvscan import format_rows

    fmt = "%.6f," + ",".join(["%.8g"] * 6)
    for lo in range(0, len(block), rows_per_chunk):
        t = np.ascontiguousarray(block.time_s[lo : lo + rows_per_chunk])
        values = np.ascontiguousarray(np.column_stack([block.acc_g[lo : lo + rows_per_chunk], block.gyr_dps[lo : lo + rows_per_chunk]]))
        if np.isfinite(t).all() and np.isfinite(values).all():
            yield format_rows(t, values)
        else:
            data = np.column_stack([t, values])
            yield "".join(fmt % tuple(row) + "\n" for row in data.tolist()).encode("ascii")


class ImuCsvWriter:
    """Write a canonical IMU CSV block by block (memory flat in the length); a context manager.

    Raises
    ------
    InputError
        The path is a directory or not writable.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._fh = open(self.path, "wb")
        except IsADirectoryError:
            raise InputError(f"{self.path}: a file path to write expected, got a directory") from None
        except OSError as exc:
            raise InputError(f"{self.path}: a writable file path expected, got {exc.strerror or exc}") from None
        self._fh.write((",".join(CANONICAL_HEADER) + "\n").encode("ascii"))

    def write(self, block: ImuBlock) -> None:
        for chunk in _format_rows(block):
            self._fh.write(chunk)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "ImuCsvWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_imu_csv(path: str | os.PathLike[str], block: ImuBlock) -> None:
    """Write ``block`` as a canonical IMU CSV file (readable by :func:`read_imu_csv`)."""
    from .fileio import atomic_open

    with atomic_open(path, "wb") as fh:  # temp file + rename: never half a file
        fh.write((",".join(CANONICAL_HEADER) + "\n").encode("ascii"))
        for chunk in _format_rows(block):  # written as formatted: memory flat in the length
            fh.write(chunk)
