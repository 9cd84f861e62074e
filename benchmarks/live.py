"""Live-path figures (printed, not asserted): host CPU, rep latency, memory over a long session.

    python benchmarks/live.py [--hours 8] [--rate 200]

Two simulated thigh sensors at ``--rate`` Hz; their packets (MTU 247: 18 samples each) are built with
the firmware's own encoder and fed, as records stamped with their arrival time, through the live path
the capture uses (:class:`legrep.live_core.SessionCore`: decode -> tracker -> clock -> analysis), without
the simulated radio. A 3-minute simulated session (two sets) is repeated to make ``--hours``.

Figures and targets:
* host CPU per second of data, % of one core (target < 2 %);
* rep-close-to-event latency: processing time of the packet that closes a rep, median (target < 50 ms);
* resident memory growth from the 10th minute to the end (target < 20 MB).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from legrep_sim import protocol as proto  # noqa: E402
from legrep_sim.scenarios import SessionSpec, SetSpec, simulate  # noqa: E402
from legrep.live_core import SensorInfo, SessionCore  # noqa: E402
from legrep.model import Leg  # noqa: E402
from legrep.pipeline import RepClosed  # noqa: E402
from legrep.records import Kind, Record  # noqa: E402

N_PER_PACKET = 18  # MTU 247 (docs/protocol.md section 2)
LATENCY_S = 0.008  # radio + stack latency added to the last sample time (arrival stamp)


def rss_mb() -> float:
    """Resident set size of this process (Linux /proc), MB."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def segment(rate_hz: int, seed: int) -> dict[str, np.ndarray]:
    """One simulated session per leg as raw int16 (N, 6) at 16 g / 2000 dps."""
    sim = simulate(
        SessionSpec(sets=(SetSpec(10, 10), SetSpec(10, 9)), rest_between_sets_s=20.0, rate_hz=float(rate_hz)),
        seed=seed,
    )
    out = {}
    for leg, sig in sim.signals.items():
        acc = np.clip(np.rint(sig.acc_g / (16 / 32768)), -32768, 32767)
        gyr = np.clip(np.rint(sig.gyr_dps / (2000 / 32768)), -32768, 32767)
        out[leg] = np.concatenate([acc, gyr], axis=1).astype(np.int16)
    return out


def status_bytes(leg_code: int, rate_hz: int) -> bytes:
    return proto.encode_status(
        proto.StatusInfo(rate_hz, 16, 2000, leg_code, True, 90, 0, 400, 0, 0)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    rate = args.rate
    seg = segment(rate, args.seed)
    legs = [Leg.LEFT, Leg.RIGHT]
    core = SessionCore(legs, keep_traces=False)
    for i, leg in enumerate(legs):
        info = SensorInfo.make(i, leg, status_bytes(i + 1, rate), name=f"legrep-00B{i}")
        core.process(Record.of_json(Kind.SENSOR, i, 0.0, info.to_json()))
        core.process(Record(Kind.TX, i, 0.0, bytes([proto.Opcode.START])))
        core.process(Record(Kind.RX, i, 0.001, proto.encode_control_reply(proto.Opcode.START, 0, (0).to_bytes(4, "little"))))
    total_s = args.hours * 3600.0
    packet_s = N_PER_PACKET / rate
    n_packets = int(total_s / packet_s)
    seg_len = {leg.value: seg[leg.value].shape[0] for leg in legs}
    cpu_s = 0.0
    latencies: list[float] = []
    rss_at_10min = None
    rss_samples: list[tuple[float, float]] = []
    next_report = 600.0
    cpu_by_hour: dict[int, float] = {}
    gc.collect()
    t_wall = time.perf_counter()
    chunk = 2000
    for start in range(0, n_packets, chunk):
        records = []
        for k in range(start, min(n_packets, start + chunk)):
            first = k * N_PER_PACKET
            ticks = (2 * first * proto.TICKS_PER_S + rate) // (2 * rate)
            last_t = (first + N_PER_PACKET - 1) / rate
            for i, leg in enumerate(legs):
                raw = seg[leg.value]
                idx = (first + np.arange(N_PER_PACKET)) % seg_len[leg.value]
                payload = proto.encode_imu_packet(k, first, ticks, raw[idx])
                records.append(Record(Kind.DATA, i, last_t + LATENCY_S + 0.001 * i, payload))
        for rec in records:
            c0 = time.process_time()
            w0 = time.perf_counter()
            events = core.process(rec)
            w1 = time.perf_counter()
            spent = time.process_time() - c0
            cpu_s += spent
            hour = min(int(rec.t_s // 3600), max(0, int(np.ceil(args.hours)) - 1))
            cpu_by_hour[hour] = cpu_by_hour.get(hour, 0.0) + spent
            if any(isinstance(e, RepClosed) for e in events):
                latencies.append(w1 - w0)
        session_s = records[-1].t_s
        if session_s >= next_report:
            rss = rss_mb()
            rss_samples.append((session_s, rss))
            if rss_at_10min is None:
                rss_at_10min = rss
            next_report += 600.0
    result = core.finish()
    rss_end = rss_mb()
    wall = time.perf_counter() - t_wall
    data_s = n_packets * packet_s
    print(f"legrep live path: 2 sensors x {rate} Hz, {data_s / 3600:.2f} h of data, {n_packets * 2} packets")
    print(f"  host CPU: {100 * cpu_s / data_s:.3f} % of one core (target < 2 %)  [{cpu_s:.1f} s CPU; {wall:.0f} s wall incl. packet encoding]")
    if len(cpu_by_hour) > 1:
        print("  CPU by hour of session: " + ", ".join(f"h{h + 1} {100 * c / 3600:.2f} %" for h, c in sorted(cpu_by_hour.items())))
    if latencies:
        lat = np.asarray(latencies) * 1000
        print(f"  rep-close-to-event latency: median {np.median(lat):.2f} ms, p95 {np.percentile(lat, 95):.2f} ms, max {lat.max():.2f} ms over {lat.size} reps (target median < 50 ms)")
    if rss_at_10min is not None:
        print(f"  memory: RSS {rss_at_10min:.1f} MB at 10 min, {rss_end:.1f} MB at the end: growth {rss_end - rss_at_10min:+.1f} MB (target < 20 MB)")
        print("  RSS by hour: " + ", ".join(f"{t / 3600:.1f} h {m:.0f} MB" for t, m in rss_samples if abs(t / 3600 - round(t / 3600)) < 0.1))
    n_sets = len(result.sets)
    print(f"  analysis: {len(result.reps)} reps in {n_sets} sets; lost packets {sum(int(result.diagnostics[l.value].get('packets_lost_packets', 0)) for l in legs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
