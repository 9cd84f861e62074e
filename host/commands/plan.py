"""``legrep plan``: the progression's steps and targets, where the history says the person is,
and what to do next time (README "The programme")."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "plan",
        help="the progression: steps, targets, where you are and what to do next time",
        description="Show the programme's steps with their targets and, from the sessions in the history, "
        "which step the person is at and what to do next time. The rules and targets are a TOML file "
        "a trainer can edit (--init writes the default one to start from).",
    )
    p.add_argument("--plan", type=Path, metavar="PLAN.toml", help="a trainer's plan (default: legrep's own)")
    p.add_argument("--db", type=Path, help="history database (default: $LEGREP_DB or ~/.local/share/legrep/history.db)")
    p.add_argument("--init", type=Path, metavar="OUT.toml", help="write the default plan to OUT.toml (to edit) and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..history import default_db_path
    from ..plan import advise, default_plan_text, format_plan, load_history, load_plan

    if args.init is not None:
        out: Path = args.init
        if out.exists():
            raise InputError(f"{out}: a new file expected (not overwriting), got an existing one")
        out.write_text(default_plan_text(), encoding="utf-8")
        print(f"wrote {out}: edit it, then `legrep plan --plan {out}`")
        return 0
    plan = load_plan(args.plan)
    sessions = load_history(args.db if args.db is not None else default_db_path())
    print(format_plan(advise(plan, sessions)), end="")
    return 0
