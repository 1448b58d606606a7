"""ringq's additions to the queue.Queue API (docs/api.md), for both implementations."""
import copy
import gc
import pickle
import threading
import time
import typing
import weakref
from functools import partial

import pytest

import ringq
from _helpers import BLOCK_TIMEOUT, LONG, Call, assert_all_block, assert_blocks, blocking_then_released, join_all

ShutDown, Empty, Full = ringq.ShutDown, ringq.Empty, ringq.Full


# --------------------------------------------------------------------------- put_many


def test_put_many_order_and_counting(Queue):
    q = Queue()
    q.put("a")
    assert q.put_many([1, 2, 3]) is None
    q.put_many((4, 5))
    q.put_many(iter([6]))
    q.put_many(x for x in (7, 8))
    q.put_many(range(9, 12))
    assert q.qsize() == 12
    assert q.unfinished_tasks == 12
    assert [q.get() for _ in range(12)] == ["a"] + list(range(1, 12))


def test_put_many_empty_returns_at_once(Queue):
    q = Queue(1)
    q.put(1)  # full
    t0 = time.monotonic()
    q.put_many([])
    q.put_many([], block=False)
    q.put_many([], timeout=LONG)
    assert time.monotonic() - t0 < 1.0
    assert q.qsize() == 1
    assert q.unfinished_tasks == 1


def test_put_many_empty_on_overfull_queue_returns(Queue):
    # maxsize lowered below qsize: there is "negative" room, yet put_many([])
    # has nothing to put and must return at once (docs/api.md)
    q = Queue()
    q.put_many([1, 2])
    q.maxsize = 1
    q.put_many([])
    q.put_many([], block=False)
    q.put_many([], timeout=0)
    assert q.qsize() == 2
    assert q.unfinished_tasks == 2


def test_put_many_empty_on_shutdown_queue_raises(Queue):
    q = Queue()
    q.shutdown()
    with pytest.raises(ShutDown):
        q.put_many([])
    with pytest.raises(ShutDown):
        q.put_many([], block=False)


def test_put_many_nowait_all_or_nothing(Queue):
    q = Queue(3)
    q.put(0)
    with pytest.raises(Full):
        q.put_many([1, 2, 3], block=False)
    assert q.qsize() == 1
    assert q.unfinished_tasks == 1
    q.put_many([1, 2], block=False)  # exactly fits
    assert q.full()
    with pytest.raises(Full):
        q.put_many([9], block=False)
    assert [q.get() for _ in range(3)] == [0, 1, 2]
    with pytest.raises(Full):
        q.put_many(range(4), block=False)  # more than maxsize: never fits
    assert q.qsize() == 0
    assert q.unfinished_tasks == 3


def test_put_many_nowait_ignores_timeout(Queue):
    q = Queue(1)
    q.put(0)
    t0 = time.monotonic()
    with pytest.raises(Full):
        q.put_many([1], block=False, timeout=LONG)
    assert time.monotonic() - t0 < 2.0


def test_put_many_unbounded_nowait(Queue):
    q = Queue()
    q.put_many(range(10000), block=False)
    assert q.qsize() == 10000
    assert q.get_many(20000) == list(range(10000))


def test_put_many_blocks_until_room_in_order(Queue):
    q = Queue(2)
    call = assert_blocks(q.put_many, list(range(10)))
    got = []
    while len(got) < 10:
        got.append(q.get(timeout=LONG))
    call.value()
    assert got == list(range(10))
    assert q.unfinished_tasks == 10


def test_put_many_blocking_more_than_maxsize_with_batch_consumer(Queue):
    q = Queue(3)
    call = assert_blocks(q.put_many, list(range(100)))
    got = []
    while len(got) < 100:
        batch = q.get_many(7, timeout=LONG)
        assert 1 <= len(batch) <= 7
        got.extend(batch)
    call.value()
    assert got == list(range(100))


def test_put_many_timeout_leaves_already_put_items(Queue):
    q = Queue(3)
    q.put("x")
    t0 = time.monotonic()
    with pytest.raises(Full):
        q.put_many(["a", "b", "c", "d"], timeout=0.2)
    assert time.monotonic() - t0 >= 0.19
    assert q.qsize() == 3
    assert q.unfinished_tasks == 3
    assert q.get_many(10) == ["x", "a", "b"]


def test_put_many_zero_timeout_puts_what_fits(Queue):
    q = Queue(2)
    with pytest.raises(Full):
        q.put_many([1, 2, 3], timeout=0)
    assert q.get_many(5) == [1, 2]


def test_put_many_shutdown_while_blocked(Queue):
    q = Queue(2)
    call = assert_blocks(q.put_many, ["a", "b", "c", "d"])
    assert q.qsize() == 2
    q.shutdown()
    call.wait()
    assert isinstance(call.exc, ShutDown)
    assert q.qsize() == 2  # the items already put stay
    assert q.unfinished_tasks == 2
    assert list(q) == ["a", "b"]


def test_put_many_after_shutdown(Queue):
    q = Queue(5)
    q.shutdown()
    for kw in ({}, {"block": False}, {"timeout": 1}):
        with pytest.raises(ShutDown):
            q.put_many([1, 2], **kw)
    assert q.qsize() == 0
    assert q.unfinished_tasks == 0


def test_put_many_iteration_error_puts_nothing(Queue):
    q = Queue()

    def gen():
        yield 1
        yield 2
        raise KeyError("boom")

    with pytest.raises(KeyError):
        q.put_many(gen())
    assert q.qsize() == 0
    assert q.unfinished_tasks == 0


def test_put_many_copies_the_list(Queue):
    # The items are read once, up front: changing the list afterwards changes nothing.
    q = Queue(1)
    items = [1, 2, 3]
    call = assert_blocks(q.put_many, items)
    items[1] = "changed"
    items.append(4)
    got = [q.get(timeout=LONG) for _ in range(3)]
    call.value()
    assert got == [1, 2, 3]
    assert q.empty()


def test_put_many_uses_iteration_of_list_and_tuple_subclasses(Queue):
    # "items is consumed into a tuple first": a subclass's own __iter__ counts
    class RevList(list):
        def __iter__(self):
            return reversed(list(super().__iter__()))

    class RevTuple(tuple):
        def __iter__(self):
            return reversed(list(super().__iter__()))

    q = Queue(10)
    q.put_many(RevList([1, 2, 3]))
    assert q.get_many(10) == [3, 2, 1]
    q.put_many(RevTuple((1, 2, 3)), block=False)
    assert q.get_many(10) == [3, 2, 1]


def test_put_many_list_in_place_then_reused(Queue):
    q = Queue(10)
    items = [1, 2, 3]
    q.put_many(items)
    items.clear()  # the queue holds its own references
    items.append(99)
    q.put_many(items)
    assert q.get_many(10) == [1, 2, 3, 99]
    assert items == [99]


def test_put_many_wakes_blocked_getters(Queue):
    q = Queue()
    getters = assert_all_block([q.get] * 3)
    q.put_many(["a", "b", "c"])
    assert sorted(c.value() for c in getters) == ["a", "b", "c"]


def test_put_many_then_join(Queue):
    q = Queue()
    q.put_many(range(5))
    jc = assert_blocks(q.join)
    for _ in range(4):
        q.get()
        q.task_done()
    assert not jc.returned.wait(0.1)
    q.get()
    q.task_done()
    jc.value()


# --------------------------------------------------------------------------- get_many


def test_get_many_returns_up_to_max_items(Queue):
    q = Queue()
    q.put_many(range(5))
    assert q.get_many(3) == [0, 1, 2]
    assert q.get_many(10) == [3, 4]
    assert q.empty()
    q.put("x")
    assert q.get_many(1) == ["x"]


def test_get_many_returns_a_new_list(Queue):
    q = Queue()
    q.put_many([1, 2])
    a = q.get_many(5)
    assert type(a) is list
    q.put_many([3])
    b = q.get_many(5)
    assert a == [1, 2] and b == [3]
    assert a is not b


def test_get_many_does_not_count_tasks(Queue):
    q = Queue()
    q.put_many(range(4))
    assert q.get_many(4) == [0, 1, 2, 3]
    assert q.unfinished_tasks == 4
    for _ in range(4):
        q.task_done()
    assert q.unfinished_tasks == 0
    with pytest.raises(ValueError):
        q.task_done()


def test_get_many_empty_nowait(Queue):
    q = Queue()
    with pytest.raises(Empty):
        q.get_many(5, block=False)
    t0 = time.monotonic()
    with pytest.raises(Empty):
        q.get_many(5, timeout=0.2)
    assert time.monotonic() - t0 >= 0.19
    with pytest.raises(Empty):
        q.get_many(5, block=False, timeout=LONG)


def test_get_many_waits_for_first_item_only(Queue):
    q = Queue()
    call = assert_blocks(q.get_many, 10)
    q.put("first")
    got = call.value()
    assert got == ["first"]
    # and it does not wait for more once something is there
    q.put_many([1, 2])
    t0 = time.monotonic()
    assert q.get_many(10, timeout=LONG) == [1, 2]
    assert time.monotonic() - t0 < LONG / 2


def test_get_many_with_timeout_released_by_put_many(Queue):
    q = Queue()
    got = blocking_then_released(lambda: q.get_many(3, timeout=BLOCK_TIMEOUT), lambda: q.put_many([1, 2, 3, 4]))
    assert 1 <= len(got) <= 3
    rest = q.get_many(10)
    assert got + rest == [1, 2, 3, 4]


def test_get_many_frees_blocked_putters(Queue):
    q = Queue(2)
    q.put_many([1, 2])
    putters = assert_all_block([partial(q.put, x) for x in ("a", "b")])
    assert q.get_many(2) == [1, 2]
    for c in putters:
        c.value()
    assert sorted(q.get_many(5)) == ["a", "b"]


def test_get_many_shutdown(Queue):
    q = Queue()
    q.put_many([1, 2, 3])
    q.shutdown()
    assert q.get_many(2) == [1, 2]
    assert q.get_many(2, block=False) == [3]
    with pytest.raises(ShutDown):
        q.get_many(2)
    with pytest.raises(ShutDown):
        q.get_many(2, block=False)  # ShutDown wins over Empty
    with pytest.raises(ShutDown):
        q.get_many(2, timeout=0)


@pytest.mark.parametrize("immediate", [False, True])
def test_get_many_woken_by_shutdown(Queue, immediate):
    q = Queue()
    calls = assert_all_block([partial(q.get_many, 4), partial(q.get_many, 4, timeout=BLOCK_TIMEOUT)])
    q.shutdown(immediate=immediate)
    for c in calls:
        c.wait()
        assert isinstance(c.exc, ShutDown), (c.result, c.exc)


def test_get_many_huge_max_items(Queue):
    q = Queue()
    q.put_many([1, 2])
    assert q.get_many(10**30) == [1, 2]
    q.put(3)
    assert q.get_many(2**63 - 1) == [3]


# --------------------------------------------------------------------------- iteration


def test_iter_is_self(Queue):
    q = Queue()
    assert iter(q) is q


def test_iteration_until_shutdown_and_drained(Queue):
    q = Queue()
    q.put_many(range(10))
    q.shutdown()
    assert list(q) == list(range(10))
    assert list(q) == []
    with pytest.raises(StopIteration):
        next(q)


def test_next_is_get(Queue):
    q = Queue()
    q.put_many("ab")
    assert next(q) == "a"
    assert next(q) == "b"
    call = assert_blocks(next, q)  # blocks like get()
    q.put("c")
    assert call.value() == "c"


def test_iteration_with_producer_thread(Queue):
    q = Queue(4)

    def producer():
        for i in range(500):
            q.put(i)
        q.shutdown()

    t = threading.Thread(target=producer)
    t.start()
    got = []
    for item in q:
        got.append(item)
        q.task_done()
    join_all([t], 30)
    assert got == list(range(500))
    assert q.unfinished_tasks == 0


def test_iteration_ends_on_immediate_shutdown(Queue):
    q = Queue()
    q.put_many(range(5))
    it = iter(q)
    assert next(it) == 0
    q.shutdown(immediate=True)
    assert list(it) == []


def test_iteration_blocked_for_loop_ended_by_shutdown(Queue):
    q = Queue()
    out = []

    def consume():
        for item in q:
            out.append(item)
        return "done"

    call = assert_blocks(consume)
    q.put(1)
    q.put(2)
    q.shutdown()
    assert call.value() == "done"
    assert out == [1, 2]


# --------------------------------------------------------------------------- context manager


def test_context_manager(Queue):
    with Queue(8) as q:
        assert isinstance(q, Queue)
        q.put(1)
        assert not q.is_shutdown
    assert q.is_shutdown
    assert q.get() == 1  # a plain shutdown: the rest can still be drained
    with pytest.raises(ShutDown):
        q.put(2)


def test_context_manager_does_not_swallow(Queue):
    q = Queue()
    with pytest.raises(ZeroDivisionError):
        with q as q2:
            assert q2 is q
            raise ZeroDivisionError
    assert q.is_shutdown


def test_context_manager_wakes_blocked_consumer(Queue):
    q = Queue()
    call = assert_blocks(q.get)
    with q:
        pass
    call.wait()
    assert isinstance(call.exc, ShutDown)


# --------------------------------------------------------------------------- class-level features


def test_generic_alias(Queue):
    alias = Queue[int]
    assert typing.get_origin(alias) is Queue
    assert typing.get_args(alias) == (int,)
    assert Queue[str] == Queue[str]
    q = Queue[int](3)  # calling the alias makes a plain Queue
    assert type(q) is Queue
    assert q.maxsize == 3


def test_package_generic_alias_at_run_time():
    alias = ringq.Queue[int]
    assert typing.get_origin(alias) is ringq.Queue

    def f(q: "ringq.Queue[int]") -> None:
        pass

    assert typing.get_type_hints(f, globalns={"ringq": ringq})["q"] == ringq.Queue[int]


def test_python_code_can_subclass(Queue):
    class Sub(Queue):
        pass

    q = Sub(2)
    q.put(1)
    assert isinstance(q, Queue) and q.get() == 1
    assert type("Sub2", (Queue,), {})(1).maxsize == 1


@pytest.mark.parametrize("proto", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickle_raises_type_error(Queue, proto):
    q = Queue(3)
    q.put(1)
    with pytest.raises(TypeError):
        pickle.dumps(q, proto)
    assert q.get() == 1  # unharmed


def test_copy_raises_type_error(Queue):
    q = Queue(3)
    q.put([1])
    with pytest.raises(TypeError):
        copy.copy(q)
    with pytest.raises(TypeError):
        copy.deepcopy(q)
    with pytest.raises(TypeError):
        copy.deepcopy({"q": q})
    assert q.get() == [1]


def test_repr(Queue):
    q = Queue(7)
    r = repr(q)
    assert isinstance(r, str)
    assert "Queue" in r
    assert "7" in r
    q.put_many([1, 2])
    q.shutdown()
    r2 = repr(q)
    assert "Queue" in r2
    assert r2 != r  # qsize / shutdown state is shown
    assert str(q) == repr(q)


def test_weakref(Queue):
    q = Queue()
    r = weakref.ref(q)
    assert r() is q
    p = weakref.proxy(q)
    p.put(1)
    assert q.get() == 1
    del q
    gc.collect()
    assert r() is None


def test_weakref_callback_and_finalize(Queue):
    q = Queue()
    fired = []
    weakref.finalize(q, fired.append, "finalized")
    q.put(1)
    del q
    gc.collect()
    assert fired == ["finalized"]


def test_read_only_attributes(Queue):
    q = Queue()
    with pytest.raises(AttributeError):
        q.unfinished_tasks = 5
    with pytest.raises(AttributeError):
        q.is_shutdown = True
    assert q.unfinished_tasks == 0
    assert q.is_shutdown is False


def test_no_condition_attributes(Queue):
    q = Queue()
    for name in ("mutex", "not_empty", "not_full", "all_tasks_done", "_put", "_get", "_qsize"):
        assert not hasattr(q, name), name


def test_no_instance_dict(Queue):
    q = Queue()
    with pytest.raises(AttributeError):
        q.some_new_attribute = 1


def test_maxsize_reads_back_as_int(Queue):
    class Idx:
        def __index__(self):
            return 5

    q = Queue(Idx())
    assert q.maxsize == 5
    assert type(q.maxsize) is int
    q.maxsize = Idx()
    assert q.maxsize == 5
    assert type(q.maxsize) is int
    for i in range(5):
        q.put_nowait(i)
    with pytest.raises(Full):
        q.put_nowait(5)


def test_raising_maxsize_wakes_blocked_putters(Queue):
    q = Queue(1)
    q.put(0)
    putters = assert_all_block([partial(q.put, i) for i in (1, 2)])
    q.maxsize = 3
    for c in putters:
        c.value()
    assert q.qsize() == 3
    assert q.get() == 0
    assert sorted(q.get_many(5)) == [1, 2]


def test_unbounding_wakes_blocked_put_many(Queue):
    q = Queue(1)
    q.put(0)
    call = assert_blocks(q.put_many, list(range(1, 50)))
    q.maxsize = 0
    call.value()
    assert q.get_many(100) == list(range(50))


def test_inf_timeout_waits(Queue):
    q = Queue(1)
    got = blocking_then_released(lambda: q.get(timeout=float("inf")), lambda: q.put("x"))
    assert got == "x"
    q.put("y")
    blocking_then_released(lambda: q.put("z", timeout=float("inf")), q.get)
    assert q.get() == "z"


def test_float_like_timeout(Queue):
    class Secs:
        def __float__(self):
            return 0.1

    q = Queue(1)
    t0 = time.monotonic()
    with pytest.raises(Empty):
        q.get(timeout=Secs())
    assert time.monotonic() - t0 >= 0.09
    q.put(1)
    with pytest.raises(Full):
        q.put(2, timeout=Secs())


def test_put_on_unbounded_ignores_room_but_checks_timeout_type(Queue):
    q = Queue()
    q.put(1, timeout=0)
    q.put(2, timeout=LONG)
    assert q.get_many(3) == [1, 2]


def test_join_with_threads_and_batches(Queue):
    q = Queue(8)
    done = []
    workers = [threading.Thread(target=_safe_iter_worker, args=(q, done)) for _ in range(3)]
    for w in workers:
        w.start()
    q.put_many(range(200))
    Call(q.join).value(30)
    assert sorted(done) == list(range(200))
    q.shutdown()
    join_all(workers, 30)


def _safe_iter_worker(q, done):
    while True:
        try:
            batch = q.get_many(4)
        except ShutDown:
            return
        for item in batch:
            done.append(item)
            q.task_done()
