"""Seed 003's BackpressureQueue, async: producers pause at 70% full and go again at 50%.

The seed polls (``while (length >= capacity * 0.7) await sleep(10)``) and tells a
callback 'slow_down' / 'resume'. Here ``q.on_watermark(high=0.7, low=0.5, ...)``
calls back exactly when a put brings the queue to 70 of 100 and when a get brings it
down to 50; the callback runs in the task that crossed the mark, so it can open and
close an ``asyncio.Event`` that the producers wait on. No polling, no sleep. The
stdlib version is benchmarks/seed003_stdlib/async_backpressure.py.

Run: python examples/async_backpressure.py   (checks its own run; exit status 1 on a failure)
"""
import asyncio
import sys

import ringq


async def main(count=1000, producers=3):
    q = ringq.Queue(maxsize=100)
    go = asyncio.Event()
    go.set()
    signals = []

    def on_backpressure(mark):                          # "high" at 70 items, then "low" at 50
        signals.append((mark, q.qsize()))
        go.clear() if mark == "high" else go.set()

    q.on_watermark(high=0.7, low=0.5, callback=on_backpressure)
    sizes = []

    async def producer(p):
        for i in range(count // producers):
            while not go.is_set():                      # paused between 'high' and 'low'
                await go.wait()
            await q.aput((p, i))
            sizes.append(q.qsize())

    async def consumer():
        taken = 0
        while taken < count // producers * producers:
            await q.aget()
            taken += 1
            if taken % 10 == 0:
                await asyncio.sleep(0.001)              # slower than the producers

    await asyncio.gather(consumer(), *(producer(p) for p in range(producers)))
    assert signals and signals[0] == ("high", 70), signals
    assert all(s == (("high", 70) if k % 2 == 0 else ("low", 50)) for k, s in enumerate(signals)), signals
    assert max(sizes) == 70, max(sizes)                 # no producer put past the high mark
    print(f"ok: {len(signals)} slow_down/resume signals at 70/50 of 100, never above 70")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError:
        import traceback
        traceback.print_exc()
        sys.exit(1)
