"""asyncio on ringq.Queue (issue 7): aput/aget/..., async for, async_q, and the semantics peers get wrong.

Every test runs on both implementations (the ``Queue`` fixture) and on both event
loops (``loop_kind``: asyncio's default loop, and uvloop where it is installed).
"""
import asyncio
import gc
import queue
import random
import sys
import threading
import time

import pytest

import ringq
from _helpers import LONG, Call, assert_blocks

try:
    import uvloop
except ImportError:  # not on Windows or PyPy
    uvloop = None

LOOP_KINDS = ["asyncio", "uvloop"]


@pytest.fixture(params=LOOP_KINDS)
def loop_kind(request):
    if request.param == "uvloop" and uvloop is None:
        pytest.skip("uvloop is not installed")
    return request.param


@pytest.fixture
def new_loop(loop_kind):
    """A factory of fresh event loops of the kind under test."""
    return uvloop.new_event_loop if loop_kind == "uvloop" else asyncio.new_event_loop


@pytest.fixture
def arun(new_loop):
    """Run a coroutine to completion on a fresh loop of the kind under test, then close the loop."""

    def run(coro, timeout=LONG * 3):
        loop = new_loop()
        try:
            return loop.run_until_complete(asyncio.wait_for(coro, timeout))
        finally:
            loop.close()

    return run


class LoopThread:
    """An event loop running in its own thread; ``call(coro)`` runs a coroutine there and waits."""

    def __init__(self, new_loop):
        self.loop = new_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def submit(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro, timeout=LONG * 3):
        return self.submit(coro).result(timeout)

    def stop(self, close=True):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(LONG)
        assert not self.thread.is_alive()
        if close:
            self.loop.close()


async def until(predicate, timeout=LONG):
    """Yield to the loop until predicate() is true; fail after *timeout* seconds."""
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition never became true"
        await asyncio.sleep(0.001)


# ---------------------------------------------------------------------------
# The API and its validation
# ---------------------------------------------------------------------------


def test_basic_calls(Queue, arun):
    async def main():
        q = Queue(3)
        await q.aput(1)
        await q.aput_many([2, 3])
        assert q.full()
        assert await q.aget() == 1
        assert await q.aget_many(10) == [2, 3]
        await q.aput_many(iter([4, 5]))
        assert await q.aget_many(1) == [4]
        assert await q.aget() == 5
        assert q.unfinished_tasks == 5
        for _ in range(5):
            q.task_done()
        await q.ajoin()
        await q.aput_many([])
        return q.qsize()

    assert arun(main()) == 0


def test_timeouts_raise_full_and_empty(Queue, arun):
    async def main():
        q = Queue(1)
        t0 = time.monotonic()
        with pytest.raises(ringq.Empty):
            await q.aget(timeout=0.05)
        with pytest.raises(asyncio.QueueEmpty):
            await q.aget_many(3, timeout=0)
        assert time.monotonic() - t0 >= 0.04
        await q.aput("x")
        with pytest.raises(ringq.Full):
            await q.aput("y", timeout=0.05)
        with pytest.raises(asyncio.QueueFull):
            await q.aput_many(["y", "z"], timeout=0)
        with pytest.raises(TimeoutError):
            await q.ajoin(timeout=0.02)
        return list(q.get_many(5))

    # aput_many keeps nothing it could not put: the queue was full from the start.
    assert arun(main()) == ["x"]


@pytest.mark.parametrize("bad, exc", [(-1, ValueError), (float("nan"), ValueError), ("1", TypeError), ([], TypeError)])
def test_validation_matches_sync(Queue, arun, bad, exc):
    q = Queue(1)
    with pytest.raises(exc) as sync_err:
        q.get(timeout=bad)

    async def main():
        for call in (q.aget(timeout=bad), q.aput(1, timeout=bad), q.aget_many(1, timeout=bad),
                     q.aput_many([1], timeout=bad), q.ajoin(timeout=bad)):
            with pytest.raises(exc) as async_err:
                await call
            assert str(async_err.value) == str(sync_err.value)

    arun(main())
    assert q.qsize() == 0


def test_max_items_validation(Queue, arun):
    q = Queue()

    async def main():
        for bad, exc in ((0, ValueError), (-3, ValueError), (1.5, TypeError), ("2", TypeError)):
            with pytest.raises(exc) as async_err:
                await q.aget_many(bad)
            with pytest.raises(exc) as sync_err:
                q.get_many(bad, block=False)
            assert str(async_err.value) == str(sync_err.value)

    arun(main())


def test_called_outside_a_running_loop_fails_cleanly(Queue):
    q = Queue()
    coro = q.aget()
    with pytest.raises(RuntimeError):
        coro.send(None)  # must wait: needs a running loop to park on
    coro.close()
    q.put(1)  # no stranded record took the wake-up
    assert q.get_nowait() == 1


def test_async_for_ends_at_shutdown_and_drained(Queue, arun):
    async def main():
        q = Queue(2)

        async def produce():
            for i in range(50):
                await q.aput(i)
            q.shutdown()

        task = asyncio.ensure_future(produce())
        got = [item async for item in q]
        await task
        return got

    assert arun(main()) == list(range(50))


def test_exceptions_catchable_both_ways(Queue, arun):
    async def main():
        q = Queue(1)
        q.shutdown()
        with pytest.raises(ringq.ShutDown):
            await q.aput(1)
        with pytest.raises(ringq.ShutDown):
            await q.aget()
        if sys.version_info >= (3, 13):
            with pytest.raises(asyncio.QueueShutDown):
                await q.aget()
            with pytest.raises(queue.ShutDown):
                q.get()

    arun(main())


# ---------------------------------------------------------------------------
# The asyncio.Queue-compatible view
# ---------------------------------------------------------------------------


def test_async_q_view(Queue, arun):
    async def main():
        q = Queue(2)
        aq = q.async_q
        assert q.sync_q is q and aq.sync_q is q
        assert aq == q.async_q and aq.maxsize == 2
        await aq.put(1)
        aq.put_nowait(2)
        assert aq.full() and aq.qsize() == 2 and not aq.empty()
        with pytest.raises(asyncio.QueueFull):
            aq.put_nowait(3)
        assert await aq.get() == 1
        assert aq.get_nowait() == 2
        with pytest.raises(asyncio.QueueEmpty):
            aq.get_nowait()
        aq.task_done()
        aq.task_done()
        await aq.join()
        aq.put_nowait(9)
        aq.shutdown()
        assert aq.is_shutdown and q.is_shutdown
        return [x async for x in aq]

    assert arun(main()) == [9]


def test_async_q_unfinished_tasks(Queue, arun):
    """Issue 17, item 22: janus's async_q has unfinished_tasks (its test_unfinished)."""

    async def main():
        aq = Queue().async_q
        assert aq.unfinished_tasks == 0
        aq.put_nowait(1)
        await aq.put(2)
        assert aq.unfinished_tasks == 2
        await aq.get()
        assert aq.unfinished_tasks == 2  # taken, not yet done
        aq.task_done()
        assert aq.unfinished_tasks == 1
        with pytest.raises(AttributeError):
            aq.unfinished_tasks = 0  # read-only, as on the queue

    arun(main())


def test_async_queue_view_generic_alias():
    """Issue 17, item 23: AsyncQueueView[int] is a types.GenericAlias, as asyncio.Queue[int] is."""
    import types

    alias = ringq.AsyncQueueView[int]
    assert isinstance(alias, types.GenericAlias)
    assert alias.__origin__ is ringq.AsyncQueueView and alias.__args__ == (int,)
    assert type(alias) is type(asyncio.Queue[int])


# ---------------------------------------------------------------------------
# Waiting, wake-ups and shutdown
# ---------------------------------------------------------------------------


def test_thread_wakes_task_and_task_wakes_thread(Queue, new_loop):
    q = Queue(1)
    lt = LoopThread(new_loop)
    try:
        fut = lt.submit(q.aget())
        time.sleep(0.1)
        assert not fut.done()  # parked
        q.put("to-task")
        assert fut.result(LONG) == "to-task"
        getter = assert_blocks(q.get)
        lt.call(q.aput("to-thread"))
        assert getter.value() == "to-thread"
        # Room: a task parked on a full queue is woken by a thread's get.
        q.put("fill")
        fut = lt.submit(q.aput("second"))
        time.sleep(0.1)
        assert not fut.done()
        assert q.get() == "fill"
        fut.result(LONG)
        assert q.get_nowait() == "second"
    finally:
        lt.stop()


def test_threads_and_tasks_share_one_fifo(Queue, arun):
    """Getters are served in arrival order whether they are tasks or threads."""

    async def main():
        q = Queue()
        order = []
        first = asyncio.ensure_future(q.aget())
        await asyncio.sleep(0.02)
        thread_getter = Call(q.get)
        await asyncio.sleep(0.15)
        assert not thread_getter.returned.is_set()
        third = asyncio.ensure_future(q.aget())
        await asyncio.sleep(0.02)
        # One item at a time: each wakes exactly the oldest waiter, and no other.
        q.put("a")
        order.append(await asyncio.wait_for(first, LONG))
        await asyncio.sleep(0.05)
        assert not thread_getter.returned.is_set() and not third.done()
        q.put("b")
        order.append(thread_getter.value())
        assert not third.done()
        q.put("c")
        order.append(await asyncio.wait_for(third, LONG))
        return order

    assert arun(main()) == ["a", "b", "c"]


def test_shutdown_wakes_async_waiters(Queue, arun):
    async def main():
        q = Queue(1)
        getters = [asyncio.ensure_future(q.aget()) for _ in range(3)]
        full = Queue(1)
        full.put(0)
        putters = [asyncio.ensure_future(full.aput(i)) for i in range(3)]
        await asyncio.sleep(0.02)
        assert not any(t.done() for t in getters + putters)
        q.shutdown()
        full.shutdown()
        for t in getters + putters:
            with pytest.raises(ringq.ShutDown):
                await t
        # A drain continues past shutdown: the item put before it is still there.
        assert await full.aget() == 0
        with pytest.raises(ringq.ShutDown):
            await full.aget()

    arun(main())


def test_shutdown_immediate_releases_ajoin(Queue, arun):
    async def main():
        q = Queue()
        q.put_many([1, 2, 3])
        joiner = asyncio.ensure_future(q.ajoin())
        await asyncio.sleep(0.02)
        assert not joiner.done()
        q.shutdown(immediate=True)
        await asyncio.wait_for(joiner, LONG)
        return q.unfinished_tasks

    assert arun(main()) == 0


def test_ajoin_wakes_on_task_done_from_a_thread(Queue, arun):
    async def main():
        q = Queue()
        q.put_many([1, 2])
        joiner = asyncio.ensure_future(q.ajoin())
        await asyncio.sleep(0.02)
        q.get()
        q.task_done()
        await asyncio.sleep(0.02)
        assert not joiner.done()
        threading.Thread(target=lambda: (q.get(), q.task_done())).start()
        await asyncio.wait_for(joiner, LONG)

    arun(main())


# ---------------------------------------------------------------------------
# Not bound to a loop
# ---------------------------------------------------------------------------


def test_not_bound_to_a_loop(Queue, new_loop):
    """Created outside any loop; used by loops in three threads and by plain threads at once."""
    q = Queue(8)
    n_per = 300
    loops = [LoopThread(new_loop) for _ in range(3)]
    try:

        async def produce(tag):
            for i in range(n_per):
                await q.aput((tag, i))

        async def consume(k):
            return [await q.aget() for _ in range(k)]

        def thread_produce():
            for i in range(n_per):
                q.put(("thread", i))

        consumers = [lt.submit(consume(n_per)) for lt in loops]  # 900 items taken by tasks
        producers = [lt.submit(produce(f"loop{j}")) for j, lt in enumerate(loops)]
        t = threading.Thread(target=thread_produce)
        t.start()
        thread_got = [q.get(timeout=LONG) for _ in range(n_per)]  # 300 by this thread
        t.join(LONG)
        for f in producers:
            f.result(LONG * 3)
        got = thread_got + [x for f in consumers for x in f.result(LONG * 3)]
        expected = [(tag, i) for tag in ("thread", "loop0", "loop1", "loop2") for i in range(n_per)]
        assert sorted(got) == sorted(expected)
    finally:
        for lt in loops:
            lt.stop()
    # And again from a loop that did not exist before: nothing remembers the old ones.
    loop = new_loop()
    try:
        q.put("later")
        assert loop.run_until_complete(q.aget()) == "later"
    finally:
        loop.close()


def test_closed_loop_with_waiter_pending_passes_the_wake_up_on(Queue, new_loop):
    """A task parked first on a loop that then closes must not strand the next item."""
    q = Queue()
    loop = new_loop()
    task = loop.create_task(q.aget())
    loop.run_until_complete(asyncio.sleep(0.01))  # the task ran and parked
    assert not task.done()
    loop.close()  # with the task still pending: its record stays first in the list
    getter = assert_blocks(q.get)  # a thread parks behind it
    q.put("item")  # claims the dead task first; its wake-up must go on to the thread
    assert getter.value() == "item"
    # Putters too: a dead task parked on a full queue does not strand the slot.
    full = Queue(1)
    full.put(0)
    loop = new_loop()
    task2 = loop.create_task(full.aput(1))
    loop.run_until_complete(asyncio.sleep(0.01))
    loop.close()
    putter = assert_blocks(full.put, 2)
    assert full.get() == 0
    putter.value()
    assert full.get_nowait() == 2
    del task, task2
    gc.collect()


def test_thread_that_timed_out_while_task_records_were_swept_leaves_no_trace(Queue, new_loop):
    """A thread's timed-out wait must leave the getters' list even if the list was swept meanwhile.

    Tasks that time out leave records behind, swept once they are the majority. The
    twin once swept into a new list while a thread waited on the old one; the thread
    then removed itself from the old list only, and its dead entry in the new one took
    the next wake-up: a later getter slept through an item.
    """
    q = Queue()
    waiter = Call(q.get, timeout=0.5)  # parked first; it will time out
    time.sleep(0.1)
    assert not waiter.returned.is_set()

    async def time_out_many():
        results = await asyncio.gather(*(q.aget(timeout=0.01) for _ in range(40)), return_exceptions=True)
        assert all(isinstance(r, ringq.Empty) for r in results)

    loop = new_loop()
    try:
        loop.run_until_complete(time_out_many())  # 40 records left behind: a sweep
    finally:
        loop.close()
    waiter.wait(LONG)
    assert isinstance(waiter.exc, ringq.Empty), waiter.exc
    getter = assert_blocks(q.get)  # parks after the thread's wait ended
    q.put("item")
    assert getter.value() == "item"


def test_wake_up_lost_in_a_closing_loop_passes_on_when_the_task_is_finalized(Queue, new_loop):
    """The wake-up reached the loop, which closed before running it: the task's finalization passes it on."""
    if Queue.__module__ == "ringq._queue_c" and sys.version_info < (3, 11):
        # Seen on 3.9: the abandoned task's compiled coroutine is not closed by the GC
        # pass here, so the wake-up stays with it (the queue stays usable for new puts).
        pytest.skip("the compiled coroutine is not finalized by gc.collect() before 3.11")
    q = Queue()
    loop = new_loop()
    task = loop.create_task(q.aget())
    loop.run_until_complete(asyncio.sleep(0.01))  # parked first; the loop is now stopped
    getter = assert_blocks(q.get)
    q.put("item")  # claims the task; its wake-up is scheduled on the stopped loop
    time.sleep(0.1)
    assert not getter.returned.is_set()  # FIFO: the thread was not woken
    loop.close()  # drops the scheduled wake-up
    del task
    for _ in range(3):
        gc.collect()  # the pending task's coroutine is closed: GeneratorExit at its await
    assert getter.value() == "item"


def test_garbage_loop_with_parked_task_is_collected(Queue, new_loop):
    """A queue whose only waiters belong to a dead, unreachable loop is collected."""
    import weakref

    q = Queue()
    loop = new_loop()
    loop.create_task(q.aget())
    loop.run_until_complete(asyncio.sleep(0.01))
    loop.close()
    ref = weakref.ref(q)
    del q, loop
    for _ in range(3):
        gc.collect()
    assert ref() is None


def test_closed_loops_waiting_tasks_do_not_pile_up(Queue, new_loop):
    """Issue 17, item 17: tasks left waiting when their loops close are swept by later waits.

    200 loops, each closed with 10 tasks still waiting in aget(): before the sweep,
    all 2,000 tasks and 200 loops stayed alive and counted as waiting until the next
    put. Now the waits that later tasks begin drop the dead records (every
    _SWEEP_MIN = 64 waits at least), so only the last few loops' tasks can remain.
    """
    import weakref

    q = Queue()
    loops = []
    for _ in range(200):
        loop = new_loop()
        for _ in range(10):
            loop.create_task(q.aget())
        loop.run_until_complete(asyncio.sleep(0))  # all parked
        loop.close()
        loops.append(weakref.ref(loop))
        del loop
    gc.collect()
    waiting = q.statistics().waiting_getters
    alive = sum(r() is not None for r in loops)
    assert waiting <= 64, waiting  # was 2,000
    assert alive <= 7, alive  # was 200
    # The survivors are still served correctly: a live getter behind them gets the item.
    getter = assert_blocks(q.get)
    q.put("x")
    assert getter.value() == "x"
    gc.collect()
    assert q.statistics().waiting_getters == 0
    assert sum(r() is not None for r in loops) == 0


def test_swept_waiter_passes_nothing_on(Queue, new_loop):
    """A record swept because its loop closed, whose task is finalized later (it leaves as
    if cancelled), leaves the list intact: the thread waiting behind it gets the next item."""
    q = Queue()
    dead = new_loop()
    tasks = [dead.create_task(q.aget()) for _ in range(3)]
    dead.run_until_complete(asyncio.sleep(0))
    dead.close()
    live = new_loop()
    try:
        async def wait_briefly():
            try:
                await q.aget(timeout=0.01)
            except ringq.Empty:
                pass

        async def churn():  # enough waits (> _SWEEP_MIN) to trigger a sweep
            await asyncio.gather(*(wait_briefly() for _ in range(70)))

        live.run_until_complete(churn())
    finally:
        live.close()
    assert q.statistics().waiting_getters == 0
    getter = assert_blocks(q.get)  # a thread waits for an item
    for t in tasks:  # the dead loop's coroutines are closed: they leave as if cancelled
        t.get_coro().close()
    del tasks
    gc.collect()
    q.put("only")
    assert getter.value() == "only"
    assert q.qsize() == 0


def test_closed_loops_waiting_tasks_are_released_by_the_next_wake_up(Queue, new_loop):
    """Issue 17, item 17, as docs/api.md now states it: what keeps a closed loop's waiting tasks, and what frees them.

    Tasks left waiting in aget() when their loop closes (never cancelled) stay linked
    in the live queue's list, which keeps them, their loops, and the waiting count,
    through gc.collect(). One put frees them all: each wake-up fails on its closed
    loop and passes on to the next waiter, dropping the record.
    """
    import weakref

    q = Queue()
    refs = []
    for _ in range(5):  # 50 waits: fewer than a sweep needs
        loop = new_loop()
        tasks = [loop.create_task(q.aget()) for _ in range(10)]
        loop.run_until_complete(asyncio.sleep(0.01))  # all parked
        loop.close()
        refs += [weakref.ref(loop)] + [weakref.ref(t) for t in tasks]
        del loop, tasks
    gc.collect()
    assert q.statistics().waiting_getters == 50  # documented: still linked
    assert sum(r() is not None for r in refs) == 55
    getter = assert_blocks(q.get)  # a live waiter behind them
    q.put("x")
    assert getter.value() == "x"
    for _ in range(3):
        gc.collect()
    assert q.statistics().waiting_getters == 0
    assert sum(r() is not None for r in refs) == 0


# ---------------------------------------------------------------------------
# Atomic cancellation
# ---------------------------------------------------------------------------


def test_woken_then_cancelled_aget_passes_the_item_on(Queue, arun):
    """The race: a getter is woken (claimed) and cancelled before it runs."""

    async def main():
        q = Queue()
        first = asyncio.ensure_future(q.aget())
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(q.aget())
        await asyncio.sleep(0.01)
        q.put_nowait("item")  # claims `first`
        first.cancel()  # before `first` runs again
        with pytest.raises(asyncio.CancelledError):
            await first
        return await asyncio.wait_for(second, LONG), q.qsize()

    assert arun(main()) == ("item", 0)


def test_woken_then_cancelled_aget_passes_to_a_thread(Queue, arun):
    async def main():
        q = Queue()
        first = asyncio.ensure_future(q.aget())
        await asyncio.sleep(0.01)
        getter = Call(q.get)
        await asyncio.sleep(0.15)
        assert not getter.returned.is_set()
        q.put_nowait("item")
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        return getter.value()

    assert arun(main()) == "item"


def test_woken_then_cancelled_aput_passes_the_slot_on(Queue, arun):
    async def main():
        q = Queue(1)
        q.put_nowait("old")
        first = asyncio.ensure_future(q.aput("cancelled"))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(q.aput("kept"))
        await asyncio.sleep(0.01)
        assert q.get_nowait() == "old"  # frees a slot: claims `first`
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.wait_for(second, LONG)
        return q.get_many(5, block=False)

    assert arun(main()) == ["kept"]


def test_cancelled_parked_aget_leaves_queue_unchanged(Queue, arun):
    async def main():
        q = Queue()
        tasks = [asyncio.ensure_future(q.aget()) for _ in range(20)]
        await asyncio.sleep(0.01)
        for t in tasks[::2]:
            t.cancel()
        await asyncio.sleep(0.01)
        q.put_many(range(10))
        got = [await asyncio.wait_for(t, LONG) for t in tasks[1::2]]
        assert all(t.cancelled() for t in tasks[::2])
        return sorted(got), q.qsize()

    assert arun(main()) == (list(range(10)), 0)


def test_wait_for_and_timeout_are_atomic(Queue, arun):
    async def main():
        q = Queue(1)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(q.aget(), 0.02)
        q.put_nowait(1)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(q.aput(2), 0.02)
        assert q.get_many(5, block=False) == [1]
        if sys.version_info >= (3, 11):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.02):
                    await q.aget()
        # No stale waiter is left behind to swallow a wake-up.
        getter = asyncio.ensure_future(q.aget())
        await asyncio.sleep(0.01)
        q.put_nowait(3)
        return await asyncio.wait_for(getter, LONG)

    assert arun(main()) == 3


def test_cancel_storm(Queue, new_loop):
    """10**4 agets, most cancelled at random points while a thread feeds items: none lost or duplicated."""
    rng = random.Random(7)
    q = Queue(64)
    loop = new_loop()
    stop = threading.Event()
    produced = []

    def produce():
        i = 0
        while not stop.is_set():
            try:
                q.put(i, timeout=0.01)
                i += 1
            except ringq.Full:
                pass
        produced.append(i)

    async def main():
        received = []
        t = threading.Thread(target=produce)
        t.start()
        try:
            for _ in range(20):
                wave = [asyncio.ensure_future(q.aget()) for _ in range(500)]
                for task in wave:
                    if rng.random() < 0.7:
                        loop.call_later(rng.random() * 0.003, task.cancel)
                await asyncio.wait(wave, timeout=0.05)
                for task in wave:
                    task.cancel()  # no-op when done; atomic otherwise: a result or CancelledError
                    try:
                        received.append(await task)
                    except asyncio.CancelledError:
                        pass
        finally:
            stop.set()
            t.join(LONG)
        received.extend(q.get_many(10**6, block=False) if q.qsize() else [])
        return received

    try:
        received = loop.run_until_complete(main())
    finally:
        loop.close()
    assert produced and produced[0] > 0
    assert len(received) == len(set(received)), "an item was delivered twice"
    assert sorted(received) == list(range(produced[0])), "an item was lost"


# ---------------------------------------------------------------------------
# The loop never blocks
# ---------------------------------------------------------------------------


def test_event_loop_never_blocks(Queue, new_loop):
    """A watchdog task measures the loop's lag while threads hammer the queue the tasks use."""
    q = Queue(16)
    stop = threading.Event()
    lags = []

    def hammer_put():
        i = 0
        while not stop.is_set():
            try:
                q.put(i, timeout=0.05)
            except ringq.Full:
                pass
            i += 1

    def hammer_get():
        while not stop.is_set():
            try:
                q.get(timeout=0.05)
            except ringq.Empty:
                pass

    async def watchdog(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.monotonic()
            await asyncio.sleep(0.005)
            lags.append(time.monotonic() - t0 - 0.005)

    async def worker(kind):
        while not stop.is_set():
            try:
                if kind == "get":
                    await q.aget(timeout=0.05)
                else:
                    await q.aput(kind, timeout=0.05)
            except (ringq.Empty, ringq.Full):
                pass

    async def main():
        workers = [asyncio.ensure_future(worker(k)) for k in ("get", "put", "get", "put")]
        await watchdog(1.0)
        stop.set()
        await asyncio.gather(*workers)

    threads = [threading.Thread(target=f) for f in (hammer_put, hammer_get, hammer_put, hammer_get)]
    for t in threads:
        t.start()
    loop = new_loop()
    try:
        loop.run_until_complete(main())
    finally:
        stop.set()
        for t in threads:
            t.join(LONG)
        loop.close()
    assert len(lags) > 20, "the watchdog barely ran: the loop was blocked"
    # Blocking on a thread primitive would stall the loop for whole waits (>= 50 ms
    # each here). Waiting for the GIL behind the four hammering threads costs up to
    # 4 switch intervals (20 ms) per tick, more on a loaded machine: hence 0.1 s.
    lags.sort()
    assert lags[len(lags) // 2] < 0.1, f"median lag {lags[len(lags) // 2]:.3f}s"
    assert lags[-1] < 1.0, f"max lag {lags[-1]:.3f}s"


def test_parked_async_calls_leave_the_loop_running(Queue, arun):
    """While aget/aput/ajoin wait (with threads parked on the same conditions), the loop keeps ticking."""

    async def main():
        empty, full = Queue(1), Queue(1)
        full.put(0)
        thread_getter = Call(empty.get)
        thread_putter = Call(full.put, 1)
        waits = [asyncio.ensure_future(empty.aget()), asyncio.ensure_future(full.aput(2)),
                 asyncio.ensure_future(full.ajoin())]
        ticks = 0
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            await asyncio.sleep(0.005)
            ticks += 1
        assert not any(w.done() for w in waits)
        assert not thread_getter.returned.is_set() and not thread_putter.returned.is_set()
        empty.shutdown()
        full.shutdown(immediate=True)
        for w in waits:
            try:
                await asyncio.wait_for(w, LONG)
            except ringq.ShutDown:
                pass
        thread_getter.wait()
        thread_putter.wait()
        return ticks

    # About 100 ticks of 5 ms in 0.5 s; a loop blocked in any of the waits would tick once.
    assert arun(main()) >= 10


# ---------------------------------------------------------------------------
# Randomized: threads and tasks on 1-3 loops, with cancellations and timeouts
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_randomized_mixed_producers_consumers(Queue, new_loop, seed):
    rng = random.Random(seed)
    n_loops = 1 + seed % 3
    q = Queue(rng.choice([1, 4, 64]))
    per_producer = 300
    loops = [LoopThread(new_loop) for _ in range(n_loops)]
    producers = [f"p{i}" for i in range(4)]  # even: threads, odd: tasks
    consumed = []  # (consumer, item) in each consumer's order
    lock = threading.Lock()
    single_consumer = seed % 2 == 0  # then per-producer order is checked across everything

    async def task_producer(name, seed_):
        r = random.Random(seed_)
        i = 0
        while i < per_producer:
            try:
                if r.random() < 0.2:
                    await asyncio.wait_for(q.aput((name, i)), r.random() * 0.002)
                elif r.random() < 0.2:
                    await q.aput((name, i), timeout=r.random() * 0.002)
                else:
                    await q.aput((name, i))
                i += 1
            except (asyncio.TimeoutError, ringq.Full):
                pass  # atomic: not put, so retried with the same i

    def thread_producer(name, seed_):
        r = random.Random(seed_)
        i = 0
        while i < per_producer:
            try:
                q.put((name, i), timeout=r.random() * 0.002 if r.random() < 0.3 else None)
                i += 1
            except ringq.Full:
                pass

    async def task_consumer(name, seed_):
        r = random.Random(seed_)
        mine = []
        while True:
            try:
                if r.random() < 0.2:
                    item = await asyncio.wait_for(q.aget(), r.random() * 0.002)
                elif r.random() < 0.2:
                    item = await q.aget(timeout=r.random() * 0.002)
                else:
                    item = await q.aget()
            except (asyncio.TimeoutError, ringq.Empty):
                continue
            except ringq.ShutDown:
                break
            mine.append(item)
        with lock:
            consumed.append((name, mine))

    def thread_consumer(name):
        mine = []
        while True:
            try:
                mine.append(q.get(timeout=0.002 if len(mine) % 3 == 0 else None))
            except ringq.Empty:
                continue
            except ringq.ShutDown:
                break
        with lock:
            consumed.append((name, mine))

    try:
        futures = []
        threads = []
        for k, name in enumerate(producers):
            if k % 2 == 0:
                threads.append(threading.Thread(target=thread_producer, args=(name, rng.random())))
            else:
                futures.append(loops[k % n_loops].submit(task_producer(name, rng.random())))
        consumers = []
        if single_consumer:
            consumers.append(loops[0].submit(task_consumer("c0", rng.random())))
        else:
            for j in range(n_loops):
                consumers.append(loops[j].submit(task_consumer(f"c{j}", rng.random())))
            threads.append(threading.Thread(target=thread_consumer, args=("ct",)))
        for t in threads:
            t.start()
        for f in futures:
            f.result(LONG * 6)
        for t in threads[: len(producers) // 2]:
            t.join(LONG * 6)
        q.shutdown()
        for f in consumers:
            f.result(LONG * 6)
        for t in threads:
            t.join(LONG * 6)
            assert not t.is_alive()
    finally:
        for lt in loops:
            lt.stop()
    everything = [item for _, mine in consumed for item in mine]
    expected = [(name, i) for name in producers for i in range(per_producer)]
    assert len(everything) == len(expected)
    assert sorted(everything) == sorted(expected), "lost or duplicated items"
    # Per producer, each consumer sees that producer's items in order (FIFO queue).
    for _, mine in consumed:
        for name in producers:
            seq = [i for n, i in mine if n == name]
            assert seq == sorted(seq)
    if single_consumer:
        assert len(consumed) == 1


def test_priority_queue_async_calls(qmod, arun):
    """aput uses a PriorityQueue's default (middle) level; aget/aget_many take the most urgent first."""

    async def main():
        q = qmod.PriorityQueue(levels=3)
        await q.aput("normal")
        q.put("urgent", 0)
        q.put("low", 2)
        await q.aput_many(["normal2"])
        first = await q.aget()
        rest = await q.aget_many(10)
        waiter = asyncio.ensure_future(q.aget())
        await asyncio.sleep(0.01)
        q.put("late", 2)
        return first, rest, await asyncio.wait_for(waiter, LONG)

    assert arun(main()) == ("urgent", ["normal", "normal2", "low"], "late")
