"""CancelToken and cancel=: every blocking call raises Cancelled promptly, nothing lost."""
import importlib
import threading
import time

import pytest

import _helpers
import ringq
from _helpers import LONG, assert_blocks


@pytest.fixture
def Token(qmod):
    return qmod.CancelToken


def full(Queue):
    q = Queue(maxsize=1)
    q.put("x")
    return q


def test_cancelled_is_a_plain_exception():
    import asyncio

    assert issubclass(ringq.Cancelled, Exception)
    assert not issubclass(ringq.Cancelled, asyncio.CancelledError)
    assert ringq.Cancelled.__module__ == "ringq"


BLOCKING = {
    "get": lambda Queue: (Queue(), lambda q, t: q.get(cancel=t)),
    "get_timeout": lambda Queue: (Queue(), lambda q, t: q.get(timeout=_helpers.BLOCK_TIMEOUT, cancel=t)),
    "get_many": lambda Queue: (Queue(), lambda q, t: q.get_many(5, cancel=t)),
    "put": lambda Queue: (full(Queue), lambda q, t: q.put("y", cancel=t)),
    "put_many": lambda Queue: (full(Queue), lambda q, t: q.put_many(["y", "z"], cancel=t)),
    "join": lambda Queue: (full(Queue), lambda q, t: q.join(cancel=t)),
}


@pytest.mark.parametrize("call", sorted(BLOCKING))
def test_cancel_wakes_every_blocking_call(Queue, Token, call):
    q, fn = BLOCKING[call](Queue)
    token = Token()
    before = q.qsize()
    blocked = assert_blocks(fn, q, token)
    t0 = time.monotonic()
    token.cancel()
    blocked.wait()
    assert time.monotonic() - t0 < LONG
    assert isinstance(blocked.exc, ringq.Cancelled), blocked.exc
    assert q.qsize() == before  # nothing taken, nothing put
    s = q.statistics()
    assert s.waiting_getters == 0 and s.waiting_putters == 0
    # The queue still works for others.
    if before:
        assert q.get_nowait() == "x"
    q.put("again")
    assert q.get_nowait() == "again"


@pytest.mark.parametrize("call", sorted(BLOCKING))
def test_fired_token_raises_at_once(Queue, Token, call):
    q, fn = BLOCKING[call](Queue)
    token = Token()
    token.cancel()
    before = q.qsize()
    with pytest.raises(ringq.Cancelled, match="was cancelled"):
        fn(q, token)
    assert q.qsize() == before


def test_fired_token_takes_nothing_even_when_items_wait(Queue, Token):
    q = Queue()
    q.put(1)
    token = Token()
    token.cancel()
    with pytest.raises(ringq.Cancelled):
        q.get(cancel=token)
    with pytest.raises(ringq.Cancelled):
        q.put(2, cancel=token)
    assert q.get_nowait() == 1 and q.empty()


def test_put_many_cancelled_part_way_keeps_what_it_put(Queue, Token):
    q = Queue(maxsize=3)
    token = Token()
    blocked = assert_blocks(q.put_many, range(10), cancel=token)
    assert q.qsize() == 3
    token.cancel()
    blocked.wait()
    assert isinstance(blocked.exc, ringq.Cancelled)
    assert q.get_many(10) == [0, 1, 2]  # in order; the rest was not put


def test_deadline(Queue, Token):
    q = Queue()
    token = Token(timeout=0.2)
    assert token.deadline is not None and not token.cancelled
    t0 = time.monotonic()
    with pytest.raises(ringq.Cancelled, match="deadline"):
        q.get(cancel=token)
    waited = time.monotonic() - t0
    assert 0.19 <= waited < LONG
    assert token.cancelled
    with pytest.raises(ValueError):
        Token(timeout=-1)


def test_call_timeout_before_deadline_is_empty(Queue, Token):
    q = Queue()
    with pytest.raises(ringq.Empty):
        q.get(timeout=0.05, cancel=Token(timeout=LONG))


def test_children(Queue, Token):
    parent = Token()
    child = parent.child()
    grandchild = child.child(timeout=LONG)
    q = Queue()
    blocked = assert_blocks(q.get, cancel=grandchild)
    parent.cancel()
    blocked.wait()
    assert isinstance(blocked.exc, ringq.Cancelled)
    assert child.cancelled and grandchild.cancelled
    # A child of a fired parent starts fired; cancelling a child leaves the parent alone.
    assert parent.child().cancelled
    other = Token()
    kid = other.child()
    kid.cancel()
    assert not other.cancelled
    # A child's deadline is never later than its parent's.
    short = Token(timeout=0.1)
    assert short.child(timeout=100).deadline == short.deadline
    with pytest.raises(ringq.Cancelled, match="deadline"):
        q.get(cancel=short.child())


def test_wait(Token):
    token = Token()
    assert token.wait(0.05) is False
    threading.Timer(0.1, token.cancel).start()
    assert token.wait(LONG) is True
    assert Token(timeout=0.05).wait() is True
    with pytest.raises(ringq.Cancelled):
        token.raise_if_cancelled()
    Token().raise_if_cancelled()  # not fired: no exception


def test_bad_token_type(Queue, qmod):
    q = Queue()
    with pytest.raises(TypeError, match="CancelToken"):
        q.get(cancel="soon")
    other = "ringq._queue_py" if qmod.__name__.endswith("_c") else "ringq._queue_c"
    try:
        foreign = _helpers.import_compiled(other).CancelToken() if other.endswith("_c") else (
            importlib.import_module(other).CancelToken())
    except ImportError:
        return
    with pytest.raises(TypeError):
        q.get(timeout=0, cancel=foreign)


def test_no_item_lost_when_getters_are_cancelled(Queue, Token):
    """Getters with tokens that fire at random, racing producers: every item reaches someone."""
    q = Queue(maxsize=4)
    n = 4000
    got = []
    lock = threading.Lock()
    stop_all = Token()

    def consumer(k):
        mine = []
        while True:
            token = stop_all.child(timeout=0.001 * (k + 1))  # many fire while waiting
            try:
                mine.append(q.get(cancel=token))
            except ringq.Cancelled:
                if stop_all.cancelled:
                    break
            except ringq.ShutDown:
                break
        with lock:
            got.extend(mine)

    consumers = [threading.Thread(target=consumer, args=(k,)) for k in range(4)]
    for t in consumers:
        t.start()
    for i in range(n):
        q.put(i, timeout=_helpers.BLOCK_TIMEOUT)
    q.shutdown()
    _helpers.join_all(consumers)
    assert sorted(got) == list(range(n))


def test_one_token_stops_many_calls(Queue, Token, qmod):
    token = Token()
    qs = [Queue() for _ in range(3)]
    calls = _helpers.assert_all_block([
        lambda: qs[0].get(cancel=token),
        lambda: qs[1].get_many(3, cancel=token),
        lambda: qmod.select(*qs, cancel=token),
        lambda: token.wait(),
    ])
    token.cancel()
    for c in calls:
        c.wait()
    assert [type(c.exc) for c in calls[:3]] == [ringq.Cancelled] * 3
    assert calls[3].result is True


def test_priority_queue_calls_take_cancel(qmod, Token):
    pq = qmod.PriorityQueue(levels=2, maxsize=1)
    pq.put("x", 1)
    token = Token()
    calls = _helpers.assert_all_block([
        lambda: pq.put("y", 0, cancel=token),
        lambda: pq.put_many(["z"], priority=1, cancel=token),
    ])
    token.cancel()
    for c in calls:
        c.wait()
        assert isinstance(c.exc, ringq.Cancelled)
    assert pq.get_many(5) == ["x"]


ASYNC_BLOCKING = {
    "aget": lambda Queue: (Queue(), lambda q, t: q.aget(cancel=t)),
    "aget_many": lambda Queue: (Queue(), lambda q, t: q.aget_many(3, cancel=t)),
    "aput": lambda Queue: (full(Queue), lambda q, t: q.aput("y", cancel=t)),
    "aput_many": lambda Queue: (full(Queue), lambda q, t: q.aput_many(["y", "z"], cancel=t)),
    "ajoin": lambda Queue: (full(Queue), lambda q, t: q.ajoin(cancel=t)),
}


@pytest.mark.parametrize("call", sorted(ASYNC_BLOCKING))
def test_cancel_wakes_async_calls(Queue, Token, call):
    import asyncio

    q, fn = ASYNC_BLOCKING[call](Queue)
    before = q.qsize()

    async def main():
        token = Token()
        task = asyncio.ensure_future(fn(q, token))
        await asyncio.sleep(0.1)
        assert not task.done()  # it waits
        threading.Thread(target=token.cancel).start()  # fired from another thread
        with pytest.raises(ringq.Cancelled):
            await asyncio.wait_for(task, LONG)
        with pytest.raises(ringq.Cancelled, match="deadline"):
            await asyncio.wait_for(fn(q, Token(timeout=0.05)), LONG)
        fired = Token()
        fired.cancel()
        with pytest.raises(ringq.Cancelled):
            await fn(q, fired)

    asyncio.run(main())
    assert q.qsize() == before
    s = q.statistics()
    assert s.waiting_getters == 0 and s.waiting_putters == 0


# --- the tree of tokens: reach, depth, re-entrancy ------------------------------------


def test_a_child_keeps_its_parent_alive(Queue, Token):
    # root.child().child(): nothing but the leaf holds the middle token. The leaf must
    # keep it alive (as Go's contexts keep their parents), or root.cancel() never
    # reaches the leaf and a get(cancel=leaf) without a timeout waits forever.
    import gc

    q = Queue()
    root = Token()
    leaf = root.child().child()
    gc.collect()
    blocked = assert_blocks(q.get, cancel=leaf)
    try:
        root.cancel()
        blocked.wait()
    finally:
        leaf.cancel()  # frees the helper thread if the test failed
        blocked.wait()
    assert isinstance(blocked.exc, ringq.Cancelled), blocked.exc
    assert leaf.cancelled


def test_a_parent_does_not_keep_its_children_alive(Token):
    import gc
    import weakref

    root = Token()
    kids = [weakref.ref(root.child(timeout=LONG)) for _ in range(100)]
    gc.collect()
    assert all(k() is None for k in kids)
    root.cancel()  # nothing left to reach, nothing raised
    assert root.child().cancelled


@_helpers.cpython_only
def test_a_long_lived_parent_forgets_its_dead_children(Token):
    # One child per request of a root that lives for ever: the root's references to
    # the dead ones are pruned, so its memory stays bounded.
    import tracemalloc

    root = Token()
    for _ in range(1_000):
        root.child(timeout=LONG)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(50_000):
            root.child(timeout=LONG)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 500_000, f"{grown} bytes kept for 50,000 dead children"


def test_cancel_reaches_every_token_of_a_deep_chain(Queue, Token):
    # 2,000 generations (twice the default recursion limit): cancel() once raised
    # RecursionError part-way, leaving the root cancelled and the deep tokens never fired.
    q = Queue()
    root = Token()
    chain = [root]
    for _ in range(2_000):
        chain.append(chain[-1].child())
    blocked = assert_blocks(q.get, cancel=chain[-1])
    try:
        root.cancel()
        blocked.wait()
    finally:
        chain[-1].cancel()
        blocked.wait()
    assert isinstance(blocked.exc, ringq.Cancelled), blocked.exc
    assert all(t.cancelled for t in chain)
    assert chain[-1].child().cancelled


def test_a_deep_chain_of_tokens_is_freed_without_overflowing_the_stack(impl):
    # Each token holds its parent: dropping the leaf of a long chain frees it all, one
    # token after the other (CPython's trashcan keeps that off the C stack).
    _helpers.check_child(impl, """
        import gc, weakref
        root = qmod.CancelToken()
        leaf = root
        for _ in range(200_000):
            leaf = leaf.child()
        r = weakref.ref(leaf)
        del leaf
        gc.collect()
        assert r() is None
        root.cancel()
        print("ok")
    """, timeout=120)


GC_CANCEL_CHILD = """
    # Cancel the token from a __del__ that the GC runs inside token.child(), at each of
    # the collections that child() triggers in turn (a gc.callbacks hook counts them).
    class Canceller:
        def __init__(self, token):
            self.token = token

        def __del__(self):
            self.token.cancel()

    hit = 0
    for k in range(1, 200):
        token = qmod.CancelToken()
        holder = [Canceller(token)]
        count = [0]

        def hook(phase, info, k=k, holder=holder, count=count):
            if phase == "start":
                count[0] += 1
                if count[0] == k and holder:
                    holder.pop()  # the last reference: __del__ runs here, inside the collection

        old = gc.get_threshold()
        gc.callbacks.append(hook)
        gc.set_threshold(1)
        try:
            kid = token.child()
        finally:
            gc.set_threshold(*old)
            gc.callbacks.remove(hook)
        if count[0] < k:
            break  # every collection that child() triggered has had its __del__
        hit += 1
        assert token.cancelled and kid.cancelled
    print("collections swept:", hit)
"""


@_helpers.cpython_only
def test_cancel_from_a_gc_run_del_inside_child(impl):
    # A __del__ that cancels the token, run by the GC while child() registers the new
    # token with its parent: it once deadlocked on the parent's lock for its children.
    # (An async wait's registration takes the same path; no lock is held there now either.)
    _helpers.check_child(impl, GC_CANCEL_CHILD, timeout=60)


GC_CANCEL_REGISTER = """
    # The other half of issue 17 #6: the GC runs a __del__ that cancels the token while an
    # async wait registers its callback with that token (aget(cancel=token) on an empty
    # queue), at each collection of that path in turn, until the wait is parked.
    import asyncio

    class Canceller:
        def __init__(self, token, late, when):
            self.token, self.late, self.when = token, late, when

        def __del__(self):
            self.when.append(bool(self.late))  # did the wait's fallback timer fire first?
            self.token.cancel()

    loop = asyncio.new_event_loop()
    q = qmod.Queue()
    hit = 0
    for k in range(1, 2000):
        token = qmod.CancelToken()
        late, when = [], []
        holder = [Canceller(token, late, when)]
        count = [0]

        def hook(phase, info, k=k, holder=holder, count=count):
            if phase == "start":
                count[0] += 1
                if count[0] == k and holder:
                    holder.pop()  # the last reference: __del__ runs here, inside the collection

        async def wait():
            task = asyncio.current_task()
            # The fallback: parked with no cancel for 0.2 s (the collections reached idle).
            timer = loop.call_later(0.2, lambda: (late.append(1), task.cancel()))
            try:
                await q.aget(cancel=token)
            finally:
                timer.cancel()

        old = gc.get_threshold()
        gc.callbacks.append(hook)
        gc.set_threshold(1)
        try:
            loop.run_until_complete(wait())
        except qmod.Cancelled:
            outcome = "cancelled"
        except asyncio.CancelledError:
            outcome = "fallback"
        finally:
            gc.set_threshold(*old)
            gc.callbacks.remove(hook)
        assert q.statistics().waiting_getters == 0
        if not when or when[0]:
            break  # the wait reached its parked state before collection k: all swept
        hit += 1
        assert token.cancelled
        assert outcome == "cancelled", (k, outcome)  # a cancel before or during the wait ends it
    loop.close()
    assert hit > 0
    print("collections swept:", hit)
"""


@_helpers.cpython_only
def test_cancel_from_a_gc_run_del_inside_callback_registration(impl):
    # A __del__ that cancels the token, run by the GC while an async wait registers its
    # callback on the token: it must neither deadlock on the token's lock nor miss the
    # cancel (the wait ends with Cancelled, the queue keeps no waiter).
    out = _helpers.check_child(impl, GC_CANCEL_REGISTER, timeout=120)
    assert "collections swept:" in out


# --- CancelToken in coroutines: await_cancelled() and scope() (issue 20, 3) -------------


def loop_kinds():
    kinds = ["asyncio"]
    try:
        import uvloop  # noqa: F401
        kinds.append("uvloop")
    except ImportError:
        pass
    return kinds


@pytest.fixture(params=loop_kinds())
def arun(request):
    import asyncio

    def run(coro_fn):
        if request.param == "uvloop":
            import uvloop

            loop = uvloop.new_event_loop()
        else:
            loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(asyncio.wait_for(coro_fn(), LONG * 3))
        finally:
            loop.close()

    return run


def test_await_cancelled(Token, arun):
    import asyncio

    async def main():
        token = Token()
        waiting = asyncio.ensure_future(token.await_cancelled())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        threading.Thread(target=token.cancel).start()  # from another thread
        assert await asyncio.wait_for(waiting, LONG) is True
        assert await token.await_cancelled() is True  # fired: at once
        # A timeout that passes first: False.
        t0 = time.monotonic()
        assert await Token().await_cancelled(timeout=0.05) is False
        assert 0.04 <= time.monotonic() - t0 < LONG
        # The token's own deadline fires it (nobody calls cancel()), and a parent's.
        assert await Token(timeout=0.05).await_cancelled() is True
        parent = Token()
        leaf = parent.child().child()
        asyncio.get_running_loop().call_later(0.05, parent.cancel)
        assert await leaf.await_cancelled(timeout=LONG) is True
        # Cancelling the awaiting task cancels the wait, and leaves nothing registered.
        idle = Token()
        task = asyncio.ensure_future(idle.await_cancelled())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        idle.cancel()

    arun(main)
    with pytest.raises(ValueError):
        Token().await_cancelled(timeout=-1)  # checked when called, as by wait()


def test_a_scope_cancels_its_block_and_what_it_awaits(Token, arun):
    import asyncio

    async def main():
        token = Token()
        started, cleaned = [], []

        async def child(i):
            started.append(i)
            try:
                await asyncio.sleep(LONG * 10)
            finally:
                cleaned.append(i)

        async def body():
            async with token.scope() as scope:
                await asyncio.gather(*(child(i) for i in range(5)))
            return scope  # not reached

        before = asyncio.all_tasks()
        task = asyncio.ensure_future(body())
        while len(started) < 5:
            await asyncio.sleep(0.01)
        threading.Thread(target=token.cancel).start()
        with pytest.raises(ringq.Cancelled, match="cancel token fired") as info:
            await asyncio.wait_for(task, LONG)
        assert isinstance(info.value.__cause__, asyncio.CancelledError)
        assert sorted(cleaned) == list(range(5))
        assert asyncio.all_tasks() == before  # nothing left running
        if hasattr(task, "cancelling"):
            assert task.cancelling() == 0

    arun(main)


def test_a_scope_and_the_token_deadline_and_leaving_first(Token, arun):
    import asyncio

    async def main():
        # The deadline fires the token by itself.
        t0 = time.monotonic()
        with pytest.raises(ringq.Cancelled):
            async with Token(timeout=0.05).scope():
                await asyncio.sleep(LONG)
        assert time.monotonic() - t0 < LONG
        # A block that ends first: the token firing later changes nothing.
        token = Token()
        async with token.scope() as scope:
            await asyncio.sleep(0)
        token.cancel()
        await asyncio.sleep(0.02)
        assert not scope.cancelled
        # A fired token: Cancelled on entering, the block does not run.
        ran = []
        with pytest.raises(ringq.Cancelled):
            async with token.scope():
                ran.append(1)
        assert ran == []
        # A cancellation from outside stays a CancelledError.
        other = Token()

        async def body():
            async with other.scope():
                await asyncio.sleep(LONG)

        task = asyncio.ensure_future(body())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        other.cancel()

    arun(main)


def test_a_scope_with_a_task_group_inside(Token, arun):
    import asyncio
    import sys

    if sys.version_info < (3, 11):
        pytest.skip("asyncio.TaskGroup is 3.11+")

    async def main():
        token = Token()
        done = []

        async def work(i):
            try:
                await asyncio.sleep(LONG * 10)
            finally:
                done.append(i)

        before = asyncio.all_tasks()
        asyncio.get_running_loop().call_later(0.05, token.cancel)
        with pytest.raises(ringq.Cancelled):
            async with token.scope():
                async with asyncio.TaskGroup() as tg:
                    for i in range(3):
                        tg.create_task(work(i))
        assert sorted(done) == [0, 1, 2]
        assert asyncio.all_tasks() == before
        assert asyncio.current_task().cancelling() == 0

    arun(main)
