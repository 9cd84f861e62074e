"""``legrep history``: list, plot, export and import stored sessions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .report import add_input_arguments, parse_settings
from ..exercise import override_exercise
from ..history import (
    EXIT_NOT_STORED,
    HistoryError,
    analyze_input,
    default_db_path,
    export_csv,
    export_tables,
    format_sessions,
    group_inputs,
    list_sessions,
    plot_trends,
    store_session,
)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "history",
        help="sessions stored so far: table, trend plot, CSV/Parquet export, import",
        description="Without options, print one line per stored session. Sessions are stored by "
        "`legrep report`, `analyze` and `capture`, or imported with --add.",
    )
    p.add_argument("--add", nargs="+", type=Path, metavar="FILE",
                   help="import recordings, CSV pairs (…left….csv with …right….csv) or folders with left.csv/right.csv")  # fmt: skip
    p.add_argument("--plot", type=Path, metavar="OUT.png", help="draw reps and mean peak per leg over sessions")
    p.add_argument("--csv", type=Path, metavar="OUT.csv", help="export every stored rep with its session and set (one flat file)")
    p.add_argument("--export", type=Path, metavar="DIR",
                   help="export for research: sessions.csv (settings once per session), sets.csv, reps.csv, "
                   "and the same as .parquet when pyarrow is installed")  # fmt: skip
    add_input_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..fileio import OutputGuard

    db = args.db if args.db is not None else default_db_path()
    guard = OutputGuard(args.add or (), db)
    guard.check_all([("--csv", args.csv), ("--plot", args.plot)])
    if args.export is not None:
        for name in ("sessions", "sets", "reps"):
            for suffix in (".csv", ".parquet"):
                guard.check("--export", args.export / f"{name}{suffix}")
    failed = 0
    if args.add:
        settings = parse_settings(args.settings)
        items = group_inputs(args.add)  # validates every path before analysing any
        for item in items:
            analysed = analyze_input(item, settings, args.started_at)
            result = override_exercise(analysed.result, args.exercise)  # README "Which exercise"
            try:
                outcome = store_session(db, result, analysed.settings, analysed.sources, args.exercise, analysed.started_at)
            except HistoryError as exc:
                print(f"legrep history: error: {item.label}: session not stored in history: {exc}", file=sys.stderr)
                failed += 1
                continue
            state = "added as" if outcome.created else "already stored as"
            print(f"{item.label}: {state} session {outcome.session_id}")
        if failed:
            return EXIT_NOT_STORED
    if args.csv is not None:
        n = export_csv(db, args.csv)
        print(f"wrote {n} rows to {args.csv}")
    if args.export is not None:
        written = export_tables(db, args.export)
        print(f"wrote {', '.join(written)} to {args.export}")
    if args.plot is not None:
        n = plot_trends(db, args.plot)
        print(f"wrote {args.plot} ({n} sessions)")
    if args.csv is None and args.plot is None and args.export is None:
        print(format_sessions(list_sessions(db)))
    return 0
