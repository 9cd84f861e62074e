"""What a person waits for, on a long session: analyze, replay, export, report, and batch.

    python benchmarks/endtoend.py [--hours 8] [--data DIR] [--sessions 200] [--runs 1] [--ab] [--baseline CHECKOUT]

Makes (once, cached in ``--data``) two thighs at 100 Hz for ``--hours``: an IMU CSV pair and a
legrep recording of the same samples (packets as the firmware frames them: 18 samples each at an
MTU of 247, arrival a few ms after the last sample), tiled from a one-hour simulated session. Then
runs each command as a user does (``python -m legrep ...`` in a child process) and prints its
wall time, samples/s, CPU seconds (its workers' included) and peak memory: ``peak`` is the
child's ``ru_maxrss`` (Linux gives there the larger of its own peak and its largest reaped
worker's, not their sum), and the ``memory:`` line below it the whole process tree's, polled from
/proc (:class:`TreeMemory`): each process's own peak, their sum, and the largest PSS sum seen at
once. ``--ab`` runs analyze, replay, export and report twice, alternately: in one process
(``LEGREP_SERIAL=1``) and with a process per leg (the default: for CSV files host/offline.py, for a
recording host/replay_batch.py, where the second thigh's process replays the recording itself); ``--baseline``
runs them from another checkout too (the code before a change), alternately. The floor is ``np.loadtxt`` of
the same two CSV files, in a child process too, measured in the same run: ratios to it are what to
compare across machines (this one is shared and noisy). Batch: ``--sessions`` short CSV sessions
analysed by ``legrep batch --jobs 1`` and ``--jobs 2``; the ratio is the speed-up. ``replay, per packet``
is the same file replay with every packet through ``SessionCore.process`` (the live path): the
baseline of the batched decoding, in the same run. ``replay, decoding only`` is the replay with the
analysis replaced by a sink that takes the blocks and does nothing: reading, decoding, tracker,
clock and blocking alone (the rest of ``replay`` is the analysis pipeline's). The load average
(``os.getloadavg``) is printed beside the batch figures: on a shared machine they are depressed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _tile(hours: float) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``hours`` of both legs: a one-hour simulated session repeated back to back."""
    from legrep_sim.scenarios import long_session

    one = long_session(hours=min(1.0, hours), rate_hz=100.0, seed=7)
    out = {}
    reps = int(np.ceil(hours / min(1.0, hours)))
    for leg, sig in one.signals.items():
        span = float(sig.time_s[-1] - sig.time_s[0]) + 0.01
        t = np.concatenate([sig.time_s + k * span for k in range(reps)])
        keep = t <= t[0] + hours * 3600.0
        out[leg] = (t[keep], np.tile(sig.acc_g, (reps, 1))[keep], np.tile(sig.gyr_dps, (reps, 1))[keep])
    return out


def make_data(folder: Path, hours: float) -> tuple[Path, Path, Path, int]:
    """CSV pair and recording of the same samples (cached); returns their paths and the sample count."""
    from legrep_sim import protocol as fwp
    from legrep_sim.firmware import FirmwareConfig, SensorFirmware, array_source
    from legrep import packets as hp
    from legrep.imu_csv import write_imu_csv
    from legrep.live_core import SensorInfo
    from legrep.model import ImuBlock, Leg
    from legrep.recording import RecordingWriter
    from legrep.records import Kind, Record
    from legrep.settings import Settings

    folder.mkdir(parents=True, exist_ok=True)
    left, right, rec = folder / "left.csv", folder / "right.csv", folder / "session.legrep"
    stamp = folder / "samples.txt"
    if stamp.exists() and left.exists() and right.exists() and rec.exists():
        return left, right, rec, int(stamp.read_text())
    data = _tile(hours)
    rng = np.random.default_rng(1)
    n_total = 0
    part = rec.with_suffix(".part")
    part.unlink(missing_ok=True)
    writer = RecordingWriter(part, {"legs": ["left", "right"], "settings": Settings().to_dict(), "transport": "bench"})
    fh = writer._fh  # one flush at the end: the benchmark data need not survive a kill
    assert fh is not None
    fh.flush = lambda: None  # type: ignore[method-assign]
    streams = []
    for i, leg in enumerate((Leg.LEFT, Leg.RIGHT)):
        t, acc, gyr = data[leg.value]
        fw = SensorFirmware(array_source(t, acc, gyr), FirmwareConfig(serial=f"B{i}", leg=i + 1), connected=True, mtu=247)
        info = SensorInfo.make(i, leg, fw.status(0.0), name=f"bench-{leg.value}")
        writer.write(Record.of_json(Kind.SENSOR, i, 0.0, info.to_json()))
        start = hp.start_request()
        writer.write(Record(Kind.TX, i, 0.0, start))
        writer.write(Record(Kind.RX, i, 0.002, fwp.encode_control_reply(fwp.Opcode.START, 0, (0).to_bytes(4, "little"))))
        assert info.status is not None
        raw = np.column_stack([np.round(acc / info.status.acc_lsb_g), np.round(gyr / info.status.gyr_lsb_dps)])
        raw = np.clip(raw, -32768, 32767).astype(np.int16)
        per = fwp.samples_per_packet(247, 100)
        ticks0 = 1000 * (i + 1)
        first = np.arange(0, len(t), per)
        arrival = t[np.minimum(first + per - 1, len(t) - 1)] + 0.004 + rng.exponential(0.008, len(first))
        streams.append((i, raw, first, arrival, ticks0, per))
        write_imu_csv(left if leg is Leg.LEFT else right, ImuBlock.from_arrays(
            t, raw[:, :3] * info.status.acc_lsb_g, raw[:, 3:] * info.status.gyr_lsb_dps))  # fmt: skip
        n_total += len(t)
    # records in arrival order, both sensors interleaved
    order = sorted((float(arr), i, k) for i, _, first, arrivals, _, _ in streams for k, arr in enumerate(arrivals))
    by_index = {s[0]: s for s in streams}
    for arrival, i, k in order:
        _, raw, first, _, ticks0, per = by_index[i]
        a = int(first[k])
        ticks = ticks0 + int(hp.tick_offset(a, 100))
        writer.write(Record(Kind.DATA, i, arrival, fwp.encode_imu_packet(k, a, ticks, raw[a : a + per])))
    writer.close(order[-1][0] + 0.1)
    part.replace(rec)
    stamp.write_text(str(n_total))
    return left, right, rec, n_total


_CPU: list[float] = []
"""CPU seconds (user + system) of each child run, in order (the load-independent figure)."""
_TREE: list["TreeMemory"] = []
"""The process-tree memory of each child run, in order (see :class:`TreeMemory`)."""


class TreeMemory:
    """Memory of a command's whole process tree (it may fork workers: one per leg, a pool), polled
    from /proc every few ms while it runs.

    ``peaks`` is each process's own peak RSS (``VmHWM``, read until it exits: a growth after the
    last poll of a short-lived one is missed); ``sum_peaks_mib`` their sum (an upper bound of
    what the tree held at once: pages a forked child still shares with its parent count in both);
    ``peak_pss_mib`` the largest sum of the processes' PSS seen at once (shared pages split
    between their sharers: what the tree really held, read every ``PSS_EVERY`` polls).
    """

    def __init__(self, pid: int, period_s: float = 0.005) -> None:
        import threading

        self.pid = pid
        self.peaks: dict[int, float] = {}
        self.names: dict[int, int] = {}  # pid -> depth in the tree (0: the command itself)
        self.peak_pss_mib = 0.0
        self._stop = threading.Event()
        self._period_s = period_s
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    @staticmethod
    def _kib(path: str, key: str) -> float | None:
        try:
            with open(path, "rb") as fh:
                for line in fh:
                    if line.startswith(key):
                        return float(line.split()[1])
        except OSError:
            return None
        return None

    def _tree(self) -> list[tuple[int, int]]:
        out, todo = [], [(self.pid, 0)]
        while todo:
            pid, depth = todo.pop()
            out.append((pid, depth))
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as fh:
                    todo += [(int(c), depth + 1) for c in fh.read().split()]
            except OSError:
                pass
        return out

    PSS_EVERY = 10
    """Polls per PSS reading: reading smaps_rollup walks a process's page tables (~0.3 ms for 150 MiB,
    and it holds the process's memory map lock meanwhile), which every 5 ms for each process would
    take a fifth of a core from the commands measured; VmHWM is the kernel's own high-water mark."""

    def _poll(self) -> None:
        polls = 0
        while not self._stop.is_set():
            pss = 0.0
            with_pss = polls % self.PSS_EVERY == 0
            for pid, depth in self._tree():
                hwm = self._kib(f"/proc/{pid}/status", b"VmHWM:")
                if hwm is None:
                    continue
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), hwm / 1024.0)
                self.names.setdefault(pid, depth)
                if with_pss:
                    pss += (self._kib(f"/proc/{pid}/smaps_rollup", b"Pss:") or 0.0) / 1024.0
            self.peak_pss_mib = max(self.peak_pss_mib, pss)
            polls += 1
            self._stop.wait(self._period_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def sum_peaks_mib(self) -> float:
        return sum(self.peaks.values())

    def describe(self, top_mib: float) -> str:
        """``1 + 2 processes: 80 | 95, 97 MiB, sum 272, PSS peak 190``: the command's own peak, its
        workers' (their depth in the tree, then pid order), their sum, the largest PSS sum seen at once."""
        kids = sorted((pid for pid, depth in self.names.items() if depth > 0), key=lambda p: (self.names[p], p))
        top = self.peaks.get(self.pid, top_mib)
        if not kids:
            return f"1 process {top:.0f} MiB, PSS peak {self.peak_pss_mib:.0f}"
        own = [self.peaks[p] for p in kids]
        return (f"1 + {len(kids)} processes: {top:.0f} | {', '.join(f'{m:.0f}' for m in own)} MiB, "
                f"sum {top + sum(own):.0f}, PSS peak {self.peak_pss_mib:.0f}")  # fmt: skip


def run_child_rusage(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB: the child's own ru_maxrss, from os.wait4; Linux reports there the
    larger of its own and its largest reaped child's, never their sum: see ``_TREE``) and stdout of
    one child (its CPU seconds, its workers' included, are appended to ``_CPU``, its tree's memory
    to ``_TREE``)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, **(env or {})})  # fmt: skip
    tree = TreeMemory(proc.pid)
    out = proc.stdout.read() if proc.stdout else b""
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    tree.stop()
    _CPU.append(usage.ru_utime + usage.ru_stime)
    _TREE.append(tree)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0, out.decode()


def best(plans: list[tuple[list[str], dict[str, str] | None]], runs: int) -> list[tuple[float, float, str]]:
    """Each command of ``plans`` (argv, extra environment) run ``runs`` times, alternately (A B A B:
    the same load for each on a noisy machine); per command the fastest wall time, the largest peak
    memory, its stdout. ``_CPU`` ends with each command's least CPU, ``_TREE`` with its run of the
    largest summed peaks, in the order of ``plans``."""
    results: list[list[tuple[float, float, str]]] = [[] for _ in plans]
    cpus: list[list[float]] = [[] for _ in plans]
    trees: list[list[TreeMemory]] = [[] for _ in plans]
    for _ in range(runs):
        for k, (cmd, env) in enumerate(plans):
            results[k].append(run_child_rusage(cmd, env))
            cpus[k].append(_CPU.pop())
            trees[k].append(_TREE.pop())
    out = []
    for k in range(len(plans)):
        _CPU.append(min(cpus[k]))
        _TREE.append(max(trees[k], key=lambda t: t.sum_peaks_mib))
        out.append((min(r[0] for r in results[k]), max(r[1] for r in results[k]), results[k][-1][2]))
    return out


def baseline_env(checkout: Path) -> dict[str, str]:
    """The environment that makes ``python -m legrep`` run another checkout (its C extensions built
    in place: ``python setup.py build_ext --inplace``): a folder of links named after the packages,
    first on PYTHONPATH (before this venv's editable install)."""
    links = Path(tempfile.mkdtemp(prefix="legrep-baseline-"))
    (links / "legrep").symlink_to(checkout.resolve() / "host")
    (links / "legrep_sim").symlink_to(checkout.resolve() / "firmware_sim")
    return {"PYTHONPATH": str(links)}


def make_batch_tree(folder: Path, sessions: int) -> Path:
    """``sessions`` CSV pairs of 10 minutes each (cached)."""
    from legrep.imu_csv import write_imu_csv
    from legrep.model import ImuBlock

    tree = folder / f"batch{sessions}"
    if (tree / "done.txt").exists():
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    data = _tile(10 / 60)
    for k in range(sessions):
        d = tree / f"s{k:03d}"
        d.mkdir(parents=True)
        for leg, (t, acc, gyr) in data.items():
            write_imu_csv(d / f"{leg}.csv", ImuBlock.from_arrays(t, acc, gyr))
    (tree / "done.txt").write_text("ok\n")
    return tree


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=8.0)
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "legrep-bench")
    ap.add_argument("--sessions", type=int, default=200)
    ap.add_argument("--runs", type=int, default=1, help="runs per command (the fastest is shown)")
    ap.add_argument("--ab", action="store_true",
                    help="also run analyze, report, export, replay in one process (LEGREP_SERIAL=1), alternately with "
                         "the default per-leg processes")  # fmt: skip
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a checkout of another commit (C extensions built in place): analyze, replay, export, report "
                         "also run from it, alternately")  # fmt: skip
    ap.add_argument("--skip", default="", help="comma-separated steps to skip (analyze,loadtxt,replay,decode,perpacket,export,report,batch)")
    args = ap.parse_args()
    if args.sessions < 1:
        ap.error(f"--sessions expected 1 or more batch sessions (skip the batch with --skip batch), got {args.sessions}")
    skip = set(filter(None, args.skip.split(",")))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (wall times are depressed by any other load; "
          f"CPU seconds much less)")  # fmt: skip
    py = sys.executable
    folder = args.data / f"{args.hours:g}h"
    t0 = time.perf_counter()
    left, right, rec, n = make_data(folder, args.hours)
    print(f"data: {args.hours:g} h x 2 legs at 100 Hz = {n} samples; CSV {left.stat().st_size + right.stat().st_size >> 20} MiB, "
          f"recording {rec.stat().st_size >> 20} MiB ({time.perf_counter() - t0:.1f} s to make or find)", flush=True)  # fmt: skip
    rows: list[tuple[str, float, float]] = []

    def report(name: str, wall: float, rss: float, what: str, tree: TreeMemory | None = None) -> None:
        rows.append((name, wall, rss))
        tree = tree or _TREE[-1]
        print(f"{name:<22} {wall:7.2f} s  {n / wall / 1e6:6.2f} M samples/s  peak {rss:6.0f} MiB  CPU {_CPU[-1]:6.2f} s   {what}\n"
              f"{'':<22} memory: {tree.describe(rss)}", flush=True)  # fmt: skip

    variants: list[tuple[str, dict[str, str]]] = []
    if args.baseline is not None:
        variants.append((" [baseline]", baseline_env(args.baseline)))
        print(f"baseline: {args.baseline} ({subprocess.run(['git', '-C', str(args.baseline), 'log', '--oneline', '-1'], capture_output=True, text=True).stdout.strip()[:60]})")
    if args.ab:
        variants.append((" [1 process]", {"LEGREP_SERIAL": "1"}))

    def measure(name: str, argv: list[str], what: str) -> None:
        """One command, and its variants (--baseline, --ab) alternately with it: their rows first."""
        got = best([(argv, env) for _, env in variants] + [(argv, None)], args.runs)
        cpus, trees = _CPU[-len(got):], _TREE[-len(got):]
        del _CPU[-len(got):], _TREE[-len(got):]
        for (label, env), (wall, rss, _), cpu, tree in zip([*variants, ("", {})], got, cpus, trees):
            _CPU.append(cpu)
            report(f"{name}{label}", wall, rss, what + (f" ({', '.join(f'{k}={v}' for k, v in env.items())})" if env else ""), tree)
        for (label, _), (wall, _, _) in zip(variants, got):
            print(f"{'':<22} {name}{label} / {name} time: {wall / got[-1][0]:.2f}", flush=True)

    out = folder / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    if "loadtxt" not in skip:
        code = (f"import numpy as np; [np.loadtxt(f, delimiter=',', skiprows=1) for f in ({str(left)!r}, {str(right)!r})]")
        report("floor: np.loadtxt", *best([([py, "-c", code], None)], args.runs)[0][:2], "numpy's C reader, both files, nothing else")
    if "analyze" not in skip:
        measure("analyze", [py, "-m", "legrep", "analyze", "--left", str(left), "--right", str(right), "--no-history"],
                "end to end: start-up, read, fuse, count, print")  # fmt: skip
    if "replay" not in skip:
        measure("replay", [py, "-m", "legrep", "replay", "--quiet", str(rec)], "recording -> decoder, tracker, clock, analysis")
    if "decode" not in skip:  # reading + decoding + tracker + clock + blocking, no analysis
        code = ("import sys; from legrep.recording import RecordingReader; from legrep.live_core import SessionCore; "
                "from legrep.replay_batch import replay_records_batched\n"
                "class Sink:\n def update(self, leg, block): return []\n"
                f"r = RecordingReader({str(rec)!r}); core = SessionCore.from_meta(r.meta); core.analyzer = Sink()\n"
                "replay_records_batched(r, core)")
        report("replay, decoding only", *best([([py, "-c", code], None)], args.runs)[0][:2],
               "read, decode, track, clock-map, block; the analysis a no-op sink")  # fmt: skip
    if "perpacket" not in skip:  # the baseline of the batched decoding, in the same run
        code = ("import sys; from legrep.replay_batch import replay_file; "
                f"replay_file({str(rec)!r}, keep_traces=False, batched=False)")
        report("replay, per packet", *best([([py, "-c", code], None)], args.runs)[0][:2],
               "the same replay, every packet through SessionCore.process (as live)")  # fmt: skip
    if "export" not in skip:
        measure("export", [py, "-m", "legrep", "export", str(rec), "--out", str(out / "export")],
                "replay + reps.csv, summary.json, imu_<leg>.csv")  # fmt: skip
    if "report" not in skip:
        measure("report", [py, "-m", "legrep", "report", "--left", str(left), "--right", str(right), "--out",
                           str(out / "report.html"), "--png", str(out / "png"), "--no-history"],
                f"HTML + 3 figures (PNGs in {out / 'png'})")  # fmt: skip
    walls = {name: wall for name, wall, _ in rows}
    if "floor: np.loadtxt" in walls and "analyze" in walls:
        print(f"analyze / np.loadtxt time: {walls['analyze'] / walls['floor: np.loadtxt']:.2f} (< 1: faster than the floor)")
    for name in ("replay", "export", "report"):
        if name in walls and "analyze" in walls:
            print(f"{name} / analyze time: {walls[name] / walls['analyze']:.2f}")
    if "replay" in walls and "replay, per packet" in walls:
        print(f"replay speed-up of the batched decoding: {walls['replay, per packet'] / walls['replay']:.1f}x")
    if "batch" not in skip:
        tree = make_batch_tree(args.data, args.sessions)
        times, cpu, loads = {}, {}, {}
        for jobs in (1, 2):
            target = out / f"batch{jobs}"
            shutil.rmtree(target, ignore_errors=True)
            before = os.times()
            times[jobs] = run_child_rusage([py, "-m", "legrep", "batch", str(tree), "--out", str(target), "--jobs", str(jobs)])[0]
            after = os.times()
            cpu[jobs] = (after.children_user - before.children_user) + (after.children_system - before.children_system)
            loads[jobs] = os.getloadavg()[0]
        print(f"batch of {args.sessions} sessions: sequential {times[1]:.2f} s (CPU {cpu[1]:.1f} s, load {loads[1]:.1f}), "
              f"2 workers {times[2]:.2f} s (CPU {cpu[2]:.1f} s, load {loads[2]:.1f}), speed-up {times[1] / times[2]:.2f}x "
              f"on {os.cpu_count()} cores")  # fmt: skip


if __name__ == "__main__":
    main()
