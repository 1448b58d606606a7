"""The one catalogue of ``python -m ringq bench`` workloads: the runner reads it here.

Each workload group is a module of this package that defines a module-level
``WORKLOADS`` dict (name -> :class:`~ringq.bench.workloads.WorkloadSpec`: a job every
queue kind runs), a ``CONTESTS`` dict (name -> :class:`~ringq.bench.contest.Contest`:
a ringq tool against what people use instead, each side with its own code), or
both. This module imports the groups listed in :data:`GROUPS`, in that order, and
merges their dicts into :data:`WORKLOADS` and :data:`CONTESTS`; the order is the
order of the CLI's default run, its ``--help`` and its tables. A contest's
``group`` ("toolkit", "process"...) is a name that runs all the contests of that
group (:data:`ALIASES`).

The imports go one way only: a group module imports the harness
(:mod:`ringq.bench.workloads`: ``Trial``, ``WorkloadSpec``, ``Metric``...) and
never this registry or another group; this registry imports the groups; the
runner imports the registry. ``tests/test_bench_registry.py`` checks that the
package has no import circle.

To add a group (say ``src/ringq/bench/mygroup.py``): give the module a
``WORKLOADS = workload_table(...)`` of its specs (``in_default_run=False`` if it
must run only when named) or a ``CONTESTS = contest_table(...)``, then add its
module name to :data:`GROUPS`, one line.

A name defined by two groups (workload, contest or group alias) is an error at
import (``ValueError`` naming both).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict, List

if TYPE_CHECKING:  # annotations only: the registry needs no name of the harness
    from .contest import Contest
    from .workloads import WorkloadSpec

__all__ = ["ALIASES", "CONTESTS", "GROUPS", "WORKLOADS", "load_contests", "load_groups"]

#: The workload groups, as module names in ``ringq.bench``, in run order.
GROUPS = (
    "workloads",            # pair, spsc, mpmc, batch, pingpong, memory
    "priority_broadcast",   # priority, broadcast, broadcast_mt (only when named)
    "select_bench",         # select, select_latency (only when named)
    # Contests, only when named:
    "toolkit",              # executor, map, pipeline, map-memory ("toolkit" for all)
    "process",              # process-1to1 ... process-pingpong ("process" for all)
    "process_pool",         # pool-submit, pool-map, pool-pipeline(-light) ("processes" for all)
    "async_toolkit",        # async-pipeline, aacquire, loop-lag ("async" for all)
)


def _tables(groups: "tuple[str, ...]", attribute: str) -> "list[tuple[str, Dict[str, Any]]]":
    """(group, its *attribute* dict) for every group that defines one; TypeError if a group has none."""
    found = []
    for group in groups:
        module = importlib.import_module(f"{__package__}.{group}")
        workloads, contests = getattr(module, "WORKLOADS", None), getattr(module, "CONTESTS", None)
        if not isinstance(workloads, dict) and not isinstance(contests, dict):
            raise TypeError(f"ringq.bench.{group} is listed in ringq.bench.registry.GROUPS but has no "
                            "WORKLOADS dict: define WORKLOADS = workload_table(...) (or CONTESTS = "
                            "contest_table(...)) in it")
        table = getattr(module, attribute, None)
        if isinstance(table, dict):
            found.append((group, table))
    return found


def _merge(groups: "tuple[str, ...]", attribute: str, owner: Dict[str, str]) -> Dict[str, Any]:
    merged: Dict[str, Any] = {}
    for group, table in _tables(groups, attribute):
        for name, spec in table.items():
            if name in owner:
                raise ValueError(f"workload {name!r} is defined by both ringq.bench.{owner[name]} and "
                                 f"ringq.bench.{group}: rename one of them")
            merged[name] = spec
            owner[name] = group
    return merged


def load_groups(groups: "tuple[str, ...]" = GROUPS) -> Dict[str, WorkloadSpec]:
    """Import every group in *groups* and merge their ``WORKLOADS`` dicts, in order."""
    owner: Dict[str, str] = {}
    _merge(groups, "CONTESTS", owner)  # a queue workload may not take a contest's name either
    return _merge(groups, "WORKLOADS", {name: group for name, group in owner.items()})


def load_contests(groups: "tuple[str, ...]" = GROUPS) -> Dict[str, Contest]:
    """Import every group in *groups* and merge their ``CONTESTS`` dicts, in order."""
    return _merge(groups, "CONTESTS", {})


#: Every queue workload by name: what ``python -m ringq bench`` runs by default and lists.
WORKLOADS: Dict[str, WorkloadSpec] = load_groups()
#: Every contest by name (run only when named).
CONTESTS: Dict[str, Contest] = load_contests()


def _aliases() -> Dict[str, List[str]]:
    aliases: Dict[str, List[str]] = {}
    for name, contest in CONTESTS.items():
        if contest.group in WORKLOADS or contest.group in CONTESTS:
            raise ValueError(f"the group name {contest.group!r} of contest {name!r} is also a workload's name")
        aliases.setdefault(contest.group, []).append(name)
    return aliases


#: Group name -> the contests it runs, in order ("process" -> process-1to1, ...).
ALIASES: Dict[str, List[str]] = _aliases()
