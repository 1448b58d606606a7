"""os.fork() while a parent thread is blocked on the queue: the child can use it.

The child inherits a queue whose waiter lists name threads that do not exist
in the child. It must still be able to put, get, block and be woken. The child
reports through a pipe and leaves with os._exit; the parent waits with a
deadline, so a hang in the child fails the test instead of hanging it.
"""
import faulthandler
import os
import signal
import threading
import time
import traceback
import warnings
from functools import partial

import pytest

from _helpers import BLOCK_TIMEOUT, LONG, assert_all_block, assert_blocks

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

CHILD_DEADLINE = 30
#: A woken thread must return within this; its call's own timeout is BLOCK_TIMEOUT.
WAKE_TIMEOUT = 3.0


def _main_get(q):
    """get() in the child's main thread; it must be woken well before its timeout."""
    t0 = time.monotonic()
    try:
        item = q.get(timeout=2 * WAKE_TIMEOUT)
    except Exception as e:
        raise AssertionError(f"main thread's get was not woken: {e!r}") from e
    elapsed = time.monotonic() - t0
    assert elapsed < WAKE_TIMEOUT, f"main thread's get was not woken (returned after {elapsed:.1f}s)"
    return item


def _in_thread(fn, *args):
    box = {}

    def run():
        try:
            box["r"] = fn(*args)
        except BaseException as e:  # noqa: BLE001
            box["e"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()

    def result(timeout=WAKE_TIMEOUT):
        t.join(timeout)
        assert not t.is_alive(), f"{fn} still blocked in the child after {timeout}s"
        if "e" in box:
            raise box["e"]
        return box.get("r")

    result.thread = t
    return result


def _fork_and_check(child_fn):
    r, w = os.pipe()
    parent_threads = [t.name for t in threading.enumerate()]
    with warnings.catch_warnings():
        # 3.12+: "This process is multi-threaded, use of fork() may lead to deadlocks"
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # ---- child
        status = 1
        try:
            os.close(r)
            # If the child hangs, SIGALRM dumps every thread's stack into the pipe
            # (from the C signal handler: works even if a thread holds the GIL).
            faulthandler.register(signal.SIGALRM, file=w, all_threads=True, chain=False)
            signal.alarm(CHILD_DEADLINE - 10)
            child_fn()
            status = 0
        except BaseException:  # noqa: BLE001
            try:
                os.write(w, traceback.format_exc().encode())
            except BaseException:  # noqa: BLE001
                pass
        finally:
            os._exit(status)
    # ---- parent
    os.close(w)
    deadline = time.monotonic() + CHILD_DEADLINE
    status = None
    while time.monotonic() < deadline:
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        report = _read_all(r)
        pytest.fail(
            f"fork child still running after {CHILD_DEADLINE}s: it hangs\n"
            f"parent threads at fork: {parent_threads}\n--- child stacks ---\n{report}"
        )
    report = _read_all(r)
    if os.WIFSIGNALED(status):
        pytest.fail(f"fork child killed by signal {os.WTERMSIG(status)}\n{report}")
    assert os.WEXITSTATUS(status) == 0, f"fork child failed:\n{report}"


def _read_all(r):
    os.set_blocking(r, False)
    chunks = []
    while True:
        try:
            data = os.read(r, 65536)
        except BlockingIOError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(r)
    return b"".join(chunks).decode(errors="replace")


def _child_basic_use(q):
    """What every child checks, on an empty queue with room."""
    assert q.qsize() == 0
    q.put("c1")
    assert q.get(timeout=5) == "c1"
    q.put_nowait("c2")
    assert q.get_nowait() == "c2"
    q.put_many(["c3", "c4"])
    assert q.get_many(5, timeout=5) == ["c3", "c4"]
    # a thread of the child, blocked in get, is woken by a put of the main thread
    res = _in_thread(q.get, True, BLOCK_TIMEOUT)
    time.sleep(0.2)
    q.put("c5")
    assert res() == "c5"
    # the main thread blocked in get is woken by a put from a thread
    t = threading.Timer(0.2, q.put, args=("c6",))
    t.start()
    assert _main_get(q) == "c6"
    t.join()
    # and a thread blocked in put on a full queue, woken by a get
    q.maxsize = 1
    q.put("c7")
    res = _in_thread(q.put, "c8", True, BLOCK_TIMEOUT)
    time.sleep(0.2)
    assert q.get(timeout=5) == "c7"
    res()
    assert q.get(timeout=5) == "c8"
    q.shutdown()
    assert q.is_shutdown


def test_fork_while_parent_thread_blocked_in_get(Queue):
    q = Queue()
    blocked = assert_blocks(q.get)

    def child():
        _child_basic_use(q)

    _fork_and_check(child)
    # the parent's queue and its blocked thread are unaffected
    assert not blocked.returned.is_set()
    q.put("parent")
    assert blocked.value() == "parent"
    assert q.qsize() == 0


def test_fork_while_parent_threads_blocked_in_get_many(Queue):
    q = Queue()
    blocked = assert_all_block([partial(q.get_many, 2)] * 3)

    def child():
        _child_basic_use(q)

    _fork_and_check(child)
    q.put_many([1, 2, 3, 4, 5, 6])  # each takes at most 2: all three get 2
    got = sorted(x for b in blocked for x in b.value())
    assert got == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("first", ["child-thread-waits", "child-main-waits"])
def test_fork_child_waits_before_any_other_call(Queue, first):
    """The child's very first call parks: the parent's stale waiters must not get its wake-up."""
    q = Queue()
    blocked = assert_blocks(q.get)

    def child():
        if first == "child-thread-waits":
            res = _in_thread(q.get, True, BLOCK_TIMEOUT)
            time.sleep(0.3)
            q.put("c")
            assert res() == "c"
        else:
            t = threading.Timer(0.3, q.put, args=("c",))
            t.start()
            assert _main_get(q) == "c"
            t.join()
        assert q.qsize() == 0
        _child_basic_use(q)

    _fork_and_check(child)
    q.put("parent")
    assert blocked.value() == "parent"


def test_fork_child_putter_waits_first(Queue):
    q = Queue(1)
    q.put("a")
    blocked = assert_blocks(q.put, "b")

    def child():
        res = _in_thread(q.put, "c", True, BLOCK_TIMEOUT)
        time.sleep(0.3)
        assert q.get(timeout=5) == "a"
        res()
        assert q.get(timeout=5) == "c"

    _fork_and_check(child)
    assert q.get(timeout=LONG) == "a"
    blocked.value()
    assert q.get(timeout=LONG) == "b"


def test_fork_while_parent_thread_blocked_in_put(Queue):
    q = Queue(1)
    q.put("a")
    blocked = assert_blocks(q.put, "b")

    def child():
        assert q.qsize() == 1
        assert q.full()
        assert q.get(timeout=5) == "a"  # "b" belongs to a thread that is not here
        assert q.qsize() == 0
        q.maxsize = 0
        _child_basic_use(q)

    _fork_and_check(child)
    assert q.get(timeout=LONG) == "a"
    blocked.value()
    assert q.get(timeout=LONG) == "b"


def test_fork_while_parent_thread_blocked_in_join(Queue):
    q = Queue()
    q.put("a")
    blocked = assert_blocks(q.join)

    def child():
        assert q.unfinished_tasks == 1
        assert q.get(timeout=5) == "a"
        q.task_done()
        q.join()  # nothing left: returns at once
        q.put("b")
        res = _in_thread(q.join)
        time.sleep(0.2)
        assert q.get(timeout=5) == "b"
        q.task_done()
        res()
        _child_basic_use(q)

    _fork_and_check(child)
    assert not blocked.returned.is_set()
    assert q.get(timeout=LONG) == "a"
    q.task_done()
    blocked.value()


def test_fork_child_queue_created_before_fork_no_waiters(Queue):
    # the plain case: no thread waiting at fork time
    q = Queue(4)
    q.put_many([1, 2])

    def child():
        assert q.get_many(5) == [1, 2]
        _child_basic_use(q)

    _fork_and_check(child)
    assert q.get_many(5) == [1, 2]


def _reuse_dead_threads_stacks():
    """Start and join threads that recurse: glibc hands a fork child's new threads the
    stacks of the parent's threads, so this overwrites whatever those threads kept there."""
    def deep(n=0):
        return deep(n + 1) if n < 200 else bytearray(100_000)

    threads = [threading.Thread(target=deep) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_fork_while_parent_threads_wait_on_a_cancel_token(qmod):
    # The parent's waits are linked into the token from their threads' stacks; in the
    # child those threads are gone and their stacks reused. cancel() there crashed the
    # compiled core with SIGSEGV (a forked ProcessExecutor worker did at exit).
    token = qmod.CancelToken()
    q = qmod.Queue()
    waits = [assert_blocks(token.wait)] + [assert_blocks(partial(q.get, cancel=token)) for _ in range(2)]

    def child():
        _reuse_dead_threads_stacks()
        token.cancel()
        assert token.cancelled
        # the child's own waits on the inherited token work, both linked and fired
        kid = token.child()
        assert kid.wait(timeout=5)
        fresh = qmod.CancelToken()
        res = _in_thread(fresh.wait, BLOCK_TIMEOUT)
        time.sleep(0.2)
        fresh.cancel()
        assert res() is True

    _fork_and_check(child)
    assert not any(w.returned.is_set() for w in waits)  # the child's cancel() is its own
    token.cancel()
    assert waits[0].value() is True
    for w in waits[1:]:
        with pytest.raises(qmod.Cancelled):
            w.value()


def test_fork_child_of_a_thread_holding_a_token_lock_can_cancel(qmod):
    # A fork while another thread holds the token's lock (linking a wait): the child's copy is
    # usable (the twin's token lock is reset in the child, as its queues' locks are).
    token = qmod.CancelToken()
    stop = threading.Event()

    def churn():  # links to and unlinks from the token, under its lock, all the time
        while not stop.is_set():
            token.wait(0)

    t = threading.Thread(target=churn, daemon=True)
    t.start()
    try:
        for _ in range(5):
            def child():
                other = token.child()
                other.cancel()
                token.cancel()
                assert other.cancelled and token.cancelled

            _fork_and_check(child)
    finally:
        stop.set()
        t.join(LONG)
    assert not token.cancelled


def test_fork_child_of_a_thread_holding_a_rate_limiters_lock_can_acquire(qmod, monkeypatch):
    # A fork while another thread is inside acquire(), holding the lock that threads queue
    # on for the bucket (the twin bucket's own lock, or the limiter's over the core's):
    # the child's copy was left held, so the child's first acquire() hung.
    import ringq.ratelimit

    monkeypatch.setattr(ringq.ratelimit, "TokenBucket", qmod.TokenBucket)
    limiter = ringq.RateLimiter(rate=1e9, burst=1000)
    lock = limiter._threads if limiter._threads is not None else limiter._bucket._lock

    def child():
        for _ in range(3):
            assert limiter.acquire(timeout=LONG)

    _fork_while_another_thread_holds(lock, child)
    assert limiter.acquire(timeout=LONG)


def test_fork_while_another_thread_holds_the_thread_pools_exit_lock():
    # BoundedExecutor registers every pool under a module lock; a fork while another
    # thread held it left it held in the child, so the child's first pool hung.
    import ringq
    from ringq import pool

    def child():
        with ringq.BoundedExecutor(1, 4) as ex:
            assert ex.submit(pow, 2, 5).result(timeout=5) == 32

    _fork_while_another_thread_holds(pool._exit_lock, child)


def _fork_while_another_thread_holds(lock, child_fn):
    """Fork (and check *child_fn* in the child) while another thread holds *lock*."""
    held, release = threading.Event(), threading.Event()

    def hold():
        with lock:
            held.set()
            release.wait(LONG)

    t = threading.Thread(target=hold, daemon=True)
    t.start()
    assert held.wait(LONG)
    try:
        _fork_and_check(child_fn)
    finally:
        release.set()
        t.join(LONG)
