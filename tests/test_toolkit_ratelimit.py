"""ringq.RateLimiter: a token bucket without a polling loop.

Every test runs on both implementations of the bucket the limiter keeps its state in
(``_queue_c.TokenBucket`` and the twin's ``_queue_py.bucket.TokenBucket``).
"""
import threading
import time

import pytest

import ringq
import ringq.ratelimit
from _helpers import LONG, Call, check_child, cpython_only

GC_STEPS = 60


@pytest.fixture(autouse=True)
def bucket_impl(qmod, monkeypatch):
    """Limiters made in the test keep their state in *qmod*'s TokenBucket."""
    monkeypatch.setattr(ringq.ratelimit, "TokenBucket", qmod.TokenBucket)
    return qmod.TokenBucket


def threads_lock(limiter):
    """The lock a thread inside acquire() holds: the twin bucket's own, or the one that
    threads queue on in front of the core's bucket (which has none: each step is atomic)."""
    return limiter._bucket._lock if limiter._bucket.LOCK_CONVOYS else limiter._threads


def test_a_full_bucket_gives_burst_tokens_at_once_then_one_per_interval():
    limiter = ringq.RateLimiter(rate=20, burst=3)
    start = time.monotonic()
    for _ in range(3):
        assert limiter.acquire()
    assert time.monotonic() - start < 0.04  # the burst did not wait
    assert limiter.acquire(timeout=0) is False  # empty now, and nothing is taken
    assert limiter.acquire()  # waits for the next token: 1/20 s
    assert time.monotonic() - start >= 0.05 * 0.9


def test_steady_rate_over_threads():
    limiter = ringq.RateLimiter(rate=100, burst=1)
    counts = [0] * 4

    def take(i):
        for _ in range(10):
            with limiter:
                counts[i] += 1

    start = time.monotonic()
    calls = [Call(take, i) for i in range(4)]
    for call in calls:
        call.value(LONG)
    elapsed = time.monotonic() - start
    assert counts == [10] * 4
    assert elapsed >= 39 / 100 * 0.95  # 40 tokens: the first free, then one each 10 ms


def test_one_sleep_per_wait_no_polling(monkeypatch):
    sleeps = []
    real_sleep = time.sleep
    monkeypatch.setattr(ringq.ratelimit.time, "sleep", lambda s: (sleeps.append(s), real_sleep(s)))
    limiter = ringq.RateLimiter(rate=10, burst=1)
    limiter.acquire()
    limiter.acquire()
    limiter.acquire()
    assert len(sleeps) == 2  # the first token was there; each later one: exactly one sleep
    assert all(0.05 < s <= 0.1 + 1e-6 for s in sleeps), sleeps


def test_timeout_that_ends_before_the_token_returns_false_at_once():
    limiter = ringq.RateLimiter(rate=1, burst=1)
    assert limiter.acquire()
    start = time.monotonic()
    assert limiter.acquire(timeout=0.3) is False  # the token is ~1 s away
    assert time.monotonic() - start < 0.2
    assert limiter.acquire(blocking=False) is False
    assert limiter.try_acquire() is False


def test_timeout_long_enough_waits_for_the_token():
    limiter = ringq.RateLimiter(rate=10, burst=1)
    limiter.acquire()
    assert limiter.acquire(timeout=1.0) is True


def test_validation():
    limiter = ringq.RateLimiter(5)
    with pytest.raises(ValueError):
        limiter.acquire(timeout=-1)
    with pytest.raises(ValueError):
        limiter.acquire(timeout=float("nan"))
    with pytest.raises(TypeError):
        limiter.acquire(timeout="1")
    for bad_rate in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            ringq.RateLimiter(bad_rate)
    with pytest.raises(ValueError):
        ringq.RateLimiter(1, burst=0)
    with pytest.raises(TypeError):
        ringq.RateLimiter(1, burst=1.5)
    assert (limiter.rate, limiter.burst) == (5.0, 1)
    assert "rate=5/s" in repr(limiter)


def test_waiters_are_served_in_call_order():
    limiter = ringq.RateLimiter(rate=20, burst=1)
    limiter.acquire()
    order = []
    threads = []
    for i in range(3):
        t = threading.Thread(target=lambda i=i: (limiter.acquire(), order.append(i)))
        t.start()
        threads.append(t)
        time.sleep(0.02)  # each reserves its token before the next thread starts
    for t in threads:
        t.join(LONG)
    assert order == [0, 1, 2]


# --- cancel tokens ----------------------------------------------------------------------


def test_acquire_with_a_token_that_does_not_fire_takes_a_token():
    limiter = ringq.RateLimiter(rate=50, burst=1)
    token = ringq.CancelToken()
    assert limiter.acquire(cancel=token)
    start = time.monotonic()
    assert limiter.acquire(cancel=token)  # waited its interval on the token
    assert time.monotonic() - start >= 0.02 * 0.9
    assert limiter.acquire(timeout=0, cancel=token) is False


def test_a_token_firing_ends_the_wait_promptly():
    limiter = ringq.RateLimiter(rate=0.05, burst=1)  # the next token is 20 s away
    assert limiter.acquire()
    token = ringq.CancelToken()
    call = Call(limiter.acquire, cancel=token)
    time.sleep(0.15)
    assert call.thread.is_alive()  # waiting for its token
    start = time.monotonic()
    token.cancel()
    call.wait(2.0)
    assert time.monotonic() - start < 2.0
    assert isinstance(call.exc, ringq.Cancelled)
    assert str(call.exc) == "the cancel token was cancelled"


def test_a_fired_token_takes_nothing_and_a_deadline_raises():
    limiter = ringq.RateLimiter(rate=0.05, burst=1)
    fired = ringq.CancelToken()
    fired.cancel()
    with pytest.raises(ringq.Cancelled):
        limiter.acquire(cancel=fired)
    assert limiter.try_acquire()  # the bucket's token was still there
    start = time.monotonic()
    with pytest.raises(ringq.Cancelled, match="deadline has passed"):
        limiter.acquire(cancel=ringq.CancelToken(timeout=0.2))
    assert 0.2 * 0.9 <= time.monotonic() - start < 0.2 + 2.0
    parent = ringq.CancelToken()
    call = Call(limiter.acquire, cancel=parent.child())
    time.sleep(0.1)
    assert call.thread.is_alive()
    parent.cancel()
    assert isinstance(call.wait(2.0).exc, ringq.Cancelled)
    with pytest.raises(TypeError, match="CancelToken"):
        limiter.acquire(cancel=threading.Event())


@pytest.mark.parametrize("bad_rate", ["10", b"10", True, False, None, [10], 1j])
def test_rate_must_be_a_real_number_not_a_str_or_a_bool(bad_rate):
    # "10" was converted by float() and True counted as 1.0 a second: both were accepted.
    with pytest.raises(TypeError, match=r"rate must be a real number .*, not '"
                       + type(bad_rate).__name__ + "'"):
        ringq.RateLimiter(bad_rate)


def test_rate_accepts_any_real_number():
    import fractions
    import numbers

    class Rate:  # a registered numbers.Real, as numpy's float64 is
        def __float__(self):
            return 4.0

    numbers.Real.register(Rate)
    for rate, expected in [(3, 3.0), (2.5, 2.5), (fractions.Fraction(1, 2), 0.5), (Rate(), 4.0)]:
        assert ringq.RateLimiter(rate).rate == expected


# --- a wait cut short gives its token back ------------------------------------------------


def test_a_cancelled_acquire_gives_its_token_back():
    limiter = ringq.RateLimiter(rate=1, burst=1)  # a token each second
    assert limiter.acquire()
    token = ringq.CancelToken()
    call = Call(limiter.acquire, cancel=token)  # reserves the token due in 1 s
    time.sleep(0.05)
    token.cancel()
    assert isinstance(call.wait(LONG).exc, ringq.Cancelled)
    # Given back, the next caller has it (~0.95 s away); kept, the next one is 1.95 s away.
    assert limiter.acquire(timeout=1.5) is True


# --- asyncio: aacquire, async with (issue 20, section 1) ---------------------------------
import asyncio  # noqa: E402

try:
    import uvloop
except ImportError:  # not on Windows or PyPy
    uvloop = None


@pytest.fixture(params=["asyncio", "uvloop"])
def new_loop(request):
    if request.param == "uvloop":
        if uvloop is None:
            pytest.skip("uvloop is not installed")
        return uvloop.new_event_loop
    return asyncio.new_event_loop


@pytest.fixture
def arun(new_loop):
    def run(coro, timeout=LONG * 3):
        loop = new_loop()
        try:
            return loop.run_until_complete(asyncio.wait_for(coro, timeout))
        finally:
            loop.close()

    return run


class Ticker:
    """A task that ticks every 5 ms: proof that the loop kept running."""

    def __init__(self):
        self.ticks = 0
        self.task = asyncio.ensure_future(self._run())

    async def _run(self):
        while True:
            await asyncio.sleep(0.005)
            self.ticks += 1

    def stop(self):
        self.task.cancel()


def test_aacquire_and_async_with_wait_on_the_loop(arun):
    async def main():
        created = time.monotonic()  # the bucket's tokens are due from this moment on
        limiter = ringq.RateLimiter(rate=10, burst=2)
        ticker = Ticker()
        assert await limiter.aacquire() is True
        async with limiter as same:  # the burst's second token: no wait
            assert same is limiter
        assert await limiter.aacquire(timeout=0) is False  # empty, and nothing taken
        assert await limiter.aacquire() is True  # due 0.1 s after creation, on the loop's timer
        assert time.monotonic() - created >= 0.1
        assert await limiter.aacquire(3) is True  # n tokens: the last is due at 0.4 s
        assert time.monotonic() - created >= 0.4
        assert ticker.ticks >= 3, "the loop did not run while aacquire waited"
        ticker.stop()

    arun(main())


def test_aacquire_never_waits_on_the_thread_lock(arun):
    # Another thread holds the threads' lock (as a thread inside acquire() for a few
    # steps, descheduled by the GIL, would). The loop must go on meanwhile; over the
    # core's bucket, which the loop takes from without that lock, the task is done too.
    limiter = ringq.RateLimiter(rate=100, burst=1)
    held, release, dropped = threading.Event(), threading.Event(), threading.Event()
    lock = threads_lock(limiter)
    convoys = limiter._bucket.LOCK_CONVOYS

    def hold():
        with lock:
            held.set()
            release.wait(2.0)  # bounded: a blocking aacquire fails the test, not the run
        dropped.set()

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(LONG)

    async def main():
        ticker = Ticker()
        task = asyncio.ensure_future(limiter.aacquire())
        while ticker.ticks < 5 and not dropped.is_set():
            await asyncio.sleep(0.005)
        ran_while_held = ticker.ticks >= 5 and not dropped.is_set() and task.done() is not convoys
        release.set()
        assert await task is True
        ticker.stop()
        return ran_while_held

    ran_while_held = arun(main())
    holder.join(LONG)
    assert ran_while_held, "the loop was blocked on the limiter's thread lock"


def test_aacquire_fast_path_keeps_the_bucket(arun):
    # aacquire() with no arguments takes a due token without the general reservation:
    # it must hand out exactly the burst at once, then wait for the rate, and see tokens
    # given back by a cancelled wait (which the fast path leaves to the general one).
    async def main():
        limiter = ringq.RateLimiter(rate=20, burst=3)
        start = time.monotonic()
        for _ in range(3):
            assert await limiter.aacquire() is True
        assert time.monotonic() - start < 0.05  # the burst: no wait
        assert limiter.try_acquire() is False  # and no more than the burst
        waiter = asyncio.ensure_future(limiter.aacquire())  # due in 1/20 s
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert await limiter.aacquire() is True  # the token given back, or the next one
        assert time.monotonic() - start >= 0.04  # not before its time
        assert limiter.try_acquire() is False

    arun(main())


def test_aacquire_is_not_starved_by_threads_hammering_the_limiter(arun):
    # 8 threads call acquire() nonstop on a limiter whose rate never binds: a blocked
    # thread takes the lock when it is released and then waits for the GIL holding it,
    # so the loop's tries of the lock almost never succeed. aacquire starved (10 s and
    # more per call); it must get its turn like a thread.
    limiter = ringq.RateLimiter(rate=1e9, burst=1000)
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            limiter.acquire()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()

    async def main():
        ticker = Ticker()
        for _ in range(20):
            assert await limiter.aacquire() is True
        ticker.stop()

    try:
        arun(main())  # arun bounds it: LONG * 3 at most
    finally:
        stop.set()
        for t in threads:
            t.join(LONG)


def test_aacquire_cancelled_while_a_thread_reserves_gives_the_tokens_back(arun):
    # The lock is held (as by a hammering thread), so aacquire hands the reservation to
    # a worker thread; the task is cancelled meanwhile. Once the lock is free the
    # thread reserves, and that token must come back: the bucket is as before.
    limiter = ringq.RateLimiter(rate=1, burst=1)  # one token, then one a second
    held, release = threading.Event(), threading.Event()
    if not limiter._bucket.LOCK_CONVOYS:
        pytest.skip("the core's bucket never hands a reservation to a thread: a loop's step never waits")
    lock = threads_lock(limiter)

    def hold():
        with lock:
            held.set()
            release.wait(LONG)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(LONG)

    async def main():
        task = asyncio.ensure_future(limiter.aacquire())
        for _ in range(50):  # past the tries of the lock: the thread now waits for it
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        await asyncio.sleep(0.2)  # the thread reserves, sees the task gone, gives back

    try:
        arun(main())
    finally:
        release.set()
        holder.join(LONG)
    assert limiter.try_acquire() is True  # the burst's token is still there


@pytest.mark.parametrize("how", ["token", "task.cancel", "deadline"])
def test_a_cancelled_aacquire_leaves_nothing(arun, how):
    async def main():
        limiter = ringq.RateLimiter(rate=1, burst=1)  # a token each second
        assert await limiter.aacquire()
        token = ringq.CancelToken(timeout=0.05) if how == "deadline" else ringq.CancelToken()
        task = asyncio.ensure_future(limiter.aacquire(cancel=token))
        await asyncio.sleep(0.05)
        if how == "token":
            token.cancel()
        elif how == "task.cancel":
            task.cancel()
        expected = asyncio.CancelledError if how == "task.cancel" else ringq.Cancelled
        with pytest.raises(expected):
            await task
        # Given back, the next caller has it (~0.95 s away); kept, the next is 1.95 s away.
        assert await limiter.aacquire(timeout=1.5) is True

    arun(main())


def test_a_token_given_back_behind_other_waiters_goes_to_the_next_caller(arun):
    async def main():
        limiter = ringq.RateLimiter(rate=1, burst=1)
        assert await limiter.aacquire()
        token = ringq.CancelToken()
        first = asyncio.ensure_future(limiter.aacquire(cancel=token))  # due in 1 s
        second = asyncio.ensure_future(limiter.aacquire())             # due in 2 s
        await asyncio.sleep(0.05)
        token.cancel()
        with pytest.raises(ringq.Cancelled):
            await first
        # The first one's token (~0.95 s away) is free again; else the next is 2.95 s away.
        assert await limiter.aacquire(timeout=1.5) is True
        assert await second is True

    arun(main())


def test_rate_and_burst_change_while_in_use(arun):
    limiter = ringq.RateLimiter(rate=100, burst=1)
    assert limiter.acquire()
    limiter.rate = 2  # from here on, one token each 0.5 s
    assert limiter.acquire(timeout=0.3) is False
    slow = ringq.RateLimiter(rate=0.5, burst=1)  # one token each 2 s
    assert slow.acquire()

    async def main():
        changer = threading.Thread(target=setattr, args=(slow, "rate", 50))  # from another thread
        changer.start()
        changer.join(LONG)
        assert await slow.aacquire(timeout=0.5) is True  # 20 ms after the last token, not 2 s

    arun(main())
    assert (limiter.rate, slow.rate) == (2.0, 50.0)
    bursty = ringq.RateLimiter(rate=5, burst=1)
    assert bursty.acquire()
    bursty.burst = 4
    time.sleep(0.8)  # the bucket refills: 4 tokens (0.6 s at 5 a second), capped by the burst
    assert [bursty.try_acquire() for _ in range(5)] == [True] * 4 + [False]
    for bad, error in [("10", TypeError), (True, TypeError), (0, ValueError), (float("inf"), ValueError)]:
        with pytest.raises(error):
            limiter.rate = bad
    for bad, error in [(1.5, TypeError), (True, TypeError), (0, ValueError)]:
        with pytest.raises(error):
            limiter.burst = bad
    assert (limiter.rate, limiter.burst) == (2.0, 1)


def test_one_limiter_from_threads_and_two_loops_at_once(new_loop):
    start = time.monotonic()  # before the limiter: its 40th token is due 39/200 s after it
    limiter = ringq.RateLimiter(rate=200, burst=1)
    taken = []

    def in_thread():
        for _ in range(10):
            assert limiter.acquire(timeout=LONG)
            taken.append(time.monotonic())

    def in_loop():
        async def main():
            for _ in range(10):
                assert await limiter.aacquire(timeout=LONG)
                taken.append(time.monotonic())

        loop = new_loop()
        try:
            loop.run_until_complete(asyncio.wait_for(main(), LONG))
        finally:
            loop.close()

    calls = [Call(in_thread), Call(in_thread), Call(in_loop), Call(in_loop)]
    for call in calls:
        call.value(LONG * 2)
    assert len(taken) == 40
    assert max(taken) - start >= 39 / 200  # one token each 5 ms, shared by all four


def test_aacquire_validation(arun):
    async def main():
        limiter = ringq.RateLimiter(5)
        for bad, error in [(0, ValueError), (True, TypeError), (1.5, TypeError), ("1", TypeError)]:
            with pytest.raises(error):
                await limiter.aacquire(bad)
        with pytest.raises(ValueError):
            await limiter.aacquire(timeout=-1)
        with pytest.raises(TypeError, match="CancelToken"):
            await limiter.aacquire(cancel=threading.Event())
        fired = ringq.CancelToken()
        fired.cancel()
        with pytest.raises(ringq.Cancelled):
            await limiter.aacquire(cancel=fired)
        assert limiter.try_acquire()  # none of those took the bucket's token

    arun(main())


# --- the bucket itself: both implementations keep the same books -------------------------


def test_bucket_gives_back_reused_and_new_tokens_in_order(bucket_impl):
    # Times are waits from "now" (the bucket's own clock); 0.05 s of slack for a slow machine.
    bucket = bucket_impl(10.0, 1)  # one token each 0.1 s, starting full
    assert bucket.take() is True
    assert bucket.take() is False  # the next one is 0.1 s away
    wait_a, ticket_a = bucket.reserve(1, None, True)  # due at ~0.1
    wait_b, ticket_b = bucket.reserve(1, None)  # due at ~0.2
    assert 0.05 < wait_a <= 0.1 + 1e-9 and 0.15 < wait_b <= 0.2 + 1e-9
    bucket.give_back(ticket_a)  # B is behind it: A's token is free for the next caller
    assert bucket.take() is False  # a given-back token still to come is not due now
    assert bucket.reserve(1, 0.0) is None  # nor within a zero timeout: nothing taken
    wait_c, ticket_c = bucket.reserve(2, None)  # A's freed token, then a new one at ~0.3
    assert 0.25 < wait_c <= 0.3 + 1e-9
    prev_last, own_last, first, k, interval, reused = ticket_c
    assert (k, interval, len(reused)) == (1, 0.1, 1) and own_last == first
    bucket.give_back(ticket_c)  # it was the last reserved: as if it never came, and A's again free
    wait_d, _ = bucket.reserve(1, 0.15)  # A's token once more, well within 0.15 s
    assert 0.0 < wait_d <= 0.1 + 1e-9
    wait_e, _ = bucket.reserve(1, None)  # the next new one follows B at ~0.3, not C's ~0.4
    assert 0.25 < wait_e <= 0.3 + 1e-9


def test_bucket_rate_and_burst_are_read_back(bucket_impl):
    bucket = bucket_impl(4.0, 2)
    assert (bucket.rate, bucket.burst) == (4.0, 2)
    bucket.set_rate(8.0)
    bucket.set_burst(3)
    assert (bucket.rate, bucket.burst) == (8.0, 3)
    # It started full, and a bucket with time to refill holds the new burst at once.
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


# --- a __del__ that the GC runs inside a call takes a token too ---------------------------

LIMITER_GC_PRELUDE = """
import gc, time
import ringq, ringq.ratelimit
ringq.ratelimit.TokenBucket = qmod.TokenBucket   # the implementation under test
"""


@cpython_only
@pytest.mark.parametrize("call", ["acquire", "try_acquire"])
def test_gc_inside_a_call_runs_a_del_that_takes_a_token(impl, call):
    # CPython's test_reentrancy (bpo-14976) on a RateLimiter: a collection that lands
    # inside acquire() runs a __del__ that takes a token of the same limiter, in the same
    # thread. A lock held there (the threads' lock, or the twin bucket's) and taken again
    # by the __del__ deadlocked; a twin step re-entered half-way could hand a token out
    # twice. Every token is handed out once: with no refill, exactly `burst` calls win;
    # acquire() waits ~10 us for each token, so each call makes its ticket (allocates).
    burst = 2 * GC_STEPS if call == "try_acquire" else 1
    out = check_child(impl, LIMITER_GC_PRELUDE + f"""
limiter = ringq.RateLimiter(rate={1e-6 if call == "try_acquire" else 1e5}, burst={burst})
wins = []

class Circular:
    def __init__(self):
        self.circular = self

    def __del__(self):
        wins.append(limiter.{call}())

for step in range(1, {GC_STEPS}):
    gc.collect()
    gc.disable()
    o = Circular()
    del o                                   # a cycle: only the GC frees it
    gc.set_threshold(gc.get_count()[0] + step)
    gc.enable()
    wins.append(limiter.{call}())          # the collection lands in here, at each step in turn
gc.set_threshold(700)
gc.collect()
if {call!r} == "try_acquire":
    while limiter.try_acquire():
        wins.append(True)
    assert wins.count(True) == {burst}, ("tokens handed out", wins.count(True), "of", {burst})
else:
    assert all(wins) and len(wins) == 2 * ({GC_STEPS} - 1), wins
print("ok")
""", timeout=LONG * 3)
    assert out.split() == ["ok"]
