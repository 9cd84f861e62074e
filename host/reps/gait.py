"""Walking strides are no reps: the cross-leg check of each rep closed by one thigh.

Walking between sets swings each thigh 30-40 deg at about 1 Hz with no rest at the bottom,
which is what a set of fast touch-and-go reps looks like to one leg's rep machine. The rep
machine keeps strides out by their lows (each lies below the standing rest: no chain starts
there, host/reps/reference.py), but once something else started a chain (standing up from a
bird dog's kneeling pose reads like a raise) every stride after it was a rep: 12 strides
counted in a two-set session of 6 bird dogs a leg.

The other thigh tells them apart. In every exercise legrep counts, one leg works while the
other rests (single-leg raises, plank leg lifts, bird dogs) or both rise together (a double-leg
lift, flagged ``both_legs``). In walking the other thigh swings the opposite way all the time.
A rep of one leg is a stride when, over the rep (``start_s`` to ``end_s``, or its part from
``peak_s`` on if that lasts ``gait_tail_min_s``), the other thigh's hip angle moved at least
``gait_swing_min_deg`` and correlates with this leg's at ``gait_corr_max`` or below (strides:
-0.88 to -1.0 on the simulator's walking; a resting
other leg moves under 1 deg; no true rep of 4684 in the accuracy grid and 160 random
mixtures came within 0.2 of the limit with a swinging other leg).

A rep waits until the other leg's angles cover its end (or that leg's stream ended), so the
decision uses the same samples live and offline, in any chunking. With one thigh there is
nothing to compare: every rep passes.

**A link that went down.** While the other thigh's sensor is disconnected (a DISCONNECT event of
the recording, until its RECONNECT: :meth:`GaitFilter.link`), its angles stop, and a rep waiting
for them would wait until the sensor comes back, or the session ends: a person whose right
sensor's battery died would hear no more left reps. So while a thigh is down, a rep it does not
cover passes unjudged against it, at once. The decision rests on the events' place among the
records (each link event comes after every sample recorded before it, live and in a replay:
host/live_core.py feeds the events in order, host/replay_batch.py flushes its blocks at one), so
live capture and the replay of its recording give the same reps. An analysis of the samples
alone (a CSV export of them) knows no link events: there such a rep is judged against the other
thigh's samples re-sent after the reconnection, if there are any.

The check reads each thigh at ``GAIT_RATE_HZ`` (:class:`Thinning`: the first sample in each
1/25 s of the session clock, whatever the chunking): a stride lasts about a second, and a leg
analysed in a process of its own (host/offline.py) sends the parent only these samples when
nothing else there needs its angles (a sixth of them at 150 Hz, a quarter at 100).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence

import numpy as np

from ..buffers import TimedSamples
from ..model import FloatArray, Leg, Rep
from ..settings import Settings


GAIT_RATE_HZ = 25.0
"""Samples a second of each thigh's angle the check reads (module docstring)."""


class Thinning:
    """The first sample of each ``1 / GAIT_RATE_HZ`` bin of the time axis, carried across chunks
    (so any chunking keeps the same samples; thinning kept samples again keeps them all)."""

    def __init__(self) -> None:
        self._last_bin = -math.inf

    def __call__(self, time_s: FloatArray, angle_deg: FloatArray) -> tuple[FloatArray, FloatArray]:
        if not len(time_s):
            return time_s, angle_deg
        bins = np.floor(time_s * GAIT_RATE_HZ)
        keep = np.empty(len(bins), dtype=bool)
        keep[0] = bins[0] != self._last_bin
        np.not_equal(bins[1:], bins[:-1], out=keep[1:])
        self._last_bin = float(bins[-1])
        return time_s[keep], angle_deg[keep]


class GaitFilter:
    """Holds each thigh's reps until the other thigh's angles cover them; drops walking strides.

    ``angles(leg, time_s, angle_deg)`` takes the hip angles a leg released, ``submit(reps)`` the
    reps it closed, ``finish_leg(leg)`` marks the end of its stream; ``release(horizons)`` returns
    the reps judged (strides left out), each leg's in closing order.
    """

    def __init__(self, settings: Settings, legs: Sequence[Leg]) -> None:
        self.s = settings
        self.legs = tuple(legs)
        self._angles = {leg: TimedSamples() for leg in self.legs}
        self._covered_s: dict[Leg, float] = {leg: -math.inf for leg in self.legs}
        self._pending: dict[Leg, deque[Rep]] = {leg: deque() for leg in self.legs}
        self._thin = {leg: Thinning() for leg in self.legs}
        self._down: dict[Leg, float] = {}
        """Thighs whose link is down: their angles' coverage when it went down (:meth:`link`)."""
        self.n_unjudged = {leg: 0 for leg in self.legs}
        """Reps passed unjudged because the other thigh's link was down, per leg (diagnostics)."""
        self.n_strides = {leg: 0 for leg in self.legs}
        """Reps left out as walking strides, per leg (diagnostics)."""

    def angles(self, leg: Leg, time_s: FloatArray, angle_deg: FloatArray) -> None:
        """The angles ``leg`` released (all of them, or already thinned: :class:`Thinning`)."""
        if len(time_s):
            self._covered_s[leg] = max(self._covered_s[leg], float(time_s[-1]))
            self._angles[leg].append(*self._thin[leg](time_s, angle_deg))

    def finish_leg(self, leg: Leg) -> None:
        self._covered_s[leg] = math.inf
        self._down.pop(leg, None)  # (its every sample is in)

    def link(self, leg: Leg, up: bool) -> None:
        """``leg``'s sensor link went down (``up`` False) or came back (module docstring). While it
        is down, a rep its angles (as far as they reached when it went down) do not cover passes
        unjudged against it at the next :meth:`release`."""
        if up:
            self._down.pop(leg, None)
        elif leg in self._covered_s:
            self._down.setdefault(leg, self._covered_s[leg])

    def submit(self, reps: Sequence[Rep]) -> None:
        for r in reps:
            self._pending[r.leg].append(r)

    def pending_start_s(self) -> float:
        """Earliest start of a rep still waiting (``inf``: none)."""
        return min((q[0].start_s for q in self._pending.values() if q), default=math.inf)

    def release(self, horizons: Mapping[Leg, float]) -> list[Rep]:
        """The waiting reps the other legs' angles now cover, strides left out. ``horizons`` per
        leg: no rep that leg closes later starts before it (the samples kept reach back to it)."""
        out: list[Rep] = []
        for leg, queue in self._pending.items():
            others = [o for o in self.legs if o is not leg]
            while queue and all(self._covered_s[o] >= queue[0].end_s or o in self._down for o in others):
                r = queue.popleft()
                # (a thigh that is down: judged against only if what it sent before covers the rep)
                judges = [o for o in others if self._down.get(o, self._covered_s[o]) >= r.end_s]
                if any(self._stride(r, o) for o in judges):
                    self.n_strides[leg] += 1
                else:
                    self.n_unjudged[leg] += len(judges) < len(others)
                    out.append(r)
        self._trim(horizons)
        return out

    # ------------------------------------------------------------------
    def _stride(self, r: Rep, other: Leg) -> bool:
        """Whether ``other`` swung the opposite way over ``r``, or over its part after the peak
        if that lasts ``gait_tail_min_s`` (module docstring)."""
        if self._swung(r.leg, other, r.start_s, r.end_s):
            return True
        return r.end_s - r.peak_s >= self.s.gait_tail_min_s and self._swung(r.leg, other, r.peak_s, r.end_s)

    def _swung(self, leg: Leg, other: Leg, t0: float, t1: float) -> bool:
        """Whether ``other``'s angle swung at least ``gait_swing_min_deg`` over ``t0``-``t1``,
        against ``leg``'s (correlation at most ``gait_corr_max``)."""
        ta, aa = self._angles[leg].window(t0, t1)
        tb, ab = self._angles[other].window(t0, t1)
        if len(ta) < 3 or len(tb) < 3 or float(np.ptp(ab)) < self.s.gait_swing_min_deg:
            return False
        b = np.interp(ta, tb, ab)  # the other leg at this leg's sample times
        da, db = aa - aa.mean(), b - b.mean()
        den = math.sqrt(float(da @ da) * float(db @ db))
        return den > 0.0 and float(da @ db) / den <= self.s.gait_corr_max

    def _trim(self, horizons: Mapping[Leg, float]) -> None:
        """Drop samples no waiting or future rep can cover: before the earliest waiting start and
        every leg's horizon."""
        keep = min([self.pending_start_s(), *horizons.values()])
        if not math.isfinite(keep):
            return
        for samples in self._angles.values():
            samples.trim(keep)
