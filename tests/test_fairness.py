"""Waiters are served in FIFO order, including the main thread.

The core's main thread waits in 50 ms slices (so that Ctrl-C is seen where lock
waits are not interrupted by signals). Between slices it must keep its place in
the waiter list, not rejoin it at the tail.
"""
import threading
import time

import _helpers


def _one_round(q):
    worker_got = []

    def worker():
        worker_got.append(q.get(timeout=_helpers.BLOCK_TIMEOUT))

    def feeder():
        time.sleep(0.2)            # main has parked by now
        t = threading.Thread(target=worker, daemon=True)
        t.start()
        time.sleep(0.3)            # several of main's 50 ms slices pass; worker parked after main
        q.put("first")
        time.sleep(0.1)
        q.put("second")
        t.join(_helpers.LONG)

    f = threading.Thread(target=feeder, daemon=True)
    f.start()
    got = q.get(timeout=_helpers.BLOCK_TIMEOUT)
    f.join(_helpers.LONG)
    assert not f.is_alive()
    assert got == "first", "the main thread parked first but lost its place to a later waiter"
    assert worker_got == ["second"]


def test_main_thread_keeps_its_fifo_place_across_wait_slices(Queue):
    assert threading.current_thread() is threading.main_thread()
    for _ in range(2):
        _one_round(Queue())


def test_main_thread_keeps_its_fifo_place_as_putter(Queue):
    q = Queue(1)
    q.put("a")
    worker_done = threading.Event()

    def worker():
        q.put("worker", timeout=_helpers.BLOCK_TIMEOUT)
        worker_done.set()

    def feeder():
        time.sleep(0.2)
        threading.Thread(target=worker, daemon=True).start()
        time.sleep(0.3)
        assert q.get() == "a"          # one slot frees: the main thread's put must take it

    f = threading.Thread(target=feeder, daemon=True)
    f.start()
    q.put("main", timeout=_helpers.BLOCK_TIMEOUT)
    f.join(_helpers.LONG)
    assert q.get(timeout=_helpers.LONG) == "main"
    assert q.get(timeout=_helpers.LONG) == "worker"
    assert worker_done.wait(_helpers.LONG)
