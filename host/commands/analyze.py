"""``legrep analyze``: count and measure reps in IMU CSV files (one per thigh).

    legrep analyze --left L.csv --right R.csv [--reps FILE] [--summary FILE] [--set NAME=VALUE ...]
    legrep analyze INPUT            (a recording, a capture/demo --out folder, a left.csv/right.csv folder)

Either leg may be omitted (at least one is needed). Without ``--reps``/``--summary`` the
per-set table is printed; with them the files are written and one summary line is printed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import InputError
from ..settings import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="count and measure reps in IMU CSV files (one per thigh)",
        description=(
            "Count and measure leg-lift reps in IMU CSV files, one per thigh "
            "(header time_s,acc_x_g,acc_y_g,acc_z_g,gyr_x_dps,gyr_y_dps,gyr_z_dps; see README 'CSV input')."
        ),
    )
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT",
        help="a recording, a folder (capture/demo --out, or left.csv/right.csv) or CSV files named after their leg "
        "(instead of --left/--right)",
    )
    parser.add_argument(
        "--left",
        metavar="CSV",
        nargs="+",
        help="IMU CSV of the left thigh sensor; or a phone/vendor app export (one file, or the "
        "accelerometer and gyroscope files), recognised from its header",
    )
    parser.add_argument("--right", metavar="CSV", nargs="+", help="the same for the right thigh")
    parser.add_argument(
        "--pelvis", metavar="CSV", nargs="+",
        help="the same for an optional pelvis sensor (sacrum or belt, any orientation; same clock): "
        "peak/range become hip flexion, each rep gets pelvis_tilt_deg and back_arch (README 'The pelvis sensor')",
    )
    parser.add_argument(
        "--import-map",
        metavar="MAP",
        help="columns of an unrecognised export: time=COL:s,acc_x=COL:mps2,...,gyr_z=COL:dps "
        "(units s ms us ns | g mg mps2 | dps rads)",
    )
    parser.add_argument("--reps", metavar="FILE", help="write one row per rep to this CSV file")
    parser.add_argument("--summary", metavar="FILE", help="write the session summary to this JSON file")
    parser.add_argument(
        "--set",
        dest="settings",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="override an analysis setting, e.g. --set min_rom_deg=25 (repeatable; see host/settings.py)",
    )
    parser.add_argument("--exercise", default=None, help="exercise name stored in the history (e.g. 'bent knee raise'); one of legrep's "
                        "exercises names every set (README 'Which exercise')")
    parser.add_argument("--db", metavar="FILE", help="history database (default: $LEGREP_DB or ~/.local/share/legrep/history.db)")
    parser.add_argument("--no-history", action="store_true", help="do not store the session in the history database")
    parser.set_defaults(func=run)


def parse_overrides(items: Sequence[str], base: Settings | None = None) -> Settings:
    """Apply ``NAME=VALUE`` overrides to ``base`` (default :class:`Settings`): see
    :func:`legrep.settings.parse_overrides` (names, types and ranges checked there)."""
    from ..settings import parse_overrides as parse

    return parse(items, base)


def leg_blocks(paths: Sequence[str], import_map: str | None) -> Iterable[Any]:
    """The samples of one leg as blocks: legrep's IMU CSV streamed (strict reader), or, by its
    header, a phone/vendor export (importers, read whole)."""
    from ..imu_csv import iter_imu_csv

    if len(paths) == 1 and import_map is None and _is_legrep_csv(paths[0]):
        return iter_imu_csv(paths[0])
    if len(paths) > 2:
        raise InputError(f"one or two files per leg expected (accelerometer and gyroscope), got {len(paths)}")
    from ..importers import read_import

    return [read_import(paths, import_map).block]


def _is_legrep_csv(path: str) -> bool:
    """True when the header names legrep columns (or the file cannot be sniffed: let the strict
    reader report why)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            header = f.readline().lower()
    except OSError:
        return True
    names = [c.strip() for c in header.split(",")]
    return not header.strip() or any(n.startswith(("time_", "acc_x", "gyr_x")) for n in names)


def run(args: argparse.Namespace) -> int:
    # imported here so ``legrep --help`` stays fast
    from ..export import format_one_line, format_table, write_reps_csv, write_summary_json
    from ..exercise import override_exercise
    from ..model import Leg
    from ..offline import analyze_blocks

    if args.inputs:  # the resolver every offline command shares (legrep.inputs)
        from ..inputs import resolve_one

        item = resolve_one(args.inputs, *(p[0] if p else None for p in (args.left, args.right)))
        args.left = [str(item.left_csv)] if item.left_csv is not None else None
        args.right = [str(item.right_csv)] if item.right_csv is not None else None
        recording = item.recording
    else:
        recording = None
    if not args.left and not args.right and recording is None:
        raise InputError("an INPUT (recording, folder, CSV files), or --left CSV and/or --right CSV expected, got neither")
    settings = parse_overrides(args.settings)
    guard_outputs(args)
    if args.pelvis and recording is not None:
        raise InputError("--pelvis CSV expected with CSV files per leg, got a recording (it carries its own sensors)")
    if recording is not None:  # the file replay (batched decoding: replay_recording's result, faster)
        from ..replay_batch import replay_file

        _core, result, _reader = replay_file(recording, settings if args.settings else None, keep_traces=False)
    else:
        streams = {leg: leg_blocks(paths, args.import_map) for leg, paths in ((Leg.LEFT, args.left), (Leg.RIGHT, args.right)) if paths}
        pelvis = leg_blocks(args.pelvis, args.import_map) if args.pelvis else None
        result = analyze_blocks(streams, settings, pelvis=pelvis)  # streamed: memory flat in the session's length
    result = override_exercise(result, args.exercise)  # README "Which exercise"

    if args.reps:
        write_reps_csv(args.reps, result)
    if args.summary:
        write_summary_json(args.summary, result, settings)
    if args.reps or args.summary:
        written = ", ".join(p for p in (args.reps, args.summary) if p)
        print(f"{format_one_line(result)}; wrote {written}")
    else:
        print(format_table(result), end="")
    if not args.no_history:  # after the result files: a history problem never costs them
        from ..history import DEFAULT_EXERCISE, EXIT_NOT_STORED, remember_session

        sources: dict[str, str] | list[str] = {
            leg: paths[0] for leg, paths in (("left", args.left), ("right", args.right), ("pelvis", args.pelvis)) if paths
        }
        if any(len(paths or ()) > 1 for paths in (args.left, args.right, args.pelvis)):
            sources = [p for paths in (args.left, args.right, args.pelvis) if paths for p in paths]
        if recording is not None:
            sources = {"recording": str(recording)}
        remembered = remember_session(args.db, result, settings, sources, args.exercise or DEFAULT_EXERCISE)
        if not remembered.stored:
            print(f"legrep analyze: error: {remembered.line}", file=sys.stderr)
            return EXIT_NOT_STORED
        # stdout stays the table (or one line) that scripts read; -v shows this
        logging.getLogger(__name__).info("%s", remembered.line)
    return 0


def guard_outputs(args: argparse.Namespace) -> None:
    """Refuse --reps/--summary that would overwrite an input, the history database or a recording."""
    from ..fileio import OutputGuard

    db = None
    if not args.no_history:
        from ..history import default_db_path

        db = args.db or default_db_path()
    guard = OutputGuard([p for paths in (args.left, args.right, args.pelvis) if paths for p in paths], db)
    guard.check_all([("--reps", args.reps), ("--summary", args.summary)])
