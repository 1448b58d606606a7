"""The "memory" group: bytes per empty queue and per queued item, with tracemalloc.

pytest-benchmark times the measuring itself, which means little; the figures that
matter (median bytes per empty queue of maxsize 1024, and per queued item) are in
each benchmark's extra_info (see --benchmark-json) and are printed in a
"ringq memory" section at the end of the session. The measurement is
ringq.bench.workloads.measure_memory.
"""
from __future__ import annotations

from typing import Any

import pytest

WORKLOAD = "memory"
pytestmark = pytest.mark.benchmark(group=WORKLOAD)


def test_memory(run_workload: Any, queue_kind: Any, memory_report: Any) -> None:
    figures = run_workload(WORKLOAD, queue_kind)
    assert figures["bytes_per_empty_queue"] > 0
    memory_report[queue_kind.name] = figures
