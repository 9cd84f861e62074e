"""Exports of a :class:`~legrep.model.SessionResult`: reps CSV, summary JSON, a readable table.

``format_table`` and ``summary_dict`` are pure; the ``write_*``/``read_*`` functions are
the file edges. Definitions of the per-rep measures are in README "Rep measures".
"""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .errors import InputError
from .imu_csv import ImuCsvWriter
from .model import ImuBlock, Leg, Rep, SessionResult
from .settings import Settings

__all__ = [
    "REPS_COLUMNS",
    "FLAG_NAMES",
    "legrep_version",
    "format_reps_csv",
    "write_reps_csv",
    "read_reps_csv",
    "parse_reps_csv",
    "summary_dict",
    "write_summary_json",
    "format_table",
    "format_one_line",
    "SampleCsvWriter",
]

REPS_COLUMNS: tuple[str, ...] = (
    "set",
    "leg",
    "rep",
    "start_s",
    "peak_s",
    "end_s",
    "baseline_deg",
    "peak_deg",
    "rom_deg",
    "up_s",
    "hold_s",
    "down_s",
    "flags",
    "pelvis_tilt_deg",
)

FLAG_NAMES: tuple[str, ...] = ("partial", "below_target", "fast_up", "fast_down", "short_hold", "both_legs", "back_arch")
"""Every form flag the analysis can raise (README "Sets and flags")."""

_LEG_ORDER = (Leg.LEFT, Leg.RIGHT)


def legrep_version() -> str:
    """The installed legrep version; from ``pyproject.toml`` when running an uninstalled tree."""
    from importlib import metadata

    try:
        return metadata.version("legrep")
    except metadata.PackageNotFoundError:
        pass
    import tomllib

    try:
        with open(Path(__file__).resolve().parents[1] / "pyproject.toml", "rb") as fh:
            return str(tomllib.load(fh)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


# --------------------------------------------------------------------------- reps CSV


def _rep_row(rep: Rep) -> list[str]:
    return [
        str(rep.set),
        rep.leg.value,
        str(rep.rep),
        f"{rep.start_s:.3f}",
        f"{rep.peak_s:.3f}",
        f"{rep.end_s:.3f}",
        f"{rep.baseline_deg:.1f}",
        f"{rep.peak_deg:.1f}",
        f"{rep.rom_deg:.1f}",
        f"{rep.up_s:.3f}",
        f"{rep.hold_s:.3f}",
        f"{rep.down_s:.3f}",
        ";".join(rep.flags),
        "" if rep.pelvis_tilt_deg is None else f"{rep.pelvis_tilt_deg:.1f}",
    ]


def _sorted_reps(reps: Iterable[Rep]) -> list[Rep]:
    return sorted(reps, key=lambda r: (r.set, _LEG_ORDER.index(r.leg), r.rep, r.start_s))


def format_reps_csv(result: SessionResult) -> str:
    """The reps CSV text: header ``REPS_COLUMNS``, one row per rep ordered by set, leg, rep.

    Times have 3 decimals (s), angles 1 decimal (deg), flags are joined with ``;``.
    """
    lines = [",".join(REPS_COLUMNS)]
    lines += [",".join(_rep_row(r)) for r in _sorted_reps(result.reps)]
    return "\n".join(lines) + "\n"


def _write_text(path: str | os.PathLike[str], text: str) -> None:
    from .fileio import write_text_atomic

    write_text_atomic(path, text)  # temp file + rename: a crash never leaves half a file


def write_reps_csv(path: str | os.PathLike[str], result: SessionResult) -> None:
    """Write one row per rep (see :func:`format_reps_csv`)."""
    _write_text(path, format_reps_csv(result))


def parse_reps_csv(text: str, source_name: str = "<reps.csv>") -> tuple[Rep, ...]:
    """Parse reps CSV text written by :func:`write_reps_csv`.

    The header must be exactly ``REPS_COLUMNS`` (or lack only the last, ``pelvis_tilt_deg``:
    files written before the pelvis sensor). ``closed_s``, which the CSV does not carry, is
    taken as ``end_s``.

    Raises
    ------
    InputError
        ``<source>:<line>: <expected>, got <arrived>`` naming the column at fault.
    """
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or not lines[0].strip():
        raise InputError(f"{source_name}:1: header {','.join(REPS_COLUMNS)} expected, got an empty file")
    header = [h.strip() for h in lines[0].split(",")]
    n = len(REPS_COLUMNS)
    columns = REPS_COLUMNS if len(header) >= n and header[n - 1] == REPS_COLUMNS[-1] else REPS_COLUMNS[:-1]
    for i, want in enumerate(columns):
        got = header[i] if i < len(header) else None
        if got != want:
            arrived = f"{got!r}" if got is not None else "end of header"
            raise InputError(f"{source_name}:1: column {i + 1} {want!r} expected, got {arrived}")
    if len(header) > len(columns):
        raise InputError(
            f"{source_name}:1: {len(REPS_COLUMNS)} columns expected, got extra column {header[len(columns)]!r}"
        )
    reps: list[Rep] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(columns):
            raise InputError(
                f"{source_name}:{lineno}: {len(columns)} fields expected, got {len(fields)}: {line.strip()[:80]!r}"
            )
        row = dict(zip(columns, fields))
        values: dict[str, float] = {}
        for name in REPS_COLUMNS[3:12]:
            try:
                values[name] = float(row[name])
            except ValueError:
                raise InputError(f"{source_name}:{lineno}: column {name}: a number expected, got {row[name]!r}") from None
            if values[name] != values[name] or abs(values[name]) == float("inf"):
                raise InputError(f"{source_name}:{lineno}: column {name}: a finite number expected, got {row[name]!r}")
        ints: dict[str, int] = {}
        for name in ("set", "rep"):
            try:
                ints[name] = int(row[name])
            except ValueError:
                raise InputError(f"{source_name}:{lineno}: column {name}: an integer expected, got {row[name]!r}") from None
        try:
            leg = Leg.parse(row["leg"])
        except InputError:
            raise InputError(f"{source_name}:{lineno}: column leg: 'left' or 'right' expected, got {row['leg']!r}") from None
        flags = tuple(f for f in row["flags"].split(";") if f)
        tilt: float | None = None
        if row.get("pelvis_tilt_deg", ""):
            try:
                tilt = float(row["pelvis_tilt_deg"])
            except ValueError:
                tilt = math.nan
            if not math.isfinite(tilt):
                raise InputError(f"{source_name}:{lineno}: column pelvis_tilt_deg: a finite number or nothing expected, "
                                 f"got {row['pelvis_tilt_deg']!r}")  # fmt: skip
        reps.append(
            Rep(
                leg=leg,
                start_s=values["start_s"],
                peak_s=values["peak_s"],
                end_s=values["end_s"],
                baseline_deg=values["baseline_deg"],
                peak_deg=values["peak_deg"],
                rom_deg=values["rom_deg"],
                up_s=values["up_s"],
                hold_s=values["hold_s"],
                down_s=values["down_s"],
                closed_s=values["end_s"],
                flags=flags,
                set=ints["set"],
                rep=ints["rep"],
                pelvis_tilt_deg=tilt,
            )
        )
    return tuple(reps)


def read_reps_csv(path: str | os.PathLike[str]) -> tuple[Rep, ...]:
    """Read a reps CSV written by :func:`write_reps_csv` (see :func:`parse_reps_csv`)."""
    from .imu_csv import read_text_file

    return parse_reps_csv(read_text_file(path, "reps CSV file"), str(Path(path)))


# --------------------------------------------------------------------------- samples CSV


class SampleCsvWriter(ImuCsvWriter):
    """Write one leg's samples as a canonical IMU CSV, block by block (memory flat in the length).

    The bytes are those of :class:`legrep.imu_csv.ImuCsvWriter` (``"%.6f"`` time, ``"%.8g"``
    values, printf's text); the rows are formatted by ``legrep._replaycore.format_imu_rows``, which
    formats the value of each whole count of ``acc_lsb_g`` / ``gyr_lsb_dps`` once (a sensor's
    samples are such counts) and any other value by ``snprintf``. Non-finite values go through
    Python's formatting.

    With ``background`` the blocks are formatted and written on a thread of this writer's own
    (``format_imu_rows`` releases the GIL), at most ``QUEUE_BLOCKS`` blocks behind :meth:`write`,
    so an export formats beside the analysis instead of after it; the blocks must not be written
    to afterwards (the analysis never writes its input). An error of that thread is raised by the
    next :meth:`write`, or by :meth:`flush`, which waits for every block to be written.

    Raises
    ------
    InputError
        The path is a directory or not writable.
    """

    QUEUE_BLOCKS = 4
    """Blocks waiting for the writer thread at most (memory stays flat: the caller waits)."""

    def __init__(self, path: str | os.PathLike[str], acc_lsb_g: float = 0.0, gyr_lsb_dps: float = 0.0,
                 background: bool = False) -> None:  # fmt: skip
        super().__init__(path)
        self.acc_lsb_g = float(acc_lsb_g)
        self.gyr_lsb_dps = float(gyr_lsb_dps)
        self._background = background
        self._queue: Any = None  # queue.Queue of blocks (None ends the thread), made at the first write
        self._thread: Any = None
        self._error: BaseException | None = None

    def write(self, block: ImuBlock) -> None:
        if not self._background:
            self._write_now(block)
            return
        self._raise_error()
        if self._thread is None:
            import queue
            import threading

            self._queue = queue.Queue(maxsize=self.QUEUE_BLOCKS)
            self._thread = threading.Thread(target=self._work, name=f"legrep-write-{self.path.name}", daemon=True)
            self._thread.start()
        self._queue.put(block)

    def flush(self) -> None:
        """Wait until every block given to :meth:`write` is written; raise the writer thread's error."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self._raise_error()

    def close(self) -> None:
        """Stop the writer thread (after the blocks given to it) and close the file; an error of the
        thread not yet raised is raised here."""
        try:
            self.flush()
        finally:
            super().close()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _work(self) -> None:
        while True:
            block = self._queue.get()
            if block is None:
                return
            if self._error is None:  # (after an error the rest is taken and dropped: write never blocks)
                try:
                    self._write_now(block)
                except BaseException as exc:  # raised in the caller's thread (write, flush, close)
                    self._error = exc

    def _write_now(self, block: ImuBlock) -> None:
        import numpy as np

        from ._replaycore import format_imu_rows

        step = 1 << 16
        for lo in range(0, len(block), step):
            t = np.ascontiguousarray(block.time_s[lo : lo + step])
            values = np.empty((len(t), 6))
            values[:, :3] = block.acc_g[lo : lo + step]
            values[:, 3:] = block.gyr_dps[lo : lo + step]
            if np.isfinite(t).all() and np.isfinite(values).all():
                self._fh.write(format_imu_rows(t, values, self.acc_lsb_g, self.gyr_lsb_dps))
            else:
                fmt = "%.6f," + ",".join(["%.8g"] * 6) + "\n"
                self._fh.write("".join(fmt % (ti, *row) for ti, row in zip(t.tolist(), values.tolist())).encode("ascii"))


# --------------------------------------------------------------------------- summary JSON


def _mean(values: Sequence[float], digits: int) -> float | None:
    return round(statistics.fmean(values), digits) if values else None


def _flag_counts(reps: Sequence[Rep]) -> dict[str, int]:
    counts = {name: 0 for name in FLAG_NAMES}
    for r in reps:
        for f in r.flags:
            counts[f] = counts.get(f, 0) + 1
    return counts


def _leg_summary(reps: Sequence[Rep]) -> dict[str, Any]:
    return {
        "reps": len(reps),
        "mean_baseline_deg": _mean([r.baseline_deg for r in reps], 2),
        "mean_peak_deg": _mean([r.peak_deg for r in reps], 2),
        "mean_rom_deg": _mean([r.rom_deg for r in reps], 2),
        "mean_up_s": _mean([r.up_s for r in reps], 3),
        "mean_hold_s": _mean([r.hold_s for r in reps], 3),
        "mean_down_s": _mean([r.down_s for r in reps], 3),
        "flags": _flag_counts(reps),
    }


def _plain(value: Any) -> Any:
    """Numbers from numpy and friends as plain JSON numbers (NaN/inf become null)."""
    if isinstance(value, dict):
        return {str(k.value if isinstance(k, Leg) else k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    try:
        f = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f if f == f and abs(f) != float("inf") else None


def summary_dict(result: SessionResult, settings: Settings | None = None) -> dict[str, Any]:
    """A JSON-ready summary of a session.

    Keys: ``legrep_version``, ``legs`` (analysed leg names), ``uneven`` (two legs, totals differ),
    ``sets`` (``set``, ``start_s``, ``end_s``, ``left_reps``, ``right_reps``, ``uneven``,
    ``exercise``: README "Which exercise"),
    ``per_leg`` (per leg name: ``reps``, ``mean_baseline_deg``, ``mean_peak_deg``, ``mean_rom_deg``, ``mean_up_s``,
    ``mean_hold_s``, ``mean_down_s`` -- null without reps -- and ``flags`` counts),
    ``settings`` (every :class:`Settings` field used) and ``diagnostics``.
    """
    settings = settings if settings is not None else Settings()
    return {
        "legrep_version": legrep_version(),
        "legs": [leg.value for leg in result.legs],
        "uneven": bool(result.uneven),
        "sets": [
            {
                "set": s.set,
                "start_s": round(s.start_s, 3),
                "end_s": round(s.end_s, 3),
                "left_reps": s.left_reps,
                "right_reps": s.right_reps,
                "uneven": bool(s.uneven),
                "exercise": s.exercise,
            }
            for s in result.sets
        ],
        "per_leg": {leg.value: _leg_summary(result.reps_of(leg)) for leg in result.legs},
        "settings": settings.to_dict(),
        "diagnostics": _plain(result.diagnostics.to_json()),
    }


def write_summary_json(path: str | os.PathLike[str], result: SessionResult, settings: Settings | None = None) -> None:
    """Write :func:`summary_dict` as indented JSON."""
    _write_text(path, json.dumps(summary_dict(result, settings), indent=2) + "\n")


# --------------------------------------------------------------------------- table


def _clock(t_s: float) -> str:
    minutes, seconds = divmod(max(t_s, 0.0), 60.0)
    return f"{int(minutes)}:{seconds:04.1f}"


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _flags_text(reps: Sequence[Rep]) -> str:
    counts = _flag_counts(reps)
    parts = [f"{name} {n}" for name, n in counts.items() if n]
    return ", ".join(parts) if parts else "-"


def _balance(left: int, right: int, uneven: bool, two_legs: bool) -> str:
    if not two_legs:
        return "one leg"
    return f"UNEVEN ({left} left / {right} right)" if uneven else "even"


_HEAD = f"  {'leg':<6}{'reps':>5}{'peak_deg':>10}{'rom_deg':>9}{'up_s':>7}{'hold_s':>8}{'down_s':>8}  flags"


def _leg_line(label: str, reps: Sequence[Rep]) -> str:
    s = _leg_summary(reps)
    return (
        f"  {label:<6}{s['reps']:>5}{_num(s['mean_peak_deg'], '.1f'):>10}{_num(s['mean_rom_deg'], '.1f'):>9}"
        f"{_num(s['mean_up_s'], '.2f'):>7}{_num(s['mean_hold_s'], '.2f'):>8}{_num(s['mean_down_s'], '.2f'):>8}"
        f"  {_flags_text(reps)}"
    )


def format_table(result: SessionResult) -> str:
    """The readable per-set, per-leg table ``legrep analyze`` prints.

    For each set: its time span, reps per leg and balance (``even`` or
    ``UNEVEN (10 left / 9 right)``), then per leg the rep count, mean peak angle and range
    (deg), mean tempo up/hold/down (s) and flag counts. Ends with the session totals per leg
    and a session total line. Means are over the reps shown on that line.
    """
    two_legs = len(result.legs) == 2
    out: list[str] = []
    sets = list(result.sets)
    if not sets:
        out.append("No sets: no reps found.")
    by_set: dict[int, list[Rep]] = {}  # (one pass: a scan of every rep for each set was quadratic)
    for r in result.reps:
        by_set.setdefault(r.set, []).append(r)
    for s in sets:
        in_set = by_set.get(s.set, [])
        out.append(
            f"Set {s.set}  {_clock(s.start_s)}-{_clock(s.end_s)}  {s.exercise.replace('_', ' ')}  "
            + "  ".join(f"{leg.value} {s.left_reps if leg is Leg.LEFT else s.right_reps}" for leg in result.legs)
            + f"  {_balance(s.left_reps, s.right_reps, s.uneven, two_legs)}"
        )
        out.append(_HEAD)
        for leg in result.legs:
            out.append(_leg_line(leg.value, [r for r in in_set if r.leg is leg]))
        out.append("")
    out.append("Session")
    out.append(_HEAD)
    for leg in result.legs:
        out.append(_leg_line(leg.value, result.reps_of(leg)))
    out.append(format_one_line(result))
    return "\n".join(out) + "\n"


def format_one_line(result: SessionResult) -> str:
    """One line: total reps per leg, number of sets, and which sets are uneven."""
    per_leg = ", ".join(f"{leg.value} {len(result.reps_of(leg))}" for leg in result.legs)
    uneven = [str(s.set) for s in result.sets if s.uneven]
    n_sets = len(result.sets)
    text = f"Total: {len(result.reps)} reps ({per_leg}) in {n_sets} set{'s' if n_sets != 1 else ''}"
    if uneven:
        text += f"; UNEVEN in set{'s' if len(uneven) > 1 else ''} {', '.join(uneven)}"
    elif len(result.legs) == 2 and n_sets:
        text += "; every set even"
    return text
