"""One error family for legrep.

Every error inherits :class:`LegrepError` and a built-in type, so callers can
catch either. Messages say what was expected and what arrived, on one line:
the CLI prints ``str(error)`` and exits non-zero, never a traceback.
"""

from __future__ import annotations


class LegrepError(Exception):
    """Base of every error legrep raises on purpose."""


class InputError(LegrepError, ValueError):
    """Input data (a file, an array, a CSV column) is not what legrep expects."""


class CalibrationError(LegrepError, ValueError):
    """The stream does not start with the still neutral pose calibration needs."""


class PacketError(LegrepError, ValueError):
    """A packet or frame from a sensor is malformed (bad length, checksum, field)."""


class RecordingError(LegrepError, ValueError):
    """A session recording cannot be read (truncated header, wrong format)."""


class SensorError(LegrepError, RuntimeError):
    """A sensor or adapter problem a person can act on (not found, out of range...)."""


class MissingToolError(LegrepError, RuntimeError):
    """A program or device an option needs is not there (speech engine, sound device); the message
    names what to install."""
