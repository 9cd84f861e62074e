"""Accuracy of the analysis against the physical simulator's truth, on the tuned seeds and a fresh one.

    python benchmarks/accuracy.py [--seed N] [--only SUBSTRING] [--jobs 2] [--pelvis-only]

The grid (``legrep_sim.scenarios.accuracy_grid``, >= 60 sessions, 50-200 Hz) spans tempos, error
levels, mountings, bent-knee, plank, bird dog, one leg, alternating, partial reps, fidgets, gaps,
walking between sets, and what real sessions showed (issue 8): no still start (settling, strap
adjusting, already moving, standing first), touch-and-go and hover reps, gyro bias random walk,
off-axis motion, strap slip, moving baselines, cheap-MEMS noise, standing sway.

It runs twice: on the seeds the analysis was tuned on (base 1000) and on a fresh base seed
(``--seed``; default: a new random one each run, printed so it can be repeated). Per session and
side by side it prints the rep-count error, the sets whose uneven flag is right, and the peak and
tempo errors of matched reps; then the totals against the targets: rep count error 0, every
uneven flag right, no session refused, peak_deg MAE <= 1.0 deg, up/hold/down MAE <= 0.08 s.
Truth tempo uses the stopwatch definitions (``legrep_sim.motion.measure_rep``). A refused session
(the analysis raised) counts as finding no rep and getting every set wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import blocks_of, match_reps  # noqa: E402

from legrep.errors import LegrepError  # noqa: E402
from legrep.model import Leg  # noqa: E402
from legrep.pipeline import analyze_arrays  # noqa: E402
from legrep_sim.scenarios import SessionSpec, accuracy_grid, simulate  # noqa: E402

TUNED_SEED = 1000
FIELDS = ("peak_deg", "up_s", "hold_s", "down_s")


@dataclass(slots=True)
class Outcome:
    """What the analysis got right and wrong on one session."""

    count_error: int = 0
    counts: str = ""
    sets_right: int = 0
    sets_total: int = 0
    refused: str = ""
    errors: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in FIELDS})


def judge(spec: SessionSpec, seed: int) -> Outcome:
    """Simulate one session, analyse it, and compare with the truth."""
    sim = simulate(spec, seed)
    out = Outcome(sets_total=len(sim.sets))
    try:
        res = analyze_arrays(**{leg.value: block for leg, block in blocks_of(sim).items()})
    except LegrepError as exc:
        out.refused = str(exc).splitlines()[0]
        out.count_error = len(sim.reps)
        out.counts = "refused"
        return out
    counts = []
    for leg in res.legs:
        n_true = sum(1 for r in sim.reps if r.leg == leg.value)
        n_found = len(res.reps_of(leg))
        out.count_error += abs(n_found - n_true)
        counts.append(f"{n_found}({n_true})")
        for r, tr in match_reps(res.reps, sim.reps, leg):
            for k in FIELDS:
                out.errors[k].append(float(getattr(r, k) - getattr(tr, k)))
    out.counts = "/".join(counts)
    truth_sets = [s.uneven for s in sim.sets]
    found_sets = [s.uneven for s in res.sets]
    right = sum(1 for a, b in zip(truth_sets, found_sets) if a == b)
    if len(found_sets) != len(truth_sets):
        right = min(right, len(truth_sets) - 1)
    out.sets_right = max(right, 0)
    return out


def _job(args: tuple[str, SessionSpec, int]) -> tuple[str, Outcome]:
    name, spec, seed = args
    return name, judge(spec, seed)


def _mae(v: list[float]) -> float:
    return float(np.mean(np.abs(v))) if v else float("nan")


def _cell(o: Outcome) -> str:
    if o.refused:
        return f"{'refused':>13s} {'':7s} {'':7s} {'':6s}"
    tempo = o.errors["up_s"] + o.errors["hold_s"] + o.errors["down_s"]
    return f"{o.counts:>13s} {o.sets_right:>3d}/{o.sets_total:<3d} {_mae(o.errors['peak_deg']):6.2f}° {_mae(tempo):5.3f}s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=None, help="fresh base seed (default: a random one, printed)")
    ap.add_argument("--only", default="", help="run only sessions whose name contains this")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (default 2)")
    args = ap.parse_args()
    fresh = args.seed if args.seed is not None else int.from_bytes(os.urandom(3), "little") + 10_000
    grids = {"tuned": accuracy_grid(TUNED_SEED), "fresh": accuracy_grid(fresh)}
    names = [name for name, _, _ in grids["tuned"] if args.only in name]
    jobs = [(f"{which}:{name}", spec, seed) for which, grid in grids.items() for name, spec, seed in grid if name in names]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        results = dict(pool.map(_job, [(n, s, seed) for n, s, seed in jobs]))
    elapsed = time.perf_counter() - t0
    print(f"tuned seeds: base {TUNED_SEED}; fresh seeds: base {fresh} (repeat with --seed {fresh})")
    head = f"{'reps L/R (truth)':>13s} {'sets':>7s} {'peak':>7s} {'tempo':>6s}"
    print(f"{'session':36s} | {'tuned: ' + head:>43s} | {'fresh: ' + head:>43s}")
    for name in names:
        print(f"{name:36s} | {_cell(results['tuned:' + name]):>36s} | {_cell(results['fresh:' + name]):>36s}")
    print(f"\n{len(names)} sessions x 2 seeds in {elapsed:.0f} s")
    summary: dict[str, dict[str, float]] = {}
    for which in grids:
        outs = [results[f"{which}:{n}"] for n in names]
        errs = {k: [e for o in outs for e in o.errors[k]] for k in FIELDS}
        summary[which] = {
            "count": sum(o.count_error for o in outs),
            "sets_wrong": sum(o.sets_total - o.sets_right for o in outs),
            "sets": sum(o.sets_total for o in outs),
            "refused": sum(1 for o in outs if o.refused),
            "matched": len(errs["peak_deg"]),
            **{k: _mae(v) for k, v in errs.items()},
        }
        for o, n in zip(outs, names):
            if o.refused:
                print(f"  {which} refused {n}: {o.refused}")
    print(f"\n{'':34s} {'tuned':>10s} {'fresh':>10s}   target")
    t, f = summary["tuned"], summary["fresh"]
    print(f"{'rep count error (sum over legs)':34s} {t['count']:10.0f} {f['count']:10.0f}   0")
    print(f"{'sets with a wrong uneven flag':34s} {t['sets_wrong']:10.0f} {f['sets_wrong']:10.0f}   0 (of {t['sets']:.0f})")
    print(f"{'sessions refused':34s} {t['refused']:10.0f} {f['refused']:10.0f}   0")
    print(f"{'matched reps':34s} {t['matched']:10.0f} {f['matched']:10.0f}")
    print(f"{'peak_deg MAE (deg)':34s} {t['peak_deg']:10.2f} {f['peak_deg']:10.2f}   <= 1.0")
    for k in ("up_s", "hold_s", "down_s"):
        print(f"{k + ' MAE (s)':34s} {t[k]:10.3f} {f[k]:10.3f}   <= 0.08")
    met = all(
        s["count"] == 0 and s["sets_wrong"] == 0 and s["refused"] == 0 and s["peak_deg"] <= 1.0
        and max(s["up_s"], s["hold_s"], s["down_s"]) <= 0.08
        for s in summary.values()
    )
    print("accuracy targets: " + ("MET" if met else "NOT MET"))
    return 0 if met else 1



# --------------------------------------------------------------------------- the pelvis sensor
# (issue 13 item 3; this section belongs to the pelvis work: host/pelvis.py, legrep_sim.pelvis)
PELVIS_TUNED_SEED = 7000


def _pelvis_job(args: tuple[str, object, int, str]) -> tuple[str, object]:
    from pelvis_sim import judge_pelvis

    name, spec, seed, place = args
    try:
        return name, judge_pelvis(spec, seed, place)  # type: ignore[arg-type]
    except LegrepError as exc:
        return name, str(exc)


def pelvis_section() -> int:
    """``back_arch`` precision and recall, ``pelvis_tilt_deg`` MAE and the true hip-flexion peak
    MAE with the pelvis sensor (and, for comparison, the thigh-only peak against true hip
    flexion) on ``legrep_sim.pelvis.pelvis_grid``, tuned and fresh seeds.
    Targets: precision and recall >= 0.95, tilt MAE <= 1 deg, hip peak MAE <= 1.5 deg."""
    from legrep_sim.pelvis import pelvis_grid

    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args, _ = ap.parse_known_args()
    fresh = args.seed if args.seed is not None else int.from_bytes(os.urandom(3), "little") + 10_000
    grids = {"tuned": pelvis_grid(PELVIS_TUNED_SEED), "fresh": pelvis_grid(fresh)}
    jobs = [(f"{which}:{name}", spec, seed, place) for which, grid in grids.items() for name, spec, seed, place in grid]
    with ProcessPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        results = dict(pool.map(_pelvis_job, jobs))
    print(f"\nPelvis sensor (legrep_sim.pelvis.pelvis_grid): tuned base {PELVIS_TUNED_SEED}, fresh base {fresh}")
    print(f"{'session':28s} | {'tuned: tp/fp/fn tilt hip (thigh)':>36s} | {'fresh: tp/fp/fn tilt hip (thigh)':>36s}")

    def cell(o: object) -> str:
        if isinstance(o, str):
            return "REFUSED"
        with_p, without = o  # type: ignore[misc]
        return (f"{with_p.tp}/{with_p.fp}/{with_p.fn} {_mae(list(with_p.tilt_err_deg)):5.2f} "
                f"{_mae(list(with_p.hip_peak_err_deg)):5.2f} ({_mae(list(without.hip_peak_err_deg)):5.2f})")

    names = [n for n, _, _, _ in grids["tuned"]]
    for n in names:
        print(f"{n:28s} | {cell(results['tuned:' + n]):>36s} | {cell(results['fresh:' + n]):>36s}")
    met = True
    print(f"\n{'':34s} {'tuned':>10s} {'fresh':>10s}   target")
    rows: dict[str, list[float]] = {k: [] for k in ("precision", "recall", "tilt", "hip", "thigh", "refused", "missed")}
    for which in grids:
        outs = [results[f"{which}:{n}"] for n in names]
        ok = [o for o in outs if not isinstance(o, str)]
        tp = sum(o[0].tp for o in ok)  # type: ignore[index]
        fp = sum(o[0].fp for o in ok)  # type: ignore[index]
        fn = sum(o[0].fn for o in ok)  # type: ignore[index]
        rows["precision"].append(tp / (tp + fp) if tp + fp else 1.0)
        rows["recall"].append(tp / (tp + fn) if tp + fn else 1.0)
        rows["tilt"].append(_mae([e for o in ok for e in o[0].tilt_err_deg]))  # type: ignore[index]
        rows["hip"].append(_mae([e for o in ok for e in o[0].hip_peak_err_deg]))  # type: ignore[index]
        rows["thigh"].append(_mae([e for o in ok for e in o[1].hip_peak_err_deg]))  # type: ignore[index]
        rows["refused"].append(float(len(outs) - len(ok)))
        rows["missed"].append(float(sum(o[0].missed for o in ok)))  # type: ignore[index]
    labels = {"precision": ("back_arch precision", ">= 0.95"), "recall": ("back_arch recall", ">= 0.95"),
              "tilt": ("pelvis_tilt_deg MAE (deg)", "<= 1.0"), "hip": ("hip flexion peak MAE (deg)", "<= 1.5"),
              "thigh": ("  thigh-only peak vs hip (deg)", "(no pelvis sensor)"),
              "refused": ("sessions refused", "0"), "missed": ("truth reps not found", "0")}
    for k, (label, target) in labels.items():
        t, f = rows[k]
        print(f"{label:34s} {t:10.2f} {f:10.2f}   {target}")
    for i in range(2):
        met &= rows["precision"][i] >= 0.95 and rows["recall"][i] >= 0.95 and rows["tilt"][i] <= 1.0
        met &= rows["hip"][i] <= 1.5 and rows["refused"][i] == 0
    print("pelvis targets: " + ("MET" if met else "NOT MET"))
    return 0 if met else 1


if __name__ == "__main__":
    # --pelvis-only: just the pelvis section
    rc = 0 if "--pelvis-only" in sys.argv else main()
    sys.exit(rc | pelvis_section())
