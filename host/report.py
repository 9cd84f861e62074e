"""Session report: a summary in words and three figures, written as one HTML file.

The summary (:func:`summarize_session`) is pure and I/O-free. The figures
(:func:`build_figures`) use matplotlib's object API with the Agg canvas, imported
lazily so the rest of legrep runs without matplotlib. :func:`render_html` makes a
self-contained page (CSS inline, figures inline as base64 PNG, no network) that
reads on a phone; :func:`write_report` writes it, and optionally the PNGs.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import LegrepError
from .model import FloatArray, Leg, Rep, SessionResult, SetSummary
from .settings import Settings

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

__all__ = [
    "TraceEnvelope",
    "FIGURE_NAMES",
    "LegStats",
    "MissingDependencyError",
    "ReportSummary",
    "build_figures",
    "figure_png",
    "render_html",
    "summarize_session",
    "uneven_message",
    "write_report",
]

FIGURE_NAMES: tuple[str, ...] = ("angle", "range", "tempo")
"""Figure keys, in page order: hip angle over time, peak/range per rep, tempo per rep."""

_LEG_COLOUR = {Leg.LEFT: "#1f6fb4", Leg.RIGHT: "#d9771a"}
_PHASE_COLOUR = {"up": "#4c9f70", "hold": "#b8c4cc", "down": "#7b5ea7"}
_FLAG_COLOUR = "#c0392b"
_NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
_MAX_PLOT_POINTS = 2000
TRACE_POINTS = 4000
"""Points of each leg's angle trace ``legrep report`` keeps as it streams (lowest and highest of
each time bin: two per pixel column at the figure's width of about 1000 px, and twice that)."""
"""Angle traces longer than this are reduced to a min/max envelope for drawing (two points per pixel
column of the 10-inch, 100 dpi figure)."""
DETAIL_MAX_REPS = 80
"""Up to this many reps (both legs) the figures show every rep; above it (long sessions) they show
sets: shaded set spans, flagged reps as markers, and per-set medians with interquartile bands."""


class MissingDependencyError(LegrepError, ImportError):
    """An optional dependency a command needs is not installed."""


@dataclass(frozen=True, slots=True)
class LegStats:
    """Averages over every rep of one leg (NaN when the leg has no reps)."""

    leg: Leg
    reps: int
    mean_peak_deg: float
    mean_rom_deg: float
    mean_up_s: float
    mean_hold_s: float
    mean_down_s: float
    flags: tuple[tuple[str, int], ...]
    """``(flag, count)`` sorted by flag name."""


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """What the report says in words, computed from a :class:`SessionResult`."""

    legs: tuple[Leg, ...]
    sets: tuple[SetSummary, ...]
    leg_stats: tuple[LegStats, ...]
    differences: tuple[tuple[str, float, str], ...]
    """``(measure, left minus right, unit)``; empty unless both legs were measured."""
    uneven_messages: tuple[str, ...]
    """One sentence per uneven set, e.g. "Set 2: 10 left, 9 right — one more rep on the right needed"."""
    headline: str

    def stats_of(self, leg: Leg) -> LegStats:
        for s in self.leg_stats:
            if s.leg is leg:
                return s
        raise KeyError(leg)


# --------------------------------------------------------------------------- summary


def _count_words(n: int) -> str:
    return _NUMBER_WORDS[n] if 0 <= n < len(_NUMBER_WORDS) else str(n)


def uneven_message(summary: SetSummary) -> str | None:
    """Say in words what makes a set uneven, or return None for an even set.

    >>> uneven_message(SetSummary(2, 0.0, 60.0, 10, 9, True))
    'Set 2: 10 left, 9 right — one more rep on the right needed'
    """
    diff = summary.left_reps - summary.right_reps
    if diff == 0:
        return None
    side = "right" if diff > 0 else "left"
    n = abs(diff)
    noun = "rep" if n == 1 else "reps"
    return (
        f"Set {summary.set}: {summary.left_reps} left, {summary.right_reps} right"
        f" — {_count_words(n)} more {noun} on the {side} needed"
    )


def _mean(values: Sequence[float]) -> float:
    return float(statistics.fmean(values)) if values else math.nan


def _leg_stats(leg: Leg, reps: Sequence[Rep]) -> LegStats:
    counts: dict[str, int] = {}
    for r in reps:
        for flag in r.flags:
            counts[flag] = counts.get(flag, 0) + 1
    return LegStats(
        leg=leg,
        reps=len(reps),
        mean_peak_deg=_mean([r.peak_deg for r in reps]),
        mean_rom_deg=_mean([r.rom_deg for r in reps]),
        mean_up_s=_mean([r.up_s for r in reps]),
        mean_hold_s=_mean([r.hold_s for r in reps]),
        mean_down_s=_mean([r.down_s for r in reps]),
        flags=tuple(sorted(counts.items())),
    )


_FLAG_WORDS = {
    "fast_down": "lowered too fast",
    "fast_up": "raised too fast",
    "partial": "partial (short of the set's usual range)",
    "short_hold": "held too briefly at the top",
    "below_target": "short of the target range",
    "back_arch": "with the back arched (pelvic tilt over max_pelvic_tilt_deg)",
}


def form_phrase(reps: Sequence[Rep], most: int = 2) -> str:
    """The form in words for a headline: the ``most`` commonest flags, or that none was raised.

    >>> form_phrase([Rep(Leg.LEFT, 0, 1, 2, 0, 80, 80, 1, 0, 0.5, 2, ("fast_down",))] * 3)
    'all 3 reps lowered too fast'
    """
    n = len(reps)
    if n == 0:
        return ""
    counts: dict[str, int] = {}
    for r in reps:
        for flag in r.flags:
            counts[flag] = counts.get(flag, 0) + 1
    if not counts:
        return "no form flags"
    said = []
    for flag, k in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:most]:
        who = f"all {n} reps" if k == n else f"{k} of {n} reps"
        said.append(f"{who} {_FLAG_WORDS.get(flag, flag.replace('_', ' '))}")
    return ", ".join(said)


def summarize_session(result: SessionResult) -> ReportSummary:
    """Per-leg averages, left/right differences and the uneven sets in words.

    Parameters
    ----------
    result : the analysed session.

    Returns
    -------
    ReportSummary
    """
    legs = tuple(result.legs)
    stats = tuple(_leg_stats(leg, result.reps_of(leg)) for leg in legs)
    differences: list[tuple[str, float, str]] = []
    if Leg.LEFT in legs and Leg.RIGHT in legs:
        left = next(s for s in stats if s.leg is Leg.LEFT)
        right = next(s for s in stats if s.leg is Leg.RIGHT)
        differences = [
            ("reps", float(left.reps - right.reps), ""),
            ("mean peak", left.mean_peak_deg - right.mean_peak_deg, "°"),
            ("mean range", left.mean_rom_deg - right.mean_rom_deg, "°"),
            ("mean up", left.mean_up_s - right.mean_up_s, "s"),
            ("mean hold", left.mean_hold_s - right.mean_hold_s, "s"),
            ("mean down", left.mean_down_s - right.mean_down_s, "s"),
        ]
    messages = tuple(m for m in (uneven_message(s) for s in result.sets if len(legs) == 2) if m)
    n_sets = len(result.sets)
    parts = [f"{s.reps} {s.leg.value}" for s in stats]
    headline = f"{', '.join(parts) or 'no'} reps in {n_sets} set{'s' if n_sets != 1 else ''}"
    if len(legs) == 2:
        headline += "; uneven" if messages else "; even on both legs"
    form = form_phrase(result.reps)
    if form:
        headline += "; " + form
    return ReportSummary(legs, tuple(result.sets), stats, tuple(differences), messages, headline)


# --------------------------------------------------------------------------- figures


def _matplotlib() -> tuple[Any, Any]:
    """Import matplotlib's Figure and Agg canvas (lazily; no pyplot, no global state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError(
            "the report needs matplotlib, which is not installed; install it with: pip install 'legrep[report]'"
        ) from None
    return Figure, FigureCanvasAgg


def _envelope(time_s: FloatArray, angle_deg: FloatArray, max_points: int) -> tuple[FloatArray, FloatArray]:
    """Reduce a long trace to the minimum and maximum of each bucket (in time order), so every peak
    and trough survives drawing; ``max_points // 2`` buckets of equal sample count (one per pixel
    column at the report's width). Vectorised: 8 h at 100 Hz take a few milliseconds."""
    n = time_s.shape[0]
    if n <= max_points:
        return time_s, angle_deg
    buckets = max(1, max_points // 2)
    size = -(-n // buckets)  # ceil: every bucket but the last holds `size` samples
    full = n // size
    t_parts: list[FloatArray] = []
    a_parts: list[FloatArray] = []
    for lo, count in ((0, full), (full * size, 1 if n % size else 0)):
        if count == 0:
            continue
        seg = angle_deg[lo : lo + count * size].reshape(count, -1)
        base = lo + np.arange(count) * seg.shape[1]
        i_min, i_max = seg.argmin(axis=1), seg.argmax(axis=1)
        first, second = np.minimum(i_min, i_max) + base, np.maximum(i_min, i_max) + base
        order = np.column_stack([first, second]).ravel()
        t_parts.append(time_s[order])
        a_parts.append(angle_deg[order])
    return np.concatenate(t_parts), np.concatenate(a_parts)


class TraceEnvelope:
    """A long angle trace reduced as it streams: the lowest and the highest sample of each time bin,
    at most ``max_points`` points in all (memory flat however long the session).

    Bins start ``start_width_s`` wide; when the trace outgrows ``max_points // 2`` bins, the width
    doubles and neighbouring bins merge (their extremes are kept), so every peak and trough of the
    trace survives, as :func:`_envelope` keeps them of a whole trace. Feed it chunks in time order
    (``SessionAnalyzer.on_angle``); :meth:`trace` gives ``(time_s, angle_deg)`` in time order.
    """

    def __init__(self, max_points: int = 2000, start_width_s: float = 0.5) -> None:
        if max_points < 4 or not start_width_s > 0:
            raise ValueError(f"need max_points >= 4 and start_width_s > 0, got {max_points}, {start_width_s}")
        self.bins = max(2, max_points // 4 * 2)  # (even: bins merge in pairs)
        self.width_s = float(start_width_s)
        self._t0: float | None = None
        nan = np.full(self.bins, np.nan)
        self._lo_t, self._lo_a, self._hi_t, self._hi_a = nan.copy(), nan.copy(), nan.copy(), nan.copy()

    def update(self, time_s: FloatArray, angle_deg: FloatArray) -> None:
        t = np.asarray(time_s, dtype=np.float64)
        a = np.asarray(angle_deg, dtype=np.float64)
        ok = np.isfinite(a) & np.isfinite(t)
        if not ok.all():
            t, a = t[ok], a[ok]
        if not len(t):
            return
        if self._t0 is None:
            self._t0 = float(t[0])
        while (float(t[-1]) - self._t0) / self.width_s >= self.bins:
            self._merge()
        index = np.clip(((t - self._t0) / self.width_s).astype(np.int64), 0, self.bins - 1)
        cuts = np.flatnonzero(np.diff(index)) + 1
        starts = np.concatenate([[0], cuts])
        mins = np.minimum.reduceat(a, starts)
        maxs = np.maximum.reduceat(a, starts)
        ends = np.concatenate([cuts, [len(a)]])
        for k, (lo, hi) in enumerate(zip(starts.tolist(), ends.tolist())):  # (a few bins per chunk)
            b = int(index[lo])
            seg = a[lo:hi]
            if not self._lo_a[b] <= mins[k]:  # (NaN: an empty bin)
                j = lo + int(np.argmin(seg))
                self._lo_t[b], self._lo_a[b] = t[j], a[j]
            if not self._hi_a[b] >= maxs[k]:
                j = lo + int(np.argmax(seg))
                self._hi_t[b], self._hi_a[b] = t[j], a[j]

    def _merge(self) -> None:
        """Double the bin width: bins 2k and 2k + 1 become bin k."""
        half = self.bins // 2
        for times, values, pick in ((self._lo_t, self._lo_a, np.fmin), (self._hi_t, self._hi_a, np.fmax)):
            ta, tb = times[0 : 2 * half : 2], times[1 : 2 * half : 2]
            va, vb = values[0 : 2 * half : 2], values[1 : 2 * half : 2]
            best = pick(va, vb)
            take_b = ~(va == best)  # (va NaN or vb better)
            new_t, new_v = np.where(take_b, tb, ta), best
            times[:half], values[:half] = new_t, new_v
            times[half:], values[half:] = np.nan, np.nan
        self.width_s *= 2.0

    def trace(self) -> tuple[FloatArray, FloatArray]:
        """``(time_s, angle_deg)``: each bin's lowest and highest sample, in time order."""
        have = np.isfinite(self._lo_a)
        t = np.column_stack([self._lo_t[have], self._hi_t[have]])
        a = np.column_stack([self._lo_a[have], self._hi_a[have]])
        order = np.argsort(t, axis=1, kind="stable")
        t = np.take_along_axis(t, order, axis=1).ravel()
        a = np.take_along_axis(a, order, axis=1).ravel()
        return t, a


def _set_boundaries(sets: Sequence[SetSummary]) -> list[float]:
    """Times halfway between consecutive sets."""
    ordered = sorted(sets, key=lambda s: s.start_s)
    return [(a.end_s + b.start_s) / 2.0 for a, b in zip(ordered, ordered[1:])]


def _rep_key(rep: Rep) -> tuple[int, int]:
    return (rep.set, rep.rep)


def _rep_label(key: tuple[int, int], n_sets: int) -> str:
    return f"S{key[0]}·{key[1]}" if n_sets > 1 else str(key[1])


def _draw_angle(fig: "Figure", result: SessionResult, settings: Settings) -> None:
    legs = tuple(result.legs) or (Leg.LEFT,)
    axes = fig.subplots(len(legs), 1, sharex=True, squeeze=False)[:, 0]
    boundaries = _set_boundaries(result.sets)
    for ax, leg in zip(axes, legs):
        colour = _LEG_COLOUR[leg]
        reps = result.reps_of(leg)
        trace = result.traces.get(leg)
        if trace is not None and len(trace[0]) > 0:
            t, a = _envelope(np.asarray(trace[0], float), np.asarray(trace[1], float), _MAX_PLOT_POINTS)
            ax.plot(t, a, color=colour, linewidth=1.0, label=f"{leg.value} hip angle")
        else:
            ax.text(0.5, 0.5, "no angle trace stored", transform=ax.transAxes, ha="center", color="0.5")
        top = max([r.peak_deg for r in reps], default=0.0)
        if len(result.reps) > DETAIL_MAX_REPS:
            _draw_sets_on_angle(ax, leg, result, top)
            continue
        for r in reps:
            span = ax.axvspan(r.start_s, r.end_s, color=colour, alpha=0.18, linewidth=0)
            span.set_gid(f"rep:{leg.value}:{r.set}:{r.rep}")
            ax.annotate(
                str(r.rep),
                (r.peak_s, r.peak_deg),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize="small",
                color="0.2",
            )
            if r.flags:
                marker = ax.plot([r.peak_s], [r.peak_deg + 0.15 * max(top, 10.0)], "v", color=_FLAG_COLOUR, markersize=6)[0]
                marker.set_gid(f"flag:{leg.value}:{r.set}:{r.rep}:{','.join(r.flags)}")
        for b in boundaries:
            ax.axvline(b, color="0.3", linestyle="--", linewidth=1.0)
        for s in result.sets:
            ax.text(
                (s.start_s + s.end_s) / 2.0,
                1.0,
                f"set {s.set}",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="bottom",
                fontsize="medium",
                color="0.3",
            )
        ax.set_ylabel(f"{leg.value} hip angle (°)")
        ax.set_ylim(bottom=min(-5.0, ax.get_ylim()[0]), top=max(top * 1.25, 20.0))
        ax.grid(True, alpha=0.3)
    detail = len(result.reps) <= DETAIL_MAX_REPS
    handles = [
        _patch(_LEG_COLOUR[legs[0]], 0.18, "rep (numbered)" if detail else "set"),
        _line2d("v", _FLAG_COLOUR, "flagged rep"),
    ]
    if detail:
        handles.append(_line2d("--", "0.3", "set boundary"))
    _legend(fig, handles, _legend_cols(fig, len(handles)))
    span_s = max((float(tr[0][-1]) for tr in result.traces.values() if len(tr[0])), default=0.0)
    if span_s > 3600.0:  # long sessions: hours and minutes read better than thousands of seconds
        from matplotlib.ticker import FuncFormatter, MultipleLocator

        axes[-1].xaxis.set_major_locator(MultipleLocator(3600.0 if span_s > 4 * 3600 else 900.0))
        axes[-1].xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{int(x // 3600)}:{int(x % 3600 // 60):02d}"))
        axes[-1].set_xlabel("time (h:mm)")
    else:
        axes[-1].set_xlabel("time (s)")
    fig.suptitle("Hip angle over time")


def _draw_sets_on_angle(ax: Any, leg: Leg, result: SessionResult, top: float) -> None:
    """Long sessions: one shaded span per set, every flagged rep as one marker series, y limits."""
    reps = result.reps_of(leg)
    # one collection of full-height spans (an axvspan per set costs ~3 ms each to add and draw:
    # a second for 160 sets over the three figures); its gid names the leg and the set count
    from matplotlib.collections import PolyCollection

    spans = [[(st.start_s, 0.0), (st.start_s, 1.0), (st.end_s, 1.0), (st.end_s, 0.0)] for st in result.sets]
    coll = PolyCollection(spans, facecolors=_LEG_COLOUR[leg], alpha=0.18, linewidths=0,
                          transform=ax.get_xaxis_transform())  # fmt: skip
    coll.set_gid(f"sets:{leg.value}:{len(spans)}")
    ax.add_collection(coll, autolim=False)
    if len(result.sets) <= 30:
        for st in result.sets:
            count = st.left_reps if leg is Leg.LEFT else st.right_reps
            ax.text((st.start_s + st.end_s) / 2.0, 1.0, f"{st.set}: {count}", transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=8, color="0.3")  # fmt: skip
    flagged = [r for r in reps if r.flags]
    if flagged:
        mark = ax.plot([r.peak_s for r in flagged], [r.peak_deg + 0.15 * max(top, 10.0) for r in flagged], "v",
                       color=_FLAG_COLOUR, markersize=4, linestyle="none")[0]  # fmt: skip
        mark.set_gid(f"flags:{leg.value}:{len(flagged)}")
    ax.set_ylabel(f"{leg.value} hip angle (°)")
    ax.set_ylim(bottom=min(-5.0, ax.get_ylim()[0]), top=max(top * 1.25, 20.0))
    ax.grid(True, alpha=0.3)


def _per_set(reps: Sequence[Rep], measure: Any) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """``(set numbers, median, 25th, 75th percentile)`` of ``measure(rep)`` per set."""
    by_set: dict[int, list[float]] = {}
    for r in reps:
        by_set.setdefault(r.set, []).append(float(measure(r)))
    keys = sorted(by_set)
    q = np.array([_quartiles(by_set[k]) for k in keys]).reshape(-1, 3)
    return np.array(keys, dtype=float), q[:, 0], q[:, 1], q[:, 2]


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    """Median, 25th and 75th percentile, interpolated linearly between the sorted values (numpy's
    default method; in plain Python: ``np.percentile`` costs ~0.2 ms a call, for a few values)."""
    x = sorted(values)
    last = len(x) - 1

    def at(q: float) -> float:
        pos = q * last
        lo = int(pos)
        hi = min(lo + 1, last)
        return x[lo] + (x[hi] - x[lo]) * (pos - lo)

    return at(0.5), at(0.25), at(0.75)


def _set_trend(ax: Any, result: SessionResult, measure: Any, ylabel: str) -> None:
    """Per leg: the median of ``measure`` per set (line and dots) and its interquartile band."""
    for leg in result.legs:
        reps = result.reps_of(leg)
        if not reps:
            continue
        x, med, lo, hi = _per_set(reps, measure)
        ax.fill_between(x, lo, hi, color=_LEG_COLOUR[leg], alpha=0.2, linewidth=0)
        line = ax.plot(x, med, "o-", color=_LEG_COLOUR[leg], markersize=2.5, linewidth=1.2, label=leg.value)[0]
        line.set_gid(f"trend:{leg.value}:{len(x)}")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


def _draw_range_sets(fig: "Figure", result: SessionResult, settings: Settings) -> None:
    ax_peak, ax_rom = fig.subplots(2, 1, sharex=True)
    _set_trend(ax_peak, result, lambda r: r.peak_deg, "peak angle (°)")
    _set_trend(ax_rom, result, lambda r: r.rom_deg, "range of motion (°)")
    handles = [_line2d("-", _LEG_COLOUR[leg], f"{leg.value}: median per set") for leg in result.legs]
    handles.append(_patch("0.5", 0.3, "middle half of the set's reps"))
    if settings.target_rom_deg > 0:
        ax_rom.axhline(settings.target_rom_deg, color="#2e7d4f", linewidth=1.5)
        handles.append(_line2d("-", "#2e7d4f", f"target range {settings.target_rom_deg:g}°"))
    partial = {leg: sum("partial" in r.flags for r in result.reps_of(leg)) for leg in result.legs}
    ax_rom.set_xlabel("set")
    _legend(fig, handles, _legend_cols(fig, len(handles)))
    counts = ", ".join(f"{leg.value} {n}" for leg, n in partial.items())
    fig.suptitle(f"Peak angle and range per set ({len(result.reps)} reps; partial reps: {counts})")


def _draw_tempo_sets(fig: "Figure", result: SessionResult, settings: Settings) -> None:
    axes = fig.subplots(3, 1, sharex=True)
    for ax, phase in zip(axes, ("up", "hold", "down")):
        _set_trend(ax, result, lambda r, p=phase: getattr(r, f"{p}_s"), f"{phase} (s)")
    axes[2].axhline(settings.min_down_s, color="black", linewidth=1.2)
    axes[2].set_xlabel("set")
    handles = [_line2d("-", _LEG_COLOUR[leg], f"{leg.value}: median per set") for leg in result.legs]
    handles.append(_patch("0.5", 0.3, "middle half of the set's reps"))
    handles.append(_line2d("-", "black", f"lower slowly: down ≥ {settings.min_down_s:g} s"))
    _legend(fig, handles, _legend_cols(fig, len(handles)))
    fast = sum("fast_down" in r.flags for r in result.reps)
    fig.suptitle(f"Tempo per set: up / hold / down ({fast} reps lowered too fast)")


def _patch(colour: str, alpha: float, label: str, hatch: str | None = None) -> Any:
    from matplotlib.patches import Patch

    return Patch(facecolor=colour, alpha=alpha, label=label, hatch=hatch, edgecolor="0.2" if hatch else None)


def _line2d(style: str, colour: str, label: str) -> Any:
    from matplotlib.lines import Line2D

    if style in ("v", "o", "s"):
        return Line2D([], [], marker=style, linestyle="none", color=colour, label=label)
    return Line2D([], [], linestyle=style, color=colour, label=label)  # type: ignore[arg-type]


def _rep_grid(result: SessionResult) -> list[tuple[int, int]]:
    return sorted({_rep_key(r) for r in result.reps})


def _draw_range(fig: "Figure", result: SessionResult, settings: Settings) -> None:
    if len(result.reps) > DETAIL_MAX_REPS:
        _draw_range_sets(fig, result, settings)
        return
    ax_peak, ax_rom = fig.subplots(2, 1, sharex=True)
    keys = _rep_grid(result)
    x_of = {k: i for i, k in enumerate(keys)}
    legs = tuple(result.legs)
    width = 0.8 / max(len(legs), 1)
    for j, leg in enumerate(legs):
        offset = (j - (len(legs) - 1) / 2.0) * width
        reps = result.reps_of(leg)
        xs = [x_of[_rep_key(r)] + offset for r in reps]
        ax_peak.bar(xs, [r.peak_deg for r in reps], width=width, color=_LEG_COLOUR[leg], label=leg.value)
        bars = ax_rom.bar(xs, [r.rom_deg for r in reps], width=width, color=_LEG_COLOUR[leg], label=leg.value)
        for bar, r in zip(bars, reps):
            if "partial" in r.flags or "below_target" in r.flags:
                bar.set_hatch("xx")
                bar.set_edgecolor(_FLAG_COLOUR)
        # Partial threshold per set: partial_frac x the set's median range (same leg).
        for set_no in sorted({r.set for r in reps}):
            in_set = [r for r in reps if r.set == set_no]
            threshold = settings.partial_frac * statistics.median(r.rom_deg for r in in_set)
            xs_set = [x_of[_rep_key(r)] for r in in_set]
            ax_rom.hlines(
                threshold, min(xs_set) - 0.45, max(xs_set) + 0.45, colors=_LEG_COLOUR[leg], linestyles=":", linewidth=1.5
            )
    if settings.target_rom_deg > 0:
        ax_rom.axhspan(settings.target_rom_deg, max(ax_rom.get_ylim()[1], settings.target_rom_deg * 1.1), color="#4c9f70", alpha=0.12)
        ax_rom.axhline(settings.target_rom_deg, color="#2e7d4f", linewidth=1.5)
    ax_peak.set_ylabel("peak angle (°)")
    ax_rom.set_ylabel("range of motion (°)")
    handles = [_patch(_LEG_COLOUR[leg], 1.0, leg.value) for leg in legs]
    handles.append(_line2d(":", "0.3", f"partial below {settings.partial_frac:.0%} of set median"))
    if settings.target_rom_deg > 0:
        handles.append(_patch("#4c9f70", 0.3, f"target range ≥ {settings.target_rom_deg:g}°"))
    handles.append(_patch("white", 1.0, "partial / below target", hatch="xx"))
    _legend(fig, handles, _legend_cols(fig, min(len(handles), 5)))
    for ax in (ax_peak, ax_rom):
        ax.grid(True, axis="y", alpha=0.3)
    _label_rep_axis(ax_rom, keys, len(result.sets))
    fig.suptitle("Peak angle and range per rep, left and right")


def _legend(fig: "Figure", handles: Sequence[Any], ncols: int) -> None:
    """The figure's legend, centred under the axes (:func:`_lay_out` leaves room for it), in
    ``ncols`` columns or fewer: as many as fit the figure's width."""
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    room_px = fig.get_figwidth() * fig.dpi - 2 * _PAD_PT * fig.dpi / 72.0
    while True:
        legend = fig.legend(handles=handles, fontsize="small", loc="lower center", bbox_to_anchor=(0.5, 0.0),
                            borderaxespad=0.3, ncols=ncols, frameon=False)  # fmt: skip
        if ncols == 1 or legend.get_window_extent(renderer).width <= room_px:
            return
        legend.remove()
        ncols -= 1


_PAD_PT = 5.0
"""Space between the figure's edge, its title, legend, labels and axes."""


def _lay_out(fig: "Figure") -> None:
    """Place the axes (one column of them) so that the title, the legend and every label fit.

    What constrained layout did, for these figures' one shape, at a fraction of its cost: it measured
    every artist of every axes twice (~40 % of a figure's time); here only what can vary is
    measured (the tick labels, axis labels and set labels beside each axes, the title, the legend)
    with the renderer that draws them, again only if the axes' new size changed their ticks.
    """
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    width_px, height_px = (float(v) for v in fig.get_size_inches() * fig.dpi)
    pt = fig.dpi / 72.0
    pad = _PAD_PT * pt
    axes = list(fig.axes)
    if not axes:
        return

    def extent(texts: Any) -> tuple[float, float]:
        boxes = [t.get_window_extent(renderer) for t in texts if t.get_visible() and t.get_text()]
        return max((b.width for b in boxes), default=0.0), max((b.height for b in boxes), default=0.0)

    def tick_px(axis: Any) -> float:
        return float(axis.majorTicks[0].get_tick_padding() + axis.majorTicks[0].get_pad()) * pt if axis.majorTicks else 0.0

    def below(ax: Any) -> float:  # the x tick labels and the x label under an axes
        labels_h = extent(ax.xaxis.get_ticklabels())[1]
        label_h = extent([ax.xaxis.label])[1]
        return (labels_h + tick_px(ax.xaxis) if labels_h else 0.0) + (label_h + ax.xaxis.labelpad * pt if label_h else 0.0)

    def above(ax: Any) -> float:  # texts set on the axes' top edge (the set labels)
        tall = extent(t for t in ax.texts if t.get_va() == "bottom" and t.get_position()[1] >= 1.0)[1]
        return tall + 0.5 * pad if tall else 0.0

    top = pad + above(axes[0])
    title = getattr(fig, "_suptitle", None)  # (matplotlib keeps the Text there: no public getter)
    if title is not None and title.get_text():
        if title.get_window_extent(renderer).width > width_px - 2 * pad:  # too long for a phone: two lines
            title.set_text(_two_lines(title.get_text()))
        top += title.get_window_extent(renderer).height + pad
        title.set_y(1.0 - pad / height_px)
    bottom = pad + (fig.legends[0].get_window_extent(renderer).y1 + 0.5 * pad if fig.legends else 0.0)
    n = len(axes)
    placed: dict[str, float] | None = None
    for _ in range(3):  # the axes' new size may change their ticks (and the labels' widths): again
        left = right = 0.0
        for ax in axes:
            labels_w = extent(ax.yaxis.get_ticklabels())[0]
            label_w = extent([ax.yaxis.label])[0]
            left = max(left, labels_w + tick_px(ax.yaxis) + (label_w + ax.yaxis.labelpad * pt if label_w else 0.0))
            right = max(right, extent(ax.xaxis.get_ticklabels())[0] / 2.0)  # a label centred on the right edge
        low = bottom + below(axes[-1])
        gap = max((below(a) + above(b) + pad for a, b in zip(axes, axes[1:])), default=0.0)
        each = max(height_px - top - low - (n - 1) * gap, 1.0) / n
        margins = {"left": (left + pad) / width_px, "right": 1.0 - (right + pad) / width_px, "top": 1.0 - top / height_px,
                   "bottom": low / height_px, "hspace": gap / each}  # fmt: skip
        if placed == margins:
            break
        fig.subplots_adjust(**margins)
        placed = margins


def _two_lines(text: str) -> str:
    """``text`` broken in two at the space nearest its middle (before a parenthesis if it has one)."""
    cut = text.find(" (")
    if cut < 0:
        spaces = [i for i, c in enumerate(text) if c == " "]
        if not spaces:
            return text
        cut = min(spaces, key=lambda i: abs(i - len(text) / 2))
    return text[:cut] + "\n" + text[cut + 1 :]


def _phone(fig: "Figure") -> bool:
    return bool(fig.get_figwidth() < 6.0)


def _legend_cols(fig: "Figure", n: int) -> int:
    return min(n, 2) if _phone(fig) else n


def _label_rep_axis(ax: Any, keys: Sequence[tuple[int, int]], n_sets: int) -> None:
    step = max(1, math.ceil(len(keys) / (12 if _phone(ax.figure) else 30)))
    ticks = list(range(0, len(keys), step))
    ax.set_xticks(ticks)
    ax.set_xticklabels([_rep_label(keys[i], n_sets) for i in ticks], rotation=90 if len(ticks) > 12 else 0, fontsize="small")
    ax.set_xlabel("set · rep" if n_sets > 1 else "rep")
    if keys:
        ax.set_xlim(-0.6, len(keys) - 0.4)


def _draw_tempo(fig: "Figure", result: SessionResult, settings: Settings) -> None:
    if len(result.reps) > DETAIL_MAX_REPS:
        _draw_tempo_sets(fig, result, settings)
        return
    ax = fig.subplots(1, 1)
    keys = _rep_grid(result)
    x_of = {k: i for i, k in enumerate(keys)}
    legs = tuple(result.legs)
    width = 0.8 / max(len(legs), 1)
    hatches = {Leg.LEFT: None, Leg.RIGHT: "//"}
    for j, leg in enumerate(legs):
        offset = (j - (len(legs) - 1) / 2.0) * width
        reps = result.reps_of(leg)
        xs = np.array([x_of[_rep_key(r)] + offset for r in reps])
        up = np.array([r.up_s for r in reps])
        hold = np.array([r.hold_s for r in reps])
        down = np.array([r.down_s for r in reps])
        kw: dict[str, Any] = {"width": width, "hatch": hatches[leg], "edgecolor": "white", "linewidth": 0.5}
        ax.bar(xs, up, color=_PHASE_COLOUR["up"], **kw)
        ax.bar(xs, hold, bottom=up, color=_PHASE_COLOUR["hold"], **kw)
        down_bars = ax.bar(xs, down, bottom=up + hold, color=_PHASE_COLOUR["down"], **kw)
        for bar, r in zip(down_bars, reps):
            if r.down_s < settings.min_down_s:
                bar.set_edgecolor(_FLAG_COLOUR)
                bar.set_linewidth(1.5)
        # "Lower slowly" threshold: where the top of the down segment must reach.
        if len(reps):
            ax.hlines(up + hold + settings.min_down_s, xs - width / 2, xs + width / 2, colors="black", linewidth=1.5)
    handles = [_patch(_PHASE_COLOUR[p], 1.0, p) for p in ("up", "hold", "down")]
    handles.append(_line2d("-", "black", f"lower slowly: down ≥ {settings.min_down_s:g} s"))
    too_fast = _patch("white", 1.0, "lowered too fast")
    too_fast.set_edgecolor(_FLAG_COLOUR)
    handles.append(too_fast)
    if Leg.RIGHT in legs and len(legs) == 2:
        handles.append(_patch("white", 1.0, "right leg (hatched); left plain", hatch="//"))
    _legend(fig, handles, _legend_cols(fig, len(handles)))
    ax.set_ylabel("time (s)")
    ax.grid(True, axis="y", alpha=0.3)
    _label_rep_axis(ax, keys, len(result.sets))
    fig.suptitle("Tempo per rep: up / hold / down")


def build_figures(result: SessionResult, settings: Settings | None = None, phone: bool = False) -> dict[str, "Figure"]:
    """Draw the report's figures (matplotlib ``Figure`` objects on an Agg canvas).

    ``phone``: narrow figures for a phone's width (draw and render them inside
    :func:`phone_rc`, which sets the larger base font; :func:`phone_figures_png` does both).

    Every shaded rep span carries the gid ``rep:<leg>:<set>:<rep>`` and every flag
    marker ``flag:<leg>:<set>:<rep>:<flags>``, so tests can count them.

    Raises
    ------
    MissingDependencyError
        If matplotlib is not installed.
    """
    settings = settings or Settings()
    figure_cls, canvas_cls = _matplotlib()
    n_legs = max(len(result.legs), 1)
    long = len(result.reps) > DETAIL_MAX_REPS
    if phone:
        sizes = {"angle": (PHONE_WIDTH_IN, 2.0 + 2.0 * n_legs), "range": (PHONE_WIDTH_IN, 5.2), "tempo": (PHONE_WIDTH_IN, 5.6 if long else 4.2)}
    else:
        sizes = {"angle": (10.0, 2.2 + 2.3 * n_legs), "range": (10.0, 6.4), "tempo": (10.0, 6.4 if long else 4.6)}
    drawers = {"angle": _draw_angle, "range": _draw_range, "tempo": _draw_tempo}
    figures: dict[str, Figure] = {}
    for name in FIGURE_NAMES:
        fig = figure_cls(figsize=sizes[name], dpi=100)
        canvas_cls(fig)
        drawers[name](fig, result, settings)
        _lay_out(fig)
        figures[name] = fig
    return figures


PHONE_WIDTH_IN = 4.0
PHONE_DPI = 210
"""Phone figures: 840 px wide, shown about 360 CSS px wide on a 390 px screen (scale ~0.43)."""
PHONE_FONT_PT = 11.0
"""Base font of the phone figures: 'small' (0.83x) is 9.2 pt = 26.8 px at PHONE_DPI, ~11.5 CSS px shown."""


def phone_rc() -> Any:
    """matplotlib rc context for the phone figures (the larger base font)."""
    import matplotlib

    return matplotlib.rc_context({"font.size": PHONE_FONT_PT})


def phone_figures_png(result: SessionResult, settings: Settings | None = None) -> dict[str, bytes]:
    """PNG bytes per figure, drawn for a phone's width with text that stays >= 11 CSS px there."""
    with phone_rc():
        return {name: figure_png(fig, PHONE_DPI) for name, fig in build_figures(result, settings, phone=True).items()}


def figure_png(fig: "Figure", dpi: int = 100) -> bytes:
    """Render one figure to PNG bytes (zlib level 3: a third less time than the default 6 for 10 %
    more bytes; PNG is lossless either way)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 3})
    return buf.getvalue()


# --------------------------------------------------------------------------- HTML

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
main { max-width: 62rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: 0.2rem 0 0.3rem; }
h2 { font-size: 1.15rem; margin: 1.6rem 0 0.5rem; }
.meta { color: #5b6670; font-size: 0.9rem; margin: 0 0 0.8rem; }
.headline { font-size: 1.15rem; font-weight: 600; }
.callout { border-left: 4px solid #c0392b; background: #fdecea; padding: 0.6rem 0.8rem; margin: 0.8rem 0; border-radius: 4px; }
.ok { border-left-color: #2e7d4f; background: #e8f5ee; }
.callout p { margin: 0.2rem 0; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; background: #fff; min-width: 18rem; }
th, td { padding: 0.35rem 0.7rem; border-bottom: 1px solid #dde2e6; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
tr.uneven td { background: #fdecea; }
figure { margin: 1rem 0; background: #fff; padding: 0.4rem; border-radius: 6px; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
figcaption { font-size: 0.85rem; color: #5b6670; padding: 0.3rem 0.2rem 0; }
details { margin: 1rem 0; }
code { font-size: 0.85rem; }
@media (max-width: 600px) { body { font-size: 15px; } main { padding: 0.6rem; } th, td { padding: 0.3rem 0.45rem; }
  table { min-width: 0; width: 100%; } th { white-space: normal; } figure { padding: 0.2rem; } }
"""


def _fmt(value: float, digits: int = 1, unit: str = "", signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return f"{text}{(' ' if unit == 's' else '') + unit if unit else ''}"


def _table(headers: Sequence[str], rows: Sequence[tuple[Sequence[str], str]], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        f'<tr class="{cls}">' + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>" for cells, cls in rows
    )
    return f'<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


_CAPTIONS = {
    "angle": "Hip angle of each leg. Shaded bands are counted reps (numbered within their set), "
    "red triangles mark flagged reps, dashed lines separate sets.",
    "range": "Peak angle and range of motion of each rep, left and right side by side. Dotted lines: "
    "the partial-rep threshold of each set; hatched bars are partial or below the target range.",
    "tempo": "Time up, held at the top and down for each rep. The black tick on each bar is where the "
    "down phase must reach to count as lowering slowly; bars outlined red lowered too fast.",
}


def _readable_time(iso: str | None) -> str | None:
    if not iso:
        return iso
    try:
        return datetime.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def _exercises_html(sets: Sequence[SetSummary]) -> str:
    """Which exercise each set was (README "Which exercise"), one line under the sets table."""
    names = [s.exercise.replace("_", " ") for s in sets]
    if not names:
        return ""
    if len(set(names)) == 1:
        text = f"Exercise (every set): {names[0]}"
    else:
        text = "Exercise: " + " · ".join(f"set {s.set} {n}" for s, n in zip(sets, names))
    return f'<p class="meta" id="exercises">{html.escape(text)}</p>'


def render_html(
    result: SessionResult,
    settings: Settings | None = None,
    *,
    title: str = "legrep session report",
    source: str | None = None,
    started_at: str | None = None,
    exercise: str | None = None,
    figures_png: Mapping[str, bytes] | None = None,
    phone_png: Mapping[str, bytes] | None = None,
    advice: str | None = None,
) -> str:
    """Make the self-contained report page.

    Parameters
    ----------
    result, settings : the analysed session and the settings it was analysed with.
    title, source, started_at, exercise : shown in the page header.
    figures_png : PNG bytes per figure name (``FIGURE_NAMES``); drawn here when None.
    phone_png : the same figures for a phone's width (:func:`phone_figures_png`), shown below
        600 px; drawn here when ``figures_png`` is drawn here too.
    advice : the programme's "next time: ..." line (:mod:`legrep.plan`), shown last.

    Returns
    -------
    str
        The HTML document (UTF-8 text, no external resources).
    """
    settings = settings or Settings()
    if figures_png is None:
        figures_png = {name: figure_png(fig) for name, fig in build_figures(result, settings).items()}
        if phone_png is None:
            phone_png = phone_figures_png(result, settings)
    summary = summarize_session(result)
    esc = html.escape
    meta = " · ".join(esc(x) for x in (exercise, _readable_time(started_at), source) if x)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">{meta}</p>' if meta else "",
        f'<p class="headline" id="headline">{esc(summary.headline)}</p>',
    ]
    if summary.uneven_messages:
        parts.append('<div class="callout" id="uneven">')
        parts.extend(f"<p>{esc(m)}</p>" for m in summary.uneven_messages)
        parts.append("</div>")
    elif len(summary.legs) == 2 and summary.sets:
        parts.append('<div class="callout ok" id="uneven"><p>Every set has as many reps on the left as on the right.</p></div>')

    legs = summary.legs
    set_rows = []
    for s in summary.sets:
        counts = {Leg.LEFT: s.left_reps, Leg.RIGHT: s.right_reps}
        cells = [f"Set {s.set}"] + [str(counts[leg]) for leg in legs]
        cells.append(f"{s.start_s:.0f}–{s.end_s:.0f} s")
        if len(legs) == 2:
            cells.append("uneven" if s.uneven else "even")
        set_rows.append((cells, "uneven" if s.uneven else ""))
    set_headers = ["set"] + [f"{leg.value} reps" for leg in legs] + ["time"] + (["balance"] if len(legs) == 2 else [])
    parts += ["<h2>Sets</h2>", _table(set_headers, set_rows, "sets"), _exercises_html(summary.sets)]

    measures = [
        ("reps", "reps", 0, ""),
        ("mean peak", "mean_peak_deg", 1, "°"),
        ("mean range", "mean_rom_deg", 1, "°"),
        ("mean up", "mean_up_s", 2, "s"),
        ("mean hold", "mean_hold_s", 2, "s"),
        ("mean down", "mean_down_s", 2, "s"),
    ]
    diff_of = {name: value for name, value, _ in summary.differences}
    avg_rows = []
    for label, attr, digits, unit in measures:
        cells = [label] + [_fmt(float(getattr(summary.stats_of(leg), attr)), digits, unit) for leg in legs]
        if summary.differences:
            cells.append(_fmt(diff_of[label], digits, unit, signed=True))
        avg_rows.append((cells, ""))
    flag_names = sorted({f for st in summary.leg_stats for f, _ in st.flags})
    for flag in flag_names:
        per_leg = [dict(summary.stats_of(leg).flags).get(flag, 0) for leg in legs]
        cells = [f"flag: {flag}"] + [str(c) for c in per_leg]
        if summary.differences:
            cells.append(f"{per_leg[0] - per_leg[1]:+d}")
        avg_rows.append((cells, ""))
    avg_headers = ["measure"] + [leg.value for leg in legs] + (["left − right"] if summary.differences else [])
    parts += ["<h2>Averages</h2>", _table(avg_headers, avg_rows, "averages")]

    parts.append("<h2>Figures</h2>")
    for name in FIGURE_NAMES:
        png = figures_png.get(name)
        if not png:
            continue
        data = base64.b64encode(png).decode("ascii")
        small = (phone_png or {}).get(name)
        source = (
            f'<source media="(max-width: 600px)" srcset="data:image/png;base64,{base64.b64encode(small).decode("ascii")}">'
            if small
            else ""
        )
        parts.append(
            f'<figure id="fig-{name}"><picture>{source}<img alt="{esc(_CAPTIONS[name])}" src="data:image/png;base64,{data}"></picture>'
            f"<figcaption>{esc(_CAPTIONS[name])}</figcaption></figure>"
        )
    settings_rows = [([k, f"{v:g}"], "") for k, v in settings.to_dict().items()]
    parts += [
        "<details><summary>Settings used</summary>",
        _table(["setting", "value"], settings_rows, "settings"),
        "</details>",
        # the programme's advice ends the page (README "The programme")
        f'<h2>Next time</h2><p class="headline" id="advice">{esc(advice)}</p>' if advice else "",
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p)


def _phone_figures_aside(result: SessionResult, settings: Settings) -> Callable[[], dict[str, bytes]]:
    """Start drawing the phone figures in a forked child process when that is safe and useful
    (fork available, more than one core, no other thread in this process: forking beside threads
    can deadlock), else later here; returns the function that gives their PNG bytes. The figures
    are the same bytes either way (the same matplotlib, rc and data; tests/test_report.py)."""
    import os
    import threading

    if not (hasattr(os, "fork") and (os.cpu_count() or 1) > 1 and threading.active_count() == 1):
        return lambda: phone_figures_png(result, settings)
    import pickle

    _matplotlib()  # imported once, before the fork: the child starts drawing at once (the import is ~0.5 s)

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: draw, send, leave without running the parent's cleanup
        code = 1
        try:
            os.close(read_fd)
            data = pickle.dumps(phone_figures_png(result, settings))
            with os.fdopen(write_fd, "wb") as fh:
                fh.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)

    def collect() -> dict[str, bytes]:
        with os.fdopen(read_fd, "rb") as fh:
            data = fh.read()
        _, status = os.waitpid(pid, 0)
        if status == 0:
            try:
                got = pickle.loads(data)
                if isinstance(got, dict) and set(got) == set(FIGURE_NAMES):
                    return got
            except Exception:  # (a child that died mid-write: draw them here)
                pass
        return phone_figures_png(result, settings)

    return collect


def write_report(
    result: SessionResult,
    out_html: str | Path,
    settings: Settings | None = None,
    *,
    png_dir: str | Path | None = None,
    title: str = "legrep session report",
    source: str | None = None,
    started_at: str | None = None,
    exercise: str | None = None,
    advice: str | None = None,
) -> dict[str, Path]:
    """Write the HTML report and, if ``png_dir`` is given, one PNG per figure.

    Returns
    -------
    dict
        ``"html"`` and each figure name -> the path written.
    """
    settings = settings or Settings()
    phone = _phone_figures_aside(result, settings)  # (on the other core while these are drawn)
    figures = build_figures(result, settings)
    pngs = {name: figure_png(fig) for name, fig in figures.items()}
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render_html(
        result, settings, title=title, source=source, started_at=started_at, exercise=exercise, figures_png=pngs,
        phone_png=phone(), advice=advice,
    )  # fmt: skip
    from .fileio import write_bytes_atomic, write_text_atomic

    write_text_atomic(out, text)
    written = {"html": out}
    if png_dir is not None:
        directory = Path(png_dir)
        directory.mkdir(parents=True, exist_ok=True)
        for name, png in pngs.items():
            path = directory / f"{name}.png"
            write_bytes_atomic(path, png)
            written[name] = path
    return written
