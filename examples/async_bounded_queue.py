"""Seed 003's bounded BlockingQueue, async: put/get wait, tryPut/tryGet give up after a timeout.

The seed writes a BlockingQueue class (two waiter lists, a timer per try) around a
JavaScript array. ``ringq.Queue(5)`` is that queue: ``await q.aput(x)`` waits for
room, ``await q.aget()`` for an item, and their ``timeout=`` is tryPut/tryGet
(``ringq.Full`` / ``ringq.Empty`` when the time is up, having changed nothing).
The same queue also serves threads (``q.put``/``q.get``). The stdlib version is
benchmarks/seed003_stdlib/async_bounded_queue.py.

Run: python examples/async_bounded_queue.py   (checks its own run; exit status 1 on a failure)
"""
import asyncio
import sys

import ringq


async def try_put(q, item, timeout):
    try:
        await q.aput(item, timeout)
        return True
    except ringq.Full:
        return False


async def try_get(q, timeout):
    try:
        return await q.aget(timeout)
    except ringq.Empty:
        return None


async def main(count=100):
    q = ringq.Queue(maxsize=5)
    assert await try_get(q, 0.01) is None                          # empty: gives up
    assert all([await try_put(q, {"id": i}, 0.01) for i in range(5)])
    assert not await try_put(q, {"id": 5}, 0.01) and q.qsize() == 5  # full: gives up, adds nothing
    assert [(await try_get(q, 0.01))["id"] for _ in range(5)] == list(range(5))

    sizes, consumed = [], []

    async def fast_producer():
        for i in range(count):
            await q.aput({"id": i})                                # waits while 5 are queued
            sizes.append(q.qsize())

    async def slow_consumer():
        for _ in range(count):
            consumed.append((await q.aget())["id"])
            await asyncio.sleep(0.001)                             # slow processing

    await asyncio.gather(fast_producer(), slow_consumer())
    assert consumed == list(range(count)), consumed
    assert max(sizes) == 5, max(sizes)                             # bounded: the producer waited
    print(f"ok: {count} items through a queue of 5, tryPut/tryGet gave up when full/empty")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError:
        import traceback
        traceback.print_exc()
        sys.exit(1)
