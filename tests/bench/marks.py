"""What makes a test a benchmark: the `bench` mark, and running only when asked (`make bench` sets
RUN_BENCH=1), so a plain `pytest` never spends minutes timing things."""

from __future__ import annotations

import os

import pytest

BENCH_MARKS = [
    pytest.mark.bench,
    pytest.mark.skipif(os.environ.get("RUN_BENCH") != "1", reason="benchmark: set RUN_BENCH=1 (make bench)"),
]
