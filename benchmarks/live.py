"""Live-path figures (printed, not asserted): host CPU, rep latency, memory over a long session;
and the live angle's delay from the sensor to the screen and to the phone page.

    python benchmarks/live.py [--hours 8] [--rate 200]
    python benchmarks/live.py --delay [--delay-s 40]

Two simulated thigh sensors at ``--rate`` Hz; their packets (MTU 247: 18 samples each) are built with
the firmware's own encoder and fed, as records stamped with their arrival time, through the live path
the capture uses (:class:`legrep.live_core.SessionCore`: decode -> tracker -> clock -> analysis), without
the simulated radio. A 3-minute simulated session (two sets) is repeated to make ``--hours``.

Figures and targets:
* host CPU per second of data, % of one core (target < 2 %);
* rep-close-to-event latency: processing time of the packet that closes a rep, median (target < 50 ms);
* resident memory growth from the 10th minute to the end (target < 20 MB).

``--delay``: the demo's real path at speed 1 (simulated firmware behind bumble, the host's BLE stack,
the live loop) for ``--delay-s`` seconds of a simulated session, with the terminal view drawing to
a pseudo-terminal and the phone page open in headless Chromium (tests/cdp.py). For every frame
drawn, the newest sample time it shows is recorded; the delay of a released chunk of angle is the
time the first frame showing it (or a newer sample) was drawn minus the chunk's newest sample time
(session seconds; paint times are mapped to session time through the loop's snapshots).
Also printed: the age of what is on screen at any moment (adds the wait for the next packet and
redraw). Target: <= 100 ms.
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


class DelayProbe:
    """A sink beside the others: the newest sample time per leg as released, and the session time
    <-> wall clock pairs of the loop's snapshots."""

    def __init__(self) -> None:
        self.newest: dict[str, float] = {}
        self.released: list[tuple[float, str, float]] = []
        """(wall s, leg, newest sample time s) per angle chunk released to the sinks."""
        self.pairs: list[tuple[float, float]] = []
        """(wall s, session s) at each snapshot."""

    def angle(self, leg, time_s, angle_deg) -> None:  # noqa: ANN001
        if len(time_s):
            self.newest[leg.value] = float(time_s[-1])
            self.released.append((time.time(), leg.value, float(time_s[-1])))

    def show(self, state) -> None:  # noqa: ANN001
        self.pairs.append((time.time(), float(state.time_s)))

    def rep(self, rep, state) -> None:  # noqa: ANN001
        pass

    def set_closed(self, summary, state) -> None:  # noqa: ANN001
        pass

    def note(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass

    def session_at(self, wall_s: np.ndarray) -> np.ndarray:
        """Session seconds at wall times (from the nearest earlier snapshot; speed 1)."""
        w = np.array([p[0] for p in self.pairs])
        t = np.array([p[1] for p in self.pairs])
        i = np.clip(np.searchsorted(w, wall_s, side="right") - 1, 0, len(w) - 1)
        return t[i] + (wall_s - w[i])


class ScreenProbe:
    """The terminal view drawing to a pseudo-terminal: each flush of a frame to the terminal is
    stamped with the wall time and the newest sample time per leg at that moment
    (``DelayProbe.newest``). A thread drains the other end like a terminal emulator would."""

    def __init__(self, probe: DelayProbe) -> None:
        import os
        import pty
        import threading

        from legrep.view import TerminalView

        self.master, slave = pty.openpty()
        self.probe = probe
        self.frames: list[tuple[float, dict[str, float]]] = []
        screen = self

        class Terminal:
            def __init__(self) -> None:
                self.fh = os.fdopen(slave, "w")

            def write(self, text: str) -> int:
                return self.fh.write(text)

            def flush(self) -> None:
                self.fh.flush()
                screen.frames.append((time.time(), dict(probe.newest)))

            def isatty(self) -> bool:
                return True

            def close(self) -> None:
                self.fh.close()

        self.tty = Terminal()
        self.view = TerminalView(self.tty, ansi=True)  # type: ignore[arg-type]
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        import os

        while True:
            try:
                if not os.read(self.master, 65536):
                    return
            except OSError:
                return

    def angle(self, leg, time_s, angle_deg) -> None:  # noqa: ANN001
        fn = getattr(self.view, "angle", None)
        if fn is not None:
            fn(leg, time_s, angle_deg)

    def show(self, state) -> None:  # noqa: ANN001
        self.view.show(state)

    def rep(self, rep, state) -> None:  # noqa: ANN001
        self.view.rep(rep, state)

    def set_closed(self, summary, state) -> None:  # noqa: ANN001
        self.view.set_closed(summary, state)

    def note(self, text: str) -> None:
        self.view.note(text)

    def close(self) -> None:
        self.view.close()
        self.tty.close()


def delay_figures(name: str, lag_s: np.ndarray) -> str:
    if lag_s.size == 0:
        return f"{name}: nothing to measure (no frames)"
    ms = lag_s * 1000.0
    return f"{name}: median {np.median(ms):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms, max {ms.max():.0f} ms over {ms.size} frames"


def first_shown(chunks: list[tuple[float, float]], frame_wall: np.ndarray, frame_sample: np.ndarray, probe: DelayProbe) -> np.ndarray:
    """Per released chunk (wall s, newest sample s): the first frame drawn at or after its release
    that shows it or a newer sample, as a delay from the sample time (session seconds)."""
    out = []
    for wall, sample in chunks:
        i = int(np.searchsorted(frame_wall, wall - 1e-4))
        later = np.flatnonzero(frame_sample[i:] >= sample - 1e-9)
        if later.size:
            out.append(float(probe.session_at(np.array([frame_wall[i + later[0]]]))[0]) - sample)
    return np.array(out)


def age_at_any_moment(frames_wall: np.ndarray, frames_sample: np.ndarray, probe: DelayProbe) -> np.ndarray:
    """How old the shown angle is at instants every 5 ms (between frames the screen holds still)."""
    grid = np.arange(frames_wall[0], frames_wall[-1], 0.005)
    i = np.searchsorted(frames_wall, grid, side="right") - 1
    return probe.session_at(grid) - frames_sample[i]


def measure_delay(duration_s: float, seed: int) -> int:
    """The ``--delay`` figures (see module docstring)."""
    import asyncio
    import argparse as _argparse

    sys.path.insert(0, str(ROOT / "tests"))
    from cdp import Browser  # tests/cdp.py: Chromium over the DevTools protocol

    from legrep.coach.options import build_coaching
    from legrep.commands.demo import run_demo
    from legrep_sim.peripheral import SignalArrays

    sim = simulate(SessionSpec(sets=(SetSpec(20, 20),), rest_between_sets_s=20.0), seed=seed)
    end = duration_s + 3.0
    programmes = {}
    for leg, sig in sim.signals.items():
        keep = sig.true_time_s <= end
        programmes[leg] = SignalArrays(sig.true_time_s[keep], sig.acc_g[keep], sig.gyr_dps[keep])
    probe = DelayProbe()
    screen = ScreenProbe(probe)
    ns = _argparse.Namespace(web="127.0.0.1:0", voice=None, voice_wav=None, reps_per_leg=None, sets=None, target_deg=90.0)
    coach = build_coaching(ns)
    assert coach is not None and coach.page is not None
    page_url = coach.page.url

    async def run() -> tuple[list[dict], object]:
        async with Browser(390, 844) as browser:
            await coach.page.start()
            page = await browser.page()
            await page.goto(page_url)
            outcome = await run_demo(speed=1.0, programmes=programmes, truth={}, sinks=[probe, screen, coach])
            log = await page.eval("window.legrepLog")
            await coach.page.aclose()
            return log, outcome

    log, outcome = asyncio.run(run())
    screen.close()
    print(f"legrep live angle delay: demo path at speed 1 (BLE stack, 100 Hz, 10 samples per packet), {duration_s:.0f} s of session")
    released = np.array([r[0] for r in probe.released])
    rel_lag = probe.session_at(released) - np.array([r[2] for r in probe.released])
    print("  " + delay_figures("sample -> released to the sinks", rel_lag))
    for leg in ("left", "right"):
        chunks = [(w, t) for w, name, t in probe.released if name == leg]
        frames = [(w, n[leg]) for w, n in screen.frames if leg in n]
        if frames:
            fw = np.array([f[0] for f in frames])
            fs = np.array([f[1] for f in frames])
            print(f"  {leg}: " + delay_figures("sample -> screen (terminal view, pty)", first_shown(chunks, fw, fs, probe)).replace("frames", "chunks"))
            print(f"  {leg}: " + delay_figures("  age of the screen's angle at any moment", age_at_any_moment(fw, fs, probe)).replace("frames", "instants"))
        entries = [e for e in log if e.get("angle_t", {}).get(leg) is not None]
        if entries:
            pw = np.array([e["painted_ms"] / 1000.0 for e in entries])
            ps = np.array([e["angle_t"][leg] for e in entries])
            print(f"  {leg}: " + delay_figures("sample -> page painted (Chromium, SSE)", first_shown(chunks, pw, ps, probe)).replace("frames", "chunks"))
            print(f"  {leg}: " + delay_figures("  age of the page's angle at any moment", age_at_any_moment(pw, ps, probe)).replace("frames", "instants"))
    reps = np.array([lat for _, lat in outcome.live.stats.rep_latency_s])  # type: ignore[attr-defined]
    if reps.size:
        print("  " + delay_figures("rep closed -> count on the sinks", reps).replace("frames", "reps") + " (target <= 300 ms)")
    print("  target: <= 100 ms")
    measure_voice()
    return 0


def measure_voice(n: int = 10, spacing_s: float = 1.2) -> None:
    """Cue -> speech start with the real engine (espeak-ng) and a stand-in sound card that plays
    for the audio's duration: ``n`` counts ``spacing_s`` apart (the pace of fast reps)."""
    from legrep.coach.cues import Cue, CueKind, number_words
    from legrep.coach.voice import EspeakEngine, Speaker
    from legrep.model import Leg

    class Card:
        def play(self, audio) -> None:  # noqa: ANN001
            time.sleep(audio.duration_s)

    speaker = Speaker(EspeakEngine(), Card())
    for k in range(1, n + 1):
        speaker.say(Cue(float(k), f"left, {number_words(k)}", CueKind.COUNT, k + 0.5, Leg.LEFT))
        time.sleep(spacing_s)
    speaker.close()
    lat = np.array([s.start_wall_s - s.given_wall_s for s in speaker.spoken])
    print(f"  voice: cue -> speech starts (espeak-ng synthesis, worker thread): " + delay_figures("", lat).lstrip(": ").replace("frames", "cues")
          + f", {len(speaker.dropped)} dropped (target <= 500 ms)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--delay", action="store_true", help="measure the live angle's delay to the screen and the page")
    parser.add_argument("--delay-s", type=float, default=40.0, help="session seconds for --delay (default 40)")
    args = parser.parse_args(argv)
    if args.delay:
        return measure_delay(args.delay_s, args.seed)
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
    print(f"  analysis: {len(result.reps)} reps in {n_sets} sets; lost packets {sum(d.link.lost_packets for d in result.diagnostics.values() if d.link is not None)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
