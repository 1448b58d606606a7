"""Stdlib version of examples/async_backpressure.py (for the line count; same checks)."""
import asyncio
import sys


class WatermarkQueue(asyncio.Queue):
    """asyncio.Queue that calls callback("high") at high*maxsize and callback("low") at low*maxsize."""

    def __init__(self, maxsize, high, low, callback):
        super().__init__(maxsize)
        self._high, self._low = int(maxsize * high), int(maxsize * low)
        self._callback = callback
        self._above = False

    def _put(self, item):  # asyncio.Queue's internal hook (as PriorityQueue uses it)
        super()._put(item)
        if not self._above and self.qsize() >= self._high:
            self._above = True
            self._callback("high")

    def _get(self):
        item = super()._get()
        if self._above and self.qsize() <= self._low:
            self._above = False
            self._callback("low")
        return item


async def main(count=1000, producers=3):
    go = asyncio.Event()
    go.set()
    signals = []

    def on_backpressure(mark):
        signals.append((mark, q.qsize()))
        go.clear() if mark == "high" else go.set()

    q = WatermarkQueue(100, 0.7, 0.5, on_backpressure)
    sizes = []

    async def producer(p):
        for i in range(count // producers):
            while not go.is_set():
                await go.wait()
            await q.put((p, i))
            sizes.append(q.qsize())

    async def consumer():
        taken = 0
        while taken < count // producers * producers:
            await q.get()
            taken += 1
            if taken % 10 == 0:
                await asyncio.sleep(0.001)

    await asyncio.gather(consumer(), *(producer(p) for p in range(producers)))
    assert signals and signals[0] == ("high", 70), signals
    assert all(s == (("high", 70) if k % 2 == 0 else ("low", 50)) for k, s in enumerate(signals)), signals
    assert max(sizes) == 70, max(sizes)
    print(f"ok: {len(signals)} slow_down/resume signals at 70/50 of 100, never above 70")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except AssertionError:
        import traceback
        traceback.print_exc()
        sys.exit(1)
