"""ringq.ProcessQueue: the API (both implementations), across processes, Ctrl-C, crashes, lifetime."""
import gc
import importlib
import json
import math
import multiprocessing as mp
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import _helpers
import _pq_workers
import ringq

pytestmark = pytest.mark.skipif(os.name == "nt", reason="the tests use /dev/shm and POSIX signals")

METHODS = [m for m in ("fork", "spawn", "forkserver") if m in mp.get_all_start_methods()]


def load(name):
    if name == "cython":
        if _helpers.no_extensions_env():
            pytest.skip("RINGQ_NO_EXTENSIONS is set: the Cython core is not used")
        try:
            return _helpers.import_compiled("ringq._process_c")
        except ImportError as e:
            pytest.skip(f"ringq._process_c cannot be imported: {e}")
    return importlib.import_module("ringq._process_py")


@pytest.fixture(params=["cython", "python"])
def pimpl(request):
    return request.param


@pytest.fixture
def PQ(pimpl):
    return load(pimpl).ProcessQueue


@pytest.fixture
def q(PQ):
    queue = PQ(maxsize=8, capacity=64 * 1024)
    yield queue
    queue.close()


def shm_names():
    try:
        return set(os.listdir("/dev/shm"))
    except FileNotFoundError:
        return set()


def shm_file(queue):
    return queue.name.lstrip("/")


def run_procs(procs, timeout=60):
    """Start, then join every process; kill the stragglers and fail if one hangs."""
    for p in procs:
        p.start()
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            p.join(max(0.1, deadline - time.monotonic()))
        hung = [p for p in procs if p.is_alive()]
        assert not hung, f"{len(hung)} child process(es) still running after {timeout} s"
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)
    return [p.exitcode for p in procs]


# ---------------------------------------------------------------------------
# The API in one process

def test_exported():
    assert ringq.ProcessQueue.__name__ == "ProcessQueue"
    assert "ProcessQueue" in ringq.__all__
    from ringq import _process

    assert _process.IMPLEMENTATION in ("cython", "python")


def test_generic_alias_and_repr(PQ, q):
    assert PQ[int].__args__ == (int,)
    assert "maxsize=8" in repr(q)


def test_fifo_and_types(q):
    import array

    items = [1, "two", b"three", bytearray(b"four"), (5, [6.0]), None, {"k": b"v"}, array.array("i", [7, 8])]
    for item in items[:8]:
        q.put(item)
    got = [q.get() for _ in range(8)]
    assert got == items[:8]
    assert type(got[2]) is bytes and type(got[3]) is bytearray


def test_numpy_roundtrip(PQ):
    np = pytest.importorskip("numpy")
    with PQ(capacity=2**21) as q:
        a = np.arange(100_000, dtype=np.float64).reshape(1000, 100)
        q.put(a)
        q.put(a[:, ::2])  # not contiguous: goes in band
        b = q.get()
        c = q.get()
        assert b.dtype == a.dtype and (b == a).all()
        assert (c == a[:, ::2]).all()
        b[0, 0] = -1  # the result is writable and owns (or views) its own memory
        q.put(memoryview(b"xyz"))
        assert bytes(q.get()) == b"xyz"
    q.close()


def test_nowait_full_and_empty(q):
    with pytest.raises(ringq.Empty):
        q.get_nowait()
    with pytest.raises(ringq.Empty):
        q.get(block=False)
    for i in range(8):
        q.put_nowait(i)
    assert q.full() and q.qsize() == 8 and not q.empty() and q.maxsize == 8
    with pytest.raises(ringq.Full):
        q.put_nowait(8)
    with pytest.raises(ringq.Full):
        q.put(8, block=False, timeout=-1)  # timeout ignored without block, as in the stdlib
    assert q.get_nowait() == 0


def test_timeouts(q):
    t0 = time.monotonic()
    with pytest.raises(ringq.Empty):
        q.get(timeout=0.2)
    elapsed = time.monotonic() - t0
    assert 0.19 <= elapsed < 2
    q.put_many(range(8))
    t0 = time.monotonic()
    with pytest.raises(ringq.Full):
        q.put(9, timeout=0.2)
    assert 0.19 <= time.monotonic() - t0 < 2
    with pytest.raises(ringq.Full):
        q.put(9, timeout=0)


@pytest.mark.parametrize("bad, exc", [(-1, ValueError), (float("nan"), ValueError), ("1", TypeError), (b"", TypeError)])
def test_timeout_validation(q, bad, exc):
    for call in (lambda: q.get(timeout=bad), lambda: q.put(1, timeout=bad),
                 lambda: q.get_many(2, timeout=bad), lambda: q.put_many([1], timeout=bad)):
        with pytest.raises(exc):
            call()
    assert q.qsize() == 0


def test_argument_validation(PQ, q):
    with pytest.raises(TypeError, match="maxsize must be an integer"):
        PQ("3")
    with pytest.raises(TypeError, match="capacity"):
        PQ(0, 1.5)
    with pytest.raises(ValueError, match="capacity"):
        PQ(0, 100)
    with pytest.raises(TypeError, match="dumps= and loads="):
        PQ(dumps=json.dumps)
    with pytest.raises(ValueError, match="max_items must be >= 1"):
        q.get_many(0)
    with pytest.raises(TypeError, match="max_items must be an integer"):
        q.get_many(1.0)
    with pytest.raises(TypeError):
        q.put_many(5)
    q.put(1)
    assert q.get(timeout=math.inf) == 1


def test_item_that_can_never_fit(PQ):
    with PQ(capacity=8192) as q:
        q.put(b"a")
        with pytest.raises(ValueError, match="can never fit.*capacity="):
            q.put(b"x" * 9000)
        with pytest.raises(ValueError, match="can never fit"):
            q.put_many([b"b", b"x" * 9000])  # checked before anything is written
        assert q.qsize() == 1 and q.get() == b"a"
        assert q.statistics().used_bytes == 0
    q.close()


def test_item_that_does_not_fit_yet_waits(PQ):
    with PQ(capacity=8192) as q:
        q.put(b"x" * 5000)
        with pytest.raises(ringq.Full):
            q.put_nowait(b"y" * 5000)
        t0 = time.monotonic()
        with pytest.raises(ringq.Full):
            q.put(b"y" * 5000, timeout=0.1)
        assert time.monotonic() - t0 >= 0.09
        threading.Timer(0.1, q.get).start()
        q.put(b"y" * 5000, timeout=_helpers.BLOCK_TIMEOUT)
        assert q.get() == b"y" * 5000
    q.close()


def test_wrapping_records(PQ):
    with PQ(capacity=4096) as q:
        sent = []
        for i in range(300):
            item = (i, b"z" * (i * 7 % 900))
            q.put(item)
            sent.append(item)
            if q.qsize() > 2:
                assert q.get() == sent.pop(0)
        assert q.get_many(100) == sent
    q.close()


def test_unpicklable_item(q):
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        q.put(lambda: 1)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        q.put_many([1, threading.Lock()])
    assert q.qsize() == 0
    q.put(2)
    assert q.get() == 2


def test_custom_serializer(PQ):
    with PQ(dumps=lambda o: json.dumps(o).encode(), loads=json.loads) as q:
        q.put({"a": [1, 2]})
        q.put_many([1, "x"])
        assert q.get() == {"a": [1, 2]}
        assert q.get_many(5) == [1, "x"]
    q.close()


def test_put_many_get_many(q):
    q.put_many(iter(range(5)))
    assert q.get_many(3) == [0, 1, 2]
    assert q.get_many(10) == [3, 4]
    q.put_many([])
    with pytest.raises(ringq.Full) as e:
        q.put_many(range(9), block=False)  # all or nothing
    assert e.value.put_count == 0 and q.qsize() == 0
    with pytest.raises(ringq.Full) as e:
        q.put_many(range(10), timeout=0.05)
    assert e.value.put_count == 8 and q.get_many(100) == list(range(8))


def test_shutdown(q):
    q.put_many([1, 2])
    assert not q.is_shutdown
    q.shutdown()
    assert q.is_shutdown
    with pytest.raises(ringq.ShutDown):
        q.put(3)
    with pytest.raises(ringq.ShutDown) as e:
        q.put_many([3])
    assert e.value.put_count == 0
    assert q.get() == 1
    assert list(q) == [2]
    with pytest.raises(ringq.ShutDown):
        q.get_nowait()
    with pytest.raises(ringq.ShutDown):
        q.get_many(3, timeout=1)
    q.shutdown()  # again: fine


def test_shutdown_immediate_and_join(q):
    q.put_many([1, 2, 3])
    assert q.unfinished_tasks == 3
    q.get()
    q.task_done()
    done = threading.Event()
    t = threading.Thread(target=lambda: (q.join(), done.set()))
    t.start()
    assert not done.wait(0.1)
    q.shutdown(immediate=True)
    assert done.wait(_helpers.LONG)
    t.join()
    assert q.qsize() == 0 and q.unfinished_tasks == 0


def test_task_done_join(q):
    with pytest.raises(ValueError, match="too many"):
        q.task_done()
    q.put(1)
    q.get()
    q.task_done()
    q.join()


def test_context_manager_shuts_down(PQ):
    with PQ(4) as q:
        q.put(1)
    assert q.is_shutdown and q.get() == 1
    q.close()


def test_statistics(q):
    q.put_many([1, 2, 3])
    q.get()
    s = q.statistics()
    assert isinstance(s, ringq.ProcessQueueStatistics)
    assert (s.size, s.maxsize, s.high_water, s.puts, s.gets) == (2, 8, 3, 3, 1)
    assert s.waiting_getters == s.waiting_putters == 0
    assert s.capacity == 64 * 1024 and 0 < s.used_bytes < 200 and s.processes == 1


def test_maxsize_assignment_wakes_putters(q):
    q.put_many(range(8))
    t = _helpers.Call(lambda: q.put(8, timeout=_helpers.BLOCK_TIMEOUT))
    time.sleep(_helpers.BLOCK_DELAY)
    assert not t.returned.is_set()
    q.maxsize = 9
    t.value()
    assert q.qsize() == 9
    with pytest.raises(TypeError):
        q.maxsize = "x"


def test_producers(q):
    a, b = q.producer(), q.producer()
    a.close()
    a.close()  # idempotent: counted once
    assert not q.is_shutdown
    q.put(1)
    with b:
        pass
    assert q.is_shutdown and list(q) == [1]
    with pytest.raises(ringq.ShutDown):
        q.producer()


def test_producer_cause(q):
    p = q.producer()
    try:
        with p:
            raise KeyError("boom")
    except KeyError:
        pass
    with pytest.raises(ringq.ShutDown) as e:
        next(iter(q))
    assert isinstance(e.value.__cause__, KeyError)


def test_close(PQ):
    q = PQ()
    name = shm_file(q)
    assert name in shm_names()
    q.close()
    q.close()
    assert q.closed
    assert name not in shm_names()
    for call in (lambda: q.put(1), q.get, q.qsize, lambda: q.get_many(1), q.statistics):
        with pytest.raises(ValueError, match="closed"):
            call()


def test_gc_closes(PQ):
    q = PQ()
    name = shm_file(q)
    del q
    gc.collect()
    assert name not in shm_names()


def test_blocked_get_woken_by_put_in_thread(q):
    t = _helpers.Call(lambda: q.get(timeout=_helpers.BLOCK_TIMEOUT))
    time.sleep(_helpers.BLOCK_DELAY)
    assert not t.returned.is_set()
    assert q.statistics().waiting_getters == 1
    q.put("x")
    assert t.value() == "x"


def test_shutdown_wakes_threads(q):
    getters = [_helpers.Call(lambda: q.get(timeout=_helpers.BLOCK_TIMEOUT)) for _ in range(3)]
    time.sleep(_helpers.BLOCK_DELAY)
    q.shutdown()
    for g in getters:
        with pytest.raises(ringq.ShutDown):
            g.value()


def test_ctrl_c_interrupts_get(q):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("needs the main thread")
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    sent = []

    def fire():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.2, fire)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            q.get(timeout=_helpers.BLOCK_TIMEOUT)
        latency = time.monotonic() - sent[0]
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, old)
    assert latency < 0.1, f"KeyboardInterrupt {latency * 1000:.0f} ms after SIGINT"
    assert q.statistics().waiting_getters == 0
    q.put(1)
    assert q.get() == 1


# ---------------------------------------------------------------------------
# Across processes

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("batch", [0, 50])
def test_exactly_once_4x4(PQ, method, batch):
    ctx = mp.get_context(method)
    n = 1500
    q = PQ(maxsize=64, capacity=1 << 16)
    out = PQ()
    try:
        producers = [ctx.Process(target=_pq_workers.produce, args=(q, k * n, n, batch)) for k in range(4)]
        consumers = [ctx.Process(target=_pq_workers.consume, args=(q, out, batch)) for _ in range(4)]
        for p in consumers:
            p.start()
        assert run_procs(producers) == [0, 0, 0, 0]
        q.shutdown()
        got = []
        for _ in consumers:
            got.extend(out.get(timeout=60))
        assert run_procs([], 0) == []
        for p in consumers:
            p.join(30)
        assert [p.exitcode for p in consumers] == [0, 0, 0, 0]
        assert sorted(got) == list(range(4 * n)), "an item was lost or duplicated"
        assert q.statistics().processes == 1  # every child left
    finally:
        for p in consumers:
            if p.is_alive():
                p.kill()
        q.close()
        out.close()


@pytest.mark.parametrize("method", METHODS)
def test_shutdown_wakes_waiters_in_other_processes(PQ, method):
    ctx = mp.get_context(method)
    empty, full, out = PQ(1), PQ(1), PQ()
    try:
        full.put("fill")
        procs = [ctx.Process(target=_pq_workers.get_one_report, args=(empty, out)) for _ in range(2)]
        procs.append(ctx.Process(target=_pq_workers.put_one_report, args=(full, "more", out)))
        for p in procs:
            p.start()
        deadline = time.monotonic() + 60
        while (empty.statistics().waiting_getters, full.statistics().waiting_putters) != (2, 1):
            assert time.monotonic() < deadline, "the children never blocked"
            time.sleep(0.01)
        t0 = time.monotonic()
        empty.shutdown()
        full.shutdown()
        reports = [out.get(timeout=30)[0] for _ in procs]
        assert time.monotonic() - t0 < 5
        assert reports == ["shutdown"] * 3
        assert run_procs([], 0) == []
        for p in procs:
            p.join(30)
            assert p.exitcode == 0
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        for x in (empty, full, out):
            x.close()


def test_pool_initializer(PQ):
    ctx = mp.get_context("spawn")
    with PQ() as q:
        with ctx.Pool(2, initializer=_pq_workers.pool_init, initargs=(q,)) as pool:
            pids = pool.map(_pq_workers.pool_task, range(20))
        assert len(pids) == 20
        assert sorted(q.get_many(100)) == sorted(i * i for i in range(20))
    q.close()


def test_big_items_across_processes(PQ):
    np = pytest.importorskip("numpy")
    ctx = mp.get_context("spawn")
    with PQ(capacity=8 << 20) as q, PQ(capacity=32 << 20) as out:
        p = ctx.Process(target=_pq_workers.consume, args=(q, out, 0))
        p.start()
        sent = [np.full(100_000, i, dtype=np.int64) for i in range(8)] + [b"b" * (3 << 20)]
        for item in sent:
            q.put(item, timeout=60)
        q.shutdown()
        got = out.get(timeout=60)
        p.join(30)
        assert p.exitcode == 0
        assert len(got) == 9 and all((g == s).all() for g, s in zip(got[:8], sent[:8])) and got[8] == sent[8]
    q.close()
    out.close()


LIFETIME_SCRIPT = textwrap.dedent("""
    import multiprocessing as mp, os, sys, time
    sys.path.insert(0, {tests!r})
    import _pq_workers
    from {module} import ProcessQueue

    if __name__ == "__main__":
        mode = sys.argv[1]
        q = ProcessQueue(capacity=1 << 16)
        print(q.name, flush=True)
        ctx = mp.get_context("spawn")
        p = ctx.Process(target=_pq_workers.produce, args=(q, 0, 100, 0))
        p.start(); p.join()
        assert q.qsize() == 100
        if mode == "exception":
            raise RuntimeError("on purpose")
        if mode == "kill":
            os.kill(os.getpid(), 9)
        if mode == "close":
            q.close()
        if mode in ("pool", "killed-child"):
            if mode == "pool":  # leaving "with" terminates the workers (SIGTERM): they never close
                with ctx.Pool(2, initializer=_pq_workers.pool_init, initargs=(q,)) as pool:
                    pool.map(_pq_workers.pool_task, range(4))
            else:
                c = ctx.Process(target=_pq_workers.hold, args=(q, 60))
                c.start()
                while q.statistics().processes < 2:  # the child has attached
                    time.sleep(0.01)
                os.kill(c.pid, 9)
                c.join()
            assert q.statistics().processes >= 1
            q.close()  # the last live process: the segment goes now, dead ones do not keep it
            assert not os.path.exists("/dev/shm" + q.name), "kept by dead processes"
""")


@pytest.mark.parametrize("mode", ["normal", "exception", "kill", "close", "pool", "killed-child"])
def test_lifetime_nothing_left_in_dev_shm(pimpl, mode):
    module = load(pimpl).__name__
    script = LIFETIME_SCRIPT.format(tests=os.path.dirname(__file__), module=module)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=120, env=env)
    name = proc.stdout.split()[0].lstrip("/")
    # Every process of the run has ended once the resource tracker has: wait for it.
    deadline = time.monotonic() + 20
    while name in shm_names() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert name not in shm_names(), f"{name} left in /dev/shm after mode {mode}\n{proc.stderr}"
    if mode in ("normal", "close", "pool", "killed-child"):
        assert proc.returncode == 0, proc.stderr
        assert "leaked" not in proc.stderr, proc.stderr


UNLINKED_ELSEWHERE_SCRIPT = textwrap.dedent("""
    import _posixshmem
    from multiprocessing import resource_tracker
    from {module} import ProcessQueue

    q = ProcessQueue(capacity=1 << 16)
    # What the process that leaves the segment's table last does: here it is another
    # one (a fork child joins only after fork() returns, so the parent can leave first).
    _posixshmem.shm_unlink(q.name)
    resource_tracker.unregister(q.name, "shared_memory")
    q.close()  # this process now finds itself last too: it must not unregister again
""")


def test_a_segment_unlinked_elsewhere_is_not_unregistered_twice(pimpl):
    # The resource tracker printed "KeyError: '/rq...'" at the end of programs whose
    # pools forked workers (seen with ProcessExecutor(mp_context=fork, max_tasks_per_child=2)).
    script = UNLINKED_ELSEWHERE_SCRIPT.format(module=load(pimpl).__name__)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "KeyError" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------
# Crashes, the pure-Python twin: a dead owner's lock is taken over (see _SharedLock)

@pytest.mark.parametrize("how", [0, 1, 2], ids=["holding-lock", "unpublished-record", "before-owner-written"])
def test_twin_takes_over_the_lock_of_a_process_killed_holding_it(how):
    PQ = load("python").ProcessQueue
    ctx = mp.get_context("fork")
    q = PQ(capacity=1 << 16)
    q.put_many(["a", "b"])
    ready = ctx.Event()
    p = ctx.Process(target=_pq_workers.twin_die_locked, args=(q, ready, how))
    try:
        p.start()
        assert ready.wait(30), "the child never took the lock"
        blocked = _helpers.Call(lambda: q.get(timeout=60))
        time.sleep(_helpers.BLOCK_DELAY)
        assert not blocked.returned.is_set(), "got the lock while the other process held it"
        os.kill(p.pid, signal.SIGKILL)
        # Not joined yet: the dead child is a zombie until its parent reaps it, and the
        # take-over must not wait for that (a pool's collector may be the one blocked).
        assert blocked.value(timeout=10) == "a"  # before the fix: blocked for ever
        s = q.statistics()
        assert s.recoveries == 1 and (s.size, s.puts, s.gets) == (1, 2, 1)
        q.put_many(["c", "d"])
        assert q.get_many(10) == ["b", "c", "d"]
        assert q.statistics().used_bytes == 0
        q.shutdown()
    finally:
        p.join(30)
        q.close()


def test_twin_close_while_another_thread_waits_leaves_the_lock_free():
    # The waiting thread wakes after close() has released the handle's views; taking the
    # lock back it wrote the owner's field through one of them, failed, and left the lock
    # held: every other call, in any process, then waited for ever (a CI hang, 3.14 twin,
    # test_unpicklable_item_names_the_stage).
    PQ = load("python").ProcessQueue
    q = PQ(capacity=1 << 16)
    rebuild, args = q.__reduce__()
    other = rebuild(*args)  # a second handle to the same queue, with its own mapping
    try:
        blocked = _helpers.Call(lambda: q.get(timeout=0.3))
        time.sleep(_helpers.BLOCK_DELAY)
        q.close()
        with pytest.raises(ValueError, match="closed|released"):
            blocked.value()
        put = _helpers.Call(other.put, "x")
        assert put.value(timeout=10) is None  # before the fix: still blocked after 10 s
        assert other.get(timeout=5) == "x"
        assert other.statistics().recoveries == 0
    finally:
        other.close()


class _InterruptedSecondAcquire:
    """The twin lock's semaphore, whose second acquire() raises KeyboardInterrupt
    before taking it (Ctrl-C while a call takes the lock back after a wait slice)."""

    def __init__(self, sem):
        self.sem, self.calls = sem, 0

    def acquire(self, *args):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return self.sem.acquire(*args)

    def release(self):
        return self.sem.release()


def test_twin_ctrl_c_while_taking_the_lock_back_releases_nothing():
    # The call leaves without the lock; its "with" block used to release the semaphore
    # anyway: another process's lock (mutual exclusion lost), or here a free one, where
    # the KeyboardInterrupt became "ValueError: semaphore or lock released too many times".
    PQ = load("python").ProcessQueue
    q = PQ(capacity=1 << 16)
    try:
        sem = q._lock.sem
        q._lock.sem = _InterruptedSecondAcquire(sem)
        with pytest.raises(KeyboardInterrupt):
            q.get(timeout=0.2)  # enter (1st), wait a slice, take the lock back (2nd): Ctrl-C
        q._lock.sem = sem
        assert sem.acquire(False), "the lock was left held"
        sem.release()
        q.put("x")
        assert q.get(timeout=5) == "x"
    finally:
        q.close()


# ---------------------------------------------------------------------------
# Crashes (the compiled core)

def core():
    return load("cython").ProcessQueue


@pytest.mark.parametrize("how", [0, 1], ids=["holding-lock", "half-written-item"])
def test_sigkill_while_holding_the_lock(how):
    PQ = core()
    ctx = mp.get_context("fork")
    q = PQ(capacity=1 << 20)
    p = ctx.Process(target=_pq_workers.die_locked, args=(q, how))
    try:
        q.put_many(["a", "b"])
        p.start()
        deadline = time.monotonic() + 30
        while not q._debug_lock_held():
            assert time.monotonic() < deadline and p.is_alive(), "the child never took the lock"
            time.sleep(0.01)
        blocked = _helpers.Call(lambda: q.get(timeout=60))  # waits for the dead process's lock
        time.sleep(_helpers.BLOCK_DELAY)
        assert not blocked.returned.is_set(), "got the lock while the other process held it"
        os.kill(p.pid, signal.SIGKILL)
        p.join(30)
        assert blocked.value() == "a"  # the owner's death released the lock
        s = q.statistics()
        assert s.recoveries == 1
        assert (s.size, s.puts) == (1, 2)  # the half-written item is not in the queue
        q.put("c")
        assert q.get_many(10) == ["b", "c"]
        assert q.statistics().used_bytes == 0
    finally:
        if p.is_alive():
            p.kill()
            p.join(10)
        q.close()


def test_ctrl_c_while_another_process_holds_the_lock():
    PQ = core()
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("needs the main thread")
    ctx = mp.get_context("fork")
    q = PQ()
    p = ctx.Process(target=_pq_workers.die_locked, args=(q, 0))
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    sent = []

    def fire():
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.3, fire)
    try:
        p.start()
        deadline = time.monotonic() + 30
        while not q._debug_lock_held():
            assert time.monotonic() < deadline and p.is_alive(), "the child never took the lock"
            time.sleep(0.01)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            q.put(1, timeout=30)
        latency = time.monotonic() - sent[0]
        assert latency < 0.1, f"KeyboardInterrupt {latency * 1000:.0f} ms after SIGINT"
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, old)
        if p.is_alive():
            p.kill()
            p.join(10)
    q.put(2)
    assert q.get() == 2
    q.close()


def test_kill_storm(tmp_path):
    core()  # skip without the compiled core
    script = (
        f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import _pq_workers; "
        f"_pq_workers.storm_main('ringq._process_c', 4.0, {str(tmp_path)!r}, {os.getpid() % 1000})"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, env=env)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and len(lines) == 2, proc.stdout + proc.stderr
    name, report = lines[0]["name"].lstrip("/"), lines[1]
    assert report["kills"] >= 10
    assert report["torn"] == 0, report
    assert report["dups"] == 0, report
    assert report["check_seen"] == 1, report  # the queue still worked after the storm
    assert report["alive"] == [], report
    assert report["taken"] > 100, report
    assert (report["size_after"], report["used_after"]) == (0, 0), report
    deadline = time.monotonic() + 20
    while name in shm_names() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert name not in shm_names(), "the segment was left in /dev/shm after the run ended"
    print(report)


# ---------------------------------------------------------------------------
# The bench workloads run and check their results (tiny sizes)

def test_bench_process_workloads_smoke():
    load("cython")
    from ringq.bench import process

    assert process.one_to_one("ringq", 2000, "item") > 0
    assert process.one_to_one("ringq", 5000, "batch") > 0
    assert process.one_to_one("ringq", 4, "mib") > 0
    assert process.four_by_four("ringq", 400) > 0
    assert process.ping_pong("ringq", 50) > 0
    assert process.ping_pong("mp.Pipe", 50) > 0


def test_bench_cli_refuses_process_mixed_with_queue_workloads(capsys):
    import argparse

    from ringq.bench.runner import add_bench_arguments, main

    parser = argparse.ArgumentParser()
    add_bench_arguments(parser)
    args = parser.parse_args(["--workload", "process-1to1,spsc"])
    assert main(args) == 2
    assert "on their own" in capsys.readouterr().err


def test_docs_examples_run(pimpl, tmp_path):
    load(pimpl)
    import re

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "docs", "processes.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    assert len(blocks) >= 3
    env = _helpers.child_env(pimpl)
    for k, code in enumerate(blocks):
        path = tmp_path / f"example{k}.py"
        path.write_text(code)
        proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120, env=env)
        assert proc.returncode == 0, f"example {k} failed:\n{code}\n{proc.stdout}\n{proc.stderr}"
        assert "leaked" not in proc.stderr, proc.stderr


def test_waiting_processes_are_served_fairly():
    # Four consumer processes all asleep on an empty queue; one item at a time: the
    # wake-ups go round them (the kernel wakes futex waiters in arrival order), none starves.
    # The compiled core only: the twin's waiters wake every 50 ms slice and re-queue,
    # so "all four asleep" is a moving target there (its fairness is not measured).
    PQ = core()
    ctx = mp.get_context("fork")
    q, out = PQ(), PQ()
    procs = [ctx.Process(target=_pq_workers.count_gets, args=(q, out)) for _ in range(4)]
    try:
        for p in procs:
            p.start()
        for i in range(80):
            deadline = time.monotonic() + 30
            while q.statistics().waiting_getters < 4 or q.qsize():
                assert time.monotonic() < deadline, "the consumers never all waited"
                time.sleep(0.002)
            q.put(i)
        q.shutdown()
        counts = sorted(out.get(timeout=30) for _ in procs)
        assert sum(counts) == 80
        assert counts[0] >= 8, f"a waiting process starved: {counts}"
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
        q.close()
        out.close()
