"""The voice: a speech engine, a sound device, and a speaker thread that never holds up the live loop.

Engine: the ``espeak-ng`` program (Debian package ``espeak-ng``), run once per cue with
``--stdout``, which writes the utterance as WAV. Chosen over a Python binding with care:

* ``pyttsx3`` drives libespeak in-process through ctypes and plays on the device itself: it wants
  to own its thread's event loop, gives no PCM back (so ``--voice-wav`` could not place the same
  audio at session times), and a hang inside the C library would hang legrep;
* ``py-espeak-ng`` and similar packages are thin subprocess wrappers over the same binary and add
  a dependency without adding anything;
* the binary is one short process per cue (about 10 ms for "left, three" on this machine), its
  output is plain PCM we can both play and write, and a crash or hang stays in that process and is
  cut off by a timeout.

Sound device: the WAV goes to ``aplay`` (ALSA, package ``alsa-utils``) or ``paplay`` (PulseAudio /
PipeWire, package ``pulseaudio-utils``), whichever is installed, on the default device; the player
is probed once at start-up so a missing device is one line before the session starts.

The live loop only calls :meth:`Speaker.say`, which appends to a queue under a lock; a worker
thread synthesises and plays. What it says next is decided by :class:`~legrep.coach.cues.SpeechPolicy`
on the wall clock (a person hears in wall seconds): a count that cannot start within
``COUNT_DEADLINE_S`` of its event, or that a newer count superseded, is dropped, never queued.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import shutil
import struct
import subprocess
import threading
import time
import wave
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ..errors import InputError, MissingToolError
from .cues import Cue, SpeechPolicy

logger = logging.getLogger(__name__)

INSTALL_ENGINE = "install espeak-ng (Debian/Ubuntu: apt-get install espeak-ng)"
INSTALL_PLAYER = "install alsa-utils (aplay) or pulseaudio-utils (paplay)"
SYNTH_TIMEOUT_S = 10.0

Int16Array = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class Audio:
    """Mono 16-bit PCM: ``pcm`` (N,) int16 at ``rate_hz``."""

    pcm: Int16Array
    rate_hz: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.rate_hz

    def wav_bytes(self) -> bytes:
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(self.rate_hz)
            w.writeframes(self.pcm.astype("<i2").tobytes())
        return buf.getvalue()


def parse_wav_stream(data: bytes) -> Audio:
    """PCM of a 16-bit mono WAV as a program writes it to a pipe.

    ``espeak-ng --stdout`` cannot seek back to fill in the RIFF and data sizes, so it writes
    0x7FFFFFFF-ish placeholders; the ``wave`` module would trust them. Here the ``fmt `` chunk gives
    the format and everything after the ``data`` header is the samples.

    Raises
    ------
    InputError
        Not a RIFF/WAVE stream of 16-bit mono PCM.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise InputError(f"expected a RIFF/WAVE stream from the speech engine, got {data[:12]!r}")
    pos = 12
    rate = None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if cid == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if fmt != 1 or channels != 1 or bits != 16:
                raise InputError(f"expected 16-bit mono PCM from the speech engine, got format {fmt}, {channels} channel(s), {bits} bits")
        elif cid == b"data":
            if rate is None:
                raise InputError("speech engine WAV has its data before its fmt chunk")
            samples = data[body : body + min(size, len(data) - body)]
            samples = samples[: len(samples) // 2 * 2]
            return Audio(np.frombuffer(samples, dtype="<i2").astype(np.int16), int(rate))
        pos = body + size + (size & 1)
    raise InputError(f"speech engine WAV has no data chunk ({len(data)} bytes)")


class SpeechEngine(Protocol):
    def synthesize(self, text: str) -> Audio: ...


class EspeakEngine:
    """Text to PCM with the ``espeak-ng`` program (see module docstring for why the program).

    Parameters
    ----------
    voice : espeak-ng voice (``-v``), default ``en``.
    speed_wpm : words per minute (``-s``); a little brisk for counts.
    binary : path of espeak-ng (default: found on PATH).

    Raises
    ------
    MissingToolError
        espeak-ng is not installed.
    """

    def __init__(self, voice: str = "en", speed_wpm: int = 190, binary: str | None = None) -> None:
        found = binary or shutil.which("espeak-ng")
        if found is None:
            raise MissingToolError(f"speech engine espeak-ng not found on PATH: {INSTALL_ENGINE}")
        self.binary = found
        self.voice = voice
        self.speed_wpm = speed_wpm

    def synthesize(self, text: str) -> Audio:
        args = [self.binary, "--stdout", "-z", "-v", self.voice, "-s", str(self.speed_wpm), "--", text]
        try:
            done = subprocess.run(args, capture_output=True, timeout=SYNTH_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MissingToolError(f"speech engine {self.binary} failed on {text!r}: {exc}") from None
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip().splitlines()
            raise MissingToolError(f"speech engine {self.binary} exited {done.returncode} on {text!r}: {err[-1] if err else ''}")
        return parse_wav_stream(done.stdout)


class AudioOutput(Protocol):
    def play(self, audio: Audio) -> None:
        """Play and return when done (called from the speaker thread only)."""
        ...


class PlayerOutput:
    """Plays WAV through ``aplay`` or ``paplay`` on the default sound device.

    Raises
    ------
    MissingToolError
        Neither player is installed, or the probe (a tenth of a second of silence) fails: no
        sound device.
    """

    def __init__(self, player: str | None = None) -> None:
        names = (player,) if player else ("paplay", "aplay")
        found = next((p for p in (shutil.which(n) for n in names if n) if p), None)
        if found is None:
            raise MissingToolError(f"no audio player ({' or '.join(n for n in names if n)}) on PATH: {INSTALL_PLAYER}")
        self.player = found
        self._quiet = ["-q"] if found.endswith("aplay") else []
        silence = Audio(np.zeros(2205, dtype=np.int16), 22050)
        err = self._run(silence)
        if err is not None:
            raise MissingToolError(
                f"no sound device: {found} says {err!r}; connect a speaker (or use --voice-wav FILE to write the voice to a file)"
            )

    def _run(self, audio: Audio) -> str | None:
        try:
            done = subprocess.run(
                [self.player, *self._quiet, "-"], input=audio.wav_bytes(), capture_output=True,
                timeout=SYNTH_TIMEOUT_S + audio.duration_s, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        if done.returncode != 0:
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            return lines[-1] if lines else f"exit status {done.returncode}"
        return None

    def play(self, audio: Audio) -> None:
        err = self._run(audio)
        if err is not None:
            logger.warning("sound device: %s", err)


@dataclass(frozen=True, slots=True)
class SpokenLive:
    """A cue the speaker said: ``cue`` as given (session time), wall seconds it was given and began."""

    cue: Cue
    given_wall_s: float
    start_wall_s: float


class Speaker:
    """A worker thread that says cues as they come, dropping the stale ones (see module docstring).

    Parameters
    ----------
    engine : text to audio.
    output : plays audio (blocking, in the worker thread).
    clock : wall seconds (``time.monotonic``), injectable for tests.
    """

    def __init__(self, engine: SpeechEngine, output: AudioOutput, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.output = output
        self.clock = clock
        self.policy = SpeechPolicy()
        self.spoken: list[SpokenLive] = []
        self.errors: list[str] = []
        self._given: dict[int, tuple[Cue, float]] = {}
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="legrep voice", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> list[Cue]:
        """Cues never said (stale or superseded), as given."""
        with self._cond:
            return [self._given[id(c)][0] for c in self.policy.dropped]

    def say(self, cue: Cue) -> None:
        """Queue ``cue`` (returns at once). Its allowance (deadline - time) runs from now, wall time."""
        now = self.clock()
        stamped = dataclasses.replace(cue, time_s=now, deadline_s=now + (cue.deadline_s - cue.time_s))
        with self._cond:
            self._given[id(stamped)] = (cue, now)
            self.policy.push(stamped)
            self._cond.notify()

    def close(self, timeout_s: float = 8.0) -> None:
        """Say what is still fresh, then stop the thread (waits at most ``timeout_s``)."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout_s)

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self.policy.pending and not self._closing:
                    self._cond.wait()
                if not self.policy.pending:
                    return
                cue = self.policy.next(self.clock())
            if cue is None:
                continue
            try:
                audio = self.engine.synthesize(cue.text)
            except Exception as exc:  # the live loop must go on without a voice
                self._fail(exc)
                continue
            with self._cond:
                fresh = self.policy.fresh(cue, self.clock())
                given, given_wall = self._given[id(cue)]
            if not fresh:
                continue
            start = self.clock()
            try:
                self.output.play(audio)
            except Exception as exc:
                self._fail(exc)
                continue
            with self._cond:
                self.spoken.append(SpokenLive(given, given_wall, start))

    def _fail(self, exc: Exception) -> None:
        text = str(exc)
        if text not in self.errors:
            logger.warning("voice: %s", text)
        self.errors.append(text)
