"""Async workloads (issue 7): ringq against janus, culsans and asyncio.Queue.

Run with ``python -m ringq bench-async`` (options: ``--rounds``, ``--scale``,
``--loop uvloop``, ``--workload``). Peers that are not installed are skipped (``pip install
'ringq[bench]'`` brings janus and culsans).

Workloads, each checked (every item arrives, in order):

``thread->asyncio``
    A thread puts the ints ``0..n-1`` (maxsize 1024); a task on the loop gets them.
``asyncio->thread``
    A task puts ``0..n-1`` (maxsize 1024); a thread gets them.
``task->task``
    One loop, a producer task and a consumer task, maxsize 1024.
``pingpong``
    A thread and a task bounce an int through two queues of maxsize 1: the
    round-trip latency (microseconds per round trip).

Every round runs every queue once, the order rotated per round; the figure is the
median over the rounds; each ratio compares two medians of the same run.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import ringq

MAXSIZE = 1024

# A peer: name -> factory(maxsize) returning (put_sync, get_sync, aput, aget) once a loop runs.
Adapter = Tuple[Callable[[Any], None], Callable[[], Any], Callable[[Any], Any], Callable[[], Any]]


def _ringq(maxsize: int) -> Adapter:
    q: ringq.Queue[Any] = ringq.Queue(maxsize)
    return q.put, q.get, q.aput, q.aget


# Queues that need closing (janus, culsans) before their loop ends.
_to_close: List[Any] = []


async def _close_all() -> None:
    while _to_close:
        q = _to_close.pop()
        q.close()
        await q.wait_closed()


def _janus(maxsize: int) -> Adapter:
    import janus

    q: Any = janus.Queue(maxsize)
    _to_close.append(q)
    return q.sync_q.put, q.sync_q.get, q.async_q.put, q.async_q.get


def _culsans(maxsize: int) -> Adapter:
    import culsans

    q: Any = culsans.Queue(maxsize)
    _to_close.append(q)
    return q.sync_q.put, q.sync_q.get, q.async_q.put, q.async_q.get


def _asyncio_queue(maxsize: int) -> Adapter:
    q: asyncio.Queue[Any] = asyncio.Queue(maxsize)

    def no_threads(*_: Any) -> Any:
        raise RuntimeError("asyncio.Queue is not thread-safe")

    return no_threads, no_threads, q.put, q.get


def available_peers() -> Dict[str, Callable[[int], Adapter]]:
    peers: Dict[str, Callable[[int], Adapter]] = {"ringq": _ringq}
    for name, factory, module in (("janus", _janus, "janus"), ("culsans", _culsans, "culsans")):
        try:
            __import__(module)
        except ImportError:
            continue
        peers[name] = factory
    return peers


async def thread_to_asyncio(factory: Callable[[int], Adapter], n: int) -> float:
    put, _get, _aput, aget = factory(MAXSIZE)
    start = threading.Event()

    def produce() -> None:
        start.wait()
        for i in range(n):
            put(i)

    t = threading.Thread(target=produce, daemon=True)
    t.start()
    t0 = time.perf_counter()
    start.set()
    for i in range(n):
        if await aget() != i:
            raise AssertionError("thread->asyncio: item out of order or lost")
    elapsed = time.perf_counter() - t0
    t.join(10)
    return elapsed


async def asyncio_to_thread(factory: Callable[[int], Adapter], n: int) -> float:
    _put, get, aput, _aget = factory(MAXSIZE)
    done = threading.Event()
    failures: List[str] = []

    def consume() -> None:
        for i in range(n):
            if get() != i:
                failures.append("asyncio->thread: item out of order or lost")
                break
        done.set()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    t0 = time.perf_counter()
    for i in range(n):
        await aput(i)
    while not done.is_set():
        await asyncio.sleep(0.0005)
    elapsed = time.perf_counter() - t0
    t.join(10)
    if failures:
        raise AssertionError(failures[0])
    return elapsed


async def task_to_task(factory: Callable[[int], Adapter], n: int) -> float:
    _put, _get, aput, aget = factory(MAXSIZE)

    async def produce() -> None:
        for i in range(n):
            await aput(i)

    t0 = time.perf_counter()
    producer = asyncio.ensure_future(produce())
    for i in range(n):
        if await aget() != i:
            raise AssertionError("task->task: item out of order or lost")
    await producer
    return time.perf_counter() - t0


async def pingpong(factory: Callable[[int], Adapter], n: int) -> float:
    put1, _get1, _aput1, aget1 = factory(1)
    _put2, get2, aput2, _aget2 = factory(1)
    failures: List[str] = []

    def thread_side() -> None:
        for i in range(n):
            put1(i)
            if get2() != i:
                failures.append("pingpong: wrong reply")
                return

    t = threading.Thread(target=thread_side, daemon=True)
    t0 = time.perf_counter()
    t.start()
    for _ in range(n):
        await aput2(await aget1())
    t.join(10)
    elapsed = time.perf_counter() - t0
    if failures:
        raise AssertionError(failures[0])
    return elapsed / n * 1e6  # microseconds per round trip


WORKLOADS: Dict[str, Tuple[Callable[..., Any], int, str]] = {
    "thread->asyncio": (thread_to_asyncio, 100_000, "items/s"),
    "asyncio->thread": (asyncio_to_thread, 100_000, "items/s"),
    "task->task": (task_to_task, 200_000, "items/s"),
    "pingpong": (pingpong, 5_000, "us/round trip"),
}


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()  # type: ignore[no-any-return]
    return asyncio.new_event_loop()


def run(rounds: int = 5, scale: float = 1.0, loop_kind: str = "asyncio",
        workloads: Optional[List[str]] = None, out: Any = sys.stdout) -> Dict[str, Dict[str, float]]:
    peers = available_peers()
    results: Dict[str, Dict[str, float]] = {}
    for name in workloads or list(WORKLOADS):
        fn, size, unit = WORKLOADS[name]
        n = max(10, int(size * scale))
        kinds = dict(peers)
        if name == "task->task":
            kinds["asyncio.Queue"] = _asyncio_queue
        samples: Dict[str, List[float]] = {k: [] for k in kinds}
        order = list(kinds)
        for r in range(rounds + 1):  # round 0 warms up and is not recorded
            rot = order[r % len(order):] + order[: r % len(order)]
            for kind in rot:
                loop = _new_loop(loop_kind)
                try:
                    value = loop.run_until_complete(fn(kinds[kind], n if r else max(10, n // 20)))
                    loop.run_until_complete(_close_all())
                finally:
                    loop.close()
                if r:
                    samples[kind].append(value if unit.startswith("us") else n / value)
        results[name] = {k: statistics.median(v) for k, v in samples.items()}
        print(f"\n{name} (n={n}, {unit}, median of {rounds} rounds, loop={loop_kind})", file=out)
        base = results[name]["ringq"]
        for kind, value in results[name].items():
            if unit.startswith("us"):
                ratio = f"ringq is {value / base:.2f}x faster" if kind != "ringq" else ""
                print(f"  {kind:<14} {value:>12.1f} {unit}  {ratio}", file=out)
            else:
                ratio = f"ringq is {base / value:.2f}x" if kind != "ringq" else ""
                print(f"  {kind:<14} {value:>12,.0f} {unit}  {ratio}", file=out)
        out.flush()
    return results


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ringq bench-async", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every workload's size")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--workload", action="append", choices=list(WORKLOADS))
    args = parser.parse_args(argv)
    print(f"ringq {ringq.__version__} ({ringq.IMPLEMENTATION}), Python {sys.version.split()[0]}, "
          f"peers: {', '.join(available_peers())}")
    run(args.rounds, args.scale, args.loop, args.workload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
