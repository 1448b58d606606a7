"""The bad-input table of docs/api.md, and resource errors, for both implementations."""
import gc
import math
import os
import pickle
import sys
import tracemalloc
from decimal import Decimal
from fractions import Fraction

import pytest

import _helpers
import ringq

ShutDown, Empty, Full = ringq.ShutDown, ringq.Empty, ringq.Full


class Idx:
    def __init__(self, v):
        self.v = v

    def __index__(self):
        return self.v


class Secs:
    def __init__(self, v):
        self.v = v

    def __float__(self):
        return self.v


BAD_MAXSIZE = ["3", b"3", 3.0, 2.5, None, [], (), object(), Decimal(3), Fraction(3, 1), 1j]


# --------------------------------------------------------------------------- maxsize


@pytest.mark.parametrize("bad", BAD_MAXSIZE, ids=repr)
def test_bad_maxsize_in_constructor(Queue, bad):
    with pytest.raises(TypeError):
        Queue(bad)
    with pytest.raises(TypeError):
        Queue(maxsize=bad)


@pytest.mark.parametrize("bad", BAD_MAXSIZE, ids=repr)
def test_bad_maxsize_assignment(Queue, bad):
    q = Queue(4)
    with pytest.raises(TypeError):
        q.maxsize = bad
    assert q.maxsize == 4  # unchanged
    for i in range(4):
        q.put_nowait(i)
    with pytest.raises(Full):
        q.put_nowait(4)


@pytest.mark.parametrize(
    "good, bound", [(True, 1), (False, 0), (Idx(2), 2), (10**30, None), (-(10**30), None), (2**63, None)]
)
def test_integer_like_maxsize_accepted(Queue, good, bound):
    q = Queue(good)
    assert q.maxsize == operator_index(good)
    for i in range(3):
        if bound is not None and i >= bound > 0:
            with pytest.raises(Full):
                q.put_nowait(i)
        else:
            q.put_nowait(i)
    q2 = Queue()
    q2.maxsize = good
    assert q2.maxsize == operator_index(good)


def operator_index(x):
    import operator

    return operator.index(x)


def test_constructor_signature(Queue):
    assert Queue().maxsize == 0
    assert Queue(maxsize=3).maxsize == 3
    with pytest.raises(TypeError):
        Queue(1, 2)
    with pytest.raises(TypeError):
        Queue(size=3)


def test_keyword_names_match_the_stdlib(Queue):
    q = Queue(maxsize=2)
    q.put(item=1, block=True, timeout=None)
    assert q.get(block=True, timeout=None) == 1
    q.put_many(items=[1, 2], block=True, timeout=1)
    assert q.get_many(max_items=5, block=False, timeout=None) == [1, 2]
    q.shutdown(immediate=True)
    assert q.is_shutdown


def test_missing_arguments(Queue):
    q = Queue()
    with pytest.raises(TypeError):
        q.put()
    with pytest.raises(TypeError):
        q.get_many()
    with pytest.raises(TypeError):
        q.put_many()
    assert q.qsize() == 0


# --------------------------------------------------------------------------- timeouts


def _calls(Queue):
    """(name, make_queue, call(q, timeout)) for every blocking call that takes a timeout.

    The queues are set up so that the call would succeed at once with a valid
    timeout: the check is made up front, whether or not waiting is needed.
    """
    return [
        ("get-nonempty", lambda: _filled(Queue(), 1), lambda q, t: q.get(True, t)),
        ("get-empty", lambda: Queue(), lambda q, t: q.get(timeout=t)),
        ("put-unbounded", lambda: Queue(), lambda q, t: q.put("x", timeout=t)),
        ("put-bounded-room", lambda: Queue(3), lambda q, t: q.put("x", True, t)),
        ("put-full", lambda: _filled(Queue(1), 1), lambda q, t: q.put("x", timeout=t)),
        ("put_many", lambda: Queue(), lambda q, t: q.put_many(["x", "y"], timeout=t)),
        ("get_many-nonempty", lambda: _filled(Queue(), 2), lambda q, t: q.get_many(5, timeout=t)),
        ("get_many-empty", lambda: Queue(), lambda q, t: q.get_many(5, True, t)),
    ]


def _filled(q, n):
    for i in range(n):
        q.put(i)
    return q


CALL_IDS = ["get-nonempty", "get-empty", "put-unbounded", "put-bounded-room", "put-full",
            "put_many", "get_many-nonempty", "get_many-empty"]


@pytest.mark.parametrize("which", range(len(CALL_IDS)), ids=CALL_IDS)
@pytest.mark.parametrize(
    "timeout, exc",
    [
        (-1, ValueError),
        (-0.001, ValueError),
        (-math.inf, ValueError),
        (math.nan, ValueError),
        (Secs(-1.0), ValueError),
        ("1", TypeError),
        (b"1", TypeError),
        ([], TypeError),
        (object(), TypeError),
        (1j, TypeError),
    ],
    ids=["-1", "-0.001", "-inf", "nan", "Secs(-1)", "'1'", "b'1'", "[]", "object()", "1j"],
)
def test_bad_timeout(Queue, which, timeout, exc):
    name, make, call = _calls(Queue)[which]
    q = make()
    before = (q.qsize(), q.unfinished_tasks)
    with pytest.raises(exc):
        call(q, timeout)
    # nothing was put or taken
    assert (q.qsize(), q.unfinished_tasks) == before


@pytest.mark.parametrize("timeout", [-1, math.nan, "1", object()], ids=repr)
def test_bad_timeout_ignored_without_block(Queue, timeout):
    q = Queue(1)
    q.put(1, False, timeout)
    with pytest.raises(Full):
        q.put(2, False, timeout)
    assert q.get(False, timeout) == 1
    with pytest.raises(Empty):
        q.get(False, timeout)
    q.put_many([1], block=False, timeout=timeout)
    assert q.get_many(1, block=False, timeout=timeout) == [1]
    with pytest.raises(Empty):
        q.get_many(1, block=False, timeout=timeout)


@pytest.mark.parametrize("timeout", [0, 0.0, 1, 2.5, True, Secs(0.5), Fraction(1, 2), Decimal("0.5"), math.inf, 1e300])
def test_good_timeouts_accepted(Queue, timeout):
    q = Queue(2)
    q.put("a", timeout=timeout)
    q.put_many(["b"], timeout=timeout)
    assert q.get(timeout=timeout) == "a"
    assert q.get_many(3, timeout=timeout) == ["b"]


@pytest.mark.parametrize("timeout", [10**400, Fraction(10**400, 3), 2**1100],
                         ids=["10**400", "Fraction(10**400, 3)", "2**1100"])
def test_huge_timeouts_mean_forever_never_overflow(qmod, timeout):
    """Issue 17, item 27: timeout=10**400 raised OverflowError on every timed call; docs say never.

    Past a float's range a positive timeout waits forever (as inf and 1e300 do); a
    negative one is a ValueError like -1.
    """
    import asyncio

    q = qmod.Queue(2)
    q.put("a", timeout=timeout)
    q.put_many(["b"], timeout=timeout)
    assert q.get(timeout=timeout) == "a"
    assert q.get_many(3, timeout=timeout) == ["b"]
    q.put("c")
    assert qmod.select(q, timeout=timeout) == (q, "c")
    token = qmod.CancelToken(timeout=timeout)
    assert token.deadline is None and not token.cancelled

    async def main():
        await q.aput("d", timeout=timeout)
        await q.aput_many(["e"], timeout=timeout)
        assert await q.aget(timeout=timeout) == "d"
        assert await q.aget_many(3, timeout=timeout) == ["e"]
        q.put("f")
        assert await qmod.aselect(q, timeout=timeout) == (q, "f")
        for _ in range(6):
            q.task_done()
        await q.ajoin(timeout=timeout)

    asyncio.run(main())
    # And a waiting call given one really waits (is woken by a put, not timed out).
    getter = _helpers.Call(q.get, timeout=timeout)
    q.put("g")
    assert getter.value() == "g"
    for bad in (-timeout, -(10**400)):
        with pytest.raises(ValueError, match="non-negative"):
            q.get(timeout=bad)
        with pytest.raises(ValueError, match="non-negative"):
            q.put(1, timeout=bad)


# --------------------------------------------------------------------------- get_many / put_many


def test_aget_many_rejects_bool(Queue):
    """Issue 17, item 27: get_many(True) took one item; a bool is not a count."""
    import asyncio

    q = Queue()
    q.put_many([1, 2])

    async def main():
        with pytest.raises(TypeError, match="not 'bool'"):
            await q.aget_many(True)

    asyncio.run(main())
    with pytest.raises(TypeError, match="max_items must be an integer, not 'bool'"):
        q.get_many(True)
    assert q.qsize() == 2


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-1, ValueError), (-(10**30), ValueError),
                                      (1.5, TypeError), (2.0, TypeError), ("3", TypeError),
                                      (None, TypeError), ([1], TypeError),
                                      (True, TypeError), (False, TypeError)],
                         ids=repr)
def test_get_many_bad_max_items(Queue, bad, exc):
    q = Queue()
    q.put_many([1, 2])
    with pytest.raises(exc):
        q.get_many(bad)
    with pytest.raises(exc):
        q.get_many(bad, block=False)
    assert q.qsize() == 2  # nothing was taken
    q2 = Queue()
    with pytest.raises(exc):  # checked before waiting, too
        q2.get_many(bad, timeout=0.01)


def test_get_many_index_like_max_items(Queue):
    q = Queue()
    q.put_many([1, 2, 3])
    assert q.get_many(Idx(2)) == [1, 2]
    assert q.get_many(Idx(5)) == [3]  # True is no longer a count (issue 17, item 27)


@pytest.mark.parametrize("bad", [5, None, 1.5, object()], ids=repr)
def test_put_many_not_iterable(Queue, bad):
    q = Queue()
    with pytest.raises(TypeError):
        q.put_many(bad)
    with pytest.raises(TypeError):
        q.put_many(bad, block=False)
    assert q.qsize() == 0
    assert q.unfinished_tasks == 0


def test_put_many_iterator_raising_midway_puts_nothing(Queue):
    q = Queue(100)

    def items():
        yield from range(10)
        raise RuntimeError("stop")

    for kw in ({}, {"block": False}, {"timeout": 1}):
        with pytest.raises(RuntimeError):
            q.put_many(items(), **kw)
    assert q.qsize() == 0
    assert q.unfinished_tasks == 0


# --------------------------------------------------------------------------- misc


def test_pickling_is_a_type_error(Queue):
    with pytest.raises(TypeError):
        pickle.dumps(Queue())


def test_too_many_task_done(Queue):
    q = Queue()
    with pytest.raises(ValueError):
        q.task_done()
    q.put_many([1, 2])
    q.task_done()
    q.task_done()
    with pytest.raises(ValueError):
        q.task_done()
    assert q.unfinished_tasks == 0
    q.put(3)
    assert q.unfinished_tasks == 1


# --------------------------------------------------------------------------- memory


def _nomemory():
    if not _helpers.CPYTHON:
        pytest.skip("_testcapi.set_nomemory is CPython's")
    _testcapi = pytest.importorskip("_testcapi")
    if not (hasattr(_testcapi, "set_nomemory") and hasattr(_testcapi, "remove_mem_hooks")):
        pytest.skip("_testcapi.set_nomemory is not available")
    return _testcapi


@pytest.mark.parametrize("bounded", [False, True])
@pytest.mark.parametrize("prefill", [0, 7, 8, 100, 5000])
def test_memory_error_while_growing_put(Queue, prefill, bounded):
    _testcapi = _nomemory()
    q = Queue(10**9 if bounded else 0)
    item = object()
    base = sys.getrefcount(item)
    for _ in range(prefill):
        q.put(item)
    put = q.put
    ok = 0
    failed = False
    gc.disable()
    try:
        for _ in range(200000):
            _testcapi.set_nomemory(0, 0)
            try:
                put(item)
            except MemoryError:
                failed = True
            finally:
                _testcapi.remove_mem_hooks()
            if failed:
                break
            ok += 1
    finally:
        _testcapi.remove_mem_hooks()
        gc.enable()
    assert failed, "put never needed memory in 200000 calls"
    n = prefill + ok
    assert q.qsize() == n
    assert q.unfinished_tasks == n
    assert sys.getrefcount(item) == base + n, "reference leaked (or lost) by the failed put"
    # the queue still works
    q.put(item)
    q.put_nowait(item)
    assert q.qsize() == n + 2
    got = q.get_many(n + 10)
    assert len(got) == n + 2 and all(x is item for x in got)
    del got
    assert sys.getrefcount(item) == base
    assert q.empty()


def _deque_extend_leaks_on_memory_error(_testcapi):
    """True if this CPython's deque.extend() keeps a reference to the item it could not store.

    CPython 3.14.10 does (3.13 and 3.15 do not): when a new block cannot be allocated,
    the item taken from the iterator is neither stored nor released. The twin's put_many
    is a deque.extend, so its item then keeps one reference too many; the queue itself
    is intact.
    """
    from collections import deque

    item = object()
    before = sys.getrefcount(item)
    d = deque([item])
    it = iter((item,) * 100)  # the first block has 63 free slots: the 64th needs a new one
    gc.disable()
    _testcapi.set_nomemory(0, 0)
    try:
        d.extend(it)
    except MemoryError:
        pass
    finally:
        _testcapi.remove_mem_hooks()
        gc.enable()
    del d, it
    return sys.getrefcount(item) > before


def test_memory_error_put_many(Queue):
    _testcapi = _nomemory()
    twin = Queue.__module__ == "ringq._queue_py"
    cpython_leaks = twin and _deque_extend_leaks_on_memory_error(_testcapi)
    item = object()
    base = sys.getrefcount(item)
    batch = (item,) * 1000
    leaked = 0
    for block in (False, True):
        q = Queue()
        q.put(item)
        gc.disable()
        _testcapi.set_nomemory(0, 0)
        try:
            q.put_many(batch, block=block)
        except MemoryError:
            failed = True
        else:
            failed = False
        finally:
            _testcapi.remove_mem_hooks()
            gc.enable()
        # A deque with one item has no free block left for the other 999: the step must
        # allocate. (Before 3.14 the twin's first allocation, its iterator, always failed
        # first; on 3.14+ it and the counts' ints can come from free lists, so the
        # failure lands inside the step, which must then be undone whole.)
        assert failed, "put_many of 1000 items needed no memory"
        n = q.qsize()
        if not block:
            assert n == 1, "block=False must be all or nothing"
        assert q.unfinished_tasks == n
        assert q.qsize() == n and q.empty() is (n == 0)
        extra = sys.getrefcount(item) - (base + leaked + 1000 + n)  # the batch tuple holds 1000
        # Only CPython's own deque.extend leak (see above) may leave one reference behind.
        assert extra == 0 or (cpython_leaks and extra == 1), f"{extra} references leaked (or lost)"
        leaked += extra
        q.put_many(batch)
        assert q.qsize() == n + 1000
        got = q.get_many(10**6)
        assert len(got) == n + 1000
        del got
        assert sys.getrefcount(item) == base + leaked + 1000
        del q
    del batch
    assert sys.getrefcount(item) == base + leaked


def test_memory_error_get_many(Queue):
    _testcapi = _nomemory()
    item = object()
    base = sys.getrefcount(item)
    q = Queue()
    q.put_many([item] * 100)
    get_many = q.get_many
    gc.disable()
    _testcapi.set_nomemory(0, 0)
    try:
        get_many(50)
    except MemoryError:
        failed = True
    else:
        failed = False
    finally:
        _testcapi.remove_mem_hooks()
        gc.enable()
    assert failed, "get_many built its list without allocating"
    assert q.qsize() == 100, "items lost by a failed get_many"
    assert sys.getrefcount(item) == base + 100
    assert len(q.get_many(1000)) == 100
    assert sys.getrefcount(item) == base


@_helpers.cpython_only
def test_huge_maxsize_is_not_preallocated(Queue):
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak() if hasattr(tracemalloc, "reset_peak") else None
        qs = [Queue(10**12), Queue(2**62), Queue(10**8)]
        for q in qs:
            for i in range(10):
                q.put(i)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < 1_000_000, f"peak {peak - before} bytes for three almost empty queues"
    for q in qs:
        assert q.qsize() == 10
        assert not q.full()
        assert q.get_many(100) == list(range(10))


def _vm_size_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1])
    raise RuntimeError("no VmSize")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux /proc only")
def test_huge_maxsize_does_not_reserve_address_space(Queue):
    # Catches a preallocation made with plain malloc, which tracemalloc cannot see.
    before = _vm_size_kb()
    qs = [Queue(10**8) for _ in range(4)]
    for q in qs:
        q.put_many(range(10))
    grown_kb = _vm_size_kb() - before
    assert grown_kb < 64 * 1024, f"address space grew by {grown_kb} KiB for 4 queues of 10 items"
    assert [q.qsize() for q in qs] == [10] * 4
