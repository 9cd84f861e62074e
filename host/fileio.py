"""Writing output files without ever destroying an input.

Two tools every command that writes uses:

* :func:`atomic_open` / :func:`write_text_atomic` / :func:`write_bytes_atomic`: the new content
  goes to a temporary file in the same folder, is flushed and ``fsync``-ed, then renamed over the
  target with :func:`os.replace` (atomic on POSIX and Windows). A crash or a full disk leaves
  either the old file or the new one, never half a file; the temporary file is removed on error.
* :class:`OutputGuard`: before anything is written, refuses (one :class:`InputError` line) an
  output path that is the same file as one of the command's inputs, the history database (or its
  ``-wal``/``-shm`` companions), an existing legrep recording or SQLite database, or another
  output of the same command. "The same file" is checked both ways: :func:`os.path.samefile`
  (same device and inode: hard links, symlinks, ``./x`` vs ``x``) when both exist, and equal
  resolved paths when the output does not exist yet.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Union

from .errors import InputError

__all__ = [
    "OutputGuard",
    "atomic_open",
    "fresh_names",
    "is_recording_file",
    "is_sqlite_file",
    "same_file",
    "write_bytes_atomic",
    "write_text_atomic",
]

PathLike = Union[str, "os.PathLike[str]"]

RECORDING_MAGIC = b"LEGREP-REC "
"""Start of every legrep recording (docs/recording.md), without its version number."""
SQLITE_MAGIC = b"SQLite format 3\x00"
"""The 16-byte header of every SQLite 3 database file (sqlite.org/fileformat.html, section 1.3.1)."""


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_error(path: Path, exc: OSError) -> InputError:
    if isinstance(exc, IsADirectoryError) or path.is_dir():
        return InputError(f"{path}: a file path to write expected, got a directory")
    if isinstance(exc, FileNotFoundError) and not path.parent.is_dir():
        return InputError(f"{path}: a path in an existing folder expected, got a missing folder {path.parent}")
    return InputError(f"{path}: a writable file path expected, got {exc.strerror or exc}")


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = "\n") -> Iterator[IO[Any]]:
    """Open ``path`` for writing so that it is replaced only once everything was written.

    Use like :func:`open` (modes ``"w"`` or ``"wb"``). If the ``with`` body raises, the target
    is untouched and the temporary file removed.

    Raises
    ------
    InputError
        The target is a directory, its folder is missing, or it cannot be written (one line).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb', got {mode!r}")
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target}: a file path to write expected, got a directory")
    folder = target.parent
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise _write_error(target, exc) from None
    tmp = Path(tmp_name)
    try:
        binary = mode == "wb"
        with open(fd, mode, encoding=None if binary else encoding, newline=None if binary else newline) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        try:  # keep the permissions a new file would get (mkstemp makes 0600)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        except OSError:
            pass
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, InputError):
            raise _write_error(target, exc) from None
        raise
    _fsync_dir(folder)


def write_text_atomic(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def write_bytes_atomic(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def _head(path: Path, n: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except OSError:
        return b""


def is_recording_file(path: PathLike) -> bool:
    """True when ``path`` is an existing file that starts like a legrep recording."""
    p = Path(path)
    return p.is_file() and _head(p, len(RECORDING_MAGIC)) == RECORDING_MAGIC


def is_sqlite_file(path: PathLike) -> bool:
    """True when ``path`` is an existing file with the SQLite 3 header (a database, maybe a history)."""
    p = Path(path)
    return p.is_file() and _head(p, len(SQLITE_MAGIC)) == SQLITE_MAGIC


def same_file(a: PathLike, b: PathLike) -> bool:
    """True when ``a`` and ``b`` are (or, written, would be) the same file."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    try:
        return pa.resolve() == pb.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return os.path.abspath(pa) == os.path.abspath(pb)


class OutputGuard:
    """Refuse outputs that would overwrite what a command reads or keeps.

    Parameters
    ----------
    inputs : every file the command reads (CSV files, recordings...).
    db : the history database the command stores into (None when it stores nothing).

    Call :meth:`check` for each output (file) before writing any of them; ``option`` names it
    in the message (``--reps``).
    """

    def __init__(self, inputs: Iterable[PathLike | None] = (), db: PathLike | None = None) -> None:
        self.inputs = [Path(p) for p in inputs if p is not None]
        self.db = Path(db) if db is not None else None
        self._outputs: list[tuple[str, Path]] = []

    def check(self, option: str, path: PathLike | None) -> None:
        """Refuse ``path`` as an output (InputError, one line); None is ignored."""
        if path is None:
            return
        out = Path(path)
        for given in self.inputs:
            if same_file(out, given):
                raise InputError(f"{option} {out}: an output file expected, got the input {given} (it would be overwritten)")
        if self.db is not None:
            for name in (self.db, Path(f"{self.db}-wal"), Path(f"{self.db}-shm"), Path(f"{self.db}-journal")):
                if same_file(out, name):
                    raise InputError(f"{option} {out}: an output file expected, got the history database {self.db}")
        if is_recording_file(out):
            raise InputError(f"{option} {out}: an output file expected, got an existing legrep recording (choose another name)")
        if is_sqlite_file(out):
            raise InputError(f"{option} {out}: an output file expected, got an existing SQLite database (choose another name)")
        for other_option, other in self._outputs:
            if same_file(out, other):
                raise InputError(f"{option} {out}: a different file from {other_option} expected, got the same file")
        self._outputs.append((option, out))

    def check_all(self, outputs: Sequence[tuple[str, PathLike | None]]) -> None:
        for option, path in outputs:
            self.check(option, path)


def fresh_names(folder: PathLike, names: Sequence[str]) -> list[Path]:
    """``names`` in ``folder``, or with ``-2``, ``-3``... before the suffix: the first number for
    which none of them exists (so a new session never replaces an old one)."""
    base = Path(folder)
    for n in range(1, 100000):
        tag = "" if n == 1 else f"-{n}"
        paths = [base / (Path(name).stem + tag + Path(name).suffix) for name in names]
        if not any(p.exists() or p.is_symlink() for p in paths):
            return paths
    raise InputError(f"{base}: a folder with a free session name expected, got 100000 sessions")
