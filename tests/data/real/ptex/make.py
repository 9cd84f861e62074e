"""Rebuild this folder's files from a copy of the Physical Therapy Exercises dataset.

    python tests/data/real/ptex/make.py PATH/TO/DATASET   (the folder holding s1 ... s5)

Keeps, for exercises 1, 6, 7 and 8 and sensor unit 2, each subject's test session (``test.txt``)
with its rows and values unchanged, minus the magnetometer columns, gzipped.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

EXERCISES = (1, 6, 7, 8)
UNIT = 2


def make(src: Path, out: Path) -> list[Path]:
    written = []
    for s in range(1, 6):
        for e in EXERCISES:
            lines = (src / f"s{s}" / f"e{e}" / f"u{UNIT}" / "test.txt").read_text().splitlines()
            keep = [";".join(line.split(";")[:7]) for line in lines]  # time index, acc x/y/z, gyr x/y/z
            path = out / f"s{s}_e{e}_u{UNIT}_test.csv.gz"
            with gzip.GzipFile(path, "wb", mtime=0) as fh:
                fh.write(("\n".join(keep) + "\n").encode())
            written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python tests/data/real/ptex/make.py PATH/TO/DATASET", file=sys.stderr)
        raise SystemExit(2)
    for p in make(Path(sys.argv[1]), Path(__file__).resolve().parent):
        print(p, f"{p.stat().st_size / 1e3:.0f} kB")
