"""Type stub of the C extension ``legrep._csvscan`` (host/_csvscan.c): the IMU CSV fast path."""

import numpy as np
import numpy.typing as npt

def scan(
    buf: bytes | memoryview,
    pos: int,
    time_s: npt.NDArray[np.float64],
    acc: npt.NDArray[np.float64],
    gyr: npt.NDArray[np.float64],
    row: int,
    col_map: bytes,
    prev_t: float,
    lineno: int,
    /,
) -> tuple[int, int, int, float, int, int, int]: ...

def format_rows(time_s: npt.NDArray[np.float64], values: npt.NDArray[np.float64], /) -> bytes: ...
