"""The mounting's axes at an anchoring (C ``level_axis``, ``long_axis_flat``, ``long_axis_from_lever``,
which :mod:`legrep.fusion.angle` calls) against their numpy forms below, bit for bit.

The numpy forms are what ``legrep.fusion.angle`` computed before (``float(a @ b)`` dot products,
``np.linalg.norm``-style norms, elementwise arithmetic): the anchoring's axes, and so every angle
after it, must not change by a bit. Random vectors with the awkward cases mixed in: an axis
parallel to gravity (the flat axis falls back to a basis vector), a lever arm shorter than the
limit, an axis tilted more than 60 deg out of level (kept as it is), ties and NaN.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import ROOT  # noqa: F401  (puts the repository on sys.path)

from legrep._fastcore import level_axis, long_axis_flat, long_axis_from_lever
from legrep.fusion import angle


def _norm(v: np.ndarray) -> float:
    return math.sqrt(float(v.dot(v)))


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array((a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]))


def level_axis_numpy(axis: np.ndarray, up_ref: np.ndarray) -> np.ndarray:
    x = axis - float(axis @ up_ref) * up_ref
    n = _norm(x)
    return axis if not n > 0.5 else x / n


def long_axis_flat_numpy(axis: np.ndarray, up_ref: np.ndarray) -> np.ndarray:
    x = _cross(axis, up_ref)
    n = _norm(x)
    if n > 1e-6:
        return x / n
    y = _cross(axis, np.eye(3)[int(np.argmin(np.abs(axis)))])
    return y / _norm(y)


def long_axis_from_lever_numpy(axis: np.ndarray, up_ref: np.ndarray, lever: np.ndarray, lever_min: float) -> np.ndarray:
    flat = long_axis_flat_numpy(axis, up_ref)
    lev = lever - float(lever @ axis) * axis
    upright = up_ref - float(up_ref @ axis) * axis
    nu = _norm(upright)
    if not (_norm(lev) > lever_min and nu > 1e-6):
        return flat
    upright = upright / nu
    return flat if abs(float(lev @ flat)) >= abs(float(lev @ upright)) else upright


def _same(a: object, b: np.ndarray) -> None:
    got = np.asarray(a, dtype=np.float64)
    assert got.shape == (3,)
    assert got.tobytes() == np.ascontiguousarray(b, dtype=np.float64).tobytes(), (got, b)


def _cases(seed: int, n: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        a = rng.standard_normal(3)
        a = a / np.linalg.norm(a)
        u = rng.standard_normal(3)
        u = u / np.linalg.norm(u)
        if i % 5 == 0:
            u = a * (1.0 + 1e-12)  # parallel: no cross product to speak of
        elif i % 5 == 1:
            u = -a + rng.standard_normal(3) * 1e-8
        lever = rng.standard_normal(3) * (0.01 if i % 3 == 0 else 0.2)
        out.append((a, u, lever))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_axes_match_numpy_forms_bit_for_bit(seed: int) -> None:
    for a, u, lever in _cases(seed, 3000):
        _same(level_axis(a, u), level_axis_numpy(a, u))
        _same(long_axis_flat(a, u), long_axis_flat_numpy(a, u))
        _same(long_axis_from_lever(a, u, lever, 0.05), long_axis_from_lever_numpy(a, u, lever, 0.05))


def test_estimator_helpers_are_the_c_ones() -> None:
    a, u, lever = np.array([0.6, 0.0, 0.8]), np.array([0.0, 0.0, 1.0]), np.array([0.0, 0.2, 0.0])
    _same(angle.level_axis(a, u), level_axis_numpy(a, u))
    _same(angle.long_axis_flat(a, u), long_axis_flat_numpy(a, u))
    _same(angle.long_axis_from_lever(a, u, lever, 0.05), long_axis_from_lever_numpy(a, u, lever, 0.05))
    assert isinstance(angle.level_axis(a, u), np.ndarray)


def test_edge_cases() -> None:
    tilted = np.array([0.1, 0.0, 0.995])  # more than 60 deg out of level: kept as it is
    up = np.array([0.0, 0.0, 1.0])
    _same(level_axis(tilted, up), tilted)
    # a tie in |axis| and an axis along gravity: the first least component's basis vector
    for axis in (np.array([0.0, 0.0, 1.0]), np.array([1.0, 1.0, 0.0]) / math.sqrt(2.0)):
        _same(long_axis_flat(axis, axis), long_axis_flat_numpy(axis, axis))
    # a lever arm shorter than the limit normal to the axis: the flat axis
    axis = np.array([1.0, 0.0, 0.0])
    _same(long_axis_from_lever(axis, up, np.array([0.3, 0.01, 0.0]), 0.05), long_axis_flat_numpy(axis, up))
    # a lever arm along gravity: upright
    _same(long_axis_from_lever(axis, up, np.array([0.0, 0.0, 0.2]), 0.05), np.array([0.0, 0.0, 1.0]))
    nan = np.array([math.nan, 0.0, 1.0])
    got = np.asarray(long_axis_from_lever(nan, up, np.array([0.0, 0.2, 0.0]), 0.05))
    want = long_axis_from_lever_numpy(nan, up, np.array([0.0, 0.2, 0.0]), 0.05)
    assert np.array_equal(np.isnan(got), np.isnan(want)) and np.array_equal(got[~np.isnan(got)], want[~np.isnan(want)])


def test_bad_arguments_are_one_clear_error() -> None:
    with pytest.raises(ValueError, match="axis must be 3 numbers"):
        level_axis([1.0, 2.0], [0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="lever_m must be 3 numbers, got a non-number"):
        long_axis_from_lever([1.0, 0.0, 0.0], [0.0, 0.0, 1.0], ["x", 0.0, 0.0], 0.05)
    with pytest.raises(TypeError, match="expected 4 arguments"):
        long_axis_from_lever([1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.2])  # type: ignore[call-arg]


def test_vectors_are_read_alike_from_arrays_lists_and_views() -> None:
    """A float64 numpy vector is read through its buffer (a fast path): the same numbers as its list,
    for a strided view too; other arrays (float32, another shape, non-native byte order) are read
    as sequences, or refused with the one clear error."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        a, u = rng.standard_normal(3), rng.standard_normal(3)
        want = level_axis(a.tolist(), u.tolist())
        wide = np.repeat(a, 2)[::2]  # (a strided view of the same numbers)
        assert not wide.flags.c_contiguous
        for x in (a, wide, a.astype(">f8")):
            assert level_axis(x, u) == want
        assert level_axis(a.astype(np.float32), u) == level_axis(a.astype(np.float32).tolist(), u.tolist())
    with pytest.raises(ValueError, match="axis must be 3 numbers"):
        level_axis(np.zeros(4), np.zeros(3))
    with pytest.raises(ValueError, match="up_ref must be 3 numbers"):
        level_axis(np.zeros(3), np.array(["a", "b", "c"]))
