"""Stdlib version of examples/async_adaptive_rate.py (for the line count; same checks)."""
import asyncio
import sys
import time


class TooManyRequests(Exception):
    pass


class Limiter:
    """At most `rate` entries a second; `rate` may be changed at any time."""

    def __init__(self, rate):
        self.rate = rate
        self._next = time.monotonic()
        self._lock = asyncio.Lock()

    async def __aenter__(self):
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + 1 / self.rate
        if wait > 0:
            await asyncio.sleep(wait)

    async def __aexit__(self, *exc_info):
        return None


class Server:
    def __init__(self, rate=400, burst=4):
        self._rate, self._burst = rate, burst
        self._tokens, self._at = float(burst), time.monotonic()

    async def call(self, n):
        await asyncio.sleep(0)
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1:
            raise TooManyRequests
        self._tokens -= 1
        return n * 2


async def main(count=200, workers=8):
    server = Server()
    limiter = Limiter(rate=4000)
    jobs = asyncio.Queue()
    for n in range(count):
        jobs.put_nowait(n)
    results, errors, rates = {}, [], []

    async def worker():
        while True:
            try:
                n = jobs.get_nowait()
            except asyncio.QueueEmpty:
                return
            while n not in results:
                async with limiter:
                    try:
                        results[n] = await server.call(n)
                        limiter.rate = min(4000, limiter.rate + 20)
                    except TooManyRequests:
                        errors.append(n)
                        limiter.rate = max(50, limiter.rate / 2)
                        rates.append(limiter.rate)

    await asyncio.gather(*(worker() for _ in range(workers)))
    assert results == {n: n * 2 for n in range(count)}
    assert errors and min(rates) < 400, (len(errors), rates)
    assert len(errors) < count / 2, len(errors)
    print(f"ok: {count} requests, {len(errors)} refused, the rate fell to {min(rates):.0f}/s "
          f"and ended at {limiter.rate:.0f}/s")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError:
        import traceback
        traceback.print_exc()
        sys.exit(1)
