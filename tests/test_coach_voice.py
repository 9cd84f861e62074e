"""The voice with the real speech engine (espeak-ng): ``demo --voice-wav`` puts each cue in the WAV
at its session time, a lagging engine drops stale counts instead of queueing them, and a missing
engine or sound device is one line that says what to install."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from conftest import BundledDemo
from legrep.cli import main
from legrep.coach.cues import Cue, CueKind, number_words
from legrep.coach.voice import Audio, EspeakEngine, PlayerOutput, Speaker, parse_wav_stream
from legrep.commands.demo import RECORDINGS_DIR
from legrep.errors import MissingToolError
from legrep.model import Leg

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (.ci/run installs it)")
TRUTH = RECORDINGS_DIR / "straight_leg_raise" / "truth.json"
FRAME_S = 0.01
GAP_S = 0.3
"""Pauses inside one utterance are under 0.2 s at the voice's speed (commas, full stops)."""


def speech_segments(path: Path, threshold: float = 200.0) -> tuple[list[tuple[float, float]], int]:
    """Non-silent stretches ``(start_s, end_s)`` of a 16-bit mono WAV: 10 ms frames with RMS over
    ``threshold``, gaps shorter than ``GAP_S`` merged. Decoded with the stdlib ``wave`` module."""
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
    n = int(rate * FRAME_S)
    frames = pcm[: len(pcm) // n * n].reshape(-1, n)
    loud = np.flatnonzero(np.sqrt((frames**2).mean(axis=1)) > threshold)
    segments: list[list[float]] = []
    for i in loud:
        t = i * n / rate
        if segments and t - segments[-1][1] <= GAP_S:
            segments[-1][1] = t + n / rate
        else:
            segments.append([t, t + n / rate])
    return [(a, b) for a, b in segments], rate


@needs_espeak
@pytest.mark.skipif(not TRUTH.exists(), reason="bundled recordings not present")
def test_demo_voice_wav_lines_up_with_its_cues(bundled_demo: BundledDemo) -> None:
    """The shared demo run (tests/conftest.py: virtual time, a link drop, --reps-per-leg 10 --sets 2)."""
    truth = json.loads(TRUTH.read_text())
    assert bundled_demo.code == 0 and bundled_demo.voice_wav is not None, bundled_demo.stderr
    wav = bundled_demo.voice_wav
    lines = [line.split("\t", 1) for line in wav.with_name(wav.name + ".txt").read_text(encoding="utf-8").splitlines()]
    cues = [(float(t), text) for t, text in lines]
    assert cues == sorted(cues)
    segments, _ = speech_segments(wav)
    # one stretch of speech per cue, starting when the cue says (within a frame or two), and no
    # sound anywhere else
    assert len(segments) == len(cues), (segments[:5], cues[:5])
    for (start, end), (t, text) in zip(segments, cues):
        assert abs(start - t) <= 0.03, (start, t, text)
        assert 0.3 <= end - start <= 4.0, (start, end, text)
    # what was said: every rep counted per leg and set, in order, as the bundled truth has them
    counts = [m.groups() for _, text in cues if (m := re.match(r"(left|right), ([a-z-]+)", text))]
    expected = []
    for s in truth["sets"]:
        for leg in ("left", "right"):
            n = sum(1 for r in truth["reps"] if r["leg"] == leg and r["set"] == s["set"])
            expected += [(leg, number_words(k)) for k in range(1, n + 1)]
    assert counts == expected
    texts = [text for _, text in cues]
    assert sum("switch legs" in t for t in texts) == len(truth["sets"])
    uneven = [s for s in truth["sets"] if s["uneven"]]
    assert uneven and texts[-1].startswith(f"set done, ten and {number_words(uneven[-1]['right_reps'])}")
    assert texts[-1].endswith("one more on the right. done")


class FastClock:
    """Wall time run ``rate`` times faster: the Speaker's clock, and every wait of the test (the
    engine's lag, the output's playing, the pauses between cues) in its seconds. The scene is the
    same in these seconds as at ``rate`` 1 and takes 1/rate of the wall time; only the engine's
    real synthesis (a few ms to 50 ms here, even on a loaded machine) looks ``rate`` times slower,
    which is what the test is about (a lagging engine) and leaves the first count fresh."""

    def __init__(self, rate: float = 2.0) -> None:
        self.rate = rate
        self._t0 = time.monotonic()

    def __call__(self) -> float:
        return (time.monotonic() - self._t0) * self.rate

    def sleep(self, duration_s: float) -> None:
        time.sleep(duration_s / self.rate)


class SlowEngine:
    """The real engine, made to lag: each synthesis waits ``lag_s`` more (a loaded machine)."""

    def __init__(self, lag_s: float, clock: FastClock) -> None:
        self.real = EspeakEngine()
        self.lag_s = lag_s
        self.clock = clock
        self.threads: set[int] = set()
        self.texts: list[str] = []

    def synthesize(self, text: str) -> Audio:
        self.threads.add(threading.get_ident())
        self.texts.append(text)
        audio = self.real.synthesize(text)
        self.clock.sleep(self.lag_s)
        return audio


class ClockedOutput:
    """Stands in for the sound card (none exists here): 'plays' for the audio's duration on ``clock``."""

    def __init__(self, clock: FastClock) -> None:
        self.clock = clock
        self.played: list[Audio] = []

    def play(self, audio: Audio) -> None:
        self.played.append(audio)
        self.clock.sleep(audio.duration_s)


@needs_espeak
def test_a_lagging_engine_drops_stale_counts() -> None:
    clock = FastClock()
    engine = SlowEngine(lag_s=0.2, clock=clock)
    output = ClockedOutput(clock)
    speaker = Speaker(engine, output, clock=clock)
    given = []
    for n in range(1, 13):  # a count every 0.1 s: far faster than "left, n" can be said
        cue = Cue(n * 0.1, f"left, {number_words(n)}", CueKind.COUNT, n * 0.1 + 0.5, Leg.LEFT)
        given.append(cue)
        speaker.say(cue)
        clock.sleep(0.1)
    long_cue = Cue(2.0, "set done, ten and nine. one more on the right", CueKind.ROUTINE, 4.0)
    speaker.say(long_cue)
    late = Cue(2.1, "right, one", CueKind.COUNT, 2.6, Leg.RIGHT)
    speaker.say(late)  # arrives while the long announcement is being synthesised or said
    speaker.close(timeout_s=20.0)
    said = [s.cue.text for s in speaker.spoken]
    dropped = [c.text for c in speaker.dropped]
    assert threading.get_ident() not in engine.threads  # synthesis never runs on the caller's thread
    assert said[0] == "left, one"
    numbers = [int(given.index(s.cue)) for s in speaker.spoken if s.cue in given]
    assert numbers == sorted(numbers) and len(numbers) < len(given) / 2  # in order, most dropped
    assert len(said) + len(dropped) == len(given) + 2  # each cue said or dropped, once
    assert len(output.played) == len(said)  # nothing was queued up to be said later
    assert long_cue.text in said  # an announcement may wait up to 2 s
    assert "right, one" in dropped  # stale by the time the voice was free
    assert len(engine.texts) <= len(said) + 2  # stale counts were dropped before synthesis


def test_wav_stream_with_placeholder_sizes() -> None:
    pcm = (np.sin(np.arange(441) / 5) * 1e4).astype(np.int16)
    data = bytearray(Audio(pcm, 22050).wav_bytes())
    data[4:8] = data[40:44] = b"\xff\xff\xff\x7f"  # what a program writing to a pipe puts there
    audio = parse_wav_stream(bytes(data))
    assert audio.rate_hz == 22050 and np.array_equal(audio.pcm, pcm)
    with pytest.raises(ValueError, match="expected a RIFF/WAVE stream"):
        parse_wav_stream(b"ID3\x03 not a wav")


def test_missing_speech_engine_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng on this PATH
    code = main(["demo", "--quiet", "--voice-wav", str(tmp_path / "v.wav")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "speech engine espeak-ng not found" in err[0] and "apt-get install espeak-ng" in err[0]
    assert not (tmp_path / "v.wav").exists()


@needs_espeak
def test_missing_sound_device_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        PlayerOutput()
    except MissingToolError:
        pass
    else:
        pytest.skip("this machine has a sound device: --voice would speak")
    code = main(["demo", "--quiet", "--voice"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert ("no sound device" in err[0] and "connect a speaker" in err[0]) or "install alsa-utils" in err[0]
