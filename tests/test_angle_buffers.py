"""The hip-angle stage's copy-free joins (legrep.fusion.angle: ``_joined``, ``_OutRows``, ``_minus_row``).

``_joined`` must give exactly ``np.concatenate``'s numbers, as a view only when the pieces are
consecutive runs of one array; ``_OutRows`` must never hand out a row twice (a released angle is
never overwritten); ``_minus_row`` must be numpy's broadcast subtraction bit for bit.
"""

from __future__ import annotations

import numpy as np
from conftest import ROOT  # noqa: F401  (puts the repository on sys.path)

from legrep.fusion.angle import _joined, _minus_row, _OutRows


def test_consecutive_runs_join_as_a_view() -> None:
    whole = np.arange(20.0)
    parts = [whole[2:5], whole[5:5], whole[5:11], whole[11:12]]
    got = _joined(parts)
    assert np.array_equal(got, np.concatenate(parts))
    assert np.shares_memory(got, whole) and got.base is whole


def test_other_pieces_are_copied() -> None:
    whole = np.arange(20.0)
    cases = [
        [whole[2:5], whole[6:9]],  # a gap
        [whole[5:8], whole[2:5]],  # out of order
        [whole[2:5], np.arange(3.0)],  # another array
        [whole[0:10:2], whole[10:20:2]],  # strided
    ]
    for parts in cases:
        got = _joined(parts)
        assert np.array_equal(got, np.concatenate(parts))
        assert not np.shares_memory(got, whole)
    flags = np.array([True, False, True, True])
    assert _joined([flags[:1], flags[1:]]).base is flags  # (bool runs too)
    two_d = np.arange(12.0).reshape(4, 3)
    col = [two_d[:2, 0], two_d[2:, 0]]
    assert np.array_equal(_joined(col), np.concatenate(col))


def test_out_rows_are_fresh_and_in_order() -> None:
    rows = _OutRows()
    rows.reserve(10)
    a, b = rows.take(4), rows.take(6)
    a[:] = 1.0
    b[:] = 2.0
    assert _joined([a, b]).base is a.base  # consecutive: joined without a copy
    c = rows.take(3)  # the next rows: a and b untouched
    c[:] = 3.0
    assert not np.shares_memory(c, a) and not np.shares_memory(c, b)
    assert np.all(a == 1.0) and np.all(b == 2.0)
    assert len(rows.take(0)) == 0


def test_minus_row_is_the_broadcast_subtraction() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1000, 3)) * 100.0
    x[7] = (np.nan, np.inf, -0.0)  # (NaN, infinity and a signed zero go through as numpy's subtraction has them)
    v = rng.standard_normal(3)
    for xs in (x, x[::3], np.asfortranarray(x)):
        got = _minus_row(xs, v)
        assert got.shape == xs.shape
        assert got.tobytes() == np.ascontiguousarray(xs - v).tobytes()
