"""Accuracy of the analysis against the physical simulator's truth over a grid of sessions.

    python benchmarks/accuracy.py [--only SUBSTRING]

For each simulated session (rates 50/100/200 Hz, tempos, noise, mountings, bent-knee,
alternating, partial reps, fidgets, gaps, walking between sets, plank, bird dog, one leg)
prints the rep-count error per leg, whether every set's uneven flag is right, and the
errors of peak angle and tempo for matched reps; then the totals against the targets:
rep count error 0, every uneven flag right, peak_deg MAE <= 1.5 deg, up/hold/down MAE <= 0.08 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import blocks_of, match_reps  # noqa: E402

from legrep_sim.scenarios import accuracy_grid, simulate  # noqa: E402
from legrep.model import Leg  # noqa: E402
from legrep.pipeline import analyze_arrays  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="run only sessions whose name contains this")
    args = ap.parse_args()
    errs: dict[str, list[float]] = {"peak_deg": [], "up_s": [], "hold_s": [], "down_s": []}
    count_err = 0
    sets_wrong = 0
    sets_total = 0
    sessions = 0
    t0 = time.perf_counter()
    print(f"{'session':38s} {'reps L/R (truth)':>18s} {'sets ok':>8s} {'peak MAE':>9s} {'tempo MAE':>10s}")
    for name, spec, seed in accuracy_grid():
        if args.only not in name:
            continue
        sessions += 1
        sim = simulate(spec, seed)
        b = blocks_of(sim)
        res = analyze_arrays(left=b.get(Leg.LEFT), right=b.get(Leg.RIGHT))
        counts = []
        local: dict[str, list[float]] = {k: [] for k in errs}
        for leg in res.legs:
            n_true = sum(1 for r in sim.reps if r.leg == leg.value)
            n_found = len(res.reps_of(leg))
            count_err += abs(n_found - n_true)
            counts.append(f"{n_found}({n_true})")
            for r, tr in match_reps(res.reps, sim.reps, leg):
                for k in errs:
                    local[k].append(getattr(r, k) - getattr(tr, k))
        for k in errs:
            errs[k].extend(local[k])
        truth_sets = [(s.left_reps, s.right_reps, s.uneven) for s in sim.sets]
        found_sets = [(s.left_reps, s.right_reps, s.uneven) for s in res.sets]
        ok = sum(1 for a, bb in zip(truth_sets, found_sets) if a[2] == bb[2])
        if len(found_sets) != len(truth_sets):
            ok = min(ok, len(truth_sets) - 1)
        sets_total += len(truth_sets)
        sets_wrong += len(truth_sets) - ok
        peak = np.mean(np.abs(local["peak_deg"])) if local["peak_deg"] else float("nan")
        tempo = np.mean(np.abs(local["up_s"] + local["hold_s"] + local["down_s"])) if local["up_s"] else float("nan")
        print(f"{name:38s} {'/'.join(counts):>18s} {ok:>3d}/{len(truth_sets):<4d} {peak:8.2f}° {tempo:9.3f}s")
    mae = {k: float(np.mean(np.abs(v))) if v else float("nan") for k, v in errs.items()}
    print(f"\n{sessions} sessions in {time.perf_counter() - t0:.0f} s, {len(errs['peak_deg'])} matched reps")
    print(f"rep count error (sum over legs): {count_err}   target 0")
    print(f"sets with a wrong uneven flag: {sets_wrong} of {sets_total}   target 0")
    print(f"peak_deg MAE {mae['peak_deg']:.2f} deg   target <= 1.5")
    print(f"up_s MAE {mae['up_s']:.3f} s, hold_s MAE {mae['hold_s']:.3f} s, down_s MAE {mae['down_s']:.3f} s   target <= 0.08")
    ok = (
        count_err == 0
        and sets_wrong == 0
        and mae["peak_deg"] <= 1.5
        and max(mae["up_s"], mae["hold_s"], mae["down_s"]) <= 0.08
    )
    print("accuracy targets: " + ("MET" if ok else "NOT MET"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
