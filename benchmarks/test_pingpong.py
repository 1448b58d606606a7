"""The "pingpong" group: round-trip latency between two threads through two queues of maxsize 1.

The workload itself, and how it is checked, is ringq.bench.workloads.prepare_pingpong.
"""
from __future__ import annotations

from typing import Any

import pytest

WORKLOAD = "pingpong"
pytestmark = pytest.mark.benchmark(group=WORKLOAD)


def test_pingpong(run_workload: Any, queue_kind: Any) -> None:
    figures = run_workload(WORKLOAD, queue_kind)
    assert figures["seconds"] > 0
