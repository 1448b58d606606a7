"""Reference counting, lifetime, GC and __del__ re-entrancy.

The re-entrancy tests run in a child interpreter with a deadline (a deadlock
there fails the test instead of hanging the suite), see _helpers.check_child.
"""
import gc
import sys
import weakref

import pytest

import _helpers
import ringq

ShutDown, Empty, Full = ringq.ShutDown, ringq.Empty, ringq.Full

needs_refcount = pytest.mark.skipif(not hasattr(sys, "getrefcount"), reason="needs sys.getrefcount")


class Obj:
    """A weak-referenceable item."""

    def __init__(self, tag=None):
        self.tag = tag


# --------------------------------------------------------------------------- refcounts


@needs_refcount
def test_refcount_put_get(Queue):
    item = Obj()
    base = sys.getrefcount(item)
    q = Queue()
    q.put(item)
    assert sys.getrefcount(item) == base + 1
    q.put_nowait(item)
    assert sys.getrefcount(item) == base + 2
    got = q.get()
    assert got is item
    del got
    assert sys.getrefcount(item) == base + 1
    assert q.get_nowait() is item
    assert sys.getrefcount(item) == base


@needs_refcount
def test_refcount_put_many_get_many(Queue):
    item = Obj()
    base = sys.getrefcount(item)
    q = Queue()
    q.put_many([item, item, item])
    assert sys.getrefcount(item) == base + 3
    q.put_many((item,) * 2)
    q.put_many(iter([item]))
    assert sys.getrefcount(item) == base + 6
    got = q.get_many(4)
    assert sys.getrefcount(item) == base + 6  # 2 in the queue, 4 in the list
    del got
    assert sys.getrefcount(item) == base + 2
    got = q.get_many(100)
    assert len(got) == 2
    del got
    assert sys.getrefcount(item) == base


@needs_refcount
def test_refcount_failed_calls_keep_nothing(Queue):
    item = Obj()
    base = sys.getrefcount(item)
    q = Queue(1)
    q.put(item)
    with pytest.raises(Full):
        q.put_nowait(item)
    with pytest.raises(Full):
        q.put(item, timeout=0.01)
    with pytest.raises(Full):
        q.put_many([item, item], block=False)
    with pytest.raises(ValueError):
        q.put(item, timeout=-1)
    with pytest.raises(TypeError):
        q.put(item, timeout="1")
    assert sys.getrefcount(item) == base + 1
    with pytest.raises(Full):
        q.put_many([item, item, item], timeout=0.01)  # none fits: q is full
    assert sys.getrefcount(item) == base + 1
    assert q.get() is item
    with pytest.raises(Full):
        q.put_many([item, item, item], timeout=0.01)  # one fits, stays
    assert sys.getrefcount(item) == base + 1
    q.shutdown()
    with pytest.raises(ShutDown):
        q.put(item)
    with pytest.raises(ShutDown):
        q.put_many([item])
    assert sys.getrefcount(item) == base + 1
    assert q.get() is item
    assert sys.getrefcount(item) == base


@needs_refcount
def test_refcount_shutdown_immediate(Queue):
    item = Obj()
    base = sys.getrefcount(item)
    q = Queue()
    q.put_many([item] * 10)
    assert sys.getrefcount(item) == base + 10
    q.shutdown()  # plain: keeps the items
    assert sys.getrefcount(item) == base + 10
    q.shutdown(immediate=True)
    assert sys.getrefcount(item) == base


@needs_refcount
def test_refcount_many_grow_shrink_cycles(Queue):
    item = Obj()
    base = sys.getrefcount(item)
    q = Queue()
    for n in (1, 7, 8, 9, 100, 5000, 20000, 3, 0):
        q.put_many([item] * n)
        for _ in range(n // 2):
            q.get()
        q.get_many(max(1, n)) if n else None
        assert q.qsize() == 0
        assert sys.getrefcount(item) == base


# --------------------------------------------------------------------------- lifetimes


def test_items_alive_while_queued(Queue):
    q = Queue()
    objs = [Obj(i) for i in range(100)]
    refs = [weakref.ref(o) for o in objs]
    q.put_many(objs)
    del objs
    gc.collect()
    assert all(r() is not None for r in refs), "an item was freed while still in the queue"
    got = q.get()
    gc.collect()
    assert refs[0]() is got  # alive until we drop it
    del got
    assert _helpers.wait_until(lambda: refs[0]() is None)  # released once got and dropped
    batch = q.get_many(10)
    assert [o.tag for o in batch] == list(range(1, 11))
    del batch
    assert _helpers.wait_until(lambda: all(r() is None for r in refs[:11]))
    assert all(r() is not None for r in refs[11:])


def test_items_released_when_queue_dies(Queue):
    q = Queue()
    objs = [Obj(i) for i in range(20)]
    refs = [weakref.ref(o) for o in objs]
    q.put_many(objs)
    del objs
    for _ in range(5):
        q.get()  # make the ring wrap / move its head
    q.put_many([Obj(i) for i in range(20, 25)])
    assert all(r() is not None for r in refs[5:])
    del q
    assert _helpers.wait_until(lambda: all(r() is None for r in refs)), "items leaked by the dead queue"


def test_items_dropped_by_immediate_shutdown_are_released(Queue):
    q = Queue(50)
    objs = [Obj(i) for i in range(50)]
    refs = [weakref.ref(o) for o in objs]
    q.put_many(objs)
    del objs
    q.shutdown(immediate=True)
    assert _helpers.wait_until(lambda: all(r() is None for r in refs)), "dropped items leaked"
    assert q.qsize() == 0


def test_queue_containing_itself_is_collected(Queue):
    q = Queue()
    q.put(q)
    r = weakref.ref(q)
    del q
    assert _helpers.wait_until(lambda: r() is None), "a queue holding itself is never freed (no GC support)"


def test_cycle_through_an_item_is_collected(Queue):
    q = Queue()
    item = Obj()
    item.q = q
    q.put(item)
    q.put_many([Obj(), item])
    rq, ri = weakref.ref(q), weakref.ref(item)
    del q, item
    assert _helpers.wait_until(lambda: rq() is None and ri() is None)


def test_cycle_between_two_queues_is_collected(Queue):
    a, b = Queue(), Queue()
    a.put(b)
    b.put(a)
    ra, rb = weakref.ref(a), weakref.ref(b)
    del a, b
    assert _helpers.wait_until(lambda: ra() is None and rb() is None)


@_helpers.cpython_only
def test_gc_sees_the_items(Queue):
    q = Queue()
    item = Obj()
    q.put(item)
    q.put([1, 2])
    # the GC must find the queue's items, or it cannot break cycles through them
    referents = gc.get_referents(q)
    flat = list(referents)
    for r in referents:  # the twin keeps its items in a container
        if isinstance(r, (list, tuple)) or type(r).__name__ == "deque":
            flat.extend(r)
    assert any(x is item for x in flat)
    assert gc.is_tracked(q)


@_helpers.cpython_only
def test_weakref_to_queue_dies_with_it(Queue):
    q = Queue()
    q.put(1)
    r = weakref.ref(q)
    assert r() is q
    del q
    assert r() is None  # refcounting alone frees a queue without cycles


# --------------------------------------------------------------------------- __del__ re-entrancy

REENTRANCY_CPYTHON = """
# bpo-14976 (CPython's test_reentrancy for SimpleQueue): put() called from a
# __del__ that the GC runs at any allocation, including inside the queue's calls.
import itertools
q = Queue()
gen = itertools.count()
N = 10000
results = []

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
results.extend(q.get_many(10**6) if q.qsize() else [])
gc.collect()
while q.qsize():
    results.append(q.get())
total = next(gen)
assert sorted(results) == list(range(total)), "items lost or duplicated"
print("OK", len(results))
"""


def test_reentrancy_cpython_bpo14976(impl):
    out = _helpers.check_child(impl, REENTRANCY_CPYTHON, timeout=60)
    assert out.startswith("OK")


REENTRANCY_GC_CHAOS = """
# The GC runs at (almost) every allocation, and every collection finds a fresh
# garbage cycle whose __del__ puts into the queue under test. Every call of the
# queue may thus be re-entered. Nothing may be lost, duplicated or over the bound.
import itertools
MAXSIZE = int(sys.argv[1])
q = Queue(MAXSIZE)
gen = itertools.count()
state = {"on": True, "put": [], "full": 0, "dels": 0}

class Chain:
    def __init__(self):
        self.me = self

    def __del__(self):
        if not state["on"]:
            return
        state["dels"] += 1
        v = ("del", next(gen))
        try:
            q.put_nowait(v)
            state["put"].append(v)
        except (Full, ShutDown):
            state["full"] += 1
        Chain()  # garbage for the next collection

from ringq import Full, ShutDown, Empty
put, got = [], []

def check():
    if MAXSIZE > 0:
        assert q.qsize() <= MAXSIZE, (q.qsize(), MAXSIZE)
    assert q.qsize() >= 0

old = gc.get_threshold()
Chain()
gc.set_threshold(1, 1, 1)
try:
    budget = time.monotonic() + 15  # free-threaded builds collect the whole heap each time
    for i in range(6000):
        if time.monotonic() > budget:
            break
        k = i % 6
        if k == 0:
            v = ("m", i)
            try:
                q.put_nowait(v); put.append(v)
            except Full:
                pass
        elif k == 1:
            vs = [("m", i, j) for j in range(3)]
            try:
                q.put_many(vs, block=False); put.extend(vs)
            except Full:
                pass
        elif k == 2:
            try:
                got.append(q.get_nowait())
            except Empty:
                pass
        elif k == 3:
            try:
                got.extend(q.get_many(4, block=False))
            except Empty:
                pass
        elif k == 4:
            try:
                got.extend(q.get_many(2, timeout=0))
            except Empty:
                pass
        else:
            v = ("m", i)
            try:
                q.put(v, timeout=0); put.append(v)
            except Full:
                pass
        check()
finally:
    state["on"] = False
    gc.set_threshold(*old)
gc.collect()
q.shutdown()
got.extend(q)
allput = put + state["put"]
assert len(got) == len(set(got)), "an item came out twice"
assert sorted(map(repr, got)) == sorted(map(repr, allput)), "items lost or invented"
assert state["dels"] > 100, "the GC hardly ran: the test proves nothing"
print("OK", len(got), len(state["put"]), state["dels"])
"""


@_helpers.cpython_only
@pytest.mark.parametrize("maxsize", [0, 1, 2, 5])
def test_reentrancy_gc_at_every_allocation(impl, maxsize):
    out = _helpers.check_child(impl, REENTRANCY_GC_CHAOS, timeout=90, args=(str(maxsize),))
    assert out.startswith("OK")


REENTRANCY_SHUTDOWN = """
from ringq import Full, ShutDown, Empty
q = Queue()
q2 = Queue()
seen = []
armed = [False]

class Item:
    def __init__(self, i):
        self.i = i

    def __del__(self):
        if not armed[0]:
            return
        # runs while shutdown(immediate=True) drops the items
        seen.append((q.is_shutdown, q.qsize(), q.unfinished_tasks))
        try:
            q.put_nowait(("again", self.i))
            seen.append("put-accepted")
        except ShutDown:
            pass
        try:
            q.get_nowait()
            seen.append("get-returned")
        except ShutDown:
            pass
        q2.put(self.i)

q.put_many([Item(i) for i in range(100)])
q.get()  # one taken, its task not done; dropped here, not armed yet
armed[0] = True
q.shutdown(immediate=True)
assert q2.qsize() == 99, q2.qsize()
assert len([s for s in seen if isinstance(s, tuple)]) == 99
assert "put-accepted" not in seen and "get-returned" not in seen, seen
assert all(s[0] is True for s in seen if isinstance(s, tuple)), "dropped before is_shutdown was set"
assert q.qsize() == 0
assert q.unfinished_tasks == 1
# join must still work from here
q.task_done()
q.join()
print("OK")
"""


@_helpers.cpython_only
def test_reentrancy_during_immediate_shutdown(impl):
    out = _helpers.check_child(impl, REENTRANCY_SHUTDOWN, timeout=60)
    assert out.startswith("OK")


REENTRANCY_SHUTDOWN_JOIN = """
# A __del__ that calls join()/task_done() while immediate shutdown drops items.
q = Queue()
log = []

class Item:
    def __del__(self):
        log.append(q.unfinished_tasks)

q.put_many([Item() for _ in range(10)])
done = threading.Event()
t = threading.Thread(target=lambda: (q.join(), done.set()))
t.start()
time.sleep(0.1)
assert not done.is_set()
q.shutdown(immediate=True)
t.join(10)
assert done.is_set(), "join not released by shutdown(immediate=True)"
assert log == [0] * 10, log  # tasks were already counted as done when the items died
print("OK")
"""


@_helpers.cpython_only
def test_reentrancy_join_during_immediate_shutdown(impl):
    out = _helpers.check_child(impl, REENTRANCY_SHUTDOWN_JOIN, timeout=60)
    assert out.startswith("OK")


REENTRANCY_DEALLOC = """
from ringq import ShutDown
import weakref
other = Queue()
markers_alive = [0]

class Marker:
    def __init__(self):
        markers_alive[0] += 1
    def __del__(self):
        markers_alive[0] -= 1

class Item:
    # puts into its own queue (reachable only through a cycle) and into another
    def __init__(self, q, i):
        self.q, self.i = q, i
    def __del__(self):
        if self.q is not None:
            try:
                self.q.put_nowait(Marker())
            except ShutDown:
                pass
        other.put(self.i)

# 1. plain dealloc, no cycle: the items' __del__ put into another queue
q = Queue()
q.put_many([Item(None, i) for i in range(50)])
q.get_many(1)  # taken and dropped: its __del__ runs now
assert other.qsize() == 1
del q  # the other 49 die with the queue
assert other.qsize() == 50, other.qsize()
assert sorted(other.get_many(100)) == list(range(50))
gc.collect()

# 2. a cycle: the items point at their own queue; the GC runs the __del__
#    while the queue is alive; each puts a Marker into that queue
for rnd in range(20):
    q = Queue()
    q.put_many([Item(q, i) for i in range(30)])
    wq = weakref.ref(q)
    del q
    gc.collect()
    gc.collect()
    assert wq() is None, "queue not collected"
    got = sorted(other.get_many(1000))
    assert got == list(range(30)), got
assert markers_alive[0] == 0, f"{markers_alive[0]} markers leaked"
print("OK")
"""


@_helpers.cpython_only
def test_reentrancy_during_dealloc_and_gc(impl):
    out = _helpers.check_child(impl, REENTRANCY_DEALLOC, timeout=60)
    assert out.startswith("OK")


REENTRANCY_PUT_MANY = """
from ringq import Full, ShutDown
q = Queue(3)
q.put("a")
q.put("b")
log = []

class Item:
    def __del__(self):
        # runs when put_many drops its private tuple of items
        try:
            q.put_nowait(("del", len(log)))
            log.append("put")
        except Full:
            log.append("full")

def fresh(n):
    for _ in range(n):
        yield Item()

try:
    q.put_many(fresh(2), block=False)  # needs 2, room 1: Full, nothing put
except Full:
    pass
else:
    raise AssertionError("expected Full")
assert sorted(log) == ["full", "put"], log
assert q.get_many(10) == ["a", "b", ("del", 0)]

# blocking put_many with a timeout: the first items go in, the rest are dropped
log.clear()
q2items = list(fresh(5))
q.put("x")
try:
    q.put_many(q2items, timeout=0.05)
except Full:
    pass
del q2items  # the 3 Items that were not put die here (after put_many returned)
assert q.qsize() == 3
got = q.get_many(10)
assert got[0] == "x" and len(got) == 3
del got
gc.collect()
print("OK")
"""


@_helpers.cpython_only
def test_reentrancy_put_many_dropping_items(impl):
    out = _helpers.check_child(impl, REENTRANCY_PUT_MANY, timeout=60)
    assert out.startswith("OK")


REENTRANCY_CALLBACKS = """
# User code run *inside* a call: a timeout's __float__, a maxsize's __index__,
# put_many's iterator. Each re-enters the same queue.
from ringq import Empty, Full
q = Queue(2)

class Sneaky:
    def __float__(self):
        q.put_nowait("from __float__")
        return 5.0

t0 = time.monotonic()
assert q.get(timeout=Sneaky()) == "from __float__"
assert time.monotonic() - t0 < 2.5, "an item put by __float__ was not seen"
q.put("x")
q.put("y")

class Taker:
    def __float__(self):
        q.get_nowait()  # makes room for the put below
        return 5.0

t0 = time.monotonic()
q.put("z", timeout=Taker())
assert time.monotonic() - t0 < 2.5, "room made by __float__ was not seen"
assert q.get_many(5) == ["y", "z"]


class Idx:
    def __index__(self):
        q.put_nowait("from __index__")
        return 1

q.maxsize = Idx()
assert q.qsize() == 1 and q.full()  # the new bound, 1, is in force
q.maxsize = 0

class Idx5:
    def __index__(self):
        q.put_nowait("from get_many's __index__")
        return 5

assert q.get_many(Idx5()) == ["from __index__", "from get_many's __index__"]

def gen():
    q.put_nowait("from iterator")
    yield "after"

q.maxsize = 0
q.put_many(gen())
assert q.get_many(5) == ["from iterator", "after"]
print("OK")
"""


def test_reentrancy_user_code_inside_calls(impl):
    out = _helpers.check_child(impl, REENTRANCY_CALLBACKS, timeout=60)
    assert out.startswith("OK")
