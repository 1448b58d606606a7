"""A true drop-in: subclassing, clear(), put_many's put_count (issue 10, section 3)."""
import asyncio
import copy
import pickle
import threading
import time

import pytest

import ringq
from _helpers import wait_until


# -- subclassing ----------------------------------------------------------------


def _job_queue_class(Queue):
    class JobQueue(Queue):
        """Tags every item on the way in and counts the gets: the overrides must be used."""

        def __init__(self, name, maxsize=0):
            super().__init__(maxsize)
            self.name = name
            self.gets = 0

        def put(self, item, block=True, timeout=None, *, cancel=None):
            super().put(("job", item), block, timeout, cancel=cancel)

        def get(self, block=True, timeout=None, *, cancel=None):
            self.gets += 1
            return super().get(block, timeout, cancel=cancel)

    return JobQueue


def test_subclass_adds_attributes_and_methods(Queue):
    JobQueue = _job_queue_class(Queue)
    q = JobQueue("builds", maxsize=2)
    assert q.name == "builds" and q.maxsize == 2
    q.extra = [1]  # a subclass has a __dict__
    assert q.__dict__["extra"] == [1]
    assert isinstance(q, Queue)


def test_nowait_calls_and_iteration_go_through_overrides(Queue):
    q = _job_queue_class(Queue)("x", maxsize=2)
    q.put_nowait(1)
    q.put(2)
    with pytest.raises(ringq.Full):
        q.put_nowait(3)  # through put(block=False): still Full
    assert q.get_nowait() == ("job", 1)
    assert q.gets == 1
    q.shutdown()
    assert list(q) == [("job", 2)]
    assert q.gets == 3  # one item and the get that ended the iteration
    with pytest.raises(ringq.ShutDown):
        q.get_nowait()


def test_base_instances_have_no_dict(Queue):
    """Only subclasses get a __dict__: a base instance stays small and its nowait calls direct."""
    q = Queue(1)
    with pytest.raises(AttributeError):
        q.put = None
    q.put_nowait(1)
    assert q.get_nowait() == 1


def test_priority_subclass_put_nowait_goes_through_put(qmod):
    seen = []

    class Tracked(qmod.PriorityQueue):
        def put(self, item, priority=None, block=True, timeout=None, *, cancel=None):
            seen.append((item, priority, block))
            super().put(item, priority, block, timeout, cancel=cancel)

    q = Tracked(levels=2)
    q.put_nowait("a", 0)
    assert seen == [("a", 0, False)]
    assert q.get_nowait() == "a"


def test_subclass_repr_pickle_copy_generic(Queue):
    class MyQ(Queue):
        pass

    q = MyQ(3)
    assert repr(q).startswith(f"<{__name__}.test_subclass_repr_pickle_copy_generic.<locals>.MyQ maxsize=3 qsize=0")
    for fn in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match="MyQ"):
            fn(q)
    alias = MyQ[int]
    assert alias.__origin__ is MyQ and alias.__args__ == (int,)
    assert repr(Queue(3)).startswith("<ringq.Queue maxsize=3")


def test_subclass_instances_are_collected_in_cycles(Queue):
    import gc
    import weakref

    class Sub(Queue):
        pass

    q = Sub()
    q.me = q
    q.put(q)
    ref = weakref.ref(q)
    del q
    gc.collect()
    assert ref() is None


def test_subclass_without_own_init_takes_the_base_arguments(Queue):
    Sub = type("Sub", (Queue,), {})
    assert Sub(maxsize=4).maxsize == 4


# -- clear() --------------------------------------------------------------------


def test_clear_drops_everything_and_counts_them_done(Queue):
    q = Queue()
    q.put_many(range(5))
    q.get()
    assert q.clear() == 4
    assert q.qsize() == 0 and q.empty()
    assert q.unfinished_tasks == 1  # the one taken by get()
    q.task_done()
    q.join()  # returns: nothing unfinished
    assert q.clear() == 0
    q.put("after")
    assert q.get() == "after"


def test_clear_releases_join(Queue):
    q = Queue()
    q.put_many([1, 2])
    joined = threading.Event()

    def joiner():
        q.join()
        joined.set()

    t = threading.Thread(target=joiner)
    t.start()
    time.sleep(0.1)
    assert not joined.is_set() and t.is_alive()  # blocked on the two items
    assert q.clear() == 2
    assert joined.wait(10)
    t.join(10)


def test_clear_wakes_blocked_putters(Queue):
    q = Queue(2)
    q.put_many([1, 2])
    put_done = threading.Event()

    def putter():
        q.put_many([3, 4])
        put_done.set()

    t = threading.Thread(target=putter)
    t.start()
    time.sleep(0.1)
    assert not put_done.is_set() and t.is_alive()  # blocked: no room
    assert q.clear() == 2
    assert put_done.wait(10)
    t.join(10)
    assert q.get_many(5) == [3, 4] and q.unfinished_tasks == 2


def test_clear_drops_all_priority_levels(qmod):
    q = qmod.PriorityQueue(levels=3, maxsize=4)
    q.put("a", 0)
    q.put("b", 1)
    q.put("c", 2)
    assert q.clear() == 3
    assert q.qsize() == 0 and q.unfinished_tasks == 0
    q.put("d", 2)
    q.put("e", 0)
    assert q.get_many(2) == ["e", "d"]


def test_clear_drops_items_outside_the_lock(Queue):
    q = Queue()
    seen = []

    class Reenter:
        def __del__(self):
            seen.append(q.qsize())  # would deadlock or see a half-cleared queue under the lock
            q.put_nowait("from __del__")

    q.put(Reenter())
    q.put(1)
    assert q.clear() == 2
    assert seen == [0]
    assert q.get_nowait() == "from __del__"


def test_clear_keeps_the_queue_usable_after_shutdown(Queue):
    q = Queue()
    q.put_many([1, 2])
    q.shutdown()
    assert q.clear() == 2
    with pytest.raises(ringq.ShutDown):
        q.get_nowait()


# -- put_many's put_count ---------------------------------------------------------


def test_put_many_full_carries_put_count(Queue):
    q = Queue(3)
    with pytest.raises(ringq.Full) as info:
        q.put_many(range(5), timeout=0.05)
    assert info.value.put_count == 3
    assert q.get_many(5) == [0, 1, 2]
    with pytest.raises(ringq.Full) as info:
        q.put_many([1, 2, 3, 4], block=False)  # all or nothing
    assert info.value.put_count == 0 and q.qsize() == 0


def test_put_many_shutdown_carries_put_count(Queue):
    q = Queue(2)
    failures = []

    def producer():
        try:
            q.put_many(range(10))
        except ringq.ShutDown as e:
            failures.append(e.put_count)

    t = threading.Thread(target=producer)
    t.start()
    wait_until(lambda: q.qsize() == 2)
    assert q.get() == 0
    wait_until(lambda: q.qsize() == 2)  # item 2 went in
    q.shutdown()
    t.join(10)
    assert failures == [3]
    with pytest.raises(ringq.ShutDown) as info:
        q.put_many([1])
    assert info.value.put_count == 0


def test_put_many_cancelled_carries_put_count(qmod):
    q = qmod.Queue(2)
    token = qmod.CancelToken(timeout=0.05)
    with pytest.raises(ringq.Cancelled) as info:
        q.put_many("abcd", cancel=token)
    assert info.value.put_count == 2
    with pytest.raises(ringq.Cancelled) as info:
        q.put_many("ef", cancel=token)  # already fired: nothing put
    assert info.value.put_count == 0 and q.qsize() == 2


def test_priority_put_many_carries_put_count(qmod):
    q = qmod.PriorityQueue(levels=2, maxsize=2)
    with pytest.raises(ringq.Full) as info:
        q.put_many("abc", priority=1, timeout=0.02)
    assert info.value.put_count == 2


def test_aput_many_carries_put_count(qmod):
    async def main():
        q = qmod.Queue(2)
        with pytest.raises(ringq.Full) as info:
            await q.aput_many(range(5), timeout=0.05)
        assert info.value.put_count == 2
        token = qmod.CancelToken(timeout=0.05)
        q.get()
        with pytest.raises(ringq.Cancelled) as info:
            await q.aput_many("xyz", cancel=token)
        assert info.value.put_count == 1
        q.shutdown()
        with pytest.raises(ringq.ShutDown) as info:
            await q.aput_many([1])
        assert info.value.put_count == 0

    asyncio.run(main())
