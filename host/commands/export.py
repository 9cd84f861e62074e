"""``legrep export``: a recording to plain files.

    legrep export INPUT --out DIR [--set NAME=VALUE ...]

``INPUT`` is what every offline command takes (:mod:`legrep.inputs`): a recording, a folder, or CSV
files named after their leg.

Writes ``DIR/reps.csv`` (one row per rep), ``DIR/summary.json`` and, per leg, the samples on the
session clock as a generic IMU CSV (``DIR/imu_left.csv``, ``DIR/imu_right.csv``), readable by
``legrep analyze``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..model import Leg


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a recording: reps.csv, summary.json and IMU CSV per leg",
        description="Replay a legrep recording and write reps.csv, summary.json and imu_<leg>.csv to a directory.",
    )
    parser.add_argument(
        "file", metavar="INPUT", nargs="+",
        help="a recording, a folder (capture/demo --out, or left.csv/right.csv) or CSV files named after their leg",
    )
    parser.add_argument("--out", metavar="DIR", required=True, help="output directory (created if missing)")
    parser.add_argument(
        "--set", dest="settings", metavar="NAME=VALUE", action="append", default=[],
        help="override an analysis setting (default: the settings stored in the recording)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .replay import settings_for
    from ..export import format_one_line, write_reps_csv, write_summary_json
    from ..imu_csv import write_imu_csv
    from ..recording import RecordingReader
    from ..replay import replay_core

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out: a directory expected, got the file {out}")
    from ..inputs import resolve_one

    item = resolve_one(args.file)  # the resolver every offline command shares (legrep.inputs)
    if item.recording is None:
        from .analyze import parse_overrides
        from ..imu_csv import read_imu_csv
        from ..pipeline import analyze_arrays

        settings = parse_overrides(args.settings)
        blocks = {leg: read_imu_csv(path) for leg, path in item.csv().items()}
        result = analyze_arrays(left=blocks.get(Leg.LEFT), right=blocks.get(Leg.RIGHT), settings=settings)
        samples = blocks
    else:
        reader = RecordingReader(item.recording)  # a torn last record is reported once, here
        settings = settings_for(args, reader.meta)
        core, result, reader = replay_core(reader, settings, keep_samples=True)
        samples = {leg: core.samples(leg) for leg in core.legs}
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot create directory: {exc.strerror or exc}") from None
    write_reps_csv(out / "reps.csv", result)
    write_summary_json(out / "summary.json", result, settings)
    written = ["reps.csv", "summary.json"]
    for leg, block in samples.items():
        name = f"imu_{leg.value}.csv"
        write_imu_csv(out / name, block)
        written.append(name)
    print(format_one_line(result))
    print(f"wrote {', '.join(written)} to {out}")
    return 0
