"""legrep: thigh IMU streams in, hip angle, reps, tempo and per-leg balance out.

Notebook API (numpy arrays in, :class:`~legrep.model.SessionResult` out)::

    from legrep import analyze_arrays
    result = analyze_arrays(left=(time_s, acc_g, gyr_dps), right=None)

Imports are lazy so ``import legrep`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "Leg",
    "ImuBlock",
    "Rep",
    "SetSummary",
    "SessionResult",
    "Settings",
    "LegPipeline",
    "SessionAnalyzer",
    "analyze_arrays",
    "LegrepError",
]

_WHERE = {
    "Leg": "legrep.model",
    "ImuBlock": "legrep.model",
    "Rep": "legrep.model",
    "SetSummary": "legrep.model",
    "SessionResult": "legrep.model",
    "Settings": "legrep.settings",
    "LegPipeline": "legrep.pipeline",
    "SessionAnalyzer": "legrep.pipeline",
    "analyze_arrays": "legrep.offline",
    "LegrepError": "legrep.errors",
}

if TYPE_CHECKING:
    from .errors import LegrepError
    from .model import ImuBlock, Leg, Rep, SessionResult, SetSummary
    from .offline import analyze_arrays
    from .pipeline import LegPipeline, SessionAnalyzer
    from .settings import Settings


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'host' has no attribute {name!r}")
