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

from .errors import LegrepError

# Order is the order in ``legrep --help``. Add a command by adding its module.
COMMANDS: tuple[str, ...] = (
    "demo",
    "analyze",
    "scan",
    "capture",
    "replay",
    "export",
    "report",
    "history",
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("legrep")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="legrep",
        description="Rep counter for leg lifts from two thigh IMUs.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    parser.add_argument("--version", action="version", version=f"legrep {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"legrep.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"legrep.commands.{name}":
                raise
            continue  # command not built yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
