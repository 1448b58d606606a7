"""The "priority" group: ringq.PriorityQueue(levels=3) against queue.PriorityQueue.

One thread puts blocks of 8 items at mixed priorities and gets them back (maxsize
1024); queue.PriorityQueue uses (priority, seq, item) tuples, the stdlib recipe for
FIFO within a priority. The workload is ringq.bench.priority_broadcast.prepare_priority.
"""
from __future__ import annotations

from typing import Any

import pytest

WORKLOAD = "priority"
pytestmark = pytest.mark.benchmark(group=WORKLOAD)


def test_priority(run_workload: Any, queue_kind: Any) -> None:
    figures = run_workload(WORKLOAD, queue_kind)
    assert figures["seconds"] > 0
