"""Seed 003's API RequestQueue, async: at most N requests a second, each caller awaits its response.

The seed takes up to 10 requests, sends them, then sleeps a whole second, so a
request waits up to a second for nothing and the API gets lumps. Here
``await rq.request(url)`` queues the request in a ``ringq.Queue(100)`` (waiting while
100 are queued) and returns its response or raises its error; worker tasks send
each one as soon as a ``ringq.RateLimiter`` allows (``async with limiter``, on the
loop's timer). ``aclose()`` lets the workers finish what is queued. The stdlib
version is benchmarks/seed003_stdlib/async_request_queue.py.

Run: python examples/async_request_queue.py   (checks its own run; exit status 1 on a failure)
"""
import asyncio
import sys
import time

import ringq


class FetchError(Exception):
    pass


async def fetch(url):
    """Stands in for the HTTP call."""
    await asyncio.sleep(0.002)
    if "invalid" in url:
        raise FetchError(f"404 for {url}")
    return {"url": url, "status": 200, "sent_at": time.monotonic()}


class RequestQueue:
    def __init__(self, rate_limit=10, burst=10, max_pending=100, workers=4):
        self._limiter = ringq.RateLimiter(rate_limit, burst)
        self._queue = ringq.Queue(max_pending)
        self._workers = [asyncio.ensure_future(self._work()) for _ in range(workers)]

    async def request(self, url):
        future = asyncio.get_running_loop().create_future()
        await self._queue.aput((url, future))
        return await future

    async def _work(self):
        async for url, future in self._queue:               # ends once shut down and drained
            if future.cancelled():                          # the caller gave up while it waited
                continue
            async with self._limiter:
                try:
                    response = await fetch(url)
                except FetchError as exc:
                    if not future.done():
                        future.set_exception(exc)
                else:
                    if not future.done():
                        future.set_result(response)

    async def aclose(self):
        self._queue.shutdown()
        await asyncio.gather(*self._workers)


async def main(count=30, rate=50, burst=5):
    rq = RequestQueue(rate_limit=rate, burst=burst)
    start = time.monotonic()
    urls = [f"/api/data/{i}" if i != 7 else "/api/invalid" for i in range(count)]
    responses = await asyncio.gather(*(rq.request(url) for url in urls), return_exceptions=True)
    await rq.aclose()
    assert isinstance(responses[7], FetchError), responses[7]
    assert [r["url"] for i, r in enumerate(responses) if i != 7] == [u for i, u in enumerate(urls) if i != 7]
    sent = sorted(r["sent_at"] - start for i, r in enumerate(responses) if i != 7)
    # A burst of 5 at once, then one every 1/50 s: the k-th is not sent before (k - 5) / 50 s.
    assert all(t >= (k - burst) / rate - 0.005 for k, t in enumerate(sent, 1)), sent
    assert sent[-1] >= (count - burst - 1) / rate - 0.005, sent[-1]
    print(f"ok: {count} requests at {rate}/s (bursts of {burst}) in {sent[-1]:.2f} s, one error to its caller")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError:
        import traceback
        traceback.print_exc()
        sys.exit(1)
