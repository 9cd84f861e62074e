"""Build of legrep's C kernels (``legrep._fastcore``, ``legrep._csvscan``, ``legrep._replaycore``) and the package map; the rest is in pyproject.toml.

The folder ``host/`` is installed as the package ``legrep`` and ``firmware_sim/`` as ``legrep_sim``
(``package_dir`` in pyproject.toml); every subpackage found under them is listed here, so a new
subpackage needs no edit.

The kernel is plain C over the CPython buffer protocol (no numpy headers needed).
``-ffp-contract=off`` keeps gcc from fusing multiply-adds, so the angle trace is the same
on every CPU, not only the same for every chunking.
"""

import sys

from setuptools import Extension, find_packages, setup


def _packages(folder: str, name: str) -> list[str]:
    return [name] + [f"{name}.{sub}" for sub in find_packages(folder)]


flags = [] if sys.platform == "win32" else ["-O2", "-ffp-contract=off", "-std=c99", "-Wall", "-Wextra"]

setup(
    packages=_packages("host", "legrep") + _packages("firmware_sim", "legrep_sim"),
    ext_modules=[
        Extension("legrep._fastcore", sources=["host/_fastcore.c"], extra_compile_args=flags),
        # the IMU CSV reader's fast path (host/_csvscan.c says why it is not a CSV library)
        Extension("legrep._csvscan", sources=["host/_csvscan.c"], extra_compile_args=flags),
        # the file replay's hot loops (decode, tracker, clock; the record walk; the IMU CSV rows)
        Extension("legrep._replaycore", sources=["host/_replaycore.c"], extra_compile_args=flags),
    ],
)
