"""Throughput of the offline pipeline and per-chunk cost of the live path.

Runs the whole analysis (both legs, calibration -> angle -> reps -> sets) on one hour of
two simulated thigh sensors at 100 Hz (720 000 samples), median of several runs, and
compares it with the x-io Fusion AHRS (``imufusion``, a per-sample C filter driven from
Python) measured in the same run on the same samples. Speed is reported as a ratio to
that baseline because the machines are shared and noisy.

    python benchmarks/throughput.py [--hours 1] [--runs 5]

Last line: ``pipeline <N> samples/s, <R>x imufusion``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from legrep_sim.scenarios import long_session  # noqa: E402
from legrep.model import ImuBlock, Leg  # noqa: E402
from legrep.pipeline import SessionAnalyzer, analyze_arrays  # noqa: E402


def _blocks(session: object) -> dict[Leg, ImuBlock]:
    out = {}
    for name, sig in session.signals.items():  # type: ignore[attr-defined]
        out[Leg(name)] = ImuBlock.from_arrays(sig.time_s, sig.acc_g, sig.gyr_dps)
    return out


def bench_pipeline(blocks: dict[Leg, ImuBlock], runs: int) -> tuple[float, int]:
    times = []
    n_reps = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        res = analyze_arrays(left=blocks.get(Leg.LEFT), right=blocks.get(Leg.RIGHT))
        times.append(time.perf_counter() - t0)
        n_reps = len(res.reps)
    return statistics.median(times), n_reps


def bench_imufusion(blocks: dict[Leg, ImuBlock], runs: int) -> float:
    import imufusion

    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for block in blocks.values():
            ahrs = imufusion.Ahrs()
            # a fixed nominal period: the cheapest way to drive it (favours the baseline)
            ahrs.set_sample_period(float(np.median(np.diff(block.time_s))))
            update = ahrs.update_no_magnetometer
            for g, a in zip(block.gyr_dps, block.acc_g):
                update(g, a)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_numpy(blocks: dict[Leg, ImuBlock], runs: int) -> float:
    axis = np.array([0.0, 1.0, 0.0])
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for block in blocks.values():
            np.cumsum(block.gyr_dps @ axis)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_chunks(block: ImuBlock, chunk: int, max_samples: int) -> np.ndarray:
    an = SessionAnalyzer((Leg.LEFT,), keep_traces=False)
    n = min(len(block), max_samples)
    chunks = [
        ImuBlock(block.time_s[i : i + chunk], block.acc_g[i : i + chunk], block.gyr_dps[i : i + chunk])
        for i in range(0, n, chunk)
    ]
    costs = np.empty(len(chunks))
    clock = time.perf_counter_ns
    for k, b in enumerate(chunks):
        t0 = clock()
        an.update(Leg.LEFT, b)
        costs[k] = clock() - t0
    return costs / 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()

    t0 = time.perf_counter()
    session = long_session(hours=args.hours, rate_hz=100.0, seed=7)
    blocks = _blocks(session)
    n = sum(len(b) for b in blocks.values())
    print(f"simulated {args.hours:g} h x {len(blocks)} sensors at 100 Hz: {n} samples, "
          f"{len(session.reps)} true reps ({time.perf_counter() - t0:.1f} s)")

    t_pipe, n_reps = bench_pipeline(blocks, args.runs)
    t_fusion = bench_imufusion(blocks, max(1, args.runs // 2))
    t_numpy = bench_numpy(blocks, args.runs)
    costs = bench_chunks(blocks[Leg.LEFT], 10, 60_000)

    print(f"reps found: {n_reps} (truth {len(session.reps)})")
    print(f"imufusion AHRS (per-sample, from Python): {n / t_fusion / 1e6:.2f} M samples/s")
    print(f"plain numpy pass (gyro . axis, cumsum):   {n / t_numpy / 1e6:.1f} M samples/s (ceiling)")
    print(f"live path, 10-sample chunks: median {np.median(costs):.1f} us, "
          f"p90 {np.percentile(costs, 90):.1f} us, p99 {np.percentile(costs, 99):.1f} us per chunk")
    print(f"pipeline {n / t_pipe:,.0f} samples/s, {t_fusion / t_pipe:.1f}x imufusion")


if __name__ == "__main__":
    main()
