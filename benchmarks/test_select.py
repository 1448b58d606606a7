"""The "select" group: ringq.select over 4 queues against a polling loop and forwarding threads.

The workload is ringq.bench.select_bench.prepare_select; its docstring says what each entry does.
"""
from __future__ import annotations

from typing import Any

import pytest

WORKLOAD = "select"
pytestmark = pytest.mark.benchmark(group=WORKLOAD)


def test_select(run_workload: Any, queue_kind: Any) -> None:
    figures = run_workload(WORKLOAD, queue_kind)
    assert figures["seconds"] > 0
