"""Seed 003's WorkerPool, async: 2 producers, 4 consumers, a queue of 100, a clean stop.

The seed's pool runs consumers in ``while (this.running)`` loops around a shared
queue; ``stop()`` leaves consumers blocked in ``get()`` for ever and drops what is
queued. Here the producers feed a ``ringq.Queue(100)`` and shut it down when they
are done; a ``ringq.Pipeline`` with an ``async def`` stage runs the 4 consumers as
tasks, drains the queue, and ends when it is empty. An error in one item is caught
per item, as in the seed. The stdlib version is
benchmarks/seed003_stdlib/async_worker_pool.py.

Run: python examples/async_worker_pool.py   (checks its own run; exit status 1 on a failure)
"""
import asyncio
import random
import sys

import ringq


async def process(item):
    await asyncio.sleep(random.random() * 0.005)       # simulated work
    if item["data"] == 13:
        raise ValueError(f"cannot process {item['id']}")
    return item["id"]


async def safe_process(item):
    try:
        return await process(item)
    except ValueError as exc:                           # per item, as the seed's consumer does
        return f"error: {exc}"


async def main(per_producer=50):
    queue = ringq.Queue(100)

    async def producer(name):
        for i in range(per_producer):
            await queue.aput({"id": f"{name}-{i}", "data": i})

    async def produce_all():
        await asyncio.gather(producer("P1"), producer("P2"))
        queue.shutdown()                                # no more items: the pool drains, then ends

    async with ringq.Pipeline(queue) as pool:
        pool.stage(safe_process, workers=4)
        feeding = asyncio.ensure_future(produce_all())
        results = [r async for r in pool]
        await feeding

    ok = sorted(r for r in results if not r.startswith("error"))
    assert len(results) == 2 * per_producer, len(results)
    assert sorted(r for r in results if r.startswith("error")) == [
        "error: cannot process P1-13", "error: cannot process P2-13"]
    assert ok == sorted(f"{p}-{i}" for p in ("P1", "P2") for i in range(per_producer) if i != 13)
    print(f"ok: {len(results)} items by 4 workers, 2 errors caught per item, clean stop")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError:
        import traceback
        traceback.print_exc()
        sys.exit(1)
