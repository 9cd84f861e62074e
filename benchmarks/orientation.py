"""Inclination accuracy and speed of orientation estimators on BROAD's real IMU + optical data.

    python benchmarks/orientation.py [--broad PATH/TO/broad/data_mat]

BROAD (Laidig, Caruso, Cereatti, Seel 2021, "BROAD - A Benchmark for Robust Inertial Orientation
Estimation", Data 6(7):72, https://doi.org/10.3390/data6070072; CC BY 4.0,
https://github.com/dlaidig/broad). On its undisturbed rotation trials (01-09) and the fast
combined one (21) this prints, per trial, the inclination RMSE over the movement phase (BROAD's
metric: see tests/real_data.py) of

* legrep's orientation stage (``legrep.fusion.orientation.track_gravity``; "not available"
  until it is on main),
* VQF, offline and online, 6-D (Laidig & Seel 2023, ``pip install vqf``),
* x-io Fusion AHRS (``imufusion``), 6-D with its default settings and gyro offset correction,

and each method's speed (million samples per second, all in this one run).

Which comparison is causal: legrep's stage is a causal (online) filter from the first rest of
at least 0.5 s on; only samples before that rest are estimated backward from it, and every BROAD
trial starts with a rest before its movement phase, so over the scored phase legrep is causal.
Its like-for-like rival is **VQF online**; VQF offline looks forward and back over the whole
recording (a bound no live filter can reach) and is printed for reference. Without ``--broad``
(a checkout's ``data_mat`` folder with the .mat files) it uses the excerpts bundled in
tests/data/real/broad/ (45 s of 3 trials).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from real_data import BROAD, BroadTrial, inclination_rmse_deg, load_broad_excerpt, load_broad_mat, up_from_quat  # noqa: E402

TRIALS = (
    "01_undisturbed_slow_rotation_A", "02_undisturbed_slow_rotation_B", "03_undisturbed_slow_rotation_C",
    "04_undisturbed_slow_rotation_with_breaks_A", "05_undisturbed_slow_rotation_with_breaks_B",
    "06_undisturbed_fast_rotation_A", "07_undisturbed_fast_rotation_B",
    "08_undisturbed_fast_rotation_with_breaks_A", "09_undisturbed_fast_rotation_with_breaks_B",
    "21_undisturbed_fast_combined",
)

Method = Callable[[BroadTrial], np.ndarray]


# The same stage as it was configured before two low-pass stages of 1 s and the motion
# gyro-bias estimate became the defaults (the Settings fields that changed): one stage of 3 s
# (VQF's tauAcc), no bias estimate while moving. Kept as a column to show what the change did.
CANDIDATE = {"tau_acc_s": 3.0, "tau_acc2_s": 0.0, "bias_motion_tau_s": 0.0}
# The stage without the slower low-pass at a movement's onset after a long rest and without the
# rest windows' trimmed end (reference.py, steps 2b and 6): what those two did.
NO_ONSET = {"onset_tau_acc_s": 0.0, "bias_trim_s": 0.0}


def legrep_stage(changes: dict[str, float] | None = None) -> Method | None:
    try:
        from legrep.fusion.orientation import track_gravity  # type: ignore[import-not-found, unused-ignore]
        from legrep.settings import Settings
    except ImportError:
        return None
    try:
        settings = Settings(**(changes or {}))
    except TypeError:  # a branch without these fields
        return None
    return lambda tr: np.asarray(track_gravity(tr.gyr_dps, tr.acc_g, tr.rate_hz, settings))


def vqf_offline(tr: BroadTrial) -> np.ndarray:
    from vqf import offlineVQF

    out = offlineVQF(np.ascontiguousarray(tr.gyr_rps), np.ascontiguousarray(tr.acc_mps2), None, 1.0 / tr.rate_hz)
    return up_from_quat(out["quat6D"])


def vqf_online(tr: BroadTrial) -> np.ndarray:
    from vqf import VQF

    out = VQF(1.0 / tr.rate_hz).updateBatch(np.ascontiguousarray(tr.gyr_rps), np.ascontiguousarray(tr.acc_mps2))
    return up_from_quat(out["quat6D"])


def imufusion_ahrs(tr: BroadTrial) -> np.ndarray:
    import imufusion

    rate = int(round(tr.rate_hz))
    ahrs = imufusion.Ahrs()
    settings = imufusion.AhrsSettings()
    # The library's defaults (gain 0.5, NWU; only "up" is scored). x-io's example settings
    # (acceleration rejection 10 deg, 5 s timeout) scored worse here: 2.8 deg mean vs 1.7.
    settings.sample_rate = rate
    ahrs.set_settings(settings)
    ahrs.set_sample_period(1.0 / tr.rate_hz)
    bias = imufusion.Bias()
    bs = imufusion.BiasSettings()
    bs.sample_rate = rate
    bias.set_settings(bs)
    q = np.empty((tr.gyr_dps.shape[0], 4))
    for i, (g, a) in enumerate(zip(tr.gyr_dps, tr.acc_g)):
        ahrs.update_no_magnetometer(bias.update(g), a)
        q[i] = ahrs.get_quaternion()
    return up_from_quat(q)


def load(args: argparse.Namespace) -> tuple[list[BroadTrial], str]:
    if args.broad:
        folder = Path(args.broad)
        found = [folder / f"{n}.mat" for n in TRIALS if (folder / f"{n}.mat").exists()]
        if not found:
            raise SystemExit(f"expected BROAD .mat files ({TRIALS[0]}.mat ...) in {folder}, found none")
        return [load_broad_mat(p) for p in found], f"full BROAD trials from {folder}"
    return [load_broad_excerpt(p) for p in sorted(BROAD.glob("*.csv.gz"))], "bundled excerpts (tests/data/real/broad, 45 s each)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--broad", default="", help="BROAD's data_mat folder (default: the bundled excerpts)")
    args = ap.parse_args()
    trials, source = load(args)
    methods: dict[str, Method | None] = {
        "legrep track_gravity": legrep_stage(),
        "legrep no onset/trim": legrep_stage(NO_ONSET),
        "legrep one 3 s stage": legrep_stage(CANDIDATE),
        "VQF offline 6D": vqf_offline,
        "VQF online 6D": vqf_online,
        "imufusion AHRS": imufusion_ahrs,
    }
    print(f"BROAD inclination RMSE (deg) over the movement phase; {source}")
    print(f"{'trial':44s}" + "".join(f"{m:>22s}" for m in methods))
    seconds = {m: 0.0 for m in methods}
    samples = 0
    rmse: dict[str, list[float]] = {m: [] for m in methods}
    for tr in trials:
        samples += tr.gyr_rps.shape[0]
        row = f"{tr.name:44s}"
        for m, fn in methods.items():
            if fn is None:
                row += f"{'not available':>22s}"
                continue
            t0 = time.perf_counter()
            up = fn(tr)
            seconds[m] += time.perf_counter() - t0
            rmse[m].append(inclination_rmse_deg(up, tr))
            row += f"{rmse[m][-1]:22.3f}"
        print(row)
    print(f"{'mean':44s}" + "".join(f"{np.mean(v):22.3f}" if v else f"{'not available':>22s}" for v in rmse.values()))
    online = rmse["VQF online 6D"]
    print(f"{'trials worse than VQF online':44s}" + "".join(
        f"{sum(a > b for a, b in zip(v, online)):22d}" if v else f"{'-':>22s}" for v in rmse.values()))
    print(f"{'speed (M samples/s)':44s}" + "".join(
        f"{samples / seconds[m] / 1e6:22.2f}" if methods[m] is not None else f"{'-':>22s}" for m in methods))
    print("causal: legrep's columns (from the first rest on), VQF online, imufusion; not causal: VQF offline")
    print("legrep no onset/trim: the same stage with " + ", ".join(f"{k}={v:g}" for k, v in NO_ONSET.items()))
    print("legrep one 3 s stage: the same stage with " + ", ".join(f"{k}={v:g}" for k, v in CANDIDATE.items()))
    if methods["legrep track_gravity"] is None:
        print("legrep.fusion.orientation.track_gravity is not on this branch yet: legrep's column is not available")
    return 0


if __name__ == "__main__":
    sys.exit(main())
