"""The "mpmc" group: 4 producer and 4 consumer threads, small ints through a queue of maxsize 1024.

The workload itself, and how it is checked, is ringq.bench.workloads.prepare_mpmc.
"""
from __future__ import annotations

from typing import Any

import pytest

WORKLOAD = "mpmc"
pytestmark = pytest.mark.benchmark(group=WORKLOAD)


def test_mpmc(run_workload: Any, queue_kind: Any) -> None:
    figures = run_workload(WORKLOAD, queue_kind)
    assert figures["seconds"] > 0
