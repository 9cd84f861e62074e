"""``legrep report``: one session as a self-contained HTML page (and PNGs)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError, LegrepError
from ..history import DEFAULT_EXERCISE, EXIT_NOT_STORED, SessionInput, analyze_input, group_inputs, remember_session
from ..settings import Settings

if TYPE_CHECKING:
    from ..model import SessionResult
    from ..plan import Plan

log = logging.getLogger(__name__)


def parse_settings(pairs: list[str] | None) -> Settings | None:
    """Settings with ``NAME=VALUE`` overrides (``--set min_down_s=1.5``); None when none are given."""
    from ..settings import parse_overrides

    return parse_overrides(pairs) if pairs else None


def add_input_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="settings", action="append", metavar="NAME=VALUE",
                        help="override an analysis setting (repeatable), e.g. --set target_rom_deg=70")  # fmt: skip
    parser.add_argument("--exercise", default=DEFAULT_EXERCISE, help=f"exercise name stored and shown (default: {DEFAULT_EXERCISE!r})")
    parser.add_argument("--started-at", metavar="ISO", help="session start, e.g. 2026-05-01T18:30 (default: file time)")
    parser.add_argument("--db", type=Path, help="history database (default: $LEGREP_DB or ~/.local/share/legrep/history.db)")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "report",
        help="write a session report (HTML with plots)",
        description="Analyse one session and write a self-contained HTML report: hip angle with reps, "
        "peak/range and tempo per rep, per-set counts with uneven sets in words. The session is also "
        "stored in the history database (unless --no-history).",
    )
    p.add_argument("file", nargs="*", type=Path, metavar="INPUT", help="a recording, or a folder (capture/demo --out, or left.csv/right.csv), or leg-named CSV files")
    p.add_argument("--left", type=Path, metavar="L.csv", help="IMU CSV of the left thigh")
    p.add_argument("--right", type=Path, metavar="R.csv", help="IMU CSV of the right thigh")
    p.add_argument("--pelvis", type=Path, metavar="P.csv", help="IMU CSV of an optional pelvis sensor (same clock): hip flexion, "
                   "pelvic tilt per rep and back_arch (README 'The pelvis sensor')")
    p.add_argument("--out", type=Path, default=Path("report.html"), help="HTML file to write (default: report.html)")
    p.add_argument("--png", type=Path, metavar="DIR", help="also write the figures as PNG files into DIR")
    p.add_argument("--title", default="legrep session report", help="page title")
    p.add_argument("--plan", type=Path, metavar="PLAN.toml", help="the programme whose advice ends the report (default: legrep's own)")
    p.add_argument("--no-history", action="store_true", help="do not store the session in the history database")
    add_input_arguments(p)
    p.set_defaults(func=run)


def _session_input(args: argparse.Namespace) -> SessionInput:
    from ..inputs import resolve_one

    item = resolve_one(args.file, args.left, args.right)
    if args.pelvis is None:
        return item
    if item.recording is not None:
        raise InputError("--pelvis CSV expected with CSV files per leg, got a recording (it carries its own sensors)")
    if not args.pelvis.is_file():
        raise InputError(f"{args.pelvis}: an IMU CSV file expected, got {'a directory' if args.pelvis.is_dir() else 'no such file'}")
    return dataclasses.replace(item, pelvis_csv=args.pelvis)


def run(args: argparse.Namespace) -> int:
    from ..exercise import override_exercise
    from ..report import summarize_session, write_report

    settings = parse_settings(args.settings)
    plan = _load_plan(args.plan)  # a bad plan file fails before any work
    item = _session_input(args)
    guard_outputs(args, item)
    from ..report import TRACE_POINTS

    # (the angle trace reduced as it streams, to what the figure draws: memory flat in the length)
    from ..report import _matplotlib

    # (matplotlib imported while the legs' processes analyse: ~0.4 s off the wait)
    analysed = analyze_input(item, settings, args.started_at, trace_points=TRACE_POINTS, beside=_matplotlib,
                             hash_sources=not args.no_history)  # (the hashes are for the history only)
    analysed = dataclasses.replace(analysed, result=override_exercise(analysed.result, args.exercise))
    remembered = None
    if not args.no_history:
        remembered = remember_session(args.db, analysed.result, analysed.settings, analysed.sources, args.exercise, analysed.started_at)
    stored = remembered is not None and remembered.stored
    # (a database that could not store the session is reported once, below: no second line for the advice)
    db_failed = remembered is not None and not stored
    advice = _advice(plan, args.db, analysed.result, analysed.started_at, include_this=not stored, quiet=db_failed)
    written = write_report(
        analysed.result,
        args.out,
        analysed.settings,
        png_dir=args.png,
        title=args.title,
        source=item.label,
        started_at=analysed.started_at,
        exercise=args.exercise,
        advice=advice,
    )
    summary = summarize_session(analysed.result)
    print(f"{summary.headline}")
    for message in summary.uneven_messages:
        print(f"  {message}")
    print(f"wrote {written['html']}" + (f" and {len(written) - 1} PNG files in {args.png}" if args.png else ""))
    if remembered is not None and remembered.stored:
        print(remembered.line)
    if advice:
        print(advice)
    if remembered is not None and not remembered.stored:  # the report is written; say what was not stored
        print(f"legrep report: error: {remembered.line}", file=sys.stderr)
        return EXIT_NOT_STORED
    return 0


def guard_outputs(args: argparse.Namespace, item: SessionInput) -> None:
    """Refuse --out/--png files that would overwrite an input, the history database or a recording."""
    from ..fileio import OutputGuard
    from ..history import default_db_path

    db = None if args.no_history else (args.db or default_db_path())
    inputs = [item.recording, item.left_csv, item.right_csv, item.pelvis_csv]
    guard = OutputGuard(inputs, db)
    guard.check("--out", args.out)
    if args.png is not None:  # the figures are DIR/<name>.png: any .png input or file there is checked
        folder = Path(args.png)
        candidates = {p for p in folder.glob("*.png")} if folder.is_dir() else set()
        candidates |= {folder / Path(p).name for p in (*inputs, db) if p is not None and Path(p).suffix.lower() == ".png"}
        for path in sorted(candidates):
            guard.check("--png", path)


def _load_plan(path: Path | None) -> "Plan":
    from ..plan import load_plan

    return load_plan(path)


def _advice(
    plan: "Plan", db: Path | None, result: "SessionResult", started_at: str, include_this: bool, quiet: bool = False
) -> str | None:
    """The programme's "next time: ..." from the history (plus this session when it is not stored).

    A history that cannot be read gives no advice, with a warning unless ``quiet`` (its problem is
    already reported)."""
    from ..history import default_db_path
    from ..plan import advise, facts_of, load_history

    try:
        sessions = load_history(db if db is not None else default_db_path())
    except LegrepError as exc:
        logging.getLogger(__name__).log(logging.INFO if quiet else logging.WARNING, "no advice: %s", exc)
        return None
    if include_this:
        sessions.append(facts_of(result, started_at=started_at))
    return advise(plan, sessions).next_time()
