"""ringq.Broadcast and ringq.Router, on both implementations of the queue under them."""
import gc
import queue
import sys
import threading

import pytest

import ringq
import ringq.broadcast
from _helpers import BLOCK_TIMEOUT, LONG, assert_blocks, check_child, cpython_only, join_all, wait_until
from ringq import Broadcast, Router, UnroutableError


@pytest.fixture
def Bcast(qmod, monkeypatch):
    """Broadcast over the implementation under test."""
    monkeypatch.setattr(ringq.broadcast, "Queue", qmod.Queue)
    return Broadcast


# -- Broadcast ---------------------------------------------------------------------------


def test_every_subscriber_gets_every_item_in_order(Bcast):
    b = Bcast(maxsize=10)
    subs = [b.subscribe() for _ in range(3)]
    for i in range(5):
        b.publish(i)
    for s in subs:
        assert s.get_many(10) == [0, 1, 2, 3, 4]
        assert s.dropped == 0
    assert b.subscribers == 3


def test_items_published_before_subscribing_do_not_arrive(Bcast):
    b = Bcast()
    b.publish("early")  # no subscriber: simply gone
    s = b.subscribe()
    b.publish("late")
    assert s.get_nowait() == "late"
    with pytest.raises(ringq.Empty):
        s.get_nowait()


def test_subscription_is_queue_like(Bcast, qmod):
    b = Bcast(maxsize=4)
    s = b.subscribe()
    assert isinstance(s.queue, qmod.Queue)
    assert s.maxsize == 4 and s.empty() and not s.full() and s.qsize() == 0
    b.put_nowait(1)
    b.put(2)
    assert s.qsize() == 2 and s.unfinished_tasks == 2
    assert s.get() == 1 and s.get(timeout=1) == 2
    s.task_done()
    s.task_done()
    s.join()
    with pytest.raises(ringq.Empty):
        s.get(timeout=0.01)
    assert "dropped=0" in repr(s)


def test_context_manager_unsubscribes(Bcast):
    b = Bcast(maxsize=2)
    with b.subscribe() as s:
        b.publish("x")
        assert b.subscribers == 1
    assert b.subscribers == 0
    assert s.is_shutdown
    with pytest.raises(ringq.ShutDown):
        s.get_nowait()  # unread items are dropped on unsubscribe
    b.publish("y")  # nobody left: fine
    s.unsubscribe()  # again: nothing happens


def test_forgotten_subscription_unsubscribes_when_collected(Bcast):
    b = Bcast(maxsize=1)
    s = b.subscribe()
    b.publish(1)
    del s
    assert wait_until(lambda: b.subscribers == 0)
    b.publish(2, timeout=LONG)  # a full, forgotten subscriber holds nobody back


def test_block_policy_waits_for_the_slowest(Bcast):
    b = Bcast(maxsize=1)
    fast, slow = b.subscribe(), b.subscribe()
    b.publish(1)
    assert fast.get() == 1
    call = assert_blocks(b.publish, 2, timeout=BLOCK_TIMEOUT)
    assert slow.get() == 1  # room in the slowest: the publish completes
    call.value()
    assert fast.get_nowait() == 2 and slow.get_nowait() == 2
    assert fast.dropped == slow.dropped == 0


def test_block_policy_nowait_is_all_or_nothing(Bcast):
    b = Bcast(maxsize=1)
    a, c = b.subscribe(), b.subscribe()
    b.publish(1)
    a.get()
    with pytest.raises(ringq.Full):
        b.publish_nowait(2)  # c is full: nobody gets 2
    with pytest.raises(ringq.Full):
        b.publish(2, block=False)
    assert a.qsize() == 0 and c.qsize() == 1
    assert a.dropped == c.dropped == 0


def test_block_policy_timeout_counts_the_miss(Bcast):
    b = Bcast(maxsize=1)
    ok, slow = b.subscribe(), b.subscribe()
    b.publish(1)
    ok.get()
    with pytest.raises(ringq.Full):
        b.publish(2, timeout=0.05)
    assert ok.get_nowait() == 2  # delivered where there was room
    assert slow.dropped == 1 and ok.dropped == 0
    assert slow.get_many(5) == [1]


def test_block_policy_validates_timeout(Bcast):
    b = Bcast(maxsize=1)
    with pytest.raises(ValueError):
        b.publish(1, timeout=-1)
    with pytest.raises(TypeError):
        b.publish(1, timeout="1")


def test_unsubscribe_releases_a_blocked_publisher(Bcast):
    b = Bcast(maxsize=1)
    other, slow = b.subscribe(), b.subscribe()
    b.publish(1)
    other.get()
    call = assert_blocks(b.publish, 2, timeout=BLOCK_TIMEOUT)
    slow.unsubscribe()
    call.value()
    assert other.get_nowait() == 2


def test_drop_newest_policy(Bcast):
    b = Bcast(maxsize=2, overflow="drop_newest")
    fast, slow = b.subscribe(), b.subscribe()
    for i in range(5):
        b.publish(i)
        assert fast.get_nowait() == i
    assert slow.get_many(10) == [0, 1]
    assert slow.dropped == 3 and fast.dropped == 0


def test_drop_oldest_policy(Bcast):
    b = Bcast(maxsize=2, overflow="drop_oldest")
    fast, slow = b.subscribe(), b.subscribe()
    for i in range(5):
        b.publish_nowait(i)
        assert fast.get_nowait() == i
    assert slow.get_many(10) == [3, 4]
    assert slow.dropped == 3 and fast.dropped == 0
    assert slow.unfinished_tasks == 2  # the 3 evicted items count as done, the 2 read do not yet


@pytest.mark.parametrize("overflow", ["drop_oldest", "drop_newest"])
def test_drop_policies_never_block(Bcast, overflow):
    b = Bcast(maxsize=1, overflow=overflow)
    s = b.subscribe()
    for i in range(100):
        b.publish(i, timeout=0)
    assert s.qsize() == 1 and s.dropped == 99


def test_shutdown_lets_subscribers_drain(Bcast):
    b = Bcast()
    subs = [b.subscribe() for _ in range(2)]
    b.publish_nowait("a")
    b.publish_nowait("b")
    b.shutdown()
    assert b.is_shutdown
    for s in subs:
        assert list(s) == ["a", "b"]
        assert s.is_shutdown
    with pytest.raises(ringq.ShutDown):
        b.publish("c")
    with pytest.raises(ringq.ShutDown):
        b.subscribe()
    b.shutdown()  # again: fine


def test_shutdown_immediate_and_context_manager(Bcast):
    with Bcast() as b:
        s = b.subscribe()
        b.publish(1)
        b.shutdown(immediate=True)
        with pytest.raises(ringq.ShutDown):
            s.get_nowait()
    assert b.is_shutdown


def test_shutdown_releases_a_blocked_publisher(Bcast):
    b = Bcast(maxsize=1)
    s = b.subscribe()
    b.publish(1)
    call = assert_blocks(b.publish, 2, timeout=BLOCK_TIMEOUT)
    b.shutdown()
    with pytest.raises(ringq.ShutDown):
        call.value()
    assert list(s) == [1]


def test_blocked_subscriber_ends_at_shutdown(Bcast):
    b = Bcast()
    s = b.subscribe()
    call = assert_blocks(list, s)
    b.publish("last")
    b.shutdown()
    assert call.value() == ["last"]


def test_validation(Bcast):
    with pytest.raises(ValueError, match="overflow must be one of"):
        Bcast(overflow="latest")
    with pytest.raises(TypeError):
        Bcast(maxsize="3")
    b = Bcast(5, "drop_oldest")
    assert b.maxsize == 5 and b.overflow == "drop_oldest"
    assert repr(b) == "<ringq.Broadcast maxsize=5 overflow='drop_oldest' subscribers=0>"


@pytest.mark.parametrize("overflow", ["block", "drop_oldest", "drop_newest"])
def test_threads_every_subscriber_gets_every_item(Bcast, overflow):
    publishers, per_publisher, subscribers = 3, 1500, 4
    b = Bcast(maxsize=16, overflow=overflow)
    subs = [b.subscribe() for _ in range(subscribers)]
    got = [[] for _ in range(subscribers)]

    def consume(k):
        for item in subs[k]:
            got[k].append(item)

    def publish(p):
        for i in range(per_publisher):
            b.publish((p, i), timeout=BLOCK_TIMEOUT)

    cons = [threading.Thread(target=consume, args=(k,)) for k in range(subscribers)]
    pubs = [threading.Thread(target=publish, args=(p,)) for p in range(publishers)]
    for t in cons + pubs:
        t.start()
    join_all(pubs)
    b.shutdown()
    join_all(cons)
    total = publishers * per_publisher
    for k, sink in enumerate(got):
        assert len(sink) == len(set(sink)), "an item arrived twice"
        assert len(sink) + subs[k].dropped == total, (len(sink), subs[k].dropped)
        for p in range(publishers):  # per publisher, in order
            mine = [i for q, i in sink if q == p]
            assert mine == sorted(mine)
    if overflow == "block":
        assert all(len(sink) == total for sink in got)
        # One publish lock: every subscriber saw the same order.
        assert all(sink == got[0] for sink in got)


# -- Router ----------------------------------------------------------------------------------


def test_router_routes_by_key(Queue):
    a, b = Queue(), Queue()
    r = Router(lambda m: m[0], {"a": a, "b": b})
    for m in ["a1", "b1", "a2", "b2", "a3"]:
        r.put(m)
    assert a.get_many(10) == ["a1", "a2", "a3"]
    assert b.get_many(10) == ["b1", "b2"]
    assert r.route("b9") is b
    assert dict(r.routes) == {"a": a, "b": b}


def test_router_default_and_unroutable(Queue):
    a, rest = Queue(), Queue()
    r = Router(len, {1: a}, default=rest)
    r.put("x")
    r.put("xyz")
    assert a.get_nowait() == "x" and rest.get_nowait() == "xyz"
    strict = Router(len, {1: a})
    with pytest.raises(UnroutableError) as info:
        strict.put("xyz")
    err = info.value
    assert isinstance(err, KeyError)
    assert err.key == 3 and err.item == "xyz"
    assert str(err) == "no route for key 3 (and no default route)"
    assert a.qsize() == 0


def test_router_put_many_routes_everything_first(Queue):
    a, b = Queue(), Queue()
    r = Router(lambda x: x % 2, {0: a, 1: b})
    r.put_many(range(7))
    assert a.get_many(10) == [0, 2, 4, 6] and b.get_many(10) == [1, 3, 5]
    strict = Router(lambda x: x, {1: a})
    with pytest.raises(UnroutableError):
        strict.put_many([1, 1, 2])
    assert a.qsize() == 0  # nothing put: the unroutable item was found first


def test_router_passes_block_and_timeout(Queue):
    full = Queue(1)
    full.put(0)
    r = Router(lambda x: "k", {"k": full})
    with pytest.raises(ringq.Full):
        r.put(1, timeout=0.01)
    with pytest.raises(ringq.Full):
        r.put(1, block=False)
    with pytest.raises(ringq.Full):
        r.put_nowait(1)
    call = assert_blocks(r.put, 2)
    assert full.get() == 0
    call.value()
    assert full.get() == 2


def test_router_to_priority_queue_and_stdlib_queue(qmod):
    pq = qmod.PriorityQueue(levels=3)
    plain = queue.Queue()
    r = Router(type, {int: pq, str: plain})
    r.put(5)
    r.put("s")
    r.put_many([1, "t"])
    assert pq.get_many(5) == [5, 1]
    assert [plain.get_nowait(), plain.get_nowait()] == ["s", "t"]


def test_router_shutdown_closes_each_target_once(Queue):
    a, b = Queue(), Queue()
    calls = []

    class Sink:
        def put(self, item):
            calls.append(("put", item))

        def shutdown(self, immediate=False):
            calls.append(("shutdown", immediate))

    sink = Sink()
    r = Router(str, {"1": a, "2": a, "3": sink}, default=b)
    a.put("left")
    r.put(3)
    r.shutdown()
    assert a.is_shutdown and b.is_shutdown
    assert calls == [("put", 3), ("shutdown", False)]
    assert list(a) == ["left"]  # graceful: queued items drain
    with pytest.raises(ringq.ShutDown):
        r.put(1)
    with pytest.raises(ringq.ShutDown):
        r.put_nowait(1)
    with pytest.raises(ringq.ShutDown):
        r.put_many([1])
    assert r.is_shutdown


def test_router_shutdown_immediate_and_context_manager(Queue):
    a = Queue()
    with Router(str, {"1": a}) as r:
        r.put(1)
        r.shutdown(immediate=True)
    assert a.qsize() == 0 and a.is_shutdown


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="queue.Queue has shutdown() on 3.13+")
def test_router_leaves_targets_without_shutdown_open():
    plain = queue.Queue()
    r = Router(str, {"1": plain})
    r.shutdown()
    plain.put(1)  # still open


def test_router_validation(Queue):
    with pytest.raises(TypeError, match="key must be callable"):
        Router("type", {})
    with pytest.raises(TypeError, match="has no put"):
        Router(str, {"a": [1, 2]})
    with pytest.raises(TypeError, match="has no put"):
        Router(str, {}, default=object())


def test_router_under_threads_exactly_once(Queue):
    targets = {k: Queue(8) for k in range(3)}
    r = Router(lambda x: x % 3, targets)
    got = {k: [] for k in targets}

    def consume(k):
        for item in targets[k]:
            got[k].append(item)

    def produce(p):
        for i in range(p, 3000, 3):
            r.put(i, timeout=BLOCK_TIMEOUT)

    cons = [threading.Thread(target=consume, args=(k,)) for k in targets]
    prods = [threading.Thread(target=produce, args=(p,)) for p in range(3)]
    for t in cons + prods:
        t.start()
    join_all(prods)
    r.shutdown()
    join_all(cons)
    for k, items in got.items():
        assert sorted(items) == list(range(k, 3000, 3))
    gc.collect()


# -- re-entrancy through __del__ and the GC (issue 17, item 6) ------------------------------
# Each runs in a child interpreter with a time limit: before the fix they deadlocked, and a
# deadlocked test must fail, not hang the run.

BCAST_PRELUDE = """
import gc, itertools
import ringq, ringq.broadcast
ringq.broadcast.Queue = Queue   # the implementation under test
from ringq import Broadcast
"""


def test_drop_oldest_evicted_item_whose_del_publishes(impl):
    # The evicted item's last reference was dropped while the publish lock was held: its
    # __del__, publishing, waited for that lock forever (every time).
    out = check_child(impl, BCAST_PRELUDE + """
b = Broadcast(maxsize=2, overflow="drop_oldest")
subs = [b.subscribe(), b.subscribe()]

class Loud:
    def __del__(self):
        b.publish("from __del__")

b.publish(Loud())
b.publish("x")
b.publish("y")           # evicts Loud everywhere; its __del__ publishes, evicting "x"
got = [s.get_many(10) for s in subs]
assert got == [["y", "from __del__"]] * 2, got
assert [s.dropped for s in subs] == [2, 2], [s.dropped for s in subs]
print("ok")
""", timeout=LONG * 3)
    assert out.split() == ["ok"]


# The GC runs when an allocation takes the count of new objects past the threshold. With
# the GC disabled while the garbage is made, then the threshold set to the count plus 1, 2,
# 3, ..., the collection lands at each allocation inside the call in turn.
GC_STEPS = 60


@cpython_only
@pytest.mark.parametrize("overflow", ["block", "drop_oldest", "drop_newest"])
def test_gc_inside_publish_runs_a_del_that_publishes(impl, overflow):
    # CPython's test_reentrancy (bpo-14976) on a Broadcast: a __del__ that the GC runs
    # inside publish() publishes too. The publish lock was held while the GC ran it, and
    # the __del__ waited for that lock: a deadlock where the collection landed inside.
    out = check_child(impl, BCAST_PRELUDE + f"""
b = Broadcast(maxsize=10**6, overflow={overflow!r})
subs = [b.subscribe(), b.subscribe()]
gen = itertools.count()

class Circular:
    def __init__(self):
        self.circular = self

    def __del__(self):
        b.publish(next(gen))

for step in range(1, {GC_STEPS}):
    gc.collect()
    gc.disable()
    o = Circular()
    del o                                   # a cycle: only the GC frees it
    gc.set_threshold(gc.get_count()[0] + step)
    gc.enable()
    b.publish(next(gen))                    # the collection lands in here, at each step in turn
gc.set_threshold(700)
gc.collect()
got = [s.get_many(10**6) for s in subs]
assert got[0] == got[1], ("the subscribers saw different orders", got)
assert got[0] == list(range(len(got[0]))), ("lost, doubled or out of order", got[0])
assert len(got[0]) == 2 * ({GC_STEPS} - 1), len(got[0])
print("ok")
""", timeout=LONG * 3)
    assert out.split() == ["ok"]


@cpython_only
@pytest.mark.parametrize("call", ["unsubscribe", "subscribe"])
def test_subscription_in_a_cycle_collected_inside_the_members_lock(impl, call):
    # A Subscription caught in a reference cycle, finalized by the GC while unsubscribe()
    # (or subscribe()) of another one held the members lock: its finalizer (an
    # unsubscribe) waited for that lock forever.
    out = check_child(impl, BCAST_PRELUDE + f"""
b = Broadcast(maxsize=4)
keep = [b.subscribe() for _ in range(3)]
for step in range(1, {GC_STEPS}):
    victim = b.subscribe()
    gc.collect()
    gc.disable()
    cycle = [b.subscribe()]
    cycle.append(cycle)                     # that subscription is only reachable from a cycle
    del cycle
    gc.set_threshold(gc.get_count()[0] + step)
    gc.enable()
    if {call!r} == "unsubscribe":
        victim.unsubscribe()                # the collection lands in here, at each step in turn
    else:
        keep.append(b.subscribe())          # or in here
        gc.collect()
        keep.pop(0).unsubscribe()
        victim.unsubscribe()
gc.set_threshold(700)
gc.collect()
assert b.subscribers == len(keep) == 3, (b.subscribers, len(keep))
b.publish("after")
assert [s.get_nowait() for s in keep] == ["after"] * 3
print("ok")
""", timeout=LONG * 3)
    assert out.split() == ["ok"]


# -- cancel= on publish and Router.put (issue 17, item 24) -----------------------------------
@pytest.mark.parametrize("overflow", ["block", "drop_oldest", "drop_newest"])
def test_publish_with_a_fired_token_publishes_nothing(Bcast, qmod, overflow):
    b = Bcast(maxsize=2, overflow=overflow)
    subs = [b.subscribe(), b.subscribe()]
    fired = qmod.CancelToken()
    fired.cancel()
    for publish in (b.publish, b.put):
        with pytest.raises(ringq.Cancelled, match="cancel token was cancelled"):
            publish("x", cancel=fired)  # every subscriber has room: still nothing
    with pytest.raises(ringq.Cancelled):
        b.publish("x", timeout=1.0, cancel=fired)
    with pytest.raises(ringq.Cancelled):
        b.publish("x", block=False, cancel=fired)
    assert [s.qsize() for s in subs] == [0, 0] and [s.dropped for s in subs] == [0, 0]
    live = qmod.CancelToken()
    b.publish("y", cancel=live)  # a token that has not fired changes nothing
    assert [s.get_nowait() for s in subs] == ["y", "y"]
    with pytest.raises(TypeError, match="CancelToken"):
        b.publish("z", cancel=object())
    assert [s.qsize() for s in subs] == [0, 0]


def test_publish_cancelled_while_waiting_for_room(Bcast, qmod):
    # Subscription order: `early` has room, `slow` is full, `late` has room.
    b = Bcast(maxsize=1)
    early, slow, late = b.subscribe(), b.subscribe(), b.subscribe()
    b.publish(0)
    early.get(), late.get()
    token = qmod.CancelToken()
    call = assert_blocks(b.publish, 1, cancel=token)
    token.cancel()
    with pytest.raises(ringq.Cancelled):
        call.value()
    # As with a timeout: the subscribers that had room have the item, the full one
    # missed it (counted), and nobody is left half-done.
    assert early.get_nowait() == 1 and late.get_nowait() == 1
    assert slow.get_many(5) == [0]
    assert (early.dropped, slow.dropped, late.dropped) == (0, 1, 0)
    b.publish(2, timeout=LONG)  # the publish turn was released
    assert [s.get_nowait() for s in (early, slow, late)] == [2, 2, 2]


def test_publish_cancelled_while_waiting_for_its_turn_publishes_nothing(Bcast, qmod):
    # Another publisher holds the turn, blocked on a full subscriber: a token ends the
    # wait for the turn, and this publish gave its item to nobody.
    b = Bcast(maxsize=1)
    fast, slow = b.subscribe(), b.subscribe()
    b.publish(0)
    fast.get()
    first = assert_blocks(b.publish, 1, timeout=BLOCK_TIMEOUT)
    token = qmod.CancelToken()
    second = assert_blocks(b.publish, 2, cancel=token)
    token.cancel()
    with pytest.raises(ringq.Cancelled):
        second.value()
    assert slow.get() == 0  # room: the first publish completes
    first.value()
    assert fast.get_many(5) == [1] and slow.get_many(5) == [1]
    assert fast.dropped == slow.dropped == 0


def test_router_put_with_a_fired_token_puts_nothing(Queue, qmod):
    target = Queue(1)
    r = Router(lambda x: "k", {"k": target})
    fired = qmod.CancelToken()
    fired.cancel()
    with pytest.raises(ringq.Cancelled):
        r.put("x", cancel=fired)  # the target has room: still nothing
    with pytest.raises(ringq.Cancelled):
        r.put("x", timeout=1.0, cancel=fired)
    with pytest.raises(ringq.Cancelled):
        r.put_many(["x", "y"], cancel=fired)
    assert target.qsize() == 0
    r.put("x", cancel=qmod.CancelToken())
    assert target.get_nowait() == "x"
    with pytest.raises(TypeError, match="CancelToken"):
        r.put("x", cancel=object())
    assert target.qsize() == 0


def test_router_put_cancelled_while_the_target_is_full(Queue, qmod):
    full = Queue(2)
    full.put_many([0, 0])
    r = Router(lambda x: "k", {"k": full})
    token = qmod.CancelToken()
    call = assert_blocks(r.put, 1, cancel=token)
    token.cancel()
    with pytest.raises(ringq.Cancelled):
        call.value()
    assert full.get() == 0 and full.qsize() == 1  # nothing put
    with pytest.raises(ringq.Cancelled, match="deadline") as info:
        r.put_many([1, 2], cancel=qmod.CancelToken(timeout=0.2))
    # As Queue.put_many: what went in before the wait stays, in order.
    assert full.get_many(5) == [0, 1] and info.value.put_count == 1


def test_router_put_to_a_broadcast_passes_the_token(Bcast, qmod):
    b = Bcast(maxsize=1)
    s = b.subscribe()
    b.publish(0)
    r = Router(lambda x: "all", {"all": b})
    token = qmod.CancelToken(timeout=0.1)
    with pytest.raises(ringq.Cancelled, match="deadline"):
        r.put(1, cancel=token)
    assert s.get_many(5) == [0] and s.dropped == 1


# -- asyncio: apublish, aget, async for, Router.aput (issue 20, section 2) ------------------
import asyncio  # noqa: E402

try:
    import uvloop
except ImportError:  # not on Windows or PyPy
    uvloop = None


@pytest.fixture(params=["asyncio", "uvloop"])
def arun(request):
    if request.param == "uvloop" and uvloop is None:
        pytest.skip("uvloop is not installed")
    new_loop = uvloop.new_event_loop if request.param == "uvloop" else asyncio.new_event_loop

    def run(coro, timeout=LONG * 3):
        loop = new_loop()
        try:
            return loop.run_until_complete(asyncio.wait_for(coro, timeout))
        finally:
            loop.close()

    return run


async def _still_pending(task, ticks=10):
    """Let the loop run `ticks` rounds of 5 ms; True if `task` is still waiting (the loop ran)."""
    for _ in range(ticks):
        await asyncio.sleep(0.005)
    return not task.done()


@pytest.mark.parametrize("overflow", ["block", "drop_oldest", "drop_newest"])
def test_apublish_aget_and_async_for(Bcast, arun, overflow):
    async def main():
        b = Bcast(maxsize=10, overflow=overflow)
        a, c = b.subscribe(), b.subscribe()
        await b.apublish(1)
        await b.aput(2)
        b.publish(3)
        assert await a.aget() == 1
        assert await a.aget_many(10, timeout=1.0) == [2, 3]
        b.shutdown()
        assert [x async for x in c] == [1, 2, 3]  # ends at shutdown, once drained
        with pytest.raises(ringq.ShutDown):
            await b.apublish(4)

    arun(main())


def test_apublish_waits_for_room_on_the_loop_only_under_block(Bcast, arun):
    async def main():
        b = Bcast(maxsize=1)
        fast, slow = b.subscribe(), b.subscribe()
        await b.apublish(0)
        assert await fast.aget() == 0
        task = asyncio.ensure_future(b.apublish(1))
        assert await _still_pending(task)  # waiting for room in `slow`, and the loop runs
        assert await slow.aget() == 0
        await task
        assert fast.get_nowait() == 1 and slow.get_nowait() == 1
        for overflow in ("drop_oldest", "drop_newest"):
            d = Bcast(maxsize=1, overflow=overflow)
            s = d.subscribe()
            await d.apublish("a")
            await asyncio.wait_for(d.apublish("b", timeout=0), LONG)  # never waits for room
            assert s.dropped == 1

    arun(main())


@pytest.mark.parametrize("how", ["token", "task.cancel", "timeout"])
def test_apublish_cut_short_leaves_what_publish_leaves(Bcast, qmod, arun, how):
    async def main():
        b = Bcast(maxsize=1)
        early, slow, late = b.subscribe(), b.subscribe(), b.subscribe()
        await b.apublish(0)
        early.get(), late.get()
        token = qmod.CancelToken()
        task = asyncio.ensure_future(b.apublish(1, timeout=0.1 if how == "timeout" else None, cancel=token))
        if how != "timeout":
            assert await _still_pending(task)
            (token.cancel if how == "token" else task.cancel)()
        expected = {"token": ringq.Cancelled, "task.cancel": asyncio.CancelledError, "timeout": ringq.Full}
        with pytest.raises(expected[how]):
            await task
        assert early.get_nowait() == 1 and late.get_nowait() == 1
        assert slow.get_many(5) == [0]
        assert (early.dropped, slow.dropped, late.dropped) == (0, 1, 0)
        await b.apublish(2, timeout=LONG)  # the turn was released
        assert [s.get_nowait() for s in (early, slow, late)] == [2, 2, 2]
        fired = qmod.CancelToken()
        fired.cancel()
        with pytest.raises(ringq.Cancelled):
            await b.apublish(3, cancel=fired)  # everyone has room: still nothing
        assert [s.qsize() for s in (early, slow, late)] == [0, 0, 0]

    arun(main())


def test_apublish_waits_for_its_turn_on_the_loop(Bcast, qmod, arun):
    # A thread's publish holds the turn, blocked on a full subscriber: the task waits
    # for the turn without blocking the loop, and a token ends that wait, with nothing published.
    b = Bcast(maxsize=1)
    fast, slow = b.subscribe(), b.subscribe()
    b.publish(0)
    fast.get()
    holder = assert_blocks(b.publish, 1, timeout=BLOCK_TIMEOUT)

    async def main():
        token = qmod.CancelToken()
        task = asyncio.ensure_future(b.apublish(2, cancel=token))
        assert await _still_pending(task)
        token.cancel()
        with pytest.raises(ringq.Cancelled):
            await task

    arun(main())
    assert slow.get() == 0
    holder.value()
    assert fast.get_many(5) == [1] and slow.get_many(5) == [1]


def test_a_sync_publish_in_the_loop_while_a_task_is_in_apublish_does_not_block_the_loop(Bcast, arun):
    async def main():
        b = Bcast(maxsize=2)
        fast, slow = b.subscribe(), b.subscribe()
        await b.apublish(0)
        await b.apublish(0.5)
        fast.get_many(5)
        task = asyncio.ensure_future(b.apublish(1))  # holds the turn, waiting for `slow`
        assert await _still_pending(task)
        b.publish("sync")  # in the loop's thread: handed to the task, returns at once
        assert slow.get() == 0
        await task
        # Published right after the task's item; it never waits for room: `slow`, full
        # again, missed it.
        assert fast.get_many(5) == [1, "sync"] and slow.get_many(5) == [0.5, 1]
        assert (fast.dropped, slow.dropped) == (0, 1)

    arun(main())


def test_router_aput(Queue, qmod, Bcast, arun):
    async def main():
        a, rest = Queue(1), Queue()
        b = Bcast(maxsize=1)
        sub = b.subscribe()
        r = Router(lambda x: x[0], {"a": a, "b": b}, default=rest)
        await r.aput("a1")
        await r.aput("b1")
        await r.aput("z1", timeout=1.0)
        assert a.get_nowait() == "a1" and sub.get_nowait() == "b1" and rest.get_nowait() == "z1"
        a.put("a0")
        task = asyncio.ensure_future(r.aput("a2"))
        assert await _still_pending(task)  # waits for room on the loop
        assert await a.aget() == "a0"
        await task
        assert a.get_nowait() == "a2"
        fired = qmod.CancelToken()
        fired.cancel()
        with pytest.raises(ringq.Cancelled):
            await r.aput("a3", cancel=fired)
        a.put("a0")
        with pytest.raises(ringq.Cancelled, match="deadline"):
            await r.aput("a4", cancel=qmod.CancelToken(timeout=0.05))
        with pytest.raises(ringq.Full):
            await r.aput("a5", timeout=0.05)
        assert a.get_many(5) == ["a0"]
        plain = Router(str, {"1": queue.Queue()})
        with pytest.raises(TypeError, match="no aput"):
            await plain.aput(1)
        with pytest.raises(UnroutableError):
            await Router(str, {}).aput(1)

    arun(main())
