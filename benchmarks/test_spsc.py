"""The "spsc" group: one producer thread, one consumer thread, small ints through a queue of maxsize 1024.

The workload itself, and how it is checked, is ringq.bench.workloads.prepare_spsc.
"""
from __future__ import annotations

from typing import Any

import pytest

WORKLOAD = "spsc"
pytestmark = pytest.mark.benchmark(group=WORKLOAD)


def test_spsc(run_workload: Any, queue_kind: Any) -> None:
    figures = run_workload(WORKLOAD, queue_kind)
    assert figures["seconds"] > 0
