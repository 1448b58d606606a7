"""The "broadcast_mt" group: 1 publisher + 4 consumer threads, maxsize 1024 per subscriber.

ringq.Broadcast(overflow="block") against 4 queue.Queue (or ringq.Queue) objects
fed by one put call each. The workload is ringq.bench.priority_broadcast.prepare_broadcast_mt.
"""
from __future__ import annotations

from typing import Any

import pytest

WORKLOAD = "broadcast_mt"
pytestmark = pytest.mark.benchmark(group=WORKLOAD)


def test_broadcast_mt(run_workload: Any, queue_kind: Any) -> None:
    figures = run_workload(WORKLOAD, queue_kind)
    assert figures["seconds"] > 0
