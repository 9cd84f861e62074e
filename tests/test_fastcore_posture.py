"""The posture fit's C rows (``posture_rows``) against their numpy form, bit for bit.

``measure_posture`` (legrep.exercise) solves its normal equations in numpy from a design matrix
and a residual that C now fills; the fit must not change by a bit, so the C rows are compared
with ``posture_rows_reference`` on random inputs (angles past 180 deg, zero rates, strided rows),
and a bad argument must say what arrived.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT  # noqa: F401  (puts the repository on sys.path)

from legrep._fastcore import posture_rows
from legrep.exercise import posture_rows_reference


def _inputs(seed: int, m: int) -> tuple:
    rng = np.random.default_rng(seed)
    wd = rng.standard_normal((m, 3)) * 2.0
    wd[::7] = 0.0  # still rows
    alpha = rng.standard_normal((m, 3)) * 10.0
    theta = rng.uniform(-4.0, 4.0, m)  # past +-180 deg
    ad = rng.standard_normal((m, 3))
    n = rng.standard_normal(3)
    n /= np.linalg.norm(n)
    f_b = rng.standard_normal(3)
    return wd, alpha, theta, ad, n, f_b


@pytest.mark.parametrize("seed", range(4))
def test_posture_rows_equal_numpy_form(seed: int) -> None:
    wd, alpha, theta, ad, n, f_b = _inputs(seed, 40 + 17 * seed)
    if seed % 2:  # strided rows, as slices of longer arrays arrive
        wd, alpha, ad = (np.repeat(x, 2, axis=0)[::2] for x in (wd, alpha, ad))
    c, sn = np.cos(theta), np.sin(theta)
    w2 = np.einsum("ni,ni->n", wd, wd)
    nf = float(n @ f_b)
    nxf = np.cross(n, f_b)
    g_norm = float(np.linalg.norm(f_b))
    want_design, want_resid = posture_rows_reference(wd, w2, alpha, c, sn, ad, n, f_b, nxf, nf, g_norm)
    design, resid = np.empty(18 * len(wd)), np.empty(3 * len(wd))
    posture_rows(wd, w2, alpha, c, sn, ad, n, f_b, nxf, nf, g_norm, design, resid)
    assert np.array_equal(design.reshape(-1, 6).view(np.int64), want_design.view(np.int64))
    assert np.array_equal(resid.view(np.int64), want_resid.view(np.int64))


def test_posture_rows_bad_arguments_say_what_arrived() -> None:
    wd, alpha, theta, ad, n, f_b = _inputs(0, 10)
    c, sn = np.cos(theta), np.sin(theta)
    w2 = np.einsum("ni,ni->n", wd, wd)
    with pytest.raises(ValueError, match="design_out must have 180 rows"):
        posture_rows(wd, w2, alpha, c, sn, ad, n, f_b, n, 1.0, 1.0, np.empty(10), np.empty(30))
    with pytest.raises(ValueError, match="alpha must have shape"):
        posture_rows(wd, w2, alpha[:, :2], c, sn, ad, n, f_b, n, 1.0, 1.0, np.empty(180), np.empty(30))
