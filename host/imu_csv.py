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

The parser (:func:`parse_imu_csv`) does no I/O; :func:`read_imu_csv` and
:func:`write_imu_csv` are the file edges.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .errors import InputError
from .model import ImuBlock

__all__ = [
    "STANDARD_GRAVITY_MPS2",
    "CANONICAL_HEADER",
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


def _locate_bad_value(
    source: str, lines: list[str], linenos: Sequence[int], cols: list[int], header: list[str]
) -> InputError:
    """Slow path after the fast parse failed: bisect to the first line the same parser rejects."""
    lo, hi = 0, len(lines)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            _load(lines[lo:mid], cols)
        except ValueError:
            hi = mid
        else:
            lo = mid
    fields = lines[lo].split(",")
    for c in cols:
        try:
            if not fields[c].strip():
                raise ValueError("empty field")
            _load([fields[c]], [0])
        except ValueError:
            return InputError(f"{source}:{linenos[lo]}: column {header[c]}: a number expected, got {fields[c].strip()!r}")
    return InputError(f"{source}:{linenos[lo]}: numbers expected, got {lines[lo].strip()[:80]!r}")


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
        raw_lines = text_or_lines.splitlines()
    else:
        raw_lines = [line.rstrip("\r\n") for line in text_or_lines]
    if raw_lines and raw_lines[0].startswith("\ufeff"):
        raw_lines[0] = raw_lines[0][1:]

    # the header is the first non-blank line
    h = 0
    while h < len(raw_lines) and not raw_lines[h].strip():
        h += 1
    if h == len(raw_lines):
        raise InputError(f"{source_name}:1: a header line ({','.join(CANONICAL_HEADER)}) expected, got an empty file")
    header_lineno, header_line = h + 1, raw_lines[h]
    cols, factors, n_fields = _parse_header(source_name, header_lineno, header_line)
    header_names = [n.strip() for n in header_line.split(",")]

    # data rows: blank lines are skipped, 1-based line numbers kept for messages
    lines = raw_lines[h + 1 :]
    blank = [i for i, line in enumerate(lines) if not line or line.isspace()]
    if blank:
        drop = set(blank)
        linenos: Sequence[int] = [h + 2 + i for i in range(len(lines)) if i not in drop]
        lines = [line for i, line in enumerate(lines) if i not in drop]
    else:
        linenos = range(h + 2, h + 2 + len(lines))
    if not lines:
        raise InputError(
            f"{source_name}:{header_lineno + 1}: data rows expected after the header, got only the header"
        )

    # every row must have the header's number of fields (a truncated last line is an error, not dropped)
    counts = np.array([line.count(",") for line in lines], dtype=np.int64)
    bad = np.flatnonzero(counts != n_fields - 1)
    if bad.size:
        k = int(bad[0])
        got = int(counts[k]) + 1
        what = " (truncated last line?)" if k == len(lines) - 1 and got < n_fields else ""
        raise InputError(
            f"{source_name}:{linenos[k]}: {n_fields} comma-separated fields expected (as in the header), "
            f"got {got}{what}: {lines[k].strip()[:80]!r}"
        )

    try:
        values = _load(lines, cols)
    except ValueError:
        raise _locate_bad_value(source_name, lines, linenos, cols, header_names) from None

    finite = np.isfinite(values)
    if not finite.all():
        row, c = (int(x) for x in np.argwhere(~finite)[0])
        raise InputError(
            f"{source_name}:{linenos[row]}: column {header_names[cols[c]]}: a finite number expected, "
            f"got {lines[row].split(',')[cols[c]].strip()!r}"
        )
    if len(values) < 2:
        raise InputError(f"{source_name}:{linenos[0]}: at least 2 samples expected, got {len(values)}")

    raw_time = values[:, 0]
    step = np.diff(raw_time)
    bad = np.flatnonzero(step <= 0)
    if bad.size:
        k = int(bad[0])
        kind = "duplicated" if step[k] == 0 else "going back"
        raise InputError(
            f"{source_name}:{linenos[k + 1]}: column {header_names[cols[0]]}: strictly increasing time expected, "
            f"got {kind}: {lines[k + 1].split(',')[cols[0]].strip()} after "
            f"{lines[k].split(',')[cols[0]].strip()} (line {linenos[k]})"
        )

    converted = values.copy()
    for c, (mul, div) in enumerate(factors):
        if mul != 1.0:
            converted[:, c] *= mul
        if div != 1.0:
            converted[:, c] /= div
    return ImuBlock.from_arrays(converted[:, 0], converted[:, 1:4], converted[:, 4:7])


def read_imu_csv(path: str | os.PathLike[str]) -> ImuBlock:
    """Read one sensor's IMU CSV file (see :func:`parse_imu_csv`).

    Raises
    ------
    InputError
        The file is missing, a directory, unreadable, not UTF-8 text, or its content is invalid.
    """
    return parse_imu_csv(read_text_file(path, "IMU CSV file"), str(path))


def read_text_file(path: str | os.PathLike[str], what: str) -> str:
    """Read a UTF-8 text file (BOM allowed); every failure is one ``InputError`` line naming ``what``.

    ``what`` names the expected file, e.g. ``"IMU CSV file"``.
    """
    p = Path(path)
    article = "an" if what[:1].lower() in "aeiou" else "a"
    try:
        return p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{p}: an existing {what} expected, got no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p}: {article} {what} expected, got a directory") from None
    except PermissionError:
        raise InputError(f"{p}: a readable {what} expected, got permission denied") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: UTF-8 text expected, got a non-text byte at offset {exc.start}") from None
    except OSError as exc:
        raise InputError(f"{p}: a readable {what} expected, got {exc.strerror or exc}") from None


def format_imu_csv(block: ImuBlock) -> str:
    """The canonical CSV text of ``block`` (header + one row per sample).

    Times get 6 decimals (1 µs); acceleration and angular rate 8 significant digits, far finer
    than any IMU's least significant bit (e.g. 1/16384 g, 1/131 deg/s), so a write/read round trip
    is exact within the LSB.
    """
    data = np.column_stack([block.time_s, block.acc_g, block.gyr_dps])
    if len(data) == 0:
        return ",".join(CANONICAL_HEADER) + "\n"
    fmt = "%.6f," + ",".join(["%.8g"] * 6)
    body = "\n".join(fmt % tuple(row) for row in data.tolist())
    return ",".join(CANONICAL_HEADER) + "\n" + body + "\n"


def write_imu_csv(path: str | os.PathLike[str], block: ImuBlock) -> None:
    """Write ``block`` as a canonical IMU CSV file (readable by :func:`read_imu_csv`)."""
    from .fileio import write_text_atomic

    write_text_atomic(path, format_imu_csv(block))  # temp file + rename: never half a file
