"""The async toolkit against what asyncio users write instead (issue 20, section 6).

``python -m ringq bench --workload async`` runs the three (only when named; each
also by its own name):

``async-pipeline``
    200,000 ints through 3 ``async def`` stages of trivial coroutines (one worker
    each, queues of 1024), into the caller: ``ringq.Pipeline`` consumed by
    ``async for`` from a coroutine on the caller's loop (the stages run on the
    pipeline's own loop), the same pipeline consumed by a plain ``for``, against
    the chain people write by hand on one loop: a source task, one task per stage
    and the consumer, joined by ``asyncio.Queue(1024)`` s, a sentinel to stop.
    Every run checks the sum of what arrived. Each run makes a fresh event loop.
``aacquire``
    ``await limiter.aacquire()`` 200,000 times in a row at a rate the limiter never
    binds (10^9 a second): ``ringq.RateLimiter`` against aiolimiter's
    ``AsyncLimiter.acquire()`` (``pip install 'ringq[bench]'``; skipped, with a line
    saying so, when aiolimiter is not installed). The cost of the call itself.
``loop-lag``
    How late a 1 ms tick on the event loop wakes while 8 threads hammer, without
    ever blocking, the same ``ringq.RateLimiter`` (``acquire()`` at a rate that never
    binds) and one ``ringq.Queue(1024)`` (``put`` then ``get``), while a second task
    on the loop takes a token of that limiter once a tick (``await asyncio.sleep(0.001)``
    then ``await limiter.aacquire()``: the third figure is the p99 of how long those
    calls took, the one still waiting at the end counted as far as it got). Against
    the same 8 threads doing ``put`` then ``get`` on a plain ``queue.Queue(1024)`` beside
    the loop (the GIL's floor), and, to tell the threads' share from the loop's own
    ``aacquire``, the ringq threads with no ``aacquire`` on the loop. The tick is
    ``await asyncio.sleep(0.001)`` (a ``loop.call_later`` timer) in a task on the loop
    thread; its lateness is the loop's clock when the task resumes minus when the
    timer was due. A run ticks for 3 s (``--quick``: 0.5 s), however many ticks
    that is. Reported: the median (p50) and the 99th percentile (p99, nearest rank)
    of the lateness over the ticks of a run, each the median of the rounds. The 8 threads
    compete for the GIL with the loop thread, so the plain queue's figure is the
    GIL's floor; ringq must not add to it. Each run checks that every thread ran, that
    the queue is empty after their balanced puts and gets, and that nothing failed.
"""
from __future__ import annotations

import asyncio
import importlib.util
import math
import queue
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from .contest import Contender, Contest, check, contest_table
from .workloads import Metric

__all__ = ["CONTESTS", "hand_written_chain", "pipeline_contenders"]

STAGES = 3
MAXSIZE = 1024
#: A rate no run comes near: the limiter never makes a caller wait.
UNBOUND_RATE = 1e9
UNBOUND_BURST = 1000
LAG_THREADS = 8
TICK = 0.001

NewLoop = Callable[[], asyncio.AbstractEventLoop]
Figures = Dict[str, float]


def _on_new_loop(new_loop: NewLoop, main: Callable[[], Any]) -> Any:
    loop = new_loop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


# --- async-pipeline ---------------------------------------------------------------------

_STOP = object()


async def trivial(x: int) -> int:
    return x + 1


def expected_sum(n: int) -> int:
    return n * (n - 1) // 2 + STAGES * n


async def hand_written_chain(n: int) -> int:
    """The chain by hand on the running loop: a task per stage, asyncio.Queues, a sentinel."""
    queues: List[asyncio.Queue[Any]] = [asyncio.Queue(MAXSIZE) for _ in range(STAGES + 1)]

    async def source() -> None:
        put = queues[0].put
        for i in range(n):
            await put(i)
        await put(_STOP)

    async def stage(inq: asyncio.Queue[Any], outq: asyncio.Queue[Any]) -> None:
        get, put = inq.get, outq.put
        while True:
            item = await get()
            if item is _STOP:
                await put(_STOP)
                return
            await put(await trivial(item))

    tasks = [asyncio.ensure_future(source())]
    tasks += [asyncio.ensure_future(stage(queues[k], queues[k + 1])) for k in range(STAGES)]
    total = 0
    get = queues[STAGES].get
    while True:
        item = await get()
        if item is _STOP:
            break
        total += item
    await asyncio.gather(*tasks)
    return int(total)


async def pipeline_async_for(n: int, new_loop: NewLoop) -> int:
    import ringq

    async with ringq.Pipeline(range(n), loop_factory=new_loop) as p:
        for _ in range(STAGES):
            p.stage(trivial, maxsize=MAXSIZE)
        total = 0
        async for item in p:
            total += item
    return total


def pipeline_sync_for(n: int, new_loop: NewLoop) -> int:
    import ringq

    with ringq.Pipeline(range(n), loop_factory=new_loop) as p:
        for _ in range(STAGES):
            p.stage(trivial, maxsize=MAXSIZE)
        return int(sum(p))


def _timed_total(name: str, n: int, call: Callable[[], int]) -> Figures:
    start = time.perf_counter()
    total = call()
    seconds = time.perf_counter() - start
    check(total == expected_sum(n), f"{name}: the items summed to {total}, expected {expected_sum(n)}: "
                                    "items were lost, duplicated or not run through every stage")
    return {"seconds": seconds, "items_per_s": n / seconds}


HAND = "hand-written asyncio.Queue chain"


def pipeline_contenders(new_loop: NewLoop = asyncio.new_event_loop) -> Tuple[Contender, ...]:
    """The async-pipeline contenders, every loop made by *new_loop* (``uvloop.new_event_loop``...)."""
    return (
        Contender("ringq.Pipeline, async for",
                  lambda n: _timed_total("ringq.Pipeline, async for", n,
                                         lambda: _on_new_loop(new_loop, lambda: pipeline_async_for(n, new_loop))),
                  versus=(HAND,)),
        Contender("ringq.Pipeline, sync for",
                  lambda n: _timed_total("ringq.Pipeline, sync for", n, lambda: pipeline_sync_for(n, new_loop)),
                  versus=(HAND,)),
        Contender(HAND, lambda n: _timed_total(HAND, n, lambda: _on_new_loop(new_loop, lambda: hand_written_chain(n)))),
    )


# --- aacquire ---------------------------------------------------------------------------


def _aiolimiter_missing() -> Optional[str]:
    if importlib.util.find_spec("aiolimiter") is None:
        return "aiolimiter is not installed (pip install 'ringq[bench]' or pip install aiolimiter)"
    return None


def _acquires(name: str, n: int, main: Callable[[], Any]) -> Figures:
    start = time.perf_counter()
    done = _on_new_loop(asyncio.new_event_loop, main)
    seconds = time.perf_counter() - start
    check(done == n, f"{name}: {done} of {n} acquisitions completed")
    return {"seconds": seconds, "per_s": n / seconds}


def aacquire_ringq(n: int) -> Figures:
    import ringq

    async def main() -> int:
        limiter = ringq.RateLimiter(UNBOUND_RATE, UNBOUND_BURST)
        aacquire = limiter.aacquire
        done = 0
        for _ in range(n):
            if await aacquire():
                done += 1
        return done

    return _acquires("ringq", n, main)


def aacquire_aiolimiter(n: int) -> Figures:
    from aiolimiter import AsyncLimiter

    async def main() -> int:
        limiter = AsyncLimiter(UNBOUND_RATE, 1.0)  # 10^9 per second, the same rate
        acquire = limiter.acquire
        done = 0
        for _ in range(n):
            await acquire()
            done += 1
        return done

    return _acquires("aiolimiter", n, main)


# --- loop-lag ---------------------------------------------------------------------------


def percentile(sorted_values: List[float], fraction: float) -> float:
    """The nearest-rank percentile of an ascending list (``fraction`` 0.99 for p99)."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _loop_lag(with_ringq: bool, loop_takes: bool = True) -> Callable[[int], Figures]:
    """A loop-lag run: the threads hammer ringq's limiter and queue (or a queue.Queue);
    with *loop_takes*, a task on the loop also takes a token of that limiter once a tick."""
    def run(milliseconds: int) -> Figures:
        import ringq

        limiter = ringq.RateLimiter(UNBOUND_RATE, UNBOUND_BURST) if with_ringq else None
        q: Any = ringq.Queue(MAXSIZE) if with_ringq else queue.Queue(MAXSIZE)
        stop = threading.Event()
        counts = [0] * LAG_THREADS
        errors: List[str] = []

        def hammer(index: int) -> None:
            put, get = q.put, q.get
            acquire = limiter.acquire if limiter is not None else None
            done = 0
            try:
                while not stop.is_set():
                    for i in range(100):
                        if acquire is not None:
                            acquire()
                        put(i)
                        get()  # never waits: this thread's own put is ahead of it
                    done += 100
            except BaseException as exc:  # noqa: BLE001 - reported by the check below
                errors.append(f"{type(exc).__name__}: {exc}")
            counts[index] = done

        async def ticker(end: float, waits: List[float]) -> List[float]:
            # Ticks until *end*, and past it until the taker has timed one aacquire: on a
            # loaded machine one tick can outlast a short run before the taker's first turn.
            loop = asyncio.get_running_loop()
            lateness: List[float] = []
            must_wait = limiter is not None and loop_takes
            while not lateness or loop.time() < end or (must_wait and not waits):
                due = loop.time() + TICK
                await asyncio.sleep(TICK)
                lateness.append(loop.time() - due)
            return lateness

        async def taker(waits: List[float]) -> None:
            # The loop's own use of the limiter, once a tick: how long each aacquire takes.
            loop = asyncio.get_running_loop()
            while True:
                await asyncio.sleep(TICK)
                if limiter is not None and loop_takes:
                    started = loop.time()
                    try:
                        if not await limiter.aacquire():
                            errors.append("the loop's aacquire() returned False without a timeout")
                    finally:  # the one still waiting when the run ends counts as far as it got
                        waits.append(loop.time() - started)

        async def both() -> Tuple[List[float], List[float]]:
            loop = asyncio.get_running_loop()
            waits: List[float] = []
            side = asyncio.ensure_future(taker(waits))
            try:
                lateness = await ticker(loop.time() + milliseconds / 1e3, waits)
            finally:
                side.cancel()
                await asyncio.gather(side, return_exceptions=True)
            return lateness, waits

        threads = [threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(LAG_THREADS)]
        for thread in threads:
            thread.start()
        try:
            lateness, waits = _on_new_loop(asyncio.new_event_loop, both)
        finally:
            stop.set()
            for thread in threads:
                thread.join(60)
        name = "ringq" if with_ringq else "queue.Queue"
        check(not any(thread.is_alive() for thread in threads), f"{name}: a hammering thread did not stop")
        check(not errors, f"{name}: a hammering thread failed: {'; '.join(errors)}")
        check(all(counts), f"{name}: a hammering thread never ran (operations per thread: {counts})")
        check(q.qsize() == 0, f"{name}: {q.qsize()} items left in the queue after balanced puts and gets")
        check(limiter is None or not loop_takes or bool(waits), f"{name}: the loop never called aacquire()")
        lateness.sort()
        figures = {"p99_ms": percentile(lateness, 0.99) * 1e3, "p50_ms": percentile(lateness, 0.50) * 1e3,
                   "ticks": float(len(lateness)), "thread_ops": float(sum(counts))}
        if waits:
            waits.sort()
            figures.update(aacquire_p99_ms=percentile(waits, 0.99) * 1e3, aacquires=float(len(waits)))
        return figures

    return run


# --- the catalogue ----------------------------------------------------------------------

ITEMS = Metric("items_per_s", "items/s", higher_is_better=True)
RING_LAG = "ringq.RateLimiter + ringq.Queue"
RING_LAG_THREADS = "the same, no aacquire on the loop"
PLAIN_LAG = "queue.Queue beside the loop"

CONTESTS: Dict[str, Contest] = contest_table(
    Contest(
        "async-pipeline", "async",
        "{size} ints through 3 async def stages of trivial coroutines, 1 worker each, queues of 1024",
        (ITEMS,), default_size=200_000, quick_size=20_000,
        entries=pipeline_contenders(),
        target=3.0, target_text=">= 3x the hand-written asyncio.Queue chain"),
    Contest(
        "aacquire", "async",
        "{size} x await acquire() in a row at a rate that never binds (10^9/s)",
        (Metric("per_s", "acquires/s", higher_is_better=True),), default_size=200_000, quick_size=20_000,
        entries=(Contender("ringq.RateLimiter.aacquire", aacquire_ringq, versus=("aiolimiter.AsyncLimiter",)),
                 Contender("aiolimiter.AsyncLimiter", aacquire_aiolimiter, missing=_aiolimiter_missing)),
        target=2.0, target_text=">= 2x aiolimiter"),
    Contest(
        "loop-lag", "async",
        f"lateness of a {TICK * 1e3:g} ms asyncio.sleep (loop.call_later) tick on the loop thread, ticking for "
        f"{{size}} ms, while {LAG_THREADS} threads hammer one ringq.RateLimiter + ringq.Queue (or a plain "
        "queue.Queue) without blocking; p99 and p50 of the lateness, and of the loop's aacquire() calls",
        (Metric("p99_ms", "p99 lag ms", higher_is_better=False, fmt="{:,.2f}"),
         Metric("p50_ms", "p50 lag ms", higher_is_better=False, fmt="{:,.2f}"),
         Metric("aacquire_p99_ms", "aacquire p99 ms", higher_is_better=False, fmt="{:,.2f}")),
        default_size=3000, quick_size=500,
        entries=(Contender(RING_LAG, _loop_lag(True), versus=(PLAIN_LAG,)),
                 Contender(RING_LAG_THREADS, _loop_lag(True, loop_takes=False), versus=(PLAIN_LAG,)),
                 Contender(PLAIN_LAG, _loop_lag(False))),
        target=1.0, target_text="p99 no worse than beside a plain queue.Queue (the GIL's floor)"),
)
