"""Typed diagnostics: what each stage reports about a session, and their JSON form.

Every stage returns a frozen value from its ``diagnostics()`` (counts as ``int``, flags as
``bool``, units in names), the session collects them per sensor in a :class:`SensorDiagnostics`
and per session in a :class:`Diagnostics` (``SessionResult.diagnostics``)::

    packets (PacketTracker)        -> LinkDiagnostics          packets_*
    clock (ClockMapper)            -> ClockDiagnostics         clock_*
    vendor decoders                -> WitmotionDiagnostics ... <model>_*  (in VendorDiagnostics)
    calibration                    -> CalibrationDiagnostics   calibration_*, sample_interval_s
    fusion (OrientationFilter)     -> OrientationDiagnostics   gyro_bias_*_dps, gaps, lever_*_m ...
    angle (HipAngleEstimator)      -> MountingDiagnostics      axis_found, axis_*, mount_refits ...
    reps (RepSegmenter)            -> RepDiagnostics           rejected_excursions, fidgets
    pelvis (PelvisTracker)         -> PelvisDiagnostics        first_s, reps_measured, tilt_axis_* ...

:meth:`Diagnostics.to_json` writes the flat per-sensor objects of ``summary.json`` with the keys
legrep always wrote (``{"left": {"samples": ..., "packets_lost_packets": ...}, ...}``) and
:meth:`Diagnostics.from_json` reads them back, including summaries written before the values were
typed (booleans and counts stored as floats; tests/data/diagnostics-bfb0597). Keys it does not
know are kept in :attr:`SensorDiagnostics.extra` and written back unchanged.

This module is a leaf: it imports nothing else of legrep but the error types.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

from .errors import InputError

__all__ = [
    "ArrivalTiming",
    "CalibrationDiagnostics",
    "ClockDiagnostics",
    "DecoderDiagnostics",
    "DeviceTiming",
    "Diagnostics",
    "JsonNumber",
    "LinkDiagnostics",
    "MetaMotionDiagnostics",
    "MountingDiagnostics",
    "MovellaDotDiagnostics",
    "OrientationDiagnostics",
    "PelvisDiagnostics",
    "PolarVerityDiagnostics",
    "RepDiagnostics",
    "SensorDiagnostics",
    "VendorDiagnostics",
    "WitmotionDiagnostics",
    "vec3",
]

Vec3 = tuple[float, float, float]
JsonNumber = Union[int, float, bool]
"""A value of the flat JSON objects (floats may be NaN here; ``summary.json`` writes them null)."""
Flat = dict[str, JsonNumber]

_XYZ = "xyz"


def vec3(values: Iterable[float]) -> Vec3:
    """Three plain floats (from a NumPy array, a tuple...)."""
    x, y, z = (float(v) for v in values)
    return (x, y, z)


def _vec(name: str, unit: str = "") -> tuple[str, str, str]:
    """JSON keys of a 3-vector field: ``_vec("gyro_bias", "_dps")`` -> ``gyro_bias_x_dps`` ..."""
    return (f"{name}_x{unit}", f"{name}_y{unit}", f"{name}_z{unit}")


def _number(value: object, key: str) -> float:
    if value is None:  # summary.json writes NaN and infinities as null
        return math.nan
    if isinstance(value, (int, float)):
        return float(value)
    raise InputError(f"diagnostics: expected a number for {key!r}, got {value!r}")


class _Flat:
    """Mixin: a frozen dataclass whose fields map one-to-one onto flat JSON keys.

    ``_KEYS`` maps each field to its key (or three keys for a 3-vector); a field left out of
    ``_KEYS`` uses its own name. ``_MARK`` is the key whose presence says the group is there.
    """

    __slots__ = ()
    _KEYS: ClassVar[Mapping[str, str | tuple[str, str, str]]] = {}
    _MARK: ClassVar[str] = ""

    @classmethod
    def _keys(cls) -> Iterator[tuple[str, str | tuple[str, str, str], Any]]:
        hints = _hints(cls)
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            yield f.name, cls._KEYS.get(f.name, f.name), hints[f.name]

    def to_json(self) -> Flat:
        """The flat JSON object of this value (the keys ``summary.json`` has always used)."""
        out: Flat = {}
        for name, key, _ in self._keys():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(key, tuple):
                out.update({k: float(v) for k, v in zip(key, value)})
            else:
                out[key] = value
        return out

    @classmethod
    def present_in(cls, data: Mapping[str, object]) -> bool:
        return cls._MARK in data

    @classmethod
    def from_json(cls, data: Mapping[str, object], used: set[str] | None = None) -> Any:
        """Read the value back from a flat JSON object (floats for counts and flags accepted);
        the keys read are added to ``used``. Absent keys take the field's default (or 0)."""
        kwargs: dict[str, Any] = {}
        defaults = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for name, key, hint in cls._keys():
            keys = key if isinstance(key, tuple) else (key,)
            if not any(k in data for k in keys):
                d = defaults[name]
                if d.default is not dataclasses.MISSING:
                    kwargs[name] = d.default
                else:
                    kwargs[name] = _zero(hint)
                continue
            if used is not None:
                used.update(k for k in keys if k in data)
            if isinstance(key, tuple):
                kwargs[name] = tuple(_number(data.get(k), k) for k in key)
            else:
                kwargs[name] = _convert(data[key], hint, key)
        return cls(**kwargs)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _base(hint: Any) -> Any:
    """``int | None`` -> ``int``."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args and typing.get_origin(hint) in (Union, types.UnionType) else hint


def _zero(hint: Any) -> Any:
    base = _base(hint)
    if base is bool:
        return False
    if base is int:
        return 0
    if base is float:
        return math.nan
    return None


def _convert(value: object, hint: Any, key: str) -> Any:
    base = _base(hint)
    number = _number(value, key)
    if base is bool:
        return bool(number)
    if base is int:
        if not math.isfinite(number):
            raise InputError(f"diagnostics: expected a count for {key!r}, got {value!r}")
        return int(number)
    return number


# --------------------------------------------------------------------------- link and clock


@dataclass(frozen=True, slots=True)
class LinkDiagnostics(_Flat):
    """A legrep sensor's packet stream: the frozen snapshot of ``legrep.packets.TrackerStats``
    (``TrackerStats.snapshot()``; each count's meaning is documented there)."""

    received: int = 0
    duplicates: int = 0
    corrupt: int = 0
    reordered: int = 0
    resent_used: int = 0
    late: int = 0
    lost_packets: int = 0
    lost_samples: int = 0
    resend_requests: int = 0
    samples_out: int = 0
    restarts: int = 0

    _KEYS: ClassVar[Mapping[str, str | tuple[str, str, str]]] = {
        n: f"packets_{n}"
        for n in ("received", "duplicates", "corrupt", "reordered", "resent_used", "late", "lost_packets",
                  "lost_samples", "resend_requests", "samples_out", "restarts")
    }  # fmt: skip
    _MARK: ClassVar[str] = "packets_received"


@dataclass(frozen=True, slots=True)
class ClockDiagnostics(_Flat):
    """The sensor clock -> session clock map (``ClockMapper``); the fit's fields only once ready."""

    ready: bool = False
    drift_ppm: float | None = None
    offset_s: float | None = None
    windows: int | None = None
    synced: bool | None = None
    max_correction_s: float | None = None

    _KEYS: ClassVar[Mapping[str, str | tuple[str, str, str]]] = {
        n: f"clock_{n}" for n in ("ready", "drift_ppm", "offset_s", "windows", "synced", "max_correction_s")
    }
    _MARK: ClassVar[str] = "clock_ready"


# --------------------------------------------------------------------------- vendor decoders


@dataclass(frozen=True, slots=True)
class ArrivalTiming(_Flat):
    """Sample times from arrivals (``ArrivalClock``: sensors without timestamps)."""

    time_from_arrival: bool = True
    pullbacks: int = 0
    gaps: int = 0
    lost_estimate: int = 0

    _KEYS: ClassVar[Mapping[str, str | tuple[str, str, str]]] = {
        "pullbacks": "arrival_pullbacks", "gaps": "arrival_gaps", "lost_estimate": "arrival_lost_estimate",
    }  # fmt: skip
    _MARK: ClassVar[str] = "arrival_gaps"


@dataclass(frozen=True, slots=True)
class DeviceTiming(_Flat):
    """Sample times from the sensor's timestamps (``DeviceClockMapper``)."""

    time_from_arrival: bool = False
    latency_spread_s: float = 0.0
    _MARK: ClassVar[str] = "latency_spread_s"


class _Decoder(_Flat):
    """Mixin: a vendor decoder's report; ``MODEL`` is the model name its JSON keys start with."""

    __slots__ = ()
    MODEL: ClassVar[str] = ""

    def to_json(self) -> Flat:
        """The decoder's flat keys (without the model prefix), its timing's first."""
        return _decoder_json(self)


@dataclass(frozen=True, slots=True)
class WitmotionDiagnostics(_Decoder):
    """WitMotion's stream parser: frames read, register replies, bytes skipped while resyncing."""

    MODEL: ClassVar[str] = "witmotion"
    frames: int = 0
    register_frames: int = 0
    skipped_bytes: int = 0
    timing: ArrivalTiming = field(default_factory=ArrivalTiming)


@dataclass(frozen=True, slots=True)
class MovellaDotDiagnostics(_Decoder):
    """Movella DOT: samples, damaged or stale payloads, gaps in its timestamps, repairs."""

    MODEL: ClassVar[str] = "movella-dot"
    samples: int = 0
    bad_payloads: int = 0
    stale_dropped: int = 0
    timestamp_gaps: int = 0
    lost_estimate: int = 0
    timestamps_repaired: int = 0
    timing: DeviceTiming = field(default_factory=DeviceTiming)


@dataclass(frozen=True, slots=True)
class MetaMotionDiagnostics(_Decoder):
    """MetaMotion: accelerometer and gyro samples and how many could not be paired."""

    MODEL: ClassVar[str] = "metamotion"
    time_from_arrival: bool = True
    acc_samples: int = 0
    gyr_samples: int = 0
    unpaired_acc: int = 0
    unpaired_gyr: int = 0
    acc_arrival_gaps: int = 0
    gyr_arrival_gaps: int = 0
    other_messages: int = 0
    bad_messages: int = 0


@dataclass(frozen=True, slots=True)
class PolarVerityDiagnostics(_Decoder):
    """Polar Verity Sense (PMD frames): frames per type, damaged, unsupported or stale ones."""

    MODEL: ClassVar[str] = "polar-verity"
    acc_frames: int = 0
    gyr_frames: int = 0
    bad_frames: int = 0
    unsupported_frames: int = 0
    stale_frames: int = 0
    dropped_acc: int = 0
    factor_assumed: int = 0
    """Frames whose scale factor was missing and taken as 1."""
    timestamps_repaired: int = 0
    start_errors: int = 0
    timing: DeviceTiming = field(default_factory=DeviceTiming)


DecoderDiagnostics = Union[WitmotionDiagnostics, MovellaDotDiagnostics, MetaMotionDiagnostics, PolarVerityDiagnostics]
"""What a vendor decoder reports (``Decoder.diagnostics()``)."""

_DECODERS: tuple[type[_Decoder], ...] = (
    WitmotionDiagnostics, MovellaDotDiagnostics, MetaMotionDiagnostics, PolarVerityDiagnostics,
)  # fmt: skip
_TIMINGS: tuple[type[_Flat], ...] = (ArrivalTiming, DeviceTiming)


def _decoder_json(d: _Flat) -> Flat:
    """A decoder's own keys, its timing's keys after them (the order legrep wrote them in)."""
    out: Flat = {}
    timing = getattr(d, "timing", None)
    if isinstance(timing, _Flat):
        out.update(timing.to_json())
    for name, key, _ in d._keys():
        if name != "timing":
            out[str(key)] = getattr(d, name)
    return out


def _decoder_from_json(cls: type[_Flat], data: Mapping[str, object]) -> tuple[_Flat, set[str]]:
    used: set[str] = set()
    kwargs: dict[str, Any] = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name == "timing":
            timing_cls = hints["timing"]
            kwargs["timing"] = timing_cls.from_json(data, used)
            used.add("time_from_arrival")
        elif f.name in data:
            kwargs[f.name] = _convert(data[f.name], hints[f.name], f.name)
            used.add(f.name)
    return cls(**kwargs), used


@dataclass(frozen=True, slots=True)
class VendorDiagnostics:
    """A vendor sensor's stream (``VendorStream``): its decoder's report and the records it skipped."""

    decoder: DecoderDiagnostics
    time_from_arrival: bool
    """Sample times derived from arrival times (the model sends no timestamps)."""
    bad_records: int = 0

    @property
    def model(self) -> str:
        return self.decoder.MODEL

    def to_json(self) -> Flat:
        out: Flat = {f"{self.model}_{k}": v for k, v in self.decoder.to_json().items()}
        out["time_from_arrival"] = self.time_from_arrival
        out["bad_records"] = self.bad_records
        return out


# --------------------------------------------------------------------------- analysis stages


@dataclass(frozen=True, slots=True)
class CalibrationDiagnostics(_Flat):
    """The rest the sensor was calibrated on."""

    still_s: float
    start_s: float
    sample_interval_s: float | None = None
    """The nominal sample interval found (thighs; the pelvis does not report it)."""

    _KEYS: ClassVar[Mapping[str, str | tuple[str, str, str]]] = {
        "still_s": "calibration_still_s", "start_s": "calibration_start_s",
    }  # fmt: skip
    _MARK: ClassVar[str] = "calibration_start_s"


@dataclass(frozen=True, slots=True)
class OrientationDiagnostics(_Flat):
    """The tilt kernel (``OrientationFilter``): biases, gaps, lever arm, still fraction."""

    gyro_bias_dps: Vec3
    gaps: int
    max_gap_s: float
    bias_updates: int
    acc_bias_g: Vec3
    acc_bias_updates: int
    gap_restarts: int
    lever_m: Vec3
    """Estimated lever arm hip -> sensor, sensor frame, m."""
    still_fraction: float

    _KEYS: ClassVar[Mapping[str, str | tuple[str, str, str]]] = {
        "gyro_bias_dps": _vec("gyro_bias", "_dps"), "acc_bias_g": _vec("acc_bias", "_g"), "lever_m": _vec("lever", "_m"),
    }  # fmt: skip
    _MARK: ClassVar[str] = "still_fraction"


@dataclass(frozen=True, slots=True)
class MountingDiagnostics(_Flat):
    """The hip angle's mounting (``HipAngleEstimator``): the flexion axis and how often it changed."""

    axis_found: bool
    mount_refits: int
    posture_changes: int
    sign_flips: int
    axis: Vec3 | None = None
    """The flexion axis in the sensor frame (unit), once found."""
    neutral_reanchors: int | None = None
    """Times the neutral pose was re-anchored (None in summaries written before legrep counted them)."""

    _KEYS: ClassVar[Mapping[str, str | tuple[str, str, str]]] = {"axis": _vec("axis")}
    _MARK: ClassVar[str] = "axis_found"


@dataclass(frozen=True, slots=True)
class RepDiagnostics(_Flat):
    """The rep segmenter: excursions it did not count."""

    rejected_excursions: int
    """Not anchored, undershoot, too long."""
    fidgets: int
    """Smaller than ``min_rom_deg``."""
    _MARK: ClassVar[str] = "fidgets"


@dataclass(frozen=True, slots=True)
class PelvisDiagnostics(_Flat):
    """The pelvis sensor's stream and the reps it measured (``PelvisTracker``)."""

    first_s: float
    """Time of its first sample (NaN without samples)."""
    last_s: float
    reps_measured: int = 0
    reps_without_pelvis: int = 0
    first_rep_without_pelvis_s: float | None = None
    last_rep_without_pelvis_s: float | None = None
    tilt_axis: Vec3 | None = None

    _KEYS: ClassVar[Mapping[str, str | tuple[str, str, str]]] = {"tilt_axis": _vec("tilt_axis")}
    _MARK: ClassVar[str] = "first_s"


# --------------------------------------------------------------------------- per sensor, per session


@dataclass(frozen=True, slots=True)
class SensorDiagnostics:
    """Everything reported about one sensor (a thigh or the pelvis); a stage it did not pass
    through is None (offline input has no link or clock; a sensor never calibrated no fusion)."""

    samples: int = 0
    """Samples the analysis received."""
    calibration: CalibrationDiagnostics | None = None
    orientation: OrientationDiagnostics | None = None
    mounting: MountingDiagnostics | None = None
    reps: RepDiagnostics | None = None
    pelvis: PelvisDiagnostics | None = None
    link: LinkDiagnostics | None = None
    clock: ClockDiagnostics | None = None
    vendor: VendorDiagnostics | None = None
    samples_time_back: int | None = None
    """Samples dropped live because their time went back (the sensor's clock jumped)."""
    extra: Mapping[str, JsonNumber] = field(default_factory=dict)
    """Keys read from JSON that this version does not know (written back unchanged)."""

    def to_json(self) -> Flat:
        """The flat JSON object (keys in the order legrep has always written them)."""
        out: Flat = {"samples": self.samples}
        if self.pelvis is not None:
            out["first_s"], out["last_s"] = self.pelvis.first_s, self.pelvis.last_s
        for part in (self.calibration, self.orientation, self.mounting, self.reps):
            if part is not None:
                out.update(part.to_json())
        if self.pelvis is not None:
            out.update({k: v for k, v in self.pelvis.to_json().items() if k not in ("first_s", "last_s")})
        for part2 in (self.link, self.clock, self.vendor):
            if part2 is not None:
                out.update(part2.to_json())
        if self.samples_time_back is not None:
            out["samples_time_back"] = self.samples_time_back
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> SensorDiagnostics:
        """Read one sensor's flat object (see the module docstring); InputError for a value that is
        not a number."""
        if not isinstance(data, Mapping):
            raise InputError(f"diagnostics: expected an object of numbers per sensor, got {type(data).__name__}")
        used: set[str] = {"samples", "samples_time_back"}
        parts: dict[str, Any] = {}
        groups: tuple[tuple[str, type[_Flat]], ...] = (
            ("calibration", CalibrationDiagnostics), ("orientation", OrientationDiagnostics),
            ("mounting", MountingDiagnostics), ("reps", RepDiagnostics), ("pelvis", PelvisDiagnostics),
            ("link", LinkDiagnostics), ("clock", ClockDiagnostics),
        )  # fmt: skip
        for name, group in groups:
            if group.present_in(data):
                parts[name] = group.from_json(data, used)
        for decoder in _DECODERS:
            prefix = f"{decoder.MODEL}_"
            own = {k[len(prefix):]: v for k, v in data.items() if k.startswith(prefix)}
            if own:
                value, keys = _decoder_from_json(decoder, own)
                used.update(prefix + k for k in keys)
                parts["vendor"] = VendorDiagnostics(
                    value,  # type: ignore[arg-type]
                    bool(_number(data.get("time_from_arrival", own.get("time_from_arrival")), "time_from_arrival")),
                    int(_number(data.get("bad_records", 0), "bad_records")),
                )
                used.update(("time_from_arrival", "bad_records"))
                break
        extra = {k: v for k, v in data.items() if k not in used}
        for k, v in extra.items():
            if not isinstance(v, (int, float)) and v is not None:
                raise InputError(f"diagnostics: expected a number for {k!r}, got {v!r}")
        tb = data.get("samples_time_back")
        return cls(
            samples=int(_number(data.get("samples", 0), "samples")),
            samples_time_back=None if tb is None else int(_number(tb, "samples_time_back")),
            extra={k: (math.nan if v is None else v) for k, v in extra.items()},  # type: ignore[misc]
            **parts,
        )


@dataclass(frozen=True, slots=True)
class Diagnostics:
    """A session's diagnostics: one :class:`SensorDiagnostics` per sensor place (``"left"``,
    ``"right"``, ``"pelvis"``), in the order the session reported them."""

    sensors: Mapping[str, SensorDiagnostics] = field(default_factory=dict)

    def __getitem__(self, place: str) -> SensorDiagnostics:
        """The sensor at ``place`` (a leg name or a ``Leg``, which is a str)."""
        return self.sensors[str(getattr(place, "value", place))]

    def get(self, place: str) -> SensorDiagnostics | None:
        return self.sensors.get(str(getattr(place, "value", place)))

    def __contains__(self, place: object) -> bool:
        return str(getattr(place, "value", place)) in self.sensors

    def __iter__(self) -> Iterator[str]:
        return iter(self.sensors)

    def __len__(self) -> int:
        return len(self.sensors)

    def items(self) -> Iterator[tuple[str, SensorDiagnostics]]:
        return iter(self.sensors.items())

    def values(self) -> Iterator[SensorDiagnostics]:
        return iter(self.sensors.values())

    def with_sensor(self, place: str, **parts: Any) -> Diagnostics:
        """A copy with the given parts of sensor ``place`` replaced (the sensor added if new)."""
        key = str(getattr(place, "value", place))
        old = self.sensors.get(key, SensorDiagnostics())
        return Diagnostics({**self.sensors, key: dataclasses.replace(old, **parts)})

    def to_json(self) -> dict[str, Flat]:
        """``{place: flat object}`` as ``summary.json``'s ``diagnostics`` (NaN kept as NaN here)."""
        return {k: v.to_json() for k, v in self.sensors.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Diagnostics:
        """Read ``summary.json``'s ``diagnostics`` (any version of legrep); InputError for a shape
        that is not ``{place: {key: number}}``."""
        if not isinstance(data, Mapping):
            raise InputError(f"diagnostics: expected an object per sensor, got {type(data).__name__}")
        return cls({str(k): SensorDiagnostics.from_json(v) for k, v in data.items()})  # type: ignore[arg-type]
