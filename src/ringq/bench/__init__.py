"""ringq's benchmark suite: the workloads, the queues they compare, and the runner.

The same workload code backs both front ends:

* ``python -m ringq bench`` (see :mod:`ringq.bench.runner`): medians of interleaved
  rounds, a table of ratios against ``queue.Queue`` and ``queue.SimpleQueue``,
  optional JSON and PNG output;
* the pytest-benchmark suite in the repository's ``benchmarks/`` folder.

:mod:`ringq.bench.summary` turns several ``--json`` runs into the range of every
ratio (``python -m ringq.bench.summary bench-*.json``), which is what to quote.

:mod:`ringq.bench.workloads` holds the workloads themselves (what is measured and
how) and :mod:`ringq.bench.peers` the queues ringq is compared with.
"""
from __future__ import annotations

from .peers import QueueKind, available_queue_kinds, batch_queue_kinds, missing_optional_peers
from .workloads import WORKLOADS, WorkloadError, WorkloadSpec

__all__ = [
    "WORKLOADS",
    "QueueKind",
    "WorkloadError",
    "WorkloadSpec",
    "available_queue_kinds",
    "batch_queue_kinds",
    "missing_optional_peers",
]
