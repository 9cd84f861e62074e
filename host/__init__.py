"""legrep host: thigh IMU streams in, hip angle, reps, tempo and per-leg balance out.

Notebook API (numpy arrays in, :class:`~host.model.SessionResult` out)::

    from host import analyze_arrays
    result = analyze_arrays(left=(time_s, acc_g, gyr_dps), right=None)

Imports are lazy so ``import host`` stays cheap.
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
    "Leg": "host.model",
    "ImuBlock": "host.model",
    "Rep": "host.model",
    "SetSummary": "host.model",
    "SessionResult": "host.model",
    "Settings": "host.settings",
    "LegPipeline": "host.pipeline",
    "SessionAnalyzer": "host.pipeline",
    "analyze_arrays": "host.pipeline",
    "LegrepError": "host.errors",
}

if TYPE_CHECKING:
    from host.errors import LegrepError
    from host.model import ImuBlock, Leg, Rep, SessionResult, SetSummary
    from host.pipeline import LegPipeline, SessionAnalyzer, analyze_arrays
    from host.settings import Settings


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'host' has no attribute {name!r}")
