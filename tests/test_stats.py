"""statistics(), on_watermark() and producer()."""
import sys
import threading

import pytest

import _helpers
import ringq
from _helpers import LONG, assert_blocks


def test_statistics_fields(Queue):
    q = Queue(maxsize=5)
    s = q.statistics()
    assert isinstance(s, ringq.QueueStatistics)
    assert s._fields == ("size", "maxsize", "high_water", "puts", "gets", "waiting_putters", "waiting_getters")
    assert tuple(s) == (0, 5, 0, 0, 0, 0, 0)
    q.put_many([1, 2, 3])
    q.get()
    q.put(4)
    q.get_many(10)
    assert tuple(q.statistics()) == (0, 5, 3, 4, 4, 0, 0)


def test_statistics_counts_waiters(Queue):
    q = Queue(maxsize=1)
    getters = _helpers.assert_all_block([lambda: q.get(timeout=_helpers.BLOCK_TIMEOUT)] * 2)
    assert _helpers.wait_until(lambda: q.statistics().waiting_getters == 2)
    q.put_many([1, 2])
    for g in getters:
        g.wait()
    q.put(3)
    putter = assert_blocks(q.put, 4, timeout=_helpers.BLOCK_TIMEOUT)
    assert _helpers.wait_until(lambda: q.statistics().waiting_putters == 1)
    q.get()
    putter.value()
    s = q.statistics()
    assert (s.puts, s.gets, s.size, s.waiting_putters, s.waiting_getters) == (4, 3, 1, 0, 0)


def test_statistics_under_threads(Queue):
    q = Queue(maxsize=16)
    n, producers, consumers = 5000, 4, 4

    def produce():
        for i in range(n):
            q.put(i)

    def consume():
        for _ in q:
            pass

    threads = [threading.Thread(target=produce) for _ in range(producers)]
    readers = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in threads + readers:
        t.start()
    _helpers.join_all(threads)
    q.shutdown()
    _helpers.join_all(readers)
    s = q.statistics()
    assert s.puts == s.gets == n * producers
    assert 1 <= s.high_water <= 16 and s.size == 0


def test_watermark_hysteresis(Queue):
    q = Queue(maxsize=10)
    events = []
    q.on_watermark(high=0.8, low=0.5, callback=events.append)
    q.put_many(range(7))
    assert events == []
    q.put(7)                 # size 8: crosses high
    assert events == ["high"]
    for _ in range(5):       # wobble around the mark: nothing new
        q.get()
        q.put(0)
        q.put(0)
        q.get()
    assert events == ["high"]
    q.get_many(2)            # size 6: above low
    assert events == ["high"]
    q.get()                  # size 5: falls to low
    assert events == ["high", "low"]
    q.put_many([0, 0])       # 7: below high
    q.get()
    assert events == ["high", "low"]
    q.put_many([0, 0, 0])    # 9: crosses again
    assert events == ["high", "low", "high"]
    q.on_watermark(callback=None)
    q.get_many(10)
    assert events == ["high", "low", "high"]


def test_watermark_sizes_and_validation(Queue):
    q = Queue()
    events = []
    q.on_watermark(high=3, low=1, callback=events.append)
    q.put_many([1, 2, 3])
    q.get_many(2)
    assert events == ["high", "low"]
    with pytest.raises(ValueError):
        q.on_watermark(high=0.8, low=0.7, callback=events.append)  # fractions need a bound
    with pytest.raises(ValueError):
        Queue(10).on_watermark(high=0.5, low=0.6, callback=events.append)
    with pytest.raises(TypeError):
        Queue(10).on_watermark(callback="not callable")


@pytest.mark.parametrize("high, low", [("0.8", "0.7"), (0.8, "0.7"), (b"0.8", 0.7), (bytearray(b"1"), 0.5)])
def test_watermark_rejects_strings(Queue, high, low):
    """Issue 17, item 27: the twin parsed on_watermark("0.8", "0.7") with float(); the core rejects it."""
    q = Queue(10)
    with pytest.raises(TypeError, match="high and low must be numbers"):
        q.on_watermark(high, low, callback=print)


@pytest.mark.parametrize("levels", [1, 3])
def test_shutdown_immediate_delivers_low(qmod, levels):
    """Issue 17, item 14: shutdown(immediate=True) empties the queue, so "low" is delivered, as clear() does."""
    q = qmod.PriorityQueue(levels=levels, maxsize=10) if levels > 1 else qmod.Queue(10)
    events = []
    q.on_watermark(high=0.8, low=0.5, callback=events.append)
    q.put_many(range(9))
    assert events == ["high"]
    q.shutdown(immediate=True)
    assert events == ["high", "low"] and q.qsize() == 0
    q.shutdown(immediate=True)  # nothing left to drop: nothing more to say
    assert events == ["high", "low"]
    # A plain shutdown keeps the items: no event.
    q2 = qmod.Queue(10)
    q2.on_watermark(high=0.8, low=0.5, callback=events.append)
    q2.put_many(range(9))
    q2.shutdown()
    assert events == ["high", "low", "high"]


def test_watermark_callback_runs_in_the_crossing_thread_outside_the_lock(Queue):
    q = Queue(maxsize=4)
    seen = []

    def callback(event):
        # The queue's lock is not held: the callback may use the queue.
        seen.append((event, threading.get_ident(), q.qsize(), q.statistics().size))

    q.on_watermark(high=1.0, low=0.25, callback=callback)
    t = threading.Thread(target=q.put_many, args=(range(4),))
    t.start()
    t.join(LONG)
    assert seen == [("high", t.ident, 4, 4)]
    q.get_many(3)
    assert seen[1][:3] == ("low", threading.get_ident(), 1)


def test_watermark_fires_before_a_blocked_put_many_waits(Queue):
    q = Queue(maxsize=4)
    events = []
    q.on_watermark(high=1.0, low=0.5, callback=events.append)
    call = assert_blocks(q.put_many, range(6), timeout=_helpers.BLOCK_TIMEOUT)
    assert events == ["high"]  # delivered while the rest still waits for room
    q.get_many(4)
    call.value()


def test_watermark_callback_that_raises(Queue, monkeypatch):
    q = Queue(maxsize=2)
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)

    def bad(event):
        raise RuntimeError("callback bug")

    q.on_watermark(high=2, low=0, callback=bad)
    q.put(1)
    q.put(2)                 # crosses: the exception is reported, the put is done
    assert q.qsize() == 2 and q.statistics().puts == 2
    assert len(reported) == 1 and isinstance(reported[0].exc_value, RuntimeError)
    assert reported[0].object is bad
    assert q.get_many(5) == [1, 2]


def test_watermark_events_alternate_under_threads(Queue):
    q = Queue(maxsize=20)
    events = []
    q.on_watermark(high=0.5, low=0.2, callback=events.append)

    def produce():
        for i in range(3000):
            q.put(i)

    def consume():
        for _ in q:
            pass

    ps = [threading.Thread(target=produce) for _ in range(3)]
    cs = [threading.Thread(target=consume) for _ in range(2)]
    for t in ps + cs:
        t.start()
    _helpers.join_all(ps)
    q.shutdown()
    _helpers.join_all(cs)
    assert all(a != b for a, b in zip(events, events[1:])), events
    assert not events or events[0] == "high"
    assert not events or events[-1] == "low"  # the queue ended empty: the last state delivered is "low"


# -- producer() ------------------------------------------------------------


def test_three_producers_deliver_everything(Queue):
    """The README's pattern with several producers: every item arrives (it was 4,900 of 42,000)."""
    q = Queue(maxsize=100)
    per = 14_000
    handles = [q.producer() for _ in range(3)]  # registered before any can finish

    def produce(handle, base):
        with handle:
            for i in range(per):
                q.put(base + i)

    threads = [threading.Thread(target=produce, args=(h, k * per)) for k, h in enumerate(handles)]
    for t in threads:
        t.start()
    got = list(q)  # ends when the last producer closes and the queue drains
    _helpers.join_all(threads)
    assert len(got) == 3 * per and sorted(got) == list(range(3 * per))


def test_queue_shuts_down_only_when_the_last_producer_closes(Queue):
    q = Queue()
    a, b = q.producer(), q.producer()
    a.close()
    a.close()  # idempotent
    assert a.closed and not q.is_shutdown
    q.put(1)
    b.close()
    assert q.is_shutdown
    assert q.get() == 1
    with pytest.raises(ringq.ShutDown):
        q.get()
    with pytest.raises(ringq.ShutDown):
        q.producer()


def test_registering_after_the_last_producer_left_names_the_rule(Queue):
    """Issue 17, item 25: a producer registered in its own thread, after the others had
    finished, got a bare ShutDown; the message now names the rule."""
    q = Queue()
    with q.producer():
        q.put(1)
    with pytest.raises(ringq.ShutDown) as info:
        q.producer()
    msg = str(info.value)
    assert "last registered producer" in msg and "Register every producer before starting any" in msg
    assert q.get() == 1
    plain = Queue()
    plain.shutdown()
    with pytest.raises(ringq.ShutDown, match="^cannot register a producer: the queue is shut down$"):
        plain.producer()
    # Shut down by hand while producers were registered: not the producers' rule.
    q2 = Queue()
    p = q2.producer()
    q2.shutdown()
    p.close()
    with pytest.raises(ringq.ShutDown, match="is shut down$"):
        q2.producer()


def test_producer_passes_its_exception_on(Queue):
    q = Queue()
    with q.producer():
        pass  # a clean one first: no cause
    q2 = Queue()
    ok = q2.producer()
    with pytest.raises(KeyError):
        with q2.producer():
            q2.put("partial")
            raise KeyError("source broke")
    q2.put("still open")
    ok.close()
    assert q2.get() == "partial" and q2.get() == "still open"
    with pytest.raises(ringq.ShutDown) as info:
        q2.get()
    assert isinstance(info.value.__cause__, KeyError)
    with pytest.raises(ringq.ShutDown) as info:
        list(q2)  # iteration ends with the cause, not silently
    assert isinstance(info.value.__cause__, KeyError)
    with pytest.raises(ringq.ShutDown) as info:
        q2.get_many(3)
    assert isinstance(info.value.__cause__, KeyError)
    assert list(q) == []  # no cause: iteration just ends


def test_producer_close_with_explicit_cause(Queue):
    q = Queue()
    h = q.producer()
    with pytest.raises(TypeError):
        h.close("not an exception")
    h.close(TimeoutError("upstream timed out"))
    with pytest.raises(ringq.ShutDown) as info:
        q.get(timeout=LONG)
    assert isinstance(info.value.__cause__, TimeoutError)


def test_blocked_getter_sees_the_last_close(Queue):
    q = Queue()
    h = q.producer()
    call = assert_blocks(q.get, timeout=_helpers.BLOCK_TIMEOUT)
    h.close()
    call.wait()
    assert isinstance(call.exc, ringq.ShutDown)


def test_async_calls_count_and_see_the_cause(Queue):
    import asyncio

    async def main():
        q = Queue(maxsize=4)
        events = []
        q.on_watermark(high=1.0, low=0.25, callback=events.append)
        await q.aput_many(range(4))
        assert events == ["high"]
        await q.aget()
        assert await q.aget_many(2) == [1, 2]
        assert events == ["high", "low"]
        await q.aput(9)
        s = q.statistics()
        assert (s.puts, s.gets, s.size) == (5, 3, 2)
        h = q.producer()
        h.close(OSError("feed lost"))
        assert [x async for x in _take(q, 2)] == [3, 9]
        try:
            await q.aget()
        except ringq.ShutDown as e:
            assert isinstance(e.__cause__, OSError)
        else:
            raise AssertionError("aget() on a drained, shut-down queue returned")

    async def _take(q, n):
        for _ in range(n):
            yield await q.aget()

    asyncio.run(main())
