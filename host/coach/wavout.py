"""``--voice-wav FILE``: everything the voice would have said, at the session times it would have.

The cues are kept as they come; when the session closes each is synthesised with the same engine
as the live voice and placed by :func:`~legrep.coach.cues.schedule_speech` (one voice, busy until
its utterance ends; stale and superseded counts dropped exactly as the live speaker drops them),
so the file is what a person would have heard. Sample 0 of the WAV is session time 0.
``FILE.txt`` has one line per utterance: ``time_s<TAB>text`` (the time speech starts).
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

from ..errors import InputError
from .cues import Cue, Spoken, schedule_speech
from .voice import Audio, SpeechEngine


def text_path(wav_path: Path) -> Path:
    """``FILE.txt`` beside ``FILE`` (``voice.wav`` -> ``voice.wav.txt``)."""
    return wav_path.with_name(wav_path.name + ".txt")


class WavRecorder:
    """Collects cues; :meth:`write` renders them (see module docstring).

    Parameters
    ----------
    path : the WAV to write (its directory must exist; an existing file is replaced atomically).
    engine : the speech engine (the live voice's).
    """

    def __init__(self, path: str | Path, engine: SpeechEngine) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise InputError(f"--voice-wav expects a file name, got the directory {self.path}")
        if not self.path.parent.is_dir():
            raise InputError(f"--voice-wav: directory {self.path.parent} does not exist")
        self.engine = engine
        self.cues: list[Cue] = []
        self.spoken: list[Spoken] = []
        self.dropped: list[Cue] = []

    def say(self, cue: Cue) -> None:
        self.cues.append(cue)

    def write(self, end_s: float = 0.0) -> tuple[Path, Path]:
        """Synthesise, schedule and write ``FILE`` and ``FILE.txt``; returns both paths."""
        # each distinct text synthesised once (the engine is deterministic; a session repeats its
        # counts in every set: "left, one" ... once per set)
        by_text: dict[str, Audio] = {}
        for c in self.cues:
            if c.text not in by_text:
                by_text[c.text] = self.engine.synthesize(c.text)
        audio = [by_text[c.text] for c in self.cues]
        rates = {a.rate_hz for a in audio}
        if len(rates) > 1:
            raise InputError(f"speech engine changed sample rate during the session: {sorted(rates)}")
        rate = rates.pop() if rates else 22050
        self.spoken, self.dropped = schedule_speech(self.cues, [a.duration_s for a in audio])
        by_cue = {id(c): a for c, a in zip(self.cues, audio)}
        last = max([s.start_s + s.duration_s for s in self.spoken] + [end_s, 0.0])
        pcm = np.zeros(int(np.ceil(last * rate)) + 1, dtype=np.int16)
        for s in self.spoken:
            clip = by_cue[id(s.cue)].pcm
            i = int(round(s.start_s * rate))
            pcm[i : i + len(clip)] = clip[: len(pcm) - i]  # one voice: utterances never overlap
        tmp = self.path.with_name(self.path.name + ".part")
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm.astype("<i2").tobytes())
        os.replace(tmp, self.path)
        txt = text_path(self.path)
        tmp_txt = txt.with_name(txt.name + ".part")
        tmp_txt.write_text("".join(f"{s.start_s:.3f}\t{s.cue.text}\n" for s in self.spoken), encoding="utf-8")
        os.replace(tmp_txt, txt)
        return self.path, txt
