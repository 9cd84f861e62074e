"""Rebuild this folder's BROAD excerpts from a checkout of https://github.com/dlaidig/broad.

    python tests/data/real/broad/trim.py PATH/TO/broad/data_mat

Each excerpt keeps every sample (no resampling) from 5 s before the trial's movement phase
begins to 40 s into it, in a gzipped CSV (see README.md for the columns).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.io as sio

TRIALS = ("02_undisturbed_slow_rotation_B", "07_undisturbed_fast_rotation_B", "21_undisturbed_fast_combined")
BEFORE_S = 5.0
DURING_S = 40.0
HEADER = "t_s,gyr_x_rps,gyr_y_rps,gyr_z_rps,acc_x_mps2,acc_y_mps2,acc_z_mps2,opt_qw,opt_qx,opt_qy,opt_qz,movement"


def trim(data_mat: Path, out_dir: Path) -> list[Path]:
    written = []
    for name in TRIALS:
        d = sio.loadmat(data_mat / f"{name}.mat")
        rate = float(d["sampling_rate"].item())
        move = d["movement"].ravel().astype(bool)
        first = int(np.flatnonzero(move)[0])
        lo, hi = max(first - int(BEFORE_S * rate), 0), first + int(DURING_S * rate)
        t = np.arange(hi - lo) / rate
        table = np.column_stack([t, d["imu_gyr"][lo:hi], d["imu_acc"][lo:hi], d["opt_quat"][lo:hi], move[lo:hi]])
        path = out_dir / f"{name}.csv.gz"
        np.savetxt(path, table, fmt=["%.6f"] + ["%.9g"] * 10 + ["%d"], delimiter=",", header=HEADER, comments="")
        written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python tests/data/real/broad/trim.py PATH/TO/broad/data_mat", file=sys.stderr)
        raise SystemExit(2)
    for p in trim(Path(sys.argv[1]), Path(__file__).resolve().parent):
        print(p, f"{p.stat().st_size / 1e6:.2f} MB")
