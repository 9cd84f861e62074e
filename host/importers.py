"""Bring-your-own recordings: CSV exports of phone sensor apps and the vendors' apps.

A phone (or a vendor sensor) strapped to the thigh records accelerometer and gyroscope; these
importers turn its export into one :class:`~legrep.model.ImuBlock` (seconds from the first sample,
g, deg/s) for ``legrep analyze``. Formats are recognised by their header; columns and units are
those each app documents or writes:

=====================  ==========================================================================
format                 files and columns (units)
=====================  ==========================================================================
``phyphox``            "Acceleration with g" export ``Time (s)``, ``Acceleration x (m/s^2)`` ...;
                       "Gyroscope" export ``Time (s)``, ``Gyroscope x (rad/s)`` ... (one file each,
                       or both in one table). "Linear Acceleration" has gravity removed: refused.
``sensor-logger``      Sensor Logger ``TotalAcceleration.csv`` (gravity included, m/s^2) and
                       ``Gyroscope.csv`` (rad/s): ``time`` (ns, Unix), ``seconds_elapsed``, ``z``,
                       ``y``, ``x``. Its ``Accelerometer.csv`` has gravity removed: refused.
``movella-dot``        Movella DOT app export: preamble lines, then ``PacketCounter``,
                       ``SampleTimeFine`` (us, u32), ``Acc_X`` ... (m/s^2), ``Gyr_X`` ... (deg/s).
``metabase``           MbientLab MetaBase: ``epoch (ms)`` (or ``epoc (ms)``), ``elapsed (s)``,
                       ``x-axis (g)`` ... in the Accelerometer file, ``x-axis (deg/s)`` ... in the
                       Gyroscope file.
``polar-sensor-logger`` Polar Sensor Logger ``..._ACC.txt``: ``Phone timestamp;sensor timestamp
                       [ns];X [mg];Y [mg];Z [mg]``; ``..._GYRO.txt``: ``X [dps]`` ... (``;``-separated).
``legrep``             legrep's own IMU CSV (``time_s,acc_x_g,...``), see :mod:`legrep.imu_csv`.
=====================  ==========================================================================

Anything else: a mapping ``time=COLUMN:UNIT,acc_x=COLUMN:UNIT,...`` (:func:`parse_import_map`),
units ``s ms us ns`` for time, ``g mg mps2`` for acc, ``dps rads`` for gyro.

When accelerometer and gyroscope come in two files, the gyroscope is interpolated onto the
accelerometer's times (same device clock), over the span both cover. The parsers do no I/O;
:func:`read_import` is the file edge. Every problem is one-line :class:`~legrep.errors.InputError`.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .model import ImuBlock
from .sensors._common import STANDARD_GRAVITY_MPS2

__all__ = ["ColumnSpec", "ImportMap", "Imported", "parse_import_map", "parse_tables", "read_import", "FORMATS"]

_DEG_PER_RAD = 180.0 / math.pi
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
ACC_UNITS = {"g": 1.0, "mg": 1e-3, "mps2": 1.0 / STANDARD_GRAVITY_MPS2}
GYR_UNITS = {"dps": 1.0, "rads": _DEG_PER_RAD}
QUANTITIES = ("time", "acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z")
FORMATS = ("phyphox", "sensor-logger", "movella-dot", "metabase", "polar-sensor-logger", "legrep", "mapped")
MIN_GRAVITY_G = 0.5
"""A still start must show gravity: a mean |acc| below this means the app removed it."""


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One quantity's column (header name, compared case-insensitively) and unit factor to s, g, deg/s."""

    column: str
    factor: float


ImportMap = dict[str, ColumnSpec]


@dataclass(frozen=True, slots=True)
class Imported:
    """An imported recording: the samples, the recognised format and notes for diagnostics."""

    block: ImuBlock
    format: str
    notes: tuple[str, ...] = ()


def parse_import_map(text: str) -> ImportMap:
    """``time=Time (s):s,acc_x=ax:mps2,...`` -> ImportMap. Every quantity is needed once.

    A column name may contain ``:``; the unit is what follows the last one.
    """
    out: ImportMap = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, rest = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in QUANTITIES:
            raise InputError(f"--import-map: QUANTITY=COLUMN:UNIT with QUANTITY in {','.join(QUANTITIES)} expected, got {item!r}")
        column, colon, unit = rest.rpartition(":")
        units = TIME_UNITS if key == "time" else ACC_UNITS if key.startswith("acc") else GYR_UNITS
        if not colon or unit.strip().lower() not in units:
            raise InputError(f"--import-map: {key}: unit after ':' must be one of {', '.join(units)}, got {item!r}")
        if key in out:
            raise InputError(f"--import-map: {key} given twice")
        out[key] = ColumnSpec(column.strip(), units[unit.strip().lower()])
    missing = [q for q in QUANTITIES if q not in out]
    if missing:
        raise InputError(f"--import-map: mappings for {', '.join(missing)} expected, got {', '.join(out) or 'none'}")
    return out


# --------------------------------------------------------------------------- tables
@dataclass(frozen=True, slots=True)
class _Table:
    source: str
    header: list[str]  # as written (stripped)
    rows: list[list[str]]
    linenos: list[int]  # 1-based file line of each row

    def index(self, name: str) -> int | None:
        lowered = [h.lower() for h in self.header]
        try:
            return lowered.index(name.lower())
        except ValueError:
            return None

    def numbers(self, name: str, factor: float = 1.0) -> np.ndarray:
        col = self.index(name)
        if col is None:
            raise InputError(f"{self.source}: column {name!r} expected, got columns {self.header}")
        out = np.empty(len(self.rows))
        for i, row in enumerate(self.rows):
            try:
                v = float(row[col])
            except (ValueError, IndexError):
                got = row[col].strip() if col < len(row) else f"{len(row)} fields"
                raise InputError(f"{self.source}:{self.linenos[i]}: column {name!r}: a number expected, got {got!r}") from None
            if not math.isfinite(v):
                raise InputError(f"{self.source}:{self.linenos[i]}: column {name!r}: a finite number expected, got {row[col].strip()!r}")
            out[i] = v
        return out * factor


def _delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (";", "\t", ",")}
    return max(counts, key=lambda d: counts[d]) if max(counts.values()) > 0 else ","


_HEADER_MARKERS = ("time", "packetcounter", "epoch", "epoc", "phone timestamp", "acc", "gyr")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _table(source: str, text: str, want: str | None = None) -> _Table:
    """The table under the header row: the first line naming ``want`` (a mapped column), else the
    first naming a time or sensor column (preambles are skipped), else the first non-numeric row."""
    lines = text.lstrip("\ufeff").splitlines()
    candidates: list[tuple[int, list[str], str]] = []
    for lineno, line in enumerate(lines[:40], 1):
        if not line.strip():
            continue
        delim = _delimiter(line)
        fields = [f.strip().strip('"').strip() for f in _split(source, lineno, line, delim)]
        if len(fields) >= 2 and not _is_number(fields[0]):
            candidates.append((lineno, fields, delim))
    lowered = [(n, f, d) for n, f, d in candidates]
    chosen = None
    if want is not None:
        chosen = next((c for c in lowered if want.lower() in (x.lower() for x in c[1])), None)
    if chosen is None:
        chosen = next((c for c in lowered if any(x.lower().startswith(_HEADER_MARKERS) for x in c[1])), None)
    if chosen is None and candidates:
        chosen = candidates[0]
    if chosen is None:
        first = next((ln for ln in lines if ln.strip()), "")
        raise InputError(f"{source}: a header row naming the columns expected, got {first[:80]!r}")
    lineno, fields, delim = chosen
    rows: list[list[str]] = []
    linenos: list[int] = []
    for k, body in enumerate(lines[lineno:], lineno + 1):
        if body.strip():
            rows.append([f.strip() for f in _split(source, k, body, delim)])
            linenos.append(k)
    if not rows:
        raise InputError(f"{source}: data rows under the header (line {lineno}) expected, got none")
    return _Table(source, fields, rows, linenos)


def _split(source: str, lineno: int, line: str, delim: str) -> list[str]:
    """One CSV line's fields; a malformed line (e.g. a field beyond the csv module's 128 KiB limit,
    which guards against runaway quotes) is one InputError line."""
    if len(line) > (1 << 17):
        raise InputError(f"{source}:{lineno}: a CSV line of numbers expected, got a line of {len(line)} characters")
    try:
        return next(csv.reader([line], delimiter=delim), [])
    except csv.Error as exc:
        raise InputError(f"{source}:{lineno}: a CSV line expected, got {exc}") from None


# --------------------------------------------------------------------------- formats
@dataclass(frozen=True, slots=True)
class _Part:
    """What one table contributes: time (s) and acc (g) and/or gyro (deg/s)."""

    time_s: np.ndarray
    acc_g: np.ndarray | None
    gyr_dps: np.ndarray | None
    format: str


def _xyz(t: _Table, names: Sequence[str], factor: float) -> np.ndarray:
    return np.column_stack([t.numbers(n, factor) for n in names])


def _classify(t: _Table, filename: str) -> _Part:
    h = {x.lower() for x in t.header}
    fname = Path(filename).name.lower()
    if "linear acceleration x (m/s^2)" in h:
        raise InputError(f"{t.source}: 'Linear Acceleration' has gravity removed; export phyphox 'Acceleration with g' instead")
    if "time (s)" in h and ("acceleration x (m/s^2)" in h or "gyroscope x (rad/s)" in h):
        time_s = t.numbers("Time (s)")
        acc = _xyz(t, [f"Acceleration {a} (m/s^2)" for a in "xyz"], ACC_UNITS["mps2"]) if "acceleration x (m/s^2)" in h else None
        gyr = _xyz(t, [f"Gyroscope {a} (rad/s)" for a in "xyz"], GYR_UNITS["rads"]) if "gyroscope x (rad/s)" in h else None
        return _Part(time_s, acc, gyr, "phyphox")
    if {"time", "seconds_elapsed", "x", "y", "z"} <= h:
        time_s = t.numbers("time", TIME_UNITS["ns"])
        if "gyroscope" in fname:
            return _Part(time_s, None, _xyz(t, "xyz", GYR_UNITS["rads"]), "sensor-logger")
        if "totalacceleration" in fname:
            return _Part(time_s, _xyz(t, "xyz", ACC_UNITS["mps2"]), None, "sensor-logger")
        if "accelerometer" in fname:
            raise InputError(f"{t.source}: Sensor Logger's Accelerometer.csv has gravity removed; use TotalAcceleration.csv")
        raise InputError(f"{t.source}: a Sensor Logger table, but the file name must say TotalAcceleration or Gyroscope, got {fname!r}")
    if {"packetcounter", "sampletimefine"} <= h:
        us = t.numbers("SampleTimeFine")
        us = us + np.concatenate([[0.0], np.cumsum(np.diff(us) < -(2**31))]) * 2.0**32  # u32 wrap
        acc = _xyz(t, ["Acc_X", "Acc_Y", "Acc_Z"], ACC_UNITS["mps2"]) if "acc_x" in h else None
        gyr = _xyz(t, ["Gyr_X", "Gyr_Y", "Gyr_Z"], 1.0) if "gyr_x" in h else None
        if acc is None or gyr is None:
            raise InputError(f"{t.source}: Movella DOT export with Acc_X..Z and Gyr_X..Z expected (payload with inertial data), got {t.header}")
        return _Part(us * 1e-6, acc, gyr, "movella-dot")
    if ("epoch (ms)" in h or "epoc (ms)" in h) and ("x-axis (g)" in h or "x-axis (deg/s)" in h):
        time_s = t.numbers("epoch (ms)" if "epoch (ms)" in h else "epoc (ms)", TIME_UNITS["ms"])
        if "x-axis (g)" in h:
            return _Part(time_s, _xyz(t, [f"{a}-axis (g)" for a in "xyz"], 1.0), None, "metabase")
        return _Part(time_s, None, _xyz(t, [f"{a}-axis (deg/s)" for a in "xyz"], 1.0), "metabase")
    if "sensor timestamp [ns]" in h and ("x [mg]" in h or "x [dps]" in h):
        time_s = t.numbers("sensor timestamp [ns]", TIME_UNITS["ns"])
        if "x [mg]" in h:
            return _Part(time_s, _xyz(t, ["X [mg]", "Y [mg]", "Z [mg]"], ACC_UNITS["mg"]), None, "polar-sensor-logger")
        return _Part(time_s, None, _xyz(t, ["X [dps]", "Y [dps]", "Z [dps]"], 1.0), "polar-sensor-logger")
    raise InputError(
        f"{t.source}: columns of a known export ({', '.join(FORMATS[:-1])}) expected, got {t.header}; "
        "give --import-map time=COL:s,acc_x=COL:mps2,... instead"
    )


def _mapped(t: _Table, mapping: ImportMap) -> _Part:
    time_s = t.numbers(mapping["time"].column, mapping["time"].factor)
    acc = np.column_stack([t.numbers(mapping[q].column, mapping[q].factor) for q in ("acc_x", "acc_y", "acc_z")])
    gyr = np.column_stack([t.numbers(mapping[q].column, mapping[q].factor) for q in ("gyr_x", "gyr_y", "gyr_z")])
    return _Part(time_s, acc, gyr, "mapped")


def _clean_time(source: str, time_s: np.ndarray, *arrays: np.ndarray | None) -> tuple[np.ndarray, list[np.ndarray | None], int]:
    """Sort by time and drop repeated timestamps (apps log duplicates); count what was dropped."""
    order = np.argsort(time_s, kind="stable")
    t = time_s[order]
    keep = np.concatenate([[True], np.diff(t) > 0])
    out = [None if a is None else a[order][keep] for a in arrays]
    return t[keep], out, int((~keep).sum())


def parse_tables(texts: Sequence[tuple[str, str]], mapping: ImportMap | None = None) -> Imported:
    """Import ``(file name, text)`` tables (one with both sensors, or an acc and a gyro table).

    Raises
    ------
    InputError
        Unknown columns, a bad value (file:line), missing accelerometer or gyroscope, no overlap,
        fewer than two samples, or an accelerometer without gravity.
    """
    if not texts:
        raise InputError("at least one CSV file expected, got none")
    if len(texts) == 1 and mapping is None:
        name, text = texts[0]
        head = text.lstrip("\ufeff").split("\n", 1)[0].lower()
        if head.replace(" ", "").startswith("time_s,") or "acc_x_g" in head:
            from .imu_csv import parse_imu_csv

            return Imported(parse_imu_csv(text, name), "legrep")
    parts = [
        _mapped(_table(n, x, mapping["time"].column), mapping) if mapping is not None else _classify(_table(n, x), n)
        for n, x in texts
    ]
    notes: list[str] = []
    acc_parts = [p for p in parts if p.acc_g is not None]
    gyr_parts = [p for p in parts if p.gyr_dps is not None]
    names = [n for n, _ in texts]
    if len(acc_parts) != 1 or len(gyr_parts) != 1:
        raise InputError(
            f"one accelerometer and one gyroscope table expected, got {len(acc_parts)} and {len(gyr_parts)} in {names}"
        )
    a, g = acc_parts[0], gyr_parts[0]
    ta, (acc, gyr_same), dup_a = _clean_time(names[0], a.time_s, a.acc_g, a.gyr_dps)
    assert acc is not None
    if a is g:
        gyr = gyr_same
        dup_g = 0
    else:
        tg, (gyr_own,), dup_g = _clean_time(names[-1], g.time_s, g.gyr_dps)
        assert gyr_own is not None
        inside = (ta >= tg[0]) & (ta <= tg[-1])
        if inside.sum() < 2:
            raise InputError(
                f"accelerometer ({ta[0]:.3f}..{ta[-1]:.3f} s) and gyroscope ({tg[0]:.3f}..{tg[-1]:.3f} s) tables expected to overlap, they do not"
            )
        if (~inside).any():
            notes.append(f"{int((~inside).sum())} accelerometer samples outside the gyroscope's span dropped")
        ta, acc = ta[inside], acc[inside]
        gyr = np.column_stack([np.interp(ta, tg, gyr_own[:, k]) for k in range(3)])
        notes.append("gyroscope interpolated onto accelerometer times")
    assert gyr is not None
    if dup_a or dup_g:
        notes.append(f"{dup_a + dup_g} samples with a repeated timestamp dropped")
    if ta.size < 2:
        raise InputError(f"at least two samples expected, got {ta.size} in {names}")
    still = acc[: max(2, min(acc.shape[0], int(np.searchsorted(ta, ta[0] + 0.5))))]
    gravity = float(np.linalg.norm(still.mean(axis=0)))
    if gravity < MIN_GRAVITY_G:
        raise InputError(
            f"{names[0]}: accelerometer including gravity expected (about 1 g at a still start), got {gravity:.2f} g; "
            "export the gravity-inclusive channel"
        )
    fmt = a.format if a.format == g.format else f"{a.format}+{g.format}"
    return Imported(ImuBlock.from_arrays(ta - ta[0], acc, gyr), fmt, tuple(notes))


def read_import(paths: Sequence[str | os.PathLike[str]], mapping: ImportMap | str | None = None) -> Imported:
    """Read one or two export files (the file edge of :func:`parse_tables`)."""
    if isinstance(mapping, str):
        mapping = parse_import_map(mapping)
    texts: list[tuple[str, str]] = []
    for p in paths:
        path = Path(p)
        try:
            texts.append((str(path), path.read_text(encoding="utf-8-sig", errors="strict")))
        except FileNotFoundError:
            raise InputError(f"{path}: file not found") from None
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: UTF-8 text expected, got undecodable byte at {exc.start}") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_tables(texts, mapping)
