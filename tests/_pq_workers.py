"""Child-process targets for tests/test_process_queue.py (importable by spawn/forkserver children)."""
import os
import signal
import time

import ringq


def produce(q, start, n, batch):
    if batch:
        items = list(range(start, start + n))
        for i in range(0, n, batch):
            q.put_many(items[i:i + batch], timeout=60)
    else:
        for i in range(start, start + n):
            q.put(i, timeout=60)


def produce_with(producer, start, n):
    with producer:
        for i in range(start, start + n):
            producer.queue.put(i, timeout=60)


def consume(q, out, batch):
    """Take until ShutDown; send what was taken to *out* (another queue) in one put."""
    got = []
    try:
        while True:
            if batch:
                got.extend(q.get_many(batch, timeout=60))
            else:
                got.append(q.get(timeout=60))
    except ringq.ShutDown:
        pass
    out.put(got, timeout=60)


def get_one_report(q, out):
    t0 = time.monotonic()
    try:
        item = q.get(timeout=60)
        out.put(("item", item, time.monotonic() - t0))
    except ringq.ShutDown:
        out.put(("shutdown", None, time.monotonic() - t0))
    except ringq.Empty:
        out.put(("empty", None, time.monotonic() - t0))


def put_one_report(q, item, out):
    try:
        q.put(item, timeout=60)
        out.put(("put", None))
    except ringq.ShutDown:
        out.put(("shutdown", None))
    except ringq.Full:
        out.put(("full", None))


_pool_queue = None


def pool_init(q):
    global _pool_queue
    _pool_queue = q


def pool_task(i):
    _pool_queue.put(i * i, timeout=60)
    return os.getpid()


def storm_worker(q, role, seed, n):
    """Put or get forever-ish (until killed or *n* operations): the kill storm's victims."""
    import random

    rnd = random.Random(seed)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    i = 0
    while i < n:
        try:
            if role == "put":
                q.put((seed, i, os.urandom(rnd.choice((8, 300, 5000, 70000)))), timeout=5)
                i += 1
            elif role == "put_many":
                k = rnd.randint(1, 20)
                q.put_many([(seed, i + j, os.urandom(rnd.choice((8, 300, 5000)))) for j in range(k)], timeout=5)
                i += k
            elif role == "get":
                q.get(timeout=5)
                i += 1
            else:
                i += len(q.get_many(rnd.randint(1, 20), timeout=5))
        except (ringq.Full, ringq.Empty):
            pass
        except ringq.ShutDown:
            return
