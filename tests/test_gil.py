"""A blocked call releases the GIL for its whole wait, and memory stays flat.

The GIL tests run in a child interpreter: if a blocked call kept the GIL, the
child would hang, and the deadline turns that into a failure.
"""
import gc
import sys

import pytest

import _helpers

GIL_CHILD = r"""
mode = sys.argv[1]
WINDOW = 0.3

if mode == "get":
    q = Queue(1)
    op, release = q.get, lambda: q.put("x")
elif mode == "get_many":
    q = Queue(1)
    op, release = (lambda: q.get_many(3)), lambda: q.put("x")
elif mode == "put":
    q = Queue(1)
    q.put("a")
    op, release = (lambda: q.put("b")), q.get
elif mode == "put_many":
    q = Queue(1)
    op, release = (lambda: q.put_many(["a", "b"])), q.get
elif mode == "join":
    q = Queue()
    q.put("a")
    q.get()
    op, release = q.join, q.task_done
elif mode == "get_timeout":
    q = Queue(1)
    op, release = (lambda: q.get(timeout=60)), lambda: q.put("x")

started = threading.Event()
returned = threading.Event()

def blocked():
    started.set()
    op()
    returned.set()

def count_for(seconds, out):
    t_cpu0 = time.thread_time()
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        n += 1
    out.append(n)
    out.append(time.thread_time() - t_cpu0)

where = sys.argv[2]
if where == "thread":
    a = threading.Thread(target=blocked, daemon=True)
    a.start()
    assert started.wait(10)
    time.sleep(0.1)
    assert not returned.is_set(), "did not block"
    out = []
    cpu0 = time.process_time()
    c = threading.Thread(target=count_for, args=(WINDOW, out))
    c.start()
    c.join(20)
    cpu = time.process_time() - cpu0
    assert not c.is_alive(), "the counter thread could not run: GIL held while blocked?"
    assert not returned.is_set(), "the blocked call returned without being released"
    release()
    assert returned.wait(10), "not woken"
    n, counter_cpu = out
else:
    # the main thread blocks; a thread counts, then releases it
    out = []
    def counter_then_release():
        time.sleep(0.1)
        count_for(WINDOW, out)
        release()
    c = threading.Thread(target=counter_then_release)
    cpu0 = time.process_time()
    t0 = time.monotonic()
    c.start()
    blocked()
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    c.join(10)
    assert elapsed >= WINDOW, f"returned after {elapsed:.3f}s, before the release"
    n, counter_cpu = out

# Progress: a pure-Python loop runs millions of times in WINDOW seconds; with the
# GIL held elsewhere it could not run at all.
assert n > 20000, f"counter advanced only {n} times in {WINDOW}s"
# The blocked call sleeps: it burns (almost) no CPU while waiting.
other = cpu - counter_cpu
assert other < 0.5 * WINDOW, f"threads other than the counter used {other:.3f}s CPU in {WINDOW}s (busy wait?)"
print("OK", n, round(other, 4))
"""


@pytest.mark.parametrize(
    "mode, where",
    [
        ("get", "thread"),
        ("get_timeout", "thread"),
        ("get_many", "thread"),
        ("put_many", "thread"),
        ("join", "thread"),
        ("get", "main"),
        ("put", "main"),
    ],
)
def test_blocked_call_releases_the_gil(impl, mode, where):
    out = _helpers.check_child(impl, GIL_CHILD, timeout=60, args=(mode, where))
    assert out.startswith("OK")


def _rss_kb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _under_asan():
    # AddressSanitizer keeps freed memory in quarantine: RSS grows by design.
    try:
        with open("/proc/self/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return False


def _bounded_rounds(q, rounds, burst, first=0):
    for r in range(first, first + rounds):
        base = r * burst + 1000  # ints above the small-int cache: real objects
        if r % 2:
            q.put_many(range(base, base + burst))
            got = []
            while len(got) < burst:
                got.extend(q.get_many(64))
        else:
            for i in range(base, base + burst):
                q.put(i)
            got = [q.get() for _ in range(burst)]
        assert got[0] == base and got[-1] == base + burst - 1


@_helpers.cpython_only
def test_memory_flat_over_a_million_operations(Queue):
    import tracemalloc

    q = Queue(1024)
    rounds, burst = 1000, 500  # 500k puts + 500k gets
    _bounded_rounds(q, 4, burst)  # warm up
    gc.collect()
    blocks0 = sys.getallocatedblocks()  # 0 without pymalloc (PYTHONMALLOC=malloc)
    rss0 = None if _under_asan() else _rss_kb()
    _bounded_rounds(q, rounds - 4, burst, first=4)
    gc.collect()
    blocks1 = sys.getallocatedblocks()
    rss1 = _rss_kb()
    assert q.qsize() == 0
    assert q.unfinished_tasks == rounds * burst
    assert blocks1 - blocks0 < 2000, f"{blocks1 - blocks0} more memory blocks after 1e6 operations"
    if rss0 is not None:
        assert rss1 - rss0 < 16 * 1024, f"RSS grew by {rss1 - rss0} KiB"
    # tracemalloc sees every allocation whatever the allocator: a shorter run under it
    tracemalloc.start()
    try:
        _bounded_rounds(q, 2, burst)
        gc.collect()
        cur0, _ = tracemalloc.get_traced_memory()
        _bounded_rounds(q, 60, burst, first=2)
        gc.collect()
        cur1, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert cur1 - cur0 < 64 * 1024, f"{cur1 - cur0} more bytes traced after 60k operations"


@_helpers.cpython_only
def test_unbounded_queue_gives_memory_back(Queue):
    """A burst of 200k items, drained: the ring must not pin its peak forever."""
    import tracemalloc

    q = Queue()
    tracemalloc.start()
    try:
        q.put_many(range(200_000))
        _, peak = tracemalloc.get_traced_memory()
        while q.qsize():
            q.get_many(1000)
        for _ in range(10):
            q.put(1)
            q.get()
        gc.collect()
        cur, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak > 1_000_000  # the burst was really held
    assert cur < peak / 4, f"{cur} bytes still held after draining (peak {peak})"
