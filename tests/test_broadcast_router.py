"""ringq.Broadcast and ringq.Router, on both implementations of the queue under them."""
import gc
import queue
import sys
import threading

import pytest

import ringq
import ringq.broadcast
from _helpers import BLOCK_TIMEOUT, LONG, assert_blocks, join_all, wait_until
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
