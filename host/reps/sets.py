"""Sets and form flags.

A set is a bout of reps bounded by rests of at least ``set_rest_s`` (both legs done back to
back belong to one set). Grouping is a pure function of the reps, so live, replay and
offline analysis agree by construction.

Flags (defaults in :class:`legrep.settings.Settings`):
``partial`` range below ``partial_frac`` × the median range of the same leg in the set;
``fast_down`` lowering (``down_s``) quicker than ``min_down_s``; ``fast_up`` raising quicker
than ``min_up_s`` (swinging the leg up); ``short_hold`` hold shorter than ``min_hold_s``
(when set); ``below_target`` range below ``target_rom_deg`` (when set).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..model import Leg, Rep, SetSummary
from .measure import RepMeasures
from ..settings import Settings


def rep_flags(rep: Rep | RepMeasures, s: Settings) -> tuple[str, ...]:
    """Flags judged from the rep alone (``partial`` needs the set; see :func:`group_sets`)."""
    flags = []
    if s.target_rom_deg > 0 and rep.rom_deg < s.target_rom_deg:
        flags.append("below_target")
    if rep.up_s < s.min_up_s:
        flags.append("fast_up")
    if rep.down_s < s.min_down_s:
        flags.append("fast_down")
    if s.min_hold_s > 0 and rep.hold_s < s.min_hold_s:
        flags.append("short_hold")
    return tuple(flags)


def _numbered(r: Rep, set_no: int, rep_no: int, flags: tuple[str, ...]) -> Rep:
    """``r`` with its set, rep number and flags (positional: ``dataclasses.replace`` is slow)."""
    return Rep(
        r.leg, r.start_s, r.peak_s, r.end_s, r.baseline_deg, r.peak_deg, r.rom_deg,
        r.up_s, r.hold_s, r.down_s, r.closed_s, flags, set_no, rep_no, r.pelvis_tilt_deg,
    )  # fmt: skip


def group_sets(
    reps: Iterable[Rep], legs: Sequence[Leg], s: Settings
) -> tuple[tuple[Rep, ...], tuple[SetSummary, ...], bool]:
    """Assign set and rep numbers, the ``partial`` flag, and per-set summaries.

    Returns ``(reps, sets, uneven)``: reps sorted by start time, numbered 1.. per leg within
    each set; ``uneven`` for the session (both legs present and total counts differ).
    """
    ordered = sorted(reps, key=lambda r: (r.start_s, r.leg.value))
    groups: list[list[Rep]] = []
    last_end = -np.inf
    for r in ordered:
        if not groups or r.start_s - last_end >= s.set_rest_s:
            groups.append([])
        groups[-1].append(r)
        last_end = max(last_end, r.end_s)
    two_legs = Leg.LEFT in legs and Leg.RIGHT in legs
    out_reps: list[Rep] = []
    sets: list[SetSummary] = []
    for set_no, group in enumerate(groups, start=1):
        counts = {leg: 0 for leg in Leg}
        medians = {
            leg: float(np.median([r.rom_deg for r in group if r.leg is leg]))
            for leg in Leg
            if sum(r.leg is leg for r in group) >= 2
        }
        for r in group:
            counts[r.leg] += 1
            flags = r.flags
            if r.leg in medians and r.rom_deg < s.partial_frac * medians[r.leg] and "partial" not in flags:
                flags = ("partial", *flags)
            out_reps.append(_numbered(r, set_no, counts[r.leg], flags))
        sets.append(
            SetSummary(
                set=set_no,
                start_s=min(r.start_s for r in group),
                end_s=max(r.end_s for r in group),
                left_reps=counts[Leg.LEFT],
                right_reps=counts[Leg.RIGHT],
                uneven=two_legs and counts[Leg.LEFT] != counts[Leg.RIGHT],
            )
        )
    totals = {leg: sum(1 for r in out_reps if r.leg is leg) for leg in Leg}
    uneven = two_legs and totals[Leg.LEFT] != totals[Leg.RIGHT]
    return tuple(out_reps), tuple(sets), uneven
