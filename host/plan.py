"""The trainer's programme: steps with targets, and where a person is on them (README "The programme").

A plan is a TOML file (``host/default_plan.toml`` is shipped; a trainer edits a copy): ordered
``[[step]]`` tables, each an exercise legrep recognises with targets, ``[[alternative]]`` tables
(exercises that may replace a step on some days) and ``[rules]``. :func:`advise` walks the
sessions of the history in time order from the first step:

* a session is **at** the current step when it has a set of the step's exercise; other
  sessions do not move the person (alternatives are judged against their own targets);
* **progress** to the next step after ``progress_after`` sessions in a row at the step that met
  every target;
* **step back** one step after ``step_back_after`` sessions in a row at the step in which the
  back arched (a ``back_arch`` flag) or the legs were uneven (an uneven set of the step);
* otherwise **stay**.

Everything here except :func:`load_plan` and :func:`load_history` is I/O-free.
"""

from __future__ import annotations

import re
import sqlite3
import tomllib
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import InputError
from .exercise import EXERCISES
from .model import Leg, Rep, SessionResult

DEFAULT_PLAN = "default_plan.toml"
"""The plan shipped with legrep (package data of ``legrep``)."""

_TARGET_TYPES: dict[str, type] = {
    "reps_per_leg": int,
    "sets": int,
    "min_down_s": float,
    "even_legs": bool,
    "no_back_arch": bool,
    "one_leg_at_a_time": bool,
}
_STEP_TEXT = ("id", "title", "exercise", "how")


@dataclass(frozen=True, slots=True)
class Targets:
    """What a session at a step must reach (README "The programme" lists them)."""

    reps_per_leg: int = 10
    sets: int = 2
    min_down_s: float = 1.6
    even_legs: bool = True
    no_back_arch: bool = True
    one_leg_at_a_time: bool = True

    def describe(self) -> str:
        parts = [f"{self.reps_per_leg} reps per leg x {self.sets} sets", f"lower over >= {self.min_down_s:g} s"]
        parts += [text for on, text in ((self.even_legs, "even legs"), (self.no_back_arch, "no back arch"),
                                        (self.one_leg_at_a_time, "one leg at a time")) if on]  # fmt: skip
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    title: str
    exercise: str
    how: str
    targets: Targets


@dataclass(frozen=True, slots=True)
class Rules:
    progress_after: int = 2
    step_back_after: int = 2


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    steps: tuple[Step, ...]
    alternatives: tuple[Step, ...]
    rules: Rules
    source: str
    """Where the plan came from (a path, or "legrep's default plan")."""


# --------------------------------------------------------------------------- reading a plan
def _toml_error(source: str, exc: tomllib.TOMLDecodeError) -> InputError:
    # Python 3.11's message ends "(at line L, column C)"; lineno/colno attributes came in 3.14
    text = str(exc)
    return InputError(f"{source}: a TOML plan expected, got {text[0].lower() + text[1:]}")


def _line_of(text: str, table: str, index: int) -> int | None:
    """Line (1-based) of the ``index``-th ``[[table]]`` header in the TOML text."""
    pattern = re.compile(r"^[ \t]*\[\[[ \t]*" + re.escape(table) + r"[ \t]*\]\]", re.M)
    for k, m in enumerate(pattern.finditer(text)):
        if k == index:
            return text.count("\n", 0, m.start()) + 1
    return None


def _value(where: str, key: str, value: Any, kind: type) -> Any:
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise InputError(f"{where}: {key} must be {kind.__name__}, got {value!r}")
    if kind in (int, float) and value < 0:
        raise InputError(f"{where}: {key} must be >= 0, got {value!r}")
    return value


def _targets(where: str, table: Mapping[str, Any], base: Targets) -> Targets:
    values = {name: getattr(base, name) for name in _TARGET_TYPES}
    for key, kind in _TARGET_TYPES.items():
        if key in table:
            values[key] = _value(where, key, table[key], kind)
    return Targets(**values)


def _step(where: str, table: Any, base: Targets) -> Step:
    if not isinstance(table, dict):
        raise InputError(f"{where}: a table expected, got {table!r}")
    unknown = sorted(set(table) - set(_STEP_TEXT) - set(_TARGET_TYPES))
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r}; known: {', '.join((*_STEP_TEXT, *_TARGET_TYPES))}")
    for key in ("id", "title", "exercise"):
        if key not in table:
            raise InputError(f"{where}: {key} expected, got none")
    text = {key: _value(where, key, table.get(key, ""), str) for key in _STEP_TEXT}
    if text["exercise"] not in EXERCISES or text["exercise"] == "unknown":
        known = ", ".join(e for e in EXERCISES if e != "unknown")
        raise InputError(f"{where}: exercise must be one of {known}, got {text['exercise']!r}")
    return Step(text["id"], text["title"], text["exercise"], text["how"], _targets(where, table, base))


def parse_plan(text: str, source: str = "<plan>") -> Plan:
    """Parse a plan's TOML text.

    Raises
    ------
    InputError
        One line naming ``source`` and the line (malformed TOML, or a step's bad value).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(source, exc) from None
    unknown = sorted(set(data) - {"name", "rules", "defaults", "step", "alternative"})
    if unknown:
        raise InputError(f"{source}: unknown table or key {unknown[0]!r}; known: name, rules, defaults, step, alternative")
    rules_table = data.get("rules", {})
    if not isinstance(rules_table, dict) or set(rules_table) - {"progress_after", "step_back_after"}:
        raise InputError(f"{source}: [rules] takes progress_after and step_back_after, got {rules_table!r}")
    rules = Rules(**{k: _value(f"{source}: [rules]", k, v, int) for k, v in rules_table.items()})
    if rules.progress_after < 1 or rules.step_back_after < 1:
        raise InputError(f"{source}: [rules] counts must be >= 1, got {rules}")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict) or set(defaults) - set(_TARGET_TYPES):
        raise InputError(f"{source}: [defaults] takes {', '.join(_TARGET_TYPES)}, got {defaults!r}")
    base = _targets(f"{source}: [defaults]", defaults, Targets())
    tables: dict[str, list[Step]] = {"step": [], "alternative": []}
    for kind in tables:
        entries = data.get(kind, [])
        if not isinstance(entries, list):
            raise InputError(f"{source}: [[{kind}]] tables expected, got {kind} = {entries!r}")
        for i, table in enumerate(entries):
            line = _line_of(text, kind, i)
            where = f"{source}: {kind} {i + 1}" + (f" (line {line})" if line else "")
            tables[kind].append(_step(where, table, base))
    if not tables["step"]:
        raise InputError(f"{source}: at least one [[step]] expected, got none")
    ids = [s.id for s in (*tables["step"], *tables["alternative"])]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup is not None:
        raise InputError(f"{source}: step ids must differ, got {dup!r} twice")
    name = _value(source, "name", data.get("name", "plan"), str)
    return Plan(name, tuple(tables["step"]), tuple(tables["alternative"]), rules, source)


def default_plan_text() -> str:
    return resources.files("legrep").joinpath(DEFAULT_PLAN).read_text(encoding="utf-8")


def load_plan(path: str | Path | None = None) -> Plan:
    """The plan in ``path`` (a trainer's TOML), or legrep's default plan when None."""
    if path is None:
        return parse_plan(default_plan_text(), "legrep's default plan")
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{p}: a plan TOML file expected, got no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p}: a plan TOML file expected, got a directory") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: a UTF-8 TOML plan expected, got undecodable byte at offset {exc.start}") from None
    return parse_plan(text, str(p))


# --------------------------------------------------------------------------- sessions
@dataclass(frozen=True, slots=True)
class SetFacts:
    """What the plan needs of one set."""

    exercise: str
    reps: Mapping[str, int]
    """Reps per analysed leg name."""
    uneven: bool
    down_s: tuple[float, ...]
    flags: tuple[str, ...]
    """Every flag of every rep of the set (repeated)."""


@dataclass(frozen=True, slots=True)
class SessionFacts:
    label: str
    started_at: str
    sets: tuple[SetFacts, ...]


def facts_of(result: SessionResult, label: str = "this session", started_at: str = "") -> SessionFacts:
    """The plan's view of one analysed session."""
    sets = []
    by_set: dict[int, list[Rep]] = {}  # (one pass, not a scan of every rep for each set)
    for r in result.reps:
        by_set.setdefault(r.set, []).append(r)
    for s in result.sets:
        reps = by_set.get(s.set, [])
        counts = {leg.value: (s.left_reps if leg is Leg.LEFT else s.right_reps) for leg in result.legs}
        sets.append(SetFacts(s.exercise, counts, s.uneven, tuple(r.down_s for r in reps),
                             tuple(f for r in reps for f in r.flags)))  # fmt: skip
    return SessionFacts(label, started_at, tuple(sets))


def load_history(db: str | Path) -> list[SessionFacts]:
    """Every session of a history database, oldest first (a missing file: none)."""
    path = Path(db)
    if not path.exists():
        return []
    from .history import open_history  # migrates an older history forward, refuses a newer one

    with closing(open_history(path)) as conn:
        try:
            return _read_history(conn)
        except sqlite3.Error as exc:
            raise InputError(f"{path}: a legrep history expected, got {exc}") from None


def _read_history(conn: sqlite3.Connection) -> list[SessionFacts]:
    sessions = conn.execute("SELECT id, started_at, legs FROM sessions ORDER BY started_at, id").fetchall()
    sets: dict[int, list[tuple[int, int, int, int, str]]] = {}
    for sid, set_no, lr, rr, uneven, exercise in conn.execute(
        "SELECT session_id, set_no, left_reps, right_reps, uneven, exercise FROM sets ORDER BY session_id, set_no"
    ):
        sets.setdefault(sid, []).append((set_no, lr, rr, uneven, exercise))
    reps: dict[tuple[int, int], list[tuple[float, str]]] = {}
    for sid, set_no, down_s, flags in conn.execute("SELECT session_id, set_no, down_s, flags FROM reps"):
        reps.setdefault((sid, set_no), []).append((float(down_s), str(flags)))
    out = []
    for sid, started_at, legs in sessions:
        names = [leg for leg in str(legs).split(",") if leg]
        facts = []
        for set_no, lr, rr, uneven, exercise in sets.get(sid, []):
            rows = reps.get((sid, set_no), [])
            counts = {leg: (lr if leg == "left" else rr) for leg in names}
            facts.append(SetFacts(str(exercise), counts, bool(uneven), tuple(d for d, _ in rows),
                                  tuple(f for _, fl in rows for f in fl.split(";") if f)))  # fmt: skip
        out.append(SessionFacts(f"session {sid}", str(started_at), tuple(facts)))
    return out


# --------------------------------------------------------------------------- judging
@dataclass(frozen=True, slots=True)
class Verdict:
    """How one session did against one step's targets."""

    at_step: bool
    """The session has a set of the step's exercise (else nothing else applies)."""
    met: bool = False
    missing: tuple[str, ...] = ()
    """The targets not met, in words."""
    trouble: tuple[str, ...] = ()
    """What counts toward stepping back: "back arched", "legs uneven"."""


def judge(step: Step, session: SessionFacts) -> Verdict:
    """Judge one session against ``step``'s targets (only the sets of the step's exercise count)."""
    sets = [s for s in session.sets if s.exercise == step.exercise]
    if not sets:
        return Verdict(False)
    t = step.targets
    missing = []
    full = sum(1 for s in sets if s.reps and min(s.reps.values()) >= t.reps_per_leg)
    if full < t.sets:
        missing.append(f"{t.sets} sets of {t.reps_per_leg} reps per leg (got {full})")
    quick = sum(1 for d in (d for s in sets for d in s.down_s) if d < t.min_down_s)
    if quick:
        missing.append(f"lowering over >= {t.min_down_s:g} s ({quick} rep{'s' if quick > 1 else ''} quicker)")
    uneven = sum(s.uneven for s in sets)
    if t.even_legs and uneven:
        missing.append(f"even legs ({uneven} uneven set{'s' if uneven > 1 else ''})")
    arched = sum(s.flags.count("back_arch") for s in sets)
    if t.no_back_arch and arched:
        missing.append(f"no back arch ({arched} rep{'s' if arched > 1 else ''} arched)")
    both = sum(s.flags.count("both_legs") for s in sets)
    if t.one_leg_at_a_time and both:
        missing.append(f"one leg at a time ({both} reps with both legs)")
    trouble = tuple(x for x, on in (("back arched", arched > 0), ("legs uneven", uneven > 0)) if on)
    return Verdict(True, not missing, tuple(missing), trouble)


@dataclass(frozen=True, slots=True)
class Entry:
    """One session as the plan saw it."""

    session: SessionFacts
    step: int
    """Index of the step the person was at (in ``plan.steps``)."""
    verdict: Verdict
    move: str = ""
    """"progress", "step back" or "" (stay, or not at the step)."""
    alternative: str = ""
    """Title of the alternative the session did, if any (with its verdict in ``alt_verdict``)."""
    alt_verdict: Verdict | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """Where the person is and what to do next time."""

    plan: Plan
    step: int
    """Index of the current step."""
    met_in_a_row: int
    trouble_in_a_row: int
    entries: tuple[Entry, ...] = field(default=())

    @property
    def current(self) -> Step:
        return self.plan.steps[self.step]

    def next_time(self) -> str:
        """The advice: ``next time: both knees bent at 45°`` (and why)."""
        step = self.current
        last = next((e for e in reversed(self.entries) if e.verdict.at_step or e.move), None)
        n = self.step + 1
        rules = self.plan.rules
        if last is not None and last.move == "progress":
            return f"next time: {step.title} (step {n}: {rules.progress_after} sessions in a row met every target at step {n - 1})"
        if last is not None and last.move == "step back":
            why = " and ".join(last.verdict.trouble) or "trouble"
            return f"next time: back to {step.title} (step {n}: {why} in {rules.step_back_after} sessions in a row)"
        if last is None:
            return f"next time: {step.title} (step {n}: {step.targets.describe()})"
        if last.verdict.met:
            return f"next time: {step.title} again ({self.met_in_a_row} of {rules.progress_after} sessions in a row met every target)"
        return f"next time: {step.title} again (missing: {'; '.join(last.verdict.missing)})"


def advise(plan: Plan, sessions: Sequence[SessionFacts]) -> Progress:
    """Walk ``sessions`` (oldest first) through the plan's rules from its first step."""
    step = 0
    met_row = trouble_row = 0
    entries = []
    last = len(plan.steps) - 1
    for session in sessions:
        at = step
        verdict = judge(plan.steps[step], session)
        move = ""
        if verdict.at_step:
            met_row = met_row + 1 if verdict.met else 0
            trouble_row = trouble_row + 1 if verdict.trouble else 0
            if trouble_row >= plan.rules.step_back_after and step > 0:
                step, move = step - 1, "step back"
            elif met_row >= plan.rules.progress_after and step < last:
                step, move = step + 1, "progress"
            if move:
                met_row = trouble_row = 0
        alt = next((a for a in plan.alternatives if any(s.exercise == a.exercise for s in session.sets)), None)
        entries.append(Entry(session, at, verdict, move, alt.title if alt else "", judge(alt, session) if alt else None))
    return Progress(plan, step, met_row, trouble_row, tuple(entries))


# --------------------------------------------------------------------------- text
def format_plan(progress: Progress) -> str:
    """What ``legrep plan`` prints: the steps, the sessions judged, the advice."""
    plan = progress.plan
    r = plan.rules
    out = [f"{plan.name}  ({plan.source})",
           f"rules: progress after {r.progress_after} sessions in a row that met every target at a step; "
           f"step back after {r.step_back_after} sessions in a row with a back arch or uneven legs", ""]  # fmt: skip
    for i, s in enumerate(plan.steps):
        here = "  <- you are here" if i == progress.step else ""
        out.append(f"  {i + 1}. {s.title} [{s.exercise}]{here}")
        out.append(f"     targets: {s.targets.describe()}")
        if s.how:
            out.append(f"     {s.how}")
    if plan.alternatives:
        out.append("  alternatives (spare the hip flexors):")
        for a in plan.alternatives:
            out.append(f"   - {a.title} [{a.exercise}]: {a.targets.describe()}")
    out.append("")
    if not progress.entries:
        out.append("no sessions in the history yet")
    for e in progress.entries:
        when = e.session.started_at[:16].replace("T", " ") or e.session.label
        if e.verdict.at_step:
            state = "met every target" if e.verdict.met else "missing: " + "; ".join(e.verdict.missing)
            text = f"step {e.step + 1}: {state}"
        elif e.alternative and e.alt_verdict is not None:
            state = "met every target" if e.alt_verdict.met else "missing: " + "; ".join(e.alt_verdict.missing)
            text = f"alternative {e.alternative}: {state}"
        else:
            done = sorted({s.exercise for s in e.session.sets}) or ["no sets"]
            text = f"not step {e.step + 1} ({', '.join(done)}): not counted"
        move = {"progress": "  -> progress", "step back": "  -> step back"}.get(e.move, "")
        out.append(f"  {when}  {e.session.label}: {text}{move}")
    out.append("")
    out.append(progress.next_time())
    return "\n".join(out) + "\n"
