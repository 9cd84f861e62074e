"""``legrep export``: a recording to plain files.

    legrep export FILE --out DIR [--set NAME=VALUE ...]

Writes ``DIR/reps.csv`` (one row per rep), ``DIR/summary.json`` and, per leg, the samples on the
session clock as a generic IMU CSV (``DIR/imu_left.csv``, ``DIR/imu_right.csv``), readable by
``legrep analyze``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from collections.abc import Sequence
from typing import Any

from ..errors import InputError


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
    from ..export import SampleCsvWriter, format_one_line, write_reps_csv, write_summary_json
    from ..live_core import SessionCore
    from ..model import ImuBlock, Leg
    from ..recording import RecordingReader
    from ..replay_batch import replay_file

    from ..inputs import resolve_one

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out: a directory expected, got the file {out}")
    item = resolve_one(args.file)  # the resolver every offline command shares (legrep.inputs)
    if item.recording is None:
        return _export_csv(args, item, out)
    args.file = str(item.recording)
    reader = RecordingReader(args.file)  # a torn last record is reported once, here
    settings = settings_for(args, reader.meta)
    from ..fileio import OutputGuard

    guard = OutputGuard([args.file])
    legs = [Leg.parse(str(x)) for x in reader.meta.get("legs", [])]  # (valid: the reader checked them)
    guard.check_all([("--out", out / name) for name in ["reps.csv", "summary.json", *(f"imu_{leg.value}.csv" for leg in legs)]])
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot create directory: {exc.strerror or exc}") from None
    writers: dict[Leg, SampleCsvWriter] = {}
    cores: list[SessionCore] = []
    parts = {leg: out / f"imu_{leg.value}.csv.part" for leg in legs}

    def write_samples(leg: Leg, block: ImuBlock) -> None:
        """Samples go to imu_<leg>.csv.part as the analysis takes them (memory flat in the length),
        in the process that analyses the leg (replay_file)."""
        if leg not in writers:
            lsb = next(((s.status.acc_lsb_g, s.status.gyr_lsb_dps) for c in cores for s in c.legrep.values()
                        if s.leg is leg), (0.0, 0.0))  # fmt: skip
            # formatted and written on a thread of its own, beside the analysis (the blocks are not
            # written to after this call)
            writers[leg] = SampleCsvWriter(parts[leg], *lsb, background=True)
        writers[leg].write(block)

    def samples_written(done: Sequence[Leg]) -> None:
        """Every sample of the legs ``done`` given: their files complete (a write error is raised here)."""
        for leg in done:
            writer = writers.pop(leg, None) or SampleCsvWriter(parts[leg])  # (no samples: the header only)
            writer.close()

    try:
        core, result, reader = replay_file(reader, settings, keep_traces=False, on_samples=write_samples,
                                           on_samples_end=samples_written, on_core=cores.append)  # fmt: skip
        write_reps_csv(out / "reps.csv", result)
        write_summary_json(out / "summary.json", result, settings)
        for leg in core.legs:
            parts[leg].replace(out / f"imu_{leg.value}.csv")
    except BaseException:
        for w in writers.values():
            try:
                w.close()
            except Exception:  # (the error that matters is the one being raised)
                pass
        for path in parts.values():  # (every leg's, whichever process wrote it)
            try:
                path.unlink(missing_ok=True)
            except OSError:  # (not ours to remove: a directory of that name, say)
                pass
        raise
    written = ["reps.csv", "summary.json", *(f"imu_{leg.value}.csv" for leg in core.legs)]
    print(format_one_line(result))
    print(f"wrote {', '.join(written)} to {out}")
    return 0


def _export_csv(args: argparse.Namespace, item: Any, out: Path) -> int:
    """``export`` of IMU CSV files (one per leg): the same outputs as for a recording."""
    from .analyze import parse_overrides
    from ..export import format_one_line, write_reps_csv, write_summary_json
    from ..fileio import OutputGuard
    from ..imu_csv import read_imu_csv, write_imu_csv
    from ..model import Leg
    from ..offline import analyze_arrays

    csv = item.csv()
    guard = OutputGuard(list(csv.values()))
    guard.check_all([("--out", out / name) for name in ["reps.csv", "summary.json", *(f"imu_{leg.value}.csv" for leg in csv)]])
    settings = parse_overrides(args.settings)
    blocks = {leg: read_imu_csv(path) for leg, path in csv.items()}
    result = analyze_arrays(left=blocks.get(Leg.LEFT), right=blocks.get(Leg.RIGHT), settings=settings)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot create directory: {exc.strerror or exc}") from None
    write_reps_csv(out / "reps.csv", result)
    write_summary_json(out / "summary.json", result, settings)
    written = ["reps.csv", "summary.json"]
    for leg, block in blocks.items():
        write_imu_csv(out / f"imu_{leg.value}.csv", block)
        written.append(f"imu_{leg.value}.csv")
    print(format_one_line(result))
    print(f"wrote {', '.join(written)} to {out}")
    return 0
