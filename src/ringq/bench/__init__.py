"""ringq's benchmark suite: the workloads, the queues they compare, and the runner.

The same workload code backs both front ends:

* ``python -m ringq bench`` (see :mod:`ringq.bench.runner`): medians of interleaved
  rounds, a table of ratios against ``queue.Queue`` and ``queue.SimpleQueue``,
  optional JSON and PNG output;
* the pytest-benchmark suite in the repository's ``benchmarks/`` folder.

:mod:`ringq.bench.summary` turns several ``--json`` runs into the range of every
ratio (``python -m ringq.bench.summary bench-*.json``), which is what to quote.

:mod:`ringq.bench.workloads` holds the harness and the default workloads (what is
measured and how), :mod:`ringq.bench.priority_broadcast` and
:mod:`ringq.bench.select_bench` the workloads run only when named,
:mod:`ringq.bench.registry` the one catalogue of them all that the runner reads
(its docstring says how to add a group), and :mod:`ringq.bench.peers` the queues
ringq is compared with.
"""
from __future__ import annotations

from .peers import QueueKind, available_queue_kinds, batch_queue_kinds, missing_optional_peers
from .registry import WORKLOADS
from .workloads import WorkloadError, WorkloadSpec

__all__ = [
    "WORKLOADS",
    "QueueKind",
    "WorkloadError",
    "WorkloadSpec",
    "available_queue_kinds",
    "batch_queue_kinds",
    "missing_optional_peers",
]
