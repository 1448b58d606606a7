"""The "pair" group: single-thread put + get pairs (maxsize 1024): the uncontended cost of a put and a get.

The workload itself, and how it is checked, is ringq.bench.workloads.prepare_pair.
"""
from __future__ import annotations

from typing import Any

import pytest

WORKLOAD = "pair"
pytestmark = pytest.mark.benchmark(group=WORKLOAD)


def test_pair(run_workload: Any, queue_kind: Any) -> None:
    figures = run_workload(WORKLOAD, queue_kind)
    assert figures["seconds"] > 0
