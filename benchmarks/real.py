"""Reps counted on real exercise recordings against their labels.

    python benchmarks/real.py [--exercises PATH]

Runs on the bundled Physical Therapy Exercises sessions (tests/data/real/ptex/: 20 real test
sessions of 30 reps each) and, with ``--exercises`` (or ``LEGREP_REAL_EXERCISES``), also on a
local copy of a corpus in the layout ``tests/real_data.load_exercise_corpus`` reads
(CMU-MBL/IMU_Exercise_Prediction's sample data, which carries no licence and is not bundled).
Prints, per recording, the reps legrep counts (or the one-line refusal) next to the labelled
number, then totals.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from real_data import PTEX, load_exercise_corpus, load_ptex  # noqa: E402

from legrep.errors import LegrepError  # noqa: E402
from legrep.offline import analyze_arrays  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exercises", default=os.environ.get("LEGREP_REAL_EXERCISES", ""), help="local exercise corpus")
    args = ap.parse_args()
    sets = [load_ptex(p) for p in sorted(PTEX.glob("*.csv.gz"))]
    if args.exercises:
        extra = load_exercise_corpus(Path(args.exercises))
        if not extra:
            print(f"expected exercise recordings under {args.exercises}, found none")
            return 2
        sets += extra
    print(f"{'set':28s} {'labelled':>8s} {'counted':>8s}")
    exact = refused = 0
    for s in sets:
        try:
            res = analyze_arrays(**{s.leg: (s.time_s, s.acc_g, s.gyr_dps)})
        except LegrepError as exc:
            refused += 1
            print(f"{s.name:28s} {s.reps:8d} {'refused':>8s}  {str(exc).splitlines()[0][:90]}")
            continue
        n = len(res.reps)
        exact += n == s.reps
        print(f"{s.name:28s} {s.reps:8d} {n:8d}")
    print(f"\n{len(sets)} sets: {exact} counted exactly, {refused} refused, {len(sets) - exact - refused} miscounted")
    return 0 if exact == len(sets) else 1


if __name__ == "__main__":
    sys.exit(main())
