"""One behavioural suite, run against queue.Queue and both ringq Queues.

Modelled on CPython's Lib/test/test_queue.py (BaseQueueTestMixin,
BlockingTestMixin, the 3.13 shutdown tests and the SimpleQueue many-thread
tests). Anything here that fails for ringq but passes for queue.Queue is a
drop-in incompatibility.
"""
import itertools
import queue
import random
import sys
import threading
import time
from functools import partial

import pytest

import ringq
from _helpers import BLOCK_TIMEOUT, LONG, Call, assert_all_block, assert_blocks, blocking_then_released, join_all

# The stdlib's classes: ringq raises subclasses of them, and queue.Queue raises them.
ShutDown = getattr(queue, "ShutDown", ringq.ShutDown)
Empty = queue.Empty
Full = queue.Full
QUEUE_SIZE = 5


# --------------------------------------------------------------------------- basics


def test_fifo_order(compat):
    for maxsize in (0, 100):
        q = compat(maxsize)
        items = [111, 333, 222, "x", None, (1, 2)]
        for it in items:
            q.put(it)
        assert [q.get() for _ in items] == items


def test_fifo_identity(compat):
    q = compat()
    objs = [object() for _ in range(50)]
    for o in objs:
        q.put(o)
    for o in objs:
        assert q.get() is o


def test_simple_queue_cycle(compat):
    """CPython's simple_queue_test, minus the blocking parts (tested below)."""
    q = compat(QUEUE_SIZE)
    assert q.qsize() == 0
    assert q.empty()
    assert not q.full()
    for i in range(QUEUE_SIZE - 1):
        q.put(i)
        assert q.qsize() == i + 1
        assert not q.empty()
    assert not q.full()
    q.put("last")
    assert q.full()
    assert not q.empty()
    assert q.qsize() == QUEUE_SIZE
    with pytest.raises(Full):
        q.put("x", block=False)
    with pytest.raises(Full):
        q.put("x", timeout=0.01)
    assert q.qsize() == QUEUE_SIZE
    assert [q.get() for _ in range(QUEUE_SIZE)] == list(range(QUEUE_SIZE - 1)) + ["last"]
    assert q.empty() and q.qsize() == 0
    with pytest.raises(Empty):
        q.get(block=False)
    with pytest.raises(Empty):
        q.get(timeout=0.01)


def test_wraparound_many_cycles(compat):
    q = compat(4)  # at most 1 left over + 3 new items
    expect = []
    got = []
    n = 0
    for rnd in range(200):
        k = (rnd % 3) + 1
        for _ in range(k):
            q.put(n)
            expect.append(n)
            n += 1
        for _ in range(k if rnd % 2 else k - 1):
            got.append(q.get())
        assert q.qsize() == len(expect) - len(got)
        while q.qsize() >= 2:
            got.append(q.get())
    while not q.empty():
        got.append(q.get())
    assert got == expect


def test_unbounded_grows_and_keeps_order(compat):
    q = compat()
    n = 5000
    for i in range(n):
        q.put(i)
    assert q.qsize() == n
    assert not q.full()
    assert [q.get() for _ in range(n // 2)] == list(range(n // 2))
    for i in range(n, n + 3000):
        q.put(i)
    assert [q.get() for _ in range(q.qsize())] == list(range(n // 2, n + 3000))
    assert q.empty()


def test_nowait(compat):
    q = compat(QUEUE_SIZE)
    for i in range(QUEUE_SIZE):
        q.put_nowait(i)
    with pytest.raises(Full):
        q.put_nowait(99)
    assert q.qsize() == QUEUE_SIZE
    assert [q.get_nowait() for _ in range(QUEUE_SIZE)] == list(range(QUEUE_SIZE))
    with pytest.raises(Empty):
        q.get_nowait()


def test_bool_is_always_true(compat):
    q = compat(2)
    assert bool(q) is True
    q.put(1)
    assert bool(q) is True
    assert not hasattr(q, "__len__")


# --------------------------------------------------------------------------- maxsize


@pytest.mark.parametrize("maxsize", [0, -1, -100])
def test_non_positive_maxsize_is_unbounded(compat, maxsize):
    q = compat(maxsize)
    assert q.maxsize == maxsize
    for i in range(1000):
        q.put_nowait(i)
    assert not q.full()
    assert q.qsize() == 1000


def test_default_maxsize_is_zero(compat):
    assert compat().maxsize == 0
    assert compat(maxsize=7).maxsize == 7


def test_shrinking_queue(compat):
    # CPython issue 10110 / test_shrinking_queue
    q = compat(3)
    q.put(1)
    q.put(2)
    q.put(3)
    with pytest.raises(Full):
        q.put_nowait(4)
    assert q.qsize() == 3
    q.maxsize = 2  # shrink the queue
    assert q.maxsize == 2
    with pytest.raises(Full):
        q.put_nowait(4)
    assert q.full()
    assert q.get() == 1
    # still 2 items: full at the new bound
    assert q.full()
    with pytest.raises(Full):
        q.put_nowait(4)
    assert q.get() == 2
    q.put_nowait(4)
    assert [q.get(), q.get()] == [3, 4]


def test_growing_maxsize(compat):
    q = compat(1)
    q.put(1)
    assert q.full()
    q.maxsize = 3
    assert not q.full()
    q.put_nowait(2)
    q.put_nowait(3)
    assert q.full()
    with pytest.raises(Full):
        q.put_nowait(4)
    q.maxsize = 0
    assert not q.full()
    for i in range(4, 100):
        q.put_nowait(i)
    assert [q.get() for _ in range(q.qsize())] == list(range(1, 100))


# --------------------------------------------------------------------------- timeouts


def test_get_timeout_expires(compat):
    q = compat()
    t0 = time.monotonic()
    with pytest.raises(Empty):
        q.get(timeout=0.2)
    elapsed = time.monotonic() - t0
    assert 0.19 <= elapsed < LONG


def test_put_timeout_expires(compat):
    q = compat(1)
    q.put("a")
    t0 = time.monotonic()
    with pytest.raises(Full):
        q.put("b", timeout=0.2)
    elapsed = time.monotonic() - t0
    assert 0.19 <= elapsed < LONG
    assert q.qsize() == 1
    assert q.get() == "a"


def test_zero_timeout_does_not_wait(compat):
    q = compat(1)
    t0 = time.monotonic()
    with pytest.raises(Empty):
        q.get(timeout=0)
    q.put(1)
    with pytest.raises(Full):
        q.put(2, timeout=0)
    assert time.monotonic() - t0 < 1.0
    assert q.get(timeout=0) == 1


def test_nonblocking_ignores_timeout(compat):
    q = compat(1)
    t0 = time.monotonic()
    with pytest.raises(Empty):
        q.get(False, 5)
    q.put(1, False, 5)
    with pytest.raises(Full):
        q.put(2, False, 5)
    assert time.monotonic() - t0 < 2.0
    assert q.get(False, 5) == 1


def test_negative_timeout_raises(compat):
    # CPython's test_negative_timeout_raises_exception
    q = compat(QUEUE_SIZE)
    with pytest.raises(ValueError):
        q.put(1, timeout=-1)
    with pytest.raises(ValueError):
        q.get(1, timeout=-1)
    assert q.qsize() == 0


# --------------------------------------------------------------------------- blocking


def test_blocking_get_released_by_put(compat):
    q = compat(QUEUE_SIZE)
    assert blocking_then_released(q.get, lambda: q.put("empty")) == "empty"
    assert q.empty()


def test_blocking_get_with_timeout_released_by_put(compat):
    q = compat(QUEUE_SIZE)
    got = blocking_then_released(lambda: q.get(True, BLOCK_TIMEOUT), lambda: q.put("empty"))
    assert got == "empty"


def test_blocking_put_released_by_get(compat):
    q = compat(QUEUE_SIZE)
    for i in range(QUEUE_SIZE):
        q.put(i)
    taken = []
    blocking_then_released(lambda: q.put("full"), lambda: taken.append(q.get()))
    assert taken == [0]
    assert q.qsize() == QUEUE_SIZE
    assert [q.get() for _ in range(QUEUE_SIZE)] == [1, 2, 3, 4, "full"]


def test_blocking_put_with_timeout_released_by_get(compat):
    q = compat(1)
    q.put(0)
    taken = []
    blocking_then_released(lambda: q.put("full", True, BLOCK_TIMEOUT), lambda: taken.append(q.get()))
    assert taken == [0]
    assert q.get_nowait() == "full"


def test_several_blocked_getters_each_get_one(compat):
    q = compat()
    calls = assert_all_block([q.get] * 4)
    for i in range(4):
        q.put(i)
    assert sorted(c.value() for c in calls) == [0, 1, 2, 3]
    assert q.empty()


def test_several_blocked_putters_each_put_one(compat):
    q = compat(1)
    q.put("x")
    calls = assert_all_block([partial(q.put, i) for i in range(4)])
    got = [q.get(timeout=LONG) for _ in range(5)]
    for c in calls:
        c.value()
    assert got[0] == "x"
    assert sorted(got[1:]) == [0, 1, 2, 3]
    assert q.empty()


# --------------------------------------------------------------------------- task_done / join


def test_join_returns_at_once_without_tasks(compat):
    q = compat()
    c = Call(q.join)
    c.value(timeout=LONG)
    assert q.unfinished_tasks == 0


def test_unfinished_tasks_counting(compat):
    q = compat()
    assert q.unfinished_tasks == 0
    for i in range(3):
        q.put(i)
    assert q.unfinished_tasks == 3
    q.get()
    assert q.unfinished_tasks == 3  # get does not count, task_done does
    q.task_done()
    assert q.unfinished_tasks == 2
    q.task_done()
    q.task_done()
    assert q.unfinished_tasks == 0
    with pytest.raises(ValueError):
        q.task_done()
    assert q.unfinished_tasks == 0


def test_task_done_too_many_on_fresh_queue(compat):
    q = compat()
    with pytest.raises(ValueError):
        q.task_done()
    q.put(1)
    q.task_done()
    with pytest.raises(ValueError):
        q.task_done()


def test_join_blocks_until_task_done(compat):
    q = compat()
    q.put("a")
    q.put("b")
    assert q.get() == "a"
    assert q.get() == "b"
    q.task_done()
    # one task still unfinished: join must block until it is done
    blocking_then_released(q.join, q.task_done)
    assert q.unfinished_tasks == 0


def test_join_not_released_by_get_alone(compat):
    q = compat()
    q.put(1)
    call = assert_blocks(q.join)
    q.get()
    assert not call.returned.wait(0.2), "join returned although task_done was not called"
    q.task_done()
    call.value()


def _join_worker(q, cum, lock):
    while True:
        x = q.get()
        if x < 0:
            q.task_done()
            return
        with lock:
            cum.append(x)
        q.task_done()


def test_queue_join(compat):
    # CPython's test_queue_join / queue_join_test, run twice on one queue
    q = compat()
    for _ in range(2):
        cum = []
        lock = threading.Lock()
        threads = [threading.Thread(target=_join_worker, args=(q, cum, lock)) for _ in range(2)]
        for t in threads:
            t.start()
        for i in range(100):
            q.put(i)
        jc = Call(q.join)
        jc.value(timeout=30)
        assert sum(cum) == sum(range(100)), "q.join() did not block until all tasks were done"
        for _ in threads:
            q.put(-1)
        Call(q.join).value(timeout=30)  # join twice
        join_all(threads, 30)


def test_task_done_from_other_threads(compat):
    q = compat()
    n = 200
    for i in range(n):
        q.put(i)
    jc = assert_blocks(q.join)

    def worker():
        for _ in range(n // 4):
            q.get()
            q.task_done()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    join_all(threads, 30)
    jc.value()
    assert q.unfinished_tasks == 0


# --------------------------------------------------------------------------- shutdown (3.13)


def test_shutdown_empty(compat_sd):
    q = compat_sd()
    assert q.is_shutdown is False
    q.shutdown()
    assert q.is_shutdown is True
    with pytest.raises(ShutDown):
        q.put("data")
    with pytest.raises(ShutDown):
        q.put_nowait("data")
    with pytest.raises(ShutDown):
        q.get()
    with pytest.raises(ShutDown):
        q.get_nowait()
    with pytest.raises(ShutDown):
        q.get(timeout=LONG)


def test_shutdown_nonempty_drains_then_raises(compat_sd):
    q = compat_sd(1)
    q.put("data")
    q.shutdown()
    with pytest.raises(ShutDown):
        q.put("more")
    assert q.qsize() == 1
    assert q.get() == "data"
    with pytest.raises(ShutDown):
        q.get()
    q2 = compat_sd()
    for i in range(3):
        q2.put(i)
    q2.shutdown()
    assert [q2.get(), q2.get_nowait(), q2.get(timeout=1)] == [0, 1, 2]
    with pytest.raises(ShutDown):
        q2.get_nowait()


def test_shutdown_wins_over_empty(compat_sd):
    q = compat_sd()
    q.shutdown()
    with pytest.raises(ShutDown):
        q.get(block=False)
    with pytest.raises(ShutDown):
        q.get(block=False, timeout=1)
    with pytest.raises(ShutDown):
        q.get(timeout=0)
    assert not issubclass(ShutDown, Empty)


def test_shutdown_wins_over_full(compat_sd):
    q = compat_sd(1)
    q.put(1)
    q.shutdown()
    with pytest.raises(ShutDown):
        q.put(2, block=False)
    with pytest.raises(ShutDown):
        q.put_nowait(2)
    with pytest.raises(ShutDown):
        q.put(2, timeout=0)
    assert q.qsize() == 1


def test_shutdown_immediate(compat_sd):
    q = compat_sd()
    q.put("Y")
    q.put("Z")
    q.shutdown(immediate=True)
    assert q.is_shutdown
    assert q.qsize() == 0
    assert q.empty()
    assert q.unfinished_tasks == 0
    with pytest.raises(ShutDown):
        q.put("data")
    with pytest.raises(ShutDown):
        q.get_nowait()
    with pytest.raises(ShutDown):
        q.get()
    Call(q.join).value()


def test_shutdown_immediate_keeps_tasks_already_taken(compat_sd):
    q = compat_sd()
    for i in range(3):
        q.put(i)
    assert q.get() == 0  # taken, not done
    q.shutdown(immediate=True)
    assert q.unfinished_tasks == 1  # the two dropped items are counted as done
    call = assert_blocks(q.join)
    q.task_done()
    call.value()
    with pytest.raises(ValueError):
        q.task_done()


def test_shutdown_immediate_never_below_zero(compat_sd):
    q = compat_sd()
    q.put(1)
    q.put(2)
    q.task_done()
    q.task_done()  # tasks marked done although the items are still queued
    assert q.unfinished_tasks == 0
    q.shutdown(immediate=True)
    assert q.unfinished_tasks == 0
    assert q.qsize() == 0
    with pytest.raises(ValueError):
        q.task_done()


def test_shutdown_allowed_transitions(compat_sd):
    # CPython's test_shutdown_allowed_transitions, plus draining
    q = compat_sd()
    q.put(1)
    q.put(2)
    assert not q.is_shutdown
    q.shutdown()
    assert q.is_shutdown
    assert q.qsize() == 2
    q.shutdown()  # twice
    assert q.is_shutdown
    assert q.qsize() == 2
    q.shutdown(immediate=True)  # immediate after plain drops what is left
    assert q.is_shutdown
    assert q.qsize() == 0
    assert q.unfinished_tasks == 0
    q.shutdown(immediate=True)
    q.shutdown(immediate=False)
    assert q.is_shutdown
    with pytest.raises(ShutDown):
        q.get_nowait()


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_wakes_blocked_getters(compat_sd, immediate):
    q = compat_sd()
    calls = assert_all_block([q.get] * 3 + [partial(q.get, timeout=BLOCK_TIMEOUT)])
    q.shutdown(immediate=immediate)
    for c in calls:
        c.wait()
        assert isinstance(c.exc, ShutDown), (c.result, c.exc)


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_wakes_blocked_putters(compat_sd, immediate):
    q = compat_sd(1)
    q.put("first")
    calls = assert_all_block([partial(q.put, i) for i in range(3)] + [partial(q.put, "t", timeout=BLOCK_TIMEOUT)])
    q.shutdown(immediate=immediate)
    for c in calls:
        c.wait()
        assert isinstance(c.exc, ShutDown), (c.result, c.exc)
    if immediate:
        assert q.qsize() == 0
        with pytest.raises(ShutDown):
            q.get_nowait()
    else:
        assert q.qsize() == 1
        assert q.get_nowait() == "first"
        with pytest.raises(ShutDown):
            q.get_nowait()


def test_plain_shutdown_does_not_release_join(compat_sd):
    q = compat_sd()
    q.put("Y")
    call = assert_blocks(q.join)
    q.shutdown()
    assert not call.returned.wait(0.2), "join returned after a plain shutdown"
    assert q.get() == "Y"
    q.task_done()
    call.value()
    assert call.exc is None


def test_immediate_shutdown_releases_join(compat_sd):
    q = compat_sd(2)
    q.put("Y")
    q.put("Z")
    calls = assert_all_block([q.join] * 2)
    q.shutdown(immediate=True)
    for c in calls:
        c.value()  # returns normally, no ShutDown from join
    assert q.unfinished_tasks == 0


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_put_join(compat_sd, immediate):
    # CPython's _shutdown_put_join
    q = compat_sd(2)
    q.put("Y")
    putter = Call(q.put, "E")  # room for it: returns
    putter.value()
    q2_join = assert_blocks(q.join)
    assert q.unfinished_tasks == 2
    q.shutdown(immediate)
    with pytest.raises(ShutDown):
        q.put("late")
    if immediate:
        with pytest.raises(ShutDown):
            q.get_nowait()
    else:
        assert q.get() == "Y"
        q.task_done()
        assert q.get() == "E"
        q.task_done()
    q2_join.value()
    assert q.unfinished_tasks == 0


def test_task_done_and_join_after_shutdown(compat_sd):
    q = compat_sd()
    q.put(1)
    q.shutdown()
    assert q.get() == 1
    q.task_done()  # task_done never raises ShutDown
    q.join()  # nor does join
    with pytest.raises(ValueError):
        q.task_done()


@pytest.mark.parametrize("immediate", [False, True])
def test_shutdown_from_another_thread_while_many_block(compat_sd, immediate):
    # all the blocking calls at once: getters on one queue, putters and a
    # joiner on another
    qg = compat_sd()
    qp = compat_sd(1)
    qp.put(0)
    getters = [assert_blocks(qg.get, delay=0) for _ in range(5)]
    putters = [assert_blocks(qp.put, i, delay=0) for i in range(5)]
    time.sleep(0.2)
    assert not any(c.returned.is_set() for c in getters + putters)
    t = threading.Thread(target=lambda: (qg.shutdown(immediate), qp.shutdown(immediate)))
    t.start()
    join_all([t], LONG)
    for c in getters + putters:
        c.wait()
        assert isinstance(c.exc, ShutDown), (c.result, c.exc)


# --------------------------------------------------------------------------- many threads


def _feed(q, seq, rnd, sentinel):
    while True:
        try:
            val = seq.pop()
        except IndexError:
            q.put(sentinel)
            return
        q.put(val)
        if rnd.random() > 0.5:
            time.sleep(rnd.random() * 1e-3)


def _consume(q, results, sentinel):
    while True:
        val = q.get()
        if val == sentinel:
            return
        results.append(val)


def _consume_nonblock(q, results, sentinel):
    while True:
        while True:
            try:
                val = q.get(block=False)
            except Empty:
                time.sleep(1e-5)
            else:
                break
        if val == sentinel:
            return
        results.append(val)


def _consume_timeout(q, results, sentinel):
    while True:
        while True:
            try:
                val = q.get(timeout=1e-5)
            except Empty:
                pass
            else:
                break
        if val == sentinel:
            return
        results.append(val)


def _feed_nonblock(q, seq, rnd, sentinel):
    def put(v):
        while True:
            try:
                q.put_nowait(v)
                return
            except Full:
                time.sleep(1e-5)

    while True:
        try:
            val = seq.pop()
        except IndexError:
            put(sentinel)
            return
        put(val)
        if rnd.random() > 0.5:
            time.sleep(rnd.random() * 1e-3)


def _run_threads(n_threads, q, inputs, feed_func, consume_func):
    results = []
    sentinel = None
    seq = list(reversed(inputs))
    rnd = random.Random(42)
    exceptions = []

    def log_exceptions(f):
        def wrapper(*args):
            try:
                f(*args)
            except BaseException as e:
                exceptions.append(e)
                raise

        return wrapper

    feeders = [
        threading.Thread(target=log_exceptions(feed_func), args=(q, seq, rnd, sentinel))
        for _ in range(n_threads)
    ]
    consumers = [
        threading.Thread(target=log_exceptions(consume_func), args=(q, results, sentinel))
        for _ in range(n_threads)
    ]
    for t in feeders + consumers:
        t.start()
    join_all(feeders + consumers, 60)
    assert not exceptions
    assert q.empty()
    assert q.qsize() == 0
    return results


@pytest.mark.parametrize("maxsize", [0, 10])
@pytest.mark.parametrize(
    "feed, consume",
    [
        (_feed, _consume),
        (_feed_nonblock, _consume_nonblock),
        (_feed, _consume_timeout),
    ],
    ids=["blocking", "nonblock", "timeout"],
)
def test_many_threads(compat, maxsize, feed, consume):
    # CPython's BaseSimpleQueueTest.test_many_threads*, 50 feeders + 50 consumers
    inputs = list(range(3000))
    q = compat(maxsize)
    results = _run_threads(50, q, inputs, feed, consume)
    assert sorted(results) == inputs


def test_reentrancy(compat_simple):
    # CPython's CSimpleQueueTest.test_reentrancy (bpo-14976), as it stands: put() may
    # be called re-entrantly from a __del__ that the GC runs in the middle of put()
    # or get(), and must not reorder items. CPython runs it on its C SimpleQueue only.
    q = compat_simple()
    gen = itertools.count()
    N = 10000
    results = []

    # This test exploits the fact that __del__ in a reference cycle
    # can be called any time the GC may run.

    class Circular(object):
        def __init__(self):
            self.circular = self

        def __del__(self):
            q.put(next(gen))

    while True:
        o = Circular()
        q.put(next(gen))
        del o
        results.append(q.get())
        if results[-1] >= N:
            break

    assert results == list(range(N + 1))


@pytest.mark.skipif(sys.version_info < (3, 13), reason="queue.Queue.shutdown is 3.13+")
def test_shutdown_subclasses_stdlib_313():
    import asyncio
    import queue

    assert issubclass(ringq.ShutDown, queue.ShutDown)
    assert issubclass(ringq.ShutDown, asyncio.QueueShutDown)
