"""ringq.PriorityQueue (both implementations) and Queue.put_evict."""
import gc
import pickle
import random
import sys
import threading
import weakref

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ringq
from _helpers import BLOCK_TIMEOUT, LONG, assert_blocks, cpython_only, join_all, wait_until


@pytest.fixture
def PQ(qmod):
    return qmod.PriorityQueue


class Opaque:
    """An item that refuses every comparison, as queue.PriorityQueue would need them."""

    def __init__(self, n):
        self.n = n

    def __lt__(self, other):
        raise AssertionError("items must never be compared")

    __gt__ = __le__ = __ge__ = __lt__

    def __eq__(self, other):
        raise AssertionError("items must never be compared")

    __hash__ = object.__hash__


# -- order -----------------------------------------------------------------------


def test_priority_order_then_fifo_within_a_level(PQ):
    q = PQ(levels=3)
    q.put("low1", 2)
    q.put("mid1", 1)
    q.put("high1", 0)
    q.put("low2", 2)
    q.put("high2", 0)
    q.put("mid2", 1)
    assert [q.get() for _ in range(6)] == ["high1", "high2", "mid1", "mid2", "low1", "low2"]


def test_get_many_crosses_levels_in_priority_order(PQ):
    q = PQ(levels=4)
    q.put_many(range(10, 15), priority=3)
    q.put_many(range(0, 3), priority=1)
    q.put_many(range(20, 22), priority=0)
    assert q.get_many(4) == [20, 21, 0, 1]
    assert q.get_many(100) == [2, 10, 11, 12, 13, 14]
    assert q.qsize() == 0


def test_later_urgent_item_overtakes(PQ):
    q = PQ(levels=3)
    q.put_many(range(5), priority=2)
    assert q.get() == 0
    q.put("now", priority=0)
    assert q.get() == "now"
    assert q.get_many(10) == [1, 2, 3, 4]


def test_items_are_never_compared(PQ):
    q = PQ(levels=2)
    items = [Opaque(i) for i in range(20)]
    for item in items:
        q.put(item, item.n % 2)
    got = q.get_many(20)
    expected = [it for it in items if it.n % 2 == 0] + [it for it in items if it.n % 2 == 1]
    assert [it.n for it in got] == [it.n for it in expected]
    assert all(a is b for a, b in zip(got, expected))


def test_default_priority_is_the_middle_level(PQ):
    for levels in range(1, 6):
        q = PQ(levels=levels)
        q.put("default")
        for level in range(levels):
            q.put(level, level)
        order = q.get_many(levels + 1)
        middle = levels // 2
        # the default item was put first, so it leads its level
        assert order.index("default") == middle, (levels, order)


def test_one_level_is_a_fifo(PQ):
    q = PQ(levels=1, maxsize=3)
    q.put_many([1, 2, 3], priority=0)
    assert q.levels == 1
    assert q.get_many(3) == [1, 2, 3]


def test_constructor_defaults_and_repr(PQ):
    q = PQ()
    assert q.levels == 3 and q.maxsize == 0
    q.put(1, 2)
    assert repr(q) == "<ringq.PriorityQueue levels=3 maxsize=0 qsize=1>"
    q.shutdown()
    assert repr(q) == "<ringq.PriorityQueue levels=3 maxsize=0 qsize=1 shutdown>"
    assert PQ(5, 7).maxsize == 7 and PQ(5, 7).levels == 5


def test_is_a_queue_of_its_implementation(PQ, Queue):
    assert issubclass(PQ, Queue)


# -- validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "levels, exc, message",
    [
        (0, ValueError, "levels must be >= 1, not 0"),
        (-2, ValueError, "levels must be >= 1, not -2"),
        ("3", TypeError, "levels must be an integer, not 'str'"),
        (2.0, TypeError, "levels must be an integer, not 'float'"),
        (True, TypeError, "levels must be an integer, not 'bool'"),
        (None, TypeError, "levels must be an integer, not 'NoneType'"),
        # Issue 17, item 27: the twin made 10**30 deques (filling memory) where the core overflowed.
        (10**30, OverflowError, f"levels must be at most sys.maxsize ({sys.maxsize}), not {10**30}"),
        (sys.maxsize + 1, OverflowError, f"levels must be at most sys.maxsize ({sys.maxsize}), not {sys.maxsize + 1}"),
    ],
)
def test_levels_validation(PQ, levels, exc, message):
    with pytest.raises(exc) as info:
        PQ(levels)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "priority, exc, message",
    [
        (3, ValueError, "priority must be in range(3), not 3"),
        (-1, ValueError, "priority must be in range(3), not -1"),
        (10**30, ValueError, f"priority must be in range(3), not {10**30}"),
        ("0", TypeError, "priority must be an integer, not 'str'"),
        (0.0, TypeError, "priority must be an integer, not 'float'"),
        (True, TypeError, "priority must be an integer, not 'bool'"),
    ],
)
@pytest.mark.parametrize("call", ["put", "put_nowait", "put_many", "put_evict"])
def test_priority_validation(PQ, priority, exc, message, call):
    q = PQ(levels=3)
    with pytest.raises(exc) as info:
        if call == "put_many":
            q.put_many([1, 2], priority=priority)
        else:
            getattr(q, call)(1, priority)
    assert str(info.value) == message
    assert q.qsize() == 0 and q.unfinished_tasks == 0


def test_priority_accepts_index_objects(PQ):
    class Two:
        def __index__(self):
            return 2

    q = PQ(levels=3)
    q.put("b", Two())
    q.put("a", 0)
    assert q.get_many(2) == ["a", "b"]


def test_levels_are_made_lazily(qmod):
    """Issue 17, item 27: the twin made every level's deque up front; now, as the core's rings, on use."""
    import tracemalloc

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        q = qmod.PriorityQueue(levels=10**6)
        made = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    if qmod.__name__.endswith("_py"):
        assert made < 100_000, made  # 10**6 deques would be ~600 MB
    q.put("c", 3)
    q.put("a", 0)
    q.put("b", 1)
    assert q.levels == 10**6
    assert q.get_many(5) == ["a", "b", "c"]
    q.put_many(["d", "e"], priority=2)
    assert q.clear() == 2
    q.put("f", 5)
    q.shutdown(immediate=True)
    assert q.qsize() == 0


def test_far_priority_makes_one_level(qmod):
    """Issue 17, item 27: the twin made the deque of every level up to the one a put used.

    A put at priority 99,999 made 99,999 deques (77 MB; 768 MB and 9 s at 10**6); the
    core allocates that one level's ring only. Now the twin makes one deque too.
    """
    import tracemalloc

    q = qmod.PriorityQueue(levels=10**5)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        q.put("last", 10**5 - 1)
        made = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert made < 1_000_000, made
    # Levels made out of priority order still come out most urgent first, FIFO within one.
    for item, priority in [("m", 500), ("a", 0), ("c", 80), ("m2", 500), ("b", 7), ("c2", 80)]:
        q.put(item, priority)
    assert q.get() == "a"
    assert q.get_many(3) == ["b", "c", "c2"]
    assert q.get() == "m"
    q.put("first", 3)
    assert q.get_many(10) == ["first", "m2", "last"]
    # put_evict compares priorities, not the order in which the levels were made.
    q = qmod.PriorityQueue(levels=10**5, maxsize=3)
    q.put("low", 90_000)
    q.put("high", 10)
    q.put("mid", 50_000)
    assert q.put_evict("new", 20_000) == ("low",)
    assert q.put_evict("lowest", 99_999) == ("lowest",)
    assert q.clear() == 3
    q.put_many(["x", "y"], priority=99_999)
    q.put("z", 1)
    assert q.get_many(5) == ["z", "x", "y"]


def test_levels_cannot_change(PQ):
    q = PQ(levels=3)
    q.put(1, 2)
    with pytest.raises(RuntimeError, match="cannot be changed"):
        q.__init__(levels=4)
    q.__init__(levels=3, maxsize=5)  # same levels: allowed, like queue.Queue's re-init
    assert q.levels == 3 and q.maxsize == 5


def test_subclassable_but_not_picklable_or_copyable(PQ):
    import copy

    sub = type("Sub", (PQ,), {})(levels=2)
    sub.put("x", 1)
    sub.put_nowait("y", 0)
    assert sub.get_many(2) == ["y", "x"]
    for fn in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match="Sub"):
            fn(sub)
    q = PQ()
    for fn in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match="PriorityQueue"):
            fn(q)


# -- maxsize is shared by all the levels -------------------------------------------


def test_maxsize_bounds_all_levels_together(PQ):
    q = PQ(levels=3, maxsize=3)
    q.put("a", 2)
    q.put("b", 1)
    q.put_nowait("c", 0)
    assert q.full() and q.qsize() == 3
    for level in range(3):
        with pytest.raises(ringq.Full):
            q.put_nowait("x", level)
        with pytest.raises(ringq.Full):
            q.put("x", level, timeout=0.01)
    with pytest.raises(ringq.Full):
        q.put_many(["x"], priority=0, block=False)
    assert q.get() == "c"
    q.put("d", 0)
    assert q.get_many(5) == ["d", "b", "a"]


def test_put_many_all_or_nothing_across_levels(PQ):
    q = PQ(levels=2, maxsize=4)
    q.put_many([1, 2], priority=1)
    with pytest.raises(ringq.Full):
        q.put_many([3, 4, 5], priority=0, block=False)
    assert q.qsize() == 2
    q.put_many([3, 4], priority=0, block=False)
    assert q.get_many(4) == [3, 4, 1, 2]


def test_raising_maxsize_wakes_a_putter_of_another_level(PQ):
    q = PQ(levels=3, maxsize=1)
    q.put("low", 2)
    call = assert_blocks(q.put, "high", 0, timeout=BLOCK_TIMEOUT)
    q.maxsize = 2
    call.value()
    assert q.get_many(2) == ["high", "low"]


# -- blocking across levels -----------------------------------------------------------


@pytest.mark.parametrize("level", [0, 1, 2])
def test_blocked_get_is_woken_by_a_put_at_any_level(PQ, level):
    q = PQ(levels=3)
    call = assert_blocks(q.get, timeout=BLOCK_TIMEOUT)
    q.put("x", level)
    assert call.value() == "x"


@pytest.mark.parametrize("level", [0, 2])
def test_blocked_get_many_is_woken_by_a_put_at_any_level(PQ, level):
    q = PQ(levels=3)
    call = assert_blocks(q.get_many, 5, timeout=BLOCK_TIMEOUT)
    q.put_many(["x", "y"], priority=level)
    assert call.value() in (["x"], ["x", "y"])


@pytest.mark.parametrize("put_level, held_level", [(0, 2), (2, 0), (1, 1)])
def test_blocked_put_is_woken_when_any_level_frees_room(PQ, put_level, held_level):
    q = PQ(levels=3, maxsize=2)
    q.put_many(["a", "b"], priority=held_level)
    call = assert_blocks(q.put, "new", put_level, timeout=BLOCK_TIMEOUT)
    assert q.get() == "a"
    call.value()
    assert sorted(q.get_many(2), key=str) == ["b", "new"]


def test_get_timeout_and_nowait(PQ):
    q = PQ()
    with pytest.raises(ringq.Empty):
        q.get_nowait()
    with pytest.raises(ringq.Empty):
        q.get(timeout=0.01)
    with pytest.raises(ringq.Empty):
        q.get_many(3, block=False)


# -- shutdown, join, iteration --------------------------------------------------------


def test_shutdown_drains_every_level_in_order(PQ):
    q = PQ(levels=3)
    q.put_many([5, 6], priority=2)
    q.put(1, 0)
    q.put(3, 1)
    q.shutdown()
    with pytest.raises(ringq.ShutDown):
        q.put(9, 0)
    with pytest.raises(ringq.ShutDown):
        q.put_evict(9, 0)
    assert list(q) == [1, 3, 5, 6]
    with pytest.raises(ringq.ShutDown):
        q.get()


def test_shutdown_immediate_drops_every_level_and_releases_join(PQ):
    q = PQ(levels=3)
    q.put_many(range(10), priority=2)
    q.put_many(range(3), priority=0)
    q.put(99, 1)
    assert q.unfinished_tasks == 14
    joiner = assert_blocks(q.join)
    getter_q = PQ(levels=2)
    getter = assert_blocks(getter_q.get, timeout=BLOCK_TIMEOUT)
    q.shutdown(immediate=True)
    joiner.value()
    assert q.qsize() == 0 and q.empty() and q.unfinished_tasks == 0
    with pytest.raises(ringq.ShutDown):
        q.get_nowait()
    getter_q.shutdown()
    with pytest.raises(ringq.ShutDown):
        getter.value()


@cpython_only
def test_shutdown_immediate_frees_items_of_every_level(PQ):
    class Item:
        pass

    q = PQ(levels=3)
    refs = []
    for level in range(3):
        item = Item()
        refs.append(weakref.ref(item))
        q.put(item, level)
    del item
    q.shutdown(immediate=True)
    assert all(r() is None for r in refs)


def test_task_done_and_join_across_levels(PQ):
    q = PQ(levels=3)
    for level in range(3):
        q.put(level, level)
    joiner = assert_blocks(q.join)
    for _ in range(3):
        q.get()
        q.task_done()
    joiner.value()
    with pytest.raises(ValueError):
        q.task_done()


def test_context_manager_and_iteration(PQ):
    with PQ(levels=2) as q:
        q.put("b", 1)
        q.put("a", 0)
    assert q.is_shutdown
    assert list(q) == ["a", "b"]


@cpython_only
def test_cycle_through_a_lower_level_is_collected(PQ):
    q = PQ(levels=3)
    q.put(q, 2)
    q.put([q], 1)
    ref = weakref.ref(q)
    del q
    assert wait_until(lambda: ref() is None)


def test_gc_traverse_sees_items_of_every_level(PQ):
    q = PQ(levels=3)
    marker = ["lower"]
    q.put(marker, 2)
    # The GC must see the item from the queue (the core) or from a container it holds (the twin).
    reachable = [q]
    for _ in range(3):
        reachable = [r for obj in reachable for r in gc.get_referents(obj)]
        if any(r is marker for r in reachable):
            break
    else:
        raise AssertionError("the GC does not see the items of a lower level")


# -- threads ----------------------------------------------------------------------------


def test_threads_exactly_once_and_fifo_per_producer_and_level(PQ):
    producers, per_producer, consumers = 4, 2000, 3
    q = PQ(levels=3, maxsize=64)
    got = [[] for _ in range(consumers)]

    def produce(p):
        rng = random.Random(p)
        for i in range(per_producer):
            level = rng.randrange(3)
            if i % 50 == 0:
                q.put_many([(p, level, i, j) for j in range(3)], priority=level, timeout=BLOCK_TIMEOUT)
            else:
                q.put((p, level, i, 0), level, timeout=BLOCK_TIMEOUT)

    def consume(c):
        for item in q:
            got[c].append(item)

    cons = [threading.Thread(target=consume, args=(c,)) for c in range(consumers)]
    prods = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    for t in cons + prods:
        t.start()
    join_all(prods)
    q.shutdown()
    join_all(cons)
    everything = [item for sink in got for item in sink]
    assert len(everything) == len(set(everything))
    expected = {(p, lvl, i, j) for p in range(producers) for (i, lvl) in _levels_of(p, per_producer)
                for j in (range(3) if i % 50 == 0 else [0])}
    assert set(everything) == expected
    # Each consumer sees each producer's items of one level in the order they were put.
    for sink in got:
        last = {}
        for p, level, i, j in sink:
            assert last.get((p, level), (-1, -1)) < (i, j)
            last[(p, level)] = (i, j)


def _levels_of(p, n):
    rng = random.Random(p)
    return [(i, rng.randrange(3)) for i in range(n)]


def test_single_consumer_sees_priority_order_among_what_is_queued(PQ):
    # Fill while no consumer runs, then drain: a strict check of the order.
    q = PQ(levels=3, maxsize=0)
    rng = random.Random(7)
    items = [(rng.randrange(3), i) for i in range(3000)]

    def produce(chunk):
        for level, i in chunk:
            q.put((level, i), level)

    threads = [threading.Thread(target=produce, args=(items[k::3],)) for k in range(3)]
    for t in threads:
        t.start()
    join_all(threads)
    drained = q.get_many(10**6)
    assert [lvl for lvl, _ in drained] == sorted(lvl for lvl, _ in drained)
    for k in range(3):  # FIFO per producer within a level
        for level in range(3):
            mine = [i for lvl, i in drained if lvl == level and i % 3 == k]
            assert mine == sorted(mine)


# -- put_evict (Queue and PriorityQueue) --------------------------------------------------


def test_put_evict_with_room_evicts_nothing(Queue):
    q = Queue(2)
    assert q.put_evict(1) == ()
    assert q.put_evict(2) == ()
    assert q.get_many(2) == [1, 2]
    unbounded = Queue()
    for i in range(100):
        assert unbounded.put_evict(i) == ()
    assert unbounded.qsize() == 100


def test_put_evict_when_full_drops_the_oldest(Queue):
    q = Queue(3)
    q.put_many([1, 2, 3])
    assert q.put_evict(4) == (1,)
    assert q.put_evict(None) == (2,)
    assert q.qsize() == 3
    assert q.get_many(3) == [3, 4, None]


def test_put_evict_counts_evicted_items_as_done(Queue):
    q = Queue(2)
    q.put_many([1, 2])
    q.put_evict(3)
    q.put_evict(4)
    assert q.unfinished_tasks == 2
    joiner = assert_blocks(q.join)
    for _ in range(2):
        q.get()
        q.task_done()
    joiner.value()


def test_put_evict_after_maxsize_was_lowered_evicts_several(Queue):
    q = Queue(5)
    q.put_many(range(5))
    q.maxsize = 2
    assert q.put_evict("x") == (0, 1, 2, 3)
    assert q.qsize() == 2 and q.unfinished_tasks == 2
    assert q.get_many(5) == [4, "x"]


def test_put_evict_wakes_a_getter_and_raises_after_shutdown(Queue):
    q = Queue(1)
    call = assert_blocks(q.get, timeout=BLOCK_TIMEOUT)
    assert q.put_evict("x") == ()
    assert call.value() == "x"
    q.shutdown()
    with pytest.raises(ringq.ShutDown):
        q.put_evict("y")


@cpython_only
def test_put_evict_hands_the_evicted_item_to_the_caller(Queue):
    class Item:
        pass

    q = Queue(1)
    first = Item()
    ref = weakref.ref(first)
    q.put(first)
    del first
    evicted = q.put_evict(Item())
    assert evicted[0] is ref()
    del evicted
    assert ref() is None


def test_priority_put_evict_keeps_the_most_urgent(PQ):
    q = PQ(levels=3, maxsize=3)
    q.put_many(["a1", "a2"], priority=1)
    q.put("c1", 2)
    assert q.put_evict("h1", 0) == ("c1",)          # least urgent level goes first
    assert q.put_evict("b3", 1) == ("a1",)          # same level: its oldest
    assert q.put_evict("z", 2) == ("z",)            # less urgent than everything: refused
    assert q.unfinished_tasks == 3
    assert q.get_many(3) == ["h1", "a2", "b3"]


def test_priority_put_evict_default_and_unbounded(PQ):
    q = PQ(levels=3)
    assert q.put_evict("x") == ()
    assert q.put_evict("y", 0) == ()
    assert q.get_many(2) == ["y", "x"]


# -- a model-based check: any sequence of calls behaves like the obvious model -------------

OPS = st.one_of(
    st.tuples(st.just("put"), st.integers(0, 2)),
    st.tuples(st.just("put_many"), st.integers(0, 2), st.integers(0, 4)),
    st.tuples(st.just("put_evict"), st.integers(0, 2)),
    st.tuples(st.just("get")),
    st.tuples(st.just("get_many"), st.integers(1, 5)),
    st.tuples(st.just("set_maxsize"), st.integers(0, 6)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(maxsize=st.integers(0, 5), ops=st.lists(OPS, max_size=40))
def test_matches_a_model(qmod, maxsize, ops):
    q = qmod.PriorityQueue(levels=3, maxsize=maxsize)
    model = [[], [], []]
    counter = iter(range(10**6))

    def size():
        return sum(map(len, model))

    def room():
        return 10**9 if maxsize <= 0 else max(0, maxsize - size())

    def pop_first():
        for level in model:
            if level:
                return level.pop(0)
        raise AssertionError

    for op in ops:
        kind = op[0]
        if kind == "put":
            item = next(counter)
            if room() > 0:
                q.put_nowait(item, op[1])
                model[op[1]].append(item)
            else:
                with pytest.raises(ringq.Full):
                    q.put_nowait(item, op[1])
        elif kind == "put_many":
            items = [next(counter) for _ in range(op[2])]
            if room() >= len(items):
                q.put_many(items, priority=op[1], block=False)
                model[op[1]].extend(items)
            else:
                with pytest.raises(ringq.Full):
                    q.put_many(items, priority=op[1], block=False)
        elif kind == "put_evict":
            item, level = next(counter), op[1]
            expected = []
            refused = False
            while maxsize > 0 and size() >= maxsize:
                victim_level = max(k for k in range(3) if model[k])
                if level > victim_level:
                    expected.append(item)
                    refused = True
                    break
                expected.append(model[victim_level].pop(0))
            if not refused:
                model[level].append(item)
            assert q.put_evict(item, level) == tuple(expected)
        elif kind == "get":
            if size():
                assert q.get_nowait() == pop_first()
            else:
                with pytest.raises(ringq.Empty):
                    q.get_nowait()
        elif kind == "get_many":
            if size():
                n = min(op[1], size())
                assert q.get_many(op[1], block=False) == [pop_first() for _ in range(n)]
            else:
                with pytest.raises(ringq.Empty):
                    q.get_many(op[1], block=False)
        elif kind == "set_maxsize":
            maxsize = op[1]
            q.maxsize = maxsize
        assert q.qsize() == size()
        assert q.full() == (0 < maxsize <= size())
    assert q.get_many(10**6, block=False) == [x for level in model for x in level] if size() else True


def test_blocking_put_gets_in_when_room_appears_under_load(PQ):
    # Many blocked putters at several levels; a consumer frees room slowly: all get in.
    q = PQ(levels=3, maxsize=2)
    q.put_many([0, 0], priority=2)
    putters = [assert_blocks(q.put, (lvl, k), lvl, timeout=BLOCK_TIMEOUT) for k in range(3) for lvl in range(3)]
    got = []
    while len(got) < 11:
        got.append(q.get(timeout=LONG))
    for call in putters:
        call.value()
    expected = [0, 0] + [(lvl, k) for k in range(3) for lvl in range(3)]
    assert sorted(got, key=repr) == sorted(expected, key=repr)


# -- asyncio ------------------------------------------------------------------------------


def test_async_puts_take_a_priority(PQ):
    import asyncio

    async def main():
        q = PQ(levels=3, maxsize=4)
        await q.aput("default")                      # levels // 2
        await q.aput("low", 2)
        await q.aput_many(["u1", "u2"], priority=0)
        with pytest.raises(ValueError, match=r"priority must be in range\(3\), not 3"):
            await q.aput("x", 3)
        with pytest.raises(TypeError, match="priority must be an integer"):
            await q.aput_many(["x"], priority="high")
        # Full: an urgent aput waits for room like any put, then goes first.
        waiter = asyncio.ensure_future(q.aput("u3", priority=0, timeout=LONG))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        assert q.get() == "u1"
        await asyncio.wait_for(waiter, LONG)
        with pytest.raises(ringq.Full):
            await q.aput("late", priority=1, timeout=0.01)
        return q.get_many(10)

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(main()) == ["u2", "u3", "default", "low"]
    finally:
        loop.close()
