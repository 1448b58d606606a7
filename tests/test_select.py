"""ringq.select(): one item from exactly one of several queues, fair, blocking, cancellable."""
import collections
import os
import threading
import time

import pytest

import _helpers
import ringq
from _helpers import LONG, assert_blocks


@pytest.fixture
def select(qmod):
    return qmod.select


def test_takes_from_the_ready_queue_only(Queue, select):
    a, b, c = Queue(), Queue(), Queue()
    b.put("x")
    c.put_many([1, 2])
    q, item = select(a, b, timeout=0, priority=True)
    assert (q, item) == (b, "x")
    assert (a.qsize(), b.qsize(), c.qsize()) == (0, 0, 2)  # nothing taken from c
    assert b.statistics().gets == 1 and c.statistics().gets == 0


def test_fair_over_many_selections(Queue, select):
    qs = [Queue() for _ in range(4)]
    n = 100_000
    for q in qs:
        q.put_many(range(n // 2))
    counts = collections.Counter()
    for _ in range(n):
        q, _ = select(*qs)
        counts[q] += 1
    for q in qs:
        assert abs(counts[q] / n - 0.25) < 0.015, [counts[x] / n for x in qs]


def test_fair_when_only_some_are_ready(Queue, select):
    # A rotation of the scan start would give the queue after an empty one a double share.
    empty, a, b = Queue(), Queue(), Queue()
    n = 20_000
    a.put_many(range(n))
    b.put_many(range(n))
    counts = collections.Counter()
    for _ in range(n):
        q, _ = select(empty, a, b)
        counts[q] += 1
    assert abs(counts[a] / n - 0.5) < 0.03, (counts[a], counts[b])


def test_priority_prefers_argument_order(Queue, select):
    a, b = Queue(), Queue()
    a.put_many(range(100))
    b.put_many(range(100))
    got = [select(a, b, priority=True)[0] for _ in range(100)]
    assert all(q is a for q in got)
    assert select(a, b, priority=True)[0] is b  # a is empty now


def test_blocks_until_an_item_arrives(Queue, select):
    a, b = Queue(), Queue()
    call = assert_blocks(select, a, b, timeout=_helpers.BLOCK_TIMEOUT)
    assert _helpers.wait_until(lambda: b.statistics().waiting_getters == 1)
    assert a.statistics().waiting_getters == 1  # one link per queue
    b.put("late")
    assert call.value() == (b, "late")
    # The woken select left no link behind in the other queue.
    assert a.statistics().waiting_getters == 0 and b.statistics().waiting_getters == 0
    a.put("for a plain getter")
    assert a.get(timeout=LONG) == "for a plain getter"


def test_timeout_and_arguments(Queue, select):
    a, b = Queue(), Queue()
    with pytest.raises(ringq.Empty):
        select(a, b, timeout=0)
    t0 = time.monotonic()
    with pytest.raises(ringq.Empty):
        select(a, b, timeout=0.1)
    assert time.monotonic() - t0 >= 0.09
    with pytest.raises(ValueError):
        select(a, timeout=-1)
    with pytest.raises(TypeError):
        select()
    with pytest.raises(TypeError, match="ringq.Queue"):
        select(a, [1])
    assert a.statistics().waiting_getters == 0


def test_shut_down_queues_are_skipped_until_all_are(Queue, select):
    a, b = Queue(), Queue()
    a.put("last of a")
    a.shutdown()
    assert select(a, b, timeout=0) == (a, "last of a")  # drained first, like get()
    with pytest.raises(ringq.Empty):
        select(a, b, timeout=0)                            # a is skipped, b is open
    call = assert_blocks(select, a, b, timeout=_helpers.BLOCK_TIMEOUT)
    b.put("from b")
    assert call.value() == (b, "from b")
    call = assert_blocks(select, a, b, timeout=_helpers.BLOCK_TIMEOUT)
    b.shutdown()
    call.wait()
    assert isinstance(call.exc, ringq.ShutDown)
    with pytest.raises(ringq.ShutDown):
        select(a, b)


def test_shutdown_cause_is_chained(Queue, select):
    a, b = Queue(), Queue()
    b.shutdown()
    with a.producer() as p:
        p.close(ValueError("source failed"))
    with pytest.raises(ringq.ShutDown) as info:
        select(a, b)
    assert isinstance(info.value.__cause__, ValueError)


def test_cancel(Queue, select, qmod):
    a, b = Queue(), Queue()
    token = qmod.CancelToken()
    call = assert_blocks(select, a, b, cancel=token)
    token.cancel()
    call.wait()
    assert isinstance(call.exc, ringq.Cancelled)
    assert a.statistics().waiting_getters == 0 and b.statistics().waiting_getters == 0
    a.put(1)
    with pytest.raises(ringq.Cancelled):
        select(a, b, cancel=token)  # already fired: nothing taken
    assert a.qsize() == 1
    t0 = time.monotonic()
    with pytest.raises(ringq.Cancelled, match="deadline"):
        select(b, cancel=qmod.CancelToken(timeout=0.1))
    assert time.monotonic() - t0 < LONG


def test_exactly_once_with_many_selectors_getters_and_producers(Queue, select):
    qs = [Queue(maxsize=8) for _ in range(4)]
    per_producer = 5000
    received = []
    lock = threading.Lock()

    def produce(q, base):
        for i in range(per_producer):
            q.put(base + i)

    def selector():
        mine = []
        while True:
            try:
                _, item = select(*qs, timeout=_helpers.BLOCK_TIMEOUT)
            except ringq.ShutDown:
                break
            mine.append(item)
        with lock:
            received.extend(mine)

    def plain_getter(q):
        mine = list(q)  # competes with the selectors for q's wake-ups
        with lock:
            received.extend(mine)

    producers = [threading.Thread(target=produce, args=(q, k * per_producer)) for k, q in enumerate(qs)]
    consumers = [threading.Thread(target=selector) for _ in range(4)]
    consumers += [threading.Thread(target=plain_getter, args=(qs[i],)) for i in (0, 2)]
    for t in consumers + producers:
        t.start()
    _helpers.join_all(producers)
    for q in qs:
        q.shutdown()
    _helpers.join_all(consumers)
    assert sorted(received) == list(range(4 * per_producer))
    for q in qs:
        s = q.statistics()
        assert s.puts == s.gets == per_producer and s.waiting_getters == 0


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals only")
def test_ctrl_c_interrupts_select(impl):
    code = r'''
import signal
signal.signal(signal.SIGINT, signal.default_int_handler)
a, b = Queue(), Queue()
def interrupt():
    # Only once select() waits on both queues: a SIGINT before the try below would
    # end the child with an uncaught KeyboardInterrupt.
    end = time.monotonic() + 30
    while (a.statistics().waiting_getters, b.statistics().waiting_getters) != (1, 1):
        assert time.monotonic() < end, "select() never waited"
        time.sleep(0.001)
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=interrupt, daemon=True).start()
t0 = time.monotonic()
try:
    qmod.select(a, b)
except KeyboardInterrupt:
    waited = time.monotonic() - t0
    assert waited < 5, waited
    assert a.statistics().waiting_getters == 0 and b.statistics().waiting_getters == 0
    b.put(1)
    assert qmod.select(a, b, timeout=1) == (b, 1)
    print("OK")
'''
    assert _helpers.check_child(impl, code).strip() == "OK"


def test_a_claimed_link_does_not_use_up_a_wake_up(Queue, select):
    """A waker that meets a select already woken by another queue wakes the next waiter instead.

    A's waiters are [select's link, plain getter]. B's put wakes the select; A's put,
    right after, must skip the claimed link and wake the getter. Were the skipped link
    counted as a wake-up, A's item could sit there while its getter sleeps.
    """
    for _ in range(10):
        _claimed_link_round(Queue, select)


def _claimed_link_round(Queue, select):
    a, b = Queue(), Queue()
    sel = _helpers.Call(select, a, b, timeout=_helpers.BLOCK_TIMEOUT)
    assert _helpers.wait_until(lambda: a.statistics().waiting_getters == 1)
    getter = _helpers.Call(a.get, timeout=_helpers.BLOCK_TIMEOUT)
    assert _helpers.wait_until(lambda: a.statistics().waiting_getters == 2)
    b.put("b")
    a.put("a")
    sel.value()
    # Either the select took a's item, or the getter must get it: never left behind.
    assert _helpers.wait_until(lambda: a.qsize() == 0), "an item waits while a getter sleeps"
    a.put("release")
    getter.value()


def test_select_over_a_priority_queue(qmod, select):
    pq, plain = qmod.PriorityQueue(levels=3), qmod.Queue()
    pq.put("low", priority=2)
    pq.put("urgent", priority=0)
    assert select(pq, plain, timeout=0) == (pq, "urgent")  # the most urgent level first
    assert select(pq, plain, timeout=0) == (pq, "low")
    call = assert_blocks(select, pq, plain, timeout=_helpers.BLOCK_TIMEOUT)
    pq.put("late", priority=1)
    assert call.value() == (pq, "late")
    s = pq.statistics()
    assert (s.puts, s.gets, s.size, s.high_water) == (3, 3, 0, 2)
