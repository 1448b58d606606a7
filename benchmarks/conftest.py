"""Shared machinery of ringq's pytest-benchmark suite.

The suite is kept apart from the unit tests: pyproject's ``testpaths`` is
``["tests"]``, so a bare ``pytest`` never runs it; ``pytest benchmarks/`` does.

Each test file is one pytest-benchmark group (one workload, named by the module's
``WORKLOAD``), with one benchmark per queue (the ``queue_kind`` parameter, filled
in by :func:`pytest_generate_tests`): ringq and its peers, from :mod:`ringq.bench`, the same code that backs
``python -m ringq bench``. Each benchmark round builds a fresh
:class:`~ringq.bench.workloads.Trial` in pedantic *setup* (queue, data, threads
started and parked on a barrier: not timed), times only ``Trial.run`` (release the
threads, join them), and checks every item in *teardown*. A queue that loses items
fails its test.

Sizes are the workloads' ``pytest_size`` (smaller than the CLI's, so the suite stays
quick), and unlike the CLI every queue runs the same size, so the times of one
group compare directly.
"""
from __future__ import annotations

import gc
import statistics
from typing import Any, Dict, List, Tuple

import pytest

pytest.importorskip(
    "pytest_benchmark", reason="the benchmark suite needs pytest-benchmark: pip install 'ringq[bench]'")

from ringq.bench.peers import QueueKind, available_queue_kinds, batch_queue_kinds, missing_optional_peers
from ringq.bench.priority_broadcast import TOOLKIT_WORKLOADS
from ringq.bench.registry import WORKLOADS
from ringq.bench.workloads import Trial, WorkloadError

#: Timed rounds per benchmark, after one warm-up round.
ROUNDS = 5
WARMUP_ROUNDS = 1

#: Memory figures gathered by test_memory.py, printed at the end of the session.
MEMORY_FIGURES: Dict[str, Dict[str, float]] = {}


def kind_id(name: str) -> str:
    """A pytest id without spaces or parentheses (handy with -k)."""
    return name.replace(" (", "-").replace(")", "").replace(" ", "-")


def queue_params(workload: str) -> List[Any]:
    """One pytest.param per queue of *workload*; missing optional peers are skipped."""
    kinds = available_queue_kinds()
    if workload == "batch":
        entries = batch_queue_kinds(kinds)
    elif workload in TOOLKIT_WORKLOADS:
        entries = WORKLOADS[workload].entries(kinds)  # their own contenders (PriorityQueue, Broadcast...)
    else:
        entries = kinds
    params = [pytest.param(kind, id=kind_id(kind.name)) for kind in entries]
    if workload in TOOLKIT_WORKLOADS:
        return params  # the optional peers take no part in these
    for name, reason in missing_optional_peers().items():
        params.append(pytest.param(None, id=kind_id(name), marks=pytest.mark.skip(
            reason=f"{name} is not importable ({reason}); pip install 'ringq[bench]'")))
    return params


def run_benchmark(benchmark: Any, workload: str, kind: QueueKind) -> Dict[str, float]:
    """Benchmark *workload* on *kind*; returns the median figures of the rounds.

    Every trial is verified (in teardown, or right after when pytest-benchmark is
    disabled and skips teardown), so a queue that loses items fails the test.
    """
    spec = WORKLOADS[workload]
    size = spec.pytest_size
    trials: List[Trial] = []

    def setup() -> Tuple[Tuple[Trial], Dict[str, Any]]:
        trial = spec.prepare(kind, size)
        trials.append(trial)
        gc.collect()  # not timed: collect the previous round's garbage now
        return (trial,), {}

    def teardown(trial: Trial) -> None:
        trial.verify()

    benchmark.pedantic(Trial.run, setup=setup, teardown=teardown,
                       rounds=ROUNDS, warmup_rounds=WARMUP_ROUNDS)
    figures_per_round = []
    for trial in trials:
        if trial.seconds is None:
            raise WorkloadError(f"{kind.name}: a {workload} round never ran")
        if not trial.verified:
            trial.verify()
        figures_per_round.append(trial.figures(trial.seconds))
    measured = figures_per_round[WARMUP_ROUNDS:] or figures_per_round
    medians = {key: statistics.median(f[key] for f in measured) for key in measured[0]}
    benchmark.extra_info.update(
        {"queue": kind.name, "workload": workload, "size": size,
         "batch_method": kind.batch_method, **{f"median_{k}": v for k, v in medians.items()}})
    return medians


def pytest_generate_tests(metafunc: Any) -> None:
    """Parametrize ``queue_kind`` with the queues of the module's WORKLOAD."""
    if "queue_kind" in metafunc.fixturenames:
        metafunc.parametrize("queue_kind", queue_params(metafunc.module.WORKLOAD))


@pytest.fixture
def run_workload(benchmark: Any) -> Any:
    """``run_workload(name, kind)``: benchmark a workload, return its median figures."""

    def run(workload: str, kind: QueueKind) -> Dict[str, float]:
        return run_benchmark(benchmark, workload, kind)

    return run


@pytest.fixture(scope="session")
def memory_report() -> Dict[str, Dict[str, float]]:
    """Where test_memory.py leaves its figures for the end-of-session summary."""
    return MEMORY_FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the memory group's figures: pytest-benchmark's table shows only times."""
    if not MEMORY_FIGURES:
        return
    terminalreporter.section("ringq memory (tracemalloc, median of rounds)")
    terminalreporter.write_line(f"{'queue':<22} {'bytes/empty queue':>18} {'bytes/queued item':>18}")
    for name, figures in MEMORY_FIGURES.items():
        terminalreporter.write_line(
            f"{name:<22} {figures['bytes_per_empty_queue']:>18,.0f} {figures['bytes_per_item']:>18,.1f}")
