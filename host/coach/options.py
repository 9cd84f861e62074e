"""The coaching options of ``capture``, ``demo`` and ``replay --realtime``, and the sink they build.

    --voice [counts|cues|all]   speak on the default sound device (default all)
    --voice-wav FILE            write what would have been said to FILE (+ FILE.txt)
    --web [HOST:]PORT           serve the live phone page (127.0.0.1 unless HOST says otherwise)
    --target-deg DEG            the gauge's target zone (default 90)
    --reps-per-leg N, --sets N  the routine: what remains, "switch legs", "done"
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, TextIO

from ..model import Leg
from ..settings import Settings
from .cues import DEFAULT_TARGET_DEG, Coach, Targets, VoiceMode
from .sink import CoachSink


def add_coach_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("coaching (voice, phone page, targets)")
    group.add_argument(
        "--voice", nargs="?", const="all", default=None, metavar="WHAT",
        help="speak counts and cues on the default sound device: counts, cues or all (default all); needs espeak-ng",
    )  # fmt: skip
    group.add_argument("--voice-wav", metavar="FILE", help="write everything the voice would say to FILE (WAV) and FILE.txt")
    group.add_argument(
        "--web", metavar="[HOST:]PORT",
        help="serve the live page for a phone on PORT (127.0.0.1; 0.0.0.0:PORT for the local network, with a token)",
    )  # fmt: skip
    group.add_argument("--target-deg", type=float, default=DEFAULT_TARGET_DEG, metavar="DEG",
                       help="target hip angle shown on the page's gauge (default %(default)g)")  # fmt: skip
    group.add_argument("--reps-per-leg", type=int, metavar="N", help="reps per leg in each set (announces 'switch legs')")
    group.add_argument("--sets", type=int, metavar="N", help="sets planned (announces 'done' after the last)")


def wants_coaching(args: argparse.Namespace) -> bool:
    return any(getattr(args, name, None) is not None for name in ("voice", "voice_wav", "web", "reps_per_leg", "sets"))


def targets_of(args: argparse.Namespace) -> Targets:
    """The routine from the options (raises InputError with a one-line message)."""
    return Targets(
        reps_per_leg=getattr(args, "reps_per_leg", None),
        sets=getattr(args, "sets", None),
        target_deg=float(getattr(args, "target_deg", DEFAULT_TARGET_DEG)),
    )


def build_coaching(
    args: argparse.Namespace,
    legs: Sequence[Leg] | None = None,
    settings: Settings | None = None,
    out: TextIO | None = None,
) -> CoachSink | None:
    """The coaching sink the options ask for (None when none is asked for).

    Everything that can fail (speech engine, sound device, busy port, bad values) fails here, before
    the session starts, with one line (:class:`~legrep.errors.LegrepError`). The page's URL is
    printed to ``out``. ``legs`` None: the session's legs, from its first snapshot.
    """
    if not wants_coaching(args):
        return None
    targets = targets_of(args)
    mode = VoiceMode.parse(args.voice) if getattr(args, "voice", None) is not None else VoiceMode.ALL
    voices: list[Any] = []
    engine = None
    if getattr(args, "voice_wav", None) or getattr(args, "voice", None) is not None:
        from .voice import EspeakEngine

        engine = EspeakEngine()
    if getattr(args, "voice_wav", None):
        from .wavout import WavRecorder

        voices.append(WavRecorder(args.voice_wav, engine))  # type: ignore[arg-type]
    if getattr(args, "voice", None) is not None:
        from .voice import PlayerOutput, Speaker

        voices.append(Speaker(engine, PlayerOutput()))  # type: ignore[arg-type]
    page = None
    if getattr(args, "web", None):
        from .web import WebPage, parse_web_address

        page = WebPage(parse_web_address(args.web))
        if out is not None:
            note = "" if page.token is None else " (needs the token: keep the URL to yourself)"
            print(f"legrep web: live page at {page.url}{note}", file=out, flush=True)
    def make(session_legs: tuple[Leg, ...]) -> Coach:
        return Coach(session_legs, targets, settings, mode)

    if legs is not None:
        return CoachSink(make(tuple(legs)), voices, page)
    return CoachSink(None, voices, page, make_coach=make)
