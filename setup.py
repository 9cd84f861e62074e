"""Build of legrep's C kernel (``host._fastcore``); everything else is in pyproject.toml.

The kernel is plain C over the CPython buffer protocol (no numpy headers needed).
``-ffp-contract=off`` keeps gcc from fusing multiply-adds, so the angle trace is the same
on every CPU, not only the same for every chunking.
"""

import sys

from setuptools import Extension, setup

flags = [] if sys.platform == "win32" else ["-O2", "-ffp-contract=off", "-std=c99", "-Wall", "-Wextra"]

setup(ext_modules=[Extension("host._fastcore", sources=["host/_fastcore.c"], extra_compile_args=flags)])
