"""``python -m ringq bench --workload processes``: ringq.ProcessExecutor and process
stages against the stdlib's process pools and a hand-written multiprocessing chain.

* ``pool-submit``: 20,000 trivial tasks, ``submit`` all then ``result()`` each
  (tasks/s): ``ringq.ProcessExecutor`` vs ``ProcessPoolExecutor``.
* ``pool-map``: ``map`` over 200,000 trivial items (items/s): ringq with default
  arguments vs ``ProcessPoolExecutor.map(chunksize=1000)`` and
  ``multiprocessing.Pool.imap(chunksize=1000)``.
* ``pool-pipeline``: a 3-stage pipeline whose middle stage is CPU-bound pure
  Python (items/s): ringq process stage vs the same pipeline on threads vs a
  hand-written ``multiprocessing.Queue`` chain (a queue per stage, a sentinel per
  process).
* ``pool-pipeline-light``: the same three contenders, with a middle stage 400 times
  lighter (50 loop iterations per item, a few microseconds): where moving the items
  costs as much as the work, which is where the queues differ.

Every pool has 2 workers (``--quick`` divides the sizes by 10). Pools are started
and warmed before the clock starts, except in ``pool-pipeline`` where starting
the processes is part of every contender's run. They run through
:mod:`ringq.bench.contest` (medians of interleaved rounds; the first row's ratio
against each of the others).
"""
from __future__ import annotations

import functools
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Dict, Sequence, Tuple

from .contest import Contender, Contest, contest_table
from .workloads import Metric

__all__ = ["CONTESTS", "map_items", "pipeline", "submit"]

WORKERS = 2
N_SUBMIT = 20_000
N_MAP = 200_000
N_PIPE = 400
N_PIPE_LIGHT = 100_000
BURN = 20_000  # loop iterations of the CPU-bound stage, per item
BURN_LIGHT = 50  # the same, for pool-pipeline-light


def _trivial(x: int) -> int:
    return x


def _first(x: int) -> int:
    return x + 1


def _burn(x: int, iterations: int = BURN) -> int:
    total = x
    for i in range(iterations):
        total = (total + i * i) % 1_000_003
    return total


def _ctx() -> Any:
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)


def submit(kind: str, n: int) -> float:
    import ringq

    pool: Any = (ringq.ProcessExecutor(WORKERS, mp_context=_ctx()) if kind == "ringq"
                 else ProcessPoolExecutor(WORKERS, mp_context=_ctx()))
    with pool:
        pool.submit(_trivial, 0).result()
        start = time.perf_counter()
        futures = [pool.submit(_trivial, i) for i in range(n)]
        total = sum(f.result() for f in futures)
        seconds = time.perf_counter() - start
    if total != n * (n - 1) // 2:
        raise RuntimeError(f"{kind}: wrong results")
    return n / seconds


def map_items(kind: str, n: int) -> float:
    import ringq

    if kind == "mp.Pool.imap(1000)":
        with _ctx().Pool(WORKERS) as mp_pool:
            mp_pool.apply(_trivial, (0,))
            start = time.perf_counter()
            total = sum(mp_pool.imap(_trivial, range(n), chunksize=1000))
            seconds = time.perf_counter() - start
    else:
        pool: Any = (ringq.ProcessExecutor(WORKERS, mp_context=_ctx()) if kind == "ringq"
                     else ProcessPoolExecutor(WORKERS, mp_context=_ctx()))
        with pool:
            pool.submit(_trivial, 0).result()
            start = time.perf_counter()
            if kind == "ringq":
                total = sum(pool.map(_trivial, range(n)))
            else:
                total = sum(pool.map(_trivial, range(n), chunksize=1000))
            seconds = time.perf_counter() - start
    if total != n * (n - 1) // 2:
        raise RuntimeError(f"{kind}: wrong results")
    return n / seconds


def _chain_worker(inbox: Any, outbox: Any, burn: int) -> None:
    while True:
        item = inbox.get()
        if item is None:
            outbox.put(None)
            return
        outbox.put(_burn(item, burn))


def pipeline(kind: str, n: int, burn: int = BURN) -> float:
    import ringq

    expected = sum(_burn(i + 1, burn) for i in range(min(n, 20)))
    start = time.perf_counter()
    if kind == "mp.Queue chain":
        ctx = _ctx()
        q1, q2 = ctx.Queue(1000), ctx.Queue(1000)
        procs = [ctx.Process(target=_chain_worker, args=(q1, q2, burn)) for _ in range(WORKERS)]
        for p in procs:
            p.start()

        def feed() -> None:
            for i in range(n):
                q1.put(_first(i))
            for _ in procs:
                q1.put(None)

        feeder = threading.Thread(target=feed)
        feeder.start()
        results = []
        ended = 0
        while ended < len(procs):
            item = q2.get()
            if item is None:
                ended += 1
            else:
                results.append(item)
        feeder.join()
        for p in procs:
            p.join()
    else:
        with ringq.Pipeline(range(n)) as pl:
            pl.stage(_first)
            pl.stage(functools.partial(_burn, iterations=burn), workers=WORKERS,
                     processes=(kind == "ringq processes"), mp_context=_ctx(),
                     ordered=True)
            pl.stage(_trivial, ordered=True)
            results = list(pl)
    seconds = time.perf_counter() - start
    if len(results) != n or (kind != "mp.Queue chain" and sum(results[:20]) != expected):
        raise RuntimeError(f"{kind}: wrong results")
    return n / seconds


def _contenders(runner: Callable[[str, int], float], key: str, kinds: Sequence[str]) -> Tuple[Contender, ...]:
    """The first of *kinds* against each of the others; a run returns {key: runner(kind, n)}."""

    def contender(kind: str) -> Contender:
        def run(n: int) -> Dict[str, float]:
            return {key: runner(kind, n)}

        return Contender(kind, run, tuple(kinds[1:]) if kind == kinds[0] else ())

    return tuple(contender(kind) for kind in kinds)


#: ProcessExecutor and process stages, run by ``--workload processes`` (all) or by name.
CONTESTS: Dict[str, Contest] = contest_table(
    Contest("pool-submit", "processes", "{size} trivial tasks, submit all then result()",
            (Metric("per_s", "tasks/s", higher_is_better=True),), N_SUBMIT, N_SUBMIT // 10,
            _contenders(submit, "per_s", ["ringq", "ProcessPoolExecutor"])),
    Contest("pool-map", "processes", "map over {size} trivial items (ringq: default arguments)",
            (Metric("per_s", "items/s", higher_is_better=True),), N_MAP, N_MAP // 10,
            _contenders(map_items, "per_s", ["ringq", "PPE.map(chunksize=1000)", "mp.Pool.imap(1000)"])),
    Contest("pool-pipeline", "processes",
            "3-stage pipeline, {size} items, middle stage CPU-bound pure Python on 2 workers",
            (Metric("per_s", "items/s", higher_is_better=True, fmt="{:,.1f}"),), N_PIPE, N_PIPE // 10,
            _contenders(pipeline, "per_s", ["ringq processes", "ringq threads", "mp.Queue chain"])),
    Contest("pool-pipeline-light", "processes",
            "3-stage pipeline, {size} items, middle stage pure Python of a few us per item on 2 workers",
            (Metric("per_s", "items/s", higher_is_better=True),), N_PIPE_LIGHT, N_PIPE_LIGHT // 10,
            _contenders(functools.partial(pipeline, burn=BURN_LIGHT), "per_s",
                        ["ringq processes", "ringq threads", "mp.Queue chain"])),
)
