"""ringq.BoundedExecutor: a concurrent.futures.Executor with a bounded queue.

These tests use whichever ringq.Queue is loaded (CI runs the suite once compiled
and once with RINGQ_NO_EXTENSIONS=1).
"""
import asyncio
import concurrent.futures as cf
import gc
import itertools
import signal
import sys
import threading
import time
import traceback
import weakref
from concurrent.futures.thread import BrokenThreadPool
from unittest import mock

import pytest

import ringq
from _helpers import BLOCK_TIMEOUT, LONG, Call, assert_blocks, check_child, join_all, wait_until


@pytest.fixture(autouse=True)
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    assert wait_until(lambda: set(threading.enumerate()) <= before, timeout=LONG), (
        f"threads left running: {set(threading.enumerate()) - before}")


class Gate:
    """A task that signals when it starts and runs until released."""

    def __init__(self):
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self, value=None):
        self.started.set()
        assert self.release.wait(LONG * 6), "gate never released"
        return value


def pool_with_busy_worker(max_pending):
    """One worker, held by a Gate, so that further tasks stay queued."""
    pool = ringq.BoundedExecutor(1, max_pending)
    gate = Gate()
    running = pool.submit(gate, "first")
    assert gate.started.wait(LONG)
    return pool, gate, running


def test_is_an_executor_and_runs_tasks():
    with ringq.BoundedExecutor(max_workers=3, max_pending=5) as pool:
        assert isinstance(pool, cf.Executor)
        futures = [pool.submit(pow, 2, i) for i in range(20)]
        assert [f.result(LONG) for f in futures] == [2 ** i for i in range(20)]
        assert isinstance(futures[0], cf.Future)


def test_exception_goes_to_the_future_and_the_worker_survives():
    def boom(x):
        raise KeyError(x)

    with ringq.BoundedExecutor(1, 4, thread_name_prefix="survivor") as pool:
        bad = pool.submit(boom, "nope")
        with pytest.raises(KeyError) as info:
            bad.result(LONG)
        assert "boom" in "".join(traceback.format_tb(info.value.__traceback__))
        # Even BaseException subclasses are stored, not raised in the worker.
        exit_future = pool.submit(lambda: (_ for _ in ()).throw(SystemExit(3)))
        assert isinstance(exit_future.exception(LONG), SystemExit)
        names = [pool.submit(lambda: threading.current_thread().name).result(LONG) for _ in range(3)]
        assert names == ["survivor_0"] * 3  # the same single worker carried on


def test_submit_blocks_while_max_pending_tasks_are_queued():
    pool, gate, running = pool_with_busy_worker(max_pending=2)
    try:
        queued = [pool.submit(str, i) for i in range(2)]  # fills the queue
        assert pool.pending() == 2
        call = assert_blocks(pool.submit, str, 99)
        gate.release.set()
        extra = call.value()
        assert extra.result(LONG) == "99"
        assert [f.result(LONG) for f in queued] == ["0", "1"]
        assert running.result(LONG) == "first"
    finally:
        gate.release.set()
        pool.shutdown()


def test_submit_nowait_and_submit_call_raise_full():
    pool, gate, _ = pool_with_busy_worker(max_pending=1)
    try:
        pool.submit(str, 1)
        with pytest.raises(ringq.Full):
            pool.submit_nowait(str, 2)
        with pytest.raises(ringq.Full):
            pool.submit_call(str, (2,), block=False)
        start = time.monotonic()
        with pytest.raises(ringq.Full):
            pool.submit_call(str, (2,), timeout=0.2)
        assert time.monotonic() - start >= 0.19
        with pytest.raises(ValueError):
            pool.submit_call(str, (2,), timeout=-1)
        # A full queue's Full does not leave a task behind.
        assert pool.pending() == 1
        gate.release.set()
        assert pool.submit_call(divmod, (7, 2), timeout=LONG).result(LONG) == (3, 1)
    finally:
        gate.release.set()
        pool.shutdown()


def test_keyword_arguments_all_belong_to_the_function():
    def record(*args, **kwargs):
        return args, kwargs

    with ringq.BoundedExecutor(2, 2) as pool:
        # The Executor signature: fn is positional-only, so even fn= reaches the call,
        # and block/timeout are the function's own (requests.get(url, timeout=5)).
        f = pool.submit(record, 1, fn=2, block=False, timeout=5)
        assert f.result(LONG) == ((1,), {"fn": 2, "block": False, "timeout": 5})
        g = pool.submit_nowait(record, timeout=1)
        assert g.result(LONG) == ((), {"timeout": 1})
        h = pool.submit_call(record, (1, 2), {"timeout": 3, "block": True}, timeout=LONG)
        assert h.result(LONG) == ((1, 2), {"timeout": 3, "block": True})


def test_submit_after_shutdown_raises_runtime_error():
    pool = ringq.BoundedExecutor(2, 2)
    pool.submit(int).result(LONG)
    pool.shutdown()
    for submit in (pool.submit, pool.submit_nowait):
        with pytest.raises(RuntimeError, match="after shutdown"):
            submit(int)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit_call(int)
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.map(int, [1])
    pool.shutdown()  # twice is harmless


def test_shutdown_wait_runs_the_queued_tasks():
    pool, gate, running = pool_with_busy_worker(max_pending=5)
    queued = [pool.submit(time.sleep, 0.01) for _ in range(5)]
    shut = Call(pool.shutdown, wait=True)
    assert not shut.returned.wait(0.2), "shutdown(wait=True) returned while a task ran"
    gate.release.set()
    shut.wait()
    assert running.done() and all(f.done() and not f.cancelled() for f in queued)


def test_shutdown_cancel_futures_cancels_what_has_not_started():
    pool, gate, running = pool_with_busy_worker(max_pending=5)
    queued = [pool.submit(str, i) for i in range(5)]
    shut = Call(pool.shutdown, wait=True, cancel_futures=True)
    assert wait_until(lambda: all(f.cancelled() for f in queued))
    assert not shut.returned.is_set()  # still waiting for the running task
    gate.release.set()
    shut.wait()
    assert running.result(LONG) == "first"
    assert all(f.cancelled() for f in queued)


def test_shutdown_turns_away_a_blocked_submitter():
    pool, gate, _ = pool_with_busy_worker(max_pending=1)
    pool.submit(str, 1)
    blocked = assert_blocks(pool.submit, str, 2)
    pool.shutdown(wait=False, cancel_futures=True)
    blocked.wait()
    assert isinstance(blocked.exc, RuntimeError)
    gate.release.set()
    pool.shutdown()


def test_shutdown_without_wait_returns_at_once():
    pool, gate, running = pool_with_busy_worker(max_pending=2)
    later = pool.submit(str, 7)
    start = time.monotonic()
    pool.shutdown(wait=False)
    assert time.monotonic() - start < LONG / 2
    assert not running.done()
    gate.release.set()
    assert later.result(LONG) == "7"  # queued tasks still run
    pool.shutdown()


def test_context_manager_shuts_down_and_waits():
    gate = Gate()
    with ringq.BoundedExecutor(2, 2) as pool:
        f = pool.submit(gate, 5)
        assert gate.started.wait(LONG)
        threading.Timer(0.2, gate.release.set).start()
    assert f.done() and f.result() == 5
    with pytest.raises(RuntimeError):
        pool.submit(int)


def test_workers_start_lazily_up_to_max_workers():
    names = set()
    lock = threading.Lock()
    barrier = threading.Barrier(3, timeout=LONG)

    def task():
        with lock:
            names.add(threading.current_thread().name)
        barrier.wait()

    pool = ringq.BoundedExecutor(3, 10, thread_name_prefix="lazy")
    try:
        assert not [t for t in threading.enumerate() if t.name.startswith("lazy")]
        futures = [pool.submit(task) for _ in range(3)]  # needs 3 threads at once
        for f in futures:
            f.result(LONG)
        for _ in range(20):
            pool.submit(int).result(LONG)
        threads = [t for t in threading.enumerate() if t.name.startswith("lazy_")]
        assert names == {"lazy_0", "lazy_1", "lazy_2"}
        assert len(threads) == 3
    finally:
        pool.shutdown()


def test_an_idle_worker_is_reused_instead_of_starting_another():
    with ringq.BoundedExecutor(4, 4, thread_name_prefix="reuse") as pool:
        for _ in range(10):
            pool.submit(int).result(LONG)
            time.sleep(0.005)  # let the worker go idle again
        started = [t for t in threading.enumerate() if t.name.startswith("reuse_")]
        assert 1 <= len(started) < 4


def test_initializer_runs_in_each_worker():
    seen = []

    def init(tag):
        seen.append((tag, threading.current_thread().name))

    with ringq.BoundedExecutor(2, 2, thread_name_prefix="init", initializer=init, initargs=("x",)) as pool:
        gate = Gate()
        pool.submit(gate)
        assert gate.started.wait(LONG)
        pool.submit(int).result(LONG)  # needs the second worker
        gate.release.set()
    assert sorted(seen) == [("x", "init_0"), ("x", "init_1")]


def test_failing_initializer_breaks_the_pool(caplog):
    def init():
        raise ValueError("no")

    pool = ringq.BoundedExecutor(1, 4, initializer=init)
    first = pool.submit(int)
    with pytest.raises(BrokenThreadPool):
        first.result(LONG)
    with pytest.raises(BrokenThreadPool):
        pool.submit(int)
    pool.shutdown()
    assert "Exception in initializer" in caplog.text


def test_wait_and_as_completed_accept_its_futures():
    with ringq.BoundedExecutor(3, 10) as pool:
        gate = Gate()
        slow = pool.submit(gate, "slow")
        fast = [pool.submit(pow, i, 2) for i in range(5)]
        done, not_done = cf.wait(fast, timeout=LONG)
        assert done == set(fast) and not not_done
        done, not_done = cf.wait([slow] + fast, timeout=0.1, return_when=cf.FIRST_EXCEPTION)
        assert slow in not_done
        with pytest.raises(cf.TimeoutError):
            slow.result(timeout=0.05)
        callback_results = []
        slow.add_done_callback(lambda f: callback_results.append(f.result()))
        threading.Timer(0.1, gate.release.set).start()
        assert [f.result() for f in cf.as_completed([slow], timeout=LONG)] == ["slow"]
        assert wait_until(lambda: callback_results == ["slow"])


def test_a_pending_future_can_be_cancelled_and_never_runs():
    pool, gate, _ = pool_with_busy_worker(max_pending=2)
    ran = []
    f = pool.submit(ran.append, 1)
    assert f.cancel() and f.cancelled()
    gate.release.set()
    pool.shutdown()
    assert ran == []


def test_a_dropped_pool_lets_its_workers_go():
    pool = ringq.BoundedExecutor(2, 2, thread_name_prefix="dropped")
    pool.submit(int).result(LONG)
    del pool
    gc.collect()
    assert wait_until(lambda: not [t for t in threading.enumerate() if t.name.startswith("dropped")])


# --- map -------------------------------------------------------------------------------


def test_map_keeps_input_order_with_several_iterables():
    def slow_add(a, b):
        time.sleep(0.001 * (a % 3))
        return a + b

    with ringq.BoundedExecutor(4, 3) as pool:
        expected = [a + b for a, b in zip(range(50), range(100, 150))]
        assert list(pool.map(slow_add, range(50), range(100, 150))) == expected
        for chunksize in (1, 7):
            for buffersize in (None, 1, 5):
                got = list(pool.map(abs, range(-20, 20), chunksize=chunksize, buffersize=buffersize))
                assert got == [abs(i) for i in range(-20, 20)], (chunksize, buffersize)


def test_map_reads_ahead_at_most_buffersize_items_of_an_endless_generator():
    pulled = itertools.count()
    pulled_upto = [0]

    def endless():
        for i in itertools.count():
            pulled_upto[0] = next(pulled) + 1
            yield i

    with ringq.BoundedExecutor(4, 100) as pool:
        results = pool.map(lambda x: x * 2, endless(), buffersize=8)
        time.sleep(0.1)
        assert pulled_upto[0] == 8  # nothing more until results are taken
        first = [next(results) for _ in range(30)]
        assert first == [2 * i for i in range(30)]
        time.sleep(0.1)
        assert pulled_upto[0] == 30 + 8
        results.close()
        # chunksize: buffersize counts chunks
        pulled = itertools.count()
        results = pool.map(lambda x: x, endless(), chunksize=4, buffersize=3)
        assert next(results) == 0
        time.sleep(0.05)
        assert pulled_upto[0] <= 4 * 4
        results.close()


def test_map_never_has_more_than_buffersize_tasks_in_the_pool():
    active = [0]
    peak = [0]
    lock = threading.Lock()

    def track(x):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.002)
        with lock:
            active[0] -= 1
        return x

    with ringq.BoundedExecutor(8, 100) as pool:
        assert list(pool.map(track, range(60), buffersize=3)) == list(range(60))
    assert peak[0] <= 3


def test_map_raises_the_first_error_in_position_and_cancels_the_rest():
    ran = []

    def f(x):
        if x == 3:
            raise ZeroDivisionError("three")
        if x > 3:
            time.sleep(0.01)
        ran.append(x)
        return x

    with ringq.BoundedExecutor(1, 100) as pool:
        results = pool.map(f, range(100))
        assert [next(results) for _ in range(3)] == [0, 1, 2]
        with pytest.raises(ZeroDivisionError, match="three") as info:
            next(results)
        assert "in f" in "".join(traceback.format_tb(info.value.__traceback__))
        with pytest.raises(StopIteration):
            next(results)
    assert len(ran) < 100 - 4  # the calls not started when it failed were skipped


def test_map_timeout():
    with ringq.BoundedExecutor(2, 10) as pool:
        gate = Gate()
        results = pool.map(gate, [1, 2], timeout=0.2)
        start = time.monotonic()
        with pytest.raises(cf.TimeoutError):
            next(results)
        assert time.monotonic() - start >= 0.15
        gate.release.set()


def test_map_validates_its_arguments():
    with ringq.BoundedExecutor(1, 1) as pool:
        with pytest.raises(ValueError):
            pool.map(abs, [1], buffersize=0)
        with pytest.raises(TypeError):
            pool.map(abs, [1], buffersize=1.5)
        with pytest.raises(ValueError):
            pool.map(abs, [1], chunksize=0)


def test_map_chunks_cancelled_by_shutdown_raise_cancelled_error():
    pool, gate, _ = pool_with_busy_worker(max_pending=10)
    results = pool.map(str, range(3))
    pool.shutdown(wait=False, cancel_futures=True)
    with pytest.raises(cf.CancelledError):
        next(results)
    gate.release.set()
    pool.shutdown()


def test_constructor_validates():
    with pytest.raises(ValueError):
        ringq.BoundedExecutor(0, 1)
    with pytest.raises(ValueError):
        ringq.BoundedExecutor(1, 0)
    with pytest.raises(TypeError):
        ringq.BoundedExecutor(1.5, 1)
    with pytest.raises(TypeError):
        ringq.BoundedExecutor(1, 1, initializer=3)


# --- asyncio ---------------------------------------------------------------------------


def test_asubmit_waits_for_room_without_blocking_the_loop():
    pool, gate, _ = pool_with_busy_worker(max_pending=1)

    async def main():
        first = await pool.asubmit(str, 1)  # room: queued at once
        ticks = 0
        waiting = asyncio.ensure_future(pool.asubmit(str, 2))
        for _ in range(5):
            await asyncio.sleep(0.02)
            ticks += 1  # the loop keeps running while asubmit waits
        assert not waiting.done()
        gate.release.set()
        second = await asyncio.wait_for(waiting, LONG)
        return ticks, await first, await second

    class NoThreads(cf.ThreadPoolExecutor):
        def submit(self, *args, **kwargs):
            raise AssertionError("asubmit must wait with Queue.aput, not in a helper thread")

    async def without_helper_threads():
        asyncio.get_running_loop().set_default_executor(NoThreads())
        return await main()

    try:
        assert asyncio.run(without_helper_threads()) == (5, "1", "2")
    finally:
        gate.release.set()
        pool.shutdown()


def test_a_cancelled_asubmit_leaves_no_task_behind():
    pool, gate, _ = pool_with_busy_worker(max_pending=1)
    ran = []

    async def main():
        await pool.asubmit(str, 1)
        waiting = asyncio.ensure_future(pool.asubmit(ran.append, "late"))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    try:
        asyncio.run(main())
    finally:
        gate.release.set()
        pool.shutdown()
    assert ran == []


# --- cancel tokens ----------------------------------------------------------------------


def waiting_submitters(pool):
    return pool._queue.statistics().waiting_putters


def test_a_token_cancels_queued_tasks_and_wakes_blocked_submitters():
    token = ringq.CancelToken()
    pool = ringq.BoundedExecutor(1, 2, cancel=token)
    gate = Gate()
    running = pool.submit(gate, "first")
    assert gate.started.wait(LONG)
    queued = [pool.submit(gate, i) for i in range(2)]
    blocked = [Call(pool.submit, gate, i) for i in range(2)]
    assert wait_until(lambda: waiting_submitters(pool) == 2, timeout=LONG)
    assert all(call.thread.is_alive() for call in blocked)
    start = time.monotonic()
    token.cancel()
    for call in blocked:
        call.wait(2.0)
        assert isinstance(call.exc, ringq.Cancelled), call.exc
        assert "cancel token fired" in str(call.exc)
    assert wait_until(lambda: all(f.cancelled() for f in queued), timeout=2.0)
    assert time.monotonic() - start < 2.0
    assert running.running() and not running.done()  # a running task finishes
    for submit in (lambda: pool.submit(abs, 1), lambda: pool.submit_nowait(abs, 1),
                   lambda: pool.submit_call(abs, (1,)), lambda: pool.map(abs, [1])):
        with pytest.raises(ringq.Cancelled):
            submit()
    assert "cancelled" in repr(pool)
    gate.release.set()
    assert running.result(LONG) == "first"
    pool.shutdown()
    assert token.cancelled


def test_a_token_cancels_queued_tasks_while_every_worker_is_busy():
    # Nobody waits on the queue: the pool's watcher is what cancels the queued tasks.
    token = ringq.CancelToken()
    pool = ringq.BoundedExecutor(1, 5, cancel=token)
    gate = Gate()
    running = pool.submit(gate, "first")
    assert gate.started.wait(LONG)
    queued = [pool.submit(abs, -i) for i in range(3)]
    assert pool.pending() == 3
    token.cancel()
    assert wait_until(lambda: all(f.cancelled() for f in queued), timeout=2.0)
    assert pool.pending() == 0 and not running.done()
    gate.release.set()
    assert running.result(LONG) == "first"
    pool.shutdown()


def test_a_running_task_can_read_the_pools_token():
    token = ringq.CancelToken()
    with ringq.BoundedExecutor(2, 2, cancel=token) as pool:
        started = threading.Event()

        def long_task():
            started.set()
            return token.wait(BLOCK_TIMEOUT)  # returns True once the token fires

        future = pool.submit(long_task)
        assert started.wait(LONG)
        assert not future.done()
        token.cancel()
        assert future.result(2.0) is True


def test_a_token_deadline_turns_a_blocked_submitter_away():
    token = ringq.CancelToken(timeout=0.3)
    pool = ringq.BoundedExecutor(1, 1, cancel=token)
    gate = Gate()
    pool.submit(gate)
    assert gate.started.wait(LONG)
    queued = pool.submit(gate)
    start = time.monotonic()
    call = Call(pool.submit, gate)
    call.wait(LONG)
    assert 0.3 * 0.5 <= time.monotonic() - start < 0.3 + 2.0  # (the token counts from its creation)
    assert isinstance(call.exc, ringq.Cancelled)
    assert "deadline has passed" in str(call.exc)
    assert queued.cancelled()
    gate.release.set()
    pool.shutdown()


def test_a_parent_token_cancels_pools_on_its_children():
    parent = ringq.CancelToken()
    child_a, child_b = parent.child(), parent.child()
    pool_a = ringq.BoundedExecutor(1, 1, cancel=child_a)
    pool_b = ringq.BoundedExecutor(1, 1, cancel=child_b)
    child_a.cancel()
    assert wait_until(lambda: "cancelled" in repr(pool_a), timeout=2.0)
    with pytest.raises(ringq.Cancelled):
        pool_a.submit(abs, 1)
    assert pool_b.submit(abs, -2).result(LONG) == 2  # a sibling is not touched
    assert not parent.cancelled
    parent.cancel()
    with pytest.raises(ringq.Cancelled):
        pool_b.submit(abs, 1)
    pool_a.shutdown()
    pool_b.shutdown()


def test_shutdown_leaves_the_token_alone():
    token = ringq.CancelToken()
    with ringq.BoundedExecutor(2, 2, cancel=token, thread_name_prefix="tok") as pool:
        assert pool.submit(abs, -3).result(LONG) == 3
        assert any(t.name == "tok-cancel" for t in threading.enumerate())
    assert not token.cancelled
    # The watcher left with the pool (the no_leaked_threads fixture checks it too).
    assert wait_until(lambda: not any(t.name == "tok-cancel" for t in threading.enumerate()),
                      timeout=LONG)
    token.cancel()
    with pytest.raises(ringq.Cancelled):
        pool.submit(abs, 1)


def test_submit_call_cancel_ends_one_wait_only():
    pool, gate, running = pool_with_busy_worker(1)
    queued = pool.submit(abs, -1)
    mine = ringq.CancelToken()
    call = assert_blocks(pool.submit_call, abs, (-2,), cancel=mine)
    mine.cancel()
    call.wait(2.0)
    assert isinstance(call.exc, ringq.Cancelled)
    assert str(call.exc) == "the cancel token was cancelled"
    assert pool.pending() == 1  # nothing was queued by the cancelled call
    gate.release.set()
    assert queued.result(LONG) == 1 and running.result(LONG) == "first"
    assert pool.submit_call(abs, (-4,), ).result(LONG) == 4
    with pytest.raises(ringq.Cancelled):
        pool.submit_call(abs, (-5,), cancel=mine)  # already fired: at once
    with pytest.raises(TypeError, match="CancelToken"):
        pool.submit_call(abs, (1,), cancel=object())
    pool.shutdown()


def test_submit_call_cancel_with_a_pool_token():
    pool_token = ringq.CancelToken()
    pool = ringq.BoundedExecutor(1, 1, cancel=pool_token)
    gate = Gate()
    pool.submit(gate)
    assert gate.started.wait(LONG)
    pool.submit(gate)
    call = assert_blocks(pool.submit_call, abs, (-2,), cancel=ringq.CancelToken())
    pool_token.cancel()  # the pool's token reaches a wait that has its own token
    call.wait(2.0)
    assert isinstance(call.exc, ringq.Cancelled) and "cancel token fired" in str(call.exc)
    gate.release.set()
    pool.shutdown()


def test_asubmit_with_a_token():
    token = ringq.CancelToken()
    pool = ringq.BoundedExecutor(1, 1, cancel=token)
    gate = Gate()
    pool.submit(gate)
    assert gate.started.wait(LONG)
    queued = pool.submit(gate)

    async def main():
        waiting = asyncio.ensure_future(pool.asubmit(abs, -1))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        token.cancel()
        with pytest.raises(ringq.Cancelled):
            await asyncio.wait_for(waiting, 2.0)

    asyncio.run(main())
    assert wait_until(queued.cancelled, timeout=2.0)
    gate.release.set()
    pool.shutdown()


def test_executor_cancel_must_be_a_token():
    with pytest.raises(TypeError, match="CancelToken"):
        ringq.BoundedExecutor(1, 1, cancel=threading.Event())


# --- issue 17: re-entrancy, self-deadlock, map's timeout and references, broken pools ---


@pytest.mark.parametrize("where", ["__init__", "start"])
def test_a_del_that_submits_while_a_worker_thread_is_being_made_does_not_deadlock(impl, where):
    # The GC may run any __del__ wherever threading's own code allocates, here inside
    # Thread.__init__ or Thread.start() while the pool starts a worker. A __del__
    # that submits to the same pool must not wait for a lock that its own thread
    # holds (it did: _threads_lock was held across both). A profile hook runs a
    # real gc.collect() at that point; the child fails instead of hanging.
    out = check_child(impl, f"""
        import threading
        pool = ringq.BoundedExecutor(2, 10)
        done = []

        class Resubmit:
            def __del__(self):
                done.append(pool.submit(str, "from __del__"))

        target = getattr(threading.Thread, {where!r}).__code__
        def profile(frame, event, arg):
            if event == "call" and frame.f_code is target:
                sys.setprofile(None)
                gc.collect()

        gc.disable()
        cycle = Resubmit()
        cycle.self = cycle
        del cycle
        sys.setprofile(profile)
        first = pool.submit(str, "first")
        sys.setprofile(None)
        print(first.result(10), [f.result(10) for f in done])
        pool.shutdown()
        print(len(pool._threads), all(not t.is_alive() for t in pool._threads))
    """, timeout=30)
    assert out.splitlines() == ["first ['from __del__']", "2 True"]


def test_a_del_that_creates_a_pool_while_a_pool_is_being_registered_does_not_deadlock(impl):
    # Every pool registers itself for the interpreter-exit hook under a module lock,
    # in WeakSet.add (Python code): a __del__ run there by the GC may make a pool too.
    out = check_child(impl, """
        import weakref
        made = []

        class MakesAPool:
            def __del__(self):
                with ringq.BoundedExecutor(1, 1) as inner:
                    made.append(inner.submit(str, "inner").result(10))

        def profile(frame, event, arg):
            if (event == "call" and frame.f_code is weakref.WeakSet.add.__code__
                    and frame.f_locals.get("self") is ringq.pool._live_pools):
                sys.setprofile(None)
                gc.collect()

        gc.disable()
        cycle = MakesAPool()
        cycle.self = cycle
        del cycle
        sys.setprofile(profile)
        pool = ringq.BoundedExecutor(1, 1)
        sys.setprofile(None)
        print(pool.submit(str, "outer").result(10), made, pool in ringq.pool._live_pools)
        pool.shutdown()
    """, timeout=30)
    assert out.splitlines() == ["outer ['inner'] True"]


def test_shutdown_wait_waits_for_a_worker_another_thread_is_starting():
    # Bookkeeping and Thread.start() are no longer under one lock: a worker that
    # another thread is starting right now must still be joined by shutdown(wait=True).
    pool = ringq.BoundedExecutor(1, 4)
    in_start = threading.Event()
    go_on = threading.Event()
    real_start = threading.Thread.start

    def slow_start(thread):
        if thread in pool._threads:
            in_start.set()
            assert go_on.wait(LONG)
        real_start(thread)

    ran = []
    with mock.patch.object(threading.Thread, "start", slow_start):
        submitter = Call(pool.submit, ran.append, 1)
        assert in_start.wait(LONG)
    closer = assert_blocks(pool.shutdown)
    go_on.set()
    closer.value()
    submitter.value()
    assert ran == [1]
    assert not any(t.is_alive() for t in pool._threads)


def test_a_task_that_would_wait_forever_on_its_own_full_pool_raises():
    pool = ringq.BoundedExecutor(1, 1)
    ran = []
    try:
        def fan_out():
            pool.submit(ran.append, 1)  # room: fine, also from a task
            pool.submit(ran.append, 2)  # full, and only this worker could make room

        with pytest.raises(RuntimeError) as info:
            pool.submit(fan_out).result(LONG)
        message = str(info.value)
        for words in ("submit() called from a task of this BoundedExecutor", "max_pending=1",
                      "submit_nowait", "timeout", "a larger max_pending", "another pool"):
            assert words in message, message

        def fan_out_call():
            pool.submit(ran.append, 3)
            pool.submit_call(ran.append, (4,))  # no timeout, no token: the same rule

        with pytest.raises(RuntimeError, match=r"submit_call\(\) called from a task"):
            pool.submit(fan_out_call).result(LONG)
    finally:
        pool.shutdown(cancel_futures=True)
    assert sorted(ran) == [1, 3]  # the refused tasks were not queued


def test_asubmit_in_a_task_on_its_own_full_pool_raises():
    # A task that runs an event loop and awaits asubmit() on its own full pool would
    # wait for room only the pool's workers can make: the same error as submit().
    pool = ringq.BoundedExecutor(1, 1)
    ran = []
    try:
        async def fan_out():
            await pool.asubmit(ran.append, 1)  # room: fine, also from a task
            await pool.asubmit(ran.append, 2)  # full, and only this worker could make room

        with pytest.raises(RuntimeError) as info:
            pool.submit(asyncio.run, fan_out()).result(LONG)
        message = str(info.value)
        for words in ("asubmit() called from a task of this BoundedExecutor", "max_pending=1",
                      "submit_nowait", "a larger max_pending", "another pool"):
            assert words in message, message
    finally:
        pool.shutdown()
    assert ran == [1]  # the refused task was not queued


def test_workers_take_the_daemon_flag_of_the_thread_that_starts_them_as_in_threadpoolexecutor():
    # ThreadPoolExecutor (3.9+) passes no daemon= to its worker threads, so each one
    # inherits the flag of the thread whose submit() started it; BoundedExecutor's do too.
    def flags_from(daemon):
        out = {}

        def run():
            for name, make in (("tpe", lambda: cf.ThreadPoolExecutor(1)),
                               ("bounded", lambda: ringq.BoundedExecutor(1, 4))):
                with make() as pool:
                    out[name] = pool.submit(lambda: threading.current_thread().daemon).result(LONG)

        starter = threading.Thread(target=run, daemon=daemon)
        starter.start()
        starter.join(LONG)
        assert not starter.is_alive()
        return out

    assert flags_from(False) == {"tpe": False, "bounded": False}
    assert flags_from(True) == {"tpe": True, "bounded": True}


def test_a_task_may_wait_on_its_own_full_pool_with_a_bound():
    pool = ringq.BoundedExecutor(1, 1)
    try:
        def bounded():
            pool.submit(str, 1)
            with pytest.raises(ringq.Full):
                pool.submit_nowait(str, 2)
            start = time.monotonic()
            with pytest.raises(ringq.Full):
                pool.submit_call(str, (2,), timeout=0.1)
            return time.monotonic() - start

        assert pool.submit(bounded).result(LONG) >= 0.09
    finally:
        pool.shutdown()


def test_map_in_a_task_on_its_own_full_pool_raises():
    pool = ringq.BoundedExecutor(1, 1)
    try:
        def mapper():
            return list(pool.map(str, range(3)))

        with pytest.raises(RuntimeError, match="map.*submit_nowait"):
            pool.submit(mapper).result(LONG)
    finally:
        pool.shutdown(cancel_futures=True)


def test_submit_from_another_thread_still_waits_for_room():
    # The rule is about the pool's own workers only.
    pool, gate, _ = pool_with_busy_worker(max_pending=1)
    try:
        pool.submit(str, 1)
        call = assert_blocks(pool.submit, str, 2)
        gate.release.set()
        assert call.value().result(LONG) == "2"
    finally:
        gate.release.set()
        pool.shutdown()


def test_submit_on_a_full_pool_in_a_running_loop_names_the_pools_async_call():
    # The queue underneath refuses to freeze the loop (LoopBlockingError); the pool's
    # message names its own calls (asubmit, submit_nowait), not the queue's aput().
    pool, gate, _ = pool_with_busy_worker(max_pending=1)
    try:
        pool.submit(str, "filler")  # the queue is full

        async def main():
            with pytest.raises(ringq.LoopBlockingError, match=r"asubmit.*submit_nowait"):
                pool.submit(str, "more")
            assert pool.pending() == 1  # nothing was queued

        asyncio.run(main())
    finally:
        gate.release.set()
        pool.shutdown()


def test_map_timeout_bounds_queueing_the_calls():
    pool, gate, _ = pool_with_busy_worker(max_pending=1)
    ran = []
    try:
        pool.submit(str, "filler")  # the queue is full
        start = time.monotonic()
        call = Call(pool.map, ran.append, range(3), timeout=0.3)
        call.wait(LONG)  # it blocked until the gate opened, before the fix
        assert isinstance(call.exc, cf.TimeoutError), call.exc
        elapsed = time.monotonic() - start
        assert 0.25 <= elapsed < LONG
    finally:
        gate.release.set()
        pool.shutdown()
    assert ran == []  # what map() had queued is skipped


def test_map_timeout_bounds_queueing_the_next_chunk_with_buffersize():
    pool = ringq.BoundedExecutor(1, 1)
    gate = Gate()
    try:
        ran = threading.Event()

        def first(x):
            ran.set()
            return x

        results = pool.map(first, range(5), buffersize=1, timeout=0.5)
        assert ran.wait(LONG)  # chunk 0 ran; its result waits for next()
        pool.submit(gate)
        assert gate.started.wait(LONG)
        pool.submit(str, "filler")  # the queue is full: chunk 1 finds no room
        start = time.monotonic()
        call = Call(next, results)
        call.wait(LONG)
        assert isinstance(call.exc, cf.TimeoutError), call.exc
        assert time.monotonic() - start < LONG
    finally:
        gate.release.set()
        pool.shutdown()


@pytest.mark.parametrize("chunksize", [1, 4])
@pytest.mark.parametrize("buffersize", [None, 2])
def test_map_iterator_keeps_no_reference_to_results(chunksize, buffersize):
    # CPython's test_free_reference (bpo-14406), with chunks and with buffersize.
    class Result:
        pass

    with ringq.BoundedExecutor(2, 100) as pool:
        kept = 0
        count = 0
        for obj in pool.map(lambda _: Result(), range(10), chunksize=chunksize, buffersize=buffersize):
            ref = weakref.ref(obj)
            del obj
            # gc.collect() at once here (wait_until's first step); the short wait
            # only covers free-threaded builds, which may free a little later.
            kept += not wait_until(lambda ref=ref: ref() is None, timeout=1.0)
            count += 1
        assert count == 10
        assert kept == 0, f"{kept} of 10 results stayed referenced by the iterator"


@pytest.mark.parametrize("chunksize", [1, 3])
def test_map_iterator_does_not_keep_the_pool_alive(chunksize):
    # CPython's test_del_shutdown: the iterator must not hold the pool, or a pool
    # dropped while its iterator lives is never collected and its workers never leave.
    pool = ringq.BoundedExecutor(5, 100)
    results = pool.map(abs, range(-5, 5), chunksize=chunksize)
    threads = list(pool._threads)
    ref = weakref.ref(pool)
    del pool
    assert wait_until(lambda: ref() is None), "the map iterator keeps the pool alive"
    join_all(threads, timeout=LONG)
    assert list(results) == [abs(v) for v in range(-5, 5)]


def test_a_lazy_map_whose_pool_was_dropped_says_so():
    pool = ringq.BoundedExecutor(2, 100)
    results = pool.map(abs, range(-5, 5), buffersize=2)
    threads = list(pool._threads)
    del pool
    gc.collect()
    join_all(threads, timeout=LONG)
    got = []
    with pytest.raises(RuntimeError, match="garbage-collected.*keep a reference"):
        for r in results:
            got.append(r)
    assert got == [5, 4]  # the two chunks queued before; none is lost silently


def test_map_after_a_failing_initializer_raises_broken_thread_pool(caplog):
    fail_now = threading.Event()

    def init():
        assert fail_now.wait(LONG)
        raise ValueError("no")

    pool = ringq.BoundedExecutor(1, 10, initializer=init)
    try:
        results = pool.map(str, range(3))  # queued before the pool breaks
        fail_now.set()
        with pytest.raises(BrokenThreadPool):
            next(results)
        with pytest.raises(BrokenThreadPool):
            pool.map(str, range(3))
    finally:
        fail_now.set()
        pool.shutdown()


def test_map_timeout_nan_is_rejected_and_negative_means_already_expired():
    pool, gate, _ = pool_with_busy_worker(max_pending=10)
    ran = []
    try:
        with pytest.raises(ValueError, match="NaN"):
            pool.map(ran.append, [1], timeout=float("nan"))
        with pytest.raises(TypeError):
            pool.map(ran.append, [1], timeout="1")
        # As Executor.map: a negative timeout is a deadline already passed, not an
        # error; the calls are queued, next() raises TimeoutError at the first result
        # not ready.
        results = pool.map(ran.append, [1], timeout=-1)
        with pytest.raises(cf.TimeoutError):
            next(results)
        # A timeout too large for a float waits forever, as the core's timeouts do.
        long_wait = pool.map(str, [7], timeout=10 ** 400)
        gate.release.set()
        assert list(long_wait) == ["7"]
    finally:
        gate.release.set()
        pool.shutdown()
    assert ran == []


def test_map_negative_timeout_matches_thread_pool_executor():
    for executor in (cf.ThreadPoolExecutor(1), ringq.BoundedExecutor(1, 10)):
        with executor:
            gate = Gate()
            executor.submit(gate)
            assert gate.started.wait(LONG)
            results = executor.map(str, [1], timeout=-1)
            with pytest.raises(cf.TimeoutError):
                next(results)
            gate.release.set()


# --- wait_future -----------------------------------------------------------------------


def test_wait_future_returns_the_result_or_raises_the_tasks_error():
    with ringq.BoundedExecutor(2, 4) as pool:
        assert ringq.wait_future(pool.submit(pow, 2, 5)) == 32
        with pytest.raises(ZeroDivisionError):
            ringq.wait_future(pool.submit(divmod, 1, 0), LONG)
        f = pool.submit(str, 1)
        f.result(LONG)
        assert ringq.wait_future(f, 0) == "1"  # done already: no wait


def test_wait_future_ends_when_the_token_fires():
    pool, gate, running = pool_with_busy_worker(max_pending=2)
    try:
        token = ringq.CancelToken()
        call = assert_blocks(ringq.wait_future, running, cancel=token)
        token.cancel()
        call.wait(LONG)
        assert isinstance(call.exc, ringq.Cancelled), call.exc
        assert not running.done()  # the task is left alone
        with pytest.raises(ringq.Cancelled):  # a fired token: at once
            ringq.wait_future(running, cancel=token)
        start = time.monotonic()
        with pytest.raises(ringq.Cancelled, match="deadline"):
            ringq.wait_future(running, LONG, cancel=ringq.CancelToken(timeout=0.1))
        assert time.monotonic() - start < LONG
    finally:
        gate.release.set()
        pool.shutdown()
    assert ringq.wait_future(running, cancel=ringq.CancelToken()) == "first"


def test_wait_future_timeout_and_no_callbacks_left_behind():
    pool, gate, running = pool_with_busy_worker(max_pending=2)
    try:
        for _ in range(50):
            with pytest.raises(cf.TimeoutError):
                ringq.wait_future(running, 0.001, cancel=ringq.CancelToken())
        assert running._done_callbacks == []
        with pytest.raises(ValueError):
            ringq.wait_future(running, -1)
        with pytest.raises(TypeError):
            ringq.wait_future(running, cancel=object())
        with pytest.raises(TypeError):
            ringq.wait_future("not a future")
        gate.release.set()
        assert ringq.wait_future(running, LONG) == "first"
    finally:
        gate.release.set()
        pool.shutdown()


def test_wait_future_takes_any_concurrent_futures_future():
    with cf.ThreadPoolExecutor(1) as tpe:
        gate = Gate()
        f = tpe.submit(gate, "stdlib")
        token = ringq.CancelToken(timeout=0.1)
        with pytest.raises(ringq.Cancelled):
            ringq.wait_future(f, cancel=token)
        gate.release.set()
        assert ringq.wait_future(f, LONG) == "stdlib"
    f = cf.Future()
    f.cancel()
    with pytest.raises(cf.CancelledError):
        ringq.wait_future(f)


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_interrupts_wait_future(impl):
    out = check_child(impl, """
        import concurrent.futures as cf, signal, threading
        future = cf.Future()
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        start = time.monotonic()
        try:
            ringq.wait_future(future, cancel=ringq.CancelToken())
        except KeyboardInterrupt:
            print("interrupted", time.monotonic() - start < 5)
    """, timeout=30)
    assert out.splitlines() == ["interrupted True"]
