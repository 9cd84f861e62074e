"""The orientation stage around a movement's onset after a rest (host/fusion/reference.py, steps 2b and 6).

Synthetic streams with an exact truth: a rest, then a movement that starts by accelerating
without turning much (what picking a sensor up does: BROAD's trials with breaks), or a rest
whose last window holds a light touch before the movement. Each test compares the stage with
the option on and off, so it fails if the option stops doing its work.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from conftest import ROOT  # noqa: F401  (puts the repository on sys.path)

from legrep.fusion.orientation import OrientationFilter
from legrep.settings import Settings

RATE_HZ = 100.0
BIAS_DPS = np.array([0.3, -0.2, 0.1])


def _stream(rates_dps: np.ndarray, push_g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Times, accelerometer (g), gyro (deg/s, with BIAS_DPS) and the true up vector for a thigh
    turning at ``rates_dps`` (N, 3) from flat, with ``push_g`` (N, 3) of acceleration (sensor frame)."""
    n = len(rates_dps)
    dt = 1.0 / RATE_HZ
    up = np.empty((n, 3))
    v = np.array([0.0, 0.0, 1.0])
    for j in range(n):
        ang = np.radians(rates_dps[j]) * dt
        v = v - np.cross(ang, v)
        v /= np.linalg.norm(v)
        up[j] = v
    rng = np.random.default_rng(5)
    acc = up + push_g + rng.normal(0.0, 0.003, (n, 3))
    gyr = rates_dps + BIAS_DPS + rng.normal(0.0, 0.05, (n, 3))
    return np.arange(n) * dt, acc, gyr, up


def _err_deg(up: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip(np.sum(up * truth, axis=1), -1.0, 1.0)))


def _run(settings: Settings, t: np.ndarray, acc: np.ndarray, gyr: np.ndarray) -> tuple[np.ndarray, OrientationFilter]:
    f = OrientationFilter(settings, acc[:50].mean(axis=0), BIAS_DPS, 1.0 / RATE_HZ)
    return f.update(t, acc, gyr)[0], f


def _pick_up(rest_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, slice]:
    """A rest of ``rest_s``, then 1.5 s of a slow turn (20 deg/s about y) while the hand pushes
    the sensor 0.08 g sideways for the first second; returns the stream and the movement's slice."""
    n_rest, n_move = round(rest_s * RATE_HZ), round(1.5 * RATE_HZ)
    rates = np.zeros((n_rest + n_move, 3))
    rates[n_rest:, 1] = 20.0
    push = np.zeros_like(rates)
    push[n_rest : n_rest + round(RATE_HZ), 0] = 0.08
    t, acc, gyr, up = _stream(rates, push)
    return t, acc, gyr, up, slice(n_rest, n_rest + n_move)


def test_a_movement_after_a_long_rest_takes_in_less_of_its_first_acceleration() -> None:
    s = Settings()
    assert s.onset_tau_acc_s > s.tau_acc_s and s.onset_rest_s < 8.0
    t, acc, gyr, truth, move = _pick_up(8.0)
    on, _ = _run(s, t, acc, gyr)
    off, _ = _run(dataclasses.replace(s, onset_tau_acc_s=0.0), t, acc, gyr)
    e_on, e_off = _err_deg(on[move], truth[move]), _err_deg(off[move], truth[move])
    # the 0.08 g push tilts the accelerometer by 4.6 deg; the 1 s + 1 s low-pass takes in over a
    # degree of it by the push's end, the onset's slower one well under half of that
    assert e_off.max() > 0.8
    assert e_on.max() < 0.5 * e_off.max()
    # before the movement (the rest) the two are the same samples
    np.testing.assert_array_equal(on[: move.start], off[: move.start])


def test_a_movement_after_a_short_rest_keeps_the_ordinary_low_pass() -> None:
    # a rep's bottom (here 2 s, under onset_rest_s): the low-pass has not settled there, the
    # accelerometer must keep correcting the gyro
    s = Settings()
    assert s.onset_rest_s > 2.5
    t, acc, gyr, _, _ = _pick_up(2.0)
    on, _ = _run(s, t, acc, gyr)
    off, _ = _run(dataclasses.replace(s, onset_tau_acc_s=0.0), t, acc, gyr)
    np.testing.assert_array_equal(on, off)


def test_a_touch_at_the_end_of_a_rest_does_not_move_the_gyro_bias() -> None:
    # 6.25 s of rest whose last 0.15 s holds a light touch (1 deg/s about x: under every rest
    # threshold), then a turn at 40 deg/s: the bias the movement starts with is the rest's. (The
    # rest windows, 0.8 s every 0.4 s, end at samples 40 k: the touch fills the last 0.15 s of
    # the window ending at sample 640, the movement fails the next one.)
    s = Settings()
    assert round(s.bias_window_s * RATE_HZ) == 80
    n_rest, n_touch, n_move = 625, 15, 20
    rates = np.zeros((n_rest + n_touch + n_move, 3))
    rates[n_rest : n_rest + n_touch, 0] = 1.0
    rates[n_rest + n_touch :, 2] = 40.0
    t, acc, gyr, _ = _stream(rates, np.zeros_like(rates))
    err = {}
    for trim_s in (s.bias_trim_s, 0.0):
        _, f = _run(dataclasses.replace(s, bias_trim_s=trim_s), t, acc, gyr)
        err[trim_s] = float(np.linalg.norm(np.subtract(f.gyro_bias_dps, BIAS_DPS)))
    # without the trim the last rest window takes 0.15 s of 1 deg/s for bias: ~0.06 deg/s off
    assert err[0.0] > 0.03
    assert err[s.bias_trim_s] < 0.3 * err[0.0]
