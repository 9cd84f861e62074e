"""History of sessions in a local SQLite database.

Every analysed or captured session is stored with its sets, reps, the settings it
was analysed with, the exercise name and a link (path + SHA-256) to its input
files. A session whose inputs have the same content as one already stored is not
stored again (the key is a hash over the input files' hashes).

Schema versions (``PRAGMA user_version``):

* 1 — ``sessions`` (started_at, stored_at, source_hash, source_paths as JSON, legs,
  uneven), ``sets``, ``reps``.
* 2 — ``sessions`` gains ``exercise`` and ``settings_json``; a ``sources`` table
  links each session to its files (path, role, sha256). Migrating from 1 copies
  ``source_paths`` into ``sources`` (hash unknown, NULL) and names the exercise
  "leg lift".
* 3 — ``sets`` gains ``exercise`` (README "Which exercise"; 'unknown' for older sessions).

Opening a database migrates it forward in one transaction; a database newer than
this legrep is refused.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import sqlite3
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from .errors import InputError, LegrepError
from .inputs import SessionInput, resolve_inputs
from .model import Leg, SessionResult
from .settings import Settings

__all__ = [
    "DEFAULT_EXERCISE",
    "EXIT_NOT_STORED",
    "Remembered",
    "remember_session",
    "EXPORT_COLUMNS",
    "AnalysedInput",
    "SessionInput",
    "analyze_input",
    "group_inputs",
    "SCHEMA_VERSION",
    "HistoryError",
    "SessionRow",
    "SourceFile",
    "StoreOutcome",
    "default_db_path",
    "export_csv",
    "export_tables",
    "history_tables",
    "format_sessions",
    "hash_file",
    "list_sessions",
    "open_history",
    "plot_trends",
    "source_files",
    "store_session",
]

SCHEMA_VERSION = 3
DEFAULT_EXERCISE = "leg lift"
_HASH_CHUNK = 1 << 20

PathLike = Union[str, "os.PathLike[str]"]


class HistoryError(LegrepError, RuntimeError):
    """The history database cannot be opened, migrated or written."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One input file of a session: where it was, what it holds, its SHA-256."""

    path: str
    role: str
    """``recording``, ``left`` or ``right`` (a CSV of that leg), or ``input``."""
    sha256: str | None


@dataclass(frozen=True, slots=True)
class StoreOutcome:
    session_id: int
    created: bool
    """False when a session with the same input content was already stored."""


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One stored session as ``legrep history`` lists it."""

    session_id: int
    started_at: str
    exercise: str
    legs: tuple[Leg, ...]
    left_reps: int
    right_reps: int
    mean_peak_left_deg: float
    mean_peak_right_deg: float
    uneven_sets: tuple[int, ...]
    n_sets: int
    source_hash: str | None
    sources: tuple[SourceFile, ...]
    settings_json: str | None


# --------------------------------------------------------------------------- schema

_SCHEMA_V1 = """
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    stored_at TEXT NOT NULL,
    source_hash TEXT UNIQUE,
    source_paths TEXT NOT NULL DEFAULT '[]',
    legs TEXT NOT NULL,
    uneven INTEGER NOT NULL
);
CREATE TABLE sets (
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    set_no INTEGER NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    left_reps INTEGER NOT NULL,
    right_reps INTEGER NOT NULL,
    uneven INTEGER NOT NULL,
    PRIMARY KEY (session_id, set_no)
);
CREATE TABLE reps (
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    leg TEXT NOT NULL,
    set_no INTEGER NOT NULL,
    rep_no INTEGER NOT NULL,
    start_s REAL NOT NULL,
    peak_s REAL NOT NULL,
    end_s REAL NOT NULL,
    baseline_deg REAL NOT NULL,
    peak_deg REAL NOT NULL,
    rom_deg REAL NOT NULL,
    up_s REAL NOT NULL,
    hold_s REAL NOT NULL,
    down_s REAL NOT NULL,
    flags TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reps_session ON reps(session_id);
"""

_MIGRATE_1_TO_2 = """
ALTER TABLE sessions ADD COLUMN exercise TEXT NOT NULL DEFAULT 'leg lift';
ALTER TABLE sessions ADD COLUMN settings_json TEXT;
CREATE TABLE sources (
    session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    role TEXT NOT NULL,
    sha256 TEXT
);
CREATE INDEX sources_session ON sources(session_id);
INSERT INTO sources (session_id, path, role, sha256)
    SELECT sessions.id, json_each.value, 'input', NULL FROM sessions, json_each(sessions.source_paths);
"""

_MIGRATE_2_TO_3 = """
ALTER TABLE sets ADD COLUMN exercise TEXT NOT NULL DEFAULT 'unknown';
"""

_MIGRATIONS: dict[int, str] = {0: _SCHEMA_V1, 1: _MIGRATE_1_TO_2, 2: _MIGRATE_2_TO_3}
"""``from_version -> SQL`` taking the schema to ``from_version + 1`` (0 = empty file)."""


def default_db_path() -> Path:
    """``$LEGREP_DB``, else ``$XDG_DATA_HOME/legrep/history.db`` (``~/.local/share/legrep/history.db``)."""
    env = os.environ.get("LEGREP_DB")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "legrep" / "history.db"


_BUSY_TIMEOUT_S = 30.0
"""How long a writer waits for another legrep holding the database (SQLite busy timeout)."""


def _recover_hint(source: str) -> str:
    return (
        f"nothing was changed; analyse with --db OTHER.db (or --no-history) meanwhile, and recover what it holds with: "
        f"sqlite3 {source} .recover | sqlite3 recovered.db"
    )


def _database_error(source: str, exc: sqlite3.Error) -> HistoryError:
    """A one-line HistoryError for an SQLite failure, with what to do about it."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return HistoryError(
            f"{source}: the history database stayed locked by another program for {_BUSY_TIMEOUT_S:g} s ({text}); try again"
        )
    if isinstance(exc, sqlite3.OperationalError) and ("readonly" in text or "read-only" in text or "unable to open" in text):
        return HistoryError(f"{source}: the history database cannot be written ({text}); use --db elsewhere")
    if isinstance(exc, sqlite3.OperationalError) and "disk" in text and "full" in text:
        return HistoryError(f"{source}: the disk is full ({text}); nothing was stored")
    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError | sqlite3.IntegrityError):
        return HistoryError(f"{source}: an SQLite history database expected, got a damaged or unreadable file ({text}); {_recover_hint(source)}")
    return HistoryError(f"{source}: the history database failed: {text}")


@contextlib.contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction taken at its start (``BEGIN IMMEDIATE``: no deadlock between writers,
    the busy timeout applies); committed at the end, rolled back if anything fails."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    """Split an SQL script into statements (``executescript`` would commit on its own)."""
    out: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


def _check_version(conn: sqlite3.Connection, source: str) -> int:
    # One statement, so one snapshot: a concurrent migrator's commit cannot fall between the two reads.
    version, n_tables = conn.execute(
        "SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_master)"
    ).fetchone()
    version = int(version)
    if version > SCHEMA_VERSION:
        raise HistoryError(
            f"{source}: history schema version {SCHEMA_VERSION} or older expected, got {version} (made by a newer legrep);"
            " upgrade legrep, or use --db elsewhere (the file was not changed)"
        )
    if version == 0 and n_tables:
        raise HistoryError(
            f"{source}: a legrep history database expected, got an SQLite file with other tables; use --db elsewhere"
            " (the file was not changed)"
        )
    return version


def _migrate(conn: sqlite3.Connection, source: str) -> None:
    """Take the schema to :data:`SCHEMA_VERSION` in one ``BEGIN IMMEDIATE`` transaction.

    The version is read again once the write lock is held, so a concurrent migrator that got
    there first leaves nothing to do (and no "table already exists").
    """
    if _check_version(conn, source) == SCHEMA_VERSION:
        return
    with _immediate(conn):
        version = _check_version(conn, source)
        while version < SCHEMA_VERSION:
            for statement in _statements(_MIGRATIONS[version]):
                conn.execute(statement)
            version += 1
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL journal mode (once per file; it stays so).

    Changing the journal mode needs the file to itself, and SQLite answers "locked" at once rather
    than wait (its busy handler is not used where waiting could deadlock), so several legrep
    processes opening a new database together retry here for up to the busy timeout. Without WAL
    the history still works (transactions and the busy timeout keep it correct), only slower.
    """
    import time

    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    delay_s = 0.005
    while True:
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
        time.sleep(delay_s)
        delay_s = min(0.1, delay_s * 2)


def _looks_like_sqlite(path: Path) -> bool:
    """An empty or missing file, or one with the SQLite 3 header (checked before SQLite touches it)."""
    from .fileio import SQLITE_MAGIC

    try:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return True
    except OSError as exc:
        raise HistoryError(f"{path}: cannot read the history database: {exc.strerror or exc}") from None
    return head in (b"", SQLITE_MAGIC)


def open_history(db: PathLike | sqlite3.Connection | None = None) -> sqlite3.Connection:
    """Open (creating and migrating as needed) the history database.

    The connection is in autocommit mode (``isolation_level=None``; writes use explicit
    ``BEGIN IMMEDIATE`` transactions), the file in WAL journal mode (readers never block the
    writer, and a crash mid-write leaves the last committed state), with a busy timeout of
    :data:`_BUSY_TIMEOUT_S` seconds so that several legrep processes can store at once.

    Parameters
    ----------
    db : a path, an open connection (migrated in place, switched to autocommit), or None for
        :func:`default_db_path`.

    Raises
    ------
    HistoryError
        The path is a directory; the file is not an SQLite database, is damaged, is not a legrep
        history, or is newer than this legrep (the message says what to do; such a file is not
        changed); or it stays locked longer than the busy timeout.
    """
    if isinstance(db, sqlite3.Connection):
        conn = db
        source = "history database"
        conn.isolation_level = None
    else:
        path = Path(db) if db is not None else default_db_path()
        source = str(path)
        if path.is_dir():
            raise HistoryError(f"{path}: a history database file expected, got a directory; use --db FILE")
        if not _looks_like_sqlite(path):
            raise HistoryError(
                f"{path}: an SQLite history database expected, got a file that is not SQLite; use --db elsewhere"
                " (the file was not changed)"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"{path}: cannot open the history database: {exc}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        _check_version(conn, source)  # before anything is written to it
        if not isinstance(db, sqlite3.Connection):
            _enable_wal(conn)
        conn.execute("PRAGMA foreign_keys = ON")
        _migrate(conn, source)
    except (sqlite3.Error, HistoryError) as exc:
        if not isinstance(db, sqlite3.Connection):
            conn.close()
        if isinstance(exc, HistoryError):
            raise
        raise _database_error(source, exc) from None
    return conn


class _Connection:
    """Context manager: use a given connection, or open (and close) one from a path; any SQLite
    failure inside becomes one :class:`HistoryError` line saying what to do."""

    def __init__(self, db: PathLike | sqlite3.Connection | None) -> None:
        self._given = db if isinstance(db, sqlite3.Connection) else None
        self._db = db
        self._conn: sqlite3.Connection | None = None
        self.source = "history database"
        if not isinstance(db, sqlite3.Connection):
            self.source = str(Path(db) if db is not None else default_db_path())

    def __enter__(self) -> sqlite3.Connection:
        self._conn = open_history(self._db)
        return self._conn

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: object) -> None:
        if self._given is None and self._conn is not None:
            self._conn.close()
        if isinstance(ev, sqlite3.Error):
            raise _database_error(self.source, ev) from None


# --------------------------------------------------------------------------- sources


def hash_file(path: PathLike) -> str:
    """SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def source_files(source: PathLike | Sequence[PathLike] | Mapping[str, PathLike] | None) -> tuple[SourceFile, ...]:
    """Describe a session's input files (reading them to hash their content).

    ``source`` is one path (a recording), a mapping ``role -> path`` (e.g.
    ``{"left": "l.csv", "right": "r.csv"}``), or a sequence of paths (role ``input``).
    """
    if source is None:
        return ()
    if isinstance(source, Mapping):
        items = [(str(role), p) for role, p in source.items()]
    elif isinstance(source, (str, os.PathLike)):
        items = [("recording", source)]
    else:
        items = [("input", p) for p in source]
    return tuple(SourceFile(str(Path(p).resolve()), role, hash_file(p)) for role, p in items)


def _content_hash(sources: Sequence[SourceFile]) -> str | None:
    """One key for a session's inputs: the hash of the sorted (role, file hash) pairs."""
    if not sources or any(s.sha256 is None for s in sources):
        return None
    text = "\n".join(sorted(f"{s.role}:{s.sha256}" for s in sources))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _iso(value: dt.datetime | str | None) -> str:
    if value is None:
        return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.astimezone()
        return value.isoformat(timespec="seconds")
    try:
        return dt.datetime.fromisoformat(value).isoformat(timespec="seconds")
    except ValueError:
        raise InputError(f"started_at must be an ISO 8601 date-time, got {value!r}") from None


# --------------------------------------------------------------------------- store


def store_session(
    db: PathLike | sqlite3.Connection | None,
    result: SessionResult,
    settings: Settings | None = None,
    source: PathLike | Sequence[PathLike] | Mapping[str, PathLike] | Sequence[SourceFile] | None = None,
    exercise: str = DEFAULT_EXERCISE,
    started_at: dt.datetime | str | None = None,
) -> StoreOutcome:
    """Store one analysed session with its sets, reps, settings and input files.

    Parameters
    ----------
    db : database path, open connection, or None for :func:`default_db_path`.
    result : the analysed session.
    settings : the settings it was analysed with (stored as JSON).
    source : its input files (see :func:`source_files`), or already hashed ``SourceFile``s,
        or None (a session without files is never de-duplicated).
    exercise : free text, e.g. "straight leg raise".
    started_at : wall-clock start (datetime or ISO text); None means now.

    Returns
    -------
    StoreOutcome
        The session id, and ``created=False`` if the same input content was stored before
        (nothing is written then).
    """
    sources: tuple[SourceFile, ...]
    if (
        isinstance(source, Sequence)
        and not isinstance(source, str)
        and source
        and all(isinstance(s, SourceFile) for s in source)
    ):
        sources = tuple(s for s in source if isinstance(s, SourceFile))
    else:
        sources = source_files(source)  # type: ignore[arg-type]
    key = _content_hash(sources)
    settings_json = json.dumps((settings or Settings()).to_dict(), sort_keys=True)
    with _Connection(db) as conn, _immediate(conn):
        # The UNIQUE source_hash decides, inside the write transaction: two processes storing the
        # same content at once store it once, and the second hears "already stored".
        cur = conn.execute(
            "INSERT OR IGNORE INTO sessions (started_at, stored_at, source_hash, source_paths, legs, uneven, exercise,"
            " settings_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _iso(started_at),
                _iso(None),
                key,
                json.dumps([s.path for s in sources]),
                ",".join(leg.value for leg in result.legs),
                int(result.uneven),
                exercise.strip() or DEFAULT_EXERCISE,
                settings_json,
            ),
        )
        if cur.rowcount == 0:
            row = conn.execute("SELECT id FROM sessions WHERE source_hash = ?", (key,)).fetchone()
            return StoreOutcome(int(row[0]), False)
        session_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO sources (session_id, path, role, sha256) VALUES (?, ?, ?, ?)",
            [(session_id, s.path, s.role, s.sha256) for s in sources],
        )
        conn.executemany(
            "INSERT INTO sets (session_id, set_no, start_s, end_s, left_reps, right_reps, uneven, exercise)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (session_id, s.set, s.start_s, s.end_s, s.left_reps, s.right_reps, int(s.uneven), s.exercise)
                for s in result.sets
            ],
        )
        conn.executemany(
            "INSERT INTO reps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    session_id, r.leg.value, r.set, r.rep, r.start_s, r.peak_s, r.end_s, r.baseline_deg,
                    r.peak_deg, r.rom_deg, r.up_s, r.hold_s, r.down_s, ";".join(r.flags),
                )
                for r in result.reps
            ],
        )  # fmt: skip
    return StoreOutcome(session_id, True)


# --------------------------------------------------------------------------- read


EXIT_NOT_STORED = 3
"""Exit status of ``analyze``/``report``/``capture`` when their results were written but the session
asked to be stored in the history could not be (README "Exit status")."""


@dataclass(frozen=True, slots=True)
class Remembered:
    """What :func:`remember_session` did: the line to show, and whether the session is in the history."""

    line: str
    stored: bool

    def __str__(self) -> str:
        return self.line


def remember_session(
    db: PathLike | None,
    result: SessionResult,
    settings: Settings | None,
    source: PathLike | Sequence[PathLike] | Mapping[str, PathLike] | Sequence[SourceFile] | None,
    exercise: str = DEFAULT_EXERCISE,
    started_at: dt.datetime | str | None = None,
) -> Remembered:
    """Store a session for a command; never raises for a history problem.

    The command's own output is written first; when storing fails, ``stored`` is False and
    ``line`` says why (the command prints it on stderr and exits with :data:`EXIT_NOT_STORED`).
    """
    try:
        outcome = store_session(db, result, settings, source, exercise, started_at)
    except (LegrepError, OSError) as exc:
        return Remembered(f"session not stored in history: {exc}", False)
    state = "stored as" if outcome.created else "already stored as"
    return Remembered(f"{state} session {outcome.session_id} ({db or default_db_path()})", True)


def list_sessions(db: PathLike | sqlite3.Connection | None = None) -> list[SessionRow]:
    """Every stored session, oldest first (by start time, then id)."""
    with _Connection(db) as conn:
        sessions = conn.execute(
            "SELECT id, started_at, exercise, legs, source_hash, settings_json FROM sessions ORDER BY started_at, id"
        ).fetchall()
        rep_stats = {
            (sid, leg): (n, mean)
            for sid, leg, n, mean in conn.execute(
                "SELECT session_id, leg, count(*), avg(peak_deg) FROM reps GROUP BY session_id, leg"
            )
        }
        uneven: dict[int, list[int]] = {}
        n_sets: dict[int, int] = {}
        for sid, set_no, is_uneven in conn.execute("SELECT session_id, set_no, uneven FROM sets ORDER BY set_no"):
            n_sets[sid] = n_sets.get(sid, 0) + 1
            if is_uneven:
                uneven.setdefault(sid, []).append(int(set_no))
        files: dict[int, list[SourceFile]] = {}
        for sid, path, role, sha in conn.execute("SELECT session_id, path, role, sha256 FROM sources ORDER BY rowid"):
            files.setdefault(sid, []).append(SourceFile(path, role, sha))
    rows = []
    for sid, started_at, exercise, legs, key, settings_json in sessions:
        left = rep_stats.get((sid, "left"), (0, None))
        right = rep_stats.get((sid, "right"), (0, None))
        rows.append(
            SessionRow(
                session_id=int(sid),
                started_at=str(started_at),
                exercise=str(exercise),
                legs=tuple(Leg(x) for x in str(legs).split(",") if x),
                left_reps=int(left[0]),
                right_reps=int(right[0]),
                mean_peak_left_deg=math.nan if left[1] is None else float(left[1]),
                mean_peak_right_deg=math.nan if right[1] is None else float(right[1]),
                uneven_sets=tuple(uneven.get(sid, ())),
                n_sets=n_sets.get(sid, 0),
                source_hash=key,
                sources=tuple(files.get(sid, ())),
                settings_json=settings_json,
            )
        )
    return rows


def _short_date(iso: str) -> str:
    try:
        return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso[:16]


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control and format characters (escape sequences,
    carriage returns, bidirectional overrides) each become U+FFFD, so stored text can neither
    move the cursor nor recolour or hide the output."""
    return "".join("\ufffd" if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text)


def format_sessions(rows: Sequence[SessionRow]) -> str:
    """The per-session table ``legrep history`` prints."""
    if not rows:
        return "no sessions stored yet (add some with: legrep history --add FILE...)"

    def reps(row: SessionRow, leg: Leg, n: int) -> str:
        return str(n) if leg in row.legs else "-"

    def peak(row: SessionRow, leg: Leg, value: float) -> str:
        return "-" if leg not in row.legs or math.isnan(value) else f"{value:.1f}"

    header = ("id", "date", "exercise", "sets", "reps L", "reps R", "peak L°", "peak R°", "uneven sets")
    table = [header]
    for r in rows:
        table.append(
            (
                str(r.session_id),
                printable(_short_date(r.started_at)),
                printable(r.exercise),
                str(r.n_sets),
                reps(r, Leg.LEFT, r.left_reps),
                reps(r, Leg.RIGHT, r.right_reps),
                peak(r, Leg.LEFT, r.mean_peak_left_deg),
                peak(r, Leg.RIGHT, r.mean_peak_right_deg),
                ", ".join(str(s) for s in r.uneven_sets) or "-",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    left_aligned = {1, 2, 8}
    lines = []
    for row in table:
        cells = [c.ljust(w) if i in left_aligned else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


EXPORT_COLUMNS: tuple[str, ...] = (
    "session_id", "started_at", "exercise", "legs", "source_hash", "sources", "settings_json",
    "set", "set_left_reps", "set_right_reps", "set_uneven",
    "leg", "rep", "start_s", "peak_s", "end_s", "baseline_deg", "peak_deg", "rom_deg",
    "up_s", "hold_s", "down_s", "flags",
)  # fmt: skip
"""Columns of :func:`export_csv`: one row per rep, its session and set repeated on each row."""


def export_csv(db: PathLike | sqlite3.Connection | None, path: PathLike) -> int:
    """Export everything: one row per rep with its session's and set's fields.

    A session without reps still gets one row (rep fields empty), so no session is lost.
    Floats are written with ``repr`` precision, so they read back exactly.

    Returns
    -------
    int
        Number of data rows written.
    """
    with _Connection(db) as conn:
        sessions = conn.execute(
            "SELECT id, started_at, exercise, legs, source_hash, settings_json FROM sessions ORDER BY started_at, id"
        ).fetchall()
        sources: dict[int, list[str]] = {}
        for sid, p, role, sha in conn.execute("SELECT session_id, path, role, sha256 FROM sources ORDER BY rowid"):
            sources.setdefault(sid, []).append(f"{role}={p}" + (f"#{sha}" if sha else ""))
        sets = {
            (sid, n): (lr, rr, u)
            for sid, n, lr, rr, u in conn.execute("SELECT session_id, set_no, left_reps, right_reps, uneven FROM sets")
        }
        reps = conn.execute(
            "SELECT session_id, leg, set_no, rep_no, start_s, peak_s, end_s, baseline_deg, peak_deg, rom_deg,"
            " up_s, hold_s, down_s, flags FROM reps ORDER BY session_id, set_no, leg, rep_no"
        ).fetchall()
    by_session: dict[int, list[tuple[object, ...]]] = {}
    for r in reps:
        by_session.setdefault(r[0], []).append(r)
    from .fileio import atomic_open

    n = 0
    with atomic_open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(EXPORT_COLUMNS)
        for sid, started_at, exercise, legs, key, settings_json in sessions:
            head = [sid, started_at, exercise, legs, key or "", " ".join(sources.get(sid, [])), settings_json or ""]
            session_reps = by_session.get(sid, [])
            if not session_reps:
                writer.writerow(head + [""] * (len(EXPORT_COLUMNS) - len(head)))
                n += 1
            for r in session_reps:
                lr, rr, u = sets.get((sid, r[2]), ("", "", ""))
                writer.writerow(head + [r[2], lr, rr, u, r[1], r[3], *(repr(float(v)) for v in r[4:13]), r[13]])  # type: ignore[arg-type]
                n += 1
    return n


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def plot_trends(db: PathLike | sqlite3.Connection | None, path: PathLike) -> int:
    """Draw reps per leg and mean peak angle per leg over the stored sessions (PNG).

    Returns
    -------
    int
        Number of sessions drawn.

    Raises
    ------
    InputError
        If no session is stored.
    """
    from .report import _LEG_COLOUR, _matplotlib

    rows = list_sessions(db)
    if not rows:
        raise InputError("history has no sessions to plot; add some with: legrep history --add FILE...")
    figure_cls, canvas_cls = _matplotlib()
    fig = figure_cls(figsize=(10.0, 6.0), dpi=100, layout="constrained")
    canvas_cls(fig)
    ax_reps, ax_peak = fig.subplots(2, 1, sharex=True)
    x = list(range(len(rows)))
    for leg, reps_attr, peak_attr in (
        (Leg.LEFT, "left_reps", "mean_peak_left_deg"),
        (Leg.RIGHT, "right_reps", "mean_peak_right_deg"),
    ):
        xs = [i for i, r in zip(x, rows) if leg in r.legs]
        if not xs:
            continue
        colour = _LEG_COLOUR[leg]
        ax_reps.plot(xs, [getattr(rows[i], reps_attr) for i in xs], "o-", color=colour, label=leg.value)
        ax_peak.plot(xs, [getattr(rows[i], peak_attr) for i in xs], "o-", color=colour, label=leg.value)
    for i, r in enumerate(rows):
        if r.uneven_sets:
            ax_reps.annotate("uneven", (i, max(r.left_reps, r.right_reps)), xytext=(0, 6),
                             textcoords="offset points", ha="center", fontsize=8, color="#c0392b")  # fmt: skip
    ax_reps.margins(y=0.15)
    ax_reps.set_ylabel("reps per session")
    ax_peak.set_ylabel("mean peak angle (°)")
    ax_reps.legend(fontsize=8)
    for ax in (ax_reps, ax_peak):
        ax.grid(True, alpha=0.3)
    step = max(1, math.ceil(len(rows) / 20))
    ax_peak.set_xticks(x[::step])
    ax_peak.set_xticklabels(
        [f"{_short_date(r.started_at)[:10]}\n{_clip(r.exercise, 20)}" for r in rows[::step]], rotation=45, ha="right", fontsize=8
    )
    ax_peak.set_xlim(-0.5, len(rows) - 0.5)
    fig.suptitle("legrep history: reps and mean peak angle per leg")
    from .fileio import atomic_open

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(out, "wb") as fh:
        fig.savefig(fh, format="png")
    return len(rows)


SESSION_COLUMNS: tuple[str, ...] = (
    "session_id", "started_at", "stored_at", "exercise", "legs", "uneven", "n_sets", "left_reps", "right_reps",
    "source_hash", "sources",
)  # fmt: skip
"""First columns of ``sessions`` in :func:`export_tables`; then one ``setting_<name>`` column per setting."""
SET_COLUMNS: tuple[str, ...] = ("session_id", "set", "exercise", "start_s", "end_s", "left_reps", "right_reps", "uneven")
REP_COLUMNS: tuple[str, ...] = (
    "session_id", "set", "leg", "rep", "start_s", "peak_s", "end_s", "baseline_deg", "peak_deg", "rom_deg",
    "up_s", "hold_s", "down_s", "flags",
)  # fmt: skip


def _settings_of(settings_json: str | None) -> dict[str, object]:
    try:
        value = json.loads(settings_json) if settings_json else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def history_tables(db: PathLike | sqlite3.Connection | None) -> dict[str, tuple[tuple[str, ...], list[tuple[object, ...]]]]:
    """The history as three tables for research: ``sessions`` (one row per session, its settings as
    ``setting_<name>`` columns, once), ``sets`` and ``reps`` (joined to sessions by ``session_id``).

    Returns
    -------
    dict
        ``name -> (columns, rows)``.
    """
    with _Connection(db) as conn:
        sessions = conn.execute(
            "SELECT id, started_at, stored_at, exercise, legs, uneven, source_hash, settings_json FROM sessions"
            " ORDER BY started_at, id"
        ).fetchall()
        sources: dict[int, list[str]] = {}
        for sid, p, role, sha in conn.execute("SELECT session_id, path, role, sha256 FROM sources ORDER BY rowid"):
            sources.setdefault(sid, []).append(f"{role}={p}" + (f"#{sha}" if sha else ""))
        sets = conn.execute(
            "SELECT session_id, set_no, exercise, start_s, end_s, left_reps, right_reps, uneven FROM sets"
            " ORDER BY session_id, set_no"
        ).fetchall()
        reps = conn.execute(
            "SELECT session_id, set_no, leg, rep_no, start_s, peak_s, end_s, baseline_deg, peak_deg, rom_deg,"
            " up_s, hold_s, down_s, flags FROM reps ORDER BY session_id, set_no, leg, rep_no"
        ).fetchall()
        counts = {
            (sid, leg): n for sid, leg, n in conn.execute("SELECT session_id, leg, count(*) FROM reps GROUP BY session_id, leg")
        }
    n_sets: dict[int, int] = {}
    for row in sets:
        n_sets[row[0]] = n_sets.get(row[0], 0) + 1
    stored = {sid: _settings_of(sj) for sid, *_, sj in sessions}
    names = [f.name for f in dataclasses.fields(Settings)]
    names += sorted({k for values in stored.values() for k in values} - set(names))  # from other legrep versions
    session_rows = [
        (
            sid, started_at, stored_at, exercise, legs, int(uneven), n_sets.get(sid, 0),
            counts.get((sid, "left"), 0), counts.get((sid, "right"), 0), key or "", " ".join(sources.get(sid, [])),
            *(stored[sid].get(name) for name in names),
        )
        for sid, started_at, stored_at, exercise, legs, uneven, key, _sj in sessions
    ]  # fmt: skip
    return {
        "sessions": (SESSION_COLUMNS + tuple(f"setting_{n}" for n in names), session_rows),
        "sets": (SET_COLUMNS, [tuple(r) for r in sets]),
        "reps": (REP_COLUMNS, [tuple(r) for r in reps]),
    }


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # reads back exactly
    return value


def export_tables(
    db: PathLike | sqlite3.Connection | None, folder: PathLike, parquet: bool | None = None
) -> dict[str, Path]:
    """Write the history as ``sessions``, ``sets`` and ``reps`` tables into ``folder``.

    Always CSV (``sessions.csv``, ``sets.csv``, ``reps.csv``: floats at ``repr`` precision, empty
    for missing); also Parquet (``*.parquet``, typed columns) when ``parquet`` is True, or when it
    is None and pyarrow is installed (``pip install 'legrep[research]'``). Each file is written
    atomically; the folder is created if missing.

    Returns
    -------
    dict
        File name -> path written.

    Raises
    ------
    InputError
        ``parquet=True`` without pyarrow, or the folder cannot be created.
    """
    from .fileio import atomic_open

    import importlib.util

    with_parquet = parquet is not False and importlib.util.find_spec("pyarrow") is not None
    if parquet and not with_parquet:
        raise InputError("Parquet export needs pyarrow (pip install 'legrep[research]'), got no pyarrow")
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: a folder to write the tables into expected, got {exc.strerror or exc}") from None
    written: dict[str, Path] = {}
    tables = history_tables(db)
    for name, (columns, rows) in tables.items():
        path = out / f"{name}.csv"
        with atomic_open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            writer.writerows([_csv_cell(v) for v in row] for row in rows)
        written[path.name] = path
    if with_parquet:
        for name, (columns, rows) in tables.items():
            path = out / f"{name}.parquet"
            _write_parquet(path, columns, rows)
            written[path.name] = path
    return written


def _write_parquet(path: Path, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """One table as Parquet: each column typed from its values (int64, float64, bool or string)."""
    import pyarrow as pa  # type: ignore[import-untyped,import-not-found,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped,import-not-found,unused-ignore]

    from .fileio import atomic_open

    arrays = []
    for i, _name in enumerate(columns):
        values = [row[i] for row in rows]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            kind = pa.int64()
        elif present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            kind = pa.float64()
            values = [None if v is None else float(v) for v in values]  # type: ignore[arg-type]
        else:
            kind = pa.string()
            values = [None if v is None else str(v) for v in values]
        arrays.append(pa.array(values, type=kind))
    table = pa.Table.from_arrays(arrays, names=list(columns))
    with atomic_open(path, "wb") as fh:
        pq.write_table(table, fh)


# --------------------------------------------------------------------------- inputs (file edge)


@dataclass(frozen=True, slots=True)
class AnalysedInput:
    input: SessionInput
    result: SessionResult
    settings: Settings
    sources: tuple[SourceFile, ...]
    started_at: str


def group_inputs(paths: Sequence[PathLike]) -> list[SessionInput]:
    """Group input paths into sessions: :func:`legrep.inputs.resolve_inputs` (the resolver every
    offline command shares)."""
    return resolve_inputs(paths)


def _mtime_iso(paths: Sequence[Path]) -> str:
    stamp = min(p.stat().st_mtime for p in paths)
    return dt.datetime.fromtimestamp(stamp, dt.timezone.utc).isoformat(timespec="seconds")


def _recording_meta(path: Path | Any) -> tuple[str | None, Settings | None]:
    """``started_at`` (ISO 8601) and the analysis settings a recording's META stores, if any
    (``path`` a recording file or an open :class:`legrep.recording.RecordingReader`)."""
    from .recording import RecordingReader

    meta = (path if isinstance(path, RecordingReader) else RecordingReader(path)).meta
    started: str | None = None
    if isinstance(meta.get("started_at"), str):
        try:
            started = _iso(meta["started_at"])
        except InputError:
            started = None
    stored = meta.get("settings")
    return started, Settings.from_dict(stored) if isinstance(stored, dict) else None


def analyze_input(
    item: SessionInput,
    settings: Settings | None = None,
    started_at: dt.datetime | str | None = None,
    trace_points: int | None = None,
    beside: Callable[[], object] | None = None,
    hash_sources: bool = True,
) -> AnalysedInput:
    """Analyse one session's files (a recording via replay, CSVs via ``analyze_arrays``).

    ``settings`` None means the defaults, or for a recording the settings stored in it;
    the settings actually used are returned. ``started_at`` defaults to the recording's own start time if it stores one, else
    the oldest modification time of the files. ``trace_points``: keep each leg's angle trace
    reduced as it streams to at most that many points (the lowest and highest of each time bin:
    :class:`legrep.report.TraceEnvelope`; memory flat in the length) instead of whole. ``beside``
    is called once while the analysis runs (CSV files: in the legs' own processes,
    :func:`legrep.offline.analyze_blocks`), e.g. to import what comes after it. ``hash_sources``
    False: no source files described (``sources`` empty: nothing will be stored; hashing 8 h of CSV
    costs a second of CPU the analysis could use).
    """
    # the files' hashes on a thread beside the analysis (hashlib releases the GIL: on a second core
    # the half second of hashing a long session's files is hidden); an error of it comes after the
    # analysis's, as before
    from concurrent.futures import ThreadPoolExecutor

    if not hash_sources:
        return _analyze_input(item, settings, started_at, trace_points, tuple, beside)
    with ThreadPoolExecutor(1, thread_name_prefix="legrep-hash") as pool:
        sources = pool.submit(source_files, item.source())
        return _analyze_input(item, settings, started_at, trace_points, sources.result, beside)


def _analyze_input(
    item: SessionInput,
    settings: Settings | None,
    started_at: dt.datetime | str | None,
    trace_points: int | None,
    sources: Callable[[], tuple[SourceFile, ...]],
    beside: Callable[[], object] | None = None,
) -> AnalysedInput:
    """:func:`analyze_input` with the source files' description from ``sources`` (called last)."""
    envelopes: dict[Any, Any] = {}
    on_angle = None
    if trace_points is not None:
        from .report import TraceEnvelope

        def on_angle(leg: Any, time_s: Any, angle_deg: Any) -> None:
            if leg not in envelopes:
                envelopes[leg] = TraceEnvelope(trace_points)
            envelopes[leg].update(time_s, angle_deg)

    if item.recording is not None:
        from .recording import RecordingReader
        from .replay_batch import replay_file

        reader = RecordingReader(item.recording)  # (read and checked once)
        if beside is not None:
            beside()
        recorded_start, recorded_settings = _recording_meta(reader)
        # the file replay (batched decoding, the same result as the live path's replay_recording)
        _core, result, _reader = replay_file(reader, settings, keep_traces=on_angle is None, on_angle=on_angle)  # None: the recording's own settings
        settings = settings or recorded_settings or Settings()
        files = [item.recording]
        if started_at is None:
            started_at = recorded_start
    else:
        settings = settings or Settings()
        from .imu_csv import iter_imu_csv
        from .model import Leg
        from .offline import analyze_blocks

        # streamed: the CSV read block by block (memory: the angle traces the report draws, not the
        # samples); the same result as analysing whole arrays (the stages are chunking-invariant)
        paths = {leg: p for leg, p in ((Leg.LEFT, item.left_csv), (Leg.RIGHT, item.right_csv)) if p is not None}
        if not paths:
            raise InputError("expected samples for at least one leg (left or right), got none")
        pelvis = iter_imu_csv(item.pelvis_csv) if item.pelvis_csv is not None else None
        # (the trace reduced in each leg's process, when it has one: legrep.offline)
        result = analyze_blocks({leg: iter_imu_csv(p) for leg, p in paths.items()}, settings, keep_traces=on_angle is None,
                                pelvis=pelvis, trace_points=trace_points, beside=beside)  # fmt: skip
        files = [*paths.values(), *([item.pelvis_csv] if item.pelvis_csv is not None else [])]
    if on_angle is not None and item.recording is not None:
        import dataclasses

        result = dataclasses.replace(result, traces={leg: env.trace() for leg, env in envelopes.items()})
    when = _iso(started_at) if started_at is not None else _mtime_iso(files)
    return AnalysedInput(item, result, settings, sources(), when)
