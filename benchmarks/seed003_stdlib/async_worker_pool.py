"""Stdlib version of examples/async_worker_pool.py (for the line count; same checks)."""
import asyncio
import random
import sys

_DONE = object()


async def process(item):
    await asyncio.sleep(random.random() * 0.005)
    if item["data"] == 13:
        raise ValueError(f"cannot process {item['id']}")
    return item["id"]


async def safe_process(item):
    try:
        return await process(item)
    except ValueError as exc:
        return f"error: {exc}"


async def main(per_producer=50, workers=4):
    queue = asyncio.Queue(100)
    results = []

    async def producer(name):
        for i in range(per_producer):
            await queue.put({"id": f"{name}-{i}", "data": i})

    async def consumer():
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            results.append(await safe_process(item))

    consumers = [asyncio.ensure_future(consumer()) for _ in range(workers)]
    try:
        await asyncio.gather(producer("P1"), producer("P2"))
        for _ in range(workers):
            await queue.put(_DONE)
        await asyncio.gather(*consumers)
    finally:
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)

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
