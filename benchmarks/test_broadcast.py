"""The "broadcast" group: ringq.Broadcast.publish to 4 subscribers against 4 put calls.

One thread; every subscriber's queue holds all the items, so nothing waits. The
references put each item into 4 queue.Queue (or ringq.Queue) objects. The workload is
ringq.bench.priority_broadcast.prepare_broadcast; broadcast_mt (4 consumer threads)
is in test_broadcast_mt.py.
"""
from __future__ import annotations

from typing import Any

import pytest

WORKLOAD = "broadcast"
pytestmark = pytest.mark.benchmark(group=WORKLOAD)


def test_broadcast(run_workload: Any, queue_kind: Any) -> None:
    figures = run_workload(WORKLOAD, queue_kind)
    assert figures["seconds"] > 0
