"""Real sensors people already own: per-model configuration and decoders.

``MODELS`` maps the ``--sensor`` name to a :class:`SensorModel`: its GATT profile, the writes that
configure, start and stop it, and a decoder factory. Every decoder is I/O free and yields
:class:`~legrep.model.ImuBlock` values (session seconds, g, deg/s), the block form the legrep
decoder produces, so analysis, live view and recording code are shared.

Recordings of a vendor sensor keep each notification as it arrived, prefixed by one byte: the
index of the notifying characteristic in ``model.notify_uuids`` (:func:`encode_notification`).
The SENSOR record stores ``model`` and the :class:`SensorConfig`, so a replay builds the same
decoder (:class:`VendorStream`) and gets the same samples.

``legrep`` itself is listed (``native=True`` in :data:`NATIVE`) so :func:`detect` recognises it,
but its packets go through :mod:`legrep.packets`, not through a decoder here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..diagnostics import SensorDiagnostics, VendorDiagnostics
from ..errors import InputError, RecordingError
from ..model import ImuBlock, Leg
from . import metamotion, movella_dot, polar_verity, witmotion
from ._common import (
    STANDARD_GRAVITY_MPS2,
    ArrivalClock,
    Decoder,
    DeviceClockMapper,
    SensorConfig,
    SensorModel,
    Write,
)

__all__ = [
    "MODELS",
    "NATIVE",
    "SENSOR_NAMES",
    "STANDARD_GRAVITY_MPS2",
    "ArrivalClock",
    "Decoder",
    "DeviceClockMapper",
    "SensorConfig",
    "SensorModel",
    "VendorStream",
    "Write",
    "decode_notification",
    "detect",
    "encode_notification",
    "get_model",
]

MODELS: dict[str, SensorModel] = {
    m.name: m for m in (witmotion.MODEL, movella_dot.MODEL, metamotion.MODEL, polar_verity.MODEL)
}
NATIVE = "legrep"
LEGREP_SERVICE_UUID = "6c656772-6570-4f00-8000-00000000a000"  # docs/protocol.md section 1
LEGREP_NAME_PREFIX = "legrep-"
SENSOR_NAMES: tuple[str, ...] = (NATIVE, *MODELS)


def get_model(name: str) -> SensorModel:
    """The model called ``name`` (InputError listing the known ones otherwise)."""
    try:
        return MODELS[name]
    except KeyError:
        raise InputError(f"sensor model must be one of {list(SENSOR_NAMES)}, got {name!r}") from None


def _adv_fields(advertisement: Any) -> tuple[str, list[str]]:
    if isinstance(advertisement, str):
        return advertisement, []
    if isinstance(advertisement, dict):
        name = advertisement.get("local_name") or advertisement.get("name") or ""
        uuids = advertisement.get("service_uuids") or []
    else:
        name = getattr(advertisement, "local_name", None) or getattr(advertisement, "name", None) or ""
        uuids = getattr(advertisement, "service_uuids", None) or []
    return str(name), [str(u).lower() for u in uuids]


def detect(advertisement: Any) -> str | None:
    """Which model an advertisement comes from: a name in :data:`SENSOR_NAMES`, or None.

    ``advertisement`` is a bleak ``AdvertisementData`` (``local_name``, ``service_uuids``), a dict
    with those keys, or just the advertised name. A service UUID wins over a name prefix.
    """
    name, uuids = _adv_fields(advertisement)
    if LEGREP_SERVICE_UUID in uuids:
        return NATIVE
    for model in MODELS.values():
        if model.service_uuid in uuids:
            return model.name
    if name.startswith(LEGREP_NAME_PREFIX):
        return NATIVE
    for model in MODELS.values():
        if any(name.startswith(p) for p in model.name_prefixes):
            return model.name
    return None


def encode_notification(channel: int, data: bytes | bytearray) -> bytes:
    """A DATA record payload for a vendor sensor: ``[channel u8] + notification bytes``."""
    if not 0 <= channel <= 0xFF:
        raise ValueError(f"channel must be 0..255, got {channel}")
    return bytes([channel]) + bytes(data)


def decode_notification(payload: bytes) -> tuple[int, bytes]:
    """Inverse of :func:`encode_notification` (RecordingError on an empty payload)."""
    if not payload:
        raise RecordingError("vendor DATA record: at least the channel byte expected, got 0 bytes")
    return payload[0], bytes(payload[1:])


def decode_all(model: SensorModel, config: SensorConfig, notifications: Iterable[tuple[int, bytes, float]]) -> ImuBlock | None:
    """Decode ``(channel, data, arrival_s)`` notifications at once into one block (or None)."""
    import numpy as np

    decoder = model.make_decoder(config)
    blocks = [b for b in (decoder.feed(c, d, t) for c, d, t in notifications) if b is not None]
    tail = decoder.flush()
    if tail is not None:
        blocks.append(tail)
    if not blocks:
        return None
    return ImuBlock(
        np.concatenate([b.time_s for b in blocks]),
        np.concatenate([b.acc_g for b in blocks]),
        np.concatenate([b.gyr_dps for b in blocks]),
    )


class VendorStream:
    """A vendor sensor's records -> ImuBlocks: the counterpart of ``legrep.live_core.SensorStream``.

    Same surface (``data``, ``sent``, ``reply``, ``status_record``, ``poll``, ``flush``,
    ``diagnostics``, ``leg``, ``samples``) so ``SessionCore`` can hold either; a vendor sensor's
    control replies arrive as DATA records on their own channel, so ``reply`` is a no-op.
    """

    def __init__(self, leg: Leg, model: SensorModel, config: SensorConfig) -> None:
        self.leg = leg
        self.model = model
        self.config = config
        self.decoder: Decoder = model.make_decoder(config)
        self.packets = 0
        self.samples = 0
        self.bad_records = 0

    def _count(self, block: ImuBlock | None) -> ImuBlock | None:
        if block is not None:
            self.samples += len(block)
        return block

    def data(self, payload: bytes, t_s: float) -> ImuBlock | None:
        try:
            channel, data = decode_notification(payload)
        except RecordingError:
            self.bad_records += 1
            return None
        self.packets += 1
        return self._count(self.decoder.feed(channel, data, t_s))

    def sent(self, request: bytes, t_s: float) -> None:
        return None

    def reply(self, reply: Any, t_s: float) -> ImuBlock | None:
        return None

    def status_record(self, payload: bytes, t_s: float) -> None:
        return None

    def poll(self, t_s: float) -> ImuBlock | None:
        return None

    def flush(self) -> ImuBlock | None:
        return self._count(self.decoder.flush())

    def diagnostics(self) -> SensorDiagnostics:
        """The decoder's report, whether times come from arrivals, and the records skipped."""
        vendor = VendorDiagnostics(self.decoder.diagnostics(), self.model.timestamps == "arrival", int(self.bad_records))
        return SensorDiagnostics(vendor=vendor)
