"""Throughput of the analysis, alone and end to end, beside baselines measured in the same run.

On one hour of two simulated thigh sensors at 100 Hz (720 000 samples), median of ``--runs``:

* the pipeline alone (both legs: calibration -> hip angle -> reps -> sets, arrays in memory; as
  ``analyze_arrays`` runs them: one leg after the other, each leg's orientation stage on a thread
  ahead of its hip-angle stage, ``legrep.fusion.orientation.poses_ahead``), and all on one thread
  (``LEGREP_SERIAL=1``) alternately with it;
* ``legrep analyze`` end to end on the same samples written as a CSV pair (a child process:
  start-up, reading, analysis, output), and the floor: ``np.loadtxt`` of the same two files
  (numpy's C reader, which does nothing else);
* VQF's offline filter (``vqf.offlineVQF``: 6-D orientation, forward-backward, C++ in one call per
  leg) and imufusion (x-io Fusion AHRS: 6-D orientation, one C update per sample called from a
  Python loop -- it has no batch call, so that is the cost of using it from Python), on the same
  samples. They compute a full orientation; legrep computes the hip angle and the reps.

Machines are shared and noisy: compare the ratios, not the absolute numbers.

    python benchmarks/throughput.py [--hours 1] [--runs 5]

Last line: ``pipeline <N> samples/s, <R>x imufusion, end-to-end <N> samples/s``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from legrep_sim.scenarios import long_session  # noqa: E402
from legrep.model import ImuBlock, Leg  # noqa: E402
from legrep.offline import analyze_arrays  # noqa: E402
from legrep.pipeline import SessionAnalyzer  # noqa: E402


def _blocks(session: object) -> dict[Leg, ImuBlock]:
    out = {}
    for name, sig in session.signals.items():  # type: ignore[attr-defined]
        out[Leg(name)] = ImuBlock.from_arrays(sig.time_s, sig.acc_g, sig.gyr_dps)
    return out


def bench_pipeline(blocks: dict[Leg, ImuBlock], runs: int) -> tuple[float, float, int, dict[str, float]]:
    """Median seconds of ``analyze_arrays`` as it runs (the orientation stages on a thread ahead)
    and on one thread (``LEGREP_SERIAL=1``), alternately; the reps found; the median CPU seconds of
    each (``"threads"``, ``"serial"``: the process's, both threads included)."""
    times: dict[str, list[float]] = {"": [], "1": []}
    cpu: dict[str, list[float]] = {"": [], "1": []}
    n_reps = 0
    before = os.environ.get("LEGREP_SERIAL")
    try:
        for _ in range(runs):
            for serial, got in times.items():
                os.environ["LEGREP_SERIAL"] = serial
                t0, c0 = time.perf_counter(), time.process_time()
                res = analyze_arrays(left=blocks.get(Leg.LEFT), right=blocks.get(Leg.RIGHT))
                got.append(time.perf_counter() - t0)
                cpu[serial].append(time.process_time() - c0)
                n_reps = len(res.reps)
    finally:
        if before is None:
            os.environ.pop("LEGREP_SERIAL", None)
        else:
            os.environ["LEGREP_SERIAL"] = before
    cpu_s = {"threads": statistics.median(cpu[""]), "serial": statistics.median(cpu["1"])}
    return statistics.median(times[""]), statistics.median(times["1"]), n_reps, cpu_s


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


def bench_vqf(blocks: dict[Leg, ImuBlock], runs: int) -> float:
    import vqf

    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for block in blocks.values():
            dt = float(np.median(np.diff(block.time_s)))
            gyr = np.ascontiguousarray(np.radians(block.gyr_dps))  # VQF takes rad/s and m/s^2
            acc = np.ascontiguousarray(block.acc_g * 9.80665)
            vqf.offlineVQF(gyr, acc, None, dt)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_end_to_end(blocks: dict[Leg, ImuBlock], runs: int) -> tuple[float, float]:
    """``(legrep analyze, np.loadtxt)`` median wall seconds on the same CSV pair, each a child process."""
    import subprocess
    import tempfile

    from legrep.imu_csv import write_imu_csv

    with tempfile.TemporaryDirectory() as tmp:
        paths = {leg: Path(tmp) / f"{leg.value}.csv" for leg in blocks}
        for leg, block in blocks.items():
            write_imu_csv(paths[leg], block)
        files = [str(paths[leg]) for leg in blocks]
        analyze = [sys.executable, "-m", "legrep", "analyze", "--no-history"]
        for leg in blocks:
            analyze += [f"--{leg.value}", str(paths[leg])]
        loadtxt = [sys.executable, "-c", f"import numpy as np; [np.loadtxt(f, delimiter=',', skiprows=1) for f in {files!r}]"]
        out = []
        for argv in (analyze, loadtxt):
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                subprocess.run(argv, check=True, capture_output=True)
                times.append(time.perf_counter() - t0)
            out.append(statistics.median(times))
    return out[0], out[1]


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

    t_pipe, t_serial, n_reps, cpu_s = bench_pipeline(blocks, args.runs)
    t_e2e, t_loadtxt = bench_end_to_end(blocks, args.runs)
    t_vqf = bench_vqf(blocks, args.runs)
    t_fusion = bench_imufusion(blocks, max(1, args.runs // 2))
    t_numpy = bench_numpy(blocks, args.runs)
    costs = bench_chunks(blocks[Leg.LEFT], 10, 60_000)

    def rate(t: float) -> str:
        return f"{n / t / 1e6:6.2f} M samples/s"

    print(f"reps found: {n_reps} (truth {len(session.reps)})")
    print(f"legrep pipeline alone (hip angle, reps, sets; arrays in memory, orientation ahead): {rate(t_pipe)}"
          f"  (CPU {cpu_s['threads']:.3f} s)")
    print(f"the same, all on one thread (LEGREP_SERIAL=1):                                 {rate(t_serial)}"
          f"  (CPU {cpu_s['serial']:.3f} s; the thread: {t_serial / t_pipe:.2f}x the speed, "
          f"{cpu_s['threads'] / cpu_s['serial']:.2f}x the CPU)")
    print(f"legrep analyze end to end (child process: start-up, CSV pair, analysis, table): {rate(t_e2e)}")
    print(f"floor: np.loadtxt of the same CSV pair (child process, reading only):          {rate(t_loadtxt)}"
          f"  (analyze takes {t_e2e / t_loadtxt:.2f}x its time)")
    print(f"vqf.offlineVQF (6-D orientation, forward-backward, C++ one call per leg):      {rate(t_vqf)}")
    print(f"imufusion AHRS (6-D orientation, one C update per sample from Python):         {rate(t_fusion)}")
    print(f"plain numpy pass (gyro . axis, cumsum; a ceiling, computes nothing useful):    {rate(t_numpy)}")
    print(f"live path, 10-sample chunks: median {np.median(costs):.1f} us, "
          f"p90 {np.percentile(costs, 90):.1f} us, p99 {np.percentile(costs, 99):.1f} us per chunk")
    print(f"pipeline {n / t_pipe:,.0f} samples/s, {t_fusion / t_pipe:.1f}x imufusion, end-to-end {n / t_e2e:,.0f} samples/s")


if __name__ == "__main__":
    main()
