"""Process stages in ringq.Pipeline (processes=True): every stage feature, errors and
dying children stop the pipeline, Ctrl-C, break, close, no process left behind."""
import gc
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import _pexec_workers as w
import ringq

pytestmark = [pytest.mark.skipif(os.name == "nt", reason="POSIX signals"),
              pytest.mark.usefixtures("no_child_left")]

METHODS = [m for m in ("fork", "spawn", "forkserver") if m in mp.get_all_start_methods()]
FORK = mp.get_context("fork")
HERE = os.path.dirname(os.path.abspath(__file__))


def test_features(pimpl):
    limiter = ringq.RateLimiter(2000, 50)
    with ringq.Pipeline(range(300)) as p:
        p.stage(w.skip_odd, workers=2, processes=True, mp_context=FORK, ordered=True, window=3,
                name="evens")
        p.stage(w.twice, workers=2, processes=True, mp_context=FORK, ordered=True)  # a generator
        p.stage(w.ident, workers=2, ordered=True)                                  # a thread stage
        p.stage(w.square, workers=2, processes=True, mp_context=FORK, ordered=True, rate=limiter)
        out = list(p)
    evens = [x for x in range(300) if x % 2 == 0]
    assert out == [y * y for x in evens for y in (x, x)]
    stats = {s.name: s for s in p.stats()}
    assert stats["evens"].items_in == 300 and stats["evens"].items_out == 150
    assert stats["twice"].items_out == 300 and stats["square"].items_out == 300


def test_every_start_method():
    for method in METHODS:
        with ringq.Pipeline(range(200)) as p:
            p.stage(w.square, workers=2, processes=True, mp_context=mp.get_context(method))
            assert sorted(p) == [i * i for i in range(200)]


def test_lambda_rejected_at_stage_with_spawn():
    def nested(x):
        return x

    for method in [m for m in METHODS if m != "fork"]:
        p = ringq.Pipeline(range(3))
        with pytest.raises(TypeError, match="stage function .*<lambda>.*it is a lambda.*top level"):
            p.stage(lambda x: x, processes=True, mp_context=mp.get_context(method))
        with pytest.raises(TypeError, match="nested.*defined inside another function"):
            p.stage(nested, processes=True, mp_context=mp.get_context(method))
    # fork: nothing to pickle, a lambda works
    with ringq.Pipeline(range(5)) as p:
        p.stage(lambda x: x + 1, workers=2, processes=True, mp_context=FORK, ordered=True)
        assert list(p) == [1, 2, 3, 4, 5]


def test_error_in_child_stops_everything(pimpl):
    with ringq.Pipeline(range(10_000)) as p:
        p.stage(w.boom_after, workers=2, processes=True, mp_context=FORK)
        p.stage(w.ident, workers=2)
        with pytest.raises(ValueError, match="at 57") as info:
            list(p)
    assert "boom_after" in str(info.value.__cause__)  # the child's traceback


def test_dying_child_raises(pimpl):
    with ringq.Pipeline(range(1000)) as p:
        p.stage(w.die_at, workers=2, processes=True, mp_context=FORK)
        with pytest.raises(ringq.WorkerDied, match="exited with code 9"):
            list(p)


def test_break_close_and_gc(pimpl):
    with ringq.Pipeline(iter(range(10**9))) as p:
        p.stage(w.sleep_return, workers=2, processes=True, mp_context=FORK)
        for _ in p:
            break
    t0 = time.monotonic()
    p = ringq.Pipeline(iter(range(10**9)))
    p.stage(w.burn, workers=2, processes=True, mp_context=FORK)
    it = iter(p)
    next(it)
    p.close()
    assert time.monotonic() - t0 < 10
    p = ringq.Pipeline(iter(range(10**9)))
    p.stage(w.burn, workers=2, processes=True, mp_context=FORK)
    it = iter(p)
    next(it)
    del it, p
    gc.collect()


def test_cancel(pimpl):
    token = ringq.CancelToken()
    with ringq.Pipeline(iter(range(10**9)), cancel=token) as p:
        p.stage(w.burn, workers=2, processes=True, mp_context=FORK)
        with pytest.raises(ringq.Cancelled):
            for i, _ in enumerate(p):
                if i == 5:
                    token.cancel()


def test_ctrl_c_ends_every_child():
    script = textwrap.dedent(f"""
        import multiprocessing as mp, sys, os
        sys.path.insert(0, {HERE!r})
        import ringq, _pexec_workers as w
        if __name__ == "__main__":
            with ringq.Pipeline(iter(range(10**9))) as p:
                p.stage(w.burn_forever, workers=2, processes=True, mp_context=mp.get_context("fork"))
                it = iter(p)
                try:
                    next(it)
                except Exception:
                    pass
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    try:
        # Wait for the two workers to run (children of the script).
        deadline = time.monotonic() + 30
        kids = []
        while time.monotonic() < deadline and len(kids) < 2:
            kids = _children(proc.pid)
            time.sleep(0.05)
        assert len(kids) >= 2
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
        assert "KeyboardInterrupt" in proc.stderr.read()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(k) for k in kids):
            time.sleep(0.05)
        assert not [k for k in kids if _alive(k)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _children(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                kids.append(int(entry))
    return kids


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


# --- several batches in flight per stage ----------------------------------------------------

_release = FORK.Event()  # reaches the forked workers


def _hold_until_released(x):
    _release.wait(30)
    return x


def _uneven(x):
    time.sleep(0.01 if x % 7 == 0 else 0.0005 * (x % 3))
    return x * 10


def _uneven_gen(x):
    time.sleep(0.01 if x % 5 == 0 else 0)
    yield x
    yield -x


def _kill_self_at(x):
    if x == 150:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.001)
    return x


def test_next_batch_taken_while_one_runs(pimpl):
    # One worker process whose items wait until released: the stage must not wait for
    # the first item's result before it takes the next one (it used to: one batch in
    # flight per thread, so the process sat idle for every round trip through the
    # parent). With a queue of 1 in front of the stage, the source is asked for item 3
    # only once the stage has taken items 0 and 1 (and item 2 waits in its queue).
    import threading

    asked_for_3 = threading.Event()

    def source():
        for i in range(6):
            if i == 3:
                asked_for_3.set()
            yield i

    _release.clear()
    with ringq.Pipeline(source()) as p:
        p.stage(_hold_until_released, workers=1, maxsize=1, processes=True, mp_context=FORK)
        it = iter(p)
        try:
            taken = asked_for_3.wait(10)
        finally:
            _release.set()
        assert sorted(it) == list(range(6))
    assert taken, "the stage waited for the first batch's result before taking the next"


def test_default_queues_around_a_process_stage_hold_its_batches(pimpl):
    # A process stage moves batches of up to 4096 items; with the thread stages' default
    # queue of 128 in front of it (or behind it) its batches were cut to 128 items, and
    # a stage of a few microseconds per item ran at ~150k items/s instead of ~230k.
    with ringq.Pipeline(range(50)) as p:
        p.stage(w.ident)
        p.stage(w.square, workers=2, processes=True, mp_context=FORK, ordered=True)
        p.stage(w.ident)
        p.stage(w.ident, name="last")
        p.stage(w.square, processes=True, mp_context=FORK, maxsize=7, name="explicit")
        assert sorted(p) == sorted((i * i) ** 2 for i in range(50))
    # Each row's queue_maxsize is the bound of the queue it puts into (the last stage's
    # results wait in a queue of that stage's bound).
    sizes = [(s.name, s.queue_maxsize) for s in p.stats()]
    assert sizes == [("source", 128), ("ident", 4096), ("square", 4096), ("ident", 128),
                     ("last", 7), ("explicit", 7)]


@pytest.mark.parametrize("window", [None, 1, 3])
def test_ordered_with_uneven_batches(pimpl, window):
    with ringq.Pipeline(range(300)) as p:
        p.stage(_uneven, workers=2, processes=True, mp_context=FORK, ordered=True, window=window,
                maxsize=16)
        p.stage(_uneven_gen, workers=2, processes=True, mp_context=FORK, ordered=True)
        out = list(p)
    assert out == [y for x in range(300) for y in (x * 10, -x * 10)]
    stats = p.stats()
    assert [s.items_out for s in stats[1:]] == [300, 600]
    assert stats[1].busy_seconds > 0


def test_unordered_gets_every_result(pimpl):
    with ringq.Pipeline(range(500)) as p:
        p.stage(_uneven, workers=2, processes=True, mp_context=FORK)
        assert sorted(p) == [x * 10 for x in range(500)]


def test_batches_too_big_for_one_task_are_split(pimpl):
    # Small fast items first (the batches grow), then items of 1 MiB: a batch of those
    # would not fit in one task, so it travels as several; order and content are kept.
    items = [b"x"] * 2000 + [bytes([i]) * 2**20 for i in range(24)]
    with ringq.Pipeline(items) as p:
        p.stage(len, workers=2, processes=True, mp_context=FORK, ordered=True, maxsize=64)
        assert list(p) == [1] * 2000 + [2**20] * 24


@pytest.mark.parametrize("ordered", [False, True])
def test_child_killed_with_batches_in_flight(pimpl, ordered):
    with ringq.Pipeline(range(100_000)) as p:
        p.stage(_kill_self_at, workers=2, processes=True, mp_context=FORK, ordered=ordered)
        p.stage(w.ident, workers=2)
        with pytest.raises(ringq.WorkerDied, match="signal 9"):
            list(p)
    # no_child_left checks that no process is left


def test_unpicklable_item_names_the_stage(pimpl):
    import threading

    with ringq.Pipeline([1, threading.Lock()]) as p:
        p.stage(w.ident, processes=True, mp_context=FORK, name="sender")
        with pytest.raises(TypeError, match="stage 'sender'.*cannot be pickled"):
            list(p)
