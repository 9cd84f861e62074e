"""Shared test helpers: simulated sessions and matching detected reps to the simulator's truth."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from legrep.model import ImuBlock, Leg, Rep  # noqa: E402


def blocks_of(session) -> dict[Leg, ImuBlock]:
    """The simulated sensors' samples as pipeline input, per leg."""
    return {
        Leg(name): ImuBlock.from_arrays(sig.time_s, sig.acc_g, sig.gyr_dps) for name, sig in session.signals.items()
    }


def match_reps(found: list[Rep] | tuple[Rep, ...], truth: list, leg: Leg) -> list[tuple[Rep, object]]:
    """Pair detected reps of one leg with true reps whose peak time lies inside them.

    Returns the pairs; unmatched reps on either side show up as a length mismatch.
    """
    mine = [r for r in found if r.leg is leg]
    theirs = [r for r in truth if r.leg == leg.value]
    pairs = []
    used: set[int] = set()
    for r in mine:
        best = None
        for k, tr in enumerate(theirs):
            if k in used:
                continue
            if r.start_s - 0.5 <= tr.peak_s <= r.end_s + 0.5:
                if best is None or abs(tr.peak_s - r.peak_s) < abs(theirs[best].peak_s - r.peak_s):
                    best = k
        if best is not None:
            used.add(best)
            pairs.append((r, theirs[best]))
    return pairs


def mae(values) -> float:
    v = np.asarray(list(values), dtype=float)
    return float(np.mean(np.abs(v))) if len(v) else 0.0


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _private_user_state(tmp_path_factory, monkeypatch):
    """Keep the history database and remembered sensors of every test out of the user's home."""
    home = tmp_path_factory.mktemp("legrep-home")
    monkeypatch.setenv("LEGREP_DB", str(home / "history.db"))
    monkeypatch.setenv("LEGREP_CONFIG", str(home / "sensors.json"))
