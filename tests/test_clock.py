"""ClockMapper: drifting sensor clocks onto one session clock (docs/protocol.md section 6)."""

from __future__ import annotations

import numpy as np
import pytest

from legrep.clock import ClockMapper

RATE = 100
N_PER_PACKET = 10


def simulate_sensor(
    rng: np.random.Generator,
    drift_ppm: float,
    offset_ticks: int,
    duration_s: float,
    start_true_s: float = 0.3,
    latency_min_s: float = 0.004,
    latency_mean_s: float = 0.015,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample ticks, true sample times and per-packet arrival times of a drifting sensor."""
    rate_ticks = 32768 * (1 + drift_ppm * 1e-6)  # sensor ticks per true second
    start_ticks = offset_ticks + int(start_true_s * rate_ticks)
    k = np.arange(int(duration_s * RATE))
    ticks = start_ticks + np.round(k * 32768 / RATE).astype(np.int64)
    true_s = (ticks - offset_ticks) / rate_ticks
    last = true_s[N_PER_PACKET - 1 :: N_PER_PACKET]
    arrival = last + latency_min_s + rng.exponential(latency_mean_s, last.size)
    return ticks, true_s, arrival


def run_mapper(mapper: ClockMapper, ticks: np.ndarray, arrival: np.ndarray, chunk_packets: int = 1) -> np.ndarray:
    out = []
    for p in range(0, arrival.size, chunk_packets):
        for q in range(p, min(p + chunk_packets, arrival.size)):
            mapper.observe_packet(int(ticks[q * N_PER_PACKET + N_PER_PACKET - 1]), float(arrival[q]))
        out.append(mapper.map_ticks(ticks[p * N_PER_PACKET : (p + chunk_packets) * N_PER_PACKET]))
    return np.concatenate(out)


@pytest.mark.parametrize("with_sync", [False, True])
def test_two_sensors_with_opposite_drift_align(with_sync: bool) -> None:
    rng = np.random.default_rng(11)
    duration = 600.0
    t_l, true_l, arr_l = simulate_sensor(rng, +100, 123_456, duration)
    t_r, true_r, arr_r = simulate_sensor(rng, -100, 2**31 + 77, duration, start_true_s=0.35)
    m_l, m_r = ClockMapper(0.0), ClockMapper(0.0)
    if with_sync:
        for m, off, ppm in ((m_l, 123_456, 100), (m_r, 2**31 + 77, -100)):
            for k in range(3):  # three exchanges before START, 20-40 ms round trips
                sent = 0.05 + 0.05 * k
                rtt = 0.02 + 0.01 * k
                at = sent + rtt * rng.uniform(0.3, 0.7)
                m.observe_time_sync(off + int(at * 32768 * (1 + ppm * 1e-6)), sent, sent + rtt)
    s_l = run_mapper(m_l, t_l, arr_l)
    s_r = run_mapper(m_r, t_r, arr_r)
    err_l = s_l - true_l
    err_r = s_r - true_r
    # Monotonic, one sample period apart give or take the slew.
    for s in (s_l, s_r):
        d = np.diff(s)
        assert d.min() > 0.0099 and d.max() < 0.0101
    # Drift recovered to a few ppm (the host sees a fast sensor as negative drift).
    assert m_l.estimate.drift_ppm == pytest.approx(-100, abs=3)
    assert m_r.estimate.drift_ppm == pytest.approx(+100, abs=3)
    # Aligned within 5 ms from 1 minute on, including after 10 minutes (uncorrected: 120 ms apart).
    later = true_l > 60
    common = np.interp(true_l[later], true_r, err_r)
    misalign = np.abs(err_l[later] - common)
    assert misalign.max() < 0.005, misalign.max()
    assert abs(err_l[-1] - err_r[-1]) < 0.005
    if with_sync:  # absolute error too: the sync midpoint is within RTT / 2
        assert np.abs(err_l[later]).max() < 0.012 and np.abs(err_r[later]).max() < 0.012
    else:  # the envelope offset is the smallest latency (4 ms + a little)
        assert 0 < np.median(err_l[later]) < 0.008


def test_deterministic_and_robust_to_late_bursts() -> None:
    rng = np.random.default_rng(12)
    ticks, true_s, arrival = simulate_sensor(rng, 60, 0, 120.0)
    arrival = arrival.copy()
    arrival[300:340] += np.linspace(1.5, 0.0, 40)  # a stall: a burst of late packets
    a = run_mapper(ClockMapper(0.0), ticks, arrival)
    b = run_mapper(ClockMapper(0.0), ticks, arrival)
    assert np.array_equal(a, b)
    err = a - true_s
    assert np.abs(err[true_s > 20] - np.median(err[true_s > 20])).max() < 0.003


def test_map_before_observation_is_an_error() -> None:
    with pytest.raises(ValueError, match="needs a packet or TIME_SYNC"):
        ClockMapper().map_ticks([1, 2, 3])
    with pytest.raises(ValueError, match="received before it was sent"):
        ClockMapper().observe_time_sync(5, 2.0, 1.0)


def test_fit_uses_a_bounded_recent_window() -> None:
    """The refit sees only the last ``fit_span_s``: its cost stays flat over a long session, and a
    drift that changes (a crystal warming up) is followed instead of averaged with the past."""
    rng = np.random.default_rng(13)
    ticks_a, true_a, arr_a = simulate_sensor(rng, +60, 0, 600.0)
    # the second half runs at -60 ppm: continue the ticks from where the first half ended
    rate_ticks = 32768 * (1 - 60e-6)
    k = np.arange(1, int(600.0 * RATE) + 1)
    ticks_b = ticks_a[-1] + np.round(k * 32768 / RATE).astype(np.int64)
    true_b = true_a[-1] + (ticks_b - ticks_a[-1]) / rate_ticks
    last_b = true_b[N_PER_PACKET - 1 :: N_PER_PACKET]
    arr_b = last_b + 0.004 + rng.exponential(0.015, last_b.size)
    ticks, true_s, arrival = np.concatenate([ticks_a, ticks_b]), np.concatenate([true_a, true_b]), np.concatenate([arr_a, arr_b])
    mapper = ClockMapper(0.0, fit_span_s=120.0)
    mapped = run_mapper(mapper, ticks, arrival, chunk_packets=5)
    assert mapper.window_points <= 120.0 / mapper.window_s + 1  # bounded history
    assert mapper.estimate is not None and mapper.estimate.windows > 500  # all windows were seen
    assert mapper.estimate.drift_ppm == pytest.approx(+60, abs=4)  # the recent (second-half) drift
    # still monotonic and continuous, and deterministic
    assert np.diff(mapped).min() > 0
    again = run_mapper(ClockMapper(0.0, fit_span_s=120.0), ticks, arrival, chunk_packets=5)
    assert np.array_equal(mapped, again)
    err = mapped - true_s
    assert np.abs(err[true_s > 1000] - np.median(err[true_s > 1000])).max() < 0.005
    with pytest.raises(ValueError, match="fit_span_s"):
        ClockMapper(fit_span_s=1.0)
