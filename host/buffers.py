"""Growable column buffers with a global sample index, shared by the streaming stages."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def steps_after(t: npt.NDArray[np.float64], prev: float) -> npt.NDArray[np.float64]:
    """``np.diff(t, prepend=prev)`` for a non-empty ``t``: the same subtractions, without its
    concatenation and argument handling (the stages ask for one per chunk or movement)."""
    out = np.empty(len(t))
    out[0] = t[0] - prev
    np.subtract(t[1:], t[:-1], out=out[1:])
    return out


def even_cuts(n: int, size: int) -> list[int]:
    """Where to cut ``n`` rows into ``max(1, n // size)`` pieces as equal as they come (each of
    ``size`` to ``2 size - 1`` rows when ``n >= size``): a last piece of a few rows would cost a
    whole piece's overhead. Returns the ``k + 1`` boundaries, 0 first and ``n`` last."""
    k = max(1, n // size)
    return [n * i // k for i in range(k + 1)]


class ColumnLog:
    """Append-only columns addressed by a global sample index, trimmable at the front.

    Appends are amortised O(chunk); ``trim(keep_from)`` drops samples before a global
    index without copying until the dead part is larger than the live part.
    """

    __slots__ = ("_cols", "_dtypes", "_shapes", "_start", "_len", "base")

    def __init__(self, columns: dict[str, tuple[npt.DTypeLike, tuple[int, ...]]], capacity: int = 1024) -> None:
        self._dtypes = {k: np.dtype(v[0]) for k, v in columns.items()}
        self._shapes = {k: v[1] for k, v in columns.items()}
        self._cols = {k: np.empty((capacity, *self._shapes[k]), self._dtypes[k]) for k in columns}
        self._start = 0  # physical row of global index `base`
        self._len = 0
        self.base = 0  # global index of the first kept sample

    @property
    def end(self) -> int:
        """Global index one past the last sample."""
        return self.base + self._len

    def append(self, **values: npt.NDArray[Any]) -> None:
        n = len(next(iter(values.values())))
        if n == 0:
            return
        cap = next(iter(self._cols.values())).shape[0]
        if self._start + self._len + n > cap:
            live = self._len
            new_cap = max(cap, 2 * (live + n))
            for k, col in self._cols.items():
                if new_cap != cap:
                    fresh = np.empty((new_cap, *self._shapes[k]), self._dtypes[k])
                else:
                    fresh = col
                fresh[:live] = col[self._start : self._start + live]
                self._cols[k] = fresh
            self._start = 0
        a = self._start + self._len
        for k, v in values.items():
            self._cols[k][a : a + n] = v
        self._len += n

    def view(self, name: str, lo: int | None = None, hi: int | None = None) -> npt.NDArray[Any]:
        """Samples with global indices ``[lo, hi)`` (a view; do not keep it across appends)."""
        lo = self.base if lo is None else lo
        hi = self.end if hi is None else hi
        if lo < self.base or hi > self.end or lo > hi:
            raise IndexError(f"[{lo}, {hi}) outside kept samples [{self.base}, {self.end})")
        s = self._start
        return self._cols[name][s + lo - self.base : s + hi - self.base]

    def trim(self, keep_from: int) -> None:
        """Forget samples with global index < keep_from."""
        keep_from = min(max(keep_from, self.base), self.end)
        drop = keep_from - self.base
        self._start += drop
        self._len -= drop
        self.base = keep_from


class TimedSamples:
    """One stream's time-stamped values, appended in time order, read by time window and trimmed
    by time (the thigh angles the pelvis stage and the walking check read around each rep)."""

    __slots__ = ("_t", "_v")

    def __init__(self) -> None:
        self._t: list[npt.NDArray[np.float64]] = []
        self._v: list[npt.NDArray[np.float64]] = []

    def append(self, time_s: npt.NDArray[np.float64], values: npt.NDArray[np.float64]) -> None:
        if len(time_s):
            self._t.append(time_s)
            self._v.append(values)

    def _joined(self) -> None:
        if len(self._t) > 1:
            self._t[:] = [np.concatenate(self._t)]
            self._v[:] = [np.concatenate(self._v)]

    def window(self, t0_s: float, t1_s: float) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``(time_s, values)`` of the samples with ``t0_s <= time_s <= t1_s``."""
        self._joined()
        if not self._t:
            return np.empty(0), np.empty(0)
        t = self._t[0]
        lo, hi = int(np.searchsorted(t, t0_s)), int(np.searchsorted(t, t1_s, side="right"))
        return t[lo:hi], self._v[0][lo:hi]

    def trim(self, before_s: float) -> None:
        """Drop the samples before ``before_s``."""
        self._joined()
        if self._t:
            k = int(np.searchsorted(self._t[0], before_s))
            if k:
                self._t[0], self._v[0] = self._t[0][k:], self._v[0][k:]
