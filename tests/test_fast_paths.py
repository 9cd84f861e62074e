"""Fast paths of the pipeline against their plain numpy specification, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from legrep.fusion.angle import fit_axis, fit_axis_reference


def _stream(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    t = np.cumsum(rng.uniform(0.005, 0.015, n))
    rate = rng.normal(0.0, 1.0, (n, 3)) * rng.choice([0.5, 20.0, 200.0], (n, 1))
    still = np.zeros(n, dtype=bool)
    for _ in range(int(rng.integers(0, 6))):  # still stretches
        a = int(rng.integers(0, n))
        still[a : a + int(rng.integers(1, 200))] = True
    return t, rate, still


@pytest.mark.parametrize("seed", range(40))
def test_fit_axis_equals_its_numpy_specification(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    t, rate, still = _stream(rng, n)
    prev = math.nan if seed % 3 == 0 else float(t[0] - 0.01)
    for thr in (1.0, 30.0, 1e9):
        got, want = fit_axis(t, rate, still, thr, prev), fit_axis_reference(t, rate, still, thr, prev)
        if want is None:
            assert got is None
        else:
            assert got is not None and got[0] == want[0] and got[1].tobytes() == want[1].tobytes()


def test_fit_axis_on_views_and_empty_input() -> None:
    rng = np.random.default_rng(1)
    t, rate, still = _stream(rng, 500)
    assert fit_axis(t[:0], rate[:0], still[:0], 5.0, math.nan) is None
    got, want = fit_axis(t[7:], rate[7:], still[7:], 5.0, float(t[6])), fit_axis_reference(t[7:], rate[7:], still[7:], 5.0, float(t[6]))
    assert got is not None and want is not None and got[0] == want[0] and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("seed", range(10))
def test_window_means_equal_numpy_means(seed: int) -> None:
    from legrep._fastcore import window_means

    rng = np.random.default_rng(100 + seed)
    n_all = int(rng.integers(1, 400))
    x = rng.normal(0.0, 1.0, (n_all, 3)) * 10.0 ** rng.integers(-3, 17, (n_all, 1))  # sums whose order matters
    m = int(rng.integers(0, n_all + 1))
    rest = rng.random(m) < 0.3
    k = int(rng.integers(1, 60))
    out = np.full((m, 3), 7.0)
    window_means(x, rest, k, out)
    off = n_all - m
    for j in range(m):
        want = x[max(0, off + j - k + 1) : off + j + 1].mean(axis=0) if rest[j] else np.full(3, 7.0)
        assert out[j].tobytes() == want.tobytes()


def test_window_means_refuses_bad_arguments() -> None:
    from legrep._fastcore import window_means

    with pytest.raises(ValueError, match="n >= 1"):
        window_means(np.zeros((3, 3)), np.zeros(3, dtype=bool), 0, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="at most 3 rest flags"):
        window_means(np.zeros((3, 3)), np.zeros(4, dtype=bool), 2, np.zeros((4, 3)))


def test_mounting_recalls_the_angles_of_views_only() -> None:
    """A mounting gives rows of the up vectors it last turned into angles the same angles (no second
    pass), and computes anything else afresh: the result is always what tilt_angles gives (a
    mounting not yet in the exercise plane)."""
    from legrep._fastcore import tilt_angles
    from legrep.fusion.angle import Mounting

    rng = np.random.default_rng(3)
    up = rng.normal(0.0, 1.0, (500, 3))
    up /= np.linalg.norm(up, axis=1)[:, None]
    uref = np.broadcast_to(np.array([0.0, 0.0, 1.0]), up.shape).copy()
    quat = np.broadcast_to(np.array([1.0, 0.0, 0.0, 0.0]), (500, 4)).copy()
    axis = np.array([0.0, 1.0, 0.0])
    m = Mounting(axis, None, 2.5, 0.0)

    def fresh(u: np.ndarray, r: np.ndarray) -> np.ndarray:
        out = np.empty(len(u))
        tilt_angles(u, r, axis.tolist(), 2.5, out)
        return out

    whole = m.angles(up, uref, quat)
    assert whole.tobytes() == fresh(up, uref).tobytes()
    for lo, hi in ((0, 500), (17, 300), (499, 500), (120, 121)):
        assert np.shares_memory(m.angles(up[lo:hi], uref[lo:hi], quat[lo:hi]), whole)  # recalled
        assert m.angles(up[lo:hi], uref[lo:hi], quat[lo:hi]).tobytes() == fresh(up[lo:hi], uref[lo:hi]).tobytes()
    other = up[10:200].copy()  # the same numbers elsewhere: computed again
    assert not np.shares_memory(m.angles(other, uref[10:200], quat[10:200]), whole)
    shifted = m.angles(up[10:200], uref[11:201], quat[10:200])  # rows of up with other rows of uref: computed
    assert shifted.tobytes() == fresh(up[10:200], uref[11:201]).tobytes()
    assert not np.shares_memory(m.angles(up[10:200], uref[10:200], quat[11:201]), whole)  # other attitudes
    assert m.angles(up[::2], uref[::2], quat[::2]).tobytes() == fresh(up[::2], uref[::2]).tobytes()
