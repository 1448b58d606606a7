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

Every pool has 2 workers (``--quick`` divides the sizes by 10). Pools are started
and warmed before the clock starts, except in ``pool-pipeline`` where starting
the processes is part of every contender's run.
"""
from __future__ import annotations

import json
import multiprocessing
import statistics
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple

__all__ = ["POOL_WORKLOADS", "main"]

WORKERS = 2
N_SUBMIT = 20_000
N_MAP = 200_000
N_PIPE = 400
BURN = 20_000  # loop iterations of the CPU-bound stage, per item


def _trivial(x: int) -> int:
    return x


def _first(x: int) -> int:
    return x + 1


def _burn(x: int) -> int:
    total = x
    for i in range(BURN):
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


def _chain_worker(inbox: Any, outbox: Any) -> None:
    while True:
        item = inbox.get()
        if item is None:
            outbox.put(None)
            return
        outbox.put(_burn(item))


def pipeline(kind: str, n: int) -> float:
    import ringq

    expected = sum(_burn(i + 1) for i in range(min(n, 20)))
    start = time.perf_counter()
    if kind == "mp.Queue chain":
        ctx = _ctx()
        q1, q2 = ctx.Queue(1000), ctx.Queue(1000)
        procs = [ctx.Process(target=_chain_worker, args=(q1, q2)) for _ in range(WORKERS)]
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
            pl.stage(_burn, workers=WORKERS, processes=(kind == "ringq processes"), mp_context=_ctx(),
                     ordered=True)
            pl.stage(_trivial, ordered=True)
            results = list(pl)
    seconds = time.perf_counter() - start
    if len(results) != n or (kind != "mp.Queue chain" and sum(results[:20]) != expected):
        raise RuntimeError(f"{kind}: wrong results")
    return n / seconds


# name: (description, unit, contenders, runner(kind, quick) -> figure)
POOL_WORKLOADS: Dict[str, Tuple[str, str, List[str], Callable[[str, bool], float]]] = {
    "pool-submit": (f"{N_SUBMIT:,} trivial tasks, submit all then result()", "tasks/s",
                    ["ringq", "ProcessPoolExecutor"],
                    lambda k, quick: submit(k, N_SUBMIT // (10 if quick else 1))),
    "pool-map": (f"map over {N_MAP:,} trivial items (ringq: default arguments)", "items/s",
                 ["ringq", "PPE.map(chunksize=1000)", "mp.Pool.imap(1000)"],
                 lambda k, quick: map_items(k, N_MAP // (10 if quick else 1))),
    "pool-pipeline": (f"3-stage pipeline, {N_PIPE} items, middle stage CPU-bound pure Python on 2 workers",
                      "items/s", ["ringq processes", "ringq threads", "mp.Queue chain"],
                      lambda k, quick: pipeline(k, N_PIPE // (10 if quick else 1))),
}


def run(names: Sequence[str], rounds: int, quick: bool, stderr: TextIO) -> Dict[str, Dict[str, Any]]:
    results: Dict[str, Dict[str, Any]] = {}
    for name in names:
        description, unit, kinds, runner = POOL_WORKLOADS[name]
        figures: Dict[str, List[float]] = {k: [] for k in kinds}
        for r in range(rounds):
            order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
            for kind in order:
                figures[kind].append(runner(kind, quick))
            stderr.write(f"{name} round {r + 1}/{rounds}: " + ", ".join(
                f"{k} {figures[k][-1]:.4g}" for k in kinds) + "\n")
            stderr.flush()
        results[name] = {"description": description, "unit": unit, "rounds": figures}
    return results


def report(results: Dict[str, Dict[str, Any]], rounds: int) -> str:
    lines = [f"ringq.ProcessExecutor and process stages vs process pools; medians of {rounds} "
             "interleaved rounds; ratio = the first row vs that row (above 1.00x the first wins)"]
    for name, res in results.items():
        medians = {k: statistics.median(v) for k, v in res["rounds"].items()}
        lines.append("")
        lines.append(f"{name}: {res['description']} ({res['unit']}, higher is better)")
        ours = next(iter(medians.values()))
        for i, (kind, value) in enumerate(medians.items()):
            spread = (max(res["rounds"][kind]) - min(res["rounds"][kind])) / 2 / value if value else 0.0
            ratio = f"  first {ours / value:.2f}x" if i and value else ""
            lines.append(f"  {kind:<24} {value:>14,.4g}  +-{spread * 100:4.0f}%{ratio}")
    return "\n".join(lines)


def main(names: Sequence[str], rounds: int, quick: bool, stdout: TextIO, stderr: TextIO,
         json_path: Optional[str] = None) -> int:
    """Run the process-pool workloads; the exit status (1 when a run failed)."""
    try:
        results = run(names, rounds, quick, stderr)
    except (RuntimeError, OSError) as exc:
        stderr.write(f"ringq bench: a process-pool workload failed: {exc}\n")
        return 1
    except KeyboardInterrupt:
        stderr.write("\nringq bench: interrupted\n")
        return 130
    text = report(results, rounds)
    if json_path == "-":
        json.dump(results, stdout, indent=2)
        stdout.write("\n")
        stderr.write(text + "\n")
    else:
        stdout.write(text + "\n")
        if json_path:
            with open(json_path, "w", encoding="utf-8") as out:
                json.dump(results, out, indent=2)
    return 0
