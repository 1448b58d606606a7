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

Every run checks its results. They run through :mod:`ringq.bench.contest`: each
figure is the median of the rounds; within a round every entry runs once, in an
order rotated per round. Ratios are times better than the peer (above 1.00x ringq
wins).
"""
from __future__ import annotations

import gc
import itertools
import queue
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterator, Tuple

from .contest import Contender, Contest, check, contest_table
from .workloads import Metric

__all__ = ["CONTESTS", "TOOLKIT_WORKLOADS"]

WORKERS = 4


def _trivial(x: int) -> int:
    return x + 1


# --- executor ----------------------------------------------------------------------------


def executor_ringq(n: int) -> Dict[str, float]:
    import ringq

    start = time.perf_counter()
    with ringq.BoundedExecutor(WORKERS, max_pending=1024) as pool:
        futures = [pool.submit(_trivial, i) for i in range(n)]
        total = sum(f.result() for f in futures)
    seconds = time.perf_counter() - start
    check(total == n * (n + 1) // 2, "executor: wrong results")
    return {"seconds": seconds, "per_s": n / seconds}


def executor_tpe(n: int) -> Dict[str, float]:
    start = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(_trivial, i) for i in range(n)]
        total = sum(f.result() for f in futures)
    seconds = time.perf_counter() - start
    check(total == n * (n + 1) // 2, "executor: wrong results")
    return {"seconds": seconds, "per_s": n / seconds}


# --- map ---------------------------------------------------------------------------------


def _map_ringq(**options: Any) -> Callable[[int], Dict[str, float]]:
    def run(n: int) -> Dict[str, float]:
        import ringq

        start = time.perf_counter()
        with ringq.BoundedExecutor(WORKERS, max_pending=1024) as pool:
            total = sum(pool.map(_trivial, range(n), **options))
        seconds = time.perf_counter() - start
        check(total == n * (n + 1) // 2, "map: wrong results")
        return {"seconds": seconds, "per_s": n / seconds}

    return run


def map_tpe(n: int) -> Dict[str, float]:
    start = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        total = sum(pool.map(_trivial, range(n)))
    seconds = time.perf_counter() - start
    check(total == n * (n + 1) // 2, "map: wrong results")
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
    check(total == _expected_pipeline_sum(n), "pipeline: wrong results")
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
        check(total == _expected_pipeline_sum(n), "pipeline: wrong results")
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
        check(total == count * (count + 1) // 2, "map-memory: wrong results")
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
    check(total == n * (n + 1) // 2, "map-memory: wrong results")
    return {"seconds": seconds, "peak_bytes": float(peak), "items": float(n)}


# --- the catalogue -----------------------------------------------------------------------


TPE = f"ThreadPoolExecutor({WORKERS})"
TPE_MAP = TPE + ".map"
TPE_MEM = TPE + ".map, generator capped at the size"
HAND = "hand-written chain, queue.Queue"
PER_S = Metric("per_s", "items/s", higher_is_better=True)

CONTESTS: Dict[str, Contest] = contest_table(
    Contest(
        "executor", "toolkit", "{size} trivial tasks: submit all, then result() each; 4 workers",
        (Metric("per_s", "tasks/s", higher_is_better=True),), 100_000, 10_000,
        (Contender("ringq.BoundedExecutor(4, 1024)", executor_ringq, (TPE,)),
         Contender(TPE, executor_tpe)),
        target=3.0, target_text=">= 3x ThreadPoolExecutor(4)"),
    Contest(
        "map", "toolkit", "sum(pool.map(f, range({size}))), trivial f; 4 workers",
        (PER_S,), 100_000, 10_000,
        (Contender("ringq map (defaults)", _map_ringq(), (TPE_MAP,)),
         Contender("ringq map(buffersize=1024)", _map_ringq(buffersize=1024), (TPE_MAP,)),
         Contender("ringq map(chunksize=64)", _map_ringq(chunksize=64), (TPE_MAP,)),
         Contender(TPE_MAP, map_tpe)),
        target=3.0, target_text=">= 3x ThreadPoolExecutor.map"),
    Contest(
        "pipeline", "toolkit", "{size} ints through 3 stages of trivial functions, 1 worker each, queues of 1024",
        (PER_S,), 200_000, 20_000,
        (Contender("ringq.Pipeline", pipeline_ringq, (HAND,)),
         Contender("hand-written chain, ringq.Queue", _hand_chain(_ringq_queue), (HAND,)),
         Contender(HAND, _hand_chain(queue.Queue))),
        target=5.0, target_text=">= 5x the hand-written queue.Queue chain"),
    Contest(
        "map-memory", "toolkit", "tracemalloc peak while taking {size} results of map over a generator",
        (Metric("peak_bytes", "peak bytes", higher_is_better=False),), 100_000, 20_000,
        (Contender("ringq map(buffersize=1000), endless generator", _memory_ringq(1.0), (TPE_MEM,)),
         Contender("ringq map(buffersize=1000), endless, 1/4 of the items", _memory_ringq(0.25), (TPE_MEM,)),
         Contender(TPE_MEM, memory_tpe)),
        target_text="flat, bounded by buffersize: the two ringq rows' peaks about equal"),
)

#: The toolkit's contests (the same dict as CONTESTS; the name benchmarks/ uses).
TOOLKIT_WORKLOADS = CONTESTS
