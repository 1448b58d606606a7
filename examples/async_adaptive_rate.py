"""Seed 003's adaptive rate, async: back off when the server says "too many", creep back up.

The seed's AdaptiveProducer keeps its own ``rate`` and sleeps ``1000 / rate`` ms
after each item. Here the rate is a ``ringq.RateLimiter`` whose ``rate`` may be
changed while it is in use (from any task or thread): 8 workers take requests
from a ``ringq.Queue``, each waits for the limiter (``async with limiter``, on the
loop's timer), halves the rate on an error and adds a little on a success (AIMD,
as TCP does). The server stands in for an API that answers 429 above 400 calls a
second. The stdlib version is benchmarks/seed003_stdlib/async_adaptive_rate.py.

Run: python examples/async_adaptive_rate.py   (checks its own run; exit status 1 on a failure)
"""
import asyncio
import sys

import ringq


class TooManyRequests(Exception):
    pass


class Server:
    """Stands in for an API that allows 400 calls a second (bursts of 4), 429 above that."""

    def __init__(self):
        self._capacity = ringq.RateLimiter(rate=400, burst=4)

    async def call(self, n):
        await asyncio.sleep(0)
        if not self._capacity.try_acquire():
            raise TooManyRequests
        return n * 2


async def main(count=200, workers=8):
    server = Server()
    limiter = ringq.RateLimiter(rate=4000)                  # far too fast at first
    jobs = ringq.Queue()
    jobs.put_many(range(count))
    jobs.shutdown()                                         # the workers stop once it is empty
    results, errors, rates = {}, [], []

    async def worker():
        async for n in jobs:
            while n not in results:
                async with limiter:
                    try:
                        results[n] = await server.call(n)
                        limiter.rate = min(4000, limiter.rate + 20)   # additive increase
                    except TooManyRequests:
                        errors.append(n)
                        limiter.rate = max(50, limiter.rate / 2)      # multiplicative decrease
                        rates.append(limiter.rate)

    await asyncio.gather(*(worker() for _ in range(workers)))
    assert results == {n: n * 2 for n in range(count)}      # every request got through
    assert errors and min(rates) < 400, (len(errors), rates)  # it backed off below the server's rate
    assert len(errors) < count / 2, len(errors)             # and then mostly stayed under it
    print(f"ok: {count} requests, {len(errors)} refused, the rate fell to {min(rates):.0f}/s "
          f"and ended at {limiter.rate:.0f}/s")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError:
        import traceback
        traceback.print_exc()
        sys.exit(1)
