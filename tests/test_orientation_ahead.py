"""The orientation stage run ahead on a thread of its own (legrep.fusion.orientation.poses_ahead):
the same outputs, bit for bit, as one ``update_pose`` per piece in the caller's thread; an error of
the kernel reaches the caller; and a long chunk through the hip-angle stage gives the same angles
with the thread as without (``LEGREP_SERIAL=1``) and as short chunks."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import ROOT  # noqa: F401  (puts the repository on sys.path)

from legrep_sim.scenarios import long_session
from legrep.buffers import even_cuts
from legrep.fusion import orientation
from legrep.fusion.orientation import OrientationFilter, poses_ahead
from legrep.model import ImuBlock, Leg
from legrep.pipeline import SessionAnalyzer
from legrep.settings import Settings


@pytest.fixture(scope="module")
def leg() -> ImuBlock:
    sig = long_session(hours=0.15, rate_hz=100.0, seed=5).signals["left"]  # 54 000 samples
    return ImuBlock.from_arrays(sig.time_s, sig.acc_g, sig.gyr_dps)


def _filter(block: ImuBlock) -> OrientationFilter:
    return OrientationFilter(Settings(), block.acc_g[:50].mean(axis=0), np.zeros(3), 0.01)


def _pieces(n: int) -> list[tuple[int, int]]:
    cuts = even_cuts(n, 4096)
    return list(zip(cuts[:-1], cuts[1:]))


def test_ahead_gives_the_inline_outputs(leg: ImuBlock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orientation, "_cores", lambda: 2)
    monkeypatch.delenv("LEGREP_SERIAL", raising=False)
    t, a, g = leg.time_s, leg.acc_g, leg.gyr_dps
    pieces = _pieces(len(t))
    assert len(pieces) >= orientation.AHEAD_MIN_PIECES and len(pieces) > orientation.AHEAD_BATCH
    inline = _filter(leg)
    want = [inline.update_pose(t[x:y], a[x:y], g[x:y]) for x, y in pieces]
    ahead = _filter(leg)
    got = list(poses_ahead(ahead, t, a, g, pieces))
    assert len(got) == len(want)
    for p, q in zip(got, want):
        for x, y in zip(p, q):
            assert x.shape == y.shape and np.ascontiguousarray(x).tobytes() == np.ascontiguousarray(y).tobytes()
    assert ahead.gyro_bias_dps == inline.gyro_bias_dps and ahead.diagnostics() == inline.diagnostics()


def test_a_kernel_error_reaches_the_caller(leg: ImuBlock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orientation, "_cores", lambda: 2)
    monkeypatch.delenv("LEGREP_SERIAL", raising=False)
    n = len(leg.time_s)
    acc = leg.acc_g.copy()
    acc_bad = acc[:, :2].copy()  # (N, 2): the kernel refuses it, in the thread
    filt = _filter(leg)
    with pytest.raises(ValueError, match="acc_g"):
        list(poses_ahead(filt, leg.time_s, acc_bad, leg.gyr_dps, _pieces(n)))
    # the thread is done: the filter takes calls again
    filt.update_pose(leg.time_s[:10], acc[:10], leg.gyr_dps[:10])


def test_closing_early_waits_for_the_thread(leg: ImuBlock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orientation, "_cores", lambda: 2)
    monkeypatch.delenv("LEGREP_SERIAL", raising=False)
    filt = _filter(leg)
    ran_on: list[str] = []
    update_pose = filt.update_pose

    def recorded(*args):  # type: ignore[no-untyped-def]
        ran_on.append(threading.current_thread().name)
        return update_pose(*args)

    filt.update_pose = recorded  # type: ignore[method-assign]
    gen = poses_ahead(filt, leg.time_s, leg.acc_g, leg.gyr_dps, _pieces(len(leg.time_s)))
    next(gen)
    assert ran_on and set(ran_on) == {"legrep-orientation"}  # (it runs on its own thread; it may be done already)
    gen.close()
    assert not any(th.name == "legrep-orientation" for th in threading.enumerate())
    filt.update_pose(leg.time_s[:10], leg.acc_g[:10], leg.gyr_dps[:10])  # (no run() left on another thread)


def _trace(leg: ImuBlock, chunk: int) -> tuple[bytes, bytes, list[tuple[float, float]]]:
    an = SessionAnalyzer((Leg.LEFT,), keep_traces=True)
    for i in range(0, len(leg), chunk):
        an.update(Leg.LEFT, ImuBlock(leg.time_s[i : i + chunk], leg.acc_g[i : i + chunk], leg.gyr_dps[i : i + chunk]))
    res = an.finish()
    t, angle = res.traces[Leg.LEFT]
    return t.tobytes(), angle.tobytes(), [(r.start_s, r.peak_deg) for r in res.reps]


def test_long_chunk_angles_are_the_same_with_and_without_the_thread(leg: ImuBlock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orientation, "_cores", lambda: 2)
    monkeypatch.delenv("LEGREP_SERIAL", raising=False)
    whole = _trace(leg, len(leg))  # one chunk: 6 pieces, the orientation stage on its thread
    monkeypatch.setenv("LEGREP_SERIAL", "1")
    serial = _trace(leg, len(leg))
    short = _trace(leg, 1000)
    assert whole == serial == short
    assert len(whole[2]) > 0


def test_the_thread_stays_a_few_batches_ahead(leg: ImuBlock, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setattr(orientation, "_cores", lambda: 2)
    monkeypatch.delenv("LEGREP_SERIAL", raising=False)
    cuts = even_cuts(len(leg.time_s), 500)
    pieces = list(zip(cuts[:-1], cuts[1:]))  # 108 pieces: 14 batches
    filt = _filter(leg)
    gen = poses_ahead(filt, leg.time_s, leg.acc_g, leg.gyr_dps, pieces)
    next(gen)
    time.sleep(0.3)  # (ample for the whole chunk, were the thread not held back)
    # the batch taken, AHEAD_DEPTH waiting and one done that waits to be handed over: no more
    most = pieces[(orientation.AHEAD_DEPTH + 2) * orientation.AHEAD_BATCH - 1][1]
    assert filt._k.n_samples <= most < len(leg.time_s)
    gen.close()
