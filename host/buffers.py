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
