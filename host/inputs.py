"""One resolver for what the offline commands read: ``analyze``, ``report``, ``replay``, ``export``
and ``history --add`` all accept the same inputs.

An input is

* a **recording** (``session.lgr``, any file that is not a ``.csv``);
* a **folder**: one that ``capture`` or ``demo --out`` wrote (``session.lgr`` inside), or one with
  ``left.csv`` / ``right.csv`` (the bundled sessions), or ``imu_left.csv`` / ``imu_right.csv``
  (what ``export`` writes);
* **CSV files per leg**: ``--left L.csv --right R.csv``, or CSV files named after their leg
  (``…left….csv`` pairs with the same name with ``right``).

:func:`resolve_inputs` turns paths into :class:`SessionInput` values (one per session);
:func:`resolve_one` is the single-session form the per-session commands use.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .model import Leg

PathLike = str | os.PathLike[str]

RECORDING_MAGIC = b"LEGREP-REC"
"""How a recording file starts (legrep.recording.MAGIC without its version)."""
RECORDING_NAME = "session.lgr"
"""The recording ``capture`` and ``demo --out`` write into their folder."""
LEG_CSV_NAMES: tuple[tuple[str, str], ...] = (("left.csv", "right.csv"), ("imu_left.csv", "imu_right.csv"))
"""Per-leg CSV names a folder may hold (bundled sessions; ``export`` output)."""
EXPECTED = "a recording, a folder (with session.lgr, or left.csv/right.csv) or IMU CSV files per leg"


@dataclass(frozen=True, slots=True)
class SessionInput:
    """The files of one session: a recording, or one IMU CSV per leg."""

    recording: Path | None = None
    left_csv: Path | None = None
    right_csv: Path | None = None
    pelvis_csv: Path | None = None
    """The optional pelvis sensor's IMU CSV (``--pelvis``; host/pelvis.py)."""

    @property
    def label(self) -> str:
        if self.recording is not None:
            return str(self.recording)
        return " + ".join(str(p) for p in (self.left_csv, self.right_csv, self.pelvis_csv) if p is not None)

    def csv(self) -> dict[Leg, Path]:
        """``{leg: CSV}`` of a CSV session (empty for a recording)."""
        return {leg: p for leg, p in ((Leg.LEFT, self.left_csv), (Leg.RIGHT, self.right_csv)) if p is not None}

    def source(self) -> dict[str, Path]:
        """``role -> path`` (``recording``, ``left``, ``right``)."""
        if self.recording is not None:
            return {"recording": self.recording}
        roles = {leg.value: p for leg, p in self.csv().items()}
        return roles | ({"pelvis": self.pelvis_csv} if self.pelvis_csv is not None else {})


def _leg_of_csv(path: Path) -> Leg | None:
    stem = path.stem.lower()
    has_left, has_right = "left" in stem, "right" in stem
    if has_left == has_right:
        return None
    return Leg.LEFT if has_left else Leg.RIGHT


def _partner_name(path: Path, leg: Leg) -> str:
    """The file name of the other leg's CSV: ``left`` swapped for ``right`` (case kept)."""
    word, other = ("left", "right") if leg is Leg.LEFT else ("right", "left")
    name = path.name
    i = name.lower().rfind(word)
    found = name[i : i + len(word)]
    swapped = other.upper() if found.isupper() else other.capitalize() if found[0].isupper() else other
    return name[:i] + swapped + name[i + len(word) :]


def _is_recording(path: Path) -> bool:
    """True when the file starts like a legrep recording (docs/recording.md: the magic line)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(RECORDING_MAGIC)) == RECORDING_MAGIC
    except OSError:
        return False


def _folder(path: Path) -> SessionInput:
    if (path / RECORDING_NAME).is_file():
        return SessionInput(recording=path / RECORDING_NAME)
    for left_name, right_name in LEG_CSV_NAMES:
        left, right = path / left_name, path / right_name
        if left.is_file() or right.is_file():
            return SessionInput(None, left if left.is_file() else None, right if right.is_file() else None)
    recordings = sorted(path.glob("*.lgr"))
    if len(recordings) == 1:
        return SessionInput(recording=recordings[0])
    found = ", ".join(sorted(p.name for p in path.iterdir())[:6]) or "an empty folder"
    raise InputError(
        f"{path}: a folder with {RECORDING_NAME}, left.csv/right.csv or imu_left.csv/imu_right.csv expected, "
        f"got neither ({found})"
    )


def resolve_inputs(paths: Sequence[PathLike]) -> list[SessionInput]:
    """Group input paths into sessions (see module docstring).

    Raises
    ------
    InputError
        For a missing path, a CSV whose name gives no leg, or a folder without a session in it.
    """
    sessions: list[SessionInput] = []
    csvs: dict[Path, Leg] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            if path.suffix.lower() == ".csv":
                raise InputError(f"{path}: {EXPECTED} expected, got no such file")
            raise InputError(f"{path}: cannot read recording ({EXPECTED} expected), got no such file")
        if path.is_dir():
            sessions.append(_folder(path))
        elif _is_recording(path):
            sessions.append(SessionInput(recording=path))  # whatever its name says
        elif path.suffix.lower() == ".csv":
            leg = _leg_of_csv(path)
            if leg is None:
                raise InputError(
                    f"{path}: a CSV named after its leg expected (with 'left' or 'right' in the name, or "
                    f"given as --left/--right), got {path.name!r}"
                )
            csvs[path] = leg
        else:
            sessions.append(SessionInput(recording=path))
    paired: set[Path] = set()
    for path, leg in csvs.items():
        if path in paired:
            continue
        partner = path.with_name(_partner_name(path, leg))
        match = next((p for p in csvs if p != path and p not in paired and p.resolve() == partner.resolve()), None)
        paired.add(path)
        if match is not None:
            paired.add(match)
        pair = {leg: path, csvs[match]: match} if match is not None else {leg: path}
        sessions.append(SessionInput(None, pair.get(Leg.LEFT), pair.get(Leg.RIGHT)))
    return sessions


def resolve_one(
    paths: Sequence[PathLike] = (), left: PathLike | None = None, right: PathLike | None = None
) -> SessionInput:
    """The one session that ``paths`` (positional inputs) or ``left``/``right`` (CSV per leg) name.

    Raises
    ------
    InputError
        Both or neither given, not exactly one session, or a per-leg CSV that is not a file.
    """
    if paths and (left is not None or right is not None):
        raise InputError("either an input (recording, folder, CSV files) or --left/--right expected, got both")
    if not paths and left is None and right is None:
        raise InputError(f"{EXPECTED} expected, got no input")
    if paths:
        sessions = resolve_inputs(paths)
        if len(sessions) != 1:
            raise InputError(f"one session expected, got {len(sessions)}: {[s.label for s in sessions]}")
        return sessions[0]
    for path in (left, right):
        if path is not None and not Path(path).is_file():
            what = "a directory" if Path(path).is_dir() else "no such file"
            raise InputError(f"{path}: an IMU CSV file expected, got {what}")
    return SessionInput(None, Path(left) if left is not None else None, Path(right) if right is not None else None)
