"""ringq.Pipeline: bounded stages, clean close, the first error stops everything.

These tests use whichever ringq.Queue is loaded (CI runs the suite once compiled
and once with RINGQ_NO_EXTENSIONS=1). Every blocking step runs with a deadline
(_helpers.Call), so a hang fails the test instead of the run.
"""
import functools
import itertools
import random
import threading
import time
import traceback

import pytest

import _helpers
import ringq
from _helpers import BLOCK_TIMEOUT, LONG, Call, wait_until


@pytest.fixture(autouse=True)
def no_leaked_threads():
    before = set(threading.enumerate())
    yield
    assert wait_until(lambda: set(threading.enumerate()) <= before, timeout=LONG), (
        f"threads left running: {set(threading.enumerate()) - before}")


def pipeline_threads():
    return [t for t in threading.enumerate() if t.name.startswith("ringq-pipeline-")]


def collect(pipeline):
    """list(pipeline), failing instead of hanging."""
    return Call(list, pipeline).value(LONG * 3)


def square(x):
    return x * x


def test_results_flow_through_every_stage():
    with ringq.Pipeline(range(1000)) as p:
        p.stage(square, workers=3, maxsize=4)
        p.stage(str, workers=2, maxsize=4)
        got = collect(p)
    assert sorted(got) == sorted(str(i * i) for i in range(1000))
    assert not pipeline_threads()


def test_a_pipeline_without_stages_passes_the_source_on():
    assert collect(ringq.Pipeline(iter("abc"))) == ["a", "b", "c"]


def test_ordered_stage_keeps_input_order_with_parallel_workers():
    rng = random.Random(7)
    delays = [rng.choice((0, 0, 0.001, 0.003)) for _ in range(300)]
    current = [0]
    peak = [0]
    lock = threading.Lock()

    def jittery(i):
        with lock:
            current[0] += 1
            peak[0] = max(peak[0], current[0])
        time.sleep(delays[i])
        with lock:
            current[0] -= 1
        return i

    with ringq.Pipeline(range(300)) as p:
        p.stage(jittery, workers=4, maxsize=8, ordered=True)
        p.stage(lambda i: i + 1, workers=3, maxsize=2, ordered=True)
        assert collect(p) == [i + 1 for i in range(300)]
    assert peak[0] > 1  # the workers did run at the same time


def test_one_slow_item_does_not_stop_the_others_in_an_ordered_stage():
    release = threading.Event()
    started = []
    lock = threading.Lock()

    def work(i):
        with lock:
            started.append(i)
        if i == 0:
            assert release.wait(LONG * 3)
        return i

    p = ringq.Pipeline(range(100))
    p.stage(work, workers=4, maxsize=1, ordered=True, window=6)
    results = iter(p)
    consumer = Call(next, results)
    # While item 0 is stuck, the other workers go on, up to the reorder window.
    assert wait_until(lambda: len(started) >= 6)
    time.sleep(0.2)
    assert 6 <= len(started) <= 6 + 1, started  # window batches of one item (+ one being taken)
    assert not consumer.returned.is_set()
    release.set()
    assert consumer.value() == 0
    assert Call(list, results).value(LONG * 3) == list(range(1, 100))
    p.close()


def test_skip_filters_and_none_is_a_value():
    def keep_odd(x):
        return x if x % 2 else ringq.SKIP

    def none_for_threes(x):
        return None if x % 3 == 0 else x

    with ringq.Pipeline(range(20)) as p:
        p.stage(keep_odd, workers=2, ordered=True)
        p.stage(none_for_threes, ordered=True)
        assert collect(p) == [None if x % 3 == 0 else x for x in range(20) if x % 2]
    assert repr(ringq.SKIP) == "ringq.SKIP"


def test_generator_stages_yield_many_or_none():
    def explode(n):
        yield from range(n)

    def only_big(x):
        if x >= 3:
            yield x

    with ringq.Pipeline([1, 2, 3, 4]) as p:
        p.stage(explode, workers=2, ordered=True)
        assert collect(p) == [0, 0, 1, 0, 1, 2, 0, 1, 2, 3]
    with ringq.Pipeline(range(6)) as p:
        p.stage(only_big, workers=3, maxsize=1)
        assert sorted(collect(p)) == [3, 4, 5]
    # Also through functools.partial, and many outputs pass the bounded queue.
    with ringq.Pipeline([1000]) as p:
        p.stage(functools.partial(explode), maxsize=1)
        p.stage(square, maxsize=1)
        assert sorted(collect(p)) == [i * i for i in range(1000)]


def broken_stage(x):
    if x >= 5:
        raise ValueError(f"bad item {x}")
    return x


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_the_first_error_is_raised_with_its_traceback_and_stops_everything(position):
    stages = [square, square, square]
    stages[["first", "middle", "last"].index(position)] = broken_stage
    pulled = itertools.count()

    def endless():
        for i in itertools.count():
            next(pulled)
            yield i

    p = ringq.Pipeline(endless() if position == "first" else range(5, 10**9))
    for fn in stages:
        p.stage(fn, workers=2, maxsize=1)
    call = Call(list, p)
    call.wait(LONG * 3)
    assert isinstance(call.exc, ValueError), call.exc
    assert "bad item" in str(call.exc)
    tb = "".join(traceback.format_tb(call.exc.__traceback__))
    assert "broken_stage" in tb
    assert not pipeline_threads()  # joined before raising
    assert p.stats()[1 + stages.index(broken_stage)].errors == 1


def test_an_error_while_reading_the_source_stops_everything():
    def source():
        yield 1
        yield 2
        raise OSError("disk gone")

    p = ringq.Pipeline(source())
    p.stage(square, workers=2, maxsize=1)
    p.stage(square, workers=2, maxsize=1)
    call = Call(p.run)
    call.wait(LONG * 3)
    assert isinstance(call.exc, OSError) and "disk gone" in str(call.exc)
    assert "source" in "".join(traceback.format_tb(call.exc.__traceback__))
    assert p.stats()[0].errors == 1
    assert not pipeline_threads()


def test_an_error_in_the_consumers_loop_stops_the_pipeline():
    p = ringq.Pipeline(itertools.count())
    p.stage(square, workers=3, maxsize=1)

    def consume():
        with p:
            for x in p:
                if x > 100:
                    raise KeyError("enough")

    call = Call(consume)
    call.wait(LONG * 3)
    assert isinstance(call.exc, KeyError)
    assert not pipeline_threads()


def test_leaving_the_loop_early_stops_and_joins_every_thread():
    p = ringq.Pipeline(itertools.count())
    p.stage(square, workers=2, maxsize=1)
    p.stage(square, workers=2, maxsize=1)

    def take_three():
        out = []
        for x in p:
            out.append(x)
            if len(out) == 3:
                break
        return out

    got = Call(take_three).value(LONG * 3)
    assert len(got) == 3 and all(round(x ** 0.25) ** 4 == x for x in got)
    assert wait_until(lambda: not pipeline_threads())


def test_backpressure_reaches_the_source():
    pulled = [0]

    def endless():
        for i in itertools.count():
            pulled[0] = i + 1
            yield i

    p = ringq.Pipeline(endless())
    p.stage(square, workers=2, maxsize=3)
    p.stage(square, workers=1, maxsize=2)
    results = iter(p)
    assert Call(next, results).value() == 0
    time.sleep(0.3)  # nobody takes results: everything fills up, then stops
    # queues 3 + 2 + results 2, plus what the threads hold (reader 1, workers 1 each, at
    # most their queue's bound in a batch) plus the one taken: far from endless.
    assert pulled[0] <= 3 + 2 + 2 + 1 + 2 * 3 + 2 + 1, pulled[0]
    before = pulled[0]
    time.sleep(0.2)
    assert pulled[0] == before
    results.close()
    assert wait_until(lambda: not pipeline_threads())


def test_clean_close_drains_every_stage():
    # The seed's shape: the producer closes the source queue; every item comes out.
    source = ringq.Queue(4)

    def produce():
        for i in range(500):
            source.put(i)
        source.shutdown()

    producer = threading.Thread(target=produce)
    producer.start()
    with ringq.Pipeline(source) as p:
        p.stage(square, workers=3, maxsize=1)
        p.stage(lambda x: x + 1, workers=2, maxsize=1)
        got = collect(p)
    producer.join(LONG)
    assert sorted(got) == sorted(i * i + 1 for i in range(500))
    stats = p.stats()
    assert [s.items_out for s in stats] == [500, 500, 500]
    assert [s.items_in for s in stats] == [500, 500, 500]


def test_run_into_a_sink_queue_and_shut_it_down():
    sink = ringq.Queue(2)
    received = []
    reader = Call(lambda: received.extend(sink))  # iterates until the sink shuts down
    p = ringq.Pipeline(range(100))
    p.stage(square, workers=2, maxsize=1)
    assert Call(p.run, sink).value(LONG * 3) == 100
    reader.wait()
    assert sorted(received) == [i * i for i in range(100)]
    assert sink.is_shutdown


def test_an_error_still_shuts_the_sink_down():
    sink = ringq.Queue(100)
    p = ringq.Pipeline(range(100)).stage(broken_stage, maxsize=1)
    with pytest.raises(ValueError):
        Call(p.run, sink).value(LONG * 3)
    assert sink.is_shutdown


def test_stopping_early_shuts_a_queue_source_down():
    source = ringq.Queue(10)  # nobody ever puts: the reader waits in get()
    p = ringq.Pipeline(source).stage(square)
    results = iter(p)
    consumer = Call(next, results, None)
    time.sleep(0.1)
    p.close()  # from another thread: the reader must wake up, no thread may hang
    consumer.wait()
    assert source.is_shutdown
    assert wait_until(lambda: not pipeline_threads())


def test_stats_show_the_bottleneck():
    def slow(x):
        time.sleep(0.002)
        return x

    with ringq.Pipeline(range(100)) as p:
        p.stage(square, workers=1, maxsize=5, name="fast")
        p.stage(slow, workers=1, maxsize=5)
        assert len(collect(p)) == 100
    source, fast, slowest = p.stats()
    assert isinstance(fast, ringq.StageStats) and fast._fields[0] == "name"
    assert (source.name, fast.name, slowest.name) == ("source", "fast", "slow")
    assert (fast.items_in, fast.items_out, fast.errors) == (100, 100, 0)
    assert slowest.busy_seconds >= 100 * 0.002 * 0.9
    assert slowest.busy_seconds > fast.busy_seconds
    # The fast stage waited for room in front of the slow one.
    assert fast.put_wait_seconds > fast.busy_seconds
    assert fast.queue_maxsize == 5 and 1 <= fast.queue_high_water <= 5
    assert source.queue_high_water <= 5


def test_rate_limits_a_stage():
    p = ringq.Pipeline(range(11)).stage(square, workers=3, rate=50)
    start = time.monotonic()
    assert sorted(collect(p)) == [i * i for i in range(11)]
    elapsed = time.monotonic() - start
    assert elapsed >= 10 / 50 * 0.95  # the first call is free, then one every 20 ms
    assert p.stats()[1].rate_wait_seconds > 0


def test_a_slow_rate_does_not_delay_stopping():
    waiting = threading.Event()

    def fail_when_the_next_stage_waits(x):
        if x == 10:
            assert waiting.wait(LONG)
            time.sleep(0.05)  # it is now inside its 100 s wait for a token
            raise ValueError("stop")
        return x

    def note(x):
        waiting.set()
        return x

    p = ringq.Pipeline([0, 1, 10]).stage(fail_when_the_next_stage_waits, maxsize=1)
    p.stage(note, rate=ringq.RateLimiter(0.01, burst=1), maxsize=1)  # a second token: in 100 s
    start = time.monotonic()
    with pytest.raises(ValueError):
        Call(list, p).value(LONG * 3)
    assert time.monotonic() - start < LONG
    assert not pipeline_threads()


def test_runs_once_and_stages_come_first():
    p = ringq.Pipeline([1]).stage(square)
    assert collect(p) == [1]
    with pytest.raises(RuntimeError):
        iter(p)
    with pytest.raises(RuntimeError):
        p.stage(square)
    with pytest.raises(ValueError):
        ringq.Pipeline([]).stage(square, workers=0)
    with pytest.raises(TypeError):
        ringq.Pipeline([]).stage(42)


@pytest.mark.parametrize("ordered", [False, True])
def test_maxsize_one_everywhere_under_errors_never_hangs(ordered):
    for attempt in range(5):
        fail_at = (40 * attempt + 3) ** 2  # after the first stage squared it

        def maybe_fail(x, fail_at=fail_at):
            if x == fail_at:
                raise RuntimeError(f"failed at {x}")
            return x

        p = ringq.Pipeline(range(200))
        p.stage(square, workers=3, maxsize=1, ordered=ordered)
        p.stage(maybe_fail, workers=2, maxsize=1, ordered=ordered)
        p.stage(str, workers=3, maxsize=1, ordered=ordered)
        call = Call(list, p)
        call.wait(LONG * 3)
        assert isinstance(call.exc, RuntimeError) and str(call.exc) == f"failed at {fail_at}"
        assert not pipeline_threads()


def test_items_are_passed_on_without_waiting_for_a_batch():
    # From a queue: what it holds goes on at once, even though more may come later.
    source = ringq.Queue()
    source.put_many([1, 2, 3])
    p = ringq.Pipeline(source).stage(square)
    results = iter(p)
    assert sorted(Call(next, results).value() for _ in range(3)) == [1, 4, 9]
    source.put(4)
    assert Call(next, results).value() == 16
    source.shutdown()
    assert Call(list, results).value() == []
    # From a generator that stalls: the items before the stall come out during it.
    go_on = threading.Event()

    def stalling():
        yield 1
        yield 2
        assert go_on.wait(LONG)
        yield 3

    p = ringq.Pipeline(stalling()).stage(square, maxsize=8)
    results = iter(p)
    assert [Call(next, results).value() for _ in range(2)] == [1, 4]
    go_on.set()
    assert Call(list, results).value() == [9]


def test_sequence_sources_of_any_size_keep_their_order():
    data = list(range(1000))
    for source in (data, tuple(data), range(1000), dict.fromkeys(data)):
        with ringq.Pipeline(source) as p:
            p.stage(square, workers=3, maxsize=4, ordered=True)
            assert collect(p) == [x * x for x in data]


class DuckQueue:
    """Only the Queue API a pipeline relies on (no get_many): put, get, iteration, shutdown."""

    def __init__(self, maxsize=0):
        self._q = ringq.Queue(maxsize)
        self.shutdown_calls = 0

    def put(self, item):
        self._q.put(item)

    def get(self):
        return self._q.get()

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self._q.get()
        except ringq.ShutDown:
            raise StopIteration from None

    def shutdown(self):
        self.shutdown_calls += 1
        self._q.shutdown()


def test_duck_typed_queue_source_and_sink():
    source, sink = DuckQueue(), DuckQueue(4)
    for i in range(50):
        source.put(i)
    source.shutdown()
    received = []
    reader = Call(lambda: received.extend(sink))
    p = ringq.Pipeline(source).stage(square, workers=2, maxsize=2)
    assert Call(p.run, sink).value(LONG * 3) == 50
    reader.wait()
    assert sorted(received) == [i * i for i in range(50)]
    assert sink.shutdown_calls == 1


# --- cancel tokens ----------------------------------------------------------------------


def queue_waiters(queue):
    stats = queue.statistics()
    return stats.waiting_putters, stats.waiting_getters


def test_a_token_stops_a_pipeline_with_maxsize_1_everywhere_and_a_blocked_slow_stage():
    token = ringq.CancelToken()
    slow_running = threading.Event()

    def slow(x):
        slow_running.set()
        token.wait(BLOCK_TIMEOUT)  # a long call that reads the token, as documented
        return x

    p = ringq.Pipeline(itertools.count(), cancel=token)
    p.stage(square, workers=2, maxsize=1)
    p.stage(slow, maxsize=1)
    p.stage(str, workers=2, maxsize=1, ordered=True)
    call = Call(list, p)
    assert slow_running.wait(LONG)
    first, second = p._stages[0].inbox, p._stages[1].inbox
    # Blocked everywhere: the reader on the full first queue, the first stage's
    # workers on the slow stage's full queue, the consumer on the empty results.
    assert wait_until(lambda: queue_waiters(first)[0] == 1 and queue_waiters(second)[0] >= 1
                      and queue_waiters(p._outbox)[1] == 1, timeout=LONG)
    read = p.stats()[0].items_in
    assert call.thread.is_alive() and len(pipeline_threads()) == 1 + 2 + 1 + 2
    start = time.monotonic()
    token.cancel()
    call.wait(2.0)
    assert time.monotonic() - start < 2.0
    assert isinstance(call.exc, ringq.Cancelled), call.exc
    assert "cancel token fired" in str(call.exc)
    assert isinstance(call.exc.__cause__, ringq.Cancelled)
    assert not pipeline_threads()
    stats = p.stats()
    assert stats[0].items_in == read  # the source was not read after the token fired
    assert all(s.errors == 0 for s in stats)  # cancelling is nobody's error


def test_a_token_wakes_every_stage_while_the_consumer_is_away():
    token = ringq.CancelToken()
    p = ringq.Pipeline(range(10 ** 9), cancel=token)
    p.stage(square, workers=2, maxsize=1)
    p.stage(str, maxsize=1, ordered=True)
    results = iter(p)
    assert next(results) == "0"
    # Nobody takes results now: every queue fills up and every thread blocks on a put.
    assert wait_until(lambda: p._outbox.full() and queue_waiters(p._outbox)[0] == 1
                      and queue_waiters(p._stages[0].inbox)[0] == 1, timeout=LONG)
    token.cancel()
    # The threads leave by themselves: the token woke their puts, not the consumer.
    assert wait_until(lambda: not pipeline_threads(), timeout=2.0), pipeline_threads()
    with pytest.raises(ringq.Cancelled, match="cancel token fired"):
        next(results)


def test_a_token_deadline_ends_run():
    p = ringq.Pipeline(itertools.count(), cancel=ringq.CancelToken(timeout=0.3))
    p.stage(lambda x: time.sleep(0.005) or x, maxsize=1)
    start = time.monotonic()
    call = Call(p.run)
    call.wait(LONG)
    assert 0.3 * 0.9 <= time.monotonic() - start < 0.3 + 2.0
    assert isinstance(call.exc, ringq.Cancelled)
    assert "deadline has passed" in str(call.exc)
    assert not pipeline_threads()


def test_a_parent_token_stops_pipelines_on_its_children_and_a_child_only_its_own():
    parent = ringq.CancelToken()
    child_a, child_b, child_c = parent.child(), parent.child(), parent.child()
    pipes = []
    for child in (child_a, child_b, child_c):
        p = ringq.Pipeline(itertools.count(), cancel=child)
        p.stage(square, maxsize=1)
        pipes.append((p, Call(p.run)))
    assert wait_until(lambda: all(p.stats()[1].items_out > 0 for p, _ in pipes), timeout=LONG)
    child_a.cancel()
    assert isinstance(pipes[0][1].wait(2.0).exc, ringq.Cancelled)
    # The others still run: a child's cancel leaves the parent (and its siblings) alone.
    assert not parent.cancelled
    assert pipes[1][1].thread.is_alive() and pipes[2][1].thread.is_alive()
    parent.cancel()
    for _, call in pipes[1:]:
        assert isinstance(call.wait(2.0).exc, ringq.Cancelled)
    assert not pipeline_threads()


def test_a_token_that_fires_after_the_pipeline_drained_changes_nothing():
    token = ringq.CancelToken()
    with ringq.Pipeline(range(100), cancel=token) as p:
        p.stage(square, workers=2, maxsize=1)
        assert sorted(collect(p)) == [i * i for i in range(100)]
        token.cancel()
    assert [s.items_out for s in p.stats()] == [100, 100]
    assert not pipeline_threads()


def test_a_token_that_already_fired_stops_the_pipeline_at_once():
    token = ringq.CancelToken()
    token.cancel()
    read = []

    def source():
        for i in itertools.count():
            read.append(i)
            yield i

    p = ringq.Pipeline(source(), cancel=token)
    p.stage(square)
    with pytest.raises(ringq.Cancelled):
        collect(p)
    assert len(read) <= 1  # at most the item in the reader's hand when its put refused it
    assert not pipeline_threads()


def test_a_stage_error_before_the_token_wins():
    token = ringq.CancelToken()

    def boom(x):
        raise KeyError(x)

    p = ringq.Pipeline(range(10), cancel=token)
    p.stage(boom)
    with pytest.raises(KeyError):
        collect(p)
    token.cancel()  # afterwards: nothing changes


def test_cancel_must_be_a_token():
    with pytest.raises(TypeError, match="CancelToken"):
        ringq.Pipeline([], cancel=threading.Event())


# --- ends, sinks and sources that must not hang or swallow (issue 17) ------------------


@pytest.mark.parametrize("workers,window", [(2, 1), (3, 1), (4, 3), (8, 7)])
def test_an_ordered_stage_with_a_window_below_its_workers_ends(workers, window):
    # A worker left on the clean end holding a window token, and the last worker
    # waited for that token for ever: every result came out, then list(p) never returned.
    with ringq.Pipeline(range(300)) as p:
        p.stage(square, workers=workers, window=window, maxsize=4, ordered=True)
        assert collect(p) == [i * i for i in range(300)]
    assert not pipeline_threads()


def blocked_on_full(sink):
    return wait_until(lambda: sink.full() and queue_waiters(sink)[0] == 1, timeout=LONG)


def test_close_from_another_thread_frees_run_blocked_on_a_full_sink():
    sink = ringq.Queue(1)
    p = ringq.Pipeline(range(100)).stage(square)
    running = Call(p.run, sink)
    try:
        assert blocked_on_full(sink)
        Call(p.close).value(LONG)
        assert running.value(LONG) == 1  # close() stops it without an error
    finally:
        sink.shutdown(immediate=True)  # frees it if the test failed
        running.wait(LONG)
    assert sink.is_shutdown
    assert not pipeline_threads()


def test_a_token_frees_run_blocked_on_a_full_sink():
    token = ringq.CancelToken()
    sink = ringq.Queue(1)
    p = ringq.Pipeline(range(100), cancel=token).stage(square)
    running = Call(p.run, sink)
    try:
        assert blocked_on_full(sink)
        token.cancel()
        running.wait(LONG)
    finally:
        sink.shutdown(immediate=True)
        running.wait(LONG)
    assert isinstance(running.exc, ringq.Cancelled), running.exc
    assert "cancel token fired" in str(running.exc)
    assert not pipeline_threads()


def test_run_passes_cancel_only_to_a_sink_whose_put_takes_it():
    source, sink = DuckQueue(), DuckQueue(100)  # put(item): no cancel=
    for i in range(20):
        source.put(i)
    source.shutdown()
    p = ringq.Pipeline(source, cancel=ringq.CancelToken()).stage(square)
    assert Call(p.run, sink).value(LONG) == 20
    assert sorted(sink) == [i * i for i in range(20)]


def test_leaving_a_pipeline_over_a_subscription_does_not_wait_for_the_next_publish():
    news = ringq.Broadcast(maxsize=10)
    feed = news.subscribe()

    def first_result():
        with ringq.Pipeline(feed) as p:
            p.stage(square)
            for x in p:
                return x

    news.publish(3)
    try:
        assert Call(first_result).value(LONG) == 9
        assert feed.is_shutdown  # the pipeline shut its source down, as it does a queue's
        assert news.subscribers == 0
        news.publish(4)  # nobody is held back by the subscription left behind
    finally:
        news.shutdown()  # frees the reader if the test failed


def test_a_subscriptions_shutdown_keeps_the_unread_items_unless_immediate():
    news = ringq.Broadcast(maxsize=2)
    feed, other, gone = news.subscribe(), news.subscribe(), news.subscribe()
    news.publish(1)
    news.publish(2)
    assert other.get() == 1
    feed.shutdown()
    gone.shutdown(immediate=True)
    assert news.subscribers == 1
    news.publish_nowait(3)  # the full queue left behind holds nobody back
    assert list(feed) == [1, 2] and feed.is_shutdown
    assert list(gone) == []
    assert other.get_many(5) == [2, 3]
    feed.shutdown()  # again: nothing happens
    feed.unsubscribe()
    news.shutdown()


def test_a_producers_error_is_raised_by_the_pipeline(Queue):
    # `for x in q` raises ShutDown chained to the exception a producer left with;
    # a pipeline reading q once said "ended cleanly" with the 10 results instead.
    for get_many in (True, False):
        q = Queue(1000)
        producer = q.producer()

        def produce(q, producer):
            with producer:
                for i in range(10):
                    q.put(i)
                raise OSError("disk gone")

        Call(produce, q, producer).wait()
        source = q if get_many else iter(q)
        with ringq.Pipeline(source) as p:
            p.stage(square)
            with pytest.raises(ringq.ShutDown) as info:
                collect(p)
        assert isinstance(info.value.__cause__, OSError), info.value.__cause__
        assert p.stats()[0].errors == 1


def test_a_producers_error_ends_run(Queue):
    q = Queue()
    with q.producer():
        q.put(1)
    assert ringq.Pipeline(q).stage(square).run() == 1  # a clean end stays clean
    q = Queue()
    with pytest.raises(KeyError):
        with q.producer():
            q.put(1)
            raise KeyError("late")
    with pytest.raises(ringq.ShutDown) as info:
        Call(ringq.Pipeline(q).stage(square).run).value(LONG)
    assert isinstance(info.value.__cause__, KeyError)


def test_a_generator_stages_busy_time_leaves_out_its_put_wait():
    def many(n):
        yield from range(n)

    with ringq.Pipeline([300]) as p:
        p.stage(many, maxsize=1)
        for _ in p:
            time.sleep(0.002)  # a slow consumer: the stage waits to put
    stage = p.stats()[1]
    assert stage.items_out == 300
    assert stage.put_wait_seconds > 0.2
    assert stage.busy_seconds < stage.put_wait_seconds / 4, stage


def stops(x):
    raise StopIteration(f"no more after {x}")


@pytest.mark.parametrize("how", ["iterate", "run"])
def test_a_stage_raising_stop_iteration_says_so(how):
    p = ringq.Pipeline(range(3)).stage(stops)
    with pytest.raises(RuntimeError, match="stage 'stops' raised StopIteration") as info:
        if how == "iterate":
            collect(p)
        else:
            Call(p.run).value(LONG)
    assert "generator raised" not in str(info.value)
    cause = info.value.__cause__
    assert isinstance(cause, StopIteration) and "no more after" in str(cause)
    assert "stops" in "".join(traceback.format_tb(cause.__traceback__))
    assert not pipeline_threads()


def test_the_graceful_stop_recipe_of_the_docs_drops_nothing(impl):
    # docs/api.md, Pipeline: "A token stops, it does not drain." Run its example as written.
    import os
    import re
    import textwrap

    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "api.md")
    with open(path, encoding="utf-8") as f:
        doc = f.read()
    section = doc[doc.index("**A token stops, it does not drain.**"):]
    code = textwrap.dedent(re.search(r"```python\n(.*?)\n *```", section, re.S).group(1))
    out = _helpers.check_child(impl, code, timeout=120)
    assert re.fullmatch(r"[1-9]\d* lines, none dropped\n", out), out
