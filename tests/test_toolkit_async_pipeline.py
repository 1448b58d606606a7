"""ringq.Pipeline with async def stages, consumed by ``for`` or from a coroutine (issue 20, section 4).

Every test runs on both implementations of ringq.Queue (the ``pipe`` fixture binds
the pipeline's queues and tokens to the one under test) and on both event loops
(``loop_kind``: asyncio's, and uvloop where it is installed), for the loop the
pipeline owns and for the caller's loop. Every wait has a deadline, so a hang fails
the test instead of the run; no test sleeps to synchronise where an event can do.
"""
import asyncio
import functools
import gc
import itertools
import sys
import threading
import time
import traceback
import warnings

import pytest

import ringq
import ringq.pipeline
import ringq.ratelimit
from _helpers import LONG, Call, wait_until

try:
    import uvloop
except ImportError:  # not on Windows or PyPy
    uvloop = None


@pytest.fixture(autouse=True)
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    assert wait_until(lambda: set(threading.enumerate()) <= before, timeout=LONG), (
        f"threads left running: {set(threading.enumerate()) - before}")


@pytest.fixture
def pipe(qmod, monkeypatch):
    """ringq's module under test: the pipeline (and the rate limiter) use its Queue and CancelToken."""
    monkeypatch.setattr(ringq.pipeline, "Queue", qmod.Queue)
    monkeypatch.setattr(ringq.pipeline, "CancelToken", qmod.CancelToken)
    monkeypatch.setattr(ringq.ratelimit, "CancelToken", qmod.CancelToken)
    return qmod


@pytest.fixture(params=["asyncio", "uvloop"])
def new_loop(request):
    if request.param == "uvloop":
        if uvloop is None:
            pytest.skip("uvloop is not installed")
        return uvloop.new_event_loop
    return asyncio.new_event_loop


@pytest.fixture
def Pipeline(pipe, new_loop):
    """ringq.Pipeline whose own loop is of the kind under test."""
    return functools.partial(ringq.Pipeline, loop_factory=new_loop)


@pytest.fixture
def arun(new_loop):
    """Run a coroutine on a fresh loop of the kind under test (the caller's loop), with a deadline."""

    def run(coro, timeout=LONG * 3):
        loop = new_loop()
        try:
            return loop.run_until_complete(asyncio.wait_for(coro, timeout))
        finally:
            loop.close()

    return run


def collect(pipeline):
    """list(pipeline), failing instead of hanging."""
    return Call(list, pipeline).value(LONG * 3)


async def alist(pipeline):
    return [item async for item in pipeline]


async def square(x):
    await asyncio.sleep(0)
    return x * x


def test_an_async_stage_awaits_its_function_and_passes_results_not_coroutines(Pipeline):
    with Pipeline(range(500)) as p:
        p.stage(square, workers=8, maxsize=4)
        p.stage(lambda x: x + 1, workers=2)  # a thread stage after it
        got = collect(p)
    assert sorted(got) == sorted(i * i + 1 for i in range(500))
    assert p._loop.is_closed()


def test_async_for_consumes_without_blocking_the_callers_loop(Pipeline, arun):
    gate = threading.Event()

    def slow(x):  # a thread stage: the caller's loop must keep running meanwhile
        assert gate.wait(LONG)
        return x

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1
                if ticks == 20:
                    gate.set()

        tick = asyncio.ensure_future(ticker())
        try:
            async with Pipeline(range(50)) as p:
                p.stage(slow, workers=2)
                p.stage(square, workers=4, ordered=True)
                got = await alist(p)
        finally:
            tick.cancel()
        return ticks, sorted(got)

    ticks, got = arun(main())
    assert ticks >= 20  # the loop ran while the first result was held back
    assert got == sorted(i * i for i in range(50))


def test_ordered_async_stage_keeps_the_order_and_one_slow_item_holds_back_at_most_the_window(pipe, Pipeline, arun):
    async def main():
        release = pipe.Queue()  # not an asyncio.Event: the stage runs on the pipeline's loop
        started = []

        async def work(i):
            started.append(i)
            if i == 0:
                await release.aget()
            else:
                await asyncio.sleep(0.001 * (i % 3))
            return i

        async with Pipeline(range(200)) as p:
            p.stage(work, workers=4, maxsize=1, ordered=True, window=6)
            results = p.__aiter__()
            first = asyncio.ensure_future(results.__anext__())
            while len(started) < 6:
                await asyncio.sleep(0.001)
            await asyncio.sleep(0.1)
            assert 6 <= len(started) <= 7, started  # window batches of one item (+ one being taken)
            assert not first.done()
            release.put(None)
            assert await first == 0
            rest = [item async for item in results]
        return rest

    assert arun(main()) == list(range(1, 200))


def test_skip_none_and_async_generator_stages(Pipeline):
    async def keep_odd(x):
        return x if x % 2 else ringq.SKIP

    async def none_for_threes(x):
        return None if x % 3 == 0 else x

    async def explode(x):
        for k in range(x % 3):
            await asyncio.sleep(0)
            yield (x, k)

    with Pipeline(range(30)) as p:
        p.stage(keep_odd, workers=3, ordered=True)
        p.stage(none_for_threes, workers=2, ordered=True)
        assert collect(p) == [None if x % 3 == 0 else x for x in range(30) if x % 2]
    with Pipeline(range(30)) as p:
        p.stage(explode, workers=4, ordered=True)
        assert collect(p) == [(x, k) for x in range(30) for k in range(x % 3)]


def test_partials_methods_and_async_callables_are_async_stages(Pipeline):
    async def add(a, b):
        return a + b

    class Adder:
        async def __call__(self, x):
            return x + 100

        async def method(self, x):
            return x + 1000

    with Pipeline(range(10)) as p:
        p.stage(functools.partial(add, 10), ordered=True)
        p.stage(Adder(), ordered=True)
        p.stage(Adder().method, ordered=True)
        assert collect(p) == [x + 1110 for x in range(10)]


def test_rate_limits_an_async_stage_on_the_loops_timer(Pipeline):
    calls = []

    async def record(x):
        calls.append(time.monotonic())
        return x

    with Pipeline(range(12)) as p:
        p.stage(record, workers=4, rate=40)
        assert sorted(collect(p)) == list(range(12))
    assert calls[-1] - calls[0] >= 11 / 40 * 0.9
    stats = p.stats()[1]
    assert stats.rate_wait_seconds > 0.1
    assert (stats.items_in, stats.items_out, stats.errors) == (12, 12, 0)


def test_stats_count_an_async_stage(Pipeline):
    with Pipeline(range(100)) as p:
        p.stage(square, workers=3, name="sq")
        collect(p)
    source, sq = p.stats()
    assert sq.name == "sq" and sq.workers == 3
    assert (sq.items_in, sq.items_out, sq.errors) == (100, 100, 0)
    assert sq.busy_seconds > 0 and 1 <= sq.queue_high_water <= sq.queue_maxsize


@pytest.mark.parametrize("consume", ["for", "async for", "arun"])
def test_the_first_error_stops_everything_and_cancels_running_coroutines(pipe, Pipeline, arun, consume):
    hung = pipe.Queue()  # awaited, not a threading.Event: both stages share the pipeline's loop
    cancelled = threading.Event()

    async def hang(x):
        try:
            hung.put(x)
            await asyncio.sleep(LONG * 10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return x

    async def fails(x):
        if x == 5:
            await hung.aget(timeout=LONG)  # a coroutine of the next stage is running
            raise ValueError("bad item 5")
        return x

    p = Pipeline(range(100))
    p.stage(fails, workers=2, maxsize=2)
    p.stage(hang, workers=3, maxsize=2)
    with pytest.raises(ValueError, match="bad item 5") as info:
        if consume == "for":
            collect(p)
        elif consume == "async for":
            arun(alist(p))
        else:
            arun(p.arun())
    assert "fails" in "".join(traceback.format_tb(info.value.__traceback__))
    assert cancelled.is_set()  # the coroutine waiting in another stage was cancelled, not left behind
    assert p.stats()[1].errors == 1
    assert p._loop.is_closed()


def test_a_cancelled_error_raised_by_the_function_itself_is_its_error(Pipeline):
    async def gives_up(x):
        raise asyncio.CancelledError("gave up")

    with Pipeline(range(5)) as p:
        p.stage(gives_up)
        with pytest.raises(asyncio.CancelledError, match="gave up"):
            collect(p)
    assert p.stats()[1].errors == 1


@pytest.mark.parametrize("consume", ["for", "async for"])
def test_a_token_cancels_coroutines_that_are_running(pipe, Pipeline, arun, consume):
    token = pipe.CancelToken()
    cancelled = threading.Event()

    async def hang(x):
        try:
            token.cancel()  # fires while this coroutine (and the source) are busy
            await asyncio.sleep(LONG * 10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    p = Pipeline(iter(range(3)), cancel=token)
    p.stage(hang, workers=2)
    start = time.monotonic()
    with pytest.raises(ringq.Cancelled) as info:
        if consume == "for":
            collect(p)
        else:
            arun(alist(p))
    assert time.monotonic() - start < LONG
    assert isinstance(info.value.__cause__, ringq.Cancelled)
    assert cancelled.is_set()
    assert p.stats()[1].errors == 0  # the token firing is not the function's error
    assert p._loop.is_closed()


def test_a_token_deadline_ends_a_pipeline_whose_only_waits_are_coroutines(pipe, Pipeline):
    token = pipe.CancelToken(timeout=0.2)

    async def forever(x):
        await asyncio.sleep(LONG * 10)

    # A one-item source: the reader ends, so the only waits are the coroutine and run()'s get.
    p = Pipeline([1], cancel=token)
    p.stage(forever, maxsize=1)
    with pytest.raises(ringq.Cancelled):
        Call(p.run).value(LONG)


def test_leaving_async_for_early_stops_and_joins_before_the_next_line(Pipeline, arun):
    cancelled = threading.Event()

    async def slow(x):
        try:
            await asyncio.sleep(0 if x < 3 else LONG * 10)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return x

    async def main():
        async with Pipeline(range(100)) as p:
            p.stage(slow, workers=4)
            async for _item in p:
                break
        return p

    p = arun(main())
    assert cancelled.is_set()
    assert not any(t.is_alive() for t in p._threads)
    assert p._loop.is_closed()


def test_leaving_async_for_early_hands_nothing_to_the_loops_async_generator_finalizer(Pipeline, arun):
    # Before, "async for" got an async generator, which the pipeline held only weakly:
    # "break" dropped it at a yield, so the loop's finalizer hook (sys.set_asyncgen_hooks)
    # got it and scheduled its aclose() as a task of its own, racing the block's exit;
    # when the loop stopped before that task began, the aclose() was dropped unawaited
    # (3.14: RuntimeWarning "coroutine method 'aclose' of 'Pipeline._aresults' was never
    # awaited", now and then). The hook is called at the break, every time: this fails
    # deterministically where the warning only shows up once in a while.
    finalized = []

    async def main():
        hooks = sys.get_asyncgen_hooks()  # the caller's loop's, restored when it stops

        def finalizer(agen):
            finalized.append(agen)
            if hooks.finalizer is not None:
                hooks.finalizer(agen)

        sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=finalizer)
        async with Pipeline(range(100)) as p:
            p.stage(lambda x: x, workers=2)
            async for _item in p:
                break
            gc.collect()  # where dropping is not freeing (PyPy)
        return p

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p = arun(main())  # closes the loop, without shutdown_asyncgens(), like a plain run
        gc.collect()
    assert finalized == []
    never_awaited = [w for w in caught if "never awaited" in str(w.message)]
    assert never_awaited == [], [str(w.message) for w in never_awaited]
    assert not any(t.is_alive() for t in p._threads)


def test_leaving_async_for_early_without_async_with_still_stops_the_pipeline(Pipeline, arun):
    async def main():
        p = Pipeline(itertools.count())  # endless: only stopping ends its reader
        p.stage(lambda x: x, workers=2, maxsize=2)
        async for _item in p:
            break
        gc.collect()  # where dropping is not freeing (PyPy)
        # Neither "async with" nor aclose(): the dropped iterator stops the pipeline once
        # this loop gets to it (its threads leave by themselves, nobody joins them yet).
        stopped = await p._all_exited.await_cancelled(timeout=LONG)
        await p.aclose()
        return stopped, p

    stopped, p = arun(main())
    assert stopped
    assert not any(t.is_alive() for t in p._threads)


def test_a_stage_raising_stop_async_iteration_does_not_end_async_for_silently(Pipeline, arun):
    def stops(x):
        if x == 3:
            raise StopAsyncIteration("from the stage")
        return x

    async def main():
        async with Pipeline(range(100)) as p:
            p.stage(stops, ordered=True)
            return [item async for item in p]

    with pytest.raises(RuntimeError, match="raised StopAsyncIteration") as info:
        arun(main())
    assert isinstance(info.value.__cause__, StopAsyncIteration)


def test_arun_into_a_ringq_queue_and_an_asyncio_queue(pipe, Pipeline, arun):
    async def main():
        sink = pipe.Queue(4)
        got = []

        async def drain():
            async for item in sink:
                got.append(item)

        drainer = asyncio.ensure_future(drain())
        with Pipeline(range(50)) as p:
            p.stage(square, workers=2, ordered=True)
            count = await p.arun(sink)  # 50 results through a sink of 4: arun waits on aput
        await drainer
        return count, got

    count, got = arun(main())
    assert count == 50 and got == [i * i for i in range(50)]

    async def main_asyncio_queue():
        sink = asyncio.Queue()
        with Pipeline(range(20)) as p:
            p.stage(square, ordered=True)
            count = await p.arun(sink, shutdown_sink=False)
        return count, [sink.get_nowait() for _ in range(sink.qsize())]

    assert arun(main_asyncio_queue()) == (20, [i * i for i in range(20)])


def test_run_refuses_a_sink_whose_put_is_async_before_starting(Pipeline):
    p = Pipeline(range(3))
    with pytest.raises(TypeError, match="arun"):
        p.run(asyncio.Queue())
    assert not p._started


def test_an_async_iterable_source_is_refused_when_passed(pipe):
    async def agen():
        yield 1

    with pytest.raises(TypeError, match="async iterable"):
        ringq.Pipeline(agen())


async def _coro_fn(x=None):
    return x


async def _agen_fn(x=None):
    yield x


@pytest.mark.parametrize("fn", [_coro_fn, _agen_fn, functools.partial(_coro_fn, 1)],
                         ids=["coroutine function", "async generator function", "partial"])
def test_thread_side_calls_refuse_async_functions_when_passed(fn):
    pool = ringq.BoundedExecutor(max_workers=1, max_pending=2)
    try:
        for call in (lambda: pool.submit(fn), lambda: pool.submit_nowait(fn),
                     lambda: pool.submit_call(fn), lambda: pool.map(fn, [1, 2])):
            with pytest.raises(TypeError, match="async def"):
                call()
        with pytest.raises(TypeError, match="async def"):
            asyncio.run(pool.asubmit(fn))
        assert pool._queue.qsize() == 0  # nothing was queued
    finally:
        pool.shutdown()
    with pytest.raises(TypeError, match="async def"):
        ringq.BoundedExecutor(max_workers=1, max_pending=2, initializer=fn)
    with pytest.raises(TypeError, match="async def"):
        ringq.Router(fn, {})


def test_the_pipelines_loop_runs_executor_calls_and_leaves_no_executor_thread(Pipeline):
    async def in_executor(x):
        return await asyncio.get_running_loop().run_in_executor(None, pow, x, 2)

    with Pipeline(range(20)) as p:
        p.stage(in_executor, workers=4)
        assert sorted(collect(p)) == [i * i for i in range(20)]
    # no_leaked_threads: the loop's default executor was shut down with the loop


def test_a_stage_mixing_into_a_long_chain_under_errors_never_hangs(Pipeline):
    # maxsize 1 everywhere, async and thread stages alternating, an error late in the chain.
    async def maybe_fail(x):
        if x == 144:  # item 12, squared by the first stage
            raise KeyError(x)
        await asyncio.sleep(0)
        return x

    for ordered in (False, True):
        p = Pipeline(range(1000))
        p.stage(square, workers=3, maxsize=1, ordered=ordered)
        p.stage(lambda x: x, workers=2, maxsize=1, ordered=ordered)
        p.stage(maybe_fail, workers=3, maxsize=1, ordered=ordered)
        with pytest.raises(KeyError):
            collect(p)
        p.close()


def test_on_watermark_refuses_an_async_callback_when_passed(Queue):
    q = Queue(10)
    with pytest.raises(TypeError, match="async def.*asyncio.Event"):
        q.on_watermark(0.7, 0.5, _coro_fn)
    q.put_many(range(10))  # no watermark was set: nothing is called, nothing to await
    signals = []
    q.on_watermark(0.7, 0.5, signals.append)  # a plain function is still taken
    q.get_many(10)
    q.put_many(range(7))
    assert signals == ["high"]


def test_stream_queue_refuses_async_codecs_when_passed():
    pytest.importorskip("redis")
    import ringq.redis

    for codec in ("dumps", "loads"):
        with pytest.raises(TypeError, match=rf"StreamQueue\({codec}=\).*async def"):
            ringq.redis.StreamQueue(None, "s", "g", "c", **{codec: _coro_fn})


def test_aclose_from_another_task_frees_arun_blocked_on_a_full_sink(pipe, Pipeline, arun):
    async def main():
        sink = pipe.Queue(1)  # nobody drains it: the second result waits for room
        p = Pipeline(range(100))
        p.stage(square, ordered=True)
        running = asyncio.ensure_future(p.arun(sink, shutdown_sink=False))
        while sink.qsize() < 1:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)
        assert not running.done()
        await p.aclose()
        return await running, sink.get_nowait()

    assert arun(main()) == (1, 0)


def test_close_from_another_thread_cancels_a_running_coroutine(Pipeline):
    started = threading.Event()
    cancelled = threading.Event()

    async def hang(x):
        started.set()
        try:
            await asyncio.sleep(LONG * 10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    p = Pipeline(range(10))
    p.stage(hang, workers=2)
    consumer = Call(list, p)
    assert started.wait(LONG)
    Call(p.close).value(LONG)
    assert consumer.value(LONG) == []  # close() is an early stop, not an error
    assert cancelled.is_set()
    assert p._loop.is_closed()


@pytest.mark.parametrize("workers, window", [(4, 1), (4, 2), (1, 1)])
def test_an_ordered_async_stage_with_a_window_below_its_workers_ends(Pipeline, workers, window):
    with Pipeline(range(300)) as p:
        p.stage(square, workers=workers, maxsize=2, ordered=True, window=window)
        assert collect(p) == [i * i for i in range(300)]


def test_the_token_cancels_a_running_coroutine_while_no_queue_call_waits(pipe, Pipeline):
    # The source has ended and nobody iterates: only the loop's own watch on the token
    # sees it fire, and it cancels the coroutine at once, before anyone asks for a result.
    token = pipe.CancelToken()
    started = threading.Event()
    cancelled = threading.Event()

    async def hang(x):
        started.set()
        try:
            await asyncio.sleep(LONG * 10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    p = Pipeline([1], cancel=token)
    p.stage(hang)
    results = iter(p)  # started; not iterated yet
    assert started.wait(LONG)
    token.cancel()
    assert cancelled.wait(LONG)
    with pytest.raises(ringq.Cancelled):
        Call(list, results).value(LONG)
