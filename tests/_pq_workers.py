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


def die_locked(q, how):
    q._debug_die_locked((b"half", os.urandom(40000)), how)


def storm_consumer(q, role, seed, path):
    """Take items and log each one's (seed, index) to *path*; log TORN on a bad checksum."""
    import random
    import zlib

    rnd = random.Random(seed)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    while True:
        try:
            got = [q.get(timeout=5)] if role == "get" else q.get_many(rnd.randint(1, 20), timeout=5)
        except ringq.Empty:
            continue
        except ringq.ShutDown:
            return
        lines = []
        for item in got:
            pseed, i, payload, crc = item
            lines.append(f"{pseed} {i}\n" if zlib.crc32(payload) == crc else f"TORN {pseed} {i}\n")
        os.write(fd, "".join(lines).encode())


def storm_producer(q, role, seed):
    import random
    import zlib

    rnd = random.Random(seed)
    i = 0
    while True:
        k = 1 if role == "put" else rnd.randint(1, 20)
        batch = []
        for _ in range(k):
            payload = os.urandom(rnd.choice((8, 300, 5000, 70000, 200000)))
            batch.append((seed, i, payload, zlib.crc32(payload)))
            i += 1
        try:
            if role == "put":
                q.put(batch[0], timeout=5)
            else:
                q.put_many(batch, timeout=5)
        except ringq.Full:
            pass
        except ringq.ShutDown:
            return


def storm_main(module, seconds, outdir, seed):
    """A kill storm: SIGKILL random producers and consumers for *seconds*; print a JSON report."""
    import importlib
    import json
    import multiprocessing as mp
    import random
    import zlib

    ProcessQueue = importlib.import_module(module).ProcessQueue
    rnd = random.Random(seed)
    ctx = mp.get_context("fork")
    q = ProcessQueue(maxsize=100, capacity=1 << 20)
    print(json.dumps({"name": q.name}), flush=True)
    roles = ["put", "put", "put_many", "get", "get_many"]
    procs = {}
    counter = [0]

    def start(role):
        counter[0] += 1
        s = seed * 1000 + counter[0]
        if role.startswith("put"):
            p = ctx.Process(target=storm_producer, args=(q, role, s))
        else:
            p = ctx.Process(target=storm_consumer, args=(q, role, s, os.path.join(outdir, f"c{s}.log")))
        p.start()
        procs[p] = role

    for role in roles:
        start(role)
    kills = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(rnd.uniform(0.005, 0.05))
        victim = rnd.choice(list(procs))
        os.kill(victim.pid, signal.SIGKILL)
        victim.join()
        kills += 1
        start(procs.pop(victim))
    # Stop: kill the producers, let the consumers drain and leave.
    for p, role in list(procs.items()):
        if role.startswith("put"):
            os.kill(p.pid, signal.SIGKILL)
            p.join()
    # The queue still works: a put and a get of our own, through any leftovers.
    q.put(("check", -1, b"ok", zlib.crc32(b"ok")), timeout=10)
    q.shutdown()
    for p, role in list(procs.items()):
        if role in ("get", "get_many"):
            p.join(30)
    alive = [p.pid for p in procs if p.is_alive()]
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
    seen = {}
    torn = 0
    for name in os.listdir(outdir):
        with open(os.path.join(outdir, name)) as f:
            for line in f:
                if line.startswith("TORN"):
                    torn += 1
                    continue
                seen[line] = seen.get(line, 0) + 1
    dups = sum(1 for v in seen.values() if v > 1)
    stats = q.statistics()
    report = {
        "kills": kills, "taken": len(seen), "dups": dups, "torn": torn, "alive": alive,
        "check_seen": seen.get("check -1\n", 0), "recoveries": stats.recoveries,
        "size_after": stats.size, "used_after": stats.used_bytes,
    }
    q.close()
    print(json.dumps(report), flush=True)


def hold(q, seconds):
    """Keep a handle open (the queue is an argument, so this process attached it), then leave."""
    time.sleep(seconds)


def count_gets(q, out):
    """Take until ShutDown; report how many items this process got."""
    n = 0
    try:
        while True:
            q.get(timeout=60)
            n += 1
    except ringq.ShutDown:
        pass
    out.put(n, timeout=60)


def twin_die_locked(q, ready, how):
    """Hold the twin's lock (how 1: after scribbling a record into the ring's free
    space, unpublished, as a put killed mid-copy would; how 2: its semaphore only, with
    no owner written), report, and wait to be killed."""
    if how == 2:  # killed after taking the semaphore, before writing its pid
        q._lock.sem.acquire()
    else:
        q._lock.acquire()
    if how == 1:
        h = q._h
        free = h[2] + h[4]  # HEAD + USED: where the next record goes
        q._data[free:free + 64] = os.urandom(64)
    ready.set()
    time.sleep(60)
