"""Benchmarks of ringq's toolkit against what people use instead.

``python -m ringq bench --workload executor,map,pipeline,map-memory`` (or
``--workload toolkit`` for all four). They are not in the default run, which stays
under a minute. Workloads:

``executor``
    100,000 trivial tasks: ``submit`` them all, then ``result()`` each, with
    ``ringq.BoundedExecutor(4, max_pending=1024)`` against
    ``ThreadPoolExecutor(4)`` (unbounded). The pool is created, used and shut
    down (``wait=True``) inside the timed part, for both.
``map``
    ``sum(pool.map(f, range(100_000)))`` with a trivial ``f``: ringq's ``map`` with
    its defaults, with ``buffersize=1024`` and with ``chunksize=64``, against
    ``ThreadPoolExecutor(4).map`` (which ignores chunksize and has no buffersize
    before 3.14).
``pipeline``
    200,000 ints through 3 stages of trivial functions (one worker each) into the
    caller: ``ringq.Pipeline`` (queues of 1024) against the chain people write by
    hand, one ``queue.Queue(1024)`` between each pair of threads and a sentinel to
    stop, and the same hand-written chain on ``ringq.Queue`` (which shows how much
    comes from the queue and how much from the pipeline's batching).
``map-memory``
    tracemalloc's peak while mapping a trivial function over a generator and
    taking 100,000 results: ``BoundedExecutor.map(buffersize=1000)`` over an
    *endless* generator (it reads ahead 1000 at most), against
    ``ThreadPoolExecutor.map``, which reads its whole input first: it gets a
    generator capped at the same 100,000 items, or it would never return. ringq
    also runs at a quarter of the size, to show its peak does not grow with it.

Every run checks its results. Each figure is the median of the rounds; within a
round every entry runs once, in an order rotated per round. Ratios are times
better than the peer (above 1.00x ringq wins).
"""
from __future__ import annotations

import gc
import itertools
import json
import queue
import statistics
import sys
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, TextIO, Tuple

__all__ = ["TOOLKIT_WORKLOADS", "ToolkitEntry", "ToolkitWorkload", "main", "run_workload"]

WORKERS = 4


class ToolkitBenchError(AssertionError):
    """A run returned wrong results."""


def _trivial(x: int) -> int:
    return x + 1


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ToolkitBenchError(message)


# --- executor ----------------------------------------------------------------------------


def executor_ringq(n: int) -> Dict[str, float]:
    import ringq

    start = time.perf_counter()
    with ringq.BoundedExecutor(WORKERS, max_pending=1024) as pool:
        futures = [pool.submit(_trivial, i) for i in range(n)]
        total = sum(f.result() for f in futures)
    seconds = time.perf_counter() - start
    _check(total == n * (n + 1) // 2, "executor: wrong results")
    return {"seconds": seconds, "per_s": n / seconds}


def executor_tpe(n: int) -> Dict[str, float]:
    start = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(_trivial, i) for i in range(n)]
        total = sum(f.result() for f in futures)
    seconds = time.perf_counter() - start
    _check(total == n * (n + 1) // 2, "executor: wrong results")
    return {"seconds": seconds, "per_s": n / seconds}


# --- map ---------------------------------------------------------------------------------


def _map_ringq(**options: Any) -> Callable[[int], Dict[str, float]]:
    def run(n: int) -> Dict[str, float]:
        import ringq

        start = time.perf_counter()
        with ringq.BoundedExecutor(WORKERS, max_pending=1024) as pool:
            total = sum(pool.map(_trivial, range(n), **options))
        seconds = time.perf_counter() - start
        _check(total == n * (n + 1) // 2, "map: wrong results")
        return {"seconds": seconds, "per_s": n / seconds}

    return run


def map_tpe(n: int) -> Dict[str, float]:
    start = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        total = sum(pool.map(_trivial, range(n)))
    seconds = time.perf_counter() - start
    _check(total == n * (n + 1) // 2, "map: wrong results")
    return {"seconds": seconds, "per_s": n / seconds}


# --- pipeline ----------------------------------------------------------------------------

STAGES = 3
PIPELINE_MAXSIZE = 1024


def _expected_pipeline_sum(n: int) -> int:
    return n * (n - 1) // 2 + STAGES * n


def pipeline_ringq(n: int) -> Dict[str, float]:
    import ringq

    start = time.perf_counter()
    with ringq.Pipeline(range(n)) as p:
        for _ in range(STAGES):
            p.stage(_trivial, workers=1, maxsize=PIPELINE_MAXSIZE)
        total = sum(p)
    seconds = time.perf_counter() - start
    _check(total == _expected_pipeline_sum(n), "pipeline: wrong results")
    return {"seconds": seconds, "per_s": n / seconds}


_STOP = object()


def _hand_chain(make_queue: Callable[[int], Any]) -> Callable[[int], Dict[str, float]]:
    """The chain people write: a queue between each pair of threads, a sentinel to stop."""

    def run(n: int) -> Dict[str, float]:
        start = time.perf_counter()
        queues = [make_queue(PIPELINE_MAXSIZE) for _ in range(STAGES + 1)]

        def source() -> None:
            put = queues[0].put
            for i in range(n):
                put(i)
            put(_STOP)

        def stage(index: int) -> None:
            get = queues[index].get
            put = queues[index + 1].put
            while True:
                item = get()
                if item is _STOP:
                    put(_STOP)
                    return
                put(_trivial(item))

        threads = [threading.Thread(target=source, daemon=True)]
        threads += [threading.Thread(target=stage, args=(i,), daemon=True) for i in range(STAGES)]
        for thread in threads:
            thread.start()
        get = queues[-1].get
        total = 0
        while True:
            item = get()
            if item is _STOP:
                break
            total += item
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - start
        _check(total == _expected_pipeline_sum(n), "pipeline: wrong results")
        return {"seconds": seconds, "per_s": n / seconds}

    return run


def _ringq_queue(maxsize: int) -> Any:
    import ringq

    return ringq.Queue(maxsize)


# --- map-memory --------------------------------------------------------------------------

MAP_BUFFERSIZE = 1000


def _endless() -> Iterator[int]:
    return itertools.count()


def _peak_while(run: Callable[[], int]) -> Tuple[int, int]:
    """(tracemalloc peak bytes above the start, run's return value)."""
    gc.collect()
    started_here = not tracemalloc.is_tracing()
    if started_here:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        value = run()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        if started_here:
            tracemalloc.stop()
    return peak, value


def _memory_ringq(scale: float) -> Callable[[int], Dict[str, float]]:
    def run(n: int) -> Dict[str, float]:
        import ringq

        count = max(1, int(n * scale))

        def work() -> int:
            with ringq.BoundedExecutor(WORKERS, max_pending=1024) as pool:
                results = pool.map(_trivial, _endless(), buffersize=MAP_BUFFERSIZE)
                total = sum(itertools.islice(results, count))
                results.close()  # type: ignore[attr-defined]
            return total

        start = time.perf_counter()
        peak, total = _peak_while(work)
        seconds = time.perf_counter() - start
        _check(total == count * (count + 1) // 2, "map-memory: wrong results")
        return {"seconds": seconds, "peak_bytes": float(peak), "items": float(count)}

    return run


def memory_tpe(n: int) -> Dict[str, float]:
    def work() -> int:
        with ThreadPoolExecutor(WORKERS) as pool:
            # Capped at n: ThreadPoolExecutor.map reads all its input before the
            # first result, so an endless generator would never return.
            results = pool.map(_trivial, itertools.islice(_endless(), n))
            return sum(results)

    start = time.perf_counter()
    peak, total = _peak_while(work)
    seconds = time.perf_counter() - start
    _check(total == n * (n + 1) // 2, "map-memory: wrong results")
    return {"seconds": seconds, "peak_bytes": float(peak), "items": float(n)}


# --- the catalogue -----------------------------------------------------------------------


@dataclass(frozen=True)
class ToolkitEntry:
    name: str
    run: Callable[[int], Dict[str, float]]
    #: The entry the ratio is computed against (None: this is the peer).
    peer: Optional[str]


@dataclass(frozen=True)
class ToolkitWorkload:
    name: str
    summary: str
    #: The figure compared: (key, label, higher is better, format).
    metric: Tuple[str, str, bool, str]
    default_size: int
    quick_size: int
    entries: Tuple[ToolkitEntry, ...]
    #: The issue's target for the main entry (the first), as a ratio; None: none.
    target: Optional[float] = None
    target_text: str = ""


TPE = f"ThreadPoolExecutor({WORKERS})"
TPE_MAP = TPE + ".map"
TPE_MEM = TPE + ".map, generator capped at the size"
HAND = "hand-written chain, queue.Queue"

TOOLKIT_WORKLOADS: Dict[str, ToolkitWorkload] = {
    w.name: w for w in (
        ToolkitWorkload(
            "executor", "{size} trivial tasks: submit all, then result() each; 4 workers",
            ("per_s", "tasks/s", True, "{:,.0f}"), 100_000, 10_000,
            (ToolkitEntry("ringq.BoundedExecutor(4, 1024)", executor_ringq, TPE),
             ToolkitEntry(TPE, executor_tpe, None)),
            target=3.0, target_text=">= 3x ThreadPoolExecutor(4)"),
        ToolkitWorkload(
            "map", "sum(pool.map(f, range({size}))), trivial f; 4 workers",
            ("per_s", "items/s", True, "{:,.0f}"), 100_000, 10_000,
            (ToolkitEntry("ringq map (defaults)", _map_ringq(), TPE_MAP),
             ToolkitEntry("ringq map(buffersize=1024)", _map_ringq(buffersize=1024), TPE_MAP),
             ToolkitEntry("ringq map(chunksize=64)", _map_ringq(chunksize=64), TPE_MAP),
             ToolkitEntry(TPE_MAP, map_tpe, None)),
            target=3.0, target_text=">= 3x ThreadPoolExecutor.map"),
        ToolkitWorkload(
            "pipeline", "{size} ints through 3 stages of trivial functions, 1 worker each, queues of 1024",
            ("per_s", "items/s", True, "{:,.0f}"), 200_000, 20_000,
            (ToolkitEntry("ringq.Pipeline", pipeline_ringq, HAND),
             ToolkitEntry("hand-written chain, ringq.Queue", _hand_chain(_ringq_queue), HAND),
             ToolkitEntry(HAND, _hand_chain(queue.Queue), None)),
            target=5.0, target_text=">= 5x the hand-written queue.Queue chain"),
        ToolkitWorkload(
            "map-memory", "tracemalloc peak while taking {size} results of map over a generator",
            ("peak_bytes", "peak bytes", False, "{:,.0f}"), 100_000, 20_000,
            (ToolkitEntry("ringq map(buffersize=1000), endless generator", _memory_ringq(1.0), TPE_MEM),
             ToolkitEntry("ringq map(buffersize=1000), endless, 1/4 of the items", _memory_ringq(0.25), TPE_MEM),
             ToolkitEntry(TPE_MEM, memory_tpe, None)),
            target_text="flat, bounded by buffersize"),
    )
}


# --- running and reporting ---------------------------------------------------------------


@dataclass
class WorkloadRun:
    workload: ToolkitWorkload
    size: int
    rounds: Dict[str, List[Dict[str, float]]] = field(default_factory=dict)
    orders: List[List[str]] = field(default_factory=list)
    error: Optional[str] = None

    def median(self, entry: str, key: str) -> float:
        return statistics.median(r[key] for r in self.rounds[entry])

    def spread(self, entry: str, key: str) -> float:
        values = [r[key] for r in self.rounds[entry]]
        middle = statistics.median(values)
        return (max(values) - min(values)) / 2 / middle if middle else 0.0

    def ratio(self, entry: ToolkitEntry) -> Optional[float]:
        if entry.peer is None:
            return None
        key, _, higher, _ = self.workload.metric
        mine, theirs = self.median(entry.name, key), self.median(entry.peer, key)
        if not mine or not theirs:
            return None
        return mine / theirs if higher else theirs / mine


def run_workload(workload: ToolkitWorkload, size: int, rounds: int,
                 progress: Optional[TextIO] = None) -> WorkloadRun:
    """Warm up once (small), then *rounds* rounds, each entry once per round, rotated."""
    result = WorkloadRun(workload, size, {e.name: [] for e in workload.entries})
    entries = list(workload.entries)
    for entry in entries:
        entry.run(max(1, size // 50))
    for index in range(rounds):
        shift = index % len(entries)
        order = entries[shift:] + entries[:shift]
        result.orders.append([e.name for e in order])
        for entry in order:
            gc.collect()
            figures = entry.run(size)
            result.rounds[entry.name].append(figures)
        if progress is not None:
            progress.write(f"  {workload.name} round {index + 1}/{rounds} done\n")
            progress.flush()
    return result


def report(runs: Sequence[WorkloadRun], rounds: int) -> str:
    import ringq

    lines = [
        f"ringq {ringq.__version__} toolkit benchmarks (ringq.IMPLEMENTATION = {ringq.IMPLEMENTATION!r})",
        f"Python {sys.version.split()[0]}; medians of {rounds} rounds, entries interleaved "
        "(order rotated per round); ratio = times better than the peer; spread = half the range.",
    ]
    for run in runs:
        workload = run.workload
        key, label, _, fmt = workload.metric
        lines.append("")
        lines.append(f"{workload.name}: {workload.summary.format(size=f'{run.size:,}')}")
        if run.error:
            lines.append(f"  FAILED: {run.error}")
            continue
        rows = [["entry", label, "vs peer", "spread"]]
        for entry in workload.entries:
            ratio = run.ratio(entry)
            rows.append([entry.name, fmt.format(run.median(entry.name, key)),
                         "peer" if ratio is None else f"{ratio:.2f}x",
                         f"±{run.spread(entry.name, key) * 100:.1f}%"])
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            lines.append("  " + "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
        main_ratio = run.ratio(workload.entries[0])
        if workload.target is not None and main_ratio is not None:
            verdict = "met" if main_ratio >= workload.target else "MISSED"
            lines.append(f"  target {workload.target_text}: {main_ratio:.2f}x, {verdict}")
        elif workload.name == "map-memory":
            full = run.median(workload.entries[0].name, key)
            quarter = run.median(workload.entries[1].name, key)
            lines.append(f"  target {workload.target_text}: ringq's peak at 4x the items is "
                         f"{full / quarter if quarter else float('nan'):.2f}x its peak at 1x")
    return "\n".join(lines)


def to_json(runs: Sequence[WorkloadRun], rounds: int) -> Dict[str, Any]:
    import ringq

    return {
        "format": "ringq-bench-toolkit/1",
        "ringq": {"version": ringq.__version__, "implementation": ringq.IMPLEMENTATION},
        "python": sys.version,
        "rounds": rounds,
        "workloads": {
            run.workload.name: {
                "size": run.size, "error": run.error, "orders": run.orders,
                "entries": {
                    e.name: {"rounds": run.rounds[e.name], "peer": e.peer,
                             "ratio_vs_peer": None if run.error else run.ratio(e)}
                    for e in run.workload.entries},
            } for run in runs},
    }


def main(names: Sequence[str], rounds: int, quick: bool, stdout: TextIO, stderr: TextIO,
         json_path: Optional[str] = None) -> int:
    """Run the named toolkit workloads; print the report; 0, or 1 if one failed."""
    runs = []
    for name in names:
        workload = TOOLKIT_WORKLOADS[name]
        size = workload.quick_size if quick else workload.default_size
        stderr.write(f"toolkit {name}: {len(workload.entries)} entries x {rounds} rounds\n")
        try:
            runs.append(run_workload(workload, size, rounds, stderr))
        except ToolkitBenchError as exc:
            run = WorkloadRun(workload, size, {e.name: [] for e in workload.entries})
            run.error = str(exc)
            runs.append(run)
    stdout.write(report(runs, rounds) + "\n")
    if json_path:
        data = json.dumps(to_json(runs, rounds), indent=2)
        if json_path == "-":
            stdout.write(data + "\n")
        else:
            with open(json_path, "w", encoding="utf-8") as out:
                out.write(data + "\n")
    return 1 if any(run.error for run in runs) else 0
