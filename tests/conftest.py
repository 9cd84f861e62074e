"""Shared test helpers: simulated sessions and matching detected reps to the simulator's truth."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from legrep.model import ImuBlock, Leg, Rep  # noqa: E402


def blocks_of(session) -> dict[Leg, ImuBlock]:
    """The simulated sensors' samples as pipeline input, per leg."""
    return {
        Leg(name): ImuBlock.from_arrays(sig.time_s, sig.acc_g, sig.gyr_dps) for name, sig in session.signals.items()
    }


def match_reps(found: list[Rep] | tuple[Rep, ...], truth: list, leg: Leg) -> list[tuple[Rep, object]]:
    """Pair detected reps of one leg with true reps whose peak time lies inside them.

    Returns the pairs; unmatched reps on either side show up as a length mismatch.
    """
    mine = [r for r in found if r.leg is leg]
    theirs = [r for r in truth if r.leg == leg.value]
    pairs = []
    used: set[int] = set()
    for r in mine:
        best = None
        for k, tr in enumerate(theirs):
            if k in used:
                continue
            if r.start_s - 0.5 <= tr.peak_s <= r.end_s + 0.5:
                if best is None or abs(tr.peak_s - r.peak_s) < abs(theirs[best].peak_s - r.peak_s):
                    best = k
        if best is not None:
            used.add(best)
            pairs.append((r, theirs[best]))
    return pairs


def mae(values) -> float:
    v = np.asarray(list(values), dtype=float)
    return float(np.mean(np.abs(v))) if len(v) else 0.0


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def _private_homes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One folder per test process for every test's private history database and sensor file."""
    home = tmp_path_factory.mktemp("legrep-home")
    return (home / f"{k}" for k in itertools.count())


@pytest.fixture(autouse=True)
def _private_user_state(_private_homes: Iterator[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the history database and remembered sensors of every test out of the user's home, each
    test's own (file names of its own in one shared folder: a folder per test, ~1400 of them, cost
    seconds to create and to remove on a busy disk)."""
    stem = str(next(_private_homes))
    monkeypatch.setenv("LEGREP_DB", f"{stem}-history.db")
    monkeypatch.setenv("LEGREP_CONFIG", f"{stem}-sensors.json")


EARLIER_SESSION = b"LEGREP-REC 1\nan earlier session"
"""What the shared demo's folder already holds before the demo writes into it (tests/test_fileio.py)."""


class BundledDemo:
    """One ``legrep demo`` of the bundled session, run once per test process and shared (it is the
    suite's most expensive simulation): virtual time, one link drop, ``--out`` into a folder that
    already holds an earlier session (so the demo's files are ``session-2.lgr``, ``reps-2.csv``,
    ``summary-2.json``), and ``--voice-wav`` when espeak-ng is installed.
    """

    ARGS = ("--speed", "max", "--disconnects", "1", "--quiet", "--reps-per-leg", "10", "--sets", "2")

    def __init__(self, out: Path, code: int, stdout: str, stderr: str, voice_wav: Path | None) -> None:
        self.out, self.code, self.stdout, self.stderr, self.voice_wav = out, code, stdout, stderr, voice_wav

    def file(self, stem: str, suffix: str) -> Path:
        """The demo's own file of that kind (``session``/``.lgr``, ``reps``/``.csv``, ...)."""
        return self.out / f"{stem}-2{suffix}"


@pytest.fixture(scope="session")
def bundled_demo(tmp_path_factory: pytest.TempPathFactory) -> BundledDemo:
    """The shared demo run (see :class:`BundledDemo`), made once per suite: under pytest-xdist the
    workers share one folder, and the first to take its lock runs the demo while the others wait
    and read what it wrote (the xdist documentation's recipe, with the standard library's flock)."""
    import contextlib
    import fcntl
    import io
    import json
    import os
    import shutil

    from legrep.cli import main

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this run
    out = base / "bundled-demo"
    done = base / "bundled-demo.json"
    with open(base / "bundled-demo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            (out / "session.lgr").write_bytes(EARLIER_SESSION)
            wav = out / "voice.wav" if shutil.which("espeak-ng") else None
            argv = ["demo", *BundledDemo.ARGS, "--out", str(out)] + (["--voice-wav", str(wav)] if wav else [])
            home = out.parent / "bundled-demo-home"  # the demo stores nothing, but stay private
            saved = {k: os.environ.get(k) for k in ("LEGREP_DB", "LEGREP_CONFIG")}
            os.environ["LEGREP_DB"], os.environ["LEGREP_CONFIG"] = str(home / "history.db"), str(home / "sensors.json")
            stdout, stderr = io.StringIO(), io.StringIO()
            try:
                with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                    code = main(argv)
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            record = {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue(), "voice_wav": str(wav) if wav else None}
            done.write_text(json.dumps(record))
        record = json.loads(done.read_text())
    wav_path = Path(record["voice_wav"]) if record["voice_wav"] else None
    return BundledDemo(out, record["code"], record["stdout"], record["stderr"], wav_path)


CPU_LOG = os.environ.get("LEGREP_TEST_CPU")
"""``LEGREP_TEST_CPU=FILE sh .ci/test``: append per test ``cpu_s  children_cpu_s  wall_s  worker  test``
(tab-separated) to FILE, for finding what costs CPU on a machine where wall time is shared."""


if CPU_LOG:

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
        import resource
        import time

        def cpu() -> tuple[float, float]:
            c = resource.getrusage(resource.RUSAGE_CHILDREN)
            return time.process_time(), c.ru_utime + c.ru_stime

        (p0, c0), w0 = cpu(), time.perf_counter()
        yield
        (p1, c1), w1 = cpu(), time.perf_counter()
        with open(CPU_LOG, "a", encoding="utf-8") as fh:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "-")
            fh.write(f"{p1 - p0:.3f}\t{c1 - c0:.3f}\t{w1 - w0:.3f}\t{worker}\t{item.nodeid}\n")


SLOW_MODULES_FIRST = (
    "test_report.py", "test_fuzz_decoders.py", "test_coach_web.py", "test_simulator.py", "test_coach_voice.py",
    "test_history.py", "test_replay_batch.py", "test_vendor_live.py", "test_pelvis.py", "test_offline_processes.py",
    "test_pelvis_demo.py", "test_fusion_angle.py", "test_serial.py", "test_fusion_neutral.py", "test_plan.py",
    "test_coach_report.py", "test_imu_csv.py", "test_live.py", "test_inputs.py", "test_fuzz_recording.py",
    "test_cli_analyze.py", "test_pipeline.py", "test_exercise.py", "test_settings.py", "test_replay_processes.py",
    "test_demo.py", "test_imports.py", "test_recording.py", "test_fusion_reference.py", "test_reps_reference.py",
    "test_ble.py", "test_real_data.py", "test_export.py", "test_fusion_plane.py", "test_fusion_calibration.py",
    "test_clock.py", "test_coach_cues.py", "test_batch.py", "test_orientation_ahead.py", "test_gait.py",
    "test_fastcore_angle.py", "test_reps_pause.py", "test_fastcore_axes.py", "test_angle_buffers.py",
    "test_packets.py", "test_pipeline_threads.py", "test_sensors_decode.py", "test_fastcore.py",
    "test_diagnostics.py", "test_fast_paths.py", "test_firmware.py", "test_fusion_acc_bias.py", "test_fusion_gaps.py",
    "test_fileio.py", "test_orientation_onset.py", "test_virtual_time.py", "test_importers.py", "test_readme.py",
    "test_view.py", "test_cancel.py", "test_fastcore_posture.py",
)  # fmt: skip
"""Every test module, longest first (wall seconds of whole runs, ``LEGREP_TEST_CPU=FILE``: the share of
each module averaged over four runs, two on an idle machine and two on a busy one); a module not
listed follows in the usual order. ``.ci/test`` hands whole modules to its two workers in this order
(``--dist loadfile``: a module's fixtures are made once), so the last modules to start are the
shortest (a tenth of a second each) and the workers finish together (a 2 s module last left one
worker idle for that long). ``test_coach_voice`` (the first to need the shared demo) comes early;
the other modules reading the demo (test_demo, test_diagnostics, test_fileio) come later, when it
is long written."""


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: k for k, name in enumerate(SLOW_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each module keeps its order


GC_THRESHOLDS = (10_000, 10, 10)
"""The cyclic garbage collector's thresholds while the tests run (Python's default: 700, 10, 10).
Hypothesis, matplotlib and bumble make many short-lived container objects: at 700 the collector
ran ~1900 times in test_fuzz_decoders alone, a tenth of its CPU time; at 10 000 ~200 times, for a
twentieth. Only when unreachable cycles are freed changes (reference counting frees the rest at
once); no test measures memory."""


def pytest_collection_finish(session: pytest.Session) -> None:
    """After collection: the modules, fixtures' code and test items imported so far stay for the
    whole run, so they go to the collector's permanent generation (``gc.freeze``: never scanned
    again), and the thresholds become :data:`GC_THRESHOLDS`."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
