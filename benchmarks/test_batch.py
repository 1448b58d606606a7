"""The "batch" group: batches of 1000 items in and out (maxsize 1024): ringq put_many/get_many
(and, for reference, its per-item loop) against the per-item loop the peers need
(faster_fifo uses its own batch calls).

The workload itself, and how it is checked, is ringq.bench.workloads.prepare_batch.
"""
from __future__ import annotations

from typing import Any

import pytest

WORKLOAD = "batch"
pytestmark = pytest.mark.benchmark(group=WORKLOAD)


def test_batch(run_workload: Any, queue_kind: Any) -> None:
    figures = run_workload(WORKLOAD, queue_kind)
    assert figures["seconds"] > 0
