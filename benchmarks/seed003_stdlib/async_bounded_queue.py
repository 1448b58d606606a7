"""Stdlib version of examples/async_bounded_queue.py (for the line count; same checks)."""
import asyncio
import sys


async def try_put(q, item, timeout):
    try:
        await asyncio.wait_for(q.put(item), timeout)
        return True
    except asyncio.TimeoutError:
        return False


async def try_get(q, timeout):
    try:
        return await asyncio.wait_for(q.get(), timeout)
    except asyncio.TimeoutError:
        return None


async def main(count=100):
    q = asyncio.Queue(maxsize=5)
    assert await try_get(q, 0.01) is None
    assert all([await try_put(q, {"id": i}, 0.01) for i in range(5)])
    assert not await try_put(q, {"id": 5}, 0.01) and q.qsize() == 5
    assert [(await try_get(q, 0.01))["id"] for _ in range(5)] == list(range(5))

    sizes, consumed = [], []

    async def fast_producer():
        for i in range(count):
            await q.put({"id": i})
            sizes.append(q.qsize())

    async def slow_consumer():
        for _ in range(count):
            consumed.append((await q.get())["id"])
            await asyncio.sleep(0.001)

    await asyncio.gather(fast_producer(), slow_consumer())
    assert consumed == list(range(count)), consumed
    assert max(sizes) == 5, max(sizes)
    print(f"ok: {count} items through a queue of 5, tryPut/tryGet gave up when full/empty")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError:
        import traceback
        traceback.print_exc()
        sys.exit(1)
