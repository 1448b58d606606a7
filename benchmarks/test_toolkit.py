"""The toolkit groups: BoundedExecutor, map and Pipeline against their usual peers.

One pytest-benchmark group per workload of :mod:`ringq.bench.toolkit` (the same
code as ``python -m ringq bench --workload toolkit``), one benchmark per entry,
at the workload's quick size. Every run checks its results. The map-memory
group's figure is tracemalloc's peak, shown in extra_info (its time is not the point).
"""
from __future__ import annotations

from typing import Any, List

import pytest

from ringq.bench.toolkit import TOOLKIT_WORKLOADS

ROUNDS = 5


def _params() -> List[Any]:
    return [pytest.param(workload.name, entry, id=f"{workload.name}-{entry.name}",
                         marks=pytest.mark.benchmark(group=f"toolkit-{workload.name}"))
            for workload in TOOLKIT_WORKLOADS.values() for entry in workload.entries]


@pytest.mark.parametrize(("workload_name", "entry"), _params())
def test_toolkit(benchmark: Any, workload_name: str, entry: Any) -> None:
    workload = TOOLKIT_WORKLOADS[workload_name]
    size = workload.quick_size
    figures: List[Any] = []

    def run() -> None:
        figures.append(entry.run(size))

    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=1)
    key = workload.metrics[0].key
    values = sorted(f[key] for f in figures)
    benchmark.extra_info.update({"workload": workload_name, "entry": entry.name, "size": size,
                                 f"median_{key}": values[len(values) // 2]})
    assert values[0] > 0
