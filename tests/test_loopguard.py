"""Issue 17, item 21: a blocking call that would wait in a thread whose event loop runs raises.

``await q.get()`` kept from ``asyncio.Queue`` code used to freeze the loop (and
Ctrl-C with it). Now put/get/put_many/get_many/join/select/next(q) raise
ringq.LoopBlockingError (a RuntimeError) instead of waiting, having changed
nothing; the fast paths (an item present, room available, no wait asked for) are
untouched; ``with ringq.allow_blocking():`` lets a call block the loop on purpose.
Bound to both implementations.
"""
import asyncio
import threading
import time

import pytest

import ringq
from _helpers import LONG, Call


def run_in_loop(fn):
    """Run the plain function *fn* inside a coroutine on a fresh running loop; return its result."""

    async def main():
        return fn()

    return asyncio.run(asyncio.wait_for(main(), LONG * 3))


def snapshot(q):
    s = q.statistics()
    return (q.qsize(), q.unfinished_tasks, s.puts, s.gets, s.waiting_getters, s.waiting_putters)


def _calls(qmod):
    """(name, the async call the message must name, queue factory, the blocking call)."""
    Queue = qmod.Queue

    def empty():
        return Queue(2)

    def full():
        q = Queue(2)
        q.put_many(["a", "b"])
        return q

    def half():  # room for 1 of the 3 items put_many wants to put: it must put none
        q = Queue(3)
        q.put_many(["a", "b"])
        return q

    def unfinished():
        q = Queue()
        q.put("a")
        q.get()
        return q

    return [
        ("get", "aget()", empty, lambda q: q.get()),
        ("get", "aget()", empty, lambda q: q.get(timeout=LONG)),
        ("get", "aget()", empty, lambda q: next(q)),
        ("get_many", "aget_many(", empty, lambda q: q.get_many(5)),
        ("put", "aput(", full, lambda q: q.put("c")),
        ("put", "aput(", full, lambda q: q.put("c", timeout=LONG)),
        ("put_many", "aput_many(", full, lambda q: q.put_many(["c"])),
        ("put_many", "aput_many(", half, lambda q: q.put_many(["c", "d", "e"])),
        ("put_many", "aput_many(", half, lambda q: q.put_many(("c", "d", "e"), timeout=LONG)),
        ("join", "ajoin()", unfinished, lambda q: q.join()),
        ("select", "aselect(", empty, lambda q: qmod.select(q)),
    ]


CALL_IDS = ["get", "get-timeout", "next", "get_many", "put", "put-timeout", "put_many-full",
            "put_many-part-fits", "put_many-tuple-timeout", "join", "select"]


@pytest.mark.parametrize("index", range(len(CALL_IDS)), ids=CALL_IDS)
def test_blocking_call_in_a_running_loop_raises_and_changes_nothing(qmod, index):
    name, async_call, make, call = _calls(qmod)[index]
    q = make()
    before = snapshot(q)

    def body():
        with pytest.raises(ringq.LoopBlockingError) as info:
            call(q)
        return info.value

    err = run_in_loop(body)
    assert isinstance(err, RuntimeError)
    msg = str(err)
    assert msg.startswith(f"{name}() would wait"), msg
    assert async_call in msg and "allow_blocking" in msg, msg
    if name in ("get", "put", "join"):
        assert "async_q" in msg, msg
    assert snapshot(q) == before  # nothing taken, nothing put, no waiter left behind
    # And outside a loop the same call still waits and works.
    if name in ("get", "get_many", "select"):
        c = Call(call, q)
        q.put("x")
        assert c.value() in ("x", ["x"], (q, "x"))


def test_fast_paths_in_a_running_loop_are_unchanged(qmod):
    """No wait, no error: an item present, room available, or a call that was told not to wait."""
    q = qmod.Queue(2)

    def body():
        q.put(1)
        q.put_many([2])
        out = [q.get(), q.get_many(5)]
        with pytest.raises(ringq.Empty):
            q.get(block=False)
        with pytest.raises(ringq.Empty):
            q.get(timeout=0)
        with pytest.raises(ringq.Empty):
            q.get_many(3, timeout=0)
        q.put_many([3, 4])
        with pytest.raises(ringq.Full):
            q.put(5, timeout=0)
        with pytest.raises(ringq.Full):
            q.put(5, block=False)
        with pytest.raises(ringq.Full) as info:
            q.put_many([5], timeout=0)
        assert info.value.put_count == 0
        with pytest.raises(ringq.Empty):
            qmod.select(qmod.Queue(), timeout=0)
        out.append(q.get_many(5))
        q.task_done()
        q.task_done()
        q.task_done()
        q.task_done()
        q.join()  # nothing unfinished: returns at once
        return out

    assert run_in_loop(body) == [1, [2], [3, 4]]


def test_put_many_that_would_wait_puts_none_of_its_items(qmod):
    """put_many puts what fits as it goes; refused in a loop, it must not have put a first part."""
    q = qmod.Queue(4)
    q.put("a")

    def body():
        with pytest.raises(ringq.LoopBlockingError):
            q.put_many(["b", "c", "d", "e"])  # 3 fit, 4 do not

    run_in_loop(body)
    assert q.get_many(10) == ["a"]


def test_allow_blocking_lets_a_call_wait_on_the_loop_thread(qmod):
    q = qmod.Queue(1)
    parked = threading.Event()

    def feed():
        assert parked.wait(LONG)
        end = time.monotonic() + LONG
        while q.statistics().waiting_getters == 0 and time.monotonic() < end:  # the get really waits
            time.sleep(0.005)
        q.put("late")

    def body():
        t = threading.Thread(target=feed)
        t.start()
        with ringq.allow_blocking():
            parked.set()
            got = q.get(timeout=LONG)
        t.join(LONG)
        with pytest.raises(ringq.LoopBlockingError):  # only inside the block
            q.get()
        return got

    assert run_in_loop(body) == "late"


def test_allow_blocking_holds_for_its_own_task_only(qmod):
    """A ContextVar: one task's allow_blocking() block does not let another task's call block the loop."""
    q = qmod.Queue(1)

    async def main():
        inside = asyncio.Event()
        leave = asyncio.Event()

        async def allowed():
            with ringq.allow_blocking():
                inside.set()
                await leave.wait()

        task = asyncio.ensure_future(allowed())
        await inside.wait()
        try:
            with pytest.raises(ringq.LoopBlockingError):
                q.get()
        finally:
            leave.set()
            await task

    asyncio.run(asyncio.wait_for(main(), LONG * 3))


def test_a_thread_without_a_running_loop_still_blocks(qmod):
    """The check is per thread: a loop running in another thread does not stop this one from waiting."""
    q = qmod.Queue(1)
    started = threading.Event()
    stop = None

    async def keep_running():
        nonlocal stop
        stop = asyncio.Event()
        started.set()
        await stop.wait()

    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_until_complete, args=(keep_running(),))
    runner.start()
    try:
        assert started.wait(LONG)
        c = Call(q.get, timeout=LONG)
        q.put("x")
        assert c.value() == "x"
    finally:
        loop.call_soon_threadsafe(stop.set)
        runner.join(LONG)
        loop.close()


def test_await_get_with_an_item_present_takes_it_then_fails(qmod):
    """The documented limit: the fast path is not checked, so ``await q.get()`` takes an item,
    then ``await`` of that item raises TypeError (the item is not awaitable). Waiting for one raises
    LoopBlockingError instead, having taken nothing."""
    q = qmod.Queue(2)
    q.put("item")

    async def main():
        with pytest.raises(TypeError):
            await q.get()
        assert q.qsize() == 0  # taken: it was returned to the await, which failed
        with pytest.raises(ringq.LoopBlockingError):
            await q.get()

    asyncio.run(asyncio.wait_for(main(), LONG * 3))


def test_token_wait_in_a_running_loop_raises_unless_it_would_not_wait(qmod):
    # CancelToken.wait() is a blocking call like get(): on a loop's thread it would freeze
    # the loop, so it raises, naming the coroutine to use; a wait that need not wait
    # (the token fired, timeout=0) still answers at once.
    import asyncio

    async def main():
        token = qmod.CancelToken()
        with pytest.raises(ringq.LoopBlockingError, match=r"await token\.await_cancelled\(\)"):
            token.wait()
        with pytest.raises(ringq.LoopBlockingError, match=r"asyncio\.to_thread\(token\.wait"):
            token.wait(timeout=LONG)
        assert token.wait(timeout=0) is False
        with ringq.allow_blocking():
            assert token.wait(timeout=0.01) is False  # the documented opt-out waits
        token.cancel()
        assert token.wait() is True

    asyncio.run(main())
