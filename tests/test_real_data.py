"""Real recordings: legrep against data that no simulator made.

BROAD (tests/data/real/broad/, CC BY 4.0): three 45 s excerpts of real IMU data with optical
motion-capture orientation (Laidig et al. 2021). The inclination error of legrep's orientation
stage (``legrep.fusion.orientation.track_gravity``) must stay within stated bounds there; the
bounds are VQF's offline 6-D RMSE on the same excerpt (Laidig & Seel 2023, measured with
``benchmarks/orientation.py``) plus a margin: the issue's target is "no worse than VQF".

Physical Therapy Exercises (tests/data/real/ptex/, Yurtman & Barshan, UCI, CC BY 4.0): 20 real
test sessions (5 subjects x exercises 1, 6, 7, 8, Xsens unit 2, 25 Hz) of 30 raise-and-lower
executions each (10 correct, 10 fast, 10 low-amplitude), few starting with a long still pose.
``legrep analyze``'s pipeline must count exactly 30 in each. The sessions the current algorithm
gets wrong are marked ``xfail(strict=True)`` with what it does, so a fix shows as XPASS.

``test_counts_on_a_local_exercise_corpus`` runs on a local copy of a further corpus that may not
be bundled (tests/data/real/README.md) when ``LEGREP_REAL_EXERCISES`` points at one, and skips
otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from real_data import (
    BROAD,
    PTEX,
    PTEX_REPS,
    inclination_error_deg,
    inclination_rmse_deg,
    load_broad_excerpt,
    load_exercise_corpus,
    load_ptex,
    up_from_quat,
)

EXCERPTS = sorted(p.name.removesuffix(".csv.gz") for p in BROAD.glob("*.csv.gz"))
# VQF offline 6-D inclination RMSE on each excerpt (deg), measured by benchmarks/orientation.py.
VQF_OFFLINE_DEG = {
    "02_undisturbed_slow_rotation_B": 0.29,
    "07_undisturbed_fast_rotation_B": 1.32,
    "21_undisturbed_fast_combined": 1.05,
}
MARGIN_DEG = 0.15


def _qmul(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Hamilton product of (N, 4) quaternions (w, x, y, z)."""
    w1, x1, y1, z1 = p.T
    w2, x2, y2, z2 = q.T
    return np.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2], axis=1)


def test_bundled_broad_excerpts_are_what_the_readme_says() -> None:
    assert EXCERPTS == sorted(VQF_OFFLINE_DEG)
    assert sum(p.stat().st_size for p in BROAD.iterdir()) < 5e6
    readme = (BROAD / "README.md").read_text()
    assert "CC BY 4.0" in readme and "dlaidig/broad" in readme and "7e2f818" in readme
    for name in EXCERPTS:
        tr = load_broad_excerpt(BROAD / f"{name}.csv.gz")
        assert tr.rate_hz == pytest.approx(285.714, abs=0.01)
        assert tr.gyr_rps.shape == tr.acc_mps2.shape == (tr.movement.size, 3)
        assert 0.8 < tr.movement.mean() < 0.95  # 5 s of rest, then the movement phase
        assert not tr.movement[: int(4.9 * tr.rate_hz)].any()
        # At rest the accelerometer points where the optical truth says "up" is.
        rest = slice(0, int(4.0 * tr.rate_hz))
        ok = np.isfinite(tr.opt_quat[rest]).all(axis=1)
        err = inclination_error_deg(tr.acc_mps2[rest][ok], up_from_quat(tr.opt_quat[rest][ok]))
        assert np.median(err) < 2.0


def test_inclination_error_is_broads_definition() -> None:
    """The angle between "up" vectors equals BROAD's inclination error, 2 acos(sqrt(w^2 + z^2)) of
    the earth-frame error quaternion q_imu * inv(q_opt), and ignores any heading offset."""
    rng = np.random.default_rng(3)
    q_opt = rng.normal(size=(500, 4))
    q_opt /= np.linalg.norm(q_opt, axis=1)[:, None]
    err_q = rng.normal(size=(500, 4)) * np.array([1.0, 0.1, 0.1, 0.5])
    err_q /= np.linalg.norm(err_q, axis=1)[:, None]
    q_imu = _qmul(err_q, q_opt)
    d = _qmul(q_imu, q_opt * np.array([1.0, -1.0, -1.0, -1.0]))
    broad = np.degrees(2.0 * np.arccos(np.clip(np.sqrt(d[:, 0] ** 2 + d[:, 3] ** 2), 0.0, 1.0)))
    mine = inclination_error_deg(up_from_quat(q_imu), up_from_quat(q_opt))
    np.testing.assert_allclose(mine, broad, atol=1e-6)
    heading = np.stack([np.cos(0.35 * np.arange(500)), np.zeros(500), np.zeros(500), np.sin(0.35 * np.arange(500))], axis=1)
    np.testing.assert_allclose(inclination_error_deg(up_from_quat(_qmul(heading, q_opt)), up_from_quat(q_opt)), 0.0, atol=1e-6)


@pytest.mark.parametrize("name", EXCERPTS)
def test_vqf_reaches_its_published_accuracy_on_the_excerpts(name: str) -> None:
    """A check of the data and the metric with the reference implementation (bench extra)."""
    vqf = pytest.importorskip("vqf", reason="vqf is in the bench extra")
    tr = load_broad_excerpt(BROAD / f"{name}.csv.gz")
    out = vqf.offlineVQF(np.ascontiguousarray(tr.gyr_rps), np.ascontiguousarray(tr.acc_mps2), None, 1.0 / tr.rate_hz)
    rmse = inclination_rmse_deg(up_from_quat(out["quat6D"]), tr)
    assert rmse == pytest.approx(VQF_OFFLINE_DEG[name], abs=0.02)
    # A gyro-only estimate drifts and a frozen one is far off: the metric can fail.
    frozen = np.tile(up_from_quat(out["quat6D"][:1]), (tr.movement.size, 1))
    assert inclination_rmse_deg(frozen, tr) > 10.0


def _track_gravity():  # type: ignore[no-untyped-def]
    try:
        from legrep.fusion.orientation import track_gravity  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        pytest.skip("legrep.fusion.orientation.track_gravity does not exist yet (the fusion helper adds it)")
    return track_gravity


_FAILING = {
    "21_undisturbed_fast_combined": "fast rotation with translation: 2.19 deg (main, 10:30), VQF's 1.05",
}


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=_FAILING[n])) if n in _FAILING else n for n in EXCERPTS
])
def test_legrep_orientation_stage_is_within_bound_on_broad(name: str) -> None:
    track_gravity = _track_gravity()
    tr = load_broad_excerpt(BROAD / f"{name}.csv.gz")
    up = np.asarray(track_gravity(tr.gyr_dps, tr.acc_g, tr.rate_hz))
    assert up.shape == (tr.movement.size, 3) and np.isfinite(up).all()
    bound = VQF_OFFLINE_DEG[name] + MARGIN_DEG
    rmse = inclination_rmse_deg(up, tr)
    assert rmse <= bound, f"{name}: inclination RMSE {rmse:.3f} deg, bound {bound:.2f} (VQF offline + {MARGIN_DEG})"


def test_counts_on_a_local_exercise_corpus() -> None:
    folder = os.environ.get("LEGREP_REAL_EXERCISES", "")
    if not folder:
        pytest.skip("no licensed thigh-IMU exercise corpus is bundled; set LEGREP_REAL_EXERCISES to a local copy "
                    "(tests/data/real/README.md)")
    from legrep.errors import LegrepError
    from legrep.offline import analyze_arrays

    sets = load_exercise_corpus(Path(folder))
    assert sets, f"expected exercise recordings under {folder}, found none"
    wrong = []
    for s in sets:
        try:
            n = len(analyze_arrays(**{s.leg: (s.time_s, s.acc_g, s.gyr_dps)}).reps)
        except LegrepError as exc:
            wrong.append(f"{s.name}: refused ({str(exc).splitlines()[0]})")
            continue
        if n != s.reps:
            wrong.append(f"{s.name}: counted {n}, labelled {s.reps}")
    assert not wrong, "; ".join(wrong)


# What the algorithm on main did with each session when the corpus was added (10:30, with the
# calibration-anywhere and orientation stages): 16 of 20 exact, four miscounted; s1_e1_u2 (28) is
# counted exactly since held reps lowered to the floor count when the next rise follows at once;
# s2_e8_u2 (31) since a low far below the floor (the limb dropped 128 deg between blocks) starts
# no chain; s3_e1_u2 (30) since a recording that starts with one turn into
# its first rest takes its mounting from that turn (it starts mid-rep: the rest is the top of rep
# 1; before, the top was the neutral pose and every angle read upside down).
_PTEX_WRONG = {
    "s5_e6_u2": "counts 32 of 30: 11 full raise-and-lower excursions (48-180 deg, rests between) in "
                "the correct block and in the low-amplitude one; the label of 10 per block may not "
                "hold for this session",
}
PTEX_FILES = sorted(p.name.removesuffix("_test.csv.gz") for p in PTEX.glob("*.csv.gz"))


def test_bundled_exercise_corpus_is_what_the_readme_says() -> None:
    assert len(PTEX_FILES) == 20 and set(_PTEX_WRONG) <= set(PTEX_FILES)
    readme = (PTEX / "README.md").read_text()
    assert "CC BY 4.0" in readme and "10.24432/C5JK60" in readme and "c4744ba" in readme
    for name in PTEX_FILES:
        s = load_ptex(PTEX / f"{name}_test.csv.gz")
        assert np.allclose(np.diff(s.time_s), 0.04)
        assert 0.9 < np.median(np.linalg.norm(s.acc_g, axis=1)) < 1.1  # m/s^2 converted to g
        assert np.abs(s.gyr_dps).max() > 60.0  # the limb really moves


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=_PTEX_WRONG[n])) if n in _PTEX_WRONG else n
    for n in PTEX_FILES
])
def test_real_exercise_sessions_are_counted_exactly(name: str) -> None:
    from legrep.offline import analyze_arrays

    s = load_ptex(PTEX / f"{name}_test.csv.gz")
    res = analyze_arrays(left=(s.time_s, s.acc_g, s.gyr_dps))
    assert len(res.reps) == PTEX_REPS, f"{name}: counted {len(res.reps)}, labelled {PTEX_REPS}"
    # Every rep is a real excursion: low-amplitude executions still move well past min_rom_deg.
    assert all(r.rom_deg >= 20.0 for r in res.reps)
