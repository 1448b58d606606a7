"""ringq.RateLimiter: a token bucket without a polling loop."""
import threading
import time

import pytest

import ringq
import ringq.ratelimit
from _helpers import LONG, Call


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
