"""The ``legrep`` command: subcommands live in ``host/commands/<name>.py``.

Each command module provides ``register(subparsers)`` (adds its parser and sets
``func``) and a ``run(args) -> int``. ``main(argv)`` returns the exit code, so
tests call it directly. Any :class:`legrep.errors.LegrepError` becomes one line on
stderr and exit code 2; no traceback reaches the user (``-v`` shows it).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from .errors import LegrepError

# Order is the order in ``legrep --help``. Add a command by adding its module and a line here:
# the one-line help is listed without importing the module (``legrep --help`` and every other
# command stay fast); only the chosen command's module is imported. tests/test_cli_analyze.py checks
# each line against the help the module registers.
COMMAND_HELP: dict[str, str] = {
    "demo": "stream a bundled session from two virtual sensors through the BLE stack",
    "analyze": "count and measure reps in IMU CSV files (one per thigh)",
    "batch": "analyse every recording or CSV pair under a folder, on all cores",
    "scan": "list the sensors in range (legrep and vendor models)",
    "capture": "live capture from the thigh sensors (BLE, serial, vendor models)",
    "replay": "replay a recorded session (same decoding and analysis as live capture)",
    "export": "export a recording: reps.csv, summary.json and IMU CSV per leg",
    "report": "write a session report (HTML with plots)",
    "history": "sessions stored so far: table, trend plot, CSV/Parquet export, import",
    "plan": "the progression: steps, targets, where you are and what to do next time",
}
COMMANDS: tuple[str, ...] = tuple(COMMAND_HELP)

def chosen_command(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not a top-level option), or None."""
    for word in argv:
        if word.startswith("-"):
            continue  # -v, -vv, --verbose, --version, --help (anything else: argparse says so)
        return word if word in COMMAND_HELP else None
    return None


class _Version(argparse.Action):
    """``--version``: looks the version up only when asked (importlib.metadata costs ~20 ms)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(f"legrep {_version()}")
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("legrep")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser(load: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``legrep`` parser; the commands in ``load`` (default: all) get their full parser, the
    others a stub that only lists them in ``--help``."""
    parser = argparse.ArgumentParser(
        prog="legrep",
        description="Rep counter for leg lifts from two thigh IMUs.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = set(COMMANDS if load is None else load)
    for name, help_text in COMMAND_HELP.items():
        if name not in wanted:
            sub.add_parser(name, help=help_text)
            continue
        try:
            module = importlib.import_module(f"legrep.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"legrep.commands.{name}":
                raise
            continue  # command not built yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    command = chosen_command(words)
    parser = build_parser([command] if command else [])
    args = parser.parse_args(words)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LegrepError as exc:
        if args.verbose:
            logging.exception("failed")
        print(f"legrep {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"legrep {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``legrep history | head``): not an error to report. Point stdout
        # at /dev/null so the interpreter's final flush does not fail again; exit as a program
        # killed by SIGPIPE would (128 + 13).
        _silence_stdout()
        return 141
    except OSError as exc:
        if args.verbose:
            logging.exception("failed")
        print(f"legrep {args.command}: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is not a real file (tests capture it)
        pass


if __name__ == "__main__":
    sys.exit(main())
