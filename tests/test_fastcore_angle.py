"""The angle stage's C array work against its numpy forms (legrep.fusion.angle_reference), bit for bit.

``plane_angles``, ``level_tests``, ``movement_anchor``, ``movement_sums``, ``rest_angles`` and ``anchor_frame`` replace numpy passes that
``HipAngleEstimator`` made at every decision; the estimator's output must not change by a bit,
so each is compared with its numpy form on random inputs with the awkward cases mixed in (still
runs, a wrap past +-180 deg, corrections beyond the limit, NaN, strided and broadcast rows), and
a carried sum must equal the sum over the whole run (any split of a chunk gives the same numbers).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT  # noqa: F401  (puts the repository on sys.path)

from legrep._fastcore import (
    anchor_frame,
    first_lower_rest,
    level_tests,
    movement_anchor,
    movement_sums,
    plane_angles,
    rest_angles,
    row_offset,
)
from legrep.fusion.angle_reference import (
    anchor_frame_reference,
    first_lower_rest_reference,
    level_tests_reference,
    movement_anchor_reference,
    movement_sums_reference,
    plane_angles_reference,
    rest_angles_reference,
    row_offset_reference,
    turned_reference,
)


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1)[:, None]


def _quat(rng: np.random.Generator, n: int) -> np.ndarray:
    q = rng.standard_normal((n, 4))
    return q / np.linalg.norm(q, axis=1)[:, None]


def _same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    assert np.array_equal(a.view(np.int64), b.view(np.int64)), "not bit-identical"


@pytest.mark.parametrize("seed", range(4))
def test_plane_angles_equal_numpy_form(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    up = _unit(rng, n)
    # small and large differences between the plane and the tilt (clipped or not, wrapped past 180)
    near = up + 0.05 * rng.standard_normal((n, 3))
    u_ref = _unit(rng, n) if seed % 2 else np.broadcast_to(_unit(rng, 1)[0], (n, 3))
    g_ref = near / np.linalg.norm(near, axis=1)[:, None]
    quat = _quat(rng, n)
    axis, long_axis, long_ref, axis_ref = (_unit(rng, 1)[0] for _ in range(4))
    up[5] = np.nan  # a NaN row stays NaN in both
    for offset, lim in ((0.0, 6.0), (170.0, 6.0), (-35.5, 0.5), (12.0, 400.0)):
        want = plane_angles_reference(up, u_ref, g_ref, quat, axis, offset, long_axis, long_ref, axis_ref, lim)
        got = np.empty(n)
        plane_angles(up, u_ref, g_ref, quat, axis.tolist(), offset, long_axis.tolist(), long_ref.tolist(),
                     axis_ref.tolist(), lim, got)
        _same(got, want)
    assert np.isnan(got[5]) and np.isfinite(np.delete(got, 5)).all()
    # strided rows (a view of every other sample) give the same numbers as a copy
    got2 = np.empty(n // 2)
    plane_angles(up[::2], u_ref[::2], g_ref[::2], quat[::2], axis.tolist(), 12.0, long_axis.tolist(),
                 long_ref.tolist(), axis_ref.tolist(), 400.0, got2)
    _same(got2, got[::2])


def _movement(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = rng.standard_normal((n, 3)) * rng.choice([0.3, 20.0, 150.0], size=(n, 1))
    still = np.repeat(rng.random(n // 50 + 1) < 0.4, 50)[:n]  # runs of still samples
    rest = still & (rng.random(n) < 0.2)
    return w, still, rest


_MOVED_CASES = ((0.0, 0.0, 30.0), (412.25, 400.0, 30.0), (5.0, 0.0, 1e9), (0.0, -50.0, 30.0))
"""(rotation count so far, its value at the last anchoring, rotation needed): from zero, carried,
never reached, and an anchoring before the count began."""


@pytest.mark.parametrize("seed", range(4))
def test_movement_anchor_equals_numpy_form(seed: int) -> None:
    """The first rest event allowed by ``ok`` that moved: as the numpy form finds it, for masks that
    allow every event, none, a random few, and only the last; -1 when none qualifies."""
    rng = np.random.default_rng(150 + seed)
    n = 5000
    w, still, rest = _movement(rng, n)
    e = int(rest.sum())
    dt = 0.01
    found = []
    for turned0, anchored, rot in _MOVED_CASES:
        for ok in (np.ones(e, dtype=bool), np.zeros(e, dtype=bool), rng.random(e) < 0.1, np.arange(e) == e - 1):
            want = movement_anchor_reference(w, still, rest, ok, dt, turned0, anchored, rot)
            assert movement_anchor(w, still, rest, ok, dt, turned0, anchored, rot) == want
            found.append(want)
    assert -1 in found and max(found) > 0
    with pytest.raises(ValueError, match="one row per rest event"):
        movement_anchor(w, still, rest, np.ones(e + 1, dtype=bool), dt, 0.0, 0.0, 30.0)


@pytest.mark.parametrize("seed", range(4))
def test_level_tests_equal_numpy_form(seed: int) -> None:
    """The first slip (or far rest) and the re-anchoring rest of one decision level: as the numpy
    form finds them, with the reference rest's ``up . axis`` per event (the calibration rest) or one
    number (a fixed reference rest, its rows broadcast), angles near and far from the reference pose,
    NaN rows, and limits that make every event bad, none, or some."""
    rng = np.random.default_rng(300 + seed)
    n = 3000
    w, still, rest = _movement(rng, n)
    events = np.flatnonzero(rest)
    e = len(events)
    up = _unit(rng, n)
    fixed = seed % 2 == 1
    u_ref = np.broadcast_to(_unit(rng, 1)[0], (n, 3)) if fixed else _unit(rng, n)
    up[:: 7] = u_ref[:: 7] + 0.01 * rng.standard_normal((len(up[:: 7]), 3))  # some rests near the reference
    axis = _unit(rng, 1)[0]
    angle_ev = rng.choice([-3.0, 0.5, 2.0, 30.0, 95.0], size=e) + rng.standard_normal(e)
    along = up[events] @ axis
    ref_along = float(u_ref[0] @ axis) if fixed else u_ref[events] @ axis
    if e > 3:
        angle_ev[2] = np.nan
        up[events[3]] = np.nan
    dt = 0.01
    found = set()
    for offset in (0.0, 1.5, -20.0):
        for zone, posture, slip_sin, far_sin, anchor_sin in ((4.0, 60.0, 0.1, 0.6, 0.05), (1e9, 1e9, 1e9, 1e9, -1.0),
                                                             (-1.0, -1e9, -1.0, -1.0, 2.0), (10.0, 90.0, 0.3, 0.9, 0.2)):
            for turned0, anchored, rot in _MOVED_CASES:
                args = (up, u_ref, angle_ev, along, ref_along, axis, offset, zone, posture, slip_sin, far_sin, anchor_sin,
                        w, still, rest, dt, turned0, anchored, rot)
                want = level_tests_reference(*args)
                got = level_tests(*args[:5], axis.tolist(), *args[6:])
                assert got[:2] == want[:2], (offset, zone, turned0)
                # the anchoring rest's tilt, bit for bit (NaN when there is none)
                assert np.array([got[2]]).view(np.int64) == np.array([want[2]]).view(np.int64) or (
                    np.isnan(got[2]) and np.isnan(want[2]) and (want[1] < 0 or np.isnan(up[events[want[1]]]).any()))
                assert (want[1] < 0) == np.isnan(want[2]) or np.isnan(up[events[want[1]]]).any()
                found.add(want[:2])
    slips, anchors = {f[0] for f in found}, {f[1] for f in found}
    assert -1 in slips and len(slips) > 1 and -1 in anchors and len(anchors) > 1
    assert all(a < 0 or b < 0 for a, b in found)  # (whichever comes first ends the level)
    with pytest.raises(ValueError, match="one row per rest event"):
        level_tests(up, u_ref, np.zeros(e + 1), np.zeros(e + 1), 0.0, axis.tolist(), 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, w,
                    still, rest, dt, 0.0, 0.0, 30.0)
    with pytest.raises(ValueError, match="ref_along must have"):
        level_tests(up, u_ref, np.zeros(e), np.zeros(e), np.zeros(e + 2), axis.tolist(), 0.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                    w, still, rest, dt, 0.0, 0.0, 30.0)


@pytest.mark.parametrize("seed", range(4))
def test_movement_sums_equal_numpy_form_and_carry(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    n = 4000
    w, still, _ = _movement(rng, n)
    dt = 0.01
    cov0 = np.cov(rng.standard_normal((3, 10)))
    for j in (0, 1, 137, n):
        want_t, want_c = movement_sums_reference(w, still, j, dt, 3.5, cov0)
        cov = np.empty((3, 3))
        got_t = movement_sums(w, still, j, dt, 3.5, cov0, cov)
        assert got_t == want_t
        _same(cov, want_c)
    # carried on over a split: the same numbers as one pass
    k = 1234
    c1 = np.empty((3, 3))
    t1 = movement_sums(w, still, k, dt, 3.5, cov0, c1)
    c2 = np.empty((3, 3))
    t2 = movement_sums(w[k:], still[k:], n - k, dt, t1, c1, c2)
    assert t2 == want_t
    _same(c2, want_c)
    assert t2 == float(turned_reference(w, still, dt, 3.5)[-1])


def test_bad_arguments_say_what_arrived() -> None:
    w = np.zeros((4, 3))
    still = np.zeros(4, dtype=bool)
    with pytest.raises(ValueError, match=r"0 <= n <= 4, got 5"):
        movement_sums(w, still, 5, 0.01, 0.0, np.zeros((3, 3)), np.empty((3, 3)))
    with pytest.raises(ValueError, match=r"cov must have 3 rows"):
        movement_sums(w, still, 1, 0.01, 0.0, np.zeros((2, 3)), np.empty((3, 3)))
    with pytest.raises(ValueError, match=r"still must be a bool array"):
        movement_anchor(w, np.zeros(4), still, np.zeros(0, dtype=bool), 0.01, 0.0, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"quat must have shape \(N, 4\)"):
        plane_angles(w, w, w, w, [1, 0, 0], 0.0, [1, 0, 0], [1, 0, 0], [0, 1, 0], 6.0, np.empty(4))


@pytest.mark.parametrize("seed", range(3))
def test_rest_angles_equal_numpy_form(seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    n = 400
    acc = rng.standard_normal((n, 3)) * rng.choice([1e-3, 1.0, 9.8], size=(n, 1))
    acc[7] = 0.0  # a zero mean reads 0
    ref, axis = _unit(rng, 1)[0], _unit(rng, 1)[0]
    for offset in (0.0, -12.5):
        want = rest_angles_reference(acc, ref, axis, offset)
        got = np.empty(n)
        rest_angles(acc, ref.tolist(), axis.tolist(), offset, got)
        _same(got, want)
    assert got[7] == 0.0
    got = np.empty(0)
    rest_angles(np.empty((0, 3)), ref.tolist(), axis.tolist(), 0.0, got)  # no rests


@pytest.mark.parametrize("seed", range(3))
def test_first_lower_rest_equals_numpy_form(seed: int) -> None:
    """The first row holding an accelerometer mean whose rest angle lies in a band: as the numpy form
    finds it, for bands that hold none, every one, or some, and row limits short of the whole array;
    all-zero rows (no mean there) are skipped."""
    rng = np.random.default_rng(400 + seed)
    n = 600
    means = np.zeros((n, 3))
    held = rng.random(n) < 0.1
    means[held] = _unit(rng, int(held.sum())) * rng.uniform(0.9, 1.1, (int(held.sum()), 1))
    rows = np.flatnonzero(held)
    means[rows[1]] = (0.0, -0.0, 1e-300)  # (a tiny mean still counts)
    means[rows[2]] = (-0.0, 0.0, -0.0)  # (a row of zeros of either sign holds none)
    raw_ref, axis = _unit(rng, 1)[0], _unit(rng, 1)[0]
    seen = set()
    for offset in (0.0, 7.5):
        for lo, hi in ((-1e9, 1e9), (-45.0, -2.0), (1e9, -1e9), (-0.5, 0.5), (10.0, 80.0)):
            for limit in (0, 1, int(rows[3]), int(rows[3]) + 1, n // 2, n):
                want = first_lower_rest_reference(means, limit, raw_ref, axis, offset, lo, hi)
                got = first_lower_rest(means, limit, raw_ref, axis.tolist(), offset, lo, hi)
                assert got == want, (offset, lo, hi, limit)
                seen.add(None if want is None else want[0])
    assert None in seen and len(seen) > 3
    with pytest.raises(ValueError, match=r"0 <= n <= 600, got 601"):
        first_lower_rest(means, n + 1, raw_ref, axis.tolist(), 0.0, -1.0, 1.0)


@pytest.mark.parametrize("seed", range(3))
def test_anchor_frame_equals_numpy_form(seed: int) -> None:
    rng = np.random.default_rng(400 + seed)
    for _ in range(200):
        quat, up = _quat(rng, 1)[0], _unit(rng, 1)[0]
        g_ref = None if rng.random() < 0.5 else _unit(rng, 1)[0]
        axis, long = _unit(rng, 1)[0], _unit(rng, 1)[0]
        turn = float(rng.uniform(-120.0, 120.0))
        want = anchor_frame_reference(quat, up, g_ref, axis, long, turn)
        got = anchor_frame(quat.tolist(), up.tolist(), None if g_ref is None else g_ref.tolist(), axis.tolist(),
                           long.tolist(), turn)
        for g, w in zip(got, want):
            _same(np.array(g), np.asarray(w))
        # the results are the frame they claim: unit axes, the long axis normal to the flexion axis
        long_i, f_i = np.array(got[0]), np.array(got[1])
        assert abs(np.linalg.norm(f_i) - 1.0) < 1e-12 and abs(np.linalg.norm(long_i) - 1.0) < 1e-12
        assert abs(float(long_i @ f_i)) < 1e-12


def test_row_offset_matches_reference() -> None:
    """Views of rows give their first row; anything else (another array, a copy, other strides,
    dtype or row shape, rows past the end, a reversed or column view) gives None, as the Python form."""
    rng = np.random.default_rng(11)
    whole = rng.standard_normal((50, 3))
    other = whole.copy()
    flags = rng.random(50) < 0.5
    cases = [
        (whole[7:20], whole), (whole, whole), (whole[7:20], whole[5:]), (whole[5:], whole[7:20]),
        (whole[:0], whole), (whole[49:], whole), (whole[7:20], other), (other[7:20], whole),
        (whole[::2], whole), (whole[::-1], whole), (whole[:, :2], whole), (whole[3:9, 1], whole[:, 1]),
        (whole[3:9].view(np.int64), whole), (whole[10:], whole[:20]), (flags[4:9], flags), (flags[4:9], flags[5:]),
        (whole[7:20][2:], whole[7:]),
    ]
    got = [row_offset(p, w) for p, w in cases]
    assert got == [row_offset_reference(p, w) for p, w in cases]
    assert got[:5] == [7, 0, 2, None, 0] and got[6] is None and got[-1] == 2


def test_norm3_is_numpys_norm() -> None:
    """norm3 (the anchoring's vector norm) gives np.linalg.norm's number for contiguous and strided
    vectors over many magnitudes, zeros, inf and NaN."""
    from legrep.fusion.angle import norm3

    rng = np.random.default_rng(21)
    vs = list(rng.standard_normal((3000, 3)) * 10.0 ** rng.uniform(-9, 9, (3000, 1)))
    vs += [m[:, -1] for m in rng.standard_normal((300, 3, 3))]  # (eigenvector columns: strided)
    vs += [np.zeros(3), -np.zeros(3), np.array([np.inf, 0.0, 1.0]), np.array([np.nan, 1.0, 0.0])]
    want = np.array([float(np.linalg.norm(v)) for v in vs])
    got = np.array([norm3(v) for v in vs])
    assert np.array_equal(want, got, equal_nan=True)
    assert not vs[-300 - 4].flags.c_contiguous
