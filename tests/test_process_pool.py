"""ringq.ProcessExecutor: the Executor API, the bound, crashes of workers, functions that
can't travel; over both ProcessQueue implementations and every start method."""
import concurrent.futures as cf
import multiprocessing as mp
import os
import random
import signal
import threading
import time

import pytest

import _pexec_workers as w
import ringq

pytestmark = [pytest.mark.skipif(os.name == "nt", reason="POSIX signals"),
              pytest.mark.usefixtures("no_child_left")]

METHODS = [m for m in ("fork", "spawn", "forkserver") if m in mp.get_all_start_methods()]
FORK = mp.get_context("fork")


def wait_running(future, seconds=30):
    deadline = time.monotonic() + seconds
    while not future.running() and not future.done() and time.monotonic() < deadline:
        time.sleep(0.005)


def test_api_every_start_method(pimpl):
    for method in METHODS:
        with ringq.ProcessExecutor(2, 4, mp_context=mp.get_context(method)) as ex:
            assert ex.submit(w.square, 7).result(timeout=60) == 49
            assert ex.submit(w.add, 1, y=2).result(timeout=60) == 3
            assert list(ex.map(w.add, range(50), range(50))) == [2 * i for i in range(50)]
            f = ex.submit(w.boom, 3)
            with pytest.raises(ValueError, match="boom 3") as info:
                f.result(timeout=60)
            assert "in boom" in str(info.value.__cause__)  # the child's traceback text
            f = ex.submit(w.die, 5)
            with pytest.raises(ringq.WorkerDied, match="exited with code 5") as info:
                f.result(timeout=60)
            assert info.value.exitcode == 5
            assert ex.submit(w.square, 8).result(timeout=60) == 64  # a replacement serves


@pytest.mark.skipif("forkserver" not in METHODS, reason="no forkserver")
def test_forkserver_workers_outlive_their_watchdog_period():
    """Under forkserver a worker's parent is the fork server, not the pool: the
    worker's watch for a dead parent must not take that for a death (it used to
    exit after 0.5 s, so idle workers kept dying and were replaced)."""
    with ringq.ProcessExecutor(1, 4, mp_context=mp.get_context("forkserver")) as ex:
        before = ex.submit(w.pid).result(timeout=60)
        time.sleep(1.3)  # more than two periods of the watch (0.5 s)
        assert ex.submit(w.pid).result(timeout=60) == before


def test_futures_wait_as_completed(pimpl):
    with ringq.ProcessExecutor(2, 100, mp_context=FORK) as ex:
        fs = [ex.submit(w.square, i) for i in range(100)]
        done, not_done = cf.wait(fs, timeout=30)
        assert not not_done
        assert sorted(f.result() for f in cf.as_completed(fs)) == sorted(i * i for i in range(100))


def test_deaths_fail_only_their_task(pimpl):
    with ringq.ProcessExecutor(2, 1000, mp_context=FORK) as ex:
        fs = [ex.submit(w.square, i) for i in range(200)]
        bad = [ex.submit(w.die, 7), ex.submit(w.kill_self), ex.submit(w.segfault)]
        fs += [ex.submit(w.square, i) for i in range(200, 400)]
        assert [f.result(timeout=30) for f in fs] == [i * i for i in range(400)]
        for f, pattern in zip(bad, ["exited with code 7", r"signal 9 \(SIGKILL\)", r"signal 11 \(SIGSEGV\)"]):
            with pytest.raises(ringq.WorkerDied, match=pattern):
                f.result(timeout=30)
        assert ex.submit(w.square, 3).result(timeout=30) == 9


@pytest.mark.parametrize("pimpl", ["cython"], indirect=True)  # the twin's lock is not robust to SIGKILL
def test_kill_storm(pimpl):
    """SIGKILL random workers while tasks run: every task either ran or failed with
    WorkerDied, at most one per kill, and the pool keeps serving."""
    rng = random.Random(19)
    with ringq.ProcessExecutor(2, 2000, mp_context=FORK) as ex:
        fs = [ex.submit(w.sleep_return, i, 0.002) for i in range(600)]
        kills = 0
        for _ in range(8):
            time.sleep(rng.uniform(0.02, 0.08))
            live = [wk.process for wk in list(ex._core.workers.values()) if wk.alive]
            if live:
                victim = rng.choice(live)
                try:
                    os.kill(victim.pid, signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
        died = 0
        for i, f in enumerate(fs):
            try:
                assert f.result(timeout=60) == i
            except ringq.WorkerDied as e:
                assert "SIGKILL" in str(e)
                died += 1
        assert died <= kills
        assert ex.submit(w.square, 4).result(timeout=30) == 16


def test_keeps_dying_breaks_the_pool(pimpl):
    with ringq.ProcessExecutor(2, 10, mp_context=FORK, initializer=w.exit_in_init) as ex:
        f = ex.submit(w.square, 2)
        with pytest.raises(cf.process.BrokenProcessPool, match="keep dying.*exited with code 3"):
            f.result(timeout=30)
        with pytest.raises(cf.process.BrokenProcessPool):
            ex.submit(w.square, 2)


def test_initializer(pimpl):
    with ringq.ProcessExecutor(2, 10, mp_context=FORK, initializer=w.set_state, initargs=(42,)) as ex:
        assert ex.submit(w.get_state).result(timeout=30) == 42
    with ringq.ProcessExecutor(1, 10, mp_context=FORK, initializer=w.raise_in_init) as ex:
        with pytest.raises(cf.process.BrokenProcessPool, match="init failed on purpose"):
            ex.submit(w.square, 2).result(timeout=30)


def test_a_broken_pool_fails_the_tasks_still_queued(pimpl):
    # A task still in the pending queue when the pool breaks must fail, not wait for ever
    # (an immediate shutdown of that queue dropped it: CI saw test_initializer time out).
    with ringq.ProcessExecutor(1, 50, mp_context=FORK) as ex:
        first = ex.submit(w.sleep_return, 0, 2.0)
        wait_running(first)
        queued = [ex.submit(w.square, i) for i in range(20)]  # most stay in the pending queue
        ex._core.break_pool("broken on purpose by the test")
        for f in queued:
            with pytest.raises(cf.process.BrokenProcessPool, match="on purpose"):
                f.result(timeout=10)


def test_bound(pimpl):
    with ringq.ProcessExecutor(1, 2, mp_context=FORK) as ex:
        first = ex.submit(w.sleep_return, 0, 1.0)
        wait_running(first)
        deadline = time.monotonic() + 30
        # The dispatcher sends up to 2 tasks ahead of a worker whose task time is
        # unknown: once it holds 2, nothing leaves the queue before the first ends.
        submitted = [ex.submit(w.square, 0)]
        worker = next(iter(ex._core.workers.values()))
        while len(worker.held) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        with pytest.raises(ringq.Full):
            for i in range(1, 50):
                submitted.append(ex.submit_nowait(w.square, i))
        assert len(submitted) == 3
        assert ex.pending() == 2
        t0 = time.monotonic()
        with pytest.raises(ringq.Full):
            ex.submit_call(w.square, (1,), timeout=0.1)
        assert time.monotonic() - t0 >= 0.09
        assert [f.result(timeout=30) for f in submitted] == [i * i for i in range(len(submitted))]


def test_map(pimpl):
    with ringq.ProcessExecutor(2, 8, mp_context=FORK) as ex:
        assert list(ex.map(w.square, range(10_000))) == [i * i for i in range(10_000)]
        assert list(ex.map(w.square, iter(range(3000)), buffersize=2)) == [i * i for i in range(3000)]
        assert list(ex.map(w.square, range(100), chunksize=7)) == [i * i for i in range(100)]
        it = ex.map(w.boom_after, range(100), chunksize=10)
        got = []
        with pytest.raises(ValueError, match="at 57") as info:
            for x in it:
                got.append(x)
        assert got == list(range(57))
        assert "boom_after" in str(info.value.__cause__)
        it = ex.map(w.sleep_return, [0, 1], [0.6, 0.6], timeout=0.1)
        with pytest.raises(cf.TimeoutError):
            list(it)
        with pytest.raises(ValueError):
            ex.map(w.square, [1], chunksize=0)


def test_lambda_and_nested_fail_at_submit():
    def nested(x):
        return x

    for method in METHODS:
        with ringq.ProcessExecutor(2, 4, mp_context=mp.get_context(method)) as ex:
            with pytest.raises(TypeError, match=r"<lambda>.*it is a lambda.*top level"):
                ex.submit(lambda x: x, 1)
            with pytest.raises(TypeError, match=r"nested.*defined inside another function.*top level"):
                ex.submit(nested, 1)
            with pytest.raises(TypeError, match="nested"):
                ex.map(nested, [1, 2])
            with pytest.raises(TypeError, match="arguments of .*square.*cannot be pickled"):
                ex.submit(w.square, threading.Lock())
            assert not ex._core.started  # nothing was sent, no process was started
    with pytest.raises(TypeError, match="initializer .*lambda"):
        ringq.ProcessExecutor(1, 1, mp_context=mp.get_context("spawn"), initializer=lambda: None)


def test_shutdown_cancel_futures_and_after(pimpl):
    ex = ringq.ProcessExecutor(1, 50, mp_context=FORK)
    first = ex.submit(w.sleep_return, 1, 0.3)
    wait_running(first)
    rest = [ex.submit(w.square, i) for i in range(40)]
    ex.shutdown(wait=True, cancel_futures=True)
    assert first.result() == 1
    assert any(f.cancelled() for f in rest)
    assert all(f.cancelled() or f.result() == i * i for i, f in enumerate(rest))
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(w.square, 1)


def test_unpicklable_results_and_exceptions(pimpl):
    with ringq.ProcessExecutor(1, 4, mp_context=FORK) as ex:
        with pytest.raises(RuntimeError, match="could not send the task's result"):
            ex.submit(w.unpicklable_result).result(timeout=30)
        with pytest.raises(RuntimeError, match="Unpicklable.*could not be pickled"):
            ex.submit(w.raise_unpicklable).result(timeout=30)
        assert ex.submit(w.square, 5).result(timeout=30) == 25


def test_max_tasks_per_child(pimpl):
    with ringq.ProcessExecutor(2, 100, mp_context=FORK, max_tasks_per_child=3) as ex:
        pids = [f.result(timeout=30) for f in [ex.submit(w.pid) for _ in range(30)]]
        assert len(set(pids)) >= 10
        counts = {p: pids.count(p) for p in set(pids)}
        assert max(counts.values()) <= 3


def test_a_forked_child_leaves_the_parents_pool_alone(pimpl):
    # A process forked from the parent (a worker, or any fork) inherits the pool object.
    # At its exit it used to shut that pool down as its own: with a cancel token it
    # crashed (SIGSEGV); without, it sent SIGTERM to the parent's workers.
    with ringq.ProcessExecutor(2, 10, mp_context=FORK, cancel=ringq.CancelToken()) as ex:
        assert [f.result(timeout=30) for f in [ex.submit(w.square, i) for i in range(4)]] == [0, 1, 4, 9]
        workers = sorted(x.process.pid for x in ex._core.workers.values())
        assert len(workers) == 2
        child = FORK.Process(target=w.square, args=(2,))
        child.start()
        child.join(30)
        assert child.exitcode == 0
        time.sleep(0.5)  # a SIGTERM would have landed by now
        assert sorted(x.process.pid for x in ex._core.workers.values()) == workers
        assert all(x.process.is_alive() for x in ex._core.workers.values())
        assert [f.result(timeout=30) for f in [ex.submit(w.square, i) for i in range(4)]] == [0, 1, 4, 9]


def test_cancel_token(pimpl):
    token = ringq.CancelToken()
    with ringq.ProcessExecutor(1, 50, mp_context=FORK, cancel=token) as ex:
        first = ex.submit(w.sleep_return, 1, 0.3)
        wait_running(first)
        rest = [ex.submit(w.square, i) for i in range(40)]
        token.cancel()
        with pytest.raises(ringq.Cancelled):
            ex.submit(w.square, 1)
        assert first.result(timeout=30) == 1
        assert any(f.cancelled() for f in rest)


def test_garbage_collected_pool_leaves_no_process(pimpl):
    ex = ringq.ProcessExecutor(2, 10, mp_context=FORK)
    f = ex.submit(w.square, 9)
    assert f.result(timeout=30) == 81
    del ex
    import gc

    gc.collect()
    # no_child_left checks that the workers end


def test_bench_processes_workloads_run_and_check_results():
    from ringq.bench import process_pool as bench
    from ringq.bench import registry

    assert registry.ALIASES["processes"] == ["pool-submit", "pool-map", "pool-pipeline", "pool-pipeline-light"]
    for name, found in bench.CONTESTS.items():
        assert registry.CONTESTS[name] is found and found.entries[0].versus
    for kind in ["ringq", "ProcessPoolExecutor"]:
        assert bench.submit(kind, 300) > 0
    for kind in ["ringq", "PPE.map(chunksize=1000)", "mp.Pool.imap(1000)"]:
        assert bench.map_items(kind, 3000) > 0
    for kind in ["ringq processes", "ringq threads", "mp.Queue chain"]:
        assert bench.pipeline(kind, 6) > 0
        assert bench.pipeline(kind, 300, burn=bench.BURN_LIGHT) > 0
