"""Signal handlers, __del__ and fork() landing in the middle of a call (issue 12, issue 10 section 6).

A handler (main thread, between bytecodes) may raise or use the queue; a __del__
run by the GC may use it; a fork() from another thread may copy it mid-call. Each
must see every call's effect entirely or not at all. The core runs no Python code
inside a call, so it holds by design; the twin keeps the same rule (see its module
docstring). Signal tests run in a child, with an interval timer firing every few
hundred microseconds; the handler raises only when it lands inside ringq's own code
(a frame of a ringq file), so an exception never hits the child's bookkeeping (or
threading's) between a call's return and the next statement.
"""
import gc
import itertools
import os
import signal
import sys
import threading

import pytest

import _helpers

posix_signals = pytest.mark.skipif(
    os.name == "nt" or not hasattr(signal, "setitimer"), reason="needs POSIX signal.setitimer"
)

TIMER = r'''
import signal, itertools
class Stop(Exception):
    pass
raised = 0
def raise_inside_ringq(sig, frame):
    global raised
    if frame is not None and "ringq" in frame.f_code.co_filename:
        raised += 1
        raise Stop
timer_on = False
def timer(handler, interval=0.0003):
    # The handler runs only while the timer is on: a SIGALRM that arrived before
    # timer_off() may have its Python handler run at a later check point, outside the
    # try that expects it, and there it must do nothing.
    global timer_on
    def on_alarm(sig, frame):
        if timer_on:
            handler(sig, frame)
    timer_on = True
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, interval, interval)
def timer_off():
    global timer_on
    timer_on = False
    signal.setitimer(signal.ITIMER_REAL, 0, 0)
'''


def _twin_steps_must_hold(impl):
    """Skip where the twin's "one step" guarantee is not made (see _queue_py's docstring).

    CPython 3.11+ runs handlers and switches threads only at calls, backward jumps
    and function entries. 3.10 also does at taken conditional jumps, 3.9 at almost
    every instruction, so there a handler or a fork can land inside a step.
    """
    if impl == "python" and sys.version_info < (3, 11):
        pytest.skip("the twin's steps are whole on CPython 3.11 and later only")


def _run(impl, code, timeout=60):
    out = _helpers.check_child(impl, TIMER + code, timeout=timeout)
    return out


@posix_signals
def test_raising_handler_inside_get_many_loses_nothing(impl):
    _twin_steps_must_hold(impl)
    out = _run(impl, r'''
from ringq import Empty
TOTAL, BATCH = 60_000, 4_000
rounds = 0
deadline = time.monotonic() + 2.5
while rounds < 400 or time.monotonic() < deadline and rounds < 4000:
    q = Queue()
    q.put_many(range(TOTAL))
    got = []
    timer(raise_inside_ringq)
    while True:
        rounds += 1
        try:
            got.extend(q.get_many(BATCH, block=False))
        except Stop:
            continue
        except Empty:
            break
    timer_off()
    assert q.qsize() == 0
    assert got == list(range(TOTAL)), ("items lost, duplicated or reordered", len(got))
    assert q.unfinished_tasks == TOTAL, q.unfinished_tasks
print("rounds", rounds, "raised", raised)
''')
    rounds, raised = int(out.split()[1]), int(out.split()[3])
    assert rounds >= 400
    if impl == "python":
        assert raised > 0, "the timer never landed inside the twin: the test proved nothing"


@posix_signals
def test_raising_handler_inside_put_many_is_all_or_nothing(impl):
    _twin_steps_must_hold(impl)
    out = _run(impl, r'''
BATCH = 3_000
q = Queue()
timer(raise_inside_ringq)
deadline = time.monotonic() + 2.0
rounds = 0
while rounds < 400 or (time.monotonic() < deadline and rounds < 5000):
    try:
        q.put_many([(rounds, i) for i in range(BATCH)], block=False)
    except Stop:
        pass
    rounds += 1
timer_off()
n = q.qsize()
assert q.unfinished_tasks == n, (n, q.unfinished_tasks)
items = q.get_many(n + 1) if n else []
assert len(items) == n
# every round's batch is in whole, in order, or absent
for i in range(0, n, BATCH):
    chunk = items[i:i + BATCH]
    assert chunk == [(chunk[0][0], j) for j in range(BATCH)], ("split batch", chunk[:3])
for _ in range(n):
    q.task_done()
q.join()
print("rounds", rounds, "raised", raised)
''')
    if impl == "python":
        assert int(out.split()[3]) > 0


@posix_signals
def test_handler_put_nowait_during_put_many_keeps_bound_and_batch(impl):
    _twin_steps_must_hold(impl)
    _run(impl, r'''
from ringq import Full
N = 5_000
def put_x(sig, frame):
    try:
        q.put_nowait("X")
    except Full:
        pass
rounds = 0
deadline = time.monotonic() + 2.0
while rounds < 300 or (time.monotonic() < deadline and rounds < 3000):
    rounds += 1
    q = Queue(N)
    timer(put_x)
    try:
        q.put_many(range(N), block=False)
    except Full:
        pass
    timer_off()
    n = q.qsize()
    assert n <= N, ("bound exceeded", n)
    items = q.get_many(N + 100) if n else []
    ints = [x for x in items if x != "X"]
    assert ints in ([], list(range(N))), "batch not all-or-nothing"
    if ints:
        first = items.index(0)
        assert items[first:first + N] == ints, "the handler's items landed inside the batch"
    assert q.unfinished_tasks == len(items)
print("rounds", rounds)
''')


@posix_signals
def test_handler_get_nowait_during_immediate_shutdown(impl):
    _twin_steps_must_hold(impl)
    _run(impl, r'''
from ringq import Empty, ShutDown
taken = []
def take(sig, frame):
    try:
        taken.append(q.get_nowait())
    except (Empty, ShutDown):
        pass
rounds = 0
deadline = time.monotonic() + 2.0
while rounds < 300 or (time.monotonic() < deadline and rounds < 3000):
    rounds += 1
    q = Queue()
    q.put_many(range(20_000))
    del taken[:]
    timer(take)
    q.shutdown(immediate=True)
    timer_off()
    assert q.qsize() == 0
    # The handler's items were delivered, not dropped: each is still owed a task_done().
    assert q.unfinished_tasks == len(taken), (q.unfinished_tasks, len(taken))
    for _ in taken:
        q.task_done()
    q.join()
print("rounds", rounds)
''')


@posix_signals
def test_ctrl_c_after_wakeup_passes_it_on(impl):
    _twin_steps_must_hold(impl)
    # Queue(1) is full; the main thread and a second thread both wait to put. A get
    # wakes one; the timer raises in the main thread, possibly right after its
    # wake-up. If the main thread leaves without putting, the other putter must get in.
    out = _run(impl, r'''
from ringq import ShutDown
rounds = stops = 0
deadline = time.monotonic() + 3.0
while rounds < 300 or (time.monotonic() < deadline and rounds < 2000):
    rounds += 1
    q = Queue(1)
    q.put("old")
    def other():
        try:
            q.put("other", timeout=10)
        except ShutDown:
            pass
    t = threading.Thread(target=other, daemon=True)
    t.start()
    main_done = threading.Event()
    def release():
        time.sleep(0.001)
        try:
            q.get()
        except ShutDown:  # the round already ended (main stopped before any wake-up)
            return
        give_up = time.monotonic() + 5
        while t.is_alive() and not main_done.is_set() and time.monotonic() < give_up:
            time.sleep(0.0005)
        if not t.is_alive() and not main_done.is_set():
            try:
                q.get()  # the other putter took the slot: free one for the main thread
            except ShutDown:
                pass
    r = threading.Thread(target=release, daemon=True)
    r.start()
    timer(raise_inside_ringq, 0.0002)
    try:
        q.put("main", timeout=10)
        main_put = True
    except Stop:
        main_put = False
        stops += 1
    main_done.set()
    timer_off()
    if not main_put:
        # Stop may also land just after the put took effect ("main" is then queued
        # and the other putter waits legitimately). Otherwise the slot is free and
        # the other putter must take it.
        give_up = time.monotonic() + 5
        while t.is_alive() and q.qsize() == 0 and time.monotonic() < give_up:
            time.sleep(0.001)
        assert not (t.is_alive() and q.qsize() == 0), "lost wake-up: room is free but a putter sleeps"
    q.shutdown(immediate=True)
    t.join(5)
    r.join(5)
    assert not t.is_alive() and not r.is_alive()
print("rounds", rounds, "stops", stops)
''')
    assert int(out.split()[1]) >= 300


@posix_signals
def test_ctrl_c_after_wakeup_skips_a_left_task_record(impl):
    # As above, with a task's record between the two putters: its aput() timed out,
    # and the record stays in the list, marked left, until a waker skips it. One
    # Ctrl-C per round lands in the main thread as its put() is woken; a wake-up it
    # does not use must reach the thread behind the record. The twin once handed it
    # to the record, which takes none: 5 lost in 3,932 rounds, 0 in 7,667 after.
    _twin_steps_must_hold(impl)
    out = _run(impl, r'''
import asyncio
from ringq import Full, ShutDown
armed = False
def ctrl_c(sig, frame):
    global armed
    if armed:
        armed = False
        raise Stop
loop = asyncio.new_event_loop()
threading.Thread(target=loop.run_forever, daemon=True).start()

async def leave_a_record(q):
    try:
        await q.aput("task", timeout=0.0005)
    except Full:
        pass

def waiting(q, n, end):
    while q.statistics().waiting_putters < n and time.monotonic() < end:
        time.sleep(0.0002)

rounds = stops = lost = 0
# At least 300 rounds however slow the machine (a count reached in a fixed time is
# not: a loaded machine ran 156 in 8 s), more while there is time, within the
# child's timeout.
start = time.monotonic()
timer(ctrl_c, 0.0002)
while rounds < 2000 and (rounds < 300 or time.monotonic() < start + 8.0) and time.monotonic() < start + 90.0:
    rounds += 1
    armed = False
    q = Queue(1)
    q.put("old")
    def other():
        try:
            q.put("other", timeout=10)
        except ShutDown:
            pass
    t = threading.Thread(target=other, daemon=True)
    def release():
        global armed
        end = time.monotonic() + 5
        waiting(q, 1, end)  # the main thread is parked first
        asyncio.run_coroutine_threadsafe(leave_a_record(q), loop).result(5)
        t.start()
        waiting(q, 2, end)  # then the other thread, behind the record
        armed = True
        q.get()
    r = threading.Thread(target=release, daemon=True)
    r.start()
    try:
        try:
            q.put("main", timeout=10)
        finally:
            # Disarmed inside the try that catches Stop: a Stop raised after put()
            # returned, up to this store, is still caught below (issue 22: on 3.9 it
            # landed after the try, and the child died of its uncaught Stop).
            armed = False
    except Stop:
        stops += 1
        # Unless Stop landed after the put took effect, the slot is free: the other
        # putter must take it.
        give_up = time.monotonic() + 2
        while t.is_alive() and q.qsize() == 0 and time.monotonic() < give_up:
            time.sleep(0.001)
        lost += t.is_alive() and q.qsize() == 0
    r.join(5)
    q.shutdown(immediate=True)
    t.join(5)
timer_off()
assert lost == 0, ("lost wake-ups", lost, "of", stops, "stops in", rounds, "rounds")
print("rounds", rounds, "stops", stops)
''', timeout=120)
    rounds, stops = int(out.split()[1]), int(out.split()[3])
    assert rounds >= 300
    assert stops > 0, "Ctrl-C never landed in a round: the test proved nothing"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_another_thread_is_in_put_many(impl):
    _twin_steps_must_hold(impl)
    out = _helpers.check_child(impl, r'''
import warnings
warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads (3.12+)
q = Queue()
stop = False
def producer():
    while not stop:
        q.put_many(range(2_000))
        q.get_many(2_000)
t = threading.Thread(target=producer)
t.start()
bad = 0
for _ in range(200):
    pid = os.fork()
    if pid == 0:
        # Whole put_many and get_many calls only: both counts are multiples of the
        # batch, and the queue holds no more than was put.
        n, u = q.qsize(), q.unfinished_tasks
        os._exit(0 if n % 2_000 == 0 and u % 2_000 == 0 and n <= u else 1)
    _, status = os.waitpid(pid, 0)
    bad += status != 0
stop = True
t.join()
print("bad", bad)
''', timeout=120)
    assert out.split() == ["bad", "0"]


@pytest.mark.parametrize("threshold", [700, 10, 1])
@pytest.mark.parametrize("kind", ["put", "put_nowait", "bounded", "priority"])
def test_gc_reentrant_put_keeps_order_at_any_gc_threshold(qmod, kind, threshold):
    # CPython's test_reentrancy (see test_compat.py) with the GC run more often, so
    # that it lands at every allocation inside put() in turn. The twin's put() once
    # made an iterator before its step, and a __del__ that the GC ran there put its
    # item first (measured on 3.9, 3.10, 3.12 and 3.13).
    q = qmod.PriorityQueue() if kind == "priority" else qmod.Queue(10**6 if kind == "bounded" else 0)
    put = q.put_nowait if kind == "put_nowait" else q.put
    gen = itertools.count()
    results = []

    class Circular:
        def __init__(self):
            self.circular = self

        def __del__(self):
            q.put(next(gen))

    old = gc.get_threshold()
    gc.set_threshold(threshold)
    try:
        while True:
            o = Circular()
            put(next(gen))
            del o
            results.append(q.get())
            if results[-1] >= 3_000:
                break
    finally:
        gc.set_threshold(*old)
    assert results == list(range(len(results)))


def test_timeout_above_timeout_max_is_clamped(qmod, impl, monkeypatch):
    # Windows' threading.TIMEOUT_MAX is about 49.7 days; a longer timeout must wait,
    # not raise OverflowError. Emulate that limit here.
    limit = 0.05
    monkeypatch.setattr(threading, "TIMEOUT_MAX", limit)
    if impl == "python":
        real = qmod.allocate_lock

        class StrictLock:
            def __init__(self):
                self._lock = real()

            def acquire(self, blocking=True, timeout=-1):
                if timeout > threading.TIMEOUT_MAX:
                    raise OverflowError("timeout value is too large")
                return self._lock.acquire(blocking, timeout)

            def release(self):
                self._lock.release()

        # park() makes each waiting thread's lock in the twin's waiters.py: patch it there.
        monkeypatch.setattr(sys.modules[qmod.__name__ + ".waiters"], "allocate_lock", StrictLock)
    q = qmod.Queue()
    call = _helpers.assert_blocks(q.get, timeout=5e6, delay=4 * limit)
    q.put("x")
    assert call.value() == "x"


class _BadBool:
    def __bool__(self):
        raise ZeroDivisionError("no truth value")


def test_shutdown_validates_immediate_first(Queue):
    q = Queue()
    q.put(1)
    with pytest.raises(ZeroDivisionError):
        q.shutdown(immediate=_BadBool())
    assert not q.is_shutdown
    assert q.qsize() == 1
    q.put(2)
    assert q.get_many(5) == [1, 2]


def test_stop_iteration_hides_shutdown(Queue):
    # Both implementations end iteration the same way: StopIteration without the
    # ShutDown that caused it shown as context.
    q = Queue()
    q.shutdown()
    with pytest.raises(StopIteration) as info:
        next(q)
    e = info.value
    assert e.__cause__ is None
    assert e.__context__ is None or e.__suppress_context__, "ShutDown shows as context"


def test_get_many_bad_max_items_message_is_the_same(Queue):
    with pytest.raises(TypeError, match=r"^max_items must be an integer, not 'str'$"):
        Queue().get_many("3")
