"""3 async stages of trivial coroutines over 200,000 items: ringq.Pipeline against the
chain of asyncio.Queues and tasks people write by hand (issue 20, section 6).

    python benchmarks/async_pipeline.py                 # 200,000 items, 5 rounds, asyncio's loop
    python benchmarks/async_pipeline.py --loop uvloop   # both sides on uvloop
    python benchmarks/async_pipeline.py --items 20000 --rounds 1   # a quick check

Entries, each run from a coroutine on the caller's loop, each checking its result:

``hand-written``
    a source task, one task per stage and the consumer, joined by
    ``asyncio.Queue(1024)`` s, a sentinel to stop: ``item = await q.get();
    await out.put(await fn(item))``. All on the caller's loop.
``ringq.Pipeline``
    ``Pipeline(range(n))`` with 3 ``async def`` stages (one worker each, queues of
    1024), consumed by ``async for``: the stages run on the pipeline's own loop (made
    by the same loop kind), the caller's loop awaits the results.
``ringq.Pipeline, sync for``
    the same pipeline consumed by a plain ``for`` (no caller loop at all).

Each figure is the median of the rounds (the entries interleave within a round);
the ratio is the hand-written chain's time over the entry's (above 1.00x ringq wins).
The script is not part of the test suite's timing: tests/test_examples.py runs it
once at a small size to check that it still works.
"""
import argparse
import asyncio
import statistics
import sys
import time

import ringq

_STOP = object()


async def trivial(x):
    return x + 1


def expected(n):
    return sum(range(n)) + 3 * n


async def hand_written(n):
    queues = [asyncio.Queue(1024) for _ in range(4)]

    async def source():
        put = queues[0].put
        for i in range(n):
            await put(i)
        await put(_STOP)

    async def stage(inq, outq):
        get, put = inq.get, outq.put
        while True:
            item = await get()
            if item is _STOP:
                await put(_STOP)
                return
            await put(await trivial(item))

    tasks = [asyncio.ensure_future(source())]
    tasks += [asyncio.ensure_future(stage(queues[k], queues[k + 1])) for k in range(3)]
    total = 0
    get = queues[3].get
    while True:
        item = await get()
        if item is _STOP:
            break
        total += item
    await asyncio.gather(*tasks)
    return total


async def ringq_async_for(n, loop_factory):
    async with ringq.Pipeline(range(n), loop_factory=loop_factory) as p:
        for _ in range(3):
            p.stage(trivial, maxsize=1024)
        total = 0
        async for item in p:
            total += item
    return total


def ringq_sync_for(n, loop_factory):
    with ringq.Pipeline(range(n), loop_factory=loop_factory) as p:
        for _ in range(3):
            p.stage(trivial, maxsize=1024)
        return sum(p)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args(argv)
    if args.loop == "uvloop":
        import uvloop
        new_loop = uvloop.new_event_loop
    else:
        new_loop = asyncio.new_event_loop
    n = args.items

    def on_loop(coro):
        loop = new_loop()
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.close()

    entries = {
        "hand-written": lambda: on_loop(hand_written(n)),
        "ringq.Pipeline": lambda: on_loop(ringq_async_for(n, new_loop)),
        "ringq.Pipeline, sync for": lambda: ringq_sync_for(n, new_loop),
    }
    times = {name: [] for name in entries}
    names = list(entries)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            total = entries[name]()
            times[name].append(time.perf_counter() - start)
            if total != expected(n):
                print(f"{name}: wrong total {total}, expected {expected(n)}", file=sys.stderr)
                return 1
    base = statistics.median(times["hand-written"])
    print(f"{n:,} items, 3 async stages of trivial coroutines, {args.loop} loop, "
          f"ringq {ringq.IMPLEMENTATION}, median of {args.rounds}")
    for name in names:
        t = statistics.median(times[name])
        print(f"  {name:26} {t:8.3f} s  {base / t:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
