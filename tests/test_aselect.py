"""ringq.aselect(): select() for asyncio tasks, on the queues' own waiter lists."""
import asyncio
import threading

import pytest

import _helpers
import ringq


@pytest.fixture
def aselect(qmod):
    return qmod.aselect


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, _helpers.BLOCK_TIMEOUT))


def test_ready_and_waiting(Queue, aselect):
    async def main():
        a, b = Queue(), Queue()
        b.put("x")
        assert await aselect(a, b) == (b, "x")
        task = asyncio.ensure_future(aselect(a, b))
        await asyncio.sleep(0.05)
        assert not task.done()
        assert a.statistics().waiting_getters == 1 and b.statistics().waiting_getters == 1
        a.put("y")
        assert await task == (a, "y")
        assert a.statistics().waiting_getters == 0 and b.statistics().waiting_getters == 0
        with pytest.raises(ringq.Empty):
            await aselect(a, b, timeout=0.05)
        b.put_many([1, 2])
        assert await aselect(a, b, priority=True) == (b, 1)

    run(main())


def test_woken_by_a_thread(Queue, aselect):
    async def main():
        a, b = Queue(), Queue()
        threading.Timer(0.1, b.put, args=("from a thread",)).start()
        return await aselect(a, b)

    q, item = run(main())
    assert item == "from a thread"


def test_cancelled_task_takes_nothing_and_leaves_no_link(Queue, aselect):
    async def main():
        a, b = Queue(), Queue()
        task = asyncio.ensure_future(aselect(a, b))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert a.statistics().waiting_getters == 0 and b.statistics().waiting_getters == 0
        a.put(1)
        assert a.get_nowait() == 1

    run(main())


def test_shutdown(Queue, aselect):
    async def main():
        a, b = Queue(), Queue()
        a.shutdown()
        task = asyncio.ensure_future(aselect(a, b))
        await asyncio.sleep(0.05)
        assert not task.done()
        b.shutdown()
        with pytest.raises(ringq.ShutDown):
            await task

    run(main())


def test_exactly_once_tasks_threads_and_producers(Queue, aselect, qmod):
    """aselect tasks, select threads and plain getters share the items: each arrives once."""
    qs = [Queue(maxsize=4) for _ in range(3)]
    n = 3000
    got = []
    lock = threading.Lock()

    async def consumers():
        async def one():
            mine = []
            while True:
                try:
                    _, item = await aselect(*qs)
                except ringq.ShutDown:
                    return mine
                mine.append(item)
        results = await asyncio.gather(*(one() for _ in range(3)))
        with lock:
            for r in results:
                got.extend(r)

    def selector():
        mine = []
        while True:
            try:
                mine.append(qmod.select(*qs)[1])
            except ringq.ShutDown:
                break
        with lock:
            got.extend(mine)

    def produce(k):
        for i in range(k * n, (k + 1) * n):
            qs[k].put(i)

    loop_thread = threading.Thread(target=lambda: asyncio.run(consumers()))
    others = [threading.Thread(target=selector) for _ in range(2)]
    others.append(threading.Thread(target=lambda: got.extend(list(qs[1]))))
    producers = [threading.Thread(target=produce, args=(k,)) for k in range(3)]
    for t in [loop_thread] + others + producers:
        t.start()
    _helpers.join_all(producers)
    for q in qs:
        q.shutdown()
    _helpers.join_all([loop_thread] + others)
    assert sorted(got) == list(range(3 * n))


def test_cancel_token_ends_a_waiting_aselect(Queue, aselect, qmod):
    """A token fired from another thread wakes a parked aselect, which raises Cancelled having taken nothing."""
    async def main():
        a, b = Queue(), Queue()
        token = qmod.CancelToken()
        task = asyncio.ensure_future(aselect(a, b, cancel=token))
        assert await _wait_for(lambda: a.statistics().waiting_getters == 1 and b.statistics().waiting_getters == 1)
        assert not task.done()
        threading.Timer(0.05, token.cancel).start()
        with pytest.raises(ringq.Cancelled):
            await asyncio.wait_for(task, 2.0)
        assert a.statistics().waiting_getters == 0 and b.statistics().waiting_getters == 0
        b.put("kept")  # nothing was taken, and the queues still work
        assert await aselect(a, b) == (b, "kept")

    run(main())


def test_cancel_token_fired_before_and_by_deadline(Queue, aselect, qmod):
    async def main():
        a, b = Queue(), Queue()
        fired = qmod.CancelToken()
        fired.cancel()
        b.put("x")
        with pytest.raises(ringq.Cancelled):
            await aselect(a, b, cancel=fired)  # a fired token wins, as in select()
        assert b.qsize() == 1
        with pytest.raises(ringq.Cancelled):
            await aselect(a, Queue(), cancel=qmod.CancelToken(timeout=0.05))
        with pytest.raises(TypeError):
            await aselect(a, b, cancel="not a token")
        # A token that never fires changes nothing.
        assert await aselect(a, b, cancel=qmod.CancelToken()) == (b, "x")

    run(main())


async def _wait_for(predicate, timeout=_helpers.BLOCK_TIMEOUT):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            return False
        await asyncio.sleep(0.005)
    return True
