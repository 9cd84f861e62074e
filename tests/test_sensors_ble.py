"""End to end per vendor model: emulated sensors on bumble -> bleak -> host decoder -> reps.

Two emulated sensors of one model (left and right thigh) play a simulated session with a known
number of reps per leg; the host scans by model, connects through bleak's API over the bumble
backend, configures and starts each sensor as the vendor documents, and counts reps. The counts
must equal the simulator's truth exactly; replaying the recorded notifications through
:class:`legrep.sensors.VendorStream` must give the very same samples.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from legrep_sim.emulators import RATES_HZ, make_peripheral
from legrep_sim.peripheral import SimClock
from legrep_sim.scenarios import SessionSpec, SetSpec, simulate
from legrep_sim.virtual_ble import VirtualRadio
from legrep.model import ImuBlock, Leg
from legrep.pipeline import SessionAnalyzer
from legrep.sensors import VendorStream, decode_all, encode_notification, get_model
from legrep.sensors.link import VendorLink, scan_models

SPEED = {"witmotion": 4.0, "metamotion": 4.0, "movella-dot": 8.0, "polar-verity": 8.0}
"""Virtual seconds per wall second. Models without timestamps take times from arrival, so their
emulation runs slower: a loaded CI host must not stall the loop for a large part of a period."""
REPS = {"left": 3, "right": 2}


def _concat(blocks: list[ImuBlock]) -> ImuBlock:
    return ImuBlock(
        np.concatenate([b.time_s for b in blocks]),
        np.concatenate([b.acc_g for b in blocks]),
        np.concatenate([b.gyr_dps for b in blocks]),
    )


async def _session(model_name: str) -> tuple[dict[str, list], dict[str, int], object, dict[str, object]]:
    spec = SessionSpec(
        legs=("left", "right"),
        sets=(SetSpec(REPS["left"], REPS["right"], order="alternating", up_s=1.0, hold_s=0.5, down_s=1.2, bottom_rest_s=0.8),),
        rate_hz=RATES_HZ[model_name],
    )
    sim = simulate(spec, seed=11)
    clock = SimClock(speed=SPEED[model_name])
    radio = VirtualRadio()
    emus = {
        leg: make_peripheral(model_name, radio, sim.signals[leg], clock, index=i) for i, leg in enumerate(("left", "right"))
    }
    links: dict[str, VendorLink] = {}
    try:
        for emu in emus.values():
            await emu.start()
        backends = radio.backends()
        found = await scan_models(5.0, models=(model_name,), scanner_backend=backends.scanner, clock=clock, min_count=2)
        assert len(found) == 2, found
        by_address = {f.address: f for f in found}
        for leg, emu in emus.items():
            links[leg] = VendorLink(by_address[emu.address.upper()].device, model_name, clock=clock, client_backend=backends.client)
            await links[leg].open()
        await clock.sleep(sim.duration_s + 1.0)
        # On a loaded host the loop may run behind: wait (bounded) until every notification the
        # emulators sent has arrived and they have stopped sending.
        last = -1
        for _ in range(100):
            sent_now = sum(e.notifications_sent + e.replies_sent for e in emus.values())
            got_now = sum(link.notifications for link in links.values())
            if sent_now == got_now == last:
                break
            last = sent_now if sent_now == got_now else -1
            await asyncio.sleep(0.2)
        for link in links.values():
            await link.close()
        notes = {leg: link.drain() for leg, link in links.items()}
        sent = {leg: emu.notifications_sent + emu.replies_sent for leg, emu in emus.items()}
        return notes, sent, sim, emus
    finally:
        for emu in emus.values():
            await emu.stop()
        await radio.close()


@pytest.mark.parametrize("model_name", ["witmotion", "movella-dot", "metamotion", "polar-verity"])
def test_scripted_session_counts_exactly(model_name: str) -> None:
    notes, sent, sim, emus = asyncio.run(_session(model_name))
    model = get_model(model_name)
    config = model.default_config
    analyzer = SessionAnalyzer((Leg.LEFT, Leg.RIGHT))
    for leg_name in ("left", "right"):
        n = notes[leg_name]
        data_notes = [x for x in n if x[0] == len(model.notify_uuids) - 1]
        # every notification the sensor sent arrived (in-memory link: none lost)
        assert len(n) == sent[leg_name]
        assert len(data_notes) > 0
        block = decode_all(model, config, n)
        assert block is not None
        signal = sim.signals[leg_name]
        # samples: all of them for single-stream models; pairing may drop a few at the edges
        if model_name in ("witmotion", "movella-dot"):
            assert len(block) == len(signal.time_s)
        else:
            assert len(signal.time_s) - 40 <= len(block) <= len(signal.time_s)
        span = block.time_s[-1] - block.time_s[0]
        assert span == pytest.approx(signal.time_s[-1] - signal.time_s[0], rel=0.02, abs=0.5)
        assert np.all(np.diff(block.time_s) > 0)
        # replay through the recording path: same bytes in, same samples out
        stream = VendorStream(Leg(leg_name), model, config)
        replayed = [b for b in (stream.data(encode_notification(c, d), t) for c, d, t in n) if b is not None]
        tail = stream.flush()
        if tail is not None:
            replayed.append(tail)
        again = _concat(replayed)
        assert np.array_equal(again.time_s, block.time_s) and np.array_equal(again.gyr_dps, block.gyr_dps)
        analyzer.update(Leg(leg_name), block)
    result = analyzer.finish()
    for leg_name, want in REPS.items():
        got = result.reps_of(Leg(leg_name))
        assert len(got) == want, (model_name, leg_name, [round(r.peak_deg, 1) for r in got])
        truth = sim.reps_of(leg_name)
        for r, t in zip(got, truth):
            assert r.rom_deg == pytest.approx(t.rom_deg, abs=12.0)
    assert result.uneven
