"""The one catalogue of ``python -m ringq bench`` workloads: the runner reads it here.

Each workload group is a module of this package that defines a module-level
``WORKLOADS`` dict (name -> :class:`~ringq.bench.workloads.WorkloadSpec`). This
module imports the groups listed in :data:`GROUPS`, in that order, and merges their
dicts into :data:`WORKLOADS`; the order is the order of the CLI's default run, its
``--help`` and its tables.

The imports go one way only: a group module imports the harness
(:mod:`ringq.bench.workloads`: ``Trial``, ``WorkloadSpec``, ``Metric``...) and
never this registry or another group; this registry imports the groups; the
runner imports the registry. ``tests/test_bench_registry.py`` checks that the
package has no import circle.

To add a group (say ``src/ringq/bench/process.py``): give the module a
``WORKLOADS = workload_table(...)`` of its specs (``in_default_run=False`` if it
must run only when named), then add its module name to :data:`GROUPS`, one line::

    GROUPS = ("workloads", "priority_broadcast", "select_bench", "process")

A name defined by two groups is an error at import (``ValueError`` naming both).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Dict

if TYPE_CHECKING:  # annotations only: the registry needs no name of the harness
    from .workloads import WorkloadSpec

__all__ = ["GROUPS", "WORKLOADS", "load_groups"]

#: The workload groups, as module names in ``ringq.bench``, in run order.
GROUPS = (
    "workloads",            # pair, spsc, mpmc, batch, pingpong, memory
    "priority_broadcast",   # priority, broadcast, broadcast_mt (only when named)
    "select_bench",         # select, select_latency (only when named)
)


def load_groups(groups: "tuple[str, ...]" = GROUPS) -> Dict[str, WorkloadSpec]:
    """Import every group in *groups* and merge their ``WORKLOADS`` dicts, in order."""
    merged: Dict[str, WorkloadSpec] = {}
    owner: Dict[str, str] = {}
    for group in groups:
        module = importlib.import_module(f"{__package__}.{group}")
        table = getattr(module, "WORKLOADS", None)
        if not isinstance(table, dict):
            raise TypeError(f"ringq.bench.{group} is listed in ringq.bench.registry.GROUPS but has no "
                            "WORKLOADS dict: define WORKLOADS = workload_table(...) in it")
        for name, spec in table.items():
            if name in merged:
                raise ValueError(f"workload {name!r} is defined by both ringq.bench.{owner[name]} and "
                                 f"ringq.bench.{group}: rename one of them")
            merged[name] = spec
            owner[name] = group
    return merged


#: Every workload by name: what ``python -m ringq bench`` runs and lists.
WORKLOADS: Dict[str, WorkloadSpec] = load_groups()
