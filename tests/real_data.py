"""Loaders for the real recordings under tests/data/real/ and the metrics used on them.

BROAD (Laidig et al. 2021, https://doi.org/10.3390/data6070072): real IMU data with optical
motion-capture orientation. The inclination error is the one BROAD's publication defines (the
tilt part of the earth-frame error rotation ``q_imu * inv(q_opt)``, RMS over the samples its
``movement`` mask marks); as that error rotation's tilt is the angle between where the estimate
and the truth put "up" in the sensor frame, it is computed here from up vectors, so a 6-D
estimate (gravity direction only, any heading) is scored the same way as a full quaternion.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
REAL = Path(__file__).resolve().parent / "data" / "real"
BROAD = REAL / "broad"
G_MPS2 = 9.80665


@dataclass(frozen=True, slots=True)
class BroadTrial:
    """One BROAD trial (or an excerpt of one).

    Attributes
    ----------
    name : trial name, e.g. "07_undisturbed_fast_rotation_B".
    rate_hz : sampling rate.
    gyr_rps : (N, 3) angular rate, rad/s, sensor frame.
    acc_mps2 : (N, 3) specific force, m/s^2, sensor frame.
    opt_quat : (N, 4) optical truth (w, x, y, z), sensor-to-ENU; NaN where markers were lost.
    movement : (N,) bool, the samples BROAD scores.
    """

    name: str
    rate_hz: float
    gyr_rps: FloatArray
    acc_mps2: FloatArray
    opt_quat: FloatArray
    movement: npt.NDArray[np.bool_]

    @property
    def gyr_dps(self) -> FloatArray:
        return np.degrees(self.gyr_rps)

    @property
    def acc_g(self) -> FloatArray:
        return self.acc_mps2 / G_MPS2


def load_broad_excerpt(path: str | Path) -> BroadTrial:
    """Read one of the gzipped CSV excerpts in tests/data/real/broad/ (columns in its README)."""
    path = Path(path)
    table = np.loadtxt(path, delimiter=",", skiprows=1)
    t = table[:, 0]
    rate = (t.size - 1) / (t[-1] - t[0])
    name = path.name.removesuffix(".csv.gz")
    return BroadTrial(name, float(rate), table[:, 1:4], table[:, 4:7], table[:, 7:11], table[:, 11] > 0.5)


def load_broad_mat(path: str | Path) -> BroadTrial:
    """Read a full trial from BROAD's ``data_mat/<trial>.mat``."""
    import scipy.io as sio

    d = sio.loadmat(path)
    return BroadTrial(Path(path).stem, float(d["sampling_rate"].item()), np.ascontiguousarray(d["imu_gyr"], dtype=np.float64),
                      np.ascontiguousarray(d["imu_acc"], dtype=np.float64), np.asarray(d["opt_quat"], dtype=np.float64),
                      d["movement"].ravel().astype(bool))


def up_from_quat(q: npt.ArrayLike) -> FloatArray:
    """(N, 3) the earth's up axis (z of ENU or NWU) in the sensor frame, for sensor-to-earth
    unit quaternions ``q`` (N, 4) as (w, x, y, z): the third row of the rotation matrix."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=1)[:, None]
    w, x, y, z = q.T
    return np.stack([2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)], axis=1)


def inclination_error_deg(up_est: npt.ArrayLike, up_true: npt.ArrayLike) -> FloatArray:
    """(N,) angle between two up directions in the sensor frame, degrees (NaN where either is NaN)."""
    a = np.asarray(up_est, dtype=np.float64)
    b = np.asarray(up_true, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=1)[:, None]
    b = b / np.linalg.norm(b, axis=1)[:, None]
    # atan2 of |cross| and dot: accurate for small angles, unlike arccos of the dot product.
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b), axis=1), np.sum(a * b, axis=1)))


def inclination_rmse_deg(up_est: npt.ArrayLike, trial: BroadTrial) -> float:
    """BROAD's inclination RMSE of an up-direction estimate over the trial's movement phase."""
    err = inclination_error_deg(up_est, up_from_quat(trial.opt_quat))[trial.movement]
    return float(np.sqrt(np.nanmean(err**2)))


# --------------------------------------------------------------------------- exercise recordings
EXERCISES_WITH_THIGH_RAISES = ("SqDL", "SqHalfDL", "SumoSq", "BulgSq", "Lunge", "StepUpH")
"""Exercises of the CMU-MBL layout in which each rep raises and lowers the thigh (squats, lunges, step-ups)."""


@dataclass(frozen=True, slots=True)
class ExerciseSet:
    """One set of one exercise with a known number of reps, as one thigh sensor recorded it.

    Attributes
    ----------
    name : "<subject>/<exercise>/<leg>".
    leg : "left" or "right".
    reps : the labelled number of reps.
    time_s : (N,) timestamps; the recording's own clock, so gaps show where it was cut.
    acc_g, gyr_dps : (N, 3) thigh accelerometer and gyroscope.
    """

    name: str
    leg: str
    reps: int
    time_s: FloatArray
    acc_g: FloatArray
    gyr_dps: FloatArray


def _rep_number(path: Path) -> int:
    return int(path.stem.rsplit("rep", 1)[1])


def load_exercise_corpus(folder: Path, exercises: tuple[str, ...] = EXERCISES_WITH_THIGH_RAISES) -> list[ExerciseSet]:
    """Sets from a local copy of CMU-MBL/IMU_Exercise_Prediction's sample data (Phan et al. 2024,
    https://github.com/CMU-MBL/IMU_Exercise_Prediction, commit 79faef5; it carries no licence, so it
    is read from where it lies and never bundled).

    Its ``data/parsed_h5_csv/<subject>/<exercise>/<exercise>_01_rep<k>.csv`` files hold one rep
    each (Xsens: accelerometer m/s^2, gyroscope rad/s, 100 Hz), cut from one recording: they are
    joined in rep order on their own timestamps (the cut-out stretches between reps stay gaps),
    and the number of files is the labelled rep count.
    """
    root = folder / "data" / "parsed_h5_csv" if (folder / "data" / "parsed_h5_csv").is_dir() else folder
    out: list[ExerciseSet] = []
    for subject in sorted(p for p in root.iterdir() if p.is_dir()):
        for exercise in exercises:
            files = sorted((subject / exercise).glob(f"{exercise}_*_rep*.csv"), key=_rep_number)
            if not files:
                continue
            for leg, column in (("left", "LeftThigh"), ("right", "RightThigh")):
                parts = []
                for f in files:
                    with f.open(newline="") as fh:
                        rows = list(csv.reader(fh))
                    i = rows[0].index(column)
                    table = np.asarray([[float(x) for x in r[i : i + 11]] for r in rows[3:] if r[i]], dtype=np.float64)
                    parts.append(table)
                data = np.concatenate(parts)
                order = np.argsort(data[:, 0], kind="stable")
                data = data[order]
                out.append(ExerciseSet(f"{subject.name}/{exercise}/{leg}", leg, len(files), data[:, 0],
                                       data[:, 5:8] / G_MPS2, np.degrees(data[:, 8:11])))
    return out
