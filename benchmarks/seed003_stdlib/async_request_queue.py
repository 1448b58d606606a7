"""Stdlib version of examples/async_request_queue.py (for the line count; same checks)."""
import asyncio
import sys
import time

_STOP = object()


class FetchError(Exception):
    pass


async def fetch(url):
    await asyncio.sleep(0.002)
    if "invalid" in url:
        raise FetchError(f"404 for {url}")
    return {"url": url, "status": 200, "sent_at": time.monotonic()}


class Limiter:
    """A token bucket: `burst` at once, then one every 1/rate s."""

    def __init__(self, rate, burst):
        self._interval, self._tolerance = 1 / rate, (burst - 1) / rate
        self._last = time.monotonic() - self._tolerance - self._interval
        self._lock = asyncio.Lock()

    async def __aenter__(self):
        async with self._lock:
            now = time.monotonic()
            due = max(self._last + self._interval, now - self._tolerance)
            self._last = due
        if due > now:
            await asyncio.sleep(due - now)

    async def __aexit__(self, *exc_info):
        return None


class RequestQueue:
    def __init__(self, rate_limit=10, burst=10, max_pending=100, workers=4):
        self._limiter = Limiter(rate_limit, burst)
        self._queue = asyncio.Queue(max_pending)
        self._workers = [asyncio.ensure_future(self._work()) for _ in range(workers)]

    async def request(self, url):
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((url, future))
        return await future

    async def _work(self):
        while True:
            job = await self._queue.get()
            if job is _STOP:
                return
            url, future = job
            if future.cancelled():
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
        for _ in self._workers:
            await self._queue.put(_STOP)
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
