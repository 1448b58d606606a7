"""Benchmarks of ringq.ProcessQueue against the queues people use between processes.

``python -m ringq bench --workload process`` (not in the default run). The peers:
``multiprocessing.Queue``, ``multiprocessing.SimpleQueue`` and faster-fifo
(``pip install faster-fifo``; skipped when it is not installed). Workloads:

``process-1to1``      one producer process, one consumer (this process), small ints, one per call
``process-batch``     the same in batches of 1,000 (``put_many``/``get_many``); only the
                      queues that have batch calls (ringq, faster-fifo)
``process-4x4``       4 producer and 4 consumer processes, small ints, per item; every item
                      is checked to arrive exactly once (count and sum)
``process-1mib``      1 MiB ``bytes`` items, GB/s
``process-numpy``     1 MiB numpy arrays, GB/s (when numpy is installed)
``process-pingpong``  a round trip through two queues to an echo process, in microseconds;
                      ``multiprocessing.Pipe`` (a duplex pipe) is the reference here

Method (:mod:`ringq.bench.contest`): every round runs every queue once, in an order
rotated by the round; the figure is the median of the rounds, the ratio is ringq's
median over the peer's (above 1.00x ringq wins; for latency the peer's over ringq's).
``--quick`` runs a tenth of the items (a quarter of the 1 MiB ones, a fifth of the
round trips). Process start-up is not timed:
the children start, signal that they are ready, and the clock starts when the parent
lets them go. The start method is fork where it exists (spawn elsewhere).
"""
from __future__ import annotations

import importlib.util
import multiprocessing as mp
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from .contest import Contender, Contest, contest_table
from .workloads import Metric

__all__ = ["CONTESTS", "KINDS", "four_by_four", "one_to_one", "ping_pong"]

N_ITEM = 100_000
N_BATCH = 1_000_000
BATCH = 1000
N_4X4 = 100_000
N_MIB = 200
N_PING = 5_000
MIB = 1 << 20
CAPACITY = 16 * MIB  # ringq.ProcessQueue's default; faster-fifo gets the same


def _ctx() -> Any:
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


# --- the queues ---------------------------------------------------------------------


def _make(kind: str, maxsize: int) -> Any:
    ctx = _ctx()
    if kind == "ringq":
        import ringq

        return ringq.ProcessQueue(maxsize, CAPACITY)
    if kind == "mp.Queue":
        return ctx.Queue(maxsize)
    if kind == "mp.SimpleQueue":
        return ctx.SimpleQueue()
    if kind == "faster-fifo":
        import faster_fifo

        return faster_fifo.Queue(max_size_bytes=CAPACITY)
    raise ValueError(kind)


def _put_many(kind: str, q: Any, items: List[Any]) -> None:
    if kind == "ringq":
        q.put_many(items)
    else:  # faster-fifo
        q.put_many(items, block=True, timeout=60)


def _get_many(kind: str, q: Any) -> List[Any]:
    if kind == "ringq":
        return q.get_many(BATCH)
    return q.get_many(block=True, timeout=60, max_messages_to_get=BATCH)


def _get(kind: str, q: Any) -> Any:
    if kind == "faster-fifo":
        return q.get(block=True, timeout=60)
    return q.get()


def _close(kind: str, q: Any) -> None:
    if kind == "ringq":
        q.close()
    elif kind == "mp.Queue":
        q.close()
        q.join_thread()
    elif kind == "mp.SimpleQueue" and hasattr(q, "close"):
        q.close()


# --- the children (module level: picklable for spawn) ----------------------------------


def _producer(kind: str, q: Any, n: int, start: int, mode: str, ready: Any, go: Any) -> None:
    if mode == "mib":
        item: Any = b"x" * MIB
    elif mode == "numpy":
        import numpy

        item = numpy.ones(MIB // 8, dtype=numpy.float64)
    ready.release()
    go.wait()
    if mode == "batch":
        for i in range(start, start + n, BATCH):
            _put_many(kind, q, list(range(i, i + BATCH)))
    elif mode in ("mib", "numpy"):
        for _ in range(n):
            q.put(item)
    else:
        for i in range(start, start + n):
            q.put(i)


def _consumer(kind: str, q: Any, results: Any, ready: Any, go: Any) -> None:
    ready.release()
    go.wait()
    count = total = 0
    while True:
        item = _get(kind, q)
        if item is None:
            break
        count += 1
        total += item
    results.put((count, total))


def _echo(kind: str, ping: Any, pong: Any, ready: Any) -> None:
    ready.release()
    while True:
        item = _get(kind, ping)
        pong.put(item)
        if item is None:
            return


def _pipe_echo(conn: Any, ready: Any) -> None:
    ready.release()
    while True:
        item = conn.recv()
        conn.send(item)
        if item is None:
            return


# --- the workloads ----------------------------------------------------------------------


def _start(procs: Sequence[Any], ready: Any) -> None:
    for p in procs:
        p.start()
    for _ in procs:
        if not ready.acquire(timeout=120):
            raise RuntimeError("a benchmark child did not start")


def _finish(procs: Sequence[Any]) -> None:
    for p in procs:
        p.join(120)
        if p.is_alive():
            p.kill()
            raise RuntimeError("a benchmark child hung")
        if p.exitcode:
            raise RuntimeError(f"a benchmark child failed (exit code {p.exitcode})")


def one_to_one(kind: str, n: int, mode: str) -> float:
    """Items/s (or GB/s for mib/numpy) from one producer process to this process."""
    ctx = _ctx()
    q = _make(kind, 1000 if mode in ("item", "batch") else 8)
    ready, go = ctx.Semaphore(0), ctx.Event()
    p = ctx.Process(target=_producer, args=(kind, q, n, 0, mode, ready, go))
    _start([p], ready)
    got = 0
    start = time.perf_counter()
    go.set()
    if mode == "batch":
        total = 0
        while got < n:
            items = _get_many(kind, q)
            got += len(items)
            total += sum(items)
        ok = total == n * (n - 1) // 2
    elif mode in ("mib", "numpy"):
        nbytes = 0
        while got < n:
            item = _get(kind, q)
            nbytes += item.nbytes if mode == "numpy" else len(item)
            got += 1
        ok = nbytes == n * MIB
    else:
        total = 0
        while got < n:
            total += _get(kind, q)
            got += 1
        ok = total == n * (n - 1) // 2
    seconds = time.perf_counter() - start
    _finish([p])
    _close(kind, q)
    if not ok:
        raise RuntimeError(f"{kind}: wrong items received")
    return n * MIB / seconds / 1e9 if mode in ("mib", "numpy") else n / seconds


def four_by_four(kind: str, n: int) -> float:
    """Items/s through 4 producer and 4 consumer processes; exactly once or RuntimeError."""
    ctx = _ctx()
    q = _make(kind, 1000)
    results = ctx.SimpleQueue()
    ready, go = ctx.Semaphore(0), ctx.Event()
    share = n // 4
    producers = [ctx.Process(target=_producer, args=(kind, q, share, k * share, "item", ready, go))
                 for k in range(4)]
    consumers = [ctx.Process(target=_consumer, args=(kind, q, results, ready, go)) for _ in range(4)]
    _start(producers + consumers, ready)
    start = time.perf_counter()
    go.set()
    _finish(producers)
    for _ in consumers:
        q.put(None)
    totals = [results.get() for _ in consumers]
    seconds = time.perf_counter() - start
    _finish(consumers)
    _close(kind, q)
    count = sum(c for c, _ in totals)
    total = sum(t for _, t in totals)
    if count != 4 * share or total != (4 * share) * (4 * share - 1) // 2:
        raise RuntimeError(f"{kind}: 4x4 lost or duplicated items ({count} of {4 * share})")
    return count / seconds


def ping_pong(kind: str, n: int) -> float:
    """Microseconds per round trip to an echo process."""
    ctx = _ctx()
    ready = ctx.Semaphore(0)
    if kind == "mp.Pipe":
        ours, theirs = ctx.Pipe()
        p = ctx.Process(target=_pipe_echo, args=(theirs, ready))
        _start([p], ready)
        start = time.perf_counter()
        for i in range(n):
            ours.send(i)
            ours.recv()
        seconds = time.perf_counter() - start
        ours.send(None)
        ours.recv()
        _finish([p])
        return seconds / n * 1e6
    ping, pong = _make(kind, 1), _make(kind, 1)
    p = ctx.Process(target=_echo, args=(kind, ping, pong, ready))
    _start([p], ready)
    start = time.perf_counter()
    for i in range(n):
        ping.put(i)
        _get(kind, pong)
    seconds = time.perf_counter() - start
    ping.put(None)
    _get(kind, pong)
    _finish([p])
    _close(kind, ping)
    _close(kind, pong)
    return seconds / n * 1e6


def _numpy_missing() -> Optional[str]:
    if importlib.util.find_spec("numpy") is None:
        return "numpy is not installed (pip install numpy)"
    return None


def _faster_fifo_missing() -> Optional[str]:
    if importlib.util.find_spec("faster_fifo") is None:
        return "faster-fifo is not installed (pip install faster-fifo)"
    return None


KINDS = ("ringq", "mp.Queue", "mp.SimpleQueue", "faster-fifo")


def _contenders(runner: Callable[[str, int], float], key: str, kinds: Sequence[str] = KINDS,
                needs: Optional[Callable[[], Optional[str]]] = None) -> Tuple[Contender, ...]:
    """ringq against every other kind in *kinds*; each contender's run returns {key: runner(kind, n)}."""

    def contender(kind: str) -> Contender:
        def run(n: int) -> Dict[str, float]:
            return {key: runner(kind, n)}

        def missing() -> Optional[str]:
            return (needs() if needs is not None else None) or (
                _faster_fifo_missing() if kind == "faster-fifo" else None)

        versus = tuple(k for k in kinds if k != "ringq") if kind == "ringq" else ()
        return Contender(kind, run, versus, missing)

    return tuple(contender(kind) for kind in kinds)


ITEMS = Metric("items_per_s", "items/s", higher_is_better=True)
GBS = Metric("gb_per_s", "GB/s", higher_is_better=True, fmt="{:,.2f}")

#: The process workloads, run by ``--workload process`` (all) or by name.
CONTESTS: Dict[str, Contest] = contest_table(
    Contest("process-1to1", "process", "1 producer process -> 1 consumer, {size} small ints, per item",
            (ITEMS,), N_ITEM, N_ITEM // 10, _contenders(lambda k, n: one_to_one(k, n, "item"), ITEMS.key)),
    Contest("process-batch", "process", "1 -> 1, {size} small ints, put_many/get_many of 1,000",
            (ITEMS,), N_BATCH, N_BATCH // 10,
            _contenders(lambda k, n: one_to_one(k, n, "batch"), ITEMS.key, ("ringq", "faster-fifo"))),
    Contest("process-4x4", "process", "4 producer + 4 consumer processes, {size} small ints, exactly once",
            (ITEMS,), N_4X4, N_4X4 // 10, _contenders(four_by_four, ITEMS.key)),
    Contest("process-1mib", "process", "1 -> 1, {size} items of 1 MiB bytes",
            (GBS,), N_MIB, N_MIB // 4, _contenders(lambda k, n: one_to_one(k, n, "mib"), GBS.key)),
    Contest("process-numpy", "process", "1 -> 1, {size} 1 MiB numpy arrays",
            (GBS,), N_MIB, N_MIB // 4,
            _contenders(lambda k, n: one_to_one(k, n, "numpy"), GBS.key, needs=_numpy_missing)),
    Contest("process-pingpong", "process", "{size} round trips to an echo process",
            (Metric("us", "us/round trip", higher_is_better=False, fmt="{:,.1f}"),), N_PING, N_PING // 5,
            _contenders(ping_pong, "us", KINDS + ("mp.Pipe",))),
)
