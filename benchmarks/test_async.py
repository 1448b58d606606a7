"""The "async" group: ringq's async calls against janus, culsans and asyncio.Queue (issue 7).

The workloads, and how each is checked, are in ringq.bench.asyncbench; the
``python -m ringq bench-async`` front end runs the same code with interleaved rounds.
"""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ringq.bench import asyncbench

PEERS = asyncbench.available_peers()
CASES = [(w, p) for w in asyncbench.WORKLOADS for p in PEERS] + [("task->task", "asyncio.Queue")]


@pytest.mark.benchmark(group="async")
@pytest.mark.parametrize("workload, peer", CASES, ids=[f"{w}-{p}" for w, p in CASES])
def test_async_workload(benchmark: Any, workload: str, peer: str) -> None:
    fn, size, _unit = asyncbench.WORKLOADS[workload]
    factory = asyncbench._asyncio_queue if peer == "asyncio.Queue" else PEERS[peer]
    n = size // 10

    def once() -> float:
        loop = asyncio.new_event_loop()
        try:
            value = loop.run_until_complete(fn(factory, n))
            loop.run_until_complete(asyncbench._close_all())
            return float(value)
        finally:
            loop.close()

    assert benchmark.pedantic(once, rounds=5, iterations=1) > 0
