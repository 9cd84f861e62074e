"""What a trainer beside the mat would say, and when: cues from rep and set events (no I/O).

:class:`Coach` takes the live loop's events in session time (``rep``, ``set_closed``) and returns
:class:`Cue` values: the count per leg ("left, three"), form cues ("lower slowly" on ``fast_down``,
"all the way up" on a partial rep), the routine ("switch legs" when a leg reaches its target,
"set done, ten and ten", "one more on the right" when a set closes uneven, "done" after the last
set; and the cue of each exercise flag in :data:`legrep.exercise.CUES`, "one leg at a time"). It also keeps the :class:`Progress` the view and the page show: reps per leg in the current
set, what remains against the targets, and the balance judged against the routine.

A sensor whose link stays down for ``LINK_LOST_CUE_S`` is announced ("right sensor lost"), and
"right sensor back" once it reconnects (:meth:`Coach.link`): a person lying on the mat would
otherwise hear that leg's counts stop without knowing why. These alerts are said in every voice
mode; a drop shorter than that (a BLE link that comes straight back) is not announced. So is a
sensor whose battery reports ``BATTERY_LOW_PCT`` or less ("right sensor battery low", once, again
only after it reported ``BATTERY_OK_PCT`` or more: charged or swapped), before it dies mid-set.

Balance against the routine: doing all the left reps, then all the right ones, is the normal
routine, so one leg ahead while its set is under way is not a warning. A set is judged when it
closes: if the legs differ (or a leg is short of ``reps_per_leg``), the warning names the leg that
needs more reps, and it stays up until the next set closes.

A rep is partial live when its range is below ``partial_frac`` x the median range of the same leg's
previous reps (at least two, the last ``PARTIAL_HISTORY``). This is the causal form of the set-level
``partial`` flag of :func:`legrep.reps.sets.group_sets`, which needs the whole set.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..exercise import CUES
from ..model import Leg, Rep, SetSummary
from ..settings import Settings

COUNT_DEADLINE_S = 0.5
"""A count or form cue not started within this many seconds of its event is dropped (stale)."""
ROUTINE_DEADLINE_S = 2.0
"""Routine announcements (switch legs, set done, uneven, done) may wait this long for the voice."""
LINK_LOST_CUE_S = 2.0
"""A sensor link down this long (session seconds) is announced: shorter drops come back unnoticed
(the sensor re-sends what was missed), a longer one means that leg's counts have stopped."""
BATTERY_LOW_PCT = 15
"""A sensor battery at or below this is announced (about 20 minutes left on a small cell)."""
BATTERY_OK_PCT = 25
"""A battery announced low is announced again only after it reported this much (no repeats as a
level near the threshold flickers between two readings)."""
PARTIAL_HISTORY = 10
"""Previous reps of the same leg whose median range judges a partial rep live."""
DEFAULT_TARGET_DEG = 90.0
"""Gauge target for straight-leg raises (hip flexion to vertical)."""

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """``3 -> 'three'``, ``42 -> 'forty-two'`` (0-999; larger numbers as digits)."""
    if n < 0 or n > 999:
        return str(n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens - 2] + ("" if ones == 0 else "-" + _ONES[ones])
    hundreds, rest = divmod(n, 100)
    return f"{_ONES[hundreds]} hundred" + ("" if rest == 0 else " and " + number_words(rest))


class VoiceMode(str, enum.Enum):
    """What the voice says: ``counts`` only, form and routine ``cues`` only, or ``all``."""

    COUNTS = "counts"
    CUES = "cues"
    ALL = "all"

    @classmethod
    def parse(cls, text: str) -> "VoiceMode":
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise InputError(f"--voice must be one of counts, cues, all; got {text!r}") from None


class CueKind(str, enum.Enum):
    COUNT = "count"
    FORM = "form"
    ROUTINE = "routine"
    ALERT = "alert"
    """A sensor lost or back: said in every voice mode."""


@dataclass(frozen=True, slots=True)
class Cue:
    """One utterance: said at ``time_s`` (session seconds of its event) or not at all.

    ``kind`` is the most important part it carries (ALERT > ROUTINE > FORM > COUNT); ``deadline_s`` is the
    latest session time speech may start. A plain count is :attr:`supersedable`: a newer count
    makes it pointless.
    """

    time_s: float
    text: str
    kind: CueKind
    deadline_s: float
    leg: Leg | None = None

    @property
    def supersedable(self) -> bool:
        return self.kind is CueKind.COUNT


@dataclass(frozen=True, slots=True)
class Targets:
    """The routine: reps per leg and sets (None: open-ended), and the gauge's target angle."""

    reps_per_leg: int | None = None
    sets: int | None = None
    target_deg: float = DEFAULT_TARGET_DEG

    def __post_init__(self) -> None:
        if self.reps_per_leg is not None and self.reps_per_leg < 1:
            raise InputError(f"--reps-per-leg must be >= 1, got {self.reps_per_leg}")
        if self.sets is not None and self.sets < 1:
            raise InputError(f"--sets must be >= 1, got {self.sets}")
        if not (np.isfinite(self.target_deg) and 0.0 < self.target_deg <= 180.0):
            raise InputError(f"--target-deg must be in (0, 180], got {self.target_deg}")


@dataclass(frozen=True, slots=True)
class LegProgress:
    leg: Leg
    reps: int
    """Reps of this leg in the current (open) set."""
    remaining: int | None
    """Reps left to the target in this set (None without ``reps_per_leg``)."""


@dataclass(frozen=True, slots=True)
class Progress:
    """What the view and page show about the routine."""

    set_no: int
    """The set under way (1-based; after the last planned set, the number of sets done)."""
    sets_total: int | None
    legs: tuple[LegProgress, ...]
    balance: str
    """One line: 'even', 'left first: 6 / 0 (normal)', 'switch legs'..."""
    warning: str
    """The last closed set's imbalance, naming the leg that needs more reps ('' if none)."""
    done: bool

    def of(self, leg: Leg) -> LegProgress | None:
        for p in self.legs:
            if p.leg is leg:
                return p
        return None


def judge_balance(counts: dict[Leg, int], reps_per_leg: int | None = None) -> str:
    """The balance line for reps per leg in the set under way, judged against the routine (one leg
    first, then the other, is normal: not a warning)."""
    if len(counts) < 2:
        return ""
    left, right = counts.get(Leg.LEFT, 0), counts.get(Leg.RIGHT, 0)
    if left == right:
        return "even" if left else "ready"
    first = Leg.LEFT if left > right else Leg.RIGHT
    if reps_per_leg is not None and max(left, right) >= reps_per_leg and min(left, right) == 0:
        return f"{first.value} done: switch legs"
    return f"{first.value} first: {left} / {right} (normal while the set is under way)"


def _more_on(n: int, leg: Leg) -> str:
    return f"{number_words(n)} more on the {leg.value}"


class Coach:
    """Events in, cues out (see module docstring).

    Parameters
    ----------
    legs : the legs of the session.
    targets : reps per leg, sets, gauge target.
    settings : analysis settings (``partial_frac`` for the live partial rep).
    mode : what to say (all cues are still produced for the progress; :meth:`rep` filters).
    """

    def __init__(
        self,
        legs: tuple[Leg, ...],
        targets: Targets | None = None,
        settings: Settings | None = None,
        mode: VoiceMode = VoiceMode.ALL,
    ) -> None:
        if not legs:
            raise InputError("expected at least one leg, got none")
        self.legs = tuple(legs)
        self.targets = targets or Targets()
        self.settings = settings or Settings()
        self.mode = mode
        self._count = {leg: 0 for leg in self.legs}
        self._roms: dict[Leg, deque[float]] = {leg: deque(maxlen=PARTIAL_HISTORY) for leg in self.legs}
        self._sets_done = 0
        self._set_announced = False  # "set done" said when the last leg reached its target
        self._warning = ""
        self._down_since: dict[Leg, float] = {}  # legs whose link is down: since when (session s)
        self._lost: set[Leg] = set()  # legs announced lost
        self._low_battery: set[Leg] = set()  # legs whose battery was announced low
        self.cues: list[Cue] = []
        """Every cue produced (after the mode filter), in order."""

    # --- events ---------------------------------------------------------------------------------

    def rep(self, rep: Rep, now_s: float) -> list[Cue]:
        """A rep closed (seen at session time ``now_s``): the count, form cues, the routine."""
        if rep.leg not in self._count:
            raise InputError(f"rep of the {rep.leg.value} leg; this session has {[lg.value for lg in self.legs]}")
        self._count[rep.leg] += 1
        n = self._count[rep.leg]
        parts: list[tuple[CueKind, str]] = [(CueKind.COUNT, f"{rep.leg.value}, {number_words(n)}")]
        if "fast_down" in rep.flags:
            parts.append((CueKind.FORM, "lower slowly"))
        if self._partial(rep):
            parts.append((CueKind.FORM, "all the way up"))
        parts.extend((CueKind.FORM, CUES[flag]) for flag in rep.flags if flag in CUES)  # e.g. both legs raised
        self._roms[rep.leg].append(rep.rom_deg)
        target = self.targets.reps_per_leg
        if target is not None and n == target:
            behind = [leg for leg in self.legs if self._count[leg] < target]
            if behind:
                parts.append((CueKind.ROUTINE, "switch legs"))
            elif not self._set_announced:
                self._set_announced = True
                parts.append((CueKind.ROUTINE, self._set_done_text(self._sets_done + 1)))
        return self._emit(parts, now_s, rep.leg)

    def set_closed(self, summary: SetSummary, now_s: float) -> list[Cue]:
        """A set closed: 'set done, ten and ten', what is missing, 'done' after the last set."""
        counts = {Leg.LEFT: summary.left_reps, Leg.RIGHT: summary.right_reps}
        self._sets_done += 1
        parts: list[tuple[CueKind, str]] = []
        needs = self._needs(counts)
        if not self._set_announced or needs:
            parts.append((CueKind.ROUTINE, self._set_done_text(self._sets_done, counts, last=False)))
        self._warning = ""
        if needs:
            self._warning = f"set {summary.set}: " + ", ".join(
                f"{leg.value} needs {k} more rep{'s' if k > 1 else ''}" for leg, k in needs
            )
            parts.extend((CueKind.ROUTINE, _more_on(k, leg)) for leg, k in needs)
        if parts and self._last_set(self._sets_done):
            parts.append((CueKind.ROUTINE, "done"))
        self._count = {leg: 0 for leg in self.legs}
        self._set_announced = False
        return self._emit(parts, now_s, None)

    def link(self, leg: Leg, connected: bool, now_s: float) -> list[Cue]:
        """A leg's sensor link as the live loop shows it at session time ``now_s`` (called with
        every snapshot): "<leg> sensor lost" once it has been down ``LINK_LOST_CUE_S``, "<leg>
        sensor back" when it reconnects after that."""
        if connected:
            self._down_since.pop(leg, None)
            if leg not in self._lost:
                return []
            self._lost.discard(leg)
            return self._emit([(CueKind.ALERT, f"{leg.value} sensor back")], now_s, leg)
        since = self._down_since.setdefault(leg, now_s)
        if leg in self._lost or now_s - since < LINK_LOST_CUE_S:
            return []
        self._lost.add(leg)
        return self._emit([(CueKind.ALERT, f"{leg.value} sensor lost")], now_s, leg)

    def battery(self, leg: Leg, pct: int | None, now_s: float) -> list[Cue]:
        """A leg's sensor battery level (None: not reported): "<leg> sensor battery low" once it is
        at or below ``BATTERY_LOW_PCT`` (module docstring)."""
        if pct is None:
            return []
        if pct >= BATTERY_OK_PCT:
            self._low_battery.discard(leg)
        if pct > BATTERY_LOW_PCT or leg in self._low_battery:
            return []
        self._low_battery.add(leg)
        return self._emit([(CueKind.ALERT, f"{leg.value} sensor battery low")], now_s, leg)

    # --- what the view and page show ----------------------------------------------------------------

    def progress(self) -> Progress:
        target = self.targets.reps_per_leg
        legs = tuple(
            LegProgress(leg, self._count[leg], None if target is None else max(0, target - self._count[leg]))
            for leg in self.legs
        )
        done = self.targets.sets is not None and self._sets_done >= self.targets.sets
        set_no = self._sets_done if done else self._sets_done + 1
        return Progress(set_no, self.targets.sets, legs, self._balance(), self._warning, done)

    # --- helpers ----------------------------------------------------------------------------------------

    def _balance(self) -> str:
        return judge_balance({leg: self._count[leg] for leg in self.legs}, self.targets.reps_per_leg)

    def _needs(self, counts: dict[Leg, int]) -> list[tuple[Leg, int]]:
        """``(leg, reps missing)`` after a set: short of the target, or of the other leg."""
        legs = [leg for leg in self.legs]
        target = self.targets.reps_per_leg
        if target is not None:
            return [(leg, target - counts[leg]) for leg in legs if counts[leg] < target]
        if len(legs) < 2:
            return []
        top = max(counts[leg] for leg in legs)
        return [(leg, top - counts[leg]) for leg in legs if counts[leg] < top]

    def _last_set(self, set_no: int) -> bool:
        return self.targets.sets is not None and set_no >= self.targets.sets

    def _set_done_text(self, set_no: int, counts: dict[Leg, int] | None = None, last: bool = True) -> str:
        counts = counts if counts is not None else dict(self._count)
        said = " and ".join(number_words(counts.get(leg, 0)) for leg in self.legs)
        text = f"set done, {said}"
        if last and self._last_set(set_no):
            text += ". done"
        return text

    def _partial(self, rep: Rep) -> bool:
        history = self._roms[rep.leg]
        if len(history) < 2:
            return False
        return rep.rom_deg < self.settings.partial_frac * float(np.median(history))

    def _emit(self, parts: list[tuple[CueKind, str]], now_s: float, leg: Leg | None) -> list[Cue]:
        keep = [
            (kind, text)
            for kind, text in parts
            if self.mode is VoiceMode.ALL or kind is CueKind.ALERT or (kind is CueKind.COUNT) == (self.mode is VoiceMode.COUNTS)
        ]
        if not keep:
            return []
        kinds = {kind for kind, _ in keep}
        kind = next(k for k in (CueKind.ALERT, CueKind.ROUTINE, CueKind.FORM, CueKind.COUNT) if k in kinds)
        deadline = now_s + (ROUTINE_DEADLINE_S if kind in (CueKind.ALERT, CueKind.ROUTINE) else COUNT_DEADLINE_S)
        cue = Cue(now_s, ". ".join(text for _, text in keep), kind, deadline, leg)
        self.cues.append(cue)
        return [cue]


@dataclass(frozen=True, slots=True)
class Spoken:
    """A cue as the voice said it: started at ``start_s``, for ``duration_s``."""

    cue: Cue
    start_s: float
    duration_s: float


class SpeechPolicy:
    """Which pending cue the voice says next (no I/O, times as arguments).

    Rules: a cue whose ``deadline_s`` has passed is dropped; a newer count drops an older pending
    count (a stale count is never said); otherwise first in, first out. So the queue never grows
    beyond the cues of the last ``ROUTINE_DEADLINE_S``.
    """

    def __init__(self) -> None:
        self.pending: deque[Cue] = deque()
        self.dropped: list[Cue] = []

    def push(self, cue: Cue) -> None:
        if cue.supersedable:
            for old in [c for c in self.pending if c.supersedable]:
                self.pending.remove(old)
                self.dropped.append(old)
        self.pending.append(cue)

    def next(self, now_s: float) -> Cue | None:
        """The cue to say at ``now_s`` (None: nothing fresh is pending)."""
        while self.pending:
            cue = self.pending.popleft()
            if now_s <= cue.deadline_s:
                return cue
            self.dropped.append(cue)
        return None

    def fresh(self, cue: Cue, now_s: float) -> bool:
        """Still worth starting at ``now_s`` (after a slow synthesis, say)?"""
        if now_s <= cue.deadline_s:
            return True
        self.dropped.append(cue)
        return False


def schedule_speech(cues: list[Cue], durations_s: list[float]) -> tuple[list[Spoken], list[Cue]]:
    """When one voice would say ``cues`` (session time), each lasting ``durations_s``.

    The offline twin of the live speaker: the same :class:`SpeechPolicy`, with the voice busy until
    the end of what it is saying. Returns ``(spoken, dropped)``.
    """
    if len(cues) != len(durations_s):
        raise InputError(f"expected one duration per cue ({len(cues)}), got {len(durations_s)}")
    policy = SpeechPolicy()
    duration = {id(c): d for c, d in zip(cues, durations_s)}
    ordered = sorted(cues, key=lambda c: c.time_s)
    spoken: list[Spoken] = []
    free_s = -np.inf  # the voice is busy until then
    i = 0
    while i < len(ordered) or policy.pending:
        # the voice is free at free_s; if nothing is pending it waits for the next cue
        now = free_s if policy.pending else max(free_s, ordered[i].time_s)
        while i < len(ordered) and ordered[i].time_s <= now:
            policy.push(ordered[i])
            i += 1
        cue = policy.next(now)
        if cue is not None:
            spoken.append(Spoken(cue, now, duration[id(cue)]))
            free_s = now + duration[id(cue)]
    return spoken, policy.dropped
