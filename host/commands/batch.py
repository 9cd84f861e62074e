"""``legrep batch``: analyse every recording or CSV pair under a folder, on all cores.

    legrep batch DIR --out OUT [--jobs N] [--set NAME=VALUE ...]

Finds the sessions under ``DIR`` (recursively): each legrep recording (recognised by its first
bytes, whatever its name) and each pair of IMU CSVs named after their legs (``left.csv`` and
``right.csv`` in one folder, or ``walk_left.csv`` beside ``walk_right.csv``; a lone leg CSV is a
one-leg session). Each session is analysed in a worker process (recordings through the replay path,
CSVs streamed) and written to ``OUT/<session>/reps.csv`` and ``summary.json``; then
``OUT/<session>/done.json`` records a hash of the input files' bytes and the settings. A later run
skips every session whose ``done.json`` matches (resumable); a failing session is listed at the end
and does not stop the others (exit status 1 if any failed). ``--jobs N`` uses N cores: N worker
processes of one thread each (``--jobs 1``: the sessions one after another in this process). The
summary of all sessions is printed and written to ``OUT/sessions.csv``. Sessions are not stored in
the history database.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, LegrepError

SUMMARY_COLUMNS: tuple[str, ...] = (
    "session", "kind", "status", "samples", "sets", "left_reps", "right_reps", "uneven", "flagged_reps", "error",
)  # fmt: skip
"""Columns of ``OUT/sessions.csv`` (status: ``done``, ``skipped`` (done before) or ``failed``)."""

_MAGIC = b"LEGREP-REC 1\n"  # legrep.recording.MAGIC, not imported: discovery must stay light


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "batch",
        help="analyse every recording or CSV pair under a folder, on all cores",
        description="Analyse every legrep recording and every left/right IMU CSV pair under DIR in "
        "parallel, write reps.csv and summary.json per session under OUT, skip sessions done before "
        "(same input bytes and settings), and print a summary table of all sessions (also OUT/sessions.csv).",
    )
    parser.add_argument("dir", metavar="DIR", help="folder to search (recursively)")
    parser.add_argument("--out", metavar="OUT", required=True, help="output folder (created if missing)")
    parser.add_argument("--jobs", type=int, default=0,
                        help="cores to use: worker processes of one thread each (default: one per core; 1: no pool)")  # fmt: skip
    parser.add_argument(
        "--set", dest="settings", metavar="NAME=VALUE", action="append", default=[],
        help="override an analysis setting for every session (recordings otherwise use their stored settings)",
    )  # fmt: skip
    parser.set_defaults(func=run)


@dataclass(frozen=True, slots=True)
class BatchSession:
    """One session found under the folder: a recording, or the CSV file of each leg."""

    name: str
    """Its folder name under OUT (the path relative to DIR, ``/`` as ``__``)."""
    kind: str
    """``recording`` or ``csv``."""
    files: tuple[str, ...]
    """The recording; or the left and/or right CSV."""
    legs: tuple[str, ...] = ()
    """For CSVs: the leg of each file."""


def _leg_in_name(name: str) -> str | None:
    lower = name.lower()
    has = [leg for leg in ("left", "right") if leg in lower]
    return has[0] if len(has) == 1 else None


def find_sessions(root: Path, skip: Path | None = None) -> list[BatchSession]:
    """Every recording and leg-CSV session under ``root`` (sorted by name; ``skip``: a folder to ignore)."""
    found: list[BatchSession] = []
    skip_resolved = skip.resolve() if skip is not None else None
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        if skip_resolved is not None and here.resolve() == skip_resolved:
            dirs[:] = []
            continue
        dirs.sort()
        rel = here.relative_to(root)
        prefix = "" if str(rel) == "." else "__".join(rel.parts) + "__"
        csvs: dict[str, dict[str, str]] = {}
        for name in sorted(files):
            path = here / name
            if name.lower().endswith(".csv"):
                leg = _leg_in_name(name)
                if leg is not None:
                    key = name.lower().replace(leg, "{leg}")
                    csvs.setdefault(key, {})[leg] = str(path)
                continue
            try:
                with open(path, "rb") as fh:
                    head = fh.read(len(_MAGIC))
            except OSError:
                continue
            if head == _MAGIC:
                found.append(BatchSession(prefix + name, "recording", (str(path),)))
        for key, by_leg in sorted(csvs.items()):
            stem = key.removesuffix(".csv").replace("{leg}", "").strip("_-. ")
            label = prefix + stem if stem else (prefix.removesuffix("__") or root.resolve().name)
            legs = tuple(leg for leg in ("left", "right") if leg in by_leg)
            found.append(BatchSession(label, "csv", tuple(by_leg[leg] for leg in legs), legs))
    return sorted(found, key=lambda s: s.name)


def _input_hash(session: BatchSession, settings_items: Sequence[str]) -> str:
    h = hashlib.sha256()  # (twice blake2b's speed here, with the CPU's SHA instructions; 1.4 GB/s)
    h.update(json.dumps([session.kind, list(session.legs), list(settings_items)]).encode())
    for path in session.files:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()


def _row(session: BatchSession, status: str, result: Any = None, error: str = "") -> dict[str, str]:
    row = {c: "" for c in SUMMARY_COLUMNS}
    row.update(session=session.name, kind=session.kind, status=status, error=error)
    if result is not None:
        from ..model import Leg

        row.update(
            samples=str(sum(d.samples for d in result.diagnostics.values())),
            sets=str(len(result.sets)),
            left_reps=str(len(result.reps_of(Leg.LEFT))) if Leg.LEFT in result.legs else "",
            right_reps=str(len(result.reps_of(Leg.RIGHT))) if Leg.RIGHT in result.legs else "",
            uneven="yes" if result.uneven else "no",
            flagged_reps=str(sum(1 for r in result.reps if r.flags)),
        )
    return row


def analyse_session(session: BatchSession, out_dir: str, settings_items: Sequence[str], threads: bool = True) -> dict[str, str]:
    """Analyse one session into ``out_dir/<name>/`` unless its ``done.json`` matches (worker side).

    ``threads``: read a CSV pair's two legs on two threads (one process alone); a pool's workers
    read on one (the pool already keeps every core busy). Returns its summary row; a failure is a
    row with status ``failed`` and the one-line error.
    """
    target = Path(out_dir) / session.name
    done_path = target / "done.json"
    try:
        digest = _input_hash(session, settings_items)
        try:
            done = json.loads(done_path.read_text(encoding="utf-8"))
            if done.get("input_hash") == digest and isinstance(done.get("row"), dict):
                return {**{c: "" for c in SUMMARY_COLUMNS}, **done["row"], "status": "skipped"}
        except (OSError, ValueError):
            pass
        result, settings = _analyse(session, settings_items, threads)
        from ..export import write_reps_csv, write_summary_json

        target.mkdir(parents=True, exist_ok=True)
        write_reps_csv(target / "reps.csv", result)
        write_summary_json(target / "summary.json", result, settings)
        row = _row(session, "done", result)
        partial = done_path.with_suffix(".json.part")
        partial.write_text(json.dumps({"input_hash": digest, "files": list(session.files), "row": row}) + "\n")
        partial.replace(done_path)  # written last and atomically: a killed run leaves no false "done"
        return row
    except LegrepError as exc:
        return _row(session, "failed", error=str(exc))
    except OSError as exc:
        return _row(session, "failed", error=f"{exc.filename or session.files[0]}: {exc.strerror or exc}")
    except Exception as exc:  # one broken session must not stop the batch; its error is listed
        return _row(session, "failed", error=f"internal error: {type(exc).__name__}: {exc}")


def _analyse(session: BatchSession, settings_items: Sequence[str], threads: bool = True) -> tuple[Any, Any]:
    from ..settings import Settings, parse_overrides

    if session.kind == "recording":
        from ..recording import RecordingReader
        from ..replay_batch import replay_file

        reader = RecordingReader(session.files[0])
        stored = reader.meta.get("settings")
        base = Settings.from_dict(stored) if isinstance(stored, dict) else Settings()
        settings = parse_overrides(settings_items, base)
        _core, result, _ = replay_file(reader, settings, keep_traces=False, processes=False)
        return result, settings
    from ..imu_csv import iter_imu_csv
    from ..model import Leg
    from ..offline import analyze_blocks

    settings = parse_overrides(settings_items)
    streams = {Leg(leg): iter_imu_csv(path) for leg, path in zip(session.legs, session.files)}
    # one process a session (--jobs is the parallelism: a worker forking per leg would oversubscribe)
    return analyze_blocks(streams, settings, threads=threads, processes=False), settings


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, a line per tenth otherwise."""

    def __init__(self, total: int, stream: Any = None) -> None:
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = self.failed = self.skipped = 0
        self._shown_tenth = -1
        self._t0 = time.monotonic()

    def update(self, status: str) -> None:
        self.done += 1
        self.failed += status == "failed"
        self.skipped += status == "skipped"
        width = 30
        filled = width * self.done // max(self.total, 1)
        text = (
            f"batch [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
            f" ({self.skipped} skipped, {self.failed} failed, {time.monotonic() - self._t0:.1f} s)"
        )
        if self.tty:
            self.stream.write("\r" + text + ("\n" if self.done == self.total else ""))
            self.stream.flush()
        elif 10 * self.done // max(self.total, 1) > self._shown_tenth or self.done == self.total:
            self._shown_tenth = 10 * self.done // max(self.total, 1)
            print(text, file=self.stream, flush=True)


def format_summary(rows: Sequence[dict[str, str]]) -> str:
    """The summary table (fixed-width text, one line per session, errors listed below)."""
    shown = [c for c in SUMMARY_COLUMNS if c != "error"]
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in shown}
    lines = ["  ".join(c.ljust(widths[c]) for c in shown)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in shown) for r in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _size(session: BatchSession) -> int:
    """Bytes of a session's input files (0 for a file that went away: its worker says why)."""
    total = 0
    for path in session.files:
        try:
            total += os.path.getsize(path)
        except OSError:
            pass
    return total


def _preload(sessions: Sequence[BatchSession]) -> None:
    """Import what the workers will run, in the parent (forked workers inherit it)."""
    from .. import export, settings  # noqa: F401

    if any(s.kind == "csv" for s in sessions):
        from .. import imu_csv, offline  # noqa: F401
    if any(s.kind == "recording" for s in sessions):
        from .. import recording, replay_batch  # noqa: F401


def run_batch(root: Path, out: Path, jobs: int, settings_items: Sequence[str], progress: Progress | None = None) -> list[dict[str, str]]:
    """Analyse every session under ``root`` into ``out``; the summary rows in session order."""
    sessions = find_sessions(root, skip=out)
    if not sessions:
        raise InputError(f"{root}: a folder holding recordings or left/right IMU CSVs expected, got none")
    progress = progress or Progress(len(sessions))
    progress.total = len(sessions)
    rows: dict[str, dict[str, str]] = {}
    if jobs == 1:
        for s in sessions:
            rows[s.name] = analyse_session(s, str(out), settings_items, threads=False)
            progress.update(rows[s.name]["status"])
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool

        workers = min(jobs or os.cpu_count() or 1, len(sessions))
        # Where the 2-worker speed-up went (benchmarks/endtoend.py): --jobs 1 read each CSV pair on
        # two threads, so "one after another" already used part of the second core (a session is
        # ~0.08 s of CPU, a third of it parsing); the workers did the same, oversubscribing the cores
        # the pool fills; each worker imported numpy and the analysis itself (~0.4 s of CPU apiece);
        # tasks in name order could leave the longest for last. Now --jobs N uses N cores, one thread
        # each; the parent imports once before the workers fork; the largest sessions go first.
        _preload(sessions)
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork") if "fork" in methods else None
        order = sorted(sessions, key=_size, reverse=True)
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(analyse_session, s, str(out), list(settings_items), False): s for s in order}
            for fut in as_completed(futures):
                s = futures[fut]
                try:
                    rows[s.name] = fut.result()
                except BrokenProcessPool:
                    rows[s.name] = _row(s, "failed", error="its worker process died")
                progress.update(rows[s.name]["status"])
    return [rows[s.name] for s in sessions]


def run(args: argparse.Namespace) -> int:
    from ..settings import parse_overrides

    root, out = Path(args.dir), Path(args.out)
    if not root.is_dir():
        raise InputError(f"{root}: a folder expected, got {'a file' if root.exists() else 'no such folder'}")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out: a folder expected, got the file {out}")
    if args.jobs < 0:
        raise InputError(f"--jobs: a number of processes >= 0 expected, got {args.jobs}")
    parse_overrides(args.settings)  # a bad --set is one line now, not one per session
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot create folder: {exc.strerror or exc}") from None
    rows = run_batch(root, out, args.jobs, args.settings)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (out / "sessions.csv").write_text(buf.getvalue(), encoding="utf-8")
    print(format_summary(rows), end="")
    failed = [r for r in rows if r["status"] == "failed"]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "skipped", "failed")}
    print(f"{len(rows)} sessions: {counts['done']} analysed, {counts['skipped']} done before, {counts['failed']} failed; "
          f"summary in {out / 'sessions.csv'}")  # fmt: skip
    for r in failed:
        print(f"legrep batch: failed: {r['session']}: {r['error']}", file=sys.stderr)
    return 1 if failed else 0
