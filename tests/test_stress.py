"""Multi-thread stress: many producers and consumers mixing every kind of call.

Every test is bounded in time: threads are joined with deadlines and a stuck
thread fails the test (see _helpers.join_all). No throughput is asserted.
"""
import random
import sys
import threading
import time
from collections import defaultdict

import pytest

import ringq
from _helpers import LONG, Call, join_all, wait_until

ShutDown, Empty, Full = ringq.ShutDown, ringq.Empty, ringq.Full


@pytest.fixture(autouse=True)
def _fast_thread_switching():
    # Switch threads ~50x more often than by default: more interleavings per second.
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    try:
        yield
    finally:
        sys.setswitchinterval(old)

PUT_MODES = ["put", "put_nowait", "put_timeout", "put_many", "put_many_nowait"]
GET_MODES = ["get", "get_nowait", "get_timeout", "get_many", "get_many_nowait", "get_many_timeout"]
RETRY_SLEEP = 1e-4


def _producer(q, pid, n, maxsize, seed, errors):
    rnd = random.Random(seed)
    seq = 0
    try:
        while seq < n:
            mode = rnd.choice(PUT_MODES)
            if mode == "put":
                q.put((pid, seq))
                seq += 1
            elif mode == "put_nowait":
                while True:
                    try:
                        q.put_nowait((pid, seq))
                        break
                    except Full:
                        time.sleep(RETRY_SLEEP)
                seq += 1
            elif mode == "put_timeout":
                while True:
                    try:
                        q.put((pid, seq), timeout=0.005)
                        break
                    except Full:
                        pass
                seq += 1
            elif mode == "put_many":
                k = rnd.randint(1, 9)
                batch = [(pid, s) for s in range(seq, min(seq + k, n))]
                q.put_many(batch)
                seq += len(batch)
            else:  # put_many_nowait: all or nothing, so a retry is safe
                k = rnd.randint(1, maxsize if maxsize > 0 else 9)
                batch = [(pid, s) for s in range(seq, min(seq + k, n))]
                while True:
                    try:
                        q.put_many(batch, block=False)
                        break
                    except Full:
                        time.sleep(RETRY_SLEEP)
                seq += len(batch)
    except BaseException as e:
        errors.append(("producer", pid, repr(e)))
        raise


def _consumer(q, cid, out, seed, errors):
    rnd = random.Random(seed)
    try:
        while True:
            mode = rnd.choice(GET_MODES)
            try:
                if mode == "get":
                    batch = [q.get()]
                elif mode == "get_nowait":
                    try:
                        batch = [q.get_nowait()]
                    except Empty:
                        time.sleep(RETRY_SLEEP)
                        continue
                elif mode == "get_timeout":
                    try:
                        batch = [q.get(timeout=0.005)]
                    except Empty:
                        continue
                elif mode == "get_many":
                    batch = q.get_many(rnd.randint(1, 9))
                elif mode == "get_many_nowait":
                    try:
                        batch = q.get_many(rnd.randint(1, 9), block=False)
                    except Empty:
                        time.sleep(RETRY_SLEEP)
                        continue
                else:
                    try:
                        batch = q.get_many(rnd.randint(1, 9), timeout=0.005)
                    except Empty:
                        continue
            except ShutDown:
                return
            assert 1 <= len(batch) <= 9
            out.extend(batch)
            for _ in batch:
                q.task_done()
    except BaseException as e:
        errors.append(("consumer", cid, repr(e)))
        raise


def _check_exactly_once(received, n_prod, n):
    flat = [it for out in received for it in out]
    counts = defaultdict(int)
    for it in flat:
        counts[it] += 1
    dups = [it for it, c in counts.items() if c > 1]
    missing = [(p, s) for p in range(n_prod) for s in range(n) if (p, s) not in counts]
    assert not dups, f"{len(dups)} items received twice, e.g. {dups[:5]}"
    assert not missing, f"{len(missing)} items lost, e.g. {missing[:5]}"
    assert len(flat) == n_prod * n
    # FIFO: each consumer sees each producer's items in the order they were put
    for cid, out in enumerate(received):
        last = {}
        for p, s in out:
            assert s > last.get(p, -1), f"consumer {cid} got {(p, s)} after {(p, last[p])}"
            last[p] = s


SCENARIOS = [
    # producers, consumers, maxsize
    (1, 1, 1),
    (1, 1, 16),
    (4, 1, 2),
    (4, 4, 2),
    (4, 4, 16),
    (8, 8, 1),
    (8, 8, 16),
    (16, 2, 2),
    (16, 2, 16),
    (2, 16, 1),
]


@pytest.mark.parametrize("n_prod, n_cons, maxsize", SCENARIOS, ids=lambda v: str(v))
def test_producers_consumers(Queue, n_prod, n_cons, maxsize):
    total = 4000
    n = max(1, total // n_prod)
    q = Queue(maxsize)
    errors = []
    received = [[] for _ in range(n_cons)]
    seed = n_prod * 1000 + n_cons * 10 + maxsize
    producers = [
        threading.Thread(target=_producer, args=(q, p, n, maxsize, seed + p, errors), name=f"prod-{p}")
        for p in range(n_prod)
    ]
    consumers = [
        threading.Thread(target=_consumer, args=(q, c, received[c], seed + 100 + c, errors), name=f"cons-{c}")
        for c in range(n_cons)
    ]
    for t in consumers + producers:
        t.start()
    try:
        join_all(producers, 60)
        Call(q.join).value(60)  # every item got and task_done'd
        assert q.qsize() == 0
    finally:
        q.shutdown()
        join_all(consumers, 60)
    assert not errors, errors
    assert q.unfinished_tasks == 0
    _check_exactly_once(received, n_prod, n)
    if n_cons == 1:
        for p in range(n_prod):
            assert [s for (pp, s) in received[0] if pp == p] == list(range(n))


def test_blocked_batches_released_by_shutdown(Queue):
    """Producers stuck in put_many and consumers in get_many all end on shutdown."""
    q = Queue(2)
    errors = []
    ended = []

    def prod():
        try:
            while True:
                q.put_many(list(range(5)))
        except ShutDown:
            ended.append("p")
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def cons():
        try:
            while True:
                q.get_many(3)
                time.sleep(0.001)
        except ShutDown:
            ended.append("c")
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=prod) for _ in range(4)] + [threading.Thread(target=cons) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    q.shutdown()
    join_all(threads, 30)
    assert not errors
    assert sorted(ended) == ["c"] * 2 + ["p"] * 4


# --------------------------------------------------------------------------- races


class Tok:
    """An item that counts how many of its kind are alive."""

    __slots__ = ("pid", "seq", "__weakref__")
    alive = 0
    lock = threading.Lock()

    def __init__(self, pid, seq):
        self.pid, self.seq = pid, seq
        with Tok.lock:
            Tok.alive += 1

    def __del__(self):
        with Tok.lock:
            Tok.alive -= 1


def _immediate_shutdown_round(Queue, maxsize, rnd):
    q = Queue(maxsize)
    errors = []
    put_ok = [[] for _ in range(4)]
    got = [[] for _ in range(4)]
    joined = []

    def prod(pid):
        try:
            for seq in range(3000):
                item = Tok(pid, seq)
                if seq % 3 == 2:
                    q.put_many([item])
                else:
                    q.put(item)
                put_ok[pid].append((pid, seq))
                del item
        except ShutDown:
            pass
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def joiner():
        q.join()
        joined.append(1)

    threads = [threading.Thread(target=prod, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=_race_consumer, args=(q, i, got[i], errors)) for i in range(4)]
    joiners = [threading.Thread(target=joiner) for _ in range(2)]
    for t in threads + joiners:
        t.start()
    time.sleep(rnd.uniform(0.0, 0.03))
    q.shutdown(immediate=True)
    join_all(threads, 30)
    join_all(joiners, 30)
    assert not errors, errors
    assert len(joined) == 2
    assert q.qsize() == 0
    assert q.unfinished_tasks == 0
    all_got = [x for g in got for x in g]
    assert len(all_got) == len(set(all_got)), "an item was received twice"
    assert set(all_got) <= {x for p in put_ok for x in p}, "received an item never put"


@pytest.mark.parametrize("maxsize", [1, 4, 0])
def test_immediate_shutdown_races(Queue, maxsize):
    """shutdown(immediate=True) racing with producers, consumers and join()."""
    for rnd_no in range(6):
        _immediate_shutdown_round(Queue, maxsize, random.Random(rnd_no * 31 + maxsize))
        assert wait_until(lambda: Tok.alive == 0), f"{Tok.alive} items still alive after the queue is gone"


def _race_consumer(q, cid, out, errors):
    try:
        while True:
            batch = q.get_many(3) if cid % 2 else [q.get()]
            for it in batch:
                out.append((it.pid, it.seq))
                q.task_done()
            del batch
    except ShutDown:
        pass
    except BaseException as e:  # noqa: BLE001
        errors.append(e)


def test_concurrent_maxsize_changes(Queue):
    q = Queue(2)
    n_prod, n = 4, 1000
    errors = []
    received = [[] for _ in range(3)]
    stop = threading.Event()
    sizes_set = []

    def changer():
        rnd = random.Random(5)
        while not stop.is_set():
            m = rnd.choice([1, 2, 3, 8, 0, -1])
            q.maxsize = m
            sizes_set.append(m)
            time.sleep(0.0002)
        q.maxsize = 4

    def producer(pid):
        rnd = random.Random(pid)
        try:
            for seq in range(n):
                if seq % 50 == 0:
                    # keep pace with the changer, so that the changes really
                    # happen while items flow
                    deadline = time.monotonic() + LONG
                    while len(sizes_set) < seq // 10 and time.monotonic() < deadline:
                        time.sleep(0.0005)
                mode = rnd.randrange(3)
                if mode == 0:
                    q.put((pid, seq))
                elif mode == 1:
                    while True:
                        try:
                            q.put((pid, seq), timeout=0.002)
                            break
                        except Full:
                            pass
                else:
                    q.put_many([(pid, seq)])
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    producers = [threading.Thread(target=producer, args=(p,)) for p in range(n_prod)]
    consumers = [threading.Thread(target=_consumer, args=(q, c, received[c], 90 + c, errors)) for c in range(3)]
    ch = threading.Thread(target=changer)
    for t in consumers + producers + [ch]:
        t.start()
    try:
        join_all(producers, 60)
    finally:
        stop.set()
        join_all([ch], 30)
        Call(q.join).value(60)
        q.shutdown()
        join_all(consumers, 60)
    assert not errors, errors
    assert len(sizes_set) >= (n - 50) // 10  # the pace the producers kept
    assert q.maxsize == 4
    _check_exactly_once(received, n_prod, n)


def test_task_done_join_race(Queue):
    q = Queue()
    n, workers = 2000, 8
    q.put_many(range(n))
    per = n // workers + 1  # more task_done calls than items, in total
    ok = []
    too_many = []
    joined = []
    go = threading.Event()

    def worker():
        go.wait()
        k = e = 0
        for _ in range(per):
            try:
                q.task_done()
                k += 1
            except ValueError:
                e += 1
        ok.append(k)
        too_many.append(e)

    def joiner():
        q.join()
        joined.append(q.unfinished_tasks)

    joiners = [threading.Thread(target=joiner) for _ in range(4)]
    for t in joiners:
        t.start()
    ts = [threading.Thread(target=worker) for _ in range(workers)]
    for t in ts:
        t.start()
    go.set()
    join_all(ts, 30)
    join_all(joiners, 30)
    assert sum(ok) == n, "task_done succeeded more or fewer times than items were put"
    assert sum(too_many) == per * workers - n
    assert joined == [0, 0, 0, 0]
    assert q.unfinished_tasks == 0


def test_join_while_working(Queue):
    q = Queue(4)
    stop = threading.Event()
    errors = []
    join_returns = []

    def worker(wid):
        try:
            for i in range(500):
                q.put((wid, i))
                q.get()
                q.task_done()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def joiner():
        while not stop.is_set():
            q.join()
            join_returns.append(1)
            time.sleep(0.001)

    ws = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    js = [threading.Thread(target=joiner) for _ in range(3)]
    for t in ws + js:
        t.start()
    join_all(ws, 60)
    stop.set()
    join_all(js, 30)
    assert not errors
    assert len(join_returns) >= 3
    assert q.unfinished_tasks == 0
    assert q.qsize() == 0


# -- PriorityQueue and Broadcast under the same mixed load --------------------------------


class _AtLevel:
    """One producer's view of a PriorityQueue: every put goes to one level."""

    def __init__(self, pq, level):
        self._pq, self._level = pq, level

    def put(self, item, block=True, timeout=None):
        self._pq.put(item, self._level, block=block, timeout=timeout)

    def put_nowait(self, item):
        self._pq.put_nowait(item, self._level)

    def put_many(self, items, block=True, timeout=None):
        self._pq.put_many(items, self._level, block=block, timeout=timeout)


@pytest.mark.parametrize("n_prod, n_cons, maxsize", [(6, 3, 4), (3, 6, 1), (8, 2, 0)], ids=str)
def test_priority_producers_consumers(qmod, n_prod, n_cons, maxsize):
    """Every mode of put and get on a PriorityQueue; producer p puts at level p % 3."""
    n = 3000 // n_prod
    q = qmod.PriorityQueue(levels=3, maxsize=maxsize)
    errors = []
    received = [[] for _ in range(n_cons)]
    seed = 7 + n_prod * 100 + maxsize
    producers = [
        threading.Thread(target=_producer, args=(_AtLevel(q, p % 3), p, n, maxsize, seed + p, errors))
        for p in range(n_prod)
    ]
    consumers = [
        threading.Thread(target=_consumer, args=(q, c, received[c], seed + 50 + c, errors))
        for c in range(n_cons)
    ]
    for t in consumers + producers:
        t.start()
    try:
        join_all(producers, 60)
        Call(q.join).value(60)
        assert q.qsize() == 0
    finally:
        q.shutdown()
        join_all(consumers, 60)
    assert not errors, errors
    _check_exactly_once(received, n_prod, n)  # FIFO per producer holds: one level each


def test_broadcast_with_subscriber_churn(qmod, monkeypatch):
    """Publishers keep going while subscribers come and go; nobody deadlocks or sees a duplicate."""
    import ringq.broadcast

    monkeypatch.setattr(ringq.broadcast, "Queue", qmod.Queue)
    b = ringq.Broadcast(maxsize=8)
    steady = [b.subscribe() for _ in range(2)]
    got = [[] for _ in steady]
    errors = []
    publishers_done = threading.Event()

    def publish(p):
        try:
            for i in range(1500):
                b.publish((p, i), timeout=LONG)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    def read(k):
        for item in steady[k]:
            got[k].append(item)

    def churn(seed):
        rnd = random.Random(seed)
        try:
            while not publishers_done.is_set():
                with b.subscribe() as sub:
                    seen = []
                    for _ in range(rnd.randint(0, 30)):
                        try:
                            seen.append(sub.get(timeout=0.01))
                        except Empty:
                            break
                    assert len(seen) == len(set(seen))
                    for p in range(2):
                        mine = [i for q, i in seen if q == p]
                        assert mine == sorted(mine)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    readers = [threading.Thread(target=read, args=(k,)) for k in range(len(steady))]
    churners = [threading.Thread(target=churn, args=(s,)) for s in range(3)]
    pubs = [threading.Thread(target=publish, args=(p,)) for p in range(2)]
    for t in readers + churners + pubs:
        t.start()
    join_all(pubs, 60)
    publishers_done.set()
    join_all(churners, 60)
    b.shutdown()
    join_all(readers, 60)
    assert not errors, errors
    expected = sorted((p, i) for p in range(2) for i in range(1500))
    for sink in got:
        assert sorted(sink) == expected
        assert sink == got[0]  # one publish lock: one order for every subscriber
